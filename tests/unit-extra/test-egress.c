/* SPDX-License-Identifier: MIT */
/* sandbox/egress: network "egress" for real, as root. Instances are children in their own
 * network namespace (unshare(CLONE_NEWNET), only lo, waiting on a pipe), "the outside" is one
 * more such namespace behind a veth of the host. The test opens its sockets inside a namespace
 * by entering it for the socket() call only (a socket keeps the namespace it was made in), so
 * every connection below really starts in the instance's namespace.
 *
 * Checked: an instance reaches a server outside, masqueraded behind the host's address; it
 * does not reach the host's loopback, any address of the host (IPv4 and IPv6) on any port, the
 * other instance, nor is it reachable from the host; stale tables and veths of a killed spored
 * are removed; names and pools that clash are refused; nothing is left afterwards (veths, the
 * table, namespaces) and ip_forward is back, on failure paths too (cmocka runs the teardown).
 *
 * --bench N prints the cost of egress_attach() and egress_release() (median of N). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "egress.h"
#include "util/cleanup.h"

#define IP_FORWARD "/proc/sys/net/ipv4/ip_forward"
#define TEST_NAME "test-egress"
#define TEST_POOL "10.231.128.0/24"
#define TEST_POOL2 "10.231.129.0/24"
/* "Outside": a /30 from the benchmarking range (RFC 2544), on a veth the test owns. */
#define OUT_IF "sptesto0"
#define OUT_HOST "198.18.77.1"
#define OUT_PEER "198.18.77.2"
/* IPv6 on the instance's pair, added by the test: the firewall must hold for IPv6 too. */
#define V6_HOST "fd5e:e9e5:77::1"
#define V6_PEER "fd5e:e9e5:77::2"
#define BLOCKED_MS 300

/* ---- small helpers ------------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int read_int(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	(void)close(fd);
	return n > 0 ? atoi(buf) : -1;
}

/* Runs a shell command; its exit status (or -1). Output goes to our stderr. */
static int sh(const char *fmt, ...) _printf_(1, 2);
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	(void)vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The output of a shell command (first 64 KiB), malloc'ed. */
static char *sh_out(const char *cmd)
{
	FILE *p = popen(cmd, "re");
	char *buf = calloc(1, 65536);
	size_t n = 0;

	if (!p || !buf) {
		if (p)
			(void)pclose(p);
		free(buf);
		return NULL;
	}
	while (n < 65535) {
		size_t k = fread(buf + n, 1, 65535 - n, p);

		if (k == 0)
			break;
		n += k;
	}
	(void)pclose(p);
	return buf;
}

static bool link_exists(const char *name)
{
	return if_nametoindex(name) != 0;
}

/* Is the link there and administratively up? */
static bool link_up(const char *name)
{
	char p[128], buf[32] = "";
	int fd;
	ssize_t n;

	(void)snprintf(p, sizeof(p), "/sys/class/net/%s/flags", name);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	(void)close(fd);
	return n > 0 && (strtoul(buf, NULL, 16) & IFF_UP);
}

static void wait_link_gone(const char *name)
{
	for (int i = 0; i < 500 && link_exists(name); i++)
		(void)usleep(10000);
	assert_false(link_exists(name));
}

/* Any link of the host whose name starts with prefix. */
static bool links_with_prefix(const char *prefix)
{
	struct if_nameindex *ifs = if_nameindex(), *i;
	bool found = false;

	if (!ifs)
		return false;
	for (i = ifs; i->if_index; i++)
		if (startswith(i->if_name, prefix))
			found = true;
	if_freenameindex(ifs);
	return found;
}

static bool nft_table_exists(const char *table)
{
	char cmd[256];

	(void)snprintf(cmd, sizeof(cmd), "nft list table inet %s >/dev/null 2>&1", table);
	return sh("%s", cmd) == 0;
}

/* Spore egress tables of live processes other than ours (another spored on this host); in
 * *ret_forward (if not NULL) the ip_forward one of them recorded (what the last egress to go
 * restores), or -1. */
static int spore_tables(int *ret_forward)
{
	_cleanup_free_ char *out = sh_out("nft list tables inet 2>/dev/null");
	int n = 0, fwd = -1;

	for (char *l = out; l && (l = strstr(l, "table inet spore_egress_")); l++) {
		char name[64], cmd[128];
		_cleanup_free_ char *t = NULL;
		char *c;
		int pid;

		if (sscanf(l, "table inet %63s", name) != 1)
			continue;
		(void)snprintf(cmd, sizeof(cmd), "nft list table inet %s", name);
		t = sh_out(cmd);
		c = t ? strstr(t, "spore-egress pid=") : NULL;
		if (c && sscanf(c, "spore-egress pid=%d", &pid) == 1 && pid != getpid() &&
		    (kill(pid, 0) == 0 || errno == EPERM))
			n++;
		c = c ? strstr(c, "ip_forward=") : NULL;
		if (c && fwd < 0)
			fwd = atoi(c + strlen("ip_forward="));
	}
	if (ret_forward)
		*ret_forward = fwd;
	return n;
}

/* ---- namespaces ---------------------------------------------------------------------------- */

/* A process in its own network namespace (lo up), as a spare is; it waits until ctl closes. */
struct child {
	pid_t pid;
	int ctl;
	ino_t netns;
};

