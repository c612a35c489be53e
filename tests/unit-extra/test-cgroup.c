/* SPDX-License-Identifier: MIT */
/* cgroups/: both backends against a fake cgroupfs (plain directories) anywhere, and the real
 * cgroup filesystem of this host when root: limits that hold (OOM kill, pids.max), kill,
 * remove, stale cleanup, the unified tree, and nothing of ours left afterwards. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup.h"
#include "util/cleanup.h"

#define MiB (1024ULL * 1024)

/* ---- little file helpers (test code: paths are plain strings here) ---- */

static void put(const char *content, const char *fmt, ...) _printf_(2, 3);
static void put(const char *content, const char *fmt, ...)
{
	char p[4096];
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(p, sizeof(p), fmt, ap);
	va_end(ap);
	FILE *f = fopen(p, "we");
	assert_non_null(f);
	assert_int_equal(fputs(content, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* The content of a file, or "<missing>"; a static buffer. */
static const char *get(const char *fmt, ...) _printf_(1, 2);
static const char *get(const char *fmt, ...)
{
	static char buf[8192];
	char p[4096];
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(p, sizeof(p), fmt, ap);
	va_end(ap);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return "<missing>";
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	(void)close(fd);
	if (n < 0)
		return "<error>";
	buf[n] = '\0';
	return buf;
}

static bool exists(const char *fmt, ...) _printf_(1, 2);
static bool exists(const char *fmt, ...)
{
	char p[4096];
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(p, sizeof(p), fmt, ap);
	va_end(ap);
	return access(p, F_OK) == 0;
}

static void mkdirs(const char *fmt, ...) _printf_(1, 2);
static void mkdirs(const char *fmt, ...)
{
	char p[4096];
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(p, sizeof(p), fmt, ap);
	va_end(ap);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			(void)mkdir(p, 0755);
			*s = '/';
		}
	assert_true(mkdir(p, 0755) == 0 || errno == EEXIST);
}

static void rm_rf(const char *path)
{
	DIR *d = opendir(path);
	if (!d) {
		(void)unlink(path);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		char p[4096];
		(void)snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (de->d_type == DT_DIR)
			rm_rf(p);
		else
			(void)unlink(p);
	}
	(void)closedir(d);
	(void)rmdir(path);
}

static uint64_t now_us(void)
{
	struct timespec ts;
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- the fake cgroupfs ---- */

struct fake {
	char dir[64]; /* holds cg/ (the root) and proc (a /proc/self/cgroup) */
	char root[96];
	char proc[96];
	struct cgroup_manager *m;
};

static int fake_setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	strcpy(f->dir, "/tmp/spore-test-cgroup-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	(void)snprintf(f->root, sizeof(f->root), "%s/cg", f->dir);
	(void)snprintf(f->proc, sizeof(f->proc), "%s/proc", f->dir);
	assert_int_equal(mkdir(f->root, 0755), 0);
	*state = f;
	return 0;
}

static int fake_teardown(void **state)
{
	struct fake *f = *state;
	f->m = cgroup_manager_free(f->m);
	rm_rf(f->dir);
	free(f);
	return 0;
}

static void touch_files(const char *dir, const char *const *files)
{
	for (size_t i = 0; files[i]; i++)
		put("", "%s/%s", dir, files[i]);
}

enum {
	F_MEMSW = 1 << 0, /* memory.memsw.limit_in_bytes (swap accounting) */
	F_UNIFIED = 1 << 1, /* <root>/unified */
	F_KILL = 1 << 2, /* cgroup.kill in the unified tree */
	F_PIDS = 1 << 3, /* a pids line and mount */
	F_CPUACCT = 1 << 4,
	F_COMOUNT = 1 << 5, /* "cpu,cpuacct" as one mount (with F_CPUACCT) */
	F_FREEZER = 1 << 6,
	F_OWN_MISSING = 1 << 7, /* the memory line names a cgroup that is not there */
	F_V1_DEFAULT = F_MEMSW | F_UNIFIED | F_KILL | F_PIDS | F_CPUACCT | F_FREEZER,
};

/* A hybrid host as on our CI: memory at /process_api/abc, the rest at /. */
static void fake_v1(struct fake *f, unsigned flags)
{
	static const char *const procs[] = { "cgroup.procs", NULL };
	static const char *const mem[] = { "cgroup.procs",	      "memory.limit_in_bytes",
					   "memory.swappiness",	      "memory.oom_control",
					   "memory.max_usage_in_bytes", NULL };
	static const char *const cpu[] = { "cgroup.procs", "cpu.cfs_quota_us", "cpu.cfs_period_us",
					   NULL };
	static const char *const cpuacct[] = { "cpuacct.usage", NULL };
	static const char *const pids[] = { "cgroup.procs", "pids.max", NULL };
	static const char *const freezer[] = { "cgroup.procs", "freezer.state", NULL };
	static const char *const unified[] = { "cgroup.procs", "cgroup.freeze", "cgroup.events",
					       "cpu.stat", NULL };
	char d[256], lines[1024] = "9:name=systemd:/\n";

	mkdirs("%s/memory/process_api/abc", f->root);
	(void)snprintf(d, sizeof(d), "%s/memory/process_api/abc", f->root);
	touch_files(d, mem);
	if (flags & F_MEMSW)
		put("", "%s/memory.memsw.limit_in_bytes", d);
	(void)strcat(lines, flags & F_OWN_MISSING ? "4:memory:/process_api/zzz\n"
						  : "4:memory:/process_api/abc\n");

	const char *cpu_dir = (flags & F_COMOUNT) ? "cpu,cpuacct" : "cpu";
	(void)snprintf(d, sizeof(d), "%s/%s", f->root, cpu_dir);
	mkdirs("%s", d);
	touch_files(d, cpu);
	if (flags & F_COMOUNT) {
		touch_files(d, cpuacct);
		(void)strcat(lines, "1:cpu,cpuacct:/\n");
	} else {
		(void)strcat(lines, "1:cpu:/\n");
		if (flags & F_CPUACCT) {
			(void)snprintf(d, sizeof(d), "%s/cpuacct", f->root);
			mkdirs("%s", d);
			touch_files(d, procs);
			touch_files(d, cpuacct);
			(void)strcat(lines, "2:cpuacct:/\n");
		}
	}
	if (flags & F_PIDS) {
		(void)snprintf(d, sizeof(d), "%s/pids", f->root);
		mkdirs("%s", d);
		touch_files(d, pids);
		(void)strcat(lines, "8:pids:/\n");
	}
	if (flags & F_FREEZER) {
		(void)snprintf(d, sizeof(d), "%s/freezer", f->root);
		mkdirs("%s", d);
		touch_files(d, freezer);
		(void)strcat(lines, "6:freezer:/\n");
	}
	/* An unused controller that must stay untouched. */
	mkdirs("%s/blkio", f->root);
	(void)strcat(lines, "7:blkio:/\n");
	if (flags & F_UNIFIED) {
		(void)snprintf(d, sizeof(d), "%s/unified", f->root);
		mkdirs("%s", d);
		touch_files(d, unified);
		if (flags & F_KILL)
			put("", "%s/cgroup.kill", d);
	}
	(void)strcat(lines, "0::/\n");
	put(lines, "%s", f->proc);
}

enum {
	G_CONTROLLERS_ALL = 1 << 0, /* cgroup.controllers "cpu io memory pids" */
	G_MEMORY_PIDS = 1 << 1, /* only "memory pids" */
	G_ENABLED = 1 << 2, /* own subtree_control already "cpu memory pids" */
	G_PROCS_SELF = 1 << 3, /* own cgroup.procs holds this process */
	G_PROCS_OTHER = 1 << 4, /* ... and another one */
	G_NO_PEAK = 1 << 5,
};

/* A v2 host, our cgroup at /x/y. */
static void fake_v2(struct fake *f, unsigned flags)
{
	static const char *const files[] = {
		"cgroup.procs", "cgroup.subtree_control", "cgroup.kill", "cgroup.freeze",
		"cgroup.events", "memory.max", "memory.swap.max", "memory.oom.group",
		"memory.events", "memory.current", "cpu.max", "cpu.stat", "pids.max", NULL
	};
	char d[256];
	(void)snprintf(d, sizeof(d), "%s/x/y", f->root);
	mkdirs("%s", d);
	touch_files(d, files);
	if (!(flags & G_NO_PEAK))
		put("", "%s/memory.peak", d);
	put(flags & G_MEMORY_PIDS ? "memory pids\n" : "cpu io memory pids\n",
	    "%s/cgroup.controllers", d);
	if (flags & G_ENABLED)
		put("cpu memory pids\n", "%s/cgroup.subtree_control", d);
	char procs[64] = "";
	if (flags & G_PROCS_OTHER)
		(void)strcat(procs, "1\n");
	if (flags & (G_PROCS_SELF | G_PROCS_OTHER))
		(void)snprintf(procs + strlen(procs), sizeof(procs) - strlen(procs), "%d\n",
			       (int)getpid());
	put(procs, "%s/cgroup.procs", d);
	put("0::/x/y\n", "%s", f->proc);
}

static int fake_new(struct fake *f, enum cgroup_backend b, bool move_self)
{
	f->m = cgroup_manager_free(f->m);
	const struct cgroup_manager_options o = { .backend = b, .fake_fs = true,
						  .move_self = move_self };
	return cgroup_manager_new_with(f->root, f->proc, "spore", &o, &f->m);
}

/* ---- fake v1 ---- */

#define MEM "%s/memory/process_api/abc/spore"

static void test_v1_limits(void **state)
{
	struct fake *f = *state;
	static const struct {
		struct cgroup_limits lim;
		const char *mem, *quota, *period, *pids;
	} cases[] = {
		{ { 32 * MiB, 50000, 100000, 8 }, "33554432", "50000", "100000", "8" },
		{ { 0, 0, 0, 0 }, "-1", "-1", "100000", "max" },
		{ { 1024 * MiB, 20000, 0, 64 }, "1073741824", "20000", "100000", "64" },
		{ { 0, 0, 50000, 0 }, "-1", "-1", "50000", "max" },
		{ { 4096, 1000, 1000000, 1 }, "4096", "1000", "1000000", "1" },
	};
	fake_v1(f, F_V1_DEFAULT);
	assert_int_equal(fake_new(f, CGROUP_BACKEND_V1, false), 0);
	assert_int_equal(cgroup_manager_backend(f->m), CGROUP_BACKEND_V1);
	assert_int_equal(cgroup_manager_controllers(f->m),
			 CGROUP_CTRL_CPU | CGROUP_CTRL_CPUACCT | CGROUP_CTRL_MEMORY |
				 CGROUP_CTRL_PIDS);
	assert_true(cgroup_manager_has_v2(f->m));

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		assert_int_equal(cgroup_create(f->m, "fn-hello/i-00ab", &cases[i].lim), 0);
		assert_string_equal(get(MEM "/fn-hello/i-00ab/memory.limit_in_bytes", f->root),
				    cases[i].mem);
		assert_string_equal(
			get(MEM "/fn-hello/i-00ab/memory.memsw.limit_in_bytes", f->root),
			cases[i].mem);
		assert_string_equal(get(MEM "/fn-hello/i-00ab/memory.swappiness", f->root), "0");
		assert_string_equal(get(MEM "/fn-hello/i-00ab/memory.oom_control", f->root), "0");
		assert_string_equal(get("%s/cpu/spore/fn-hello/i-00ab/cpu.cfs_quota_us", f->root),
				    cases[i].quota);
		assert_string_equal(get("%s/cpu/spore/fn-hello/i-00ab/cpu.cfs_period_us", f->root),
				    cases[i].period);
		assert_string_equal(get("%s/pids/spore/fn-hello/i-00ab/pids.max", f->root),
				    cases[i].pids);
	}
	/* Parents get no limits; every used hierarchy has the path, below our own cgroup only. */
	assert_string_equal(get(MEM "/fn-hello/memory.limit_in_bytes", f->root), "");
	assert_string_equal(get("%s/pids/spore/fn-hello/pids.max", f->root), "");
	assert_true(exists("%s/cpuacct/spore/fn-hello/i-00ab", f->root));
	assert_true(exists("%s/unified/spore/fn-hello/i-00ab", f->root));
	assert_false(exists("%s/memory/spore", f->root));
	assert_false(exists("%s/blkio/spore", f->root));
	/* cgroup.kill is there: the freezer is not used. */
	assert_false(exists("%s/freezer/spore", f->root));
}

static void test_v1_layouts(void **state)
{
	struct fake *f = *state;
	static const struct {
		unsigned flags;
		unsigned controllers;
		bool memsw, unified, freezer;
	} cases[] = {
		{ F_V1_DEFAULT, CGROUP_CTRL_CPU | CGROUP_CTRL_CPUACCT | CGROUP_CTRL_MEMORY |
				       CGROUP_CTRL_PIDS,
		  true, true, false },
		/* Without swap accounting: no memsw file appears. */
		{ F_UNIFIED | F_KILL | F_PIDS,
		  CGROUP_CTRL_CPU | CGROUP_CTRL_MEMORY | CGROUP_CTRL_PIDS, false, true, false },
		/* No cgroup.kill (kernel < 5.14): the unified cgroup.freeze will do. */
		{ F_MEMSW | F_UNIFIED | F_PIDS | F_FREEZER,
		  CGROUP_CTRL_CPU | CGROUP_CTRL_MEMORY | CGROUP_CTRL_PIDS, true, true, false },
		/* Legacy host: no unified tree. */
		{ F_MEMSW | F_PIDS | F_FREEZER,
		  CGROUP_CTRL_CPU | CGROUP_CTRL_MEMORY | CGROUP_CTRL_PIDS | CGROUP_CTRL_FREEZER,
		  true, false, true },
		/* cpu and cpuacct mounted together. */
		{ F_MEMSW | F_PIDS | F_CPUACCT | F_COMOUNT,
		  CGROUP_CTRL_CPU | CGROUP_CTRL_CPUACCT | CGROUP_CTRL_MEMORY | CGROUP_CTRL_PIDS,
		  true, false, false },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		rm_rf(f->root);
		assert_int_equal(mkdir(f->root, 0755), 0);
		fake_v1(f, cases[i].flags);
		assert_int_equal(fake_new(f, CGROUP_BACKEND_V1, false), 0);
		assert_int_equal(cgroup_manager_controllers(f->m), cases[i].controllers);
		assert_int_equal(cgroup_manager_has_v2(f->m), cases[i].unified);
		const struct cgroup_limits lim = { .memory_max = 64 * MiB, .pids_max = 4 };
		assert_int_equal(cgroup_create(f->m, "f/i", &lim), 0);
		assert_string_equal(get(MEM "/f/i/memory.limit_in_bytes", f->root), "67108864");
		assert_int_equal(exists(MEM "/f/i/memory.memsw.limit_in_bytes", f->root),
				 cases[i].memsw);
		assert_int_equal(exists("%s/unified/spore/f/i", f->root), cases[i].unified);
		assert_int_equal(exists("%s/freezer/spore/f/i", f->root), cases[i].freezer);
		if (cases[i].flags & F_COMOUNT)
			assert_true(exists("%s/cpu,cpuacct/spore/f/i", f->root));

		assert_int_equal(cgroup_attach(f->m, "f/i", 4242), 0);
		assert_string_equal(get(MEM "/f/i/cgroup.procs", f->root), "4242");
		assert_string_equal(get("%s/pids/spore/f/i/cgroup.procs", f->root), "4242");
		if (cases[i].unified)
			assert_string_equal(get("%s/unified/spore/f/i/cgroup.procs", f->root),
					    "4242");
	}
}

static void test_v1_missing(void **state)
{
	struct fake *f = *state;
	/* No pids line: pids limits are refused, the rest works. */
	fake_v1(f, F_MEMSW | F_UNIFIED | F_KILL);
	assert_int_equal(fake_new(f, CGROUP_BACKEND_V1, false), 0);
	assert_int_equal(cgroup_manager_controllers(f->m), CGROUP_CTRL_CPU | CGROUP_CTRL_MEMORY);
	assert_int_equal(cgroup_create(f->m, "a", &(struct cgroup_limits){ .pids_max = 8 }),
			 -EOPNOTSUPP);
	assert_false(exists(MEM "/a", f->root));
	assert_int_equal(cgroup_create(f->m, "a", &(struct cgroup_limits){ .memory_max = MiB }), 0);
	assert_false(exists("%s/pids/spore", f->root));
	uint64_t v;

	/* The memory line names a cgroup that is not visible: no memory controller. */
	rm_rf(f->root);
	assert_int_equal(mkdir(f->root, 0755), 0);
	fake_v1(f, F_V1_DEFAULT | F_OWN_MISSING);
	assert_int_equal(fake_new(f, CGROUP_BACKEND_V1, false), 0);
	assert_int_equal(cgroup_manager_controllers(f->m) & CGROUP_CTRL_MEMORY, 0);
	assert_int_equal(cgroup_create(f->m, "a", &(struct cgroup_limits){ .memory_max = MiB }),
			 -EOPNOTSUPP);
	assert_int_equal(cgroup_oom_kills(f->m, "a", &v), -EOPNOTSUPP);
	assert_false(exists("%s/memory/process_api/zzz", f->root));

	/* Nothing usable at all. */
	rm_rf(f->root);
	assert_int_equal(mkdir(f->root, 0755), 0);
	put("9:name=systemd:/\n0::/\n", "%s", f->proc);
	assert_int_equal(fake_new(f, CGROUP_BACKEND_V1, false), -EOPNOTSUPP);
	assert_null(f->m);
	/* A real statfs() of a plain directory finds no cgroup filesystem. */
	fake_v1(f, F_V1_DEFAULT);
	struct cgroup_manager *m = NULL;
	assert_int_equal(cgroup_manager_new(f->root, f->proc, "spore", &m), -EOPNOTSUPP);
	assert_null(m);
	/* A fake tree needs a named backend; bad names; a garbled /proc/self/cgroup. */
	const struct cgroup_manager_options o = { .backend = CGROUP_BACKEND_AUTO, .fake_fs = true };
	assert_int_equal(cgroup_manager_new_with(f->root, f->proc, "spore", &o, &m), -EINVAL);
	static const char *const bad_names[] = { "", "a/b", ".", ".." };
	for (size_t i = 0; i < ELEMENTSOF(bad_names); i++) {
		const struct cgroup_manager_options o1 = { .backend = CGROUP_BACKEND_V1,
							   .fake_fs = true };
		assert_int_equal(cgroup_manager_new_with(f->root, f->proc, bad_names[i], &o1, &m),
				 -EINVAL);
	}
	put("garbage\n", "%s", f->proc);
	assert_int_equal(fake_new(f, CGROUP_BACKEND_V1, false), -EBADMSG);
	assert_int_equal(cgroup_manager_new("/nonexistent-spore", f->proc, "spore", &m), -ENOENT);
}

static void test_bad_args(void **state)
{
	struct fake *f = *state;
	fake_v1(f, F_V1_DEFAULT);
	assert_int_equal(fake_new(f, CGROUP_BACKEND_V1, false), 0);
	char longname[300];
	memset(longname, 'a', 256);
	longname[256] = '\0';
	const char *const paths[] = { "", "/abs", "a//b", "a/", "..", "a/../b", ".", "./a",
				      longname, NULL };
	for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
		uint64_t v;
		assert_int_equal(cgroup_create(f->m, paths[i], NULL), -EINVAL);
		assert_int_equal(cgroup_attach(f->m, paths[i], 1), -EINVAL);
		assert_int_equal(cgroup_kill(f->m, paths[i]), -EINVAL);
		assert_int_equal(cgroup_remove(f->m, paths[i]), -EINVAL);
		assert_int_equal(cgroup_oom_kills(f->m, paths[i], &v), -EINVAL);
		assert_int_equal(cgroup_open_v2_dir(f->m, paths[i]), -EINVAL);
	}
	static const struct cgroup_limits bad[] = {
		{ .cpu_quota_us = 999 },
		{ .cpu_period_us = 999 },
		{ .cpu_period_us = 1000001 },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		assert_int_equal(cgroup_create(f->m, "a", &bad[i]), -EINVAL);
	assert_false(exists(MEM "/a", f->root));
	assert_int_equal(cgroup_attach(f->m, "a", 0), -EINVAL);
	assert_int_equal(cgroup_attach(f->m, "missing", 1), -ENOENT);
}

static void test_remove_stale(void **state)
{
	struct fake *f = *state;
	fake_v1(f, F_V1_DEFAULT);
	assert_int_equal(fake_new(f, CGROUP_BACKEND_V1, false), 0);
	const struct cgroup_limits lim = { .memory_max = MiB };
	assert_int_equal(cgroup_create(f->m, "fn/i", &lim), 0);
	assert_int_equal(cgroup_remove(f->m, "fn/i"), 1);
	assert_false(exists(MEM "/fn/i", f->root));
	assert_false(exists("%s/unified/spore/fn/i", f->root));
	assert_true(exists(MEM "/fn", f->root));
	assert_int_equal(cgroup_create(f->m, "fn/i/deeper", &lim), 0);
	assert_int_equal(cgroup_remove(f->m, "fn"), 3);
	assert_false(exists(MEM "/fn", f->root));
	assert_false(exists("%s/cpu/spore/fn", f->root));
	assert_int_equal(cgroup_remove(f->m, "fn"), 0); /* missing is fine */

	/* An earlier spored left a tree; one cgroup exists in the pids hierarchy only. */
	assert_int_equal(cgroup_create(f->m, "fn-a/i-1", &lim), 0);
	assert_int_equal(cgroup_create(f->m, "fn-a/i-2", &lim), 0);
	assert_int_equal(cgroup_create(f->m, "fn-b", &lim), 0);
	mkdirs("%s/pids/spore/fn-c/i-9", f->root);
	put("", "%s/pids/spore/fn-c/i-9/pids.max", f->root);
	assert_int_equal(fake_new(f, CGROUP_BACKEND_V1, false), 0);
	assert_int_equal(cgroup_cleanup_stale(f->m), 6);
	static const char *const mounts[] = { "memory/process_api/abc", "cpu", "cpuacct", "pids",
					      "unified" };
	for (size_t i = 0; i < ELEMENTSOF(mounts); i++) {
		assert_true(exists("%s/%s/spore", f->root, mounts[i]));
		assert_false(exists("%s/%s/spore/fn-a", f->root, mounts[i]));
		assert_false(exists("%s/%s/spore/fn-b", f->root, mounts[i]));
		assert_false(exists("%s/%s/spore/fn-c", f->root, mounts[i]));
	}
	assert_int_equal(cgroup_cleanup_stale(f->m), 0);

	assert_int_equal(cgroup_create(f->m, "x/y", &lim), 0);
	assert_int_equal(cgroup_remove_all(f->m), 2);
	for (size_t i = 0; i < ELEMENTSOF(mounts); i++)
		assert_false(exists("%s/%s/spore", f->root, mounts[i]));
	assert_true(exists("%s/memory/process_api/abc/memory.oom_control", f->root));
}

static void test_figures(void **state)
{
	struct fake *f = *state;
	static const struct {
		bool v2;
		const char *file, *content;
		int r;
		uint64_t want;
	} oom[] = {
		{ false, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", 0, 3 },
		/* Kernel < 4.13: no counter. */
		{ false, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n", -EOPNOTSUPP, 0 },
		{ false, "memory.oom_control", "oom_kill 18446744073709551615\n", 0, UINT64_MAX },
		{ false, "memory.oom_control", "oom_kill x\n", -EINVAL, 0 },
		{ true, "memory.events",
		  "low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\noom_group_kill 0\n", 0, 1 },
		{ true, "memory.events", "oom_kill_x 4\noom_kill 2", 0, 2 },
		{ true, "memory.events", "", -EOPNOTSUPP, 0 },
	};
	for (size_t i = 0; i < ELEMENTSOF(oom); i++) {
		rm_rf(f->root);
		assert_int_equal(mkdir(f->root, 0755), 0);
		if (oom[i].v2)
			fake_v2(f, 0);
		else
			fake_v1(f, F_V1_DEFAULT);
		assert_int_equal(fake_new(f, oom[i].v2 ? CGROUP_BACKEND_V2 : CGROUP_BACKEND_V1,
					  false),
				 0);
		assert_int_equal(cgroup_create(f->m, "fn/i", NULL), 0);
		put(oom[i].content, oom[i].v2 ? "%s/x/y/spore/fn/i/%s" : MEM "/fn/i/%s", f->root,
		    oom[i].file);
		uint64_t v = 12345;
		assert_int_equal(cgroup_oom_kills(f->m, "fn/i", &v), oom[i].r);
		assert_true(v == (oom[i].r == 0 ? oom[i].want : 12345));
	}
	uint64_t v = 0;
	assert_int_equal(cgroup_oom_kills(f->m, "nope", &v), -ENOENT);

	/* v2: memory.peak, else memory.current; cpu.stat usage_usec in ns. */
	put("777\n", "%s/x/y/spore/fn/i/memory.peak", f->root);
	put("555\n", "%s/x/y/spore/fn/i/memory.current", f->root);
	put("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n", "%s/x/y/spore/fn/i/cpu.stat",
	    f->root);
	assert_int_equal(cgroup_memory_peak(f->m, "fn/i", &v), 0);
	assert_int_equal(v, 777);
	char p[256];
	(void)snprintf(p, sizeof(p), "%s/x/y/spore/fn/i/memory.peak", f->root);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(cgroup_memory_peak(f->m, "fn/i", &v), 0);
	assert_int_equal(v, 555);
	assert_int_equal(cgroup_cpu_usage_ns(f->m, "fn/i", &v), 0);
	assert_int_equal(v, 1500000);

	/* v1: max_usage_in_bytes; cpuacct.usage, else the unified cpu.stat, else nothing. */
	static const struct {
		unsigned flags;
		int r;
		uint64_t want;
	} cpu[] = {
		{ F_V1_DEFAULT, 0, 123456789 },
		{ F_MEMSW | F_UNIFIED | F_KILL | F_PIDS, 0, 2000 },
		{ F_MEMSW | F_PIDS, -EOPNOTSUPP, 0 },
	};
	for (size_t i = 0; i < ELEMENTSOF(cpu); i++) {
		rm_rf(f->root);
		assert_int_equal(mkdir(f->root, 0755), 0);
		fake_v1(f, cpu[i].flags);
		assert_int_equal(fake_new(f, CGROUP_BACKEND_V1, false), 0);
		assert_int_equal(cgroup_create(f->m, "fn/i", NULL), 0);
		put("12345\n", MEM "/fn/i/memory.max_usage_in_bytes", f->root);
		if (cpu[i].flags & F_CPUACCT)
			put("123456789\n", "%s/cpuacct/spore/fn/i/cpuacct.usage", f->root);
		if (cpu[i].flags & F_UNIFIED)
			put("usage_usec 2\n", "%s/unified/spore/fn/i/cpu.stat", f->root);
		assert_int_equal(cgroup_memory_peak(f->m, "fn/i", &v), 0);
		assert_int_equal(v, 12345);
		v = 1;
		assert_int_equal(cgroup_cpu_usage_ns(f->m, "fn/i", &v), cpu[i].r);
		assert_true(v == (cpu[i].r == 0 ? cpu[i].want : 1));
	}
}

/* cgroup_kill() on a fake tree: SIGKILLs the pids listed, through cgroup.kill or the freezer. */
static void test_kill_fake(void **state)
{
	struct fake *f = *state;
	static const struct {
		unsigned flags;
		const char *file, *last;
	} cases[] = {
		{ F_V1_DEFAULT, "%s/unified/spore/fn/i/cgroup.kill", "1" },
		{ F_MEMSW | F_UNIFIED | F_PIDS | F_FREEZER, "%s/unified/spore/fn/i/cgroup.freeze",
		  "0" },
		{ F_MEMSW | F_PIDS | F_FREEZER, "%s/freezer/spore/fn/i/freezer.state", "THAWED" },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		rm_rf(f->root);
		assert_int_equal(mkdir(f->root, 0755), 0);
		fake_v1(f, cases[i].flags);
		assert_int_equal(fake_new(f, CGROUP_BACKEND_V1, false), 0);
		assert_int_equal(cgroup_kill(f->m, "fn/i"), 0); /* missing */
		assert_int_equal(cgroup_create(f->m, "fn/i", NULL), 0);
		assert_int_equal(cgroup_kill(f->m, "fn/i"), 0); /* empty */
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			for (;;)
				pause();
		}
		char s[32];
		(void)snprintf(s, sizeof(s), "%d\n%d\n", (int)pid, (int)pid);
		put(s, MEM "/fn/i/cgroup.procs", f->root);
		assert_int_equal(cgroup_kill(f->m, "fn/i"), 1);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		assert_string_equal(get(cases[i].file, f->root), cases[i].last);
	}
}

/* ---- fake v2 ---- */

static void test_v2_limits(void **state)
{
	struct fake *f = *state;
	static const struct {
		struct cgroup_limits lim;
		const char *mem, *cpu, *pids;
	} cases[] = {
		{ { 32 * MiB, 50000, 100000, 8 }, "33554432", "50000 100000", "8" },
		{ { 0, 0, 0, 0 }, "max", "max 100000", "max" },
		{ { 1024 * MiB, 20000, 0, 64 }, "1073741824", "20000 100000", "64" },
		{ { 0, 0, 50000, 0 }, "max", "max 50000", "max" },
	};
	fake_v2(f, 0);
	assert_int_equal(fake_new(f, CGROUP_BACKEND_V2, true), 0);
	assert_int_equal(cgroup_manager_backend(f->m), CGROUP_BACKEND_V2);
	assert_int_equal(cgroup_manager_controllers(f->m),
			 CGROUP_CTRL_CPU | CGROUP_CTRL_MEMORY | CGROUP_CTRL_PIDS);
	assert_string_equal(get("%s/x/y/cgroup.subtree_control", f->root), "+cpu +memory +pids");
	assert_string_equal(get("%s/x/y/spore/cgroup.subtree_control", f->root),
			    "+cpu +memory +pids");
	assert_false(exists("%s/x/y/supervisor", f->root)); /* no process to move */
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		assert_int_equal(cgroup_create(f->m, "fn-hello/i-00ab", &cases[i].lim), 0);
#define LEAF "%s/x/y/spore/fn-hello/i-00ab"
		assert_string_equal(get(LEAF "/memory.max", f->root), cases[i].mem);
		assert_string_equal(get(LEAF "/memory.swap.max", f->root), "0");
		assert_string_equal(get(LEAF "/memory.oom.group", f->root), "1");
		assert_string_equal(get(LEAF "/cpu.max", f->root), cases[i].cpu);
		assert_string_equal(get(LEAF "/pids.max", f->root), cases[i].pids);
		assert_string_equal(get(LEAF "/cgroup.subtree_control", f->root), "");
	}
	assert_string_equal(get("%s/x/y/spore/fn-hello/cgroup.subtree_control", f->root),
			    "+cpu +memory +pids");
	assert_string_equal(get("%s/x/y/spore/fn-hello/memory.max", f->root), "");
	assert_false(exists("%s/spore", f->root));

	assert_int_equal(cgroup_attach(f->m, "fn-hello/i-00ab", 4242), 0);
	assert_string_equal(get(LEAF "/cgroup.procs", f->root), "4242");

	/* CLONE_INTO_CGROUP fd and id. */
	int fd = cgroup_open_v2_dir(f->m, "fn-hello/i-00ab");
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	assert_int_equal(fcntl(fd, F_GETFL) & O_PATH, O_PATH);
	(void)close(fd);
	uint64_t id;
	struct stat st;
	char p[256];
	(void)snprintf(p, sizeof(p), LEAF, f->root);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(cgroup_v2_id(f->m, "fn-hello/i-00ab", &id), 0);
	assert_int_equal(id, (uint64_t)st.st_ino);
	assert_int_equal(cgroup_v2_id(f->m, "missing", &id), -ENOENT);
#undef LEAF
	assert_int_equal(cgroup_remove(f->m, "fn-hello"), 2);
	assert_false(exists("%s/x/y/spore/fn-hello", f->root));
}

/* A pool for CLONE_INTO_CGROUP: made in the v2 tree only, ready for children (controllers on for
 * them on a v2 host, none to enable in a hybrid host's unified tree), its absolute path given. */
static void test_pool(void **state)
{
	struct fake *f = *state;
	char *abs = NULL;
	char want[512];

	fake_v2(f, 0);
	assert_int_equal(fake_new(f, CGROUP_BACKEND_V2, true), 0);
	assert_int_equal(cgroup_create_pool(f->m, "pool-python3", &abs), 0);
	(void)snprintf(want, sizeof(want), "%s/x/y/spore/pool-python3", f->root);
	assert_string_equal(abs, want);
	free(abs);
	abs = NULL;
	assert_string_equal(get("%s/x/y/spore/pool-python3/cgroup.subtree_control", f->root),
			    "+cpu +memory +pids");
	/* A zygote's child cgroup: the limits go onto it as onto any other. */
	assert_int_equal(cgroup_create(f->m, "pool-python3/i-1-1",
				       &(struct cgroup_limits){ .memory_max = 32 * MiB }),
			 0);
	assert_string_equal(get("%s/x/y/spore/pool-python3/i-1-1/memory.max", f->root), "33554432");
	assert_int_equal(cgroup_kill_nowait(f->m, "pool-python3/i-1-1"), 0);
	assert_int_equal(cgroup_kill_nowait(f->m, "pool-python3/missing"), 0);
	assert_int_equal(cgroup_create_pool(f->m, "../x", &abs), -EINVAL);
	assert_null(abs);
	assert_int_equal(cgroup_remove(f->m, "pool-python3"), 2);
}

static void test_pool_hybrid(void **state)
{
	struct fake *f = *state;
	char *abs = NULL;
	char want[512];

	fake_v1(f, F_V1_DEFAULT);
	assert_int_equal(fake_new(f, CGROUP_BACKEND_V1, true), 0);
	assert_int_equal(cgroup_create_pool(f->m, "pool-native", &abs), 0);
	(void)snprintf(want, sizeof(want), "%s/unified/", f->root);
	assert_true(startswith(abs, want));
	assert_non_null(strstr(abs, "/spore/pool-native"));
	free(abs);
	assert_false(exists("%s/memory/process_api/abc/spore/pool-native", f->root));
	assert_int_equal(cgroup_remove(f->m, "pool-native"), 1);
}

static void test_v2_delegation(void **state)
{
	struct fake *f = *state;
	static const struct {
		unsigned flags;
		bool move_self;
		int r;
		unsigned controllers;
		const char *own_subtree; /* own cgroup.subtree_control afterwards */
		bool moved;
	} cases[] = {
		{ 0, true, 0, CGROUP_CTRL_CPU | CGROUP_CTRL_MEMORY | CGROUP_CTRL_PIDS,
		  "+cpu +memory +pids", false },
		{ G_MEMORY_PIDS, true, 0, CGROUP_CTRL_MEMORY | CGROUP_CTRL_PIDS, "+memory +pids",
		  false },
		/* Already enabled: left as it is. */
		{ G_ENABLED, true, 0, CGROUP_CTRL_CPU | CGROUP_CTRL_MEMORY | CGROUP_CTRL_PIDS,
		  "cpu memory pids\n", false },
		/* We are the only process there: we move into <own>/supervisor. */
		{ G_PROCS_SELF, true, 0, CGROUP_CTRL_CPU | CGROUP_CTRL_MEMORY | CGROUP_CTRL_PIDS,
		  "+cpu +memory +pids", true },
		/* Not allowed to move, or not alone: controllers stay off. */
		{ G_PROCS_SELF, false, 0, 0, "", false },
		{ G_PROCS_OTHER, true, 0, 0, "", false },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		rm_rf(f->root);
		assert_int_equal(mkdir(f->root, 0755), 0);
		fake_v2(f, cases[i].flags);
		assert_int_equal(fake_new(f, CGROUP_BACKEND_V2, cases[i].move_self), cases[i].r);
		assert_int_equal(cgroup_manager_controllers(f->m), cases[i].controllers);
		assert_string_equal(get("%s/x/y/cgroup.subtree_control", f->root),
				    cases[i].own_subtree);
		assert_int_equal(exists("%s/x/y/supervisor", f->root), cases[i].moved);
		if (cases[i].moved) {
			char self[16];
			(void)snprintf(self, sizeof(self), "%d", (int)getpid());
			assert_string_equal(get("%s/x/y/supervisor/cgroup.procs", f->root), self);
		}
		const struct cgroup_limits lim = { .memory_max = MiB, .pids_max = 4 };
		assert_int_equal(cgroup_create(f->m, "a/b", &lim),
				 cases[i].controllers & CGROUP_CTRL_MEMORY ? 0 : -EOPNOTSUPP);
		const struct cgroup_limits cpu = { .cpu_quota_us = 10000 };
		assert_int_equal(cgroup_create(f->m, "c", &cpu),
				 cases[i].controllers & CGROUP_CTRL_CPU ? 0 : -EOPNOTSUPP);
		assert_int_equal(cgroup_create(f->m, "d", NULL), 0);
		if (!(cases[i].controllers & CGROUP_CTRL_CPU))
			assert_string_equal(get("%s/x/y/spore/d/cpu.max", f->root), "");
	}
	/* No v2 line, or no cgroup there. */
	put("1:cpu:/\n", "%s", f->proc);
	assert_int_equal(fake_new(f, CGROUP_BACKEND_V2, true), -EOPNOTSUPP);
	put("0::/not/there\n", "%s", f->proc);
	assert_int_equal(fake_new(f, CGROUP_BACKEND_V2, true), -EOPNOTSUPP);
	/* Our cgroup is the root: it may hold processes and still enable controllers. */
	rm_rf(f->root);
	assert_int_equal(mkdir(f->root, 0755), 0);
	put("cpu memory pids\n", "%s/cgroup.controllers", f->root);
	put("", "%s/cgroup.subtree_control", f->root);
	put("1\n", "%s/cgroup.procs", f->root);
	put("0::/\n", "%s", f->proc);
	assert_int_equal(fake_new(f, CGROUP_BACKEND_V2, true), 0);
	assert_string_equal(get("%s/cgroup.subtree_control", f->root), "+cpu +memory +pids");
	assert_true(exists("%s/spore", f->root));
	assert_false(exists("%s/supervisor", f->root));

	/* v1 without a unified tree has no v2 handles. */
	rm_rf(f->root);
	assert_int_equal(mkdir(f->root, 0755), 0);
	fake_v1(f, F_MEMSW | F_PIDS);
	assert_int_equal(fake_new(f, CGROUP_BACKEND_V1, false), 0);
	assert_int_equal(cgroup_create(f->m, "a", NULL), 0);
	uint64_t id;
	assert_int_equal(cgroup_open_v2_dir(f->m, "a"), -EOPNOTSUPP);
	assert_int_equal(cgroup_v2_id(f->m, "a", &id), -EOPNOTSUPP);
}

/* ---- the real cgroup filesystem ---- */

struct real {
	char name[64];
	char why[256]; /* why the tests skip, if they do */
	const char *root;
	struct cgroup_manager *m;
};

static struct real real_v1 = { .root = "/sys/fs/cgroup" };
static struct real real_unified = { .root = "/sys/fs/cgroup/unified" };

/* /sys/fs/cgroup/<mount><own>/<name>/<rel> for controller ctrl ("" = the v2 tree). */
static bool sys_path(const struct real *r, const char *ctrl, const char *rel, char *buf,
		     size_t size)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return false;
	char line[512];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c1 = *c2 = '\0';
		const char *own = streq(c2 + 1, "/") ? "" : c2 + 1;
		if (!*ctrl) {
			if (!streq(line, "0"))
				continue;
			struct statfs sfs;
			bool unified = statfs("/sys/fs/cgroup/unified", &sfs) == 0 &&
				       sfs.f_type == 0x63677270;
			(void)snprintf(buf, size, "/sys/fs/cgroup%s%s/%s/%s",
				       unified ? "/unified" : "", own, r->name, rel);
			found = true;
		} else {
			char list[128];
			(void)snprintf(list, sizeof(list), ",%s,", c1 + 1);
			char want[64];
			(void)snprintf(want, sizeof(want), ",%s,", ctrl);
			if (!strstr(list, want))
				continue;
			(void)snprintf(buf, size, "/sys/fs/cgroup/%s%s/%s/%s", ctrl, own, r->name,
				       rel);
			found = true;
		}
	}
	(void)fclose(f);
	return found;
}

