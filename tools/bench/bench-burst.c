/* SPDX-License-Identifier: MIT */
/* bench-burst: N clients at once. At the start of the burst, N TCP connections are opened to
 * 127.0.0.1:PORT one after the other, each sending one POST PATH with BODY as soon as it is
 * connected; each answer is timed from the start of the burst (what a client that arrived then
 * waits).
 *   bench-burst PORT PATH BODY N
 * Prints one JSON line: {"n","ok","cold","errors","wall_us","statuses","lat_us":[...]} (ok: 200
 * answers; cold: answers with X-Spore-Cold-Start: true; wall_us: until the last answer;
 * statuses: answers by status, 0 for a connection that failed or got no whole answer). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct client {
	int fd;
	char *buf;
	size_t len;
	double lat;
	int status;
	bool cold, done;
};

#define RESP_MAX (64u << 10)

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Whether buf holds a whole response; sets status and cold. */
static bool complete(struct client *c)
{
	char *e = memmem(c->buf, c->len, "\r\n\r\n", 4);
	if (!e)
		return false;
	size_t head = (size_t)(e - c->buf) + 4;
	long need = 0;
	for (char *p = c->buf; p < c->buf + head;) {
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			need = strtol(p + 15, NULL, 10);
		else if (strncasecmp(p, "X-Spore-Cold-Start: true", 24) == 0)
			c->cold = true;
		char *nl = memchr(p, '\n', head - (size_t)(p - c->buf));
		if (!nl)
			break;
		p = nl + 1;
	}
	if (c->len < head + (size_t)need)
		return false;
	c->status = c->len > 12 ? atoi(c->buf + 9) : -1;
	return true;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s PORT PATH BODY N\n", argv[0]);
		return 2;
	}
	int port = atoi(argv[1]), n = atoi(argv[4]);
	const char *path = argv[2], *body = argv[3];
	if (port <= 0 || n <= 0) {
		fprintf(stderr, "bench-burst: bad PORT or N\n");
		return 2;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	char req[8192];
	int rlen = snprintf(req, sizeof(req),
			    "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
			    "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
			    path, strlen(body), body);
	if (rlen < 0 || (size_t)rlen >= sizeof(req))
		return 2;
	struct client *cs = calloc((size_t)n, sizeof(*cs));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!cs || ep < 0)
		return 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	int errors = 0, pending = 0;
	double t0 = now_us();
	for (int i = 0; i < n; i++) {
		struct client *c = &cs[i];
		int one = 1;
		c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0 || setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
		    connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    write(c->fd, req, (size_t)rlen) != rlen) {
			errors++;
			c->done = true;
			continue;
		}
		c->buf = malloc(RESP_MAX);
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		if (!c->buf || epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
			errors++;
			c->done = true;
			continue;
		}
		pending++;
	}
	while (pending > 0) {
		struct epoll_event evs[64];
		int k = epoll_wait(ep, evs, 64, 120000);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break; /* two minutes without an answer */
		double t = now_us();
		for (int j = 0; j < k; j++) {
			struct client *c = &cs[evs[j].data.u32];
			if (c->done)
				continue;
			ssize_t r = read(c->fd, c->buf + c->len, RESP_MAX - 1 - c->len);
			if (r > 0)
				c->len += (size_t)r;
			bool whole = complete(c);
			if (!whole && r > 0 && c->len < RESP_MAX - 1)
				continue;
			c->done = true;
			c->lat = t - t0;
			pending--;
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			if (!whole)
				c->status = -1;
		}
	}
	double wall = now_us() - t0;
	int ok = 0, cold = 0;
	/* answers by status (0: no whole answer), and the first non-200 answer's head */
	int by_status[600] = { 0 };
	char first_bad[200] = "";
	for (int i = 0; i < n; i++) {
		int st = cs[i].done && cs[i].status > 0 && cs[i].status < 600 ? cs[i].status : 0;
		by_status[st]++;
		if (st != 200 && !first_bad[0] && cs[i].buf && cs[i].len > 0) {
			size_t k = 0;
			for (size_t j = 0; j < cs[i].len && k < sizeof(first_bad) - 1; j++) {
				char ch = cs[i].buf[j];
				first_bad[k++] = (ch == '"' || ch == '\\' || (unsigned char)ch < 32) ? ' ' : ch;
			}
			first_bad[k] = 0;
		}
	}
	for (int i = 0; i < n; i++) {
		if (!cs[i].done) {
			errors++;
			cs[i].lat = wall;
		} else if (cs[i].status == 200) {
			ok++;
		} else if (cs[i].buf) {
			errors++;
		}
		cold += cs[i].cold;
		if (cs[i].fd >= 0)
			close(cs[i].fd);
		free(cs[i].buf);
	}
	printf("{\"n\":%d,\"ok\":%d,\"cold\":%d,\"errors\":%d,\"wall_us\":%.1f,\"first_bad\":\"%s\","
	       "\"statuses\":{",
	       n, ok, cold, errors, wall, first_bad);
	for (int st = 0, k = 0; st < 600; st++)
		if (by_status[st])
			printf("%s\"%d\":%d", k++ ? "," : "", st, by_status[st]);
	printf("},\"lat_us\":[");
	for (int i = 0; i < n; i++)
		printf("%s%.1f", i ? "," : "", cs[i].lat);
	printf("]}\n");
	free(cs);
	close(ep);
	return 0;
}