static int child_start(struct child *c)
{
	int ready[2], ctl[2];
	char b = 0;
	struct stat st;
	char p[64];
	pid_t pid;

	if (pipe2(ready, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(ctl, O_CLOEXEC) < 0) {
		(void)close(ready[0]);
		(void)close(ready[1]);
		return -errno;
	}
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		struct ifreq ifr = { .ifr_name = "lo" };
		int s;

		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		(void)close(ready[0]);
		(void)close(ctl[1]);
		if (unshare(CLONE_NEWNET) < 0)
			_exit(1);
		s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
			_exit(1);
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		while (read(ctl[0], &b, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	(void)close(ready[1]);
	(void)close(ctl[0]);
	if (read(ready[0], &b, 1) != 1) {
		(void)close(ready[0]);
		(void)close(ctl[1]);
		(void)kill(pid, SIGKILL);
		(void)waitpid(pid, NULL, 0);
		return -ECHILD;
	}
	(void)close(ready[0]);
	c->pid = pid;
	c->ctl = ctl[1];
	(void)snprintf(p, sizeof(p), "/proc/%d/ns/net", (int)pid);
	c->netns = stat(p, &st) == 0 ? st.st_ino : 0;
	return 0;
}

static void child_stop(struct child *c)
{
	if (c->pid > 0) {
		(void)kill(c->pid, SIGKILL);
		(void)waitpid(c->pid, NULL, 0);
	}
	c->pid = 0;
	c->ctl = safe_close(c->ctl);
}

/* Does any process still have the namespace with this inode? */
static bool netns_in_use(ino_t ino)
{
	_cleanup_closedir_ DIR *d = opendir("/proc");
	struct dirent *de;

	if (!d || ino == 0)
		return false;
	while ((de = readdir(d))) {
		char p[300];
		struct stat st;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		(void)snprintf(p, sizeof(p), "/proc/%s/ns/net", de->d_name);
		if (stat(p, &st) == 0 && st.st_ino == ino)
			return true;
	}
	return false;
}

/* A socket in the namespace of pid (0: ours), non-blocking. */
static int socket_in(pid_t pid, int family, int type)
{
	_cleanup_close_ int self = -EBADF, target = -EBADF;
	char p[64];
	int fd, err;

	if (pid == 0)
		return socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	(void)snprintf(p, sizeof(p), "/proc/%d/ns/net", (int)pid);
	target = open(p, O_RDONLY | O_CLOEXEC);
	if (self < 0 || target < 0)
		return -errno;
	if (setns(target, CLONE_NEWNET) < 0)
		return -errno;
	fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	err = errno;
	if (setns(self, CLONE_NEWNET) < 0)
		abort();
	return fd < 0 ? -err : fd;
}

union sa {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	struct sockaddr_storage ss;
};

static union sa sa_make(const char *addr, uint16_t port)
{
	union sa u = { 0 };

	if (strchr(addr, ':')) {
		u.in6.sin6_family = AF_INET6;
		u.in6.sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, addr, &u.in6.sin6_addr), 1);
	} else {
		u.in.sin_family = AF_INET;
		u.in.sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, addr, &u.in.sin_addr), 1);
	}
	return u;
}

static socklen_t sa_len(const union sa *u)
{
	return u->sa.sa_family == AF_INET6 ? sizeof(u->in6) : sizeof(u->in);
}

/* A TCP listener in pid's namespace on addr (port 0: any); its port in *port. */
static int listen_in(pid_t pid, const char *addr, uint16_t *port)
{
	union sa u = sa_make(addr, 0);
	socklen_t sl = sizeof(u);
	int one = 1;
	int fd = socket_in(pid, u.sa.sa_family, SOCK_STREAM);

	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	if (u.sa.sa_family == AF_INET6)
		assert_int_equal(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)), 0);
	assert_int_equal(bind(fd, &u.sa, sa_len(&u)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, &u.sa, &sl), 0);
	*port = ntohs(u.sa.sa_family == AF_INET6 ? u.in6.sin6_port : u.in.sin_port);
	return fd;
}

/* Connects from pid's namespace to addr:port: 0, or -errno (-ETIMEDOUT when nothing answered
 * within ms: the packets were dropped). On success *ret_fd is the connected socket. */
static int try_connect(pid_t pid, const char *addr, uint16_t port, int ms, int *ret_fd)
{
	union sa u = sa_make(addr, port);
	struct pollfd pfd;
	socklen_t sl = sizeof(int);
	int fd, err = 0, r;

	fd = socket_in(pid, u.sa.sa_family, SOCK_STREAM);
	if (fd < 0)
		return fd;
	r = connect(fd, &u.sa, sa_len(&u));
	if (r < 0 && errno != EINPROGRESS) {
		err = -errno;
		(void)close(fd);
		return err;
	}
	if (r < 0) {
		pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
		r = poll(&pfd, 1, ms);
		if (r == 0) {
			(void)close(fd);
			return -ETIMEDOUT;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0 || err) {
			(void)close(fd);
			return err ? -err : -EIO;
		}
	}
	if (ret_fd)
		*ret_fd = fd;
	else
		(void)close(fd);
	return 0;
}

