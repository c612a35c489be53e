/* SPDX-License-Identifier: MIT */
/* cgroups: the v2 backend (cgroup2 mounted at root). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup-internal.h"
#include "util/cleanup.h"

#define SUPERVISOR_LEAF "supervisor"

static const struct {
	const char *name;
	unsigned ctrl;
} controllers[] = {
	{ "cpu", CGROUP_CTRL_CPU },
	{ "memory", CGROUP_CTRL_MEMORY },
	{ "pids", CGROUP_CTRL_PIDS },
};

/* The controllers we use named in a cgroup.controllers or cgroup.subtree_control file. */
static unsigned file_mask(int dir_fd, const char *file)
{
	_cleanup_free_ char *s = NULL;
	if (cg_read(dir_fd, file, &s) < 0)
		return 0;
	unsigned mask = 0;
	for (size_t i = 0; i < ELEMENTSOF(controllers); i++)
		if (cg_has_token(s, controllers[i].name))
			mask |= controllers[i].ctrl;
	return mask;
}

/* Enables mask for dir_fd's children; one write, so the kernel applies all or none. */
static int enable(struct cgroup_manager *m, int dir_fd, unsigned mask)
{
	char s[64] = "";
	for (size_t i = 0; i < ELEMENTSOF(controllers); i++)
		if (mask & controllers[i].ctrl) {
			if (s[0])
				(void)strcat(s, " ");
			(void)strcat(s, "+");
			(void)strcat(s, controllers[i].name);
		}
	return s[0] ? cg_write(m, dir_fd, "cgroup.subtree_control", s) : 0;
}

/* A cgroup other than the root that holds processes cannot enable controllers for its
 * children. If the only process in ours is this one, move it into <own>/supervisor. */
static int make_room(struct cgroup_manager *m, struct cg_hierarchy *h,
		     const struct cgroup_manager_options *opts)
{
	_cleanup_free_ char *procs = NULL;
	int r = cg_read(h->own_fd, "cgroup.procs", &procs);
	if (r < 0)
		return r;
	if (procs[strspn(procs, " \n")] == '\0')
		return 0;
	if (!opts->move_self)
		return -EBUSY;
	char self[16];
	(void)snprintf(self, sizeof(self), "%d", (int)getpid());
	for (const char *p = procs; *p;) {
		p += strspn(p, " \n");
		size_t n = strcspn(p, " \n");
		if (n && (n != strlen(self) || strncmp(p, self, n) != 0))
			return -EBUSY;
		p += n;
	}
	r = cg_mkdirat(m, h->own_fd, SUPERVISOR_LEAF);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = cg_open_dir(h->own_fd, SUPERVISOR_LEAF);
	if (fd < 0)
		return fd;
	return cg_write(m, fd, "cgroup.procs", self);
}

static int v2_init(struct cgroup_manager *m, int root_fd, const struct cg_proc *pc,
		   const struct cgroup_manager_options *opts)
{
	const char *own = NULL;
	for (size_t i = 0; i < pc->n; i++)
		if (pc->lines[i].hid == 0 && streq(pc->lines[i].controllers, ""))
			own = pc->lines[i].path;
	if (!own || !cg_fs_is(m, root_fd, CG_CGROUP2_SUPER_MAGIC))
		return -EOPNOTSUPP;
	if (opts->move_self && streq(m->name, SUPERVISOR_LEAF))
		return -EINVAL;

	struct cg_hierarchy *h = cg_add(m);
	if (!h)
		return -E2BIG;
	h->v2 = true;
	h->mount = strdup(".");
	h->own_path = strdup(own);
	if (!h->mount || !h->own_path)
		return -ENOMEM;
	int r = cg_open_own(h, root_fd);
	if (r < 0)
		return r == -ENOENT ? -EOPNOTSUPP : r;

	unsigned avail = file_mask(h->own_fd, "cgroup.controllers");
	unsigned enabled = file_mask(h->own_fd, "cgroup.subtree_control");
	unsigned need = avail & ~enabled;
	if (need) {
		/* "Where possible": what cannot be enabled stays off, and cgroup_create()
		 * refuses limits that need it. */
		r = streq(own, "/") ? 0 : make_room(m, h, opts);
		if (r >= 0)
			r = enable(m, h->own_fd, need);
		if (r >= 0)
			enabled |= need;
	}

	r = cg_open_base(m, h);
	if (r < 0)
		return r;
	r = enable(m, h->base_fd, enabled);
	if (r < 0)
		return r;
	h->controllers = enabled;
	m->controllers = enabled;
	m->v2 = h;
	m->has_kill = cg_exists(h->base_fd, "cgroup.kill");
	m->has_freeze = cg_exists(h->base_fd, "cgroup.freeze");
	return 0;
}

