/* SPDX-License-Identifier: MIT */
/* cgroups: the interface (cgroup.h), /proc/self/cgroup parsing, and what both backends do the
 * same way: creating and removing directories, attaching, killing, finding stale cgroups. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "cgroup-internal.h"
#include "util/cleanup.h"

/* How long cgroup_kill() waits for a cgroup to empty, and for a freezer to report frozen. */
#define KILL_TIMEOUT_NS (1000ULL * 1000 * 1000)
#define FREEZE_TIMEOUT_NS (200ULL * 1000 * 1000)

/* ---- small file helpers ---- */

int cg_write(const struct cgroup_manager *m, int dir_fd, const char *file, const char *value)
{
	/* cgroupfs reports a rejected value from write(), so one write() per value; on a fake
	 * tree truncate so that the file holds exactly the last value. */
	_cleanup_close_ int fd =
		openat(dir_fd, file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | (m->fake ? O_TRUNC : 0));
	if (fd < 0)
		return -errno;
	size_t len = strlen(value);
	ssize_t n;
	/* Moving a task (cgroup.procs) can fail with EINTR when it races with the task's own
	 * signals or exit: try a few times. */
	int tries = 0;
	do
		n = write(fd, value, len);
	while (n < 0 && errno == EINTR && ++tries < 10);
	if (n < 0)
		return -errno;
	if ((size_t)n != len)
		return -EIO;
	return 0;
}

int cg_write_u64(const struct cgroup_manager *m, int dir_fd, const char *file, uint64_t v)
{
	char s[24];
	(void)snprintf(s, sizeof(s), "%" PRIu64, v);
	return cg_write(m, dir_fd, file, s);
}