/* Accepts one pending connection within ms: its fd and peer, or -errno (-EAGAIN: none). */
static int accept_one(int lfd, int ms, char *peer, size_t peer_size)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	union sa u;
	socklen_t sl = sizeof(u);
	int fd;

	if (poll(&pfd, 1, ms) == 0)
		return -EAGAIN;
	fd = accept4(lfd, &u.sa, &sl, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (peer) {
		if (u.sa.sa_family == AF_INET6)
			(void)inet_ntop(AF_INET6, &u.in6.sin6_addr, peer, peer_size);
		else
			(void)inet_ntop(AF_INET, &u.in.sin_addr, peer, peer_size);
	}
	return fd;
}

/* A UDP socket in pid's namespace bound on addr:0; its port in *port. */
static int udp_in(pid_t pid, const char *addr, uint16_t *port)
{
	union sa u = sa_make(addr, 0);
	socklen_t sl = sizeof(u);
	int fd = socket_in(pid, u.sa.sa_family, SOCK_DGRAM);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, &u.sa, sa_len(&u)), 0);
	assert_int_equal(getsockname(fd, &u.sa, &sl), 0);
	*port = ntohs(u.in.sin_port);
	return fd;
}

/* Sends one datagram from pid's namespace to addr:port; did rfd receive it within ms? */
static bool udp_arrives(pid_t pid, const char *addr, uint16_t port, int rfd, int ms)
{
	union sa u = sa_make(addr, port);
	struct pollfd pfd = { .fd = rfd, .events = POLLIN };
	char b[8];
	int fd = socket_in(pid, AF_INET, SOCK_DGRAM);
	bool got;

	assert_true(fd >= 0);
	(void)sendto(fd, "x", 1, 0, &u.sa, sa_len(&u));
	(void)close(fd);
	got = poll(&pfd, 1, ms) == 1 && recv(rfd, b, sizeof(b), 0) == 1;
	return got;
}

/* The same from a given source address. */
static bool udp_from(pid_t pid, const char *src, const char *addr, uint16_t port, int rfd, int ms)
{
	union sa u = sa_make(addr, port), from = sa_make(src, 0);
	struct pollfd pfd = { .fd = rfd, .events = POLLIN };
	char b[8];
	int fd = socket_in(pid, AF_INET, SOCK_DGRAM);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, &from.sa, sa_len(&from)), 0);
	(void)sendto(fd, "x", 1, 0, &u.sa, sa_len(&u));
	(void)close(fd);
	return poll(&pfd, 1, ms) == 1 && recv(rfd, b, sizeof(b), 0) == 1;
}

/* ---- fixture ------------------------------------------------------------------------------- */

struct fixture {
	struct egress *e, *e2; /* e2: a second spored's */
	struct egress_lease *la, *lb, *lc;
	struct child a, b, c, out;
	char table[64], ifprefix[IFNAMSIZ];
	bool out_made;
	int forward_before;
	int fds[9];
};

/* Removes everything the test made; safe to call twice and on a half-built fixture. */
static void fixture_clean(struct fixture *f)
{
	for (size_t i = 0; i < ELEMENTSOF(f->fds); i++)
		f->fds[i] = safe_close(f->fds[i]);
	/* Leases released, then the egress: the other order is checked in test_shutdown_order. */
	(void)egress_release(f->e, TAKE_PTR(f->la));
	(void)egress_release(f->e, TAKE_PTR(f->lb));
	(void)egress_release(f->e2, TAKE_PTR(f->lc));
	f->e = egress_free(f->e);
	f->e2 = egress_free(f->e2);
	if (f->out_made)
		(void)sh("ip link del " OUT_IF " 2>/dev/null");
	f->out_made = false;
	child_stop(&f->a);
	child_stop(&f->b);
	child_stop(&f->c);
	child_stop(&f->out);
}

static int fixture_setup(void **state)
{
	struct fixture *f;

	*state = NULL;
	if (geteuid() != 0)
		return 0; /* the test skips, saying why */
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->a.ctl = f->b.ctl = f->c.ctl = f->out.ctl = -EBADF;
	for (size_t i = 0; i < ELEMENTSOF(f->fds); i++)
		f->fds[i] = -EBADF;
	/* What the host had before any spore egress: a table left by a killed run (of this test
	 * or a spored) recorded it, and the module restores that. */
	(void)spore_tables(&f->forward_before);
	if (f->forward_before < 0)
		f->forward_before = read_int(IP_FORWARD);
	/* Left by an earlier run that was killed. */
	(void)sh("ip link del " OUT_IF " 2>/dev/null");
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	if (!f)
		return 0;
	fixture_clean(f);
	free(f);
	return 0;
}

