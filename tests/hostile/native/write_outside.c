/* SPDX-License-Identifier: MIT */
/* Write outside /tmp: /var/task/x, /etc/x, /x, /usr/x, /dev/x (event.paths to change them): every
 * one must fail (EROFS: the root, /etc, /usr and the code are read-only). */
#include "hostile.h"

static const char *const default_paths[] = { "/var/task/x", "/etc/x", "/x", "/usr/x", "/dev/x", NULL };

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	(void)ctx;
	return h_each_path(event, event_len, default_paths, h_try_write, ret_response, ret_len);
}