int cg_read(int dir_fd, const char *file, char **ret)
{
	_cleanup_close_ int fd = openat(dir_fd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	size_t cap = 4096, len = 0;
	_cleanup_free_ char *s = malloc(cap);
	if (!s)
		return -ENOMEM;
	for (;;) {
		if (cap - len < 2) {
			if (cap > (size_t)64 << 20)
				return -EFBIG;
			char *t = realloc(s, cap * 2);
			if (!t)
				return -ENOMEM;
			s = t;
			cap *= 2;
		}
		ssize_t n = read(fd, s + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	s[len] = '\0';
	*ret = TAKE_PTR(s);
	return 0;
}

static int parse_u64(const char *s, uint64_t *ret)
{
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -errno;
	if (*end != '\0' && *end != '\n' && *end != ' ')
		return -EINVAL;
	*ret = v;
	return 0;
}

int cg_read_u64(int dir_fd, const char *file, uint64_t *ret)
{
	_cleanup_free_ char *s = NULL;
	int r = cg_read(dir_fd, file, &s);
	if (r < 0)
		return r;
	return parse_u64(s, ret);
}

int cg_read_key_u64(int dir_fd, const char *file, const char *key, uint64_t *ret)
{
	_cleanup_free_ char *s = NULL;
	int r = cg_read(dir_fd, file, &s);
	if (r < 0)
		return r;
	size_t klen = strlen(key);
	for (char *line = s; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
			return parse_u64(line + klen + 1, ret);
		line = nl ? nl + 1 : NULL;
	}
	return -ENODATA;
}

bool cg_exists(int dir_fd, const char *file)
{
	return faccessat(dir_fd, file, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

bool cg_has_token(const char *s, const char *token)
{
	size_t tlen = strlen(token);
	for (const char *p = s; p && *p;) {
		p += strspn(p, " \n\t");
		size_t n = strcspn(p, " \n\t");
		if (n == tlen && strncmp(p, token, n) == 0)
			return true;
		p += n;
	}
	return false;
}

int cg_open_dir(int dir_fd, const char *path)
{
	if (streq(path, "/") || streq(path, ""))
		path = ".";
	else if (path[0] == '/')
		path++;
	int fd = openat(dir_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

bool cg_fs_is(const struct cgroup_manager *m, int fd, unsigned long magic)
{
	if (m->fake)
		return true;
	struct statfs sfs;
	if (fstatfs(fd, &sfs) < 0)
		return false;
	return (unsigned long)sfs.f_type == magic;
}

/* ---- directories ---- */

/* A DIR stream of its own over dir_fd's directory (dir_fd stays open); NULL with errno set. */
static DIR *opendir_at(int dir_fd)
{
	int dfd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return NULL;
	DIR *d = fdopendir(dfd);
	if (!d) {
		int saved = errno;
		(void)safe_close(dfd);
		errno = saved;
	}
	return d;
}

static int copy_file_names(int from_fd, int to_fd)
{
	_cleanup_closedir_ DIR *d = opendir_at(from_fd);
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_type != DT_REG)
			continue;
		_cleanup_close_ int fd =
			openat(to_fd, de->d_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 && errno != EEXIST)
			return -errno;
	}
	return 0;
}

int cg_mkdirat(const struct cgroup_manager *m, int parent_fd, const char *name)
{
	if (mkdirat(parent_fd, name, 0755) < 0)
		return errno == EEXIST ? 0 : -errno;
	if (m->fake) {
		_cleanup_close_ int fd = cg_open_dir(parent_fd, name);
		if (fd < 0)
			return fd;
		int r = copy_file_names(parent_fd, fd);
		if (r < 0)
			return r;
	}
	return 1;
}

int cg_open_own(struct cg_hierarchy *h, int mount_fd)
{
	int fd = cg_open_dir(mount_fd, h->own_path);
	if (fd < 0)
		return fd;
	h->own_fd = fd;
	return 0;
}

int cg_open_base(struct cgroup_manager *m, struct cg_hierarchy *h)
{
	int created = cg_mkdirat(m, h->own_fd, m->name);
	if (created < 0)
		return created;
	int fd = cg_open_dir(h->own_fd, m->name);
	if (fd < 0)
		return fd;
	h->base_fd = fd;
	return created;
}

int cg_open_path(struct cg_hierarchy *h, const char *path)
{
	return cg_open_dir(h->base_fd, path);
}

struct cg_hierarchy *cg_find(struct cgroup_manager *m, unsigned ctrl)
{
	for (size_t i = 0; i < m->n_h; i++)
		if (m->h[i].controllers & ctrl)
			return &m->h[i];
	return NULL;
}

struct cg_hierarchy *cg_add(struct cgroup_manager *m)
{
	if (m->n_h >= CG_HIERARCHY_MAX)
		return NULL;
	struct cg_hierarchy *h = &m->h[m->n_h++];
	*h = (struct cg_hierarchy){ .own_fd = -EBADF, .base_fd = -EBADF };
	return h;
}

/* Relative paths below <name>: "a", "a/b"; components neither empty nor "." nor "..". */
static bool path_valid(const char *path)
{
	if (!path || !*path || strlen(path) >= PATH_MAX)
		return false;
	for (const char *p = path;;) {
		size_t n = strcspn(p, "/");
		if (n == 0 || n > NAME_MAX || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!p[n])
			return true;
		p += n + 1;
	}
}

/* ---- /proc/self/cgroup ---- */

static void proc_done(struct cg_proc *pc)
{
	for (size_t i = 0; i < pc->n; i++) {
		free(pc->lines[i].controllers);
		free(pc->lines[i].path);
	}
	free(pc->lines);
	*pc = (struct cg_proc){};
}

static int proc_parse(const char *file, struct cg_proc *ret)
{
	_cleanup_free_ char *s = NULL;
	int r = cg_read(AT_FDCWD, file, &s);
	if (r < 0)
		return r;
	struct cg_proc pc = {};
	for (char *line = s; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2 || c2[1] != '/') {
			proc_done(&pc);
			return -EBADMSG;
		}
		*c1 = *c2 = '\0';
		uint64_t hid;
		if (parse_u64(line, &hid) < 0 || hid > UINT_MAX) {
			proc_done(&pc);
			return -EBADMSG;
		}
		struct cg_proc_line *t = realloc(pc.lines, (pc.n + 1) * sizeof(*t));
		if (!t) {
			proc_done(&pc);
			return -ENOMEM;
		}
		pc.lines = t;
		t[pc.n] = (struct cg_proc_line){ .hid = (unsigned)hid,
						 .controllers = strdup(c1 + 1),
						 .path = strdup(c2 + 1) };
		if (!t[pc.n].controllers || !t[pc.n].path) {
			pc.n++;
			proc_done(&pc);
			return -ENOMEM;
		}
		pc.n++;
		line = nl ? nl + 1 : NULL;
	}
	*ret = pc;
	return 0;
}

/* ---- manager ---- */

struct cgroup_manager *cgroup_manager_free(struct cgroup_manager *m)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n_h; i++) {
		(void)safe_close(m->h[i].own_fd);
		(void)safe_close(m->h[i].base_fd);
		free(m->h[i].mount);
		free(m->h[i].own_path);
	}
	free(m->name);
	free(m);
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct cgroup_manager *, cgroup_manager_free)

int cgroup_manager_new_with(const char *root, const char *proc_self_cgroup, const char *name,
			    const struct cgroup_manager_options *opts, struct cgroup_manager **ret)
{
	if (!root || !proc_self_cgroup || !opts || !ret || !name || !*name || strchr(name, '/') ||
	    streq(name, ".") || streq(name, "..") || strlen(name) > NAME_MAX)
		return -EINVAL;
	if (opts->backend < 0 || opts->backend >= _CGROUP_BACKEND_MAX)
		return -EINVAL;
	if (opts->fake_fs && opts->backend == CGROUP_BACKEND_AUTO)
		return -EINVAL;

	_cleanup_close_ int root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return -errno;

	enum cgroup_backend backend = opts->backend;
	if (backend == CGROUP_BACKEND_AUTO) {
		/* cgroup2 at root: v2. A tmpfs at root holds v1 mounts (and maybe "unified"). */
		struct statfs sfs;
		if (fstatfs(root_fd, &sfs) < 0)
			return -errno;
		if ((unsigned long)sfs.f_type == CG_CGROUP2_SUPER_MAGIC)
			backend = CGROUP_BACKEND_V2;
		else if ((unsigned long)sfs.f_type == CG_TMPFS_MAGIC)
			backend = CGROUP_BACKEND_V1;
		else
			return -EOPNOTSUPP;
	}

	_cleanup_(cgroup_manager_freep) struct cgroup_manager *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->backend = backend;
	m->fake = opts->fake_fs;
	m->ops = backend == CGROUP_BACKEND_V2 ? &cgroup_v2_ops : &cgroup_v1_ops;
	m->name = strdup(name);
	if (!m->name)
		return -ENOMEM;

	struct cg_proc pc = {};
	int r = proc_parse(proc_self_cgroup, &pc);
	if (r < 0)
		return r;
	r = m->ops->init(m, root_fd, &pc, opts);
	proc_done(&pc);
	if (r < 0)
		return r;
	if (m->n_h == 0)
		return -EOPNOTSUPP;
	*ret = TAKE_PTR(m);
	return 0;
}

int cgroup_manager_new(const char *root, const char *proc_self_cgroup, const char *name,
		       struct cgroup_manager **ret)
{
	const struct cgroup_manager_options opts = { .backend = CGROUP_BACKEND_AUTO,
						     .move_self = true };
	return cgroup_manager_new_with(root, proc_self_cgroup, name, &opts, ret);
}

enum cgroup_backend cgroup_manager_backend(const struct cgroup_manager *m)
{
	return m->backend;
}

unsigned cgroup_manager_controllers(const struct cgroup_manager *m)
{
	return m->controllers;
}

bool cgroup_manager_has_v2(const struct cgroup_manager *m)
{
	return m->v2 != NULL;
}

/* ---- create, attach ---- */

static int limits_check(const struct cgroup_manager *m, const struct cgroup_limits *lim)
{
	if (lim->cpu_quota_us && lim->cpu_quota_us < 1000)
		return -EINVAL;
	if (lim->cpu_period_us && (lim->cpu_period_us < 1000 || lim->cpu_period_us > 1000000))
		return -EINVAL;
	if (lim->memory_max && !(m->controllers & CGROUP_CTRL_MEMORY))
		return -EOPNOTSUPP;
	if (lim->cpu_quota_us && !(m->controllers & CGROUP_CTRL_CPU))
		return -EOPNOTSUPP;
	if (lim->pids_max && !(m->controllers & CGROUP_CTRL_PIDS))
		return -EOPNOTSUPP;
	return 0;
}

/* mkdir -p of path below h's base; opens the leaf. *ret_created: the leaf is new. */
static int mkdir_path(struct cgroup_manager *m, struct cg_hierarchy *h, const char *path,
		      int *ret_fd, bool *ret_created)
{
	_cleanup_close_ int dir_fd = fcntl(h->base_fd, F_DUPFD_CLOEXEC, 3);
	if (dir_fd < 0)
		return -errno;
	char comp[NAME_MAX + 1];
	int created = 0;
	for (const char *p = path;;) {
		size_t n = strcspn(p, "/");
		memcpy(comp, p, n);
		comp[n] = '\0';
		bool last = p[n] == '\0';
		created = cg_mkdirat(m, dir_fd, comp);
		if (created < 0)
			return created;
		int fd = cg_open_dir(dir_fd, comp);
		if (fd < 0)
			return fd;
		(void)safe_close(dir_fd);
		dir_fd = fd;
		if (last)
			break;
		if (created && m->ops->prepare_parent) {
			int r = m->ops->prepare_parent(m, h, dir_fd);
			if (r < 0)
				return r;
		}
		p += n + 1;
	}
	*ret_fd = TAKE_FD(dir_fd);
	*ret_created = created > 0;
	return 0;
}

/* Removes path in h, bottom-up. Returns how many directories went away. */
static int remove_path(struct cgroup_manager *m, struct cg_hierarchy *h, const char *path);

int cgroup_create(struct cgroup_manager *m, const char *path, const struct cgroup_limits *lim)
{
	static const struct cgroup_limits none = {};
	if (!m || !path_valid(path))
		return -EINVAL;
	if (!lim)
		lim = &none;
	int r = limits_check(m, lim);
	if (r < 0)
		return r;

	bool created[CG_HIERARCHY_MAX] = {};
	for (size_t i = 0; i < m->n_h; i++) {
		_cleanup_close_ int fd = -EBADF;
		r = mkdir_path(m, &m->h[i], path, &fd, &created[i]);
		if (r < 0)
			goto fail;
		r = m->ops->apply_limits(m, &m->h[i], fd, lim);
		if (r < 0)
			goto fail;
	}
	return 0;
fail:
	for (size_t i = 0; i < m->n_h; i++)
		if (created[i])
			(void)remove_path(m, &m->h[i], path);
	return r;
}

int cgroup_attach(struct cgroup_manager *m, const char *path, pid_t pid)
{
	if (!m || !path_valid(path) || pid <= 0)
		return -EINVAL;
	char s[16];
	(void)snprintf(s, sizeof(s), "%d", (int)pid);
	for (size_t i = 0; i < m->n_h; i++) {
		_cleanup_close_ int fd = cg_open_path(&m->h[i], path);
		if (fd < 0)
			return fd;
		int r = cg_write(m, fd, "cgroup.procs", s);
		if (r < 0)
			return r;
	}
	return 0;
}

int cgroup_self_attach_paths(struct cgroup_manager *m, const char *path, char ***ret_paths)
{
	if (!m || !path_valid(path))
		return -EINVAL;
	char **v = calloc(m->n_h + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < m->n_h; i++) {
		if (m->h[i].v2)
			continue;
		char link[64], base[PATH_MAX];
		(void)snprintf(link, sizeof(link), "/proc/self/fd/%d", m->h[i].base_fd);
		ssize_t k = readlink(link, base, sizeof(base) - 1);
		if (k < 0) {
			int r = -errno;
			strv_free(v);
			return r;
		}
		base[k] = 0;
		if (asprintf(&v[n], "%s/%s/tasks", base, path) < 0) {
			v[n] = NULL;
			strv_free(v);
			return -ENOMEM;
		}
		n++;
	}
	*ret_paths = v;
	return 0;
}

/* ---- process lists, kill ---- */

struct pidset {
	pid_t *p;
	size_t n, cap;
};

static int pidset_add(struct pidset *s, pid_t pid)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		pid_t *t = realloc(s->p, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		s->p = t;
		s->cap = cap;
	}
	s->p[s->n++] = pid;
	return 0;
}

static int pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

/* v1 cgroup.procs may list a process twice; sort and drop duplicates. */
static void pidset_uniq(struct pidset *s)
{
	if (s->n < 2)
		return;
	qsort(s->p, s->n, sizeof(*s->p), pid_cmp);
	size_t k = 1;
	for (size_t i = 1; i < s->n; i++)
		if (s->p[i] != s->p[k - 1])
			s->p[k++] = s->p[i];
	s->n = k;
}

/* Every pid in dir_fd's cgroup.procs and those of its descendants. */
static int collect_pids(int dir_fd, struct pidset *s, unsigned depth)
{
	if (depth > 64)
		return -ELOOP;
	_cleanup_free_ char *procs = NULL;
	int r = cg_read(dir_fd, "cgroup.procs", &procs);
	if (r < 0 && r != -ENOENT)
		return r;
	for (char *p = procs; p && *p;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (v > 0 && v <= INT_MAX && (r = pidset_add(s, (pid_t)v)) < 0)
			return r;
		p = end + strspn(end, " \n");
	}

	_cleanup_closedir_ DIR *d = opendir_at(dir_fd);
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		_cleanup_close_ int sub = cg_open_dir(dirfd(d), de->d_name);
		if (sub == -ENOENT)
			continue; /* removed meanwhile */
		if (sub < 0)
			return sub;
		r = collect_pids(sub, s, depth + 1);
		if (r < 0)
			return r;
	}
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void nap(unsigned *us)
{
	struct timespec ts = { .tv_nsec = (long)*us * 1000 };
	(void)nanosleep(&ts, NULL);
	if (*us < 10000)
		*us *= 2;
}

/* Every pid of path in all hierarchies (fds[i] < 0: missing there). */
static int collect_all(struct cgroup_manager *m, const int *fds, struct pidset *s)
{
	s->n = 0;
	for (size_t i = 0; i < m->n_h; i++) {
		if (fds[i] < 0)
			continue;
		int r = collect_pids(fds[i], s, 0);
		if (r < 0)
			return r;
	}
	pidset_uniq(s);
	return 0;
}

/* The freezer stops forks while we kill (v2 cgroup.freeze, v1 freezer.state). Waits, bounded,
 * for the state to settle; a freezer that does not settle still leaves the kill loop to do the
 * work, so only hard write errors count. */
static int freeze(struct cgroup_manager *m, int fd, bool v2, bool on)
{
	int r = v2 ? cg_write(m, fd, "cgroup.freeze", on ? "1" : "0")
		   : cg_write(m, fd, "freezer.state", on ? "FROZEN" : "THAWED");
	if (r < 0 || !on || m->fake)
		return r;
	uint64_t deadline = now_ns() + FREEZE_TIMEOUT_NS;
	unsigned us = 50;
	while (now_ns() < deadline) {
		uint64_t frozen = 0;
		_cleanup_free_ char *state = NULL;
		if (v2 ? cg_read_key_u64(fd, "cgroup.events", "frozen", &frozen) == 0 && frozen
		       : cg_read(fd, "freezer.state", &state) == 0 && startswith(state, "FROZEN"))
			return 0;
		nap(&us);
	}
	return 0;
}

static int kill_path(struct cgroup_manager *m, const char *path, bool wait)
{
	if (!m || !path_valid(path))
		return -EINVAL;
	int fds[CG_HIERARCHY_MAX];
	bool any = false;
	for (size_t i = 0; i < m->n_h; i++) {
		fds[i] = cg_open_path(&m->h[i], path);
		if (fds[i] == -ENOENT)
			continue;
		if (fds[i] < 0) {
			int r = fds[i];
			for (size_t k = 0; k < i; k++)
				(void)safe_close(fds[k]);
			return r;
		}
		any = true;
	}
	if (!any)
		return 0;

	struct pidset s = {};
	int r, found = 0;
	int v2_fd = m->v2 ? fds[m->v2 - m->h] : -EBADF;
	int fr_fd = m->freezer ? fds[m->freezer - m->h] : -EBADF;
	bool frozen = false, frozen_v2 = false;

	r = collect_all(m, fds, &s);
	if (r < 0)
		goto out;
	found = (int)s.n;
	if (s.n == 0)
		goto out;

	if (v2_fd >= 0 && m->has_kill) {
		/* Atomic against forks, descendants included (kernel >= 5.14). */
		r = cg_write(m, v2_fd, "cgroup.kill", "1");
		if (r < 0)
			goto out;
	} else if (v2_fd >= 0 && m->has_freeze) {
		/* Drop this branch with kernel >= 5.14 (cgroup.kill). */
		r = freeze(m, v2_fd, true, true);
		if (r < 0)
			goto out;
		frozen = frozen_v2 = true;
	} else if (fr_fd >= 0) {
		r = freeze(m, fr_fd, false, true);
		if (r < 0)
			goto out;
		frozen = true;
	}

	uint64_t deadline = now_ns() + KILL_TIMEOUT_NS;
	unsigned us = 50;
	for (;;) {
		for (size_t i = 0; i < s.n; i++)
			(void)kill(s.p[i], SIGKILL);
		if (frozen) {
			/* Frozen tasks only act on the SIGKILL once thawed. */
			(void)freeze(m, frozen_v2 ? v2_fd : fr_fd, frozen_v2, false);
			frozen = false;
		}
		if (m->fake || !wait)
			break;
		nap(&us);
		r = collect_all(m, fds, &s);
		if (r < 0)
			goto out;
		if (s.n == 0)
			break;
		if (now_ns() >= deadline) {
			r = -ETIMEDOUT;
			goto out;
		}
	}
	r = 0;
out:
	if (frozen)
		(void)freeze(m, frozen_v2 ? v2_fd : fr_fd, frozen_v2, false);
	for (size_t i = 0; i < m->n_h; i++)
		(void)safe_close(fds[i]);
	free(s.p);
	return r < 0 ? r : found;
}

int cgroup_kill(struct cgroup_manager *m, const char *path)
{
	return kill_path(m, path, true);
}

int cgroup_kill_nowait(struct cgroup_manager *m, const char *path)
{
	return kill_path(m, path, false);
}

/* ---- remove ---- */

/* Removes everything below dir_fd (not dir_fd itself); counts removed directories. On a fake
 * tree regular files go too. */
static int remove_below(struct cgroup_manager *m, int dir_fd, unsigned depth, int *count)
{
	if (depth > 64)
		return -ELOOP;
	_cleanup_closedir_ DIR *d = opendir_at(dir_fd);
	if (!d)
		return -errno;
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (de->d_type == DT_DIR) {
			_cleanup_close_ int sub = cg_open_dir(dirfd(d), de->d_name);
			if (sub == -ENOENT)
				continue;
			if (sub < 0)
				return sub;
			r = remove_below(m, sub, depth + 1, count);
			if (r < 0)
				return r;
			if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0) {
				if (errno == ENOENT)
					continue;
				return -errno;
			}
			(*count)++;
		} else if (m->fake && unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
			return -errno;
	}
	return 0;
}