static int v2_prepare_parent(struct cgroup_manager *m, struct cg_hierarchy *h, int dir_fd)
{
	return enable(m, dir_fd, h->controllers);
}

static int v2_apply_limits(struct cgroup_manager *m, struct cg_hierarchy *h, int fd,
			   const struct cgroup_limits *lim)
{
	int r;
	if (h->controllers & CGROUP_CTRL_MEMORY) {
		r = lim->memory_max ? cg_write_u64(m, fd, "memory.max", lim->memory_max)
				    : cg_write(m, fd, "memory.max", "max");
		if (r < 0)
			return r;
		/* memory.swap.max exists only with swap accounting. */
		if (cg_exists(fd, "memory.swap.max") &&
		    (r = cg_write(m, fd, "memory.swap.max", "0")) < 0)
			return r;
		/* An OOM kill takes the whole instance, not one of its processes (kernel
		 * >= 4.19). */
		if (cg_exists(fd, "memory.oom.group") &&
		    (r = cg_write(m, fd, "memory.oom.group", "1")) < 0)
			return r;
	}
	if (h->controllers & CGROUP_CTRL_CPU) {
		char s[32];
		uint32_t period = lim->cpu_period_us ? lim->cpu_period_us : 100000;
		if (lim->cpu_quota_us)
			(void)snprintf(s, sizeof(s), "%u %u", lim->cpu_quota_us, period);
		else
			(void)snprintf(s, sizeof(s), "max %u", period);
		r = cg_write(m, fd, "cpu.max", s);
		if (r < 0)
			return r;
	}
	if (h->controllers & CGROUP_CTRL_PIDS) {
		r = lim->pids_max ? cg_write_u64(m, fd, "pids.max", lim->pids_max)
				  : cg_write(m, fd, "pids.max", "max");
		if (r < 0)
			return r;
	}
	return 0;
}

static int v2_read_key(struct cgroup_manager *m, const char *path, const char *file,
		       const char *key, uint64_t *ret)
{
	_cleanup_close_ int fd = cg_open_path(m->v2, path);
	if (fd < 0)
		return fd;
	int r = key ? cg_read_key_u64(fd, file, key, ret) : cg_read_u64(fd, file, ret);
	return r == -ENODATA ? -EOPNOTSUPP : r;
}

static int v2_oom_kills(struct cgroup_manager *m, const char *path, uint64_t *ret)
{
	if (!(m->controllers & CGROUP_CTRL_MEMORY))
		return -EOPNOTSUPP;
	return v2_read_key(m, path, "memory.events", "oom_kill", ret);
}

static int v2_memory_peak(struct cgroup_manager *m, const char *path, uint64_t *ret)
{
	if (!(m->controllers & CGROUP_CTRL_MEMORY))
		return -EOPNOTSUPP;
	_cleanup_close_ int fd = cg_open_path(m->v2, path);
	if (fd < 0)
		return fd;
	/* memory.peak came with kernel 5.19; before it only the current usage is known. */
	if (cg_exists(fd, "memory.peak"))
		return cg_read_u64(fd, "memory.peak", ret);
	return cg_read_u64(fd, "memory.current", ret);
}

static int v2_cpu_usage_ns(struct cgroup_manager *m, const char *path, uint64_t *ret)
{
	uint64_t us;
	int r = v2_read_key(m, path, "cpu.stat", "usage_usec", &us);
	if (r < 0)
		return r;
	*ret = us * 1000;
	return 0;
}

const struct cgroup_ops cgroup_v2_ops = {
	.name = "v2",
	.init = v2_init,
	.prepare_parent = v2_prepare_parent,
	.apply_limits = v2_apply_limits,
	.oom_kills = v2_oom_kills,
	.memory_peak = v2_memory_peak,
	.cpu_usage_ns = v2_cpu_usage_ns,
};
