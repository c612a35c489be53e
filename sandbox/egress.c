/* SPDX-License-Identifier: MIT */
/* Network "egress": a veth pair and NAT per instance, set up by spored in the host's network
 * namespace. The links, addresses and routes go through libnl (route netlink); the firewall is
 * one nftables table (family inet, so IPv4 and IPv6 alike) written as rule text for
 * libnftables, which applies it as one transaction. docs/NETWORK.md has the design. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/nsfs.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <nftables/libnftables.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "egress.h"
#include "util/cleanup.h"

#define TABLE_PREFIX "spore_egress_"
#define COMMENT_TAG "spore-egress"
#define IP_FORWARD "/proc/sys/net/ipv4/ip_forward"
#define SLOT_BITS 2 /* a /30 per instance */
/* Every host end of one egress is in netdev group GROUP_BASE | hash: one RTM_DELLINK by group
 * deletes them all in one batch (the kernel's RCU waits are paid once, not per link). */
#define GROUP_BASE 0x5e000000u

struct egress {
	char table[sizeof(TABLE_PREFIX) + 6];
	char ifprefix[IFNAMSIZ];
	uint32_t hash;        /* 24 bits of the name's hash, in both names */
	char pool_str[sizeof("255.255.255.255/32")];
	uint32_t pool;        /* host byte order */
	unsigned pool_len;
	uint32_t n_slots, cursor;
	uint8_t *used;        /* bitmap of slots held (draining ones included) */
	uint8_t *draining;    /* released while their host end still existed: see slot_retire() */
	struct nl_sock *nl;   /* route netlink, in spored's namespace */
	int self_netns;       /* spored's namespace, to switch back to */
	ino_t self_netns_ino;
	int forward_orig;     /* ip_forward before the first spore egress of the host; -1: unknown */
	uint32_t group;       /* netdev group of the host ends */
	bool group_used;      /* a host end was made (or a stale one may exist) */
	bool table_installed;
};

static bool bit_get(const uint8_t *b, uint32_t i)
{
	return b[i / 8] & (1u << (i % 8));
}

static void bit_set(uint8_t *b, uint32_t i, bool v)
{
	if (v)
		b[i / 8] |= (uint8_t)(1u << (i % 8));
	else
		b[i / 8] &= (uint8_t)~(1u << (i % 8));
}

/* One spore egress table found on the host. */
struct table_info {
	char name[sizeof(TABLE_PREFIX) + 6];
	uint32_t hash;
	pid_t pid;
	uint32_t pool;
	unsigned pool_len;
	int forward; /* -1: not recorded */
};

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_sock *, nl_socket_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_cache *, nl_cache_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_addr *, nl_addr_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_link *, rtnl_link_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_addr *, rtnl_addr_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_route *, rtnl_route_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nft_ctx *, nft_ctx_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct egress *, egress_free);

static void seterr(char **ret_err, const char *fmt, ...) _printf_(2, 3);
static void seterr(char **ret_err, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (!ret_err)
		return;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	*ret_err = s;
}

/* libnl returns -NLE_*; we return -errno. */
static int nl_to_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_PERM:
	case NLE_NOACCESS:
		return -EPERM;
	case NLE_OBJ_NOTFOUND:
	case NLE_NODEV:
		return -ENODEV;
	case NLE_EXIST:
		return -EEXIST;
	case NLE_INVAL:
	case NLE_MISSING_ATTR:
	case NLE_RANGE:
		return -EINVAL;
	case NLE_OPNOTSUPP:
		return -EOPNOTSUPP;
	case NLE_AF_NOSUPPORT:
		return -EAFNOSUPPORT;
	case NLE_BUSY:
		return -EBUSY;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_INTR:
		return -EINTR;
	case NLE_NOADDR:
		return -EADDRNOTAVAIL;
	case NLE_MSGSIZE:
		return -EMSGSIZE;
	default:
		return -EIO;
	}
}

/* ---- names, pool ---- */

