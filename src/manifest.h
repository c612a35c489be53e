/* SPDX-License-Identifier: MIT */
/* A function's configuration as deployed (everything in the PUT body except "code"):
 * validation from JSON with an error naming the bad field, and back to JSON. Pure. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define MANIFEST_MEMORY_MIN 64
#define MANIFEST_MEMORY_MAX 10240
#define MANIFEST_MEMORY_DEFAULT 128
#define MANIFEST_TIMEOUT_MIN 1
#define MANIFEST_TIMEOUT_MAX 900000
#define MANIFEST_TIMEOUT_DEFAULT 30000
#define MANIFEST_ENV_MAX_BYTES 4096
#define MANIFEST_TMP_MIN 1
#define MANIFEST_TMP_MAX 10240
#define MANIFEST_TMP_DEFAULT 64
#define MANIFEST_PIDS_MIN 1
#define MANIFEST_PIDS_MAX 4096
#define MANIFEST_PIDS_DEFAULT 64
#define MANIFEST_CPU_MIN 10
#define MANIFEST_CPU_MAX 64000

struct manifest {
	char *runtime;   /* "python3" | "native" */
	char *handler;   /* python3: "module.function" (dotted module ok); native: "symbol" or
			    "file.so:symbol" */
	uint32_t memory_mb;
	uint32_t timeout_ms;
	uint32_t tmp_mb;     /* size of the instance's /tmp tmpfs; 0 = default */
	uint32_t pids_max;   /* processes and threads per instance; 0 = default */
	uint32_t cpu_millis; /* CPU quota in thousandths of a core; 0 = derived from memory_mb */
	bool egress;         /* "network": "egress": a veth pair and NAT to the outside */
	char **env_keys; /* n_env pairs, in the order given */
	char **env_values;
	size_t n_env;
};

/* [a-z0-9][a-z0-9_-]{0,63} */
bool function_name_valid(const char *name);
/* Known runtime names: "python3", "native", "nodejs", "exec", "provided". */
bool manifest_runtime_known(const char *runtime);

/* Validates j (an object) and fills *ret. Allowed keys: runtime (required), handler (required),
 * memory_mb, timeout_ms, tmp_mb (1..10240, default 64), pids_max (1..4096, default 64),
 * cpu_millis (10..64000; default: derived from memory_mb), network ("none" or "egress"), env (object of string values, keys [A-Za-z_][A-Za-z0-9_]*, not starting
 * with "AWS_" or "SPORE_", total <= 4 KiB), code (ignored here; the caller decodes it). Unknown
 * keys are refused. On failure returns -EINVAL and *ret_error (malloc'ed) names the field:
 * "memory_mb: must be an integer between 64 and 10240". */
int manifest_from_json(const cJSON *j, struct manifest *ret, char **ret_error);
/* {"runtime","handler","memory_mb","timeout_ms","env":{...}}; NULL on OOM. */
cJSON *manifest_to_json(const struct manifest *m);
void manifest_done(struct manifest *m);
int manifest_copy(const struct manifest *src, struct manifest *ret);
