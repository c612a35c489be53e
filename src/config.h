/* SPDX-License-Identifier: MIT */
/* spored configuration: defaults, the config file (key = value lines, '#' comments), and
 * command-line flags, which override the file. Every key is documented in
 * packaging/spored.conf. Supervisor only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct spore_config {
	char *state_dir;      /* state_dir / --state-dir, default SPORE_DEFAULT_STATE_DIR */
	char *api_socket;     /* api_socket / --api-socket, default SPORE_DEFAULT_API_SOCKET */
	char **listen;        /* listen (repeatable, or comma separated) / --listen ADDR:PORT */
	size_t n_listen;      /* default one: 127.0.0.1:8080 */
	char *api_token;      /* api_token: NULL = management API on the unix socket only */
	char *runtime_dir;    /* runtime_dir: where spore-zygote-* live, default SPORE_RUNTIME_DIR */
	int log_level;        /* log_level: debug|info|notice|warning|error, default info */
	uint32_t idle_ttl_s;         /* idle_ttl_s, default 300 */
	uint32_t max_instances;      /* max_instances (per function), default 10 */
	uint32_t queue_max;          /* queue_max (pending invocations per function), default 100 */
	uint32_t queue_timeout_ms;   /* queue_timeout_ms, default 30000 */
	uint32_t max_connections;    /* max_connections, default 10000 */
	uint32_t header_timeout_ms;  /* header_timeout_ms, default 10000 */
	uint32_t keepalive_timeout_ms; /* keepalive_timeout_ms, default 60000 */
	uint32_t header_max;         /* header_max_bytes, default 16384 */
	uint64_t invoke_body_max;    /* invoke_body_max_bytes, default 6 MiB */
	uint64_t deploy_body_max;    /* deploy_body_max_bytes, default 64 MiB */
	uint64_t package_max_bytes;  /* package_max_bytes (unpacked), default 256 MiB */
	uint32_t package_max_entries; /* package_max_entries, default 10000 */
	uint64_t log_max_bytes;      /* log_max_bytes per function log before rotation, default 8 MiB */
	uint32_t zygote_spares;      /* zygote_spares: pre-forked spare instances per zygote, default 2 */
	bool sandbox;                /* sandbox: namespaces, cgroups, seccomp per instance, default yes */
	char *sandbox_dir;           /* sandbox_dir: where instance roots are built, default
					SPORE_DEFAULT_SANDBOX_DIR */
	uint32_t sandbox_uid_min;    /* sandbox_uid_min: first uid/gid for functions, default 200000 */
	uint32_t sandbox_uid_count;  /* sandbox_uid_count: size of that range, default 65536 */
	uint32_t max_instances_total; /* max_instances_total: all functions together, default 2000 */
	uint32_t instance_memory_pct; /* instance_memory_pct: share of host memory that instances'
					 memory_mb may add up to, default 80; above 100 an explicit
					 overcommit (memory_mb is a limit, not a reservation) */
	bool metering_bpf;           /* metering_bpf: CPU time by eBPF where it loads, default yes */
	char *bpf_pin_dir;           /* bpf_pin_dir: where the meter's maps are pinned, default
					/sys/fs/bpf/spore */
	uint32_t shutdown_grace_s;   /* shutdown_grace_s: how long a SIGTERM waits for requests
					being answered, default 30 */
	char *lambda_account_id;     /* lambda_account_id: 12 digits in Lambda ARNs, default
					000000000000 */
	char *lambda_region;         /* lambda_region: the region in ARNs and in the SigV4 scope,
					default us-east-1 */
	char *lambda_access_keys;    /* lambda_access_keys: file of KEY_ID:SECRET lines (mode 0600,
					owned by spored's user) for SigV4; NULL: none, signed
					requests refused */
	bool lambda_allow_unsigned;  /* lambda_allow_unsigned: Lambda API over TCP without a
					signature (local development only), default no */
	uint32_t deps_timeout_s;     /* deps_timeout_s: how long a deploy's npm install may run,
					default 300 */
};

/* Fills c with the defaults. */
int config_init(struct spore_config *c);
void config_done(struct spore_config *c);

/* Applies a config file. Unknown keys and bad values fail with -EINVAL and *ret_error (malloc'ed)
 * naming the file, line and key ("FILE:LINE: KEY: ..."). -ENOENT if the file is missing (message
 * set too), other -errno when it cannot be read. Lines: "key = value", blank, or '#' comments; a
 * '#' after whitespace ends the value; "key = \"value\"" keeps the value literally (no escapes).
 * Later settings of a key win, except listen: the file's first listen line replaces the list it
 * had, later listen lines add to it. Settings applied before a failing line stay applied. */
int config_load_file(struct spore_config *c, const char *path, char **ret_error);

/* Applies one "key = value" setting (also used by tests); on failure nothing changes and
 * *ret_error says "KEY: ..." (the value quoted, except api_token's). listen takes a comma separated
 * list that replaces the current one. An empty api_token unsets it. */
int config_set(struct spore_config *c, const char *key, const char *value, char **ret_error);

/* SIGHUP: c is the running configuration, n a freshly loaded one (config_from_args() with the
 * same arguments). The keys that can change while spored runs (log_level, api_token,
 * invoke_body_max_bytes, deploy_body_max_bytes, header_max_bytes, header_timeout_ms,
 * keepalive_timeout_ms, max_connections, shutdown_grace_s) are copied from n into c; every key
 * whose value differs is reported to changed(key, live, userdata), live false for those c keeps
 * until a restart. Returns the number of live keys changed, or -ENOMEM (c is then unchanged for
 * the key that failed). */
int config_apply_live(struct spore_config *c, const struct spore_config *n,
		      void (*changed)(const char *key, bool live, void *userdata), void *userdata);

/* The whole start-up sequence: defaults, then --config FILE if given (else SPORE_DEFAULT_CONFIG if
 * it exists), then the flags on top, whatever their order on the command line. The first --listen
 * replaces the list the file (or the default) gave, later ones add to it. Returns 0 to run, 1 when
 * --help or --version was printed (exit 0), -EINVAL with *ret_error naming the bad flag or value,
 * or the file's message (exit 2), -ENOMEM. */
int config_from_args(struct spore_config *c, int argc, char **argv, char **ret_error);
