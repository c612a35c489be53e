/* SPDX-License-Identifier: MIT */
/* cgroups: one interface over cgroup v2 and the v1 controllers of hybrid hosts.
 *
 * Ownership: spored (the supervisor) owns one cgroup_manager. The manager owns the subtree
 * <own>/<name> in every hierarchy it uses, where <own> is the cgroup spored was started in
 * (read from /proc/self/cgroup, per controller). Nothing is ever created outside it.
 * Every path argument below is relative to <own>/<name>, e.g. "fn-hello/i-00ab": components
 * separated by single '/', none empty, ".", ".." or longer than 255 bytes; else -EINVAL.
 *
 * Backends (picked once by cgroup_manager_new() from statfs(root), then hidden):
 *  - v2: root is a cgroup2 mount. One hierarchy; cpu, memory and pids are enabled in
 *    cgroup.subtree_control of <own>, <own>/<name> and every parent cgroup_create() makes.
 *  - v1: root is a tmpfs holding one v1 mount per controller set. The hierarchies used are
 *    cpu, cpuacct, memory and pids, plus the controller-less v2 tree at <root>/unified when
 *    present, so that an instance has a v2 cgroup id for BPF and can be killed atomically
 *    with cgroup.kill. The v1 freezer joins only where the unified tree has neither
 *    cgroup.kill nor cgroup.freeze.
 * A controller that is missing (not mounted, not delegated) is not an error of
 * cgroup_manager_new(); asking cgroup_create() for a limit that needs it is (-EOPNOTSUPP).
 *
 * Only the supervisor calls these functions (they allocate, open files and may sleep up to
 * about a second in cgroup_kill()); a sandboxed child never does. Errors are -errno; ret_*
 * parameters are written only on success. Nothing here logs. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct cgroup_manager;

enum cgroup_backend {
	CGROUP_BACKEND_AUTO,
	CGROUP_BACKEND_V1,
	CGROUP_BACKEND_V2,
	_CGROUP_BACKEND_MAX,
	_CGROUP_BACKEND_INVALID = -EINVAL,
};

/* Controller mask, as returned by cgroup_manager_controllers(). */
enum {
	CGROUP_CTRL_CPU = 1 << 0,
	CGROUP_CTRL_CPUACCT = 1 << 1, /* v1 only; v2 always has cpu.stat */
	CGROUP_CTRL_MEMORY = 1 << 2,
	CGROUP_CTRL_PIDS = 1 << 3,
	CGROUP_CTRL_FREEZER = 1 << 4, /* v1 only, used only without a v2 cgroup.kill/freeze */
};

struct cgroup_limits {
	uint64_t memory_max; /* bytes, 0 = none; never any swap */
	uint32_t cpu_quota_us; /* 0 = none; else >= 1000 */
	uint32_t cpu_period_us; /* 0 = kernel default 100000; else 1000..1000000 */
	uint32_t pids_max; /* 0 = none */
};

struct cgroup_manager_options {
	enum cgroup_backend backend; /* AUTO: statfs(root) decides */
	/* Tests: root is a plain directory tree standing in for cgroupfs. No filesystem magic is
	 * checked (backend must then be V1 or V2), a new cgroup gets empty copies of its parent's
	 * regular files (as the kernel gives it control files), writes truncate, and removal
	 * unlinks those files before rmdir. A v1 tree has a unified tree iff <root>/unified is a
	 * directory. */
	bool fake_fs;
	/* v2: when <own> holds processes, so that controllers cannot be enabled in its
	 * cgroup.subtree_control (the "no internal processes" rule), and the only one is this
	 * process, move it into <own>/supervisor first. Otherwise those controllers stay off. */
	bool move_self;
};

/* root: "/sys/fs/cgroup"; proc_self_cgroup: "/proc/self/cgroup"; name: the subtree, e.g.
 * "spore" (one path component). Creates <own>/<name> in every hierarchy used.
 * Returns -EOPNOTSUPP when root holds no usable cgroup filesystem. cgroup_manager_new() is
 * cgroup_manager_new_with() with { AUTO, fake_fs = false, move_self = true }. */
int cgroup_manager_new(const char *root, const char *proc_self_cgroup, const char *name,
		       struct cgroup_manager **ret);
int cgroup_manager_new_with(const char *root, const char *proc_self_cgroup, const char *name,
			    const struct cgroup_manager_options *opts, struct cgroup_manager **ret);
/* Closes the manager's fds; removes nothing. Accepts NULL; returns NULL. */
struct cgroup_manager *cgroup_manager_free(struct cgroup_manager *m);

enum cgroup_backend cgroup_manager_backend(const struct cgroup_manager *m);
/* CGROUP_CTRL_* usable by cgroup_create() (v2: those enabled for <own>/<name>'s children). */
unsigned cgroup_manager_controllers(const struct cgroup_manager *m);
/* True when there is a v2 tree (v2 backend, or the unified tree of a hybrid host). */
bool cgroup_manager_has_v2(const struct cgroup_manager *m);

/* Kills every process in every cgroup below <name> left by an earlier spored, then removes
 * those cgroups bottom-up. <name> itself stays. Call it once at start, before the first
 * cgroup_create(): it cannot tell a stale cgroup from a live one. Returns the number of
 * cgroups removed (a path present in several hierarchies counts once); if one could not be
 * killed or removed, the others still are and the first error is returned. */
int cgroup_cleanup_stale(struct cgroup_manager *m);

