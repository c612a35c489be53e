/* SPDX-License-Identifier: MIT */
/* A function's scaling settings, and its schedule (a scheduled trigger): stored with the function
 * (not with a version), set in the deploy body or changed alone with PATCH /v1/functions/{name}. 0 means "spored's default" (the
 * config keys of the same names), except min_instances (0: scale to zero) and
 * target_concurrency (0: 1.0). Pure. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define SCALING_INSTANCES_MAX 1000
#define SCALING_KEYS "min_instances, max_instances, target_concurrency, idle_ttl_s, queue_max, queue_timeout_ms, schedule, auth"
#define SCHEDULE_MAX 128

struct fn_scaling {
	uint32_t min_instances;    /* reserved: started at deploy and start, never reaped */
	uint32_t max_instances;    /* 1..1000 */
	double target_concurrency; /* (0, 1]: in-flight invocations per instance to aim for */
	uint32_t idle_ttl_s;       /* 1..86400 */
	uint32_t queue_max;        /* 1..100000 */
	uint32_t queue_timeout_ms; /* 1..3600000 */
	char schedule[SCHEDULE_MAX]; /* a cron() or rate() expression (cron.h); "" = none */
	bool auth_token; /* "auth": "token": its HTTP routes (/fn/NAME) need its bearer token */
};

/* True for the keys above. */
bool scaling_key(const char *key);

/* Applies the scaling keys present in j (an object) onto *sc; a key set to null goes back to the
 * default. With only_scaling, any other key is refused (PATCH); else other keys are ignored (the
 * deploy body). -EINVAL with *ret_error (malloc'ed) naming the key, e.g. "max_instances: must be
 * an integer between 1 and 1000"; *sc is then unchanged. Also checks min_instances <=
 * max_instances, where max_instances 0 stands for default_max. */
int scaling_apply_json(const cJSON *j, bool only_scaling, uint32_t default_max,
		       struct fn_scaling *sc, char **ret_error);

/* The settings that are not default, as a JSON object (for function.json). NULL on OOM. */
cJSON *scaling_to_json(const struct fn_scaling *sc);