/* FNV-1a, 32 bits: a stable, well-spread name for any string. */
static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 16777619u;
	}
	return h;
}

static int parse_cidr(const char *s, uint32_t *ret_addr, unsigned *ret_len)
{
	char buf[sizeof("255.255.255.255")];
	const char *slash = strchr(s, '/');
	struct in_addr a;
	unsigned long len;
	char *end;

	if (!slash || (size_t)(slash - s) >= sizeof(buf) || slash == s)
		return -EINVAL;
	memcpy(buf, s, slash - s);
	buf[slash - s] = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	if (!(slash[1] >= '0' && slash[1] <= '9'))
		return -EINVAL;
	errno = 0;
	len = strtoul(slash + 1, &end, 10);
	if (errno || *end || len > 32)
		return -EINVAL;
	*ret_addr = ntohl(a.s_addr);
	*ret_len = (unsigned)len;
	return 0;
}

static uint32_t mask_of(unsigned len)
{
	return len == 0 ? 0 : UINT32_MAX << (32 - len);
}

/* Do a/alen and b/blen share an address? */
static bool cidr_overlap(uint32_t a, unsigned alen, uint32_t b, unsigned blen)
{
	uint32_t m = mask_of(alen < blen ? alen : blen);

	return (a & m) == (b & m);
}

static void format_cidr(char *buf, size_t n, uint32_t addr, unsigned len)
{
	struct in_addr a = { .s_addr = htonl(addr) };
	char s[INET_ADDRSTRLEN];

	(void)inet_ntop(AF_INET, &a, s, sizeof(s));
	(void)snprintf(buf, n, "%s/%u", s, len);
}

static void slot_ifname(const struct egress *e, uint32_t slot, char buf[static IFNAMSIZ])
{
	/* "sp" + 6 + "h" + at most 6 (a /8 pool has 2^22 slots): 15 characters. */
	(void)snprintf(buf, IFNAMSIZ, "sp%06" PRIx32 "h%" PRIx32, e->hash & 0xffffff,
		       slot & 0x3fffff);
}

/* ---- /proc/sys ---- */

static int read_int_file(const char *path, int *ret)
{
	_cleanup_close_ int fd = -EBADF;
	char buf[32];
	ssize_t n;
	char *end;
	long v;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n'))
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

static int write_int_file(const char *path, int v)
{
	_cleanup_close_ int fd = -EBADF;
	char buf[32];
	int n;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%d\n", v);
	if (write(fd, buf, n) != n)
		return errno ? -errno : -EIO;
	return 0;
}

/* ---- nftables ---- */

/* Runs cmd (nft syntax) as one transaction. ret_out: the listing, if wanted. On failure
 * *ret_err quotes nft's first error line. */
static int nft_run(const char *cmd, char **ret_out, char **ret_err)
{
	_cleanup_(nft_ctx_freep) struct nft_ctx *nft = NULL;
	char *out;

	nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!nft)
		return -ENOMEM;
	if (nft_ctx_buffer_output(nft) < 0 || nft_ctx_buffer_error(nft) < 0)
		return -ENOMEM;
	if (nft_run_cmd_from_buffer(nft, cmd) != 0) {
		const char *msg = nft_ctx_get_error_buffer(nft);
		size_t n = msg ? strcspn(msg, "\n") : 0;

		seterr(ret_err, "nftables: %.*s", (int)n, n ? msg : "failed");
		return -EIO;
	}
	if (ret_out) {
		out = strdup(nft_ctx_get_output_buffer(nft) ?: "");
		if (!out)
			return -ENOMEM;
		*ret_out = out;
	}
	return 0;
}

/* Parses the comment of one of our tables: COMMENT_TAG " pid=P pool=A/L ip_forward=F". */
static int parse_table_comment(const char *listing, struct table_info *t)
{
	char pool[sizeof("255.255.255.255/32")];
	const char *c;
	int pid, fwd;

	c = strstr(listing, "comment \"" COMMENT_TAG " ");
	if (!c)
		return -ENOENT;
	c += strlen("comment \"" COMMENT_TAG " ");
	if (sscanf(c, "pid=%d pool=%18[0-9./] ip_forward=%d", &pid, pool, &fwd) != 3)
		return -EINVAL;
	if (pid <= 0 || parse_cidr(pool, &t->pool, &t->pool_len) < 0)
		return -EINVAL;
	t->pid = pid;
	t->forward = fwd == 0 || fwd == 1 ? fwd : -1;
	return 0;
}