/* Creates path (and missing parents, without limits) in every hierarchy and writes lim into
 * the last component: v1 memory.limit_in_bytes, memory.memsw.limit_in_bytes (if present),
 * memory.swappiness = 0, memory.oom_control = 0 (kernel OOM killer on), cpu.cfs_period_us,
 * cpu.cfs_quota_us, pids.max; v2 memory.max, memory.swap.max = 0, memory.oom.group = 1,
 * cpu.max, pids.max. An existing cgroup is fine (limits rewritten). On failure a cgroup this
 * call made for the last component is removed again. -EOPNOTSUPP: a limit needs a missing
 * controller; -EINVAL: bad path or limits. */
int cgroup_create(struct cgroup_manager *m, const char *path, const struct cgroup_limits *lim);

/* Moves the process pid (all its threads) into path in every hierarchy. On a v2 host the
 * caller may instead have cloned it there with CLONE_INTO_CGROUP (cgroup_open_v2_dir()); on a
 * hybrid host that only covers the unified tree and attach is still needed for v1. */
int cgroup_attach(struct cgroup_manager *m, const char *path, pid_t pid);

/* The fast way in, for a single-threaded process that moves itself: the absolute paths of the
 * v1 "tasks" files of path (one per v1 hierarchy), into which the process writes "0". The
 * kernel skips the global threadgroup lock for a thread moving itself, so this takes ~20 µs
 * where cgroup_attach() of another process waits for an RCU grace period (6-12 ms measured on
 * this host after an idle spell). *ret_paths is a NULL-terminated strv (empty on a pure v2
 * host: use cgroup_attach() there). The unified tree of a hybrid host is not covered (its
 * cgroup.procs has no such shortcut). */
int cgroup_self_attach_paths(struct cgroup_manager *m, const char *path, char ***ret_paths);

/* SIGKILLs every process in path and its descendants (v2 cgroup.kill where present, else
 * freezer + kill loop, else a kill loop) and polls until no hierarchy lists a process, for at
 * most about a second. The processes need not be our children: nothing is reaped. A zombie is
 * not listed in cgroup.procs (observed on 6.18, v1 and v2), so an unreaped child does not hold
 * this up. Returns the number of processes found, -ETIMEDOUT if some survived, -errno. A
 * missing cgroup gives 0. */
int cgroup_kill(struct cgroup_manager *m, const char *path);

/* The same kill, without the wait: for an event loop, which then retries cgroup_remove() until
 * it stops failing with -EBUSY. Returns the number of processes found, or -errno. */
int cgroup_kill_nowait(struct cgroup_manager *m, const char *path);

/* Removes path and its descendants bottom-up in every hierarchy (kill first). Missing is
 * fine. -EBUSY: processes are still there. Returns the number of cgroups removed (the
 * largest count over the hierarchies). */
int cgroup_remove(struct cgroup_manager *m, const char *path);

/* Kills and removes everything below <name> and <name> itself (shutdown, uninstall, tests).
 * Returns the number of cgroups removed below <name>. */
int cgroup_remove_all(struct cgroup_manager *m);

/* OOM kills: v2 memory.events "oom_kill" (path and its descendants); v1 memory.oom_control
 * "oom_kill" (kernel >= 4.13), which counts kills in path itself only (observed on 6.18: a
 * parent stays 0). -EOPNOTSUPP without a memory controller or counter. */
int cgroup_oom_kills(struct cgroup_manager *m, const char *path, uint64_t *ret);
/* Peak memory in bytes: v1 memory.max_usage_in_bytes; v2 memory.peak (kernel >= 5.19), else
 * memory.current. */
int cgroup_memory_peak(struct cgroup_manager *m, const char *path, uint64_t *ret);
/* Memory charged now in bytes: v1 memory.usage_in_bytes; v2 memory.current. */
int cgroup_memory_current(struct cgroup_manager *m, const char *path, uint64_t *ret);
/* CPU time in ns: v1 cpuacct.usage, else the unified tree's cpu.stat; v2 cpu.stat usage_usec. */
int cgroup_cpu_usage_ns(struct cgroup_manager *m, const char *path, uint64_t *ret);

/* An O_PATH|O_DIRECTORY|O_CLOEXEC fd of path in the v2 (or unified) tree, for clone3()'s
 * CLONE_INTO_CGROUP (kernel >= 5.7). The caller owns it. -EOPNOTSUPP without a v2 tree. */
int cgroup_open_v2_dir(struct cgroup_manager *m, const char *path);
/* A pool for CLONE_INTO_CGROUP: creates path in the v2 (or unified) tree only, ready to hold
 * child cgroups (v2: controllers enabled in its cgroup.subtree_control), and returns its
 * absolute path (e.g. "/sys/fs/cgroup/unified/<own>/spore-1/pool-python3"), for a zygote that
 * makes one child cgroup per instance and clones the instance into it. Its children are then
 * paths "<path>/<child>" for every function here. -EOPNOTSUPP without a v2 tree. */
int cgroup_create_pool(struct cgroup_manager *m, const char *path, char **ret_abs_path);
/* The cgroup id of path in the v2 (or unified) tree, as bpf_get_current_cgroup_id() sees it
 * (its file handle; the inode number on a fake tree). -EOPNOTSUPP without a v2 tree. */
int cgroup_v2_id(struct cgroup_manager *m, const char *path, uint64_t *ret);
