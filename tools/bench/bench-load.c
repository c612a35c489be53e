/* SPDX-License-Identifier: MIT */
/* bench-load: an open-loop load: POST PATH with BODY at RATE requests per second for SECONDS,
 * on a fixed schedule over CONNS keep-alive connections to 127.0.0.1:PORT; each request's
 * latency is taken from its scheduled send time, so time spent waiting for a free connection
 * (queueing) is not hidden (no coordinated omission).
 *   bench-load PORT PATH BODY RATE SECONDS CONNS
 * Prints one JSON line: {"n","rate","achieved","errors","late","p50_us","p90_us","p99_us",
 * "p999_us","max_us","reconnects"} (late: requests sent more than 1 ms after their time for want of a free
 * connection). A connection the server closes (nginx's keepalive_requests) is opened again, and
 * a request it carried is sent again with its original due time; "reconnects" counts them. */
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

#define RESP_MAX (64u << 10)

struct conn {
	int fd;
	bool busy;
	double due;
	size_t len, head;
	long need;
	char buf[RESP_MAX];
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int connect_port(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* 1: a whole response is in c->buf (status in *ret_status); 0: not yet. */
static int parse(struct conn *c, int *ret_status)
{
	if (!c->head) {
		char *e = memmem(c->buf, c->len, "\r\n\r\n", 4);
		if (!e)
			return 0;
		c->head = (size_t)(e - c->buf) + 4;
		c->need = 0;
		for (char *p = c->buf; p < c->buf + c->head;) {
			if (strncasecmp(p, "Content-Length:", 15) == 0)
				c->need = strtol(p + 15, NULL, 10);
			char *nl = memchr(p, '\n', c->head - (size_t)(p - c->buf));
			if (!nl)
				break;
			p = nl + 1;
		}
	}
	if (c->len < c->head + (size_t)c->need)
		return 0;
	*ret_status = atoi(c->buf + 9);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: %s PORT PATH BODY RATE SECONDS CONNS\n", argv[0]);
		return 2;
	}
	int port = atoi(argv[1]), nconn = atoi(argv[6]);
	const char *path = argv[2], *body = argv[3];
	double rate = atof(argv[4]), seconds = atof(argv[5]);
	if (port <= 0 || nconn <= 0 || !(rate > 0) || !(seconds > 0)) {
		fprintf(stderr, "bench-load: bad argument\n");
		return 2;
	}
	long total = (long)(rate * seconds);
	char req[8192];
	int rlen = snprintf(req, sizeof(req),
			    "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
			    "Content-Length: %zu\r\n\r\n%s",
			    path, strlen(body), body);
	if (rlen < 0 || (size_t)rlen >= sizeof(req) || total <= 0)
		return 2;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	struct conn *cs = calloc((size_t)nconn, sizeof(*cs));
	int *idle = calloc((size_t)nconn, sizeof(int));
	double *lat = calloc((size_t)total, sizeof(double));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!cs || !idle || !lat || ep < 0)
		return 1;
	int n_idle = 0;
	for (int i = 0; i < nconn; i++) {
		cs[i].fd = connect_port(port);
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		if (cs[i].fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) < 0) {
			perror("bench-load: connect");
			return 1;
		}
		idle[n_idle++] = i;
	}

	long sent = 0, done = 0, errors = 0, late = 0, reconnects = 0;
	double start = now_us() + 10000, interval = 1e6 / rate;
	double give_up = start + seconds * 1e6 + 30e6;
	while (done < total) {
		double t = now_us();
		if (t > give_up)
			break;
		while (sent < total && n_idle > 0 && start + (double)sent * interval <= t) {
			struct conn *c = &cs[idle[--n_idle]];
			c->due = start + (double)sent * interval;
			if (t - c->due > 1000)
				late++;
			c->busy = true;
			c->len = c->head = 0;
			if (write(c->fd, req, (size_t)rlen) != rlen) {
				fprintf(stderr, "bench-load: write: %m\n");
				return 1;
			}
			sent++;
		}
		struct timespec to, *top = NULL;
		if (sent < total && n_idle > 0) {
			double wait = start + (double)sent * interval - now_us();
			if (wait < 0)
				wait = 0;
			to.tv_sec = (time_t)(wait / 1e6);
			to.tv_nsec = (long)((wait - (double)to.tv_sec * 1e6) * 1e3);
			top = &to;
		} else {
			to.tv_sec = 1;
			to.tv_nsec = 0;
			top = &to;
		}
		struct epoll_event evs[64];
		int k = epoll_pwait2(ep, evs, 64, top, NULL);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			perror("bench-load: epoll_pwait2");
			return 1;
		}
		for (int j = 0; j < k; j++) {
			struct conn *c = &cs[evs[j].data.u32];
			ssize_t r = read(c->fd, c->buf + c->len, RESP_MAX - c->len);
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0 || !c->busy) {
				/* closed by the server (or a stray byte): open it again; an in-flight
				 * request goes again on the new connection, with its due time. */
				if (r > 0 || (c->busy && c->len > 0) || ++reconnects > total) {
					fprintf(stderr, "bench-load: connection closed mid-response\n");
					return 1;
				}
				(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->fd = connect_port(port);
				struct epoll_event ev = { .events = EPOLLIN, .data.u32 = evs[j].data.u32 };
				if (c->fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
					perror("bench-load: reconnect");
					return 1;
				}
				c->len = c->head = 0;
				if (c->busy && write(c->fd, req, (size_t)rlen) != rlen) {
					fprintf(stderr, "bench-load: write: %m\n");
					return 1;
				}
				continue;
			}
			c->len += (size_t)r;
			int st = 0;
			if (!parse(c, &st)) {
				if (c->len == RESP_MAX) {
					fprintf(stderr, "bench-load: response too large\n");
					return 1;
				}
				continue;
			}
			lat[done++] = now_us() - c->due;
			if (st != 200)
				errors++;
			c->busy = false;
			idle[n_idle++] = (int)evs[j].data.u32;
		}
	}
	double elapsed = now_us() - start;
	qsort(lat, (size_t)done, sizeof(double), cmp);
#define PCT(p) (done ? lat[(long)((double)done * (p) / 100.0) < done ? (long)((double)done * (p) / 100.0) : done - 1] : 0)
	printf("{\"n\":%ld,\"rate\":%.1f,\"achieved\":%.1f,\"errors\":%ld,\"late\":%ld,"
	       "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"reconnects\":%ld}\n",
	       done, rate, (double)done / (elapsed / 1e6), errors + (total - done), late, PCT(50), PCT(90),
	       PCT(99), PCT(99.9), done ? lat[done - 1] : 0, reconnects);
	for (int i = 0; i < nconn; i++)
		close(cs[i].fd);
	free(cs);
	free(idle);
	free(lat);
	close(ep);
	return 0;
}