/* Is name one of ours: TABLE_PREFIX and 6 lowercase hex digits (the name's hash)? */
static bool table_name_ours(const char *name, uint32_t *ret_hash)
{
	const char *h = name + strlen(TABLE_PREFIX);

	if (!startswith(name, TABLE_PREFIX) || strlen(h) != 6 || strspn(h, "0123456789abcdef") != 6)
		return false;
	*ret_hash = (uint32_t)strtoul(h, NULL, 16);
	return true;
}

/* Every inet table named like ours, with what its comment recorded (a table whose comment does
 * not parse has pid 0, so it counts as stale; one that went away meanwhile is left out). */
static int list_tables(struct table_info **ret, size_t *ret_n, char **ret_err)
{
	_cleanup_free_ struct table_info *v = NULL;
	_cleanup_free_ char *out = NULL;
	size_t n = 0;
	int r;

	r = nft_run("list tables inet", &out, ret_err);
	if (r < 0)
		return r;
	for (char *line = out, *next; line && *line; line = next) {
		_cleanup_free_ char *cmd = NULL, *listing = NULL;
		struct table_info *nv, t = { .forward = -1 };

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!startswith(line, "table inet ") ||
		    !table_name_ours(line + strlen("table inet "), &t.hash))
			continue;
		strcpy(t.name, line + strlen("table inet "));
		if (asprintf(&cmd, "list table inet %s", t.name) < 0)
			return -ENOMEM;
		r = nft_run(cmd, &listing, NULL);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			continue;
		(void)parse_table_comment(listing, &t);
		nv = reallocarray(v, n + 1, sizeof(*v));
		if (!nv)
			return -ENOMEM;
		v = nv;
		v[n++] = t;
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

static bool pid_alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static int table_delete(const char *name, char **ret_err)
{
	_cleanup_free_ char *cmd = NULL;

	/* "add" first makes the "delete" succeed when the table is already gone. */
	if (asprintf(&cmd, "add table inet %s\ndelete table inet %s\n", name, name) < 0)
		return -ENOMEM;
	return nft_run(cmd, NULL, ret_err);
}

/* The table, replacing a stale one of the same name in the same transaction.
 *
 * input/output: nothing arriving on an instance's veth reaches the host (its addresses, its
 * loopback, spored's port; DNS included), and the host opens nothing into an instance.
 * forward: instances reach the world, not each other (nor the instances of another spored,
 * whose table drops what goes into its veths), not the pool, not link-local (cloud metadata),
 * and only from their own address (the fib check: a source must route back through the veth
 * it came in by); only replies go in. postrouting: the pool is masqueraded behind the host's outgoing address. */
static int table_install(const struct egress *e, int forward_orig, char **ret_err)
{
	_cleanup_free_ char *cmd = NULL;
	const char *t = e->table, *p = e->pool_str;
	char ifs[IFNAMSIZ + 2];

	(void)snprintf(ifs, sizeof(ifs), "%sh*", e->ifprefix);
	if (asprintf(&cmd,
		     "add table inet %1$s\n"
		     "delete table inet %1$s\n"
		     "table inet %1$s {\n"
		     "  comment \"" COMMENT_TAG " pid=%3$d pool=%4$s ip_forward=%5$d\"\n"
		     "  chain input {\n"
		     "    type filter hook input priority filter - 10; policy accept;\n"
		     "    iifname \"%2$s\" drop\n"
		     "  }\n"
		     "  chain output {\n"
		     "    type filter hook output priority filter - 10; policy accept;\n"
		     "    oifname \"%2$s\" ct state established,related accept\n"
		     "    oifname \"%2$s\" drop\n"
		     "  }\n"
		     "  chain forward {\n"
		     "    type filter hook forward priority filter - 10; policy accept;\n"
		     "    oifname \"%2$s\" ct state established,related accept\n"
		     "    oifname \"%2$s\" drop\n"
		     "    iifname \"%2$s\" fib saddr . iif oif missing drop\n"
		     "    iifname \"%2$s\" ip saddr %4$s ip daddr != { %4$s, 169.254.0.0/16, "
		     "224.0.0.0/4, 255.255.255.255 } accept\n"
		     "    iifname \"%2$s\" drop\n"
		     "  }\n"
		     "  chain postrouting {\n"
		     "    type nat hook postrouting priority srcnat; policy accept;\n"
		     "    oifname != \"%2$s\" ip saddr %4$s masquerade\n"
		     "  }\n"
		     "}\n",
		     t, ifs, (int)getpid(), p, forward_orig < 0 ? 0 : forward_orig) < 0)
		return -ENOMEM;
	return nft_run(cmd, NULL, ret_err);
}

/* ---- links ---- */

/* Every link of the group, in one batch (the peers go with their host ends). Deleting links
 * costs the kernel's RCU grace periods, 20-35 ms on our VM, in the caller's syscall, about
 * the same for one link as for twenty: only egress_new() (stale links) and egress_free()
 * delete; a release takes its link down instead. */
static int links_delete_group(struct nl_sock *nl, uint32_t group)
{
	struct nl_msg *msg;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	int r;

	msg = nlmsg_alloc_simple(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK);
	if (!msg)
		return -ENOMEM;
	if (nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
	    nla_put_u32(msg, IFLA_GROUP, group) < 0) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	r = nl_send_auto(nl, msg);
	nlmsg_free(msg);
	if (r >= 0)
		r = nl_wait_for_ack(nl);
	if (r < 0) {
		r = nl_to_errno(r);
		return r == -ENODEV ? 0 : r; /* an empty group */
	}
	return 0;
}

/* Sets or clears IFF_UP of the link ifindex, or, ifindex 0, of the link called name (looked up
 * by the kernel: no window for an index to be reused). Down, a host end cuts off whatever is
 * behind it at once (no carrier on the pair, the host's routes through it gone): 30-60 us,
 * against 20-35 ms for a delete. */
static int link_set_up(struct nl_sock *nl, int ifindex, const char *name, bool up)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *l = NULL, *change = NULL;
	int r;

	l = rtnl_link_alloc();
	change = rtnl_link_alloc();
	if (!l || !change)
		return -ENOMEM;
	if (ifindex > 0)
		rtnl_link_set_ifindex(l, ifindex);
	else
		rtnl_link_set_name(change, name);
	if (up)
		rtnl_link_set_flags(change, IFF_UP);
	else
		rtnl_link_unset_flags(change, IFF_UP);
	r = rtnl_link_change(nl, l, change, 0);
	return r < 0 ? nl_to_errno(r) : 0;
}