#define SKIP_UNLESS_ROOT(f)                                                                        \
	do {                                                                                       \
		if (!(f)) {                                                                        \
			printf("# skipped: needs root (network namespaces, veths, nftables)\n");     \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

static struct egress *new_egress(const char *name, const char *pool)
{
	struct egress *e = NULL;
	_cleanup_free_ char *err = NULL;
	int r = egress_new(&(struct egress_config){ .pool = pool, .name = name }, &e, &err);

	if (r < 0)
		fprintf(stderr, "egress_new: %s (%s)\n", strerror(-r), err ?: "no message");
	assert_int_equal(r, 0);
	assert_non_null(e);
	assert_null(err);
	return e;
}

static void assert_nothing_left(struct fixture *f)
{
	assert_false(links_with_prefix(f->ifprefix));
	assert_false(nft_table_exists(f->table));
	assert_false(link_exists(OUT_IF));
	assert_false(netns_in_use(f->a.netns));
	assert_false(netns_in_use(f->b.netns));
	assert_false(netns_in_use(f->c.netns));
	assert_false(netns_in_use(f->out.netns));
	if (spore_tables(NULL) == 0)
		assert_int_equal(read_int(IP_FORWARD), f->forward_before);
	else
		printf("# another spore egress is live on this host: ip_forward left to it\n");
}

/* ---- tests --------------------------------------------------------------------------------- */

/* No root needed: bad pools are refused before anything is touched. */
static void test_config(void **state)
{
	static const char *const bad[] = {
		"10.0.0.1/16", "10.0.0.0/31", "10.0.0.0/32", "10.0.0.0/7", "10.0.0.0",
		"10.0.0.0/",   "/16",         "10.0.0/16",   "10.0.0.0/16x", "fd00::/64",
		"10.0.0.0/-1", "",
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		struct egress *e = NULL;
		char *err = NULL;

		assert_int_equal(egress_new(&(struct egress_config){ .pool = bad[i] }, &e, &err),
				 -EINVAL);
		assert_null(e);
		assert_non_null(err);
		assert_non_null(strstr(err, "pool"));
		free(err);
		/* ret_err may be NULL */
		assert_int_equal(egress_new(&(struct egress_config){ .pool = bad[i] }, &e, NULL),
				 -EINVAL);
	}
	assert_int_equal(egress_release(NULL, NULL), 0);
	assert_null(egress_free(NULL));
}

static void test_isolation(void **state)
{
	struct fixture *f = *state;
	char peer[INET6_ADDRSTRLEN], a_peer[INET_ADDRSTRLEN], b_peer[INET_ADDRSTRLEN];
	char a_host[INET_ADDRSTRLEN], b_host[INET_ADDRSTRLEN], gw[16], p[64];
	_cleanup_free_ char *route = NULL, *devs = NULL;
	uint16_t port_out, port_lo, port_any, port_v6, port_b;
	int lfd_out, lfd_lo, lfd_any, lfd_v6, lfd_b, lfd_c, ufd_any, ufd_b, fd, r;
	uint16_t port_c, uport_any, uport_b;
	char c_peer[INET_ADDRSTRLEN];
	struct ifaddrs *ifa = NULL;
	bool have_v6;

	SKIP_UNLESS_ROOT(f);

	f->e = new_egress(TEST_NAME, TEST_POOL);
	strcpy(f->table, egress_table(f->e));
	strcpy(f->ifprefix, egress_ifprefix(f->e));
	assert_true(nft_table_exists(f->table));
	assert_int_equal(read_int(IP_FORWARD), 1);
	assert_int_equal(read_int("/proc/sys/net/ipv4/conf/all/route_localnet"), 0);

	/* Two instances and the outside. */
	assert_int_equal(child_start(&f->a), 0);
	assert_int_equal(child_start(&f->b), 0);
	assert_int_equal(child_start(&f->out), 0);
	f->out_made = true;
	assert_int_equal(sh("ip link add " OUT_IF " type veth peer name eth0 netns %d && "
			    "ip addr add " OUT_HOST "/30 dev " OUT_IF " && ip link set " OUT_IF
			    " up && nsenter -t %d -n sh -c 'ip addr add " OUT_PEER
			    "/30 dev eth0 && ip link set eth0 up'",
			    (int)f->out.pid, (int)f->out.pid),
			 0);

	assert_int_equal(egress_attach(f->e, f->a.pid, &f->la), 0);
	/* b by its namespace's fd */
	(void)snprintf(p, sizeof(p), "/proc/%d/ns/net", (int)f->b.pid);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(egress_attach_netns(f->e, fd, &f->lb), 0);
	(void)close(fd);
	assert_int_not_equal(f->la->slot, f->lb->slot);
	assert_int_equal(f->la->prefixlen, 30);
	assert_true(startswith(f->la->host_ifname, f->ifprefix));
	assert_true(link_exists(f->la->host_ifname));
	assert_true(link_exists(f->lb->host_ifname));
	(void)inet_ntop(AF_INET, &f->la->peer_addr, a_peer, sizeof(a_peer));
	(void)inet_ntop(AF_INET, &f->lb->peer_addr, b_peer, sizeof(b_peer));
	(void)inet_ntop(AF_INET, &f->la->host_addr, a_host, sizeof(a_host));
	(void)inet_ntop(AF_INET, &f->lb->host_addr, b_host, sizeof(b_host));
	assert_true(startswith(a_peer, "10.231.128."));
	/* A second attach to the same namespace: its eth0 exists. */
	{
		struct egress_lease *l = NULL;

		assert_int_equal(egress_attach(f->e, f->a.pid, &l), -EEXIST);
		assert_null(l);
		assert_int_equal(egress_attach(f->e, getpid(), &l), -EINVAL);
		assert_int_equal(egress_attach(f->e, 0, &l), -EINVAL);
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(egress_attach_netns(f->e, fd, &l), -EINVAL);
		(void)close(fd);
		assert_null(l);
	}

	/* Inside a: eth0, and the default route via the host end. */
	(void)snprintf(p, sizeof(p), "cat /proc/%d/net/dev", (int)f->a.pid);
	devs = sh_out(p);
	assert_non_null(devs);
	assert_non_null(strstr(devs, "eth0:"));
	(void)snprintf(p, sizeof(p), "cat /proc/%d/net/route", (int)f->a.pid);
	route = sh_out(p);
	assert_non_null(route);
	(void)snprintf(gw, sizeof(gw), "%08X", f->la->host_addr.s_addr);
	{
		char want[64];

		(void)snprintf(want, sizeof(want), "eth0\t00000000\t%s", gw);
		assert_non_null(strstr(route, want));
	}

	/* Servers: outside; on the host's loopback; on every address of the host; on the
	 * host's IPv6 (added below on a's pair); in instance b. */
	lfd_out = f->fds[0] = listen_in(f->out.pid, OUT_PEER, &port_out);
	lfd_lo = f->fds[1] = listen_in(0, "127.0.0.1", &port_lo);
	lfd_any = f->fds[2] = listen_in(0, "0.0.0.0", &port_any);
	lfd_b = f->fds[3] = listen_in(f->b.pid, "0.0.0.0", &port_b);

	/* 1. a and b reach the outside, masqueraded: the server sees the host's address. */
	assert_int_equal(try_connect(f->a.pid, OUT_PEER, port_out, 3000, NULL), 0);
	fd = accept_one(lfd_out, 3000, peer, sizeof(peer));
	assert_true(fd >= 0);
	(void)close(fd);
	assert_string_equal(peer, OUT_HOST);
	assert_int_equal(try_connect(f->b.pid, OUT_PEER, port_out, 3000, NULL), 0);
	fd = accept_one(lfd_out, 3000, peer, sizeof(peer));
	assert_true(fd >= 0);
	(void)close(fd);
	assert_string_equal(peer, OUT_HOST);

	/* Control: the host's 0.0.0.0 server is reachable from a namespace that is not an
	 * instance's (the outside), so what an instance cannot reach below is the firewall's
	 * doing. */
	assert_int_equal(try_connect(f->out.pid, OUT_HOST, port_any, 3000, NULL), 0);
	fd = accept_one(lfd_any, 3000, NULL, 0);
	assert_true(fd >= 0);
	(void)close(fd);

	/* 2. Not the host's loopback: 127.0.0.1 is the instance's own (refused there), and the
	 * host's server sees nothing. */
	r = try_connect(f->a.pid, "127.0.0.1", port_lo, BLOCKED_MS, NULL);
	assert_int_not_equal(r, 0);
	assert_int_equal(accept_one(lfd_lo, 0, NULL, 0), -EAGAIN);
	assert_int_equal(try_connect(f->a.pid, a_host, port_lo, BLOCKED_MS, NULL), -ETIMEDOUT);

	/* 3. No address of the host on any port: every IPv4 address it has (eth0's, the
	 * outside veth's, both host ends), the server bound on 0.0.0.0. */
	assert_int_equal(getifaddrs(&ifa), 0);
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		char addr[INET_ADDRSTRLEN];

		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || streq(i->ifa_name, "lo"))
			continue;
		(void)inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, addr,
				sizeof(addr));
		printf("# a -> host %s:%u (%s)\n", addr, port_any, i->ifa_name);
		assert_int_equal(try_connect(f->a.pid, addr, port_any, BLOCKED_MS, NULL),
				 -ETIMEDOUT);
	}
	freeifaddrs(ifa);
	assert_int_equal(accept_one(lfd_any, 0, NULL, 0), -EAGAIN);

	/* ... nor over IPv6 (the table is family inet): global addresses on a's pair, no DAD. */
	have_v6 = sh("ip -6 addr add " V6_HOST "/64 dev %s nodad 2>/dev/null && "
		     "nsenter -t %d -n ip -6 addr add " V6_PEER "/64 dev eth0 nodad",
		     f->la->host_ifname, (int)f->a.pid) == 0;
	if (have_v6) {
		lfd_v6 = f->fds[4] = listen_in(0, "::", &port_v6);
		/* Control: the server answers on that address from the host itself. */
		assert_int_equal(try_connect(0, V6_HOST, port_v6, 3000, NULL), 0);
		fd = accept_one(lfd_v6, 3000, NULL, 0);
		assert_true(fd >= 0);
		(void)close(fd);
		assert_int_equal(try_connect(f->a.pid, V6_HOST, port_v6, BLOCKED_MS, NULL),
				 -ETIMEDOUT);
		assert_int_equal(accept_one(lfd_v6, 0, NULL, 0), -EAGAIN);
	} else {
		printf("# IPv6 unavailable here: IPv6 check skipped\n");
	}

	/* 4. Not the other instance: b's server, at b's address (control: b reaches it). */
	assert_int_equal(try_connect(f->b.pid, b_peer, port_b, 3000, NULL), 0);
	fd = accept_one(lfd_b, 3000, NULL, 0);
	assert_true(fd >= 0);
	(void)close(fd);
	assert_int_equal(try_connect(f->a.pid, b_peer, port_b, BLOCKED_MS, NULL), -ETIMEDOUT);
	assert_int_equal(try_connect(f->a.pid, b_host, port_b, BLOCKED_MS, NULL), -ETIMEDOUT);
	/* ... and the host opens nothing into an instance either. */
	assert_int_equal(try_connect(0, b_peer, port_b, BLOCKED_MS, NULL), -ETIMEDOUT);
	assert_int_equal(accept_one(lfd_b, 0, NULL, 0), -EAGAIN);

	/* ... nor UDP, either way (no connection for the input/output drops to hide behind). */
	ufd_any = f->fds[5] = udp_in(0, "0.0.0.0", &uport_any);
	ufd_b = f->fds[6] = udp_in(f->b.pid, "0.0.0.0", &uport_b);
	assert_true(udp_arrives(f->out.pid, OUT_HOST, uport_any, ufd_any, 3000)); /* control */
	assert_true(udp_arrives(f->b.pid, b_peer, uport_b, ufd_b, 3000));         /* control */
	assert_false(udp_arrives(f->a.pid, a_host, uport_any, ufd_any, BLOCKED_MS));
	assert_false(udp_arrives(f->a.pid, b_peer, uport_b, ufd_b, BLOCKED_MS));
	assert_false(udp_arrives(0, b_peer, uport_b, ufd_b, BLOCKED_MS));

	/* ... and a's packets leave only with a's own address: b's, added on a's eth0 (the test
	 * is root in there; an instance is not), is dropped (control: a's own goes out). */
	{
		uint16_t uport_out;
		int ufd_out = f->fds[8] = udp_in(f->out.pid, OUT_PEER, &uport_out);

		assert_true(udp_from(f->a.pid, a_peer, OUT_PEER, uport_out, ufd_out, 3000));
		assert_int_equal(sh("nsenter -t %d -n ip addr add %s/32 dev eth0", (int)f->a.pid,
				    b_peer),
				 0);
		assert_false(udp_from(f->a.pid, b_peer, OUT_PEER, uport_out, ufd_out, BLOCKED_MS));
	}

	/* 5. Nor an instance of another spored on the host (its own egress, name and pool),
	 * which reaches the outside too. */
	f->e2 = new_egress(TEST_NAME "-2", TEST_POOL2);
	assert_int_equal(child_start(&f->c), 0);
	assert_int_equal(egress_attach(f->e2, f->c.pid, &f->lc), 0);
	(void)inet_ntop(AF_INET, &f->lc->peer_addr, c_peer, sizeof(c_peer));
	lfd_c = f->fds[7] = listen_in(f->c.pid, "0.0.0.0", &port_c);
	assert_int_equal(try_connect(f->c.pid, OUT_PEER, port_out, 3000, NULL), 0);
	fd = accept_one(lfd_out, 3000, peer, sizeof(peer));
	assert_true(fd >= 0);
	(void)close(fd);
	assert_string_equal(peer, OUT_HOST);
	assert_int_equal(try_connect(f->a.pid, c_peer, port_c, BLOCKED_MS, NULL), -ETIMEDOUT);
	assert_int_equal(try_connect(f->c.pid, b_peer, port_b, BLOCKED_MS, NULL), -ETIMEDOUT);
	assert_int_equal(accept_one(lfd_c, 0, NULL, 0), -EAGAIN);
	assert_int_equal(accept_one(lfd_b, 0, NULL, 0), -EAGAIN);

	/* 6. Release a while it lives: cut off at once (its host end down, deleted later with
	 * its namespace); the outside still answers b. */
	{
		char name[IFNAMSIZ];

		strcpy(name, f->la->host_ifname);
		assert_int_equal(egress_release(f->e, TAKE_PTR(f->la)), 0);
		assert_int_equal(egress_release(f->e, NULL), 0);
		assert_false(link_up(name));
		r = try_connect(f->a.pid, OUT_PEER, port_out, BLOCKED_MS, NULL);
		assert_int_not_equal(r, 0);
		assert_int_equal(accept_one(lfd_out, 0, NULL, 0), -EAGAIN);
	}
	assert_int_equal(try_connect(f->b.pid, OUT_PEER, port_out, 3000, NULL), 0);
	fd = accept_one(lfd_out, 3000, NULL, 0);
	assert_true(fd >= 0);
	(void)close(fd);

	/* 7. Everything goes. */
	fixture_clean(f);
	assert_nothing_left(f);
}