static int remove_path(struct cgroup_manager *m, struct cg_hierarchy *h, const char *path)
{
	_cleanup_close_ int fd = cg_open_path(h, path);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	int count = 0;
	int r = remove_below(m, fd, 0, &count);
	if (r < 0)
		return r;

	_cleanup_close_ int parent_fd = -EBADF;
	const char *slash = strrchr(path, '/'), *leaf = path;
	if (slash) {
		_cleanup_free_ char *dir = strndup(path, (size_t)(slash - path));
		if (!dir)
			return -ENOMEM;
		parent_fd = cg_open_path(h, dir);
		if (parent_fd < 0)
			return parent_fd == -ENOENT ? count : parent_fd;
		leaf = slash + 1;
	}
	if (unlinkat(slash ? parent_fd : h->base_fd, leaf, AT_REMOVEDIR) < 0)
		return errno == ENOENT ? count : -errno;
	return count + 1;
}

int cgroup_remove(struct cgroup_manager *m, const char *path)
{
	if (!m || !path_valid(path))
		return -EINVAL;
	int most = 0, err = 0;
	for (size_t i = 0; i < m->n_h; i++) {
		int r = remove_path(m, &m->h[i], path);
		if (r < 0) {
			if (!err)
				err = r;
			continue;
		}
		if (r > most)
			most = r;
	}
	return err ? err : most;
}