static int real_setup(void **state, struct real *r, bool need_limits)
{
	*state = r;
	(void)snprintf(r->name, sizeof(r->name), "spore-test-%d", (int)getpid());
	if (geteuid() != 0) {
		(void)snprintf(r->why, sizeof(r->why), "not root");
		return 0;
	}
	const struct cgroup_manager_options o = { .backend = CGROUP_BACKEND_AUTO };
	int k = cgroup_manager_new_with(r->root, "/proc/self/cgroup", r->name, &o, &r->m);
	if (k < 0) {
		(void)snprintf(r->why, sizeof(r->why), "no cgroup filesystem at %s: %s", r->root,
			       strerror(-k));
		return 0;
	}
	unsigned want = CGROUP_CTRL_MEMORY | CGROUP_CTRL_PIDS | CGROUP_CTRL_CPU;
	if (need_limits && (cgroup_manager_controllers(r->m) & want) != want) {
		(void)snprintf(r->why, sizeof(r->why), "cpu, memory or pids controller missing");
		(void)cgroup_remove_all(r->m);
		r->m = cgroup_manager_free(r->m);
	}
	return 0;
}

static int real_v1_setup(void **state)
{
	return real_setup(state, &real_v1, true);
}

static int real_unified_setup(void **state)
{
	struct statfs sfs;
	if (statfs(real_unified.root, &sfs) < 0 || sfs.f_type != 0x63677270) {
		*state = &real_unified;
		(void)snprintf(real_unified.name, sizeof(real_unified.name), "spore-test-%d",
			       (int)getpid());
		(void)snprintf(real_unified.why, sizeof(real_unified.why),
			       "no unified cgroup2 tree at %s (a pure v2 host is covered by the "
			       "first group)",
			       real_unified.root);
		return 0;
	}
	return real_setup(state, &real_unified, false);
}