/* A pool must not overlap a route of the host (any table, so the local /32 of every address
 * counts) that is as specific as the pool or more: instances' addresses would be ambiguous. */
static int check_routes(struct nl_sock *nl, uint32_t pool, unsigned len, char **ret_err)
{
	_cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
	int r;

	r = rtnl_route_alloc_cache(nl, AF_INET, 0, &cache);
	if (r < 0)
		return nl_to_errno(r);
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct nl_addr *dst = rtnl_route_get_dst((struct rtnl_route *)o);
		char have[32], want[32];
		uint32_t a;
		unsigned alen;

		if (!dst || nl_addr_get_family(dst) != AF_INET || nl_addr_get_len(dst) != 4)
			continue;
		alen = nl_addr_get_prefixlen(dst);
		if (alen < len)
			continue;
		memcpy(&a, nl_addr_get_binary_addr(dst), 4);
		a = ntohl(a);
		if (!cidr_overlap(a, alen, pool, len))
			continue;
		format_cidr(have, sizeof(have), a, alen);
		format_cidr(want, sizeof(want), pool, len);
		seterr(ret_err, "egress: pool '%s' overlaps the host's route to %s", want, have);
		return -EADDRINUSE;
	}
	return 0;
}

/* ---- egress_new / egress_free ---- */

