/* SPDX-License-Identifier: MIT */
/* Open event.n (100000) files (/dev/null, over and over) and keep them: RLIMIT_NOFILE must stop
 * it (EMFILE); raising the limit must fail (EPERM). Answers the counts, then closes them. */
#include <sys/resource.h>

#include "hostile.h"

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	cJSON *ev = h_event(event, event_len);
	long n = (long)h_num(ev, "n", 100000), opened = 0, failed = 0;
	int first_errno = 0, *fds = calloc((size_t)n, sizeof(int));
	struct rlimit rl = { 1 << 20, 1 << 20 }, now = { 0, 0 };
	cJSON *r;

	(void)ctx;
	cJSON_Delete(ev);
	if (!fds)
		return 1;
	for (long i = 0; i < n; i++) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd < 0) {
			if (!first_errno)
				first_errno = errno;
			failed++;
		} else
			fds[opened++] = fd;
	}
	r = h_result("open /dev/null", first_errno);
	cJSON_AddNumberToObject(r, "opened", (double)opened);
	cJSON_AddNumberToObject(r, "failed", (double)failed);
	for (long i = 0; i < opened; i++)
		close(fds[i]);
	free(fds);
	cJSON_AddNumberToObject(r, "setrlimit_errno", setrlimit(RLIMIT_NOFILE, &rl) < 0 ? errno : 0);
	(void)getrlimit(RLIMIT_NOFILE, &now);
	cJSON_AddNumberToObject(r, "nofile", (double)now.rlim_cur);
	return h_respond(r, ret_response, ret_len);
}