/* Reaps whatever children (and, as subreaper, orphans) are left. */
static void reap_all(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static int real_teardown(void **state)
{
	struct real *r = *state;
	if (r->m) {
		int k = cgroup_remove_all(r->m);
		if (k < 0)
			print_error("cgroup_remove_all: %s\n", strerror(-k));
		r->m = cgroup_manager_free(r->m);
	}
	reap_all();
	return 0;
}

/* After each real test, pass or fail: nothing of it stays for the next one. */
static int real_test_teardown(void **state)
{
	struct real *r = *state;
	if (r->m) {
		int k = cgroup_cleanup_stale(r->m);
		if (k < 0)
			print_error("cgroup_cleanup_stale: %s\n", strerror(-k));
	}
	reap_all();
	return 0;
}

#define REAL_OR_SKIP(r)                                                                            \
	do {                                                                                       \
		if (!(r)->m) {                                                                     \
			print_message("[  SKIP    ] %s\n", (r)->why);                              \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

/* A child that waits for a byte on wait_fd (if >= 0), then runs fn; never returns. */
static pid_t spawn(int wait_fd, int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	char c;
	if (wait_fd >= 0)
		(void)!read(wait_fd, &c, 1);
	_exit(fn ? fn(arg) : 0);
}

static int do_pause(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return 0;
}

static int do_eat_64m(void *arg)
{
	(void)arg;
	size_t n = 64 * MiB;
	volatile char *p = malloc(n);
	if (!p)
		return 3;
	for (size_t i = 0; i < n; i += 4096)
		p[i] = 1;
	return 0; /* survived: the limit did not hold */
}

struct forker {
	int out_fd;
};

/* Forks 20 pausing children; reports { successes, errno of the first failure }. */
static int do_fork_20(void *arg)
{
	struct forker *fk = arg;
	int res[2] = { 0, 0 };
	for (int i = 0; i < 20; i++) {
		pid_t p = fork();
		if (p == 0) {
			for (;;)
				pause();
		}
		if (p < 0) {
			if (!res[1])
				res[1] = errno;
			continue;
		}
		res[0]++;
	}
	(void)!write(fk->out_fd, res, sizeof(res));
	for (;;)
		pause();
	return 0;
}

static void test_real_limit_files(void **state)
{
	struct real *r = *state;
	REAL_OR_SKIP(r);
	const struct cgroup_limits lim = { 32 * MiB, 50000, 100000, 8 };
	assert_int_equal(cgroup_create(r->m, "fn-lim/i-1", &lim), 0);
	char p[512];
	if (cgroup_manager_backend(r->m) == CGROUP_BACKEND_V1) {
		assert_true(sys_path(r, "memory", "fn-lim/i-1/memory.limit_in_bytes", p, sizeof(p)));
		assert_string_equal(get("%s", p), "33554432\n");
		assert_true(sys_path(r, "memory", "fn-lim/i-1/memory.memsw.limit_in_bytes", p,
				     sizeof(p)));
		bool memsw = exists("%s", p);
		print_message("v1: memory.memsw.limit_in_bytes %s\n",
			      memsw ? "present (swap accounting on)" : "absent");
		if (memsw)
			assert_string_equal(get("%s", p), "33554432\n");
		assert_true(sys_path(r, "memory", "fn-lim/i-1/memory.swappiness", p, sizeof(p)));
		assert_string_equal(get("%s", p), "0\n");
		assert_true(sys_path(r, "memory", "fn-lim/i-1/memory.oom_control", p, sizeof(p)));
		assert_non_null(strstr(get("%s", p), "oom_kill_disable 0\n"));
		print_message("v1: memory.oom_control oom_kill line %s\n",
			      strstr(get("%s", p), "\noom_kill ") ? "present" : "absent");
		assert_true(sys_path(r, "cpu", "fn-lim/i-1/cpu.cfs_quota_us", p, sizeof(p)));
		assert_string_equal(get("%s", p), "50000\n");
		assert_true(sys_path(r, "cpu", "fn-lim/i-1/cpu.cfs_period_us", p, sizeof(p)));
		assert_string_equal(get("%s", p), "100000\n");
		/* Raising and lowering again: memsw must stay >= memory at every step. */
		static const uint64_t again[] = { 64 * MiB, 16 * MiB, 0 };
		for (size_t i = 0; i < ELEMENTSOF(again); i++) {
			const struct cgroup_limits l2 = { .memory_max = again[i] };
			assert_int_equal(cgroup_create(r->m, "fn-lim/i-1", &l2), 0);
			char want[32];
			(void)snprintf(want, sizeof(want), "%" PRIu64 "\n",
				       again[i] ? again[i] : (uint64_t)9223372036854771712ULL);
			assert_true(sys_path(r, "memory", "fn-lim/i-1/memory.limit_in_bytes", p,
					     sizeof(p)));
			assert_string_equal(get("%s", p), want);
			if (memsw) {
				assert_true(sys_path(r, "memory",
						     "fn-lim/i-1/memory.memsw.limit_in_bytes", p,
						     sizeof(p)));
				assert_string_equal(get("%s", p), want);
			}
		}
		assert_true(sys_path(r, "cpu", "fn-lim/i-1/cpu.cfs_quota_us", p, sizeof(p)));
		assert_string_equal(get("%s", p), "-1\n");
	} else {
		assert_true(sys_path(r, "", "fn-lim/i-1/memory.max", p, sizeof(p)));
		assert_string_equal(get("%s", p), "33554432\n");
		assert_true(sys_path(r, "", "fn-lim/i-1/cpu.max", p, sizeof(p)));
		assert_string_equal(get("%s", p), "50000 100000\n");
	}
	assert_true(sys_path(r, "pids", "fn-lim/i-1/pids.max", p, sizeof(p)) ||
		    sys_path(r, "", "fn-lim/i-1/pids.max", p, sizeof(p)));
	assert_int_equal(cgroup_remove(r->m, "fn-lim"), 2);
	assert_false(exists("%s", p));
}

static void test_real_oom(void **state)
{
	struct real *r = *state;
	REAL_OR_SKIP(r);
	const struct cgroup_limits lim = { .memory_max = 32 * MiB, .pids_max = 8 };
	assert_int_equal(cgroup_create(r->m, "fn-oom/i-1", &lim), 0);
	int pfd[2];
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid_t pid = spawn(pfd[0], do_eat_64m, NULL);
	assert_true(pid > 0);
	(void)close(pfd[0]);
	uint64_t t0 = now_us();
	assert_int_equal(cgroup_attach(r->m, "fn-oom/i-1", pid), 0);
	uint64_t t_attach = now_us() - t0;
	assert_int_equal(write(pfd[1], "g", 1), 1); /* go (the child holds pfd[1] too: no EOF) */
	(void)close(pfd[1]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	print_message("oom: child %s %d (attach %" PRIu64 " us)\n",
		      WIFSIGNALED(status) ? "killed by signal" : "exited with",
		      WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), t_attach);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	uint64_t kills = 0, peak = 0;
	int k = cgroup_oom_kills(r->m, "fn-oom/i-1", &kills);
	print_message("oom: cgroup_oom_kills -> %d, %" PRIu64 "\n", k, kills);
	assert_int_equal(k, 0);
	assert_true(kills >= 1);
	assert_int_equal(cgroup_memory_peak(r->m, "fn-oom/i-1", &peak), 0);
	print_message("oom: memory peak %" PRIu64 " bytes\n", peak);
	assert_true(peak > 16 * MiB && peak <= 32 * MiB);
	/* v2 memory.events counts descendants' kills; v1 oom_control only the cgroup's own
	 * (0 here on 6.18). */
	assert_int_equal(cgroup_oom_kills(r->m, "fn-oom", &kills), 0);
	print_message("oom: the parent cgroup's oom_kill is %" PRIu64 "\n", kills);
	if (cgroup_manager_backend(r->m) == CGROUP_BACKEND_V2)
		assert_true(kills >= 1);
	assert_int_equal(cgroup_remove(r->m, "fn-oom"), 2);
}

static void test_real_pids(void **state)
{
	struct real *r = *state;
	REAL_OR_SKIP(r);
	const struct cgroup_limits lim = { .memory_max = 256 * MiB, .pids_max = 8 };
	assert_int_equal(cgroup_create(r->m, "fn-pids/i-1", &lim), 0);
	int go[2], res[2];
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	assert_int_equal(pipe2(res, O_CLOEXEC), 0);
	struct forker fk = { .out_fd = res[1] };
	pid_t pid = spawn(go[0], do_fork_20, &fk);
	assert_true(pid > 0);
	(void)close(go[0]);
	(void)close(res[1]);
	assert_int_equal(cgroup_attach(r->m, "fn-pids/i-1", pid), 0);
	assert_int_equal(write(go[1], "g", 1), 1);
	(void)close(go[1]);
	int got[2];
	assert_int_equal(read(res[0], got, sizeof(got)), (ssize_t)sizeof(got));
	(void)close(res[0]);
	print_message("pids: %d forks succeeded, then errno %d (%s)\n", got[0], got[1],
		      strerror(got[1]));
	assert_int_equal(got[0], 7); /* 8 tasks with the forker itself */
	assert_int_equal(got[1], EAGAIN);
	uint64_t t0 = now_us();
	int k = cgroup_kill(r->m, "fn-pids/i-1");
	uint64_t dt = now_us() - t0;
	print_message("pids: cgroup_kill -> %d in %" PRIu64 " us\n", k, dt);
	assert_int_equal(k, 8);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	reap_all();
	assert_int_equal(cgroup_remove(r->m, "fn-pids"), 2);
}

static void test_real_kill(void **state)
{
	struct real *r = *state;
	REAL_OR_SKIP(r);
	/* Three sleepers in two child cgroups of the instance: kill reaches descendants. */
	assert_int_equal(cgroup_create(r->m, "fn-k/i-1/a", NULL), 0);
	assert_int_equal(cgroup_create(r->m, "fn-k/i-1/b", NULL), 0);
	pid_t pids[3];
	for (int i = 0; i < 3; i++) {
		pids[i] = spawn(-1, do_pause, NULL);
		assert_true(pids[i] > 0);
		assert_int_equal(cgroup_attach(r->m, i ? "fn-k/i-1/b" : "fn-k/i-1/a", pids[i]), 0);
	}
	char p[512];
	assert_true(sys_path(r, cgroup_manager_backend(r->m) == CGROUP_BACKEND_V1 ? "memory" : "",
			     "fn-k/i-1/b/cgroup.procs", p, sizeof(p)));
	assert_int_not_equal(strlen(get("%s", p)), 0);
	assert_int_equal(cgroup_remove(r->m, "fn-k"), -EBUSY);

	uint64_t t0 = now_us();
	int k = cgroup_kill(r->m, "fn-k/i-1");
	uint64_t dt = now_us() - t0;
	print_message("kill: 3 sleepers in %" PRIu64 " us -> %d\n", dt, k);
	assert_int_equal(k, 3);
	/* Not reaped yet: the zombies are not listed any more. */
	char st[512];
	(void)snprintf(st, sizeof(st), "/proc/%d/stat", (int)pids[0]);
	const char *s = get("%s", st);
	const char *paren = strrchr(s, ')');
	print_message("kill: unreaped child state '%c', cgroup.procs '%s'\n",
		      paren ? paren[2] : '?', get("%s", p));
	assert_string_equal(get("%s", p), "");
	for (int i = 0; i < 3; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	}
	assert_int_equal(cgroup_kill(r->m, "fn-k/i-1"), 0);
	assert_int_equal(cgroup_kill(r->m, "fn-k/none"), 0);
	assert_int_equal(cgroup_remove(r->m, "fn-k"), 4);
	assert_false(exists("%s", p));
	assert_true(sys_path(r, "", "fn-k", p, sizeof(p)));
	assert_false(exists("%s", p));
}

static void test_real_stale(void **state)
{
	struct real *r = *state;
	REAL_OR_SKIP(r);
	/* An earlier spored left fn-old/i-1 with a process in it, then died. */
	assert_int_equal(cgroup_create(r->m, "fn-old/i-1", NULL), 0);
	pid_t pid = spawn(-1, do_pause, NULL);
	assert_true(pid > 0);
	assert_int_equal(cgroup_attach(r->m, "fn-old/i-1", pid), 0);
	r->m = cgroup_manager_free(r->m);

	const struct cgroup_manager_options o = { .backend = CGROUP_BACKEND_AUTO };
	assert_int_equal(cgroup_manager_new_with(r->root, "/proc/self/cgroup", r->name, &o, &r->m),
			 0);
	uint64_t t0 = now_us();
	int k = cgroup_cleanup_stale(r->m);
	print_message("stale: removed %d cgroups in %" PRIu64 " us\n", k, now_us() - t0);
	assert_int_equal(k, 2);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	static const char *const ctrls[] = { "memory", "cpu", "pids", "" };
	for (size_t i = 0; i < ELEMENTSOF(ctrls); i++) {
		char p[512];
		if (sys_path(r, ctrls[i], "fn-old", p, sizeof(p)))
			assert_false(exists("%s", p));
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static void test_real_timings(void **state)
{
	struct real *r = *state;
	REAL_OR_SKIP(r);
	enum { N = 50 };
	uint64_t t[4][N];
	const struct cgroup_limits lim = { 128 * MiB, 50000, 100000, 64 };
	assert_int_equal(cgroup_create(r->m, "bench", NULL), 0);
	for (int i = 0; i < N; i++) {
		char path[32];
		(void)snprintf(path, sizeof(path), "bench/i-%d", i);
		uint64_t t0 = now_us();
		assert_int_equal(cgroup_create(r->m, path, &lim), 0);
		uint64_t t1 = now_us();
		pid_t pid = spawn(-1, do_pause, NULL);
		assert_true(pid > 0);
		uint64_t t2 = now_us();
		assert_int_equal(cgroup_attach(r->m, path, pid), 0);
		uint64_t t3 = now_us();
		assert_int_equal(cgroup_kill(r->m, path), 1);
		uint64_t t4 = now_us();
		assert_int_equal(cgroup_remove(r->m, path), 1);
		uint64_t t5 = now_us();
		assert_int_equal(waitpid(pid, NULL, 0), pid);
		t[0][i] = t1 - t0;
		t[1][i] = t3 - t2;
		t[2][i] = t4 - t3;
		t[3][i] = t5 - t4;
	}
	static const char *const what[] = { "create", "attach", "kill", "remove" };
	for (int k = 0; k < 4; k++) {
		qsort(t[k], N, sizeof(t[k][0]), cmp_u64);
		print_message("timing: %-6s median %" PRIu64 " us, min %" PRIu64 " us, max %" PRIu64
			      " us (%d runs, %s)\n",
			      what[k], t[k][N / 2], t[k][0], t[k][N - 1], N,
			      cgroup_manager_backend(r->m) == CGROUP_BACKEND_V1 ? "v1" : "v2");
	}

	/* Writing cgroup.procs takes cgroup_threadgroup_rwsem for writing, which waits for an
	 * RCU grace period unless another writer went just before: an attach after a pause is
	 * much slower than one of a burst. */
	uint64_t spaced[5];
	for (int i = 0; i < 5; i++) {
		assert_int_equal(cgroup_create(r->m, "bench/s", &lim), 0);
		pid_t pid = spawn(-1, do_pause, NULL);
		assert_true(pid > 0);
		(void)usleep(100 * 1000);
		uint64_t t0 = now_us();
		assert_int_equal(cgroup_attach(r->m, "bench/s", pid), 0);
		spaced[i] = now_us() - t0;
		assert_int_equal(cgroup_kill(r->m, "bench/s"), 1);
		assert_int_equal(waitpid(pid, NULL, 0), pid);
		assert_int_equal(cgroup_remove(r->m, "bench/s"), 1);
	}
	qsort(spaced, 5, sizeof(spaced[0]), cmp_u64);
	print_message("timing: attach after 100 ms idle: median %" PRIu64 " us, min %" PRIu64
		      " us, max %" PRIu64 " us (5 runs)\n",
		      spaced[2], spaced[0], spaced[4]);
	assert_int_equal(cgroup_remove(r->m, "bench"), 1);
}

struct clone_into {
	int cgroup_fd;
	char expect[256];
};

static void test_real_unified(void **state)
{
	struct real *r = *state;
	REAL_OR_SKIP(r);
	assert_int_equal(cgroup_manager_backend(r->m), CGROUP_BACKEND_V2);
	assert_true(cgroup_manager_has_v2(r->m));
	if (!(cgroup_manager_controllers(r->m) & CGROUP_CTRL_MEMORY))
		assert_int_equal(cgroup_create(r->m, "fn-u/i-1",
					       &(struct cgroup_limits){ .memory_max = MiB }),
				 -EOPNOTSUPP);
	assert_int_equal(cgroup_create(r->m, "fn-u/i-1", NULL), 0);

	/* The id is the kernfs inode number, which BPF reports. */
	char p[512];
	assert_true(sys_path(r, "", "fn-u/i-1", p, sizeof(p)));
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	uint64_t id = 0;
	assert_int_equal(cgroup_v2_id(r->m, "fn-u/i-1", &id), 0);
	assert_int_equal(id, (uint64_t)st.st_ino);

	/* clone3(CLONE_INTO_CGROUP): the child starts in the cgroup. */
	int fd = cgroup_open_v2_dir(r->m, "fn-u/i-1");
	assert_true(fd >= 0);
	struct clone_args ca = { .flags = CLONE_INTO_CGROUP,
				 .exit_signal = SIGCHLD,
				 .cgroup = (uint64_t)fd };
	char expect[256];
	(void)snprintf(expect, sizeof(expect), "0::/%s/fn-u/i-1\n", r->name);
	long pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid == 0) {
		char buf[2048];
		int cfd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
		ssize_t n = cfd >= 0 ? read(cfd, buf, sizeof(buf) - 1) : -1;
		if (n < 0)
			_exit(2);
		buf[n] = '\0';
		/* The unified line may carry our own cgroup as a prefix. */
		_exit(strstr(buf, expect + 3) ? 0 : 1);
	}
	(void)close(fd);
	if (pid < 0) {
		print_message("unified: clone3 failed (%s), CLONE_INTO_CGROUP not checked\n",
			      strerror(errno));
		assert_true(errno == ENOSYS);
	} else {
		int status;
		assert_int_equal(waitpid((pid_t)pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}

	pid_t sleeper = spawn(-1, do_pause, NULL);
	assert_true(sleeper > 0);
	assert_int_equal(cgroup_attach(r->m, "fn-u/i-1", sleeper), 0);
	uint64_t cpu;
	assert_int_equal(cgroup_cpu_usage_ns(r->m, "fn-u/i-1", &cpu), 0);
	uint64_t t0 = now_us();
	assert_int_equal(cgroup_kill(r->m, "fn-u/i-1"), 1);
	print_message("unified: cgroup.kill of 1 process in %" PRIu64 " us\n", now_us() - t0);
	int status;
	assert_int_equal(waitpid(sleeper, &status, 0), sleeper);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_int_equal(cgroup_remove(r->m, "fn-u"), 2);
	assert_false(exists("%s", p));
}

/* Nothing named after this test process is left in any hierarchy. */
static int find_name(const char *dir, const char *name, unsigned depth)
{
	if (depth > 8)
		return 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int found = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		char p[4096];
		(void)snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (streq(de->d_name, name)) {
			print_error("left behind: %s\n", p);
			found++;
		}
		found += find_name(p, name, depth + 1);
	}
	(void)closedir(d);
	return found;
}

static void test_real_nothing_left(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		print_message("[  SKIP    ] not root\n");
		skip();
	}
	char name[64];
	(void)snprintf(name, sizeof(name), "spore-test-%d", (int)getpid());
	assert_int_equal(find_name("/sys/fs/cgroup", name, 0), 0);
}

int main(void)
{
	/* Orphans of the forking tests come back to us to be reaped. */
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1);

	const struct CMUnitTest fake_tests[] = {
		cmocka_unit_test_setup_teardown(test_v1_limits, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_v1_layouts, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_v1_missing, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_bad_args, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_remove_stale, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_figures, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_kill_fake, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_v2_limits, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_v2_delegation, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_pool, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_pool_hybrid, fake_setup, fake_teardown),
	};
	const struct CMUnitTest real_tests[] = {
		cmocka_unit_test_teardown(test_real_limit_files, real_test_teardown),
		cmocka_unit_test_teardown(test_real_oom, real_test_teardown),
		cmocka_unit_test_teardown(test_real_pids, real_test_teardown),
		cmocka_unit_test_teardown(test_real_kill, real_test_teardown),
		cmocka_unit_test_teardown(test_real_stale, real_test_teardown),
		cmocka_unit_test_teardown(test_real_timings, real_test_teardown),
	};
	const struct CMUnitTest unified_tests[] = {
		cmocka_unit_test_teardown(test_real_unified, real_test_teardown),
	};
	const struct CMUnitTest final_tests[] = {
		cmocka_unit_test(test_real_nothing_left),
	};
	int fails = 0;
	fails += cmocka_run_group_tests_name("fake cgroupfs", fake_tests, NULL, NULL);
	fails += cmocka_run_group_tests_name("real cgroups", real_tests, real_v1_setup,
					     real_teardown);
	fails += cmocka_run_group_tests_name("real unified tree (v2 backend)", unified_tests,
					     real_unified_setup, real_teardown);
	fails += cmocka_run_group_tests_name("nothing left", final_tests, NULL, NULL);
	return fails ? 1 : 0;
}