struct egress *egress_free(struct egress *e)
{
	if (!e)
		return NULL;
	if (e->nl && e->group_used)
		(void)links_delete_group(e->nl, e->group);
	if (e->table_installed) {
		_cleanup_free_ struct table_info *tables = NULL;
		size_t n = 0;
		bool others = false;

		(void)table_delete(e->table, NULL);
		/* Restore ip_forward only when the last spore egress of the host goes. */
		if (list_tables(&tables, &n, NULL) >= 0)
			for (size_t i = 0; i < n; i++)
				if (pid_alive(tables[i].pid))
					others = true;
		if (!others && e->forward_orig == 0) {
			int cur;

			if (read_int_file(IP_FORWARD, &cur) >= 0 && cur != 0)
				(void)write_int_file(IP_FORWARD, 0);
		}
	}
	nl_socket_free(e->nl);
	safe_close(e->self_netns);
	free(e->used);
	free(e->draining);
	free(e);
	return NULL;
}

int egress_new(const struct egress_config *cfg, struct egress **ret, char **ret_err)
{
	_cleanup_(egress_freep) struct egress *e = NULL;
	_cleanup_free_ struct table_info *tables = NULL;
	const char *pool = cfg && cfg->pool ? cfg->pool : EGRESS_POOL_DEFAULT;
	const char *name = cfg && cfg->name ? cfg->name : "spored";
	size_t n_tables = 0;
	int forward_cur, r;
	struct stat st;
	uint32_t h;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->self_netns = -EBADF;
	e->forward_orig = -1;

	r = parse_cidr(pool, &e->pool, &e->pool_len);
	if (r < 0) {
		seterr(ret_err, "egress: pool '%s' is not an IPv4 prefix a.b.c.d/len", pool);
		return r;
	}
	if (e->pool_len < 8 || e->pool_len > 32 - SLOT_BITS) {
		seterr(ret_err, "egress: pool '%s': the length must be 8 to %d", pool,
		       32 - SLOT_BITS);
		return -EINVAL;
	}
	if (e->pool & ~mask_of(e->pool_len)) {
		seterr(ret_err, "egress: pool '%s' has host bits set", pool);
		return -EINVAL;
	}
	format_cidr(e->pool_str, sizeof(e->pool_str), e->pool, e->pool_len);
	e->n_slots = 1u << (32 - SLOT_BITS - e->pool_len);
	e->used = calloc((e->n_slots + 7) / 8, 1);
	e->draining = calloc((e->n_slots + 7) / 8, 1);
	if (!e->used || !e->draining)
		return -ENOMEM;

	h = e->hash = fnv1a(name) & 0xffffff;
	e->group = GROUP_BASE | h;
	(void)snprintf(e->table, sizeof(e->table), TABLE_PREFIX "%06" PRIx32, h);
	(void)snprintf(e->ifprefix, sizeof(e->ifprefix), "sp%06" PRIx32, h);

	e->self_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (e->self_netns < 0) {
		r = -errno;
		seterr(ret_err, "egress: cannot open our network namespace: %s", strerror(-r));
		return r;
	}
	if (fstat(e->self_netns, &st) < 0)
		return -errno;
	e->self_netns_ino = st.st_ino;

	e->nl = nl_socket_alloc();
	if (!e->nl)
		return -ENOMEM;
	r = nl_connect(e->nl, NETLINK_ROUTE);
	if (r < 0) {
		r = nl_to_errno(r);
		seterr(ret_err, "egress: route netlink: %s", strerror(-r));
		return r;
	}

	/* What other spore egresses (live, or left by a killed spored) hold. */
	r = list_tables(&tables, &n_tables, ret_err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_tables; i++) {
		struct table_info *t = &tables[i];
		bool ours = streq(t->name, e->table);

		if (t->forward >= 0 && e->forward_orig < 0)
			e->forward_orig = t->forward;
		if (pid_alive(t->pid)) {
			if (ours) {
				seterr(ret_err,
				       "egress: name '%s' (table '%s') is in use by pid %d", name,
				       t->name, (int)t->pid);
				return -EBUSY;
			}
			if (cidr_overlap(t->pool, t->pool_len, e->pool, e->pool_len)) {
				char other[32];

				format_cidr(other, sizeof(other), t->pool, t->pool_len);
				seterr(ret_err,
				       "egress: pool '%s' overlaps pool %s of pid %d (table '%s')",
				       e->pool_str, other, (int)t->pid, t->name);
				return -EADDRINUSE;
			}
			continue;
		}
		/* Stale: its spored is gone. Its veths first, then the table (ours is replaced
		 * atomically below). */
		if (!ours) {
			r = links_delete_group(e->nl, GROUP_BASE | t->hash);
			if (r < 0) {
				seterr(ret_err, "egress: removing the stale links of table '%s': %s",
				       t->name, strerror(-r));
				return r;
			}
			r = table_delete(t->name, ret_err);
			if (r < 0)
				return r;
		}
	}
	/* Ours, table or not (a spored killed between the two). */
	r = links_delete_group(e->nl, e->group);
	if (r < 0) {
		seterr(ret_err, "egress: removing stale links '%sh*': %s", e->ifprefix,
		       strerror(-r));
		return r;
	}

	r = check_routes(e->nl, e->pool, e->pool_len, ret_err);
	if (r < 0)
		return r;

	r = read_int_file(IP_FORWARD, &forward_cur);
	if (r < 0) {
		seterr(ret_err, "egress: reading %s: %s", IP_FORWARD, strerror(-r));
		return r;
	}
	if (e->forward_orig < 0)
		e->forward_orig = forward_cur;

	r = table_install(e, e->forward_orig, ret_err);
	if (r < 0)
		return r;
	e->table_installed = true;

	if (forward_cur != 1) {
		r = write_int_file(IP_FORWARD, 1);
		if (r < 0) {
			seterr(ret_err, "egress: writing %s: %s", IP_FORWARD, strerror(-r));
			return r;
		}
	}
	*ret = TAKE_PTR(e);
	return 0;
}

