/* SPDX-License-Identifier: MIT */
/* Reach spored: TCP to 127.0.0.1:event.port (its listener; the instance's loopback is its own:
 * ECONNREFUSED), its API socket at event.unix (not in the root: ENOENT), and an address outside
 * (event.egress, "1.1.1.1": no route, ENETUNREACH). */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "hostile.h"

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	cJSON *ev = h_event(event, event_len), *out = cJSON_CreateObject();
	cJSON *results = cJSON_AddArrayToObject(out, "results");
	const char *unix_path = h_str(ev, "unix", NULL), *egress = h_str(ev, "egress", "1.1.1.1");
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	char what[160];

	(void)ctx;
	in.sin_port = htons((uint16_t)h_num(ev, "port", 80));
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	(void)snprintf(what, sizeof(what), "tcp:127.0.0.1:%u", (unsigned)ntohs(in.sin_port));
	cJSON_AddItemToArray(results, h_result(what, h_connect(AF_INET, (void *)&in, sizeof(in))));
	if (unix_path) {
		(void)snprintf(un.sun_path, sizeof(un.sun_path), "%s", unix_path);
		(void)snprintf(what, sizeof(what), "unix:%s", unix_path);
		cJSON_AddItemToArray(results, h_result(what, h_connect(AF_UNIX, (void *)&un, sizeof(un))));
	}
	if (inet_pton(AF_INET, egress, &in.sin_addr) == 1) {
		in.sin_port = htons(53);
		(void)snprintf(what, sizeof(what), "tcp:%s:53", egress);
		cJSON_AddItemToArray(results, h_result(what, h_connect(AF_INET, (void *)&in, sizeof(in))));
	}
	cJSON_Delete(ev);
	return h_respond(out, ret_response, ret_len);
}
