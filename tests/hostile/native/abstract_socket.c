/* SPDX-License-Identifier: MIT */
/* Abstract unix sockets across functions. event.action:
 *   "bind":    bind and listen on "\0<event.name>" and keep it open (the instance stays warm);
 *   "check":   connect to our own socket (proves it is still there);
 *   "connect": connect to "\0<event.name>", bound by another function: must fail
 *              (ECONNREFUSED), abstract names are per network namespace. */
#include "hostile.h"

static int listener = -1;

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	cJSON *ev = h_event(event, event_len);
	const char *action = h_str(ev, "action", "connect");
	struct sockaddr_un un;
	socklen_t len = h_abstract_addr(h_str(ev, "name", "spore-hostile"), &un);
	int err = 0;
	cJSON *r;

	(void)ctx;
	if (strcmp(action, "bind") == 0) {
		if (listener < 0) {
			int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

			if (fd < 0 || bind(fd, (void *)&un, len) < 0 || listen(fd, 16) < 0) {
				err = errno;
				if (fd >= 0)
					close(fd);
			} else
				listener = fd;
		}
	} else
		err = h_connect(AF_UNIX, (void *)&un, len);
	r = h_result(action, err);
	cJSON_AddBoolToObject(r, "listening", listener >= 0);
	cJSON_Delete(ev);
	return h_respond(r, ret_response, ret_len);
}