/* ---- stale cgroups ---- */

struct names {
	char **v;
	size_t n;
};

static void names_done(struct names *n)
{
	for (size_t i = 0; i < n->n; i++)
		free(n->v[i]);
	free(n->v);
	*n = (struct names){};
}

static int names_add_unique(struct names *n, const char *s)
{
	for (size_t i = 0; i < n->n; i++)
		if (streq(n->v[i], s))
			return 0;
	char **t = realloc(n->v, (n->n + 1) * sizeof(*t));
	if (!t)
		return -ENOMEM;
	n->v = t;
	n->v[n->n] = strdup(s);
	if (!n->v[n->n])
		return -ENOMEM;
	n->n++;
	return 0;
}

static int list_subdirs(int dir_fd, struct names *n)
{
	_cleanup_closedir_ DIR *d = opendir_at(dir_fd);
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		int r = names_add_unique(n, de->d_name);
		if (r < 0)
			return r;
	}
	return 0;
}

int cgroup_cleanup_stale(struct cgroup_manager *m)
{
	if (!m)
		return -EINVAL;
	struct names n = {};
	int r = 0, total = 0;
	for (size_t i = 0; i < m->n_h && r >= 0; i++)
		r = list_subdirs(m->h[i].base_fd, &n);
	if (r < 0) {
		names_done(&n);
		return r;
	}
	/* Keep going past a failure so that one stuck cgroup does not keep the others. */
	int err = 0;
	for (size_t i = 0; i < n.n; i++) {
		r = cgroup_kill(m, n.v[i]);
		if (r < 0 && !err)
			err = r;
		r = cgroup_remove(m, n.v[i]);
		if (r < 0) {
			if (!err)
				err = r;
			continue;
		}
		total += r;
	}
	names_done(&n);
	return err ? err : total;
}