/* egress_free() before the leases are released; a lease whose instance died. */
static void test_shutdown_order(void **state)
{
	struct fixture *f = *state;
	char name[IFNAMSIZ];

	SKIP_UNLESS_ROOT(f);
	f->e = new_egress(TEST_NAME, TEST_POOL);
	strcpy(f->table, egress_table(f->e));
	strcpy(f->ifprefix, egress_ifprefix(f->e));
	assert_int_equal(child_start(&f->a), 0);
	assert_int_equal(child_start(&f->b), 0);
	assert_int_equal(egress_attach(f->e, f->a.pid, &f->la), 0);
	assert_int_equal(egress_attach(f->e, f->b.pid, &f->lb), 0);

	/* b's instance dies: its pair goes with its namespace; releasing it is still fine. */
	strcpy(name, f->lb->host_ifname);
	child_stop(&f->b);
	wait_link_gone(name);
	assert_int_equal(egress_release(f->e, TAKE_PTR(f->lb)), 0);

	/* The egress goes first, with a's lease still held: a's veth goes with it. */
	strcpy(name, f->la->host_ifname);
	f->e = egress_free(f->e);
	assert_false(link_exists(name));
	assert_false(nft_table_exists(f->table));
	assert_int_equal(egress_release(NULL, TAKE_PTR(f->la)), 0);

	fixture_clean(f);
	assert_nothing_left(f);
}

