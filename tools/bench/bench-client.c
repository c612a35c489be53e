/* SPDX-License-Identifier: MIT */
/* bench-client: sequential HTTP/1.1 keep-alive requests over loopback, latency percentiles.
 *   bench-client PORT PATH BODY COUNT [WARMUP]
 * Prints one JSON line: {"n","p50_us","p90_us","p99_us","mean_us","min_us","max_us","errors"}.
 * Kept in C so the client's own overhead stays in single-digit microseconds. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

/* Sends the request and reads one response; returns the status or -1. */
static int roundtrip(int fd, const char *req, size_t req_len, char *buf, size_t cap)
{
	size_t off = 0;
	while (off < req_len) {
		ssize_t n = write(fd, req + off, req_len - off);
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	size_t len = 0;
	long need = -1;
	size_t head = 0;
	for (;;) {
		if (len == cap)
			return -1;
		ssize_t n = read(fd, buf + len, cap - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		if (need < 0) {
			char *e = memmem(buf, len, "\r\n\r\n", 4);
			if (!e)
				continue;
			head = (size_t)(e - buf) + 4;
			char *cl = memmem(buf, head, "Content-Length:", 15);
			if (!cl)
				cl = memmem(buf, head, "content-length:", 15);
			need = cl ? strtol(cl + 15, NULL, 10) : 0;
		}
		if (len >= head + (size_t)need)
			break;
	}
	return atoi(buf + 9);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s PORT PATH BODY COUNT [WARMUP]\n", argv[0]);
		return 2;
	}
	int port = atoi(argv[1]);
	const char *path = argv[2], *body = argv[3];
	int count = atoi(argv[4]), warmup = argc > 5 ? atoi(argv[5]) : 100;
	if (count <= 0 || port <= 0) {
		fprintf(stderr, "bench-client: bad PORT or COUNT\n");
		return 2;
	}
	char req[8192];
	int rl = snprintf(req, sizeof(req),
			  "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
			  "Content-Length: %zu\r\n\r\n%s",
			  path, strlen(body), body);
	if (rl < 0 || (size_t)rl >= sizeof(req))
		return 2;
	int fd = connect_port(port);
	if (fd < 0) {
		perror("bench-client: connect");
		return 1;
	}
	static char buf[1 << 20];
	double *lat = calloc((size_t)count, sizeof(double));
	if (!lat)
		return 1;
	int errors = 0;
	for (int i = 0; i < warmup; i++)
		if (roundtrip(fd, req, (size_t)rl, buf, sizeof(buf)) != 200)
			errors++;
	for (int i = 0; i < count; i++) {
		double t0 = now_us();
		int st = roundtrip(fd, req, (size_t)rl, buf, sizeof(buf));
		lat[i] = now_us() - t0;
		if (st != 200) {
			errors++;
			if (st < 0) {
				close(fd);
				fd = connect_port(port);
				if (fd < 0)
					return 1;
			}
		}
	}
	close(fd);
	qsort(lat, (size_t)count, sizeof(double), cmp);
	double sum = 0;
	for (int i = 0; i < count; i++)
		sum += lat[i];
	printf("{\"n\":%d,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,"
	       "\"min_us\":%.1f,\"max_us\":%.1f,\"errors\":%d}\n",
	       count, lat[count / 2], lat[count * 9 / 10], lat[count * 99 / 100], sum / count, lat[0],
	       lat[count - 1], errors);
	free(lat);
	return errors ? 1 : 0;
}
