/* SPDX-License-Identifier: MIT */
/* Mount: a tmpfs on /tmp/x, /var/task remounted read-write, /var/task unmounted, pivot_root.
 * seccomp refuses them: EPERM. */
#include <sys/mount.h>
#include <sys/syscall.h>

#include "hostile.h"

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	cJSON *out = cJSON_CreateObject(), *results = cJSON_AddArrayToObject(out, "results");

	(void)event, (void)event_len, (void)ctx;
	(void)mkdir("/tmp/x", 0755);
	cJSON_AddItemToArray(results, h_result("mount tmpfs /tmp/x",
					       mount("tmpfs", "/tmp/x", "tmpfs", 0, "size=1m") < 0 ? errno : 0));
	cJSON_AddItemToArray(results,
			     h_result("remount /var/task rw",
				      mount(NULL, "/var/task", NULL, MS_REMOUNT | MS_BIND, NULL) < 0 ? errno : 0));
	cJSON_AddItemToArray(results, h_result("umount2 /var/task",
					       umount2("/var/task", MNT_DETACH) < 0 ? errno : 0));
	cJSON_AddItemToArray(results,
			     h_result("pivot_root /tmp /tmp/x",
				      syscall(SYS_pivot_root, "/tmp", "/tmp/x") < 0 ? errno : 0));
	(void)rmdir("/tmp/x");
	return h_respond(out, ret_response, ret_len);
}
