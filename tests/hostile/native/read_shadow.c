/* SPDX-License-Identifier: MIT */
/* Read the host's secrets: /etc/shadow and friends are not in the instance's root. */
#include "hostile.h"

static const char *const default_paths[] = { "/etc/shadow", "/etc/gshadow", "/root", "/etc/sudoers", NULL };

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	(void)ctx;
	return h_each_path(event, event_len, default_paths, h_try_read, ret_response, ret_len);
}
