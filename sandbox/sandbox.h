/* SPDX-License-Identifier: MIT */
/* sandbox: an instance enters its isolation in three phases, all in C, all in the zygote or its
 * children (spored itself never calls these). See docs/SANDBOX.md.
 *
 *   phase 0, in the zygote:        sandbox_init() once, then sandbox_clone_spare() per spare,
 *                                  in place of fork();
 *   phase 1, in the spare:         sandbox_prepare(), right after the clone, before it idles:
 *                                  everything that does not depend on the function, the
 *                                  runtime's seccomp policy included;
 *   phase 2, in the spare once it  sandbox_enter(), before any of the function's code is
 *            knows its function:   loaded: code, /tmp, pivot_root, ids, capabilities,
 *                                  no_new_privs, rlimits, and the seccomp lock, last.
 *
 * Between phase 1 and 2 the spare runs under its runtime's seccomp policy (which still allows
 * the few calls phase 2 makes: mount, pivot_root, the set*id calls, capset, seccomp): whatever
 * the caller does there must be on the runtime's allow-list (docs/SANDBOX.md).
 *
 * A child that fails a phase should send the struct sandbox_error to spored (STYLE.md: {step,
 * -errno} over its CLOEXEC socket) and _exit(): a half-entered sandbox must never run code.
 *
 * Ownership: the module keeps two things for the life of the process: the zygote's pid
 * namespace fd (phase 0) and the compiled seccomp filters (sandbox_init() or the first
 * sandbox_enter()). Spares inherit both at fork and use them without a copy being made.
 *
 * Threads: phase 1 and 2 must run while the child is single-threaded (unshare() of a mount
 * namespace refuses otherwise, and seccomp and the credentials apply to the calling thread
 * only). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* What failed: step is a static string naming the step ("pivot_root", "seccomp", ...), error is
 * -errno, message is NULL or a static sentence for people. Written only on failure. */
struct sandbox_error {
	const char *step;
	const char *message;
	int error;
};

/* Phase 1. root_dir: an existing, empty directory on the host (e.g. /run/spore/sandbox-root,
 * created by the caller, shared by every spare of every zygote): the new root is a tmpfs mounted
 * on it inside the spare's own mount namespace, so the host never sees it. runtime: "python3",
 * "native", "nodejs", "exec" or "provided", the zygote's: picks the seccomp policy. */
struct sandbox_prepare_opts {
	const char *root_dir;
	const char *runtime;
	/* Also pivot_root into the new root now, ahead of demand (pivot_root and the unmount of
	 * the host's tree are 0.1-0.2 ms of a cold start: the unmount waits for an RCU grace
	 * period). The host's paths are gone from the spare from then on: sandbox_enter() must
	 * get the code as a detached mount (code_fd), not as a path. */
	bool pivot;
};

#define SANDBOX_TMP_MB_DEFAULT 64
#define SANDBOX_NOFILE_DEFAULT 1024

/* Phase 2. Zero fields take the defaults. */
struct sandbox_config {
	const char *code_dir; /* host path, bound read-only at /var/task; or, after a prepare
				 with pivot (and only then read): */
	int code_fd;          /* a detached mount of the code (open_tree(OPEN_TREE_CLONE)),
				 attached read-only at /var/task; sandbox_enter() closes it */
	uint32_t tmp_mb;      /* size of the /tmp tmpfs; 0: 64 */
	uid_t uid;            /* unprivileged: 0 is refused */
	gid_t gid;            /* unprivileged: 0 is refused */
	uint32_t nofile;      /* RLIMIT_NOFILE, soft and hard; 0: 1024 */
	const char *runtime;  /* NULL or the runtime given to sandbox_prepare() (else -EINVAL) */
	const char *network;  /* NULL or "none": loopback only; "egress": -EOPNOTSUPP for now */
};

/* Zygote, once, optional: compiles the seccomp filters of runtime ("python3", "native",
 * "nodejs", "exec", "provided") and
 * opens the zygote's pid namespace, so no spare pays for either (compiling costs ~1 ms). Returns
 * 0 or -errno (-EINVAL: unknown runtime), ret_err filled on failure. Not thread-safe. */
int sandbox_init(const char *runtime, struct sandbox_error *ret_err);

/* Zygote: fork() into a new pid namespace: the child is its PID 1, the zygote stays its parent.
 * Returns 0 in the child, the child's pid (in the zygote's namespace) in the zygote, -errno on
 * failure. glibc's fork() runs as usual (atfork handlers, sanitizers), so callers keep their
 * before/after fork hooks around it. The zygote's own namespaces are unchanged afterwards.
 *
 * Being PID 1 matters to the child and its users:
 *   - signals sent from inside the namespace (its own kill(getpid(), ...), raise(), abort(),
 *     its children's kill(1, ...)) are dropped unless the child has a handler installed;
 *     SIGKILL and SIGSTOP from inside are always dropped. Signals from the host (the zygote,
 *     spored, the cgroup's kill) are delivered as usual, SIGKILL included, and so are faults
 *     (a real SIGSEGV kills it);
 *   - orphans of the namespace are re-parented to it: it must reap them (waitpid(-1, ...)) or
 *     they stay zombies until it exits;
 *   - when it exits, the kernel SIGKILLs every process left in its namespace;
 *   - getppid() returns 0 in the child: use a pidfd of the zygote, not getppid(), to check
 *     that the parent is still alive. */
pid_t sandbox_clone_spare(void);
/* The same, but the child starts in the v2 cgroup cgroup_fd (an O_PATH|O_DIRECTORY fd) through
 * clone3(CLONE_INTO_CGROUP), with no migration afterwards. Same return values; -ENOSYS or
 * -EINVAL where the kernel lacks it (then use sandbox_clone_spare()). */
pid_t sandbox_clone_spare_into(int cgroup_fd);

/* Phase 1, in the child of sandbox_clone_spare(), before it idles: new mount, IPC, UTS and
 * network namespaces, a new session, the read-only system root built on opts->root_dir (the
 * host paths stay reachable until phase 2), /proc, hostname "spore", loopback up, no core
 * files, an empty capability bounding set, then the runtime's seccomp policy. Returns 0 or
 * -errno with ret_err filled. */
int sandbox_prepare(const struct sandbox_prepare_opts *opts, struct sandbox_error *ret_err);

/* Phase 2, in the same child, after the caller has put it in its cgroup, before it loads any
 * of the function's code: binds the code, mounts /tmp, pivot_roots into the new root, a new
 * cgroup namespace, cwd /var/task, RLIMIT_NOFILE, the unprivileged ids, every capability
 * dropped, no_new_privs, not dumpable, then the seccomp lock, last. The parent-death signal
 * survives the change of ids. Paths of the host are gone afterwards (code_dir included: the
 * code is at /var/task). Returns 0, or -errno with ret_err filled (the process is then
 * half-sandboxed: _exit()). */
int sandbox_enter(const struct sandbox_config *c, struct sandbox_error *ret_err);
