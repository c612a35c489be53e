/* SPDX-License-Identifier: MIT */
/* cgroups: the v1 backend, for hybrid hosts (a tmpfs at root with one v1 mount per controller
 * set, and maybe a controller-less cgroup2 at <root>/unified) and legacy ones. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup-internal.h"
#include "util/cleanup.h"

static const struct {
	const char *name;
	unsigned ctrl;
} controllers[] = {
	{ "cpu", CGROUP_CTRL_CPU },	  { "cpuacct", CGROUP_CTRL_CPUACCT },
	{ "memory", CGROUP_CTRL_MEMORY }, { "pids", CGROUP_CTRL_PIDS },
	{ "freezer", CGROUP_CTRL_FREEZER },
};

/* The controllers we use in a /proc/self/cgroup list such as "cpu,cpuacct". */
static unsigned list_mask(const char *list)
{
	unsigned mask = 0;
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		for (size_t i = 0; i < ELEMENTSOF(controllers); i++)
			if (strlen(controllers[i].name) == n && strncmp(controllers[i].name, p, n) == 0)
				mask |= controllers[i].ctrl;
		p += n;
		p += *p == ',';
	}
	return mask;
}

/* Drops the last hierarchy added (its own cgroup was not there). */
static void drop_last(struct cgroup_manager *m)
{
	struct cg_hierarchy *h = &m->h[--m->n_h];
	(void)safe_close(h->own_fd);
	(void)safe_close(h->base_fd);
	free(h->mount);
	free(h->own_path);
	*h = (struct cg_hierarchy){ .own_fd = -EBADF, .base_fd = -EBADF };
}

/* Adds mount (opened as mount_fd) with our cgroup own_path in it and creates the base there.
 * A hierarchy in which our cgroup is not visible (a container without a cgroup namespace
 * that sees only its own subtree) is skipped: we never create cgroups anywhere else. */
static int add_hierarchy(struct cgroup_manager *m, int mount_fd, const char *mount,
			 const char *own_path, unsigned mask, bool v2, struct cg_hierarchy **ret)
{
	struct cg_hierarchy *h = cg_add(m);
	if (!h)
		return -E2BIG;
	h->controllers = mask;
	h->v2 = v2;
	h->mount = strdup(mount);
	h->own_path = strdup(own_path);
	if (!h->mount || !h->own_path) {
		drop_last(m);
		return -ENOMEM;
	}
	int r = cg_open_own(h, mount_fd);
	if (r == -ENOENT) {
		drop_last(m);
		return 0;
	}
	if (r >= 0)
		r = cg_open_base(m, h);
	if (r < 0) {
		drop_last(m);
		return r;
	}
	*ret = h;
	return 1;
}

static int v1_init(struct cgroup_manager *m, int root_fd, const struct cg_proc *pc,
		   const struct cgroup_manager_options *opts)
{
	(void)opts;
	int r;

	/* The unified tree first: whether it has cgroup.kill or cgroup.freeze decides whether
	 * we need the v1 freezer. */
	for (size_t i = 0; i < pc->n; i++) {
		if (pc->lines[i].hid != 0 || !streq(pc->lines[i].controllers, ""))
			continue;
		_cleanup_close_ int fd = cg_open_dir(root_fd, "unified");
		if (fd == -ENOENT || fd == -ENOTDIR)
			break;
		if (fd < 0)
			return fd;
		if (!cg_fs_is(m, fd, CG_CGROUP2_SUPER_MAGIC))
			break;
		struct cg_hierarchy *h;
		r = add_hierarchy(m, fd, "unified", pc->lines[i].path, 0, true, &h);
		if (r < 0)
			return r;
		if (r > 0) {
			m->v2 = h;
			m->has_kill = cg_exists(h->base_fd, "cgroup.kill");
			m->has_freeze = cg_exists(h->base_fd, "cgroup.freeze");
		}
		break;
	}

	for (size_t i = 0; i < pc->n; i++) {
		const struct cg_proc_line *l = &pc->lines[i];
		unsigned mask = l->hid ? list_mask(l->controllers) : 0;
		/* With cgroup.kill (kernel >= 5.14) or cgroup.freeze (>= 5.2) in the unified tree
		 * the v1 freezer is not needed. */
		if (m->has_kill || m->has_freeze)
			mask &= ~(unsigned)CGROUP_CTRL_FREEZER;
		if (!mask)
			continue;

		/* Mounted as "cpu,cpuacct" or by controller name (systemd links the rest). */
		_cleanup_close_ int fd = cg_open_dir(root_fd, l->controllers);
		const char *mount = l->controllers;
		for (size_t k = 0; fd < 0 && k < ELEMENTSOF(controllers); k++)
			if (mask & controllers[k].ctrl) {
				fd = cg_open_dir(root_fd, controllers[k].name);
				mount = controllers[k].name;
			}
		if (fd < 0 || !cg_fs_is(m, fd, CG_CGROUP_SUPER_MAGIC))
			continue;

		struct cg_hierarchy *h;
		r = add_hierarchy(m, fd, mount, l->path, mask, false, &h);
		if (r < 0)
			return r;
		if (r == 0)
			continue;
		m->controllers |= mask;
		if (mask & CGROUP_CTRL_FREEZER)
			m->freezer = h;
	}
	return 0;
}

