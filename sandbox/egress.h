/* SPDX-License-Identifier: MIT */
/* egress: network "egress" for an instance. spored gives the instance's network namespace a
 * veth pair and NAT, so it reaches the outside world but nothing of the host (no service on the
 * host's loopback, no address of the host on any port, spored's own included) and no other
 * instance. See docs/NETWORK.md.
 *
 * Who calls it: spored only (never a zygote or an instance), as root in the host's network
 * namespace (CAP_NET_ADMIN for links, addresses and nftables; CAP_SYS_ADMIN for setns()), from
 * one thread. Every call is synchronous netlink and blocks the caller (figures in
 * docs/NETWORK.md).
 *
 *   egress_new()      once per spored: checks the pool, removes what a killed spored with the
 *                     same name (or a dead one with any name) left, installs the nftables table
 *                     and turns net.ipv4.ip_forward on;
 *   egress_attach()   per instance, once spored knows its pid and before it sends INIT: a /30
 *                     of the pool, a veth pair (host end "<prefix>h<slot>", "eth0" inside), both
 *                     ends addressed and up, the instance's default route via the host end;
 *   egress_release()  per instance, when it goes: the /30 back to the pool, without blocking:
 *                     a host end still there (the instance, or its namespace's teardown in
 *                     the kernel, still alive) is taken down, which cuts the instance off at
 *                     once, and the kernel deletes the pair when the namespace dies (deleting
 *                     it here would block spored 20-35 ms); its /30 is reused once it is gone;
 *   egress_free()     at shutdown: every veth this egress made (one batch: all host ends are
 *                     in one netdev group), its table, and ip_forward back to what it was
 *                     before the first spore egress of the host, when no other is left.
 *
 * egress_attach() switches the calling thread into the instance's network namespace for the
 * time it takes to open one netlink socket there, and always back (if it could not switch
 * back it abort()s: a spored left in an instance's namespace must not go on).
 *
 * Ownership: a lease belongs to the caller from egress_attach() until egress_release(). The
 * egress does not keep lease pointers, so shutdown can go in either order: release every lease
 * and then egress_free(), or egress_free() first (it deletes the veths of leases still held)
 * and then egress_release(NULL, lease) for each, which only frees the lease. */
#pragma once

#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/types.h>

#define EGRESS_POOL_DEFAULT "10.231.0.0/16"
/* The instance's end of the pair, inside its namespace. */
#define EGRESS_PEER_IFNAME "eth0"

struct egress;

struct egress_config {
	/* IPv4 pool the instances' /30s come from, "a.b.c.d/len", len 8..30, host bits zero.
	 * NULL: EGRESS_POOL_DEFAULT. It must not overlap an address or route of the host, nor the
	 * pool of another live spored's egress (-EADDRINUSE). */
	const char *pool;
	/* Any string that tells this spored from others on the host (its state dir, its listen
	 * address). Hashed into the names: nft table "spore_egress_<6 hex>", interfaces
	 * "sp<6 hex>h<slot in hex>". NULL: "spored". */
	const char *name;
};

/* One instance's share. Read-only for the caller. Addresses in network byte order. */
struct egress_lease {
	uint32_t slot;               /* index of the /30 in the pool */
	char host_ifname[IFNAMSIZ];  /* the host end, in spored's namespace */
	struct in_addr host_addr;    /* the host end's address: the instance's gateway */
	struct in_addr peer_addr;    /* the instance's address, on its EGRESS_PEER_IFNAME */
	uint8_t prefixlen;           /* 30 */
};

/* Once per spored. Returns 0 and *ret, or -errno with *ret_err a malloc'ed sentence naming the
 * field or the cause (the caller frees it; ret_err may be NULL):
 *   -EINVAL      cfg->pool is malformed;
 *   -EBUSY       another live process (its pid in the message) holds an egress of this name;
 *   -EADDRINUSE  the pool overlaps a host address or route, or another live spored's pool;
 *   -EIO         nftables refused the table (its message quoted);
 *   other -errno from netlink, /proc/sys or setns.
 * On failure nothing is left installed and ip_forward is as it was. */
int egress_new(const struct egress_config *cfg, struct egress **ret, char **ret_err);

/* Deletes every veth this egress made (leases not yet released included; one netlink call for
 * all of them), its nftables table, and restores net.ipv4.ip_forward to the value recorded before the first spore egress of this
 * host when no other live spore egress remains. Accepts NULL and a half-built egress. Returns
 * NULL. */
struct egress *egress_free(struct egress *e);

/* Gives the network namespace of pid (/proc/<pid>/ns/net; it must not be spored's own) its
 * veth pair and addresses. Returns 0 and *ret, or -errno: -ESRCH (no such pid), -EINVAL (pid is
 * in spored's namespace), -ENOSPC (every /30 is held or still draining), -EEXIST (the instance
 * already has an EGRESS_PEER_IFNAME), or what netlink returned. On failure nothing is left
 * behind but, if the pair was made, a host end taken down, as for egress_release(). */
int egress_attach(struct egress *e, pid_t pid, struct egress_lease **ret);
/* The same for a network namespace fd (O_RDONLY of /proc/<pid>/ns/net, or of a pidfd's
 * namespace), which the caller keeps: no window for the pid to die and be reused between the
 * caller learning it and the attach. -EINVAL if netns is spored's own or not a namespace. */
int egress_attach_netns(struct egress *e, int netns, struct egress_lease **ret);

/* Gives the lease's /30 back and frees the lease, in 15-60 us: if its host end is gone (the
 * instance's namespace died and the kernel deleted the pair) the /30 is free at once; else the
 * host end is taken down, which cuts the instance off, and the /30 drains until the kernel
 * deletes the pair (when the namespace dies) or egress_free() does. e NULL (the egress already
 * freed): only frees the lease. Accepts a NULL lease. Returns 0 or -errno from taking the link
 * down (the lease is freed either way). */
int egress_release(struct egress *e, struct egress_lease *l);

/* Names, for logs and tests: the nftables table (family inet), and the interface prefix (host
 * ends are "<prefix>h<slot in hex>"). */
const char *egress_table(const struct egress *e);
const char *egress_ifprefix(const struct egress *e);
