/* SPDX-License-Identifier: MIT */
/* Spin past timeout_ms when event.spin is true, with a spinning child too (event.child): the
 * timeout must kill the whole instance. Otherwise answers {"ok": true} at once. */
#include <unistd.h>

#include "hostile.h"

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	cJSON *ev = h_event(event, event_len);
	const cJSON *spin = cJSON_GetObjectItemCaseSensitive(ev, "spin");
	const cJSON *child = cJSON_GetObjectItemCaseSensitive(ev, "child");
	bool s = cJSON_IsTrue(spin), c = cJSON_IsTrue(child);
	volatile unsigned long n = 0;

	(void)ctx;
	cJSON_Delete(ev);
	if (!s)
		return h_respond(h_result(NULL, 0), ret_response, ret_len);
	if (c)
		(void)fork(); /* both spin */
	for (;;)
		n++;
}
