/* SPDX-License-Identifier: MIT */
/* Write outside /tmp: /var/task/x, /etc/x, /x, /usr/x, /dev/x (event.paths to change them): every
 * one must fail (EROFS: the root, /etc, /usr and the code are read-only). */
#include "hostile.h"

static const char *const default_paths[] = { "/var/task/x", "/etc/x", "/x", "/usr/x", "/dev/x", NULL };

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
				cJSON_AddItemToArray(results, h_try_write(p->valuestring));
	} else {
		for (size_t i = 0; default_paths[i]; i++)
			cJSON_AddItemToArray(results, h_try_write(default_paths[i]));
	}
	cJSON_Delete(ev);
	return h_respond(out, ret_response, ret_len);
}
