/* SPDX-License-Identifier: MIT */
/* The zygote and instance loop shared by every spore-zygote-<runtime> program (see src/proto.h for
 * the wire protocol and docs/RUNTIMES.md for the design). A runtime supplies a small ops table;
 * zygote_main() does everything else: the control socket on fd 3, spares, forking, reaping, and
 * in each instance the INIT/INVOKE loop on the chan socket.
 *
 * Who calls what:
 *   zygote process     init_language() once, then before_fork()/after_fork_parent() around each
 *                      fork.
 *   every child        after_fork_child() right after fork (spares and instances alike).
 *   instance process   load() once after the environment and cwd are set, invoke() per event,
 *                      flush() after every invocation and before exiting.
 *   spare_main()       optional, in place of the above in every new child (see below). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The function an instance runs, from INST_INIT. Strings live as long as the instance. */
struct inst_config {
	const char *function_name;
	const char *function_version;
	const char *handler;
	const char *code_dir;
	const char *invoked_function_arn;
	const char *log_group_name;
	const char *log_stream_name;
	uint32_t memory_mb;
	uint32_t timeout_ms;
};

/* One invocation, from INST_INVOKE. */
struct inst_invoke {
	const char *request_id;
	int64_t deadline_ms; /* CLOCK_REALTIME ms since the epoch */
};

/* What invoke() produced. */
enum invoke_outcome {
	INVOKE_RESULT = 0, /* *ret_out is the result JSON: INST_RESULT */
	INVOKE_ERROR = 1, /* *ret_out is {"errorType","errorMessage","stackTrace"}: INST_ERROR */
};

struct runtime_ops {
	const char *name; /* "python3", "native": sent in ZYG_HELLO */
	/* Zygote, once, before ZYG_HELLO. Returns >= 0, or -errno (the zygote exits 1). */
	int (*init_language)(void);
	/* Optional; around every fork() of the zygote. */
	void (*before_fork)(void);
	void (*after_fork_parent)(void);
	void (*after_fork_child)(void);
	/* Instance, once, in code_dir with the function's environment in place. Returns >= 0, or
	 * -errno with *ret_error set to the malloc'ed INST_INIT_ERROR JSON. */
	int (*load)(const struct inst_config *cfg, char **ret_error);
	/* Instance, per event. event is NUL-terminated (len excludes the NUL); an empty event is
	 * passed as "null". Returns an enum invoke_outcome with *ret_out and *ret_len set
	 * (malloc'ed), or -errno on a failure of the runtime itself (the instance then exits). */
	int (*invoke)(const char *event, size_t event_len, const struct inst_invoke *inv,
		      char **ret_out, size_t *ret_len);
	/* Optional; flush the language's output buffers. */
	void (*flush)(void);
	/* Optional: for a runtime whose instances cannot be forked from the zygote (nodejs: each
	 * one is an exec()ed node process, started ahead of demand). Replaces what a new child of
	 * the zygote does after the fork: called in the child right after its set-up (argv
	 * blanked, after_fork_child(), parent-death signal), before any sandbox step; the hook
	 * calls sandbox_prepare() itself when sandbox_dir (--sandbox-dir) is not NULL. A spare gets
	 * its end of the spare socket (sock, fds NULL) and must speak the spare protocol on it:
	 * send ZYGOTE_SPARE_READY (one byte) once it can take an instance, then receive
	 * ZYGOTE_SPARE_GO with SCM_RIGHTS {chan, stdout, stderr}; EOF means retired. A spawn that
	 * found no ready spare gets the instance's three fds (sock is -1). The hook should not
	 * return; if it does (the runtime cannot start that way), the child carries on as a
	 * spare or instance of the usual kind. */
	void (*spare_main)(const char *sandbox_dir, int sock, const int fds[3]);
};

/* The spare protocol (see spare_main): one-byte SOCK_SEQPACKET messages. */
#define ZYGOTE_SPARE_READY 'R'
#define ZYGOTE_SPARE_GO 'G'

/* Parses argv (--spares N, --no-prefault, --log-level LEVEL), runs the zygote; returns the
 * process exit code. Instances never return from it. */
int zygote_main(const struct runtime_ops *ops, int argc, char *argv[]);

/* {"errorType":type,"errorMessage":message,"stackTrace":[stack...]} as a malloc'ed string;
 * NULL on OOM. stack may be NULL when n_stack is 0. */
char *runtime_error_json(const char *type, const char *message, const char *const *stack,
			 size_t n_stack);
/* Same, message printf-formatted. */
char *runtime_error_jsonf(const char *type, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* CLOCK_REALTIME in ms since the epoch. */
int64_t runtime_now_ms(void);