const char *egress_table(const struct egress *e)
{
	return e->table;
}

const char *egress_ifprefix(const struct egress *e)
{
	return e->ifprefix;
}

/* ---- attach / release ---- */

static void slot_put(struct egress *e, uint32_t s)
{
	bit_set(e->used, s, false);
	bit_set(e->draining, s, false);
}

/* The ifindex of a slot's host end; 0 once it is gone (deleted with its namespace): only then
 * can the slot be reused. */
static int slot_link(const struct egress *e, uint32_t s)
{
	char name[IFNAMSIZ];
	unsigned idx;

	slot_ifname(e, s, name);
	idx = if_nametoindex(name);
	if (idx == 0 && errno != ENODEV)
		return -1; /* cannot tell: count it as there */
	return (int)idx;
}

static int slot_take(struct egress *e, uint32_t *ret)
{
	/* Next fit: a released /30 is reused as late as possible, so connection tracking
	 * entries of a previous instance have time to expire, and a draining slot's pair has
	 * long gone with its namespace by the time the cursor comes back to it. */
	for (uint32_t i = 0; i < e->n_slots; i++) {
		uint32_t s = (e->cursor + i) % e->n_slots;

		if (bit_get(e->used, s)) {
			if (!bit_get(e->draining, s) || slot_link(e, s) != 0)
				continue;
			slot_put(e, s);
		}
		bit_set(e->used, s, true);
		e->cursor = (s + 1) % e->n_slots;
		*ret = s;
		return 0;
	}
	return -ENOSPC;
}

