/* SPDX-License-Identifier: MIT */
/* Allocate and touch event.mb (512) MiB, 1 MiB at a time, past memory_mb: the cgroup's OOM
 * killer must end the instance (502 out_of_memory). Answers only if it got away with it. */
#include "hostile.h"

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	cJSON *ev = h_event(event, event_len);
	int mb = (int)h_num(ev, "mb", 512), got = 0;
	cJSON *r;

	(void)ctx;
	cJSON_Delete(ev);
	for (; got < mb; got++) {
		char *p = malloc(1 << 20);

		if (!p)
			break;
		memset(p, 1, 1 << 20); /* kept: the point is to hold it */
		__asm__ volatile("" : : "r"(p) : "memory");
	}
	r = h_result(NULL, got < mb ? ENOMEM : 0);
	cJSON_AddNumberToObject(r, "allocated_mb", got);
	return h_respond(r, ret_response, ret_len);
}
