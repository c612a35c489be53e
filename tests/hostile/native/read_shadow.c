/* SPDX-License-Identifier: MIT */
/* Read the host's secrets: /etc/shadow and friends are not in the instance's root. */
#include "hostile.h"

static const char *const default_paths[] = { "/etc/shadow", "/etc/gshadow", "/root", "/etc/sudoers", NULL };

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	cJSON *ev = h_event(event, event_len), *out = cJSON_CreateObject();
	const cJSON *paths = cJSON_GetObjectItemCaseSensitive(ev, "paths"), *p;
	cJSON *results = cJSON_AddArrayToObject(out, "results");

	(void)ctx;
	if (cJSON_IsArray(paths)) {
		cJSON_ArrayForEach(p, paths)
			if (cJSON_IsString(p))
				cJSON_AddItemToArray(results, h_try_read(p->valuestring));
	} else {
		for (size_t i = 0; default_paths[i]; i++)
			cJSON_AddItemToArray(results, h_try_read(default_paths[i]));
	}
	cJSON_Delete(ev);
	return h_respond(out, ret_response, ret_len);
}