/* Gives a slot back without blocking: free at once if its host end is gone (its namespace
 * died, and the kernel deleted the pair with it), else the link is taken down and the slot
 * drains until the kernel deletes the pair (the instance's namespace dies) or egress_free()
 * does. */
static int slot_retire(struct egress *e, uint32_t s)
{
	char name[IFNAMSIZ];
	int r;

	if (slot_link(e, s) == 0) {
		slot_put(e, s);
		return 0;
	}
	slot_ifname(e, s, name);
	r = link_set_up(e->nl, 0, name, false);
	if (r == -ENODEV) {
		slot_put(e, s);
		return 0;
	}
	bit_set(e->draining, s, true);
	return r;
}

static int addr_build(uint32_t host_order, unsigned prefixlen, struct nl_addr **ret)
{
	uint32_t a = htonl(host_order);
	struct nl_addr *na;

	na = nl_addr_build(AF_INET, &a, sizeof(a));
	if (!na)
		return -ENOMEM;
	nl_addr_set_prefixlen(na, (int)prefixlen);
	*ret = na;
	return 0;
}

static int addr_add(struct nl_sock *nl, int ifindex, uint32_t addr, unsigned prefixlen)
{
	_cleanup_(rtnl_addr_putp) struct rtnl_addr *a = NULL;
	_cleanup_(nl_addr_putp) struct nl_addr *local = NULL;
	int r;

	r = addr_build(addr, prefixlen, &local);
	if (r < 0)
		return r;
	a = rtnl_addr_alloc();
	if (!a)
		return -ENOMEM;
	rtnl_addr_set_ifindex(a, ifindex);
	rtnl_addr_set_family(a, AF_INET);
	r = rtnl_addr_set_local(a, local);
	if (r < 0)
		return nl_to_errno(r);
	r = rtnl_addr_add(nl, a, 0);
	return r < 0 ? nl_to_errno(r) : 0;
}

static int default_route_add(struct nl_sock *nl, int ifindex, uint32_t gateway)
{
	_cleanup_(rtnl_route_putp) struct rtnl_route *rt = NULL;
	_cleanup_(nl_addr_putp) struct nl_addr *dst = NULL, *gw = NULL;
	struct rtnl_nexthop *nh;
	int r;

	r = addr_build(0, 0, &dst);
	if (r < 0)
		return r;
	r = addr_build(gateway, 32, &gw);
	if (r < 0)
		return r;
	rt = rtnl_route_alloc();
	if (!rt)
		return -ENOMEM;
	rtnl_route_set_family(rt, AF_INET);
	rtnl_route_set_table(rt, RT_TABLE_MAIN);
	rtnl_route_set_scope(rt, RT_SCOPE_UNIVERSE);
	rtnl_route_set_protocol(rt, RTPROT_STATIC);
	r = rtnl_route_set_dst(rt, dst);
	if (r < 0)
		return nl_to_errno(r);
	nh = rtnl_route_nh_alloc();
	if (!nh)
		return -ENOMEM;
	rtnl_route_nh_set_ifindex(nh, ifindex);
	rtnl_route_nh_set_gateway(nh, gw);
	rtnl_route_add_nexthop(rt, nh); /* rt owns nh now */
	r = rtnl_route_add(nl, rt, NLM_F_EXCL);
	return r < 0 ? nl_to_errno(r) : 0;
}

/* A route netlink socket bound in the namespace netns_fd (and the peer's ifindex there).
 * The calling thread is in that namespace only for the socket() and bind(): a socket keeps
 * the namespace it was made in. */
static int nl_socket_in(struct egress *e, int netns_fd, struct nl_sock **ret, int *ret_ifindex)
{
	_cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
	unsigned idx = 0;
	int r, errno_idx = 0;

	sk = nl_socket_alloc();
	if (!sk)
		return -ENOMEM;
	if (setns(netns_fd, CLONE_NEWNET) < 0)
		return -errno;
	r = nl_connect(sk, NETLINK_ROUTE);
	if (r >= 0) {
		idx = if_nametoindex(EGRESS_PEER_IFNAME);
		errno_idx = errno;
	}
	/* Back, whatever happened. Failing here would leave spored's later sockets in an
	 * instance's namespace: there is no safe way on. */
	if (setns(e->self_netns, CLONE_NEWNET) < 0)
		abort();
	if (r < 0)
		return nl_to_errno(r);
	if (idx == 0)
		return errno_idx ? -errno_idx : -ENODEV;
	*ret = TAKE_PTR(sk);
	*ret_ifindex = (int)idx;
	return 0;
}

