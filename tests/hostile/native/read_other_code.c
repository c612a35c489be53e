/* SPDX-License-Identifier: MIT */
/* Read another function's code (event.paths: its code dir and a file in it, from the state dir, and through /proc/PID/root of its instance): not reachable. */
#include "hostile.h"

static const char *const default_paths[] = {  NULL };

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	(void)ctx;
	return h_each_path(event, event_len, default_paths, h_try_read, ret_response, ret_len);
}