static int v1_apply_memory(struct cgroup_manager *m, int fd, const struct cgroup_limits *lim)
{
	char mem[24] = "-1";
	if (lim->memory_max)
		(void)snprintf(mem, sizeof(mem), "%llu", (unsigned long long)lim->memory_max);

	/* memsw (memory+swap) equal to the memory limit means no swap. The kernel keeps
	 * memsw >= memory at every step: lower memory first, raise memsw first. memsw exists
	 * only with swap accounting. */
	bool memsw = cg_exists(fd, "memory.memsw.limit_in_bytes");
	int r = cg_write(m, fd, "memory.limit_in_bytes", mem);
	if (r == -EINVAL && memsw) {
		r = cg_write(m, fd, "memory.memsw.limit_in_bytes", mem);
		if (r < 0)
			return r;
		r = cg_write(m, fd, "memory.limit_in_bytes", mem);
		if (r < 0)
			return r;
	} else if (r < 0)
		return r;
	else if (memsw && (r = cg_write(m, fd, "memory.memsw.limit_in_bytes", mem)) < 0)
		return r;

	/* Without memsw the next best thing: do not prefer swapping this cgroup's pages. */
	if (cg_exists(fd, "memory.swappiness") &&
	    (r = cg_write(m, fd, "memory.swappiness", "0")) < 0)
		return r;
	/* Keep the OOM killer on: with it off, the instance would hang at the limit instead of
	 * dying. */
	return cg_write(m, fd, "memory.oom_control", "0");
}

static int v1_apply_limits(struct cgroup_manager *m, struct cg_hierarchy *h, int fd,
			   const struct cgroup_limits *lim)
{
	int r;
	if (h->controllers & CGROUP_CTRL_MEMORY) {
		r = v1_apply_memory(m, fd, lim);
		if (r < 0)
			return r;
	}
	if (h->controllers & CGROUP_CTRL_CPU) {
		uint32_t period = lim->cpu_period_us ? lim->cpu_period_us : 100000;
		/* The kernel checks quota/period against the parent at each write: lift the quota
		 * before moving the period. */
		if (lim->cpu_quota_us) {
			r = cg_write_u64(m, fd, "cpu.cfs_period_us", period);
			if (r >= 0)
				r = cg_write_u64(m, fd, "cpu.cfs_quota_us", lim->cpu_quota_us);
		} else {
			r = cg_write(m, fd, "cpu.cfs_quota_us", "-1");
			if (r >= 0)
				r = cg_write_u64(m, fd, "cpu.cfs_period_us", period);
		}
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

static int v1_read(struct cgroup_manager *m, unsigned ctrl, const char *path, const char *file,
		   const char *key, uint64_t *ret)
{
	struct cg_hierarchy *h = cg_find(m, ctrl);
	if (!h)
		return -EOPNOTSUPP;
	_cleanup_close_ int fd = cg_open_path(h, path);
	if (fd < 0)
		return fd;
	int r = key ? cg_read_key_u64(fd, file, key, ret) : cg_read_u64(fd, file, ret);
	return r == -ENODATA ? -EOPNOTSUPP : r;
}

static int v1_oom_kills(struct cgroup_manager *m, const char *path, uint64_t *ret)
{
	/* The oom_kill line appeared in kernel 4.13. */
	return v1_read(m, CGROUP_CTRL_MEMORY, path, "memory.oom_control", "oom_kill", ret);
}

static int v1_memory_peak(struct cgroup_manager *m, const char *path, uint64_t *ret)
{
	return v1_read(m, CGROUP_CTRL_MEMORY, path, "memory.max_usage_in_bytes", NULL, ret);
}

static int v1_cpu_usage_ns(struct cgroup_manager *m, const char *path, uint64_t *ret)
{
	if (cg_find(m, CGROUP_CTRL_CPUACCT))
		return v1_read(m, CGROUP_CTRL_CPUACCT, path, "cpuacct.usage", NULL, ret);
	if (!m->v2)
		return -EOPNOTSUPP;
	/* The unified tree keeps cpu.stat without any controller. */
	_cleanup_close_ int fd = cg_open_path(m->v2, path);
	if (fd < 0)
		return fd;
	uint64_t us;
	int r = cg_read_key_u64(fd, "cpu.stat", "usage_usec", &us);
	if (r < 0)
		return r == -ENODATA || r == -ENOENT ? -EOPNOTSUPP : r;
	*ret = us * 1000;
	return 0;
}

const struct cgroup_ops cgroup_v1_ops = {
	.name = "v1",
	.init = v1_init,
	.prepare_parent = NULL,
	.apply_limits = v1_apply_limits,
	.oom_kills = v1_oom_kills,
	.memory_peak = v1_memory_peak,
	.cpu_usage_ns = v1_cpu_usage_ns,
};
