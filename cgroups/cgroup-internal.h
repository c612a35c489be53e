/* SPDX-License-Identifier: MIT */
/* cgroups: what cgroup.c shares with its two backends (cgroup-v1.c, cgroup-v2.c). Not a
 * contract for anyone else. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"

#define CG_HIERARCHY_MAX 8

/* Filesystem magics (linux/magic.h), spelled out to keep the header set small. */
#define CG_CGROUP_SUPER_MAGIC 0x27e0ebU
#define CG_CGROUP2_SUPER_MAGIC 0x63677270U
#define CG_TMPFS_MAGIC 0x01021994U

/* One mounted hierarchy as the manager uses it. */
struct cg_hierarchy {
	char *mount; /* directory under root: "memory", "cpu,cpuacct", "unified"; "." for v2 */
	char *own_path; /* our cgroup in it, from /proc/self/cgroup: "/", "/process_api/x" */
	unsigned controllers; /* CGROUP_CTRL_* this hierarchy carries (that we use) */
	bool v2; /* cgroup2: the v2 backend's tree or a hybrid host's unified tree */
	int own_fd; /* <mount><own_path> */
	int base_fd; /* <mount><own_path>/<name> */
};

/* One line of /proc/self/cgroup: "hid:controllers:path". */
struct cg_proc_line {
	unsigned hid;
	char *controllers; /* "" for the v2 line, "cpu,cpuacct", "name=systemd" */
	char *path;
};

struct cg_proc {
	struct cg_proc_line *lines;
	size_t n;
};

struct cgroup_ops {
	const char *name;
	/* Finds and opens the hierarchies, creates <own>/<name> in each (cg_open_base()) and sets
	 * m->controllers, m->v2, m->freezer, m->has_kill, m->has_freeze. */
	int (*init)(struct cgroup_manager *m, int root_fd, const struct cg_proc *pc,
		    const struct cgroup_manager_options *opts);
	/* Called on every directory cgroup_create() made on the way to the leaf. May be NULL. */
	int (*prepare_parent)(struct cgroup_manager *m, struct cg_hierarchy *h, int dir_fd);
	/* Writes lim into the leaf dir_fd of hierarchy h. cgroup.c has checked that every
	 * requested limit's controller is in m->controllers. */
	int (*apply_limits)(struct cgroup_manager *m, struct cg_hierarchy *h, int dir_fd,
			    const struct cgroup_limits *lim);
	int (*oom_kills)(struct cgroup_manager *m, const char *path, uint64_t *ret);
	int (*memory_peak)(struct cgroup_manager *m, const char *path, uint64_t *ret);
	int (*cpu_usage_ns)(struct cgroup_manager *m, const char *path, uint64_t *ret);
};

struct cgroup_manager {
	const struct cgroup_ops *ops;
	enum cgroup_backend backend;
	bool fake;
	char *name;
	unsigned controllers;
	struct cg_hierarchy h[CG_HIERARCHY_MAX];
	size_t n_h;
	struct cg_hierarchy *v2; /* the v2 tree or the unified tree; NULL if none */
	struct cg_hierarchy *freezer; /* v1 freezer, only used without cgroup.kill */
	bool has_kill; /* cgroup.kill in the v2 tree (kernel >= 5.14) */
	bool has_freeze; /* cgroup.freeze in the v2 tree (kernel >= 5.2) */
};

extern const struct cgroup_ops cgroup_v1_ops;
extern const struct cgroup_ops cgroup_v2_ops;

/* Shared helpers (cgroup.c). Files are read and written relative to a directory fd. */
int cg_write(const struct cgroup_manager *m, int dir_fd, const char *file, const char *value);
int cg_write_u64(const struct cgroup_manager *m, int dir_fd, const char *file, uint64_t v);
int cg_read(int dir_fd, const char *file, char **ret);
int cg_read_u64(int dir_fd, const char *file, uint64_t *ret);
/* "key value" lines (memory.events, cpu.stat, memory.oom_control): -ENODATA if key is absent. */
int cg_read_key_u64(int dir_fd, const char *file, const char *key, uint64_t *ret);
bool cg_exists(int dir_fd, const char *file);
/* Is token (space or newline separated) in s? */
bool cg_has_token(const char *s, const char *token);

/* mkdirat() that, on a fake tree, gives the new directory empty copies of its parent's
 * regular files. 1 if created, 0 if it existed. */
int cg_mkdirat(const struct cgroup_manager *m, int parent_fd, const char *name);
/* Opens dir (relative to dir_fd, "." or "/" for itself) as an O_DIRECTORY fd. */
int cg_open_dir(int dir_fd, const char *path);
/* Fills h->own_fd from h->own_path relative to mount_fd. */
int cg_open_own(struct cg_hierarchy *h, int mount_fd);
/* Creates <own>/<name> in h and opens h->base_fd. 1 if created, 0 if it existed. */
int cg_open_base(struct cgroup_manager *m, struct cg_hierarchy *h);
/* The directory fd of path in h (open for reading), -ENOENT if missing. */
int cg_open_path(struct cg_hierarchy *h, const char *path);
/* The first hierarchy carrying ctrl, or NULL. */
struct cg_hierarchy *cg_find(struct cgroup_manager *m, unsigned ctrl);
/* Is fd on a filesystem with this magic (always true on a fake tree)? */
bool cg_fs_is(const struct cgroup_manager *m, int fd, unsigned long magic);
/* A new hierarchy slot (fds -EBADF), or NULL when full. */
struct cg_hierarchy *cg_add(struct cgroup_manager *m);