/* A /30 pool has one slot: full, released while its instance lives (the slot drains), freed
 * once the instance's namespace has gone; an instance that died before its attach. */
static void test_slots(void **state)
{
	struct fixture *f = *state;
	struct egress_lease *l = NULL;
	char name[IFNAMSIZ];
	pid_t dead;

	SKIP_UNLESS_ROOT(f);
	f->e = new_egress(TEST_NAME, "10.231.131.0/30");
	strcpy(f->table, egress_table(f->e));
	strcpy(f->ifprefix, egress_ifprefix(f->e));
	assert_int_equal(child_start(&f->a), 0);
	assert_int_equal(child_start(&f->b), 0);

	assert_int_equal(egress_attach(f->e, f->a.pid, &f->la), 0);
	assert_int_equal(f->la->slot, 0);
	assert_int_equal(ntohl(f->la->host_addr.s_addr), 0x0ae78301); /* 10.231.131.1 */
	assert_int_equal(ntohl(f->la->peer_addr.s_addr), 0x0ae78302);
	assert_int_equal(egress_attach(f->e, f->b.pid, &l), -ENOSPC);
	/* released, a alive: the slot drains */
	strcpy(name, f->la->host_ifname);
	assert_int_equal(egress_release(f->e, TAKE_PTR(f->la)), 0);
	assert_true(link_exists(name));
	assert_int_equal(egress_attach(f->e, f->b.pid, &l), -ENOSPC);
	/* a dies: the kernel deletes its pair, the slot comes back */
	child_stop(&f->a);
	wait_link_gone(name);
	assert_int_equal(egress_attach(f->e, f->b.pid, &f->lb), 0);
	assert_int_equal(f->lb->slot, 0);
	assert_true(link_up(f->lb->host_ifname));
	assert_int_equal(egress_release(f->e, TAKE_PTR(f->lb)), 0);

	/* No such process; a reaped one. */
	dead = fork();
	assert_true(dead >= 0);
	if (dead == 0)
		_exit(0);
	assert_int_equal(waitpid(dead, NULL, 0), dead);
	assert_int_equal(egress_attach(f->e, dead, &l), -ESRCH);
	assert_null(l);

	fixture_clean(f);
	assert_nothing_left(f);
}