int cgroup_remove_all(struct cgroup_manager *m)
{
	int total = cgroup_cleanup_stale(m);
	if (total < 0)
		return total;
	for (size_t i = 0; i < m->n_h; i++) {
		if (m->fake) {
			int count = 0;
			int r = remove_below(m, m->h[i].base_fd, 0, &count);
			if (r < 0)
				return r;
		}
		if (unlinkat(m->h[i].own_fd, m->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			return -errno;
	}
	return total;
}

/* ---- figures, v2 handles ---- */

int cgroup_oom_kills(struct cgroup_manager *m, const char *path, uint64_t *ret)
{
	if (!m || !path_valid(path) || !ret)
		return -EINVAL;
	return m->ops->oom_kills(m, path, ret);
}

int cgroup_memory_peak(struct cgroup_manager *m, const char *path, uint64_t *ret)
{
	if (!m || !path_valid(path) || !ret)
		return -EINVAL;
	return m->ops->memory_peak(m, path, ret);
}

int cgroup_memory_current(struct cgroup_manager *m, const char *path, uint64_t *ret)
{
	if (!m || !path_valid(path) || !ret)
		return -EINVAL;
	struct cg_hierarchy *h = cg_find(m, CGROUP_CTRL_MEMORY);
	if (!h)
		return -EOPNOTSUPP;
	_cleanup_close_ int fd = cg_open_path(h, path);
	if (fd < 0)
		return fd;
	return cg_read_u64(fd, h->v2 ? "memory.current" : "memory.usage_in_bytes", ret);
}

int cgroup_cpu_usage_ns(struct cgroup_manager *m, const char *path, uint64_t *ret)
{
	if (!m || !path_valid(path) || !ret)
		return -EINVAL;
	return m->ops->cpu_usage_ns(m, path, ret);
}

int cgroup_open_v2_dir(struct cgroup_manager *m, const char *path)
{
	if (!m || !path_valid(path))
		return -EINVAL;
	if (!m->v2)
		return -EOPNOTSUPP;
	int fd = openat(m->v2->base_fd, path, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

int cgroup_create_pool(struct cgroup_manager *m, const char *path, char **ret_abs_path)
{
	if (!m || !path_valid(path) || !ret_abs_path)
		return -EINVAL;
	if (!m->v2)
		return -EOPNOTSUPP;
	_cleanup_close_ int fd = -EBADF;
	bool created;
	int r = mkdir_path(m, m->v2, path, &fd, &created);
	if (r < 0)
		return r;
	/* A hybrid host's unified tree has no controllers to enable. */
	if (m->backend == CGROUP_BACKEND_V2 && m->ops->prepare_parent) {
		r = m->ops->prepare_parent(m, m->v2, fd);
		if (r < 0)
			return r;
	}
	char link[64], target[PATH_MAX];
	(void)snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	if ((size_t)n >= sizeof(target) - 1)
		return -ENAMETOOLONG;
	target[n] = '\0';
	char *s = strdup(target);
	if (!s)
		return -ENOMEM;
	*ret_abs_path = s;
	return 0;
}

int cgroup_v2_id(struct cgroup_manager *m, const char *path, uint64_t *ret)
{
	if (!m || !path_valid(path) || !ret)
		return -EINVAL;
	if (!m->v2)
		return -EOPNOTSUPP;
	_cleanup_close_ int fd = cgroup_open_v2_dir(m, path);
	if (fd < 0)
		return fd;
	if (!m->fake) {
		/* kernfs hands out the 64-bit cgroup id as its file handle, the value that
		 * bpf_get_current_cgroup_id() returns. */
		union {
			struct file_handle fh;
			char raw[sizeof(struct file_handle) + 64];
		} h = { .fh.handle_bytes = 64 };
		int mnt_id;
		if (name_to_handle_at(fd, "", &h.fh, &mnt_id, AT_EMPTY_PATH) == 0 &&
		    h.fh.handle_bytes == sizeof(uint64_t)) {
			uint64_t id;
			memcpy(&id, h.fh.f_handle, sizeof(id));
			*ret = id;
			return 0;
		}
	}
	/* The inode number: equal to the id on kernfs with 64-bit inodes, and what a fake tree
	 * has. */
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	*ret = (uint64_t)st.st_ino;
	return 0;
}
