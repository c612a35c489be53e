/* SPDX-License-Identifier: MIT */
/* Write event.mb (64) MiB to /tmp/fill, past tmp_mb: the write must fail with ENOSPC. Answers
 * how much was written and the size of /tmp, then removes the file. */
#include <sys/statvfs.h>

#include "hostile.h"

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	cJSON *ev = h_event(event, event_len);
	double want = h_num(ev, "mb", 64) * (1 << 20), written = 0;
	static char chunk[1 << 20];
	struct statvfs sv;
	int fd, err = 0;
	cJSON *r;

	(void)ctx;
	cJSON_Delete(ev);
	memset(chunk, 'x', sizeof(chunk));
	fd = open("/tmp/fill", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return h_respond(h_result("/tmp/fill", errno), ret_response, ret_len);
	while (written < want) {
		ssize_t n = write(fd, chunk, sizeof(chunk));

		if (n < 0) {
			err = errno;
			break;
		}
		written += (double)n;
	}
	close(fd);
	r = h_result("/tmp/fill", err);
	cJSON_AddNumberToObject(r, "written", written);
	if (statvfs("/tmp", &sv) == 0)
		cJSON_AddNumberToObject(r, "tmp_size", (double)sv.f_blocks * (double)sv.f_frsize);
	(void)unlink("/tmp/fill");
	return h_respond(r, ret_response, ret_len);
}