/* A spored killed with two egresses (one with a veth): the next egress_new() of the same name
 * removes its table and veth and the other dead one's table; ip_forward is restored to what it
 * was before the killed one started. */
static void test_stale(void **state)
{
	struct fixture *f = *state;
	int sync[2];
	char buf[2 * IFNAMSIZ + 64] = "";
	char stale_if[IFNAMSIZ], other_table[64];
	ssize_t n;
	pid_t pid;
	int st;

	SKIP_UNLESS_ROOT(f);
	assert_int_equal(child_start(&f->a), 0);
	assert_int_equal(pipe2(sync, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct egress *e1 = NULL, *e2 = NULL;
		struct egress_lease *l = NULL;

		(void)close(sync[0]);
		if (egress_new(&(struct egress_config){ .pool = TEST_POOL, .name = TEST_NAME },
			       &e1, NULL) < 0 ||
		    egress_new(&(struct egress_config){ .pool = TEST_POOL2,
							.name = TEST_NAME "-other" },
			       &e2, NULL) < 0 ||
		    egress_attach(e1, f->a.pid, &l) < 0)
			_exit(1);
		(void)dprintf(sync[1], "%s %s\n", l->host_ifname, egress_table(e2));
		(void)raise(SIGKILL); /* killed: nothing freed */
		_exit(2);
	}
	(void)close(sync[1]);
	n = read(sync[0], buf, sizeof(buf) - 1);
	(void)close(sync[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(n > 0);
	assert_int_equal(sscanf(buf, "%15s %63s", stale_if, other_table), 2);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_true(link_exists(stale_if));
	assert_true(nft_table_exists(other_table));
	assert_int_equal(read_int(IP_FORWARD), 1);

	/* The same name again (and the killed one's pool): stale things go. */
	f->e = new_egress(TEST_NAME, TEST_POOL);
	strcpy(f->table, egress_table(f->e));
	strcpy(f->ifprefix, egress_ifprefix(f->e));
	assert_false(link_exists(stale_if));
	assert_false(nft_table_exists(other_table));
	assert_true(nft_table_exists(f->table));
	/* The instance can be attached again (its old pair is gone). */
	assert_int_equal(egress_attach(f->e, f->a.pid, &f->la), 0);

	fixture_clean(f);
	assert_nothing_left(f);
}

/* A live egress of the same name, an overlapping pool, a pool on the host's own network. */
static void test_clash(void **state)
{
	struct fixture *f = *state;
	struct egress *e = NULL;
	char *err = NULL;
	char pool[32];
	int r;

	SKIP_UNLESS_ROOT(f);
	f->e = new_egress(TEST_NAME, TEST_POOL);
	strcpy(f->table, egress_table(f->e));
	strcpy(f->ifprefix, egress_ifprefix(f->e));

	r = egress_new(&(struct egress_config){ .pool = "10.231.130.0/24", .name = TEST_NAME },
		       &e, &err);
	assert_int_equal(r, -EBUSY);
	assert_non_null(strstr(err, "in use"));
	err = (free(err), NULL);

	r = egress_new(&(struct egress_config){ .pool = "10.231.128.128/25", .name = "x" }, &e,
		       &err);
	assert_int_equal(r, -EADDRINUSE);
	assert_non_null(strstr(err, "overlaps"));
	err = (free(err), NULL);
	r = egress_new(&(struct egress_config){ .pool = "10.231.0.0/16", .name = "x" }, &e, &err);
	assert_int_equal(r, -EADDRINUSE);
	err = (free(err), NULL);

	/* The host's own network (the default route's /24 and its local /32) */
	{
		_cleanup_free_ char *out = sh_out("ip -4 -o addr show scope global | "
						  "awk '{print $4; exit}'");
		struct in_addr a;
		unsigned len;
		char *slash = out ? strchr(out, '/') : NULL;

		if (slash && sscanf(slash, "/%u", &len) == 1 && len >= 8 && len <= 30) {
			*slash = '\0';
			assert_int_equal(inet_pton(AF_INET, out, &a), 1);
			a.s_addr &= htonl(UINT32_MAX << (32 - len));
			(void)snprintf(pool, sizeof(pool), "%s/%u", inet_ntoa(a), len);
			r = egress_new(&(struct egress_config){ .pool = pool, .name = "y" }, &e,
				       &err);
			assert_int_equal(r, -EADDRINUSE);
			assert_non_null(strstr(err, "route"));
			err = (free(err), NULL);
		} else {
			printf("# no global IPv4 address: host overlap check skipped\n");
		}
	}
	assert_null(e);
	/* Nothing of the refused ones is left; ours still works. */
	assert_true(nft_table_exists(f->table));
	fixture_clean(f);
	assert_nothing_left(f);
}

/* ---- bench --------------------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("%-34s n=%d median %" PRIu64 " us  min %" PRIu64 "  p90 %" PRIu64 "  max %" PRIu64
	       "\n",
	       what, n, v[n / 2] / 1000, v[0] / 1000, v[n * 9 / 10] / 1000, v[n - 1] / 1000);
}

/* Per run: a fresh instance namespace, egress_attach(); then egress_release() while the
 * instance lives (every other run) or right after it was killed and reaped (spored's usual
 * order). */
static int bench(int runs)
{
	uint64_t *att, *rel_alive, *rel_dead, t0, t_new, t_free;
	int n_alive = 0, n_dead = 0;
	struct egress *e = NULL;
	char *err = NULL;
	int r;

	if (geteuid() != 0) {
		fprintf(stderr, "bench needs root\n");
		return 77;
	}
	if (runs < 4 || runs > 100000)
		runs = 100;
	att = calloc(runs, sizeof(*att));
	rel_alive = calloc(runs, sizeof(*rel_alive));
	rel_dead = calloc(runs, sizeof(*rel_dead));
	if (!att || !rel_alive || !rel_dead)
		return 1;
	t0 = now_ns();
	r = egress_new(&(struct egress_config){ .pool = TEST_POOL, .name = TEST_NAME "-bench" },
		       &e, &err);
	t_new = now_ns() - t0;
	if (r < 0) {
		fprintf(stderr, "egress_new: %s\n", err ?: strerror(-r));
		free(err);
		return 1;
	}
	for (int i = 0; i < runs; i++) {
		struct child c = { .ctl = -EBADF };
		struct egress_lease *l = NULL;
		bool alive = i % 2 == 0;

		if (child_start(&c) < 0)
			return 1;
		t0 = now_ns();
		r = egress_attach(e, c.pid, &l);
		att[i] = now_ns() - t0;
		if (r < 0) {
			fprintf(stderr, "egress_attach: %s\n", strerror(-r));
			child_stop(&c);
			break;
		}
		if (!alive)
			child_stop(&c);
		t0 = now_ns();
		r = egress_release(e, l);
		if (alive)
			rel_alive[n_alive++] = now_ns() - t0;
		else
			rel_dead[n_dead++] = now_ns() - t0;
		child_stop(&c);
		if (r < 0) {
			fprintf(stderr, "egress_release: %s\n", strerror(-r));
			break;
		}
	}
	t0 = now_ns();
	e = egress_free(e);
	t_free = now_ns() - t0;
	printf("egress_new %" PRIu64 " us, egress_free %" PRIu64 " us\n", t_new / 1000,
	       t_free / 1000);
	report("egress_attach", att, runs);
	report("egress_release, instance alive", rel_alive, n_alive);
	report("egress_release, instance reaped", rel_dead, n_dead);
	free(att);
	free(rel_alive);
	free(rel_dead);
	return 0;
}

int main(int argc, char *argv[])
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test_setup_teardown(test_isolation, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_order, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_slots, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_stale, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_clash, fixture_setup, fixture_teardown),
	};

	if (argc > 1 && streq(argv[1], "--bench"))
		return bench(argc > 2 ? atoi(argv[2]) : 100);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
