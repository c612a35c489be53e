/* SPDX-License-Identifier: MIT */
#include "scaling.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "util/cleanup.h"
#include "util/error.h"

static const struct {
	const char *key;
	size_t offset;
	uint32_t min, max;
} u32_keys[] = {
	{ "min_instances", offsetof(struct fn_scaling, min_instances), 0, SCALING_INSTANCES_MAX },
	{ "max_instances", offsetof(struct fn_scaling, max_instances), 1, SCALING_INSTANCES_MAX },
	{ "idle_ttl_s", offsetof(struct fn_scaling, idle_ttl_s), 1, 86400 },
	{ "queue_max", offsetof(struct fn_scaling, queue_max), 1, 100000 },
	{ "queue_timeout_ms", offsetof(struct fn_scaling, queue_timeout_ms), 1, 3600000 },
};

bool scaling_key(const char *key)
{
	if (streq(key, "target_concurrency") || streq(key, "schedule") || streq(key, "auth"))
		return true;
	for (size_t i = 0; i < ELEMENTSOF(u32_keys); i++)
		if (streq(key, u32_keys[i].key))
			return true;
	return false;
}

int scaling_apply_json(const cJSON *j, bool only_scaling, uint32_t default_max,
		       struct fn_scaling *sc, char **ret_error)
{
	if (!cJSON_IsObject(j))
		return error_set(ret_error, -EINVAL, "body: must be a JSON object");
	struct fn_scaling n = *sc;
	const cJSON *it;
	cJSON_ArrayForEach(it, j) {
		const char *k = it->string;
		if (!scaling_key(k)) {
			if (only_scaling)
				return error_set(ret_error, -EINVAL,
						 "%s: unknown key; a PATCH changes only "
						 SCALING_KEYS, k);
			continue;
		}
		if (streq(k, "auth")) {
			if (cJSON_IsNull(it) || (cJSON_IsString(it) && streq(it->valuestring, "none")))
				n.auth_token = false;
			else if (cJSON_IsString(it) && streq(it->valuestring, "token"))
				n.auth_token = true;
			else
				return error_set(ret_error, -EINVAL,
						 "auth: must be \"token\" or \"none\" (or null)");
			continue;
		}
		if (streq(k, "schedule")) {
			if (cJSON_IsNull(it) || (cJSON_IsString(it) && !it->valuestring[0])) {
				n.schedule[0] = 0;
				continue;
			}
			struct cron c;
			_cleanup_free_ char *cerr = NULL;
			if (!cJSON_IsString(it))
				return error_set(ret_error, -EINVAL,
						 "schedule: must be a string such as \"rate(5 minutes)\" "
						 "or \"cron(0 * * * *)\", or null");
			int r = cron_parse(it->valuestring, &c, &cerr);
			if (r == -ENOMEM)
				return r;
			if (r < 0 || strlen(it->valuestring) >= sizeof(n.schedule))
				return error_set(ret_error, -EINVAL, "schedule: %s",
						 cerr ?: "too long");
			strcpy(n.schedule, it->valuestring);
			continue;
		}
		if (streq(k, "target_concurrency")) {
			if (cJSON_IsNull(it)) {
				n.target_concurrency = 0;
				continue;
			}
			double d = cJSON_IsNumber(it) ? it->valuedouble : NAN;
			if (!(d > 0 && d <= 1))
				return error_set(ret_error, -EINVAL,
						 "target_concurrency: must be a number above 0 and "
						 "at most 1 (instances run one invocation at a time; "
						 "0.7 keeps 30%% spare)");
			n.target_concurrency = d;
			continue;
		}
		for (size_t i = 0; i < ELEMENTSOF(u32_keys); i++) {
			if (!streq(k, u32_keys[i].key))
				continue;
			uint32_t *f = (uint32_t *)((char *)&n + u32_keys[i].offset);
			if (cJSON_IsNull(it)) {
				*f = 0;
				break;
			}
			double d = cJSON_IsNumber(it) ? it->valuedouble : -1;
			if (!(d >= u32_keys[i].min && d <= u32_keys[i].max) || d != (double)(uint32_t)d)
				return error_set(ret_error, -EINVAL,
						 "%s: must be an integer between %u and %u (or null "
						 "for the default)",
						 k, u32_keys[i].min, u32_keys[i].max);
			*f = (uint32_t)d;
			break;
		}
	}
	uint32_t max = n.max_instances ? n.max_instances : default_max;
	if (n.min_instances > max)
		return error_set(ret_error, -EINVAL,
				 "min_instances: %u is above max_instances (%u)", n.min_instances, max);
	*sc = n;
	return 0;
}

cJSON *scaling_to_json(const struct fn_scaling *sc)
{
	cJSON *j = cJSON_CreateObject();
	if (!j)
		return NULL;
	for (size_t i = 0; i < ELEMENTSOF(u32_keys); i++) {
		uint32_t v = *(const uint32_t *)((const char *)sc + u32_keys[i].offset);
		if (v && !cJSON_AddNumberToObject(j, u32_keys[i].key, v))
			goto oom;
	}
	if (sc->target_concurrency > 0 &&
	    !cJSON_AddNumberToObject(j, "target_concurrency", sc->target_concurrency))
		goto oom;
	if (sc->schedule[0] && !cJSON_AddStringToObject(j, "schedule", sc->schedule))
		goto oom;
	if (sc->auth_token && !cJSON_AddStringToObject(j, "auth", "token"))
		goto oom;
	return j;
oom:
	cJSON_Delete(j);
	return NULL;
}