int egress_attach(struct egress *e, pid_t pid, struct egress_lease **ret)
{
	_cleanup_close_ int netns = -EBADF;
	char path[64];

	if (!e || pid <= 0)
		return -EINVAL;
	(void)snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	netns = open(path, O_RDONLY | O_CLOEXEC);
	if (netns < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	return egress_attach_netns(e, netns, ret);
}

int egress_attach_netns(struct egress *e, int netns, struct egress_lease **ret)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
	_cleanup_(rtnl_link_putp) struct rtnl_link *peer = NULL;
	_cleanup_(nl_socket_freep) struct nl_sock *inner = NULL;
	_cleanup_free_ struct egress_lease *l = NULL;
	uint32_t slot, base;
	int host_idx, peer_idx = 0, r;
	bool created = false;
	struct stat st;

	if (!e || netns < 0)
		return -EINVAL;
	if (ioctl(netns, NS_GET_NSTYPE) != CLONE_NEWNET)
		return -EINVAL;
	if (fstat(netns, &st) < 0)
		return -errno;
	if (st.st_ino == e->self_netns_ino)
		return -EINVAL;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	r = slot_take(e, &slot);
	if (r < 0)
		return r;
	base = e->pool + (slot << SLOT_BITS);
	l->slot = slot;
	l->prefixlen = 32 - SLOT_BITS;
	l->host_addr.s_addr = htonl(base + 1);
	l->peer_addr.s_addr = htonl(base + 2);
	slot_ifname(e, slot, l->host_ifname);

	link = rtnl_link_veth_alloc();
	if (!link) {
		r = -ENOMEM;
		goto fail;
	}
	rtnl_link_set_name(link, l->host_ifname);
	rtnl_link_set_group(link, e->group);
	rtnl_link_set_flags(link, IFF_UP);
	peer = rtnl_link_veth_get_peer(link);
	rtnl_link_set_name(peer, EGRESS_PEER_IFNAME);
	rtnl_link_set_ns_fd(peer, netns);
	/* Not IFF_UP on the peer here: kernel 6.18 refuses a peer created up in another
	 * namespace (-ENOTCONN); it is brought up from inside below. */
	r = rtnl_link_add(e->nl, link, NLM_F_CREATE | NLM_F_EXCL);
	if (r < 0) {
		r = nl_to_errno(r);
		goto fail;
	}
	created = true;
	e->group_used = true;

	host_idx = (int)if_nametoindex(l->host_ifname);
	if (host_idx == 0) {
		r = errno ? -errno : -ENODEV;
		goto fail;
	}
	r = addr_add(e->nl, host_idx, base + 1, l->prefixlen);
	if (r < 0)
		goto fail;

	r = nl_socket_in(e, netns, &inner, &peer_idx);
	if (r < 0)
		goto fail;
	r = link_set_up(inner, peer_idx, NULL, true);
	if (r < 0)
		goto fail;
	r = addr_add(inner, peer_idx, base + 2, l->prefixlen);
	if (r < 0)
		goto fail;
	r = default_route_add(inner, peer_idx, base + 1);
	if (r < 0)
		goto fail;

	*ret = TAKE_PTR(l);
	return 0;
fail:
	if (created)
		(void)slot_retire(e, slot);
	else
		slot_put(e, slot);
	return r;
}

int egress_release(struct egress *e, struct egress_lease *l)
{
	int r = 0;

	if (!l)
		return 0;
	if (e && l->slot < e->n_slots)
		r = slot_retire(e, l->slot);
	free(l);
	return r;
}
