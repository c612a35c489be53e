/* SPDX-License-Identifier: MIT */
/* The meter with real BPF (root, kernel BTF, a cgroup2 tree): loading and pinning, stale pins,
 * CPU attribution by cgroup id with both scheduler hooks, what bpftool prints, the fallback
 * without privilege. Skips (saying why) without root, BTF, a cgroup2 tree or a BPF build.
 *
 *   test-meter --bench [ROUNDS [fifo]]
 *       measures the cost of the CPU hooks instead (docs/METERING.md): a pipe ping-pong between
 *       two processes on one CPU (at SCHED_FIFO with "fifo"), without the meter and with each
 *       hook, in a cgroup the meter does not know and in a function's cgroup, plus the kernel's
 *       own run time statistics of the BPF program. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "bpf/meter-build.h"
#include "meter.h"
#include "metrics.h"
#include "util/buf.h"
#include "util/cleanup.h"

#if METER_HAVE_BPF
#include <bpf/bpf.h>
#endif

#define CGROUP2_MAGIC 0x63677270

/* What the tests made, for the teardown to remove even after a failed assertion. */
static struct {
	char why[256]; /* non-empty: skip, with this reason */
	char pin_dir[128];
	char cg_root[1024]; /* our own cgroup in the v2 tree */
	char cg[3][1100];   /* test cgroups below it */
	struct meter *m;
	pid_t child;
} t;

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;

	(void)clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int write_str(const char *path, const char *s)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		return -errno;
	return 0;
}

/* The value of key in a "key value" file (cpu.stat), or UINT64_MAX. */
static uint64_t read_key(const char *path, const char *key)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	char line[256];

	while (f && fgets(line, sizeof(line), f)) {
		size_t l = strlen(key);

		if (strncmp(line, key, l) == 0 && line[l] == ' ')
			return strtoull(line + l + 1, NULL, 10);
	}
	return UINT64_MAX;
}

/* Our own cgroup in the cgroup2 tree (the unified one on hybrid hosts). */
static int find_cg_root(char *buf, size_t size)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
	const char *mnt;
	struct statfs sfs;
	char line[512];

	if (statfs("/sys/fs/cgroup/unified", &sfs) == 0 && (uint32_t)sfs.f_type == CGROUP2_MAGIC)
		mnt = "/sys/fs/cgroup/unified";
	else if (statfs("/sys/fs/cgroup", &sfs) == 0 && (uint32_t)sfs.f_type == CGROUP2_MAGIC)
		mnt = "/sys/fs/cgroup";
	else
		return -ENOENT;
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (startswith(line, "0::")) {
			const char *own = streq(line + 3, "/") ? "" : line + 3;

			(void)snprintf(buf, size, "%s%s", mnt, own);
			return 0;
		}
	}
	return -ENOENT;
}

static int group_setup(void **state)
{
	(void)state;
	(void)snprintf(t.pin_dir, sizeof(t.pin_dir), "/sys/fs/bpf/spore-test-%d", (int)getpid());
	const char *preload = getenv("LD_PRELOAD");
	int r = find_cg_root(t.cg_root, sizeof(t.cg_root));

	if (!METER_HAVE_BPF)
		(void)snprintf(t.why, sizeof(t.why), "built without BPF support");
	else if (geteuid() != 0)
		(void)snprintf(t.why, sizeof(t.why), "not root");
	else if (preload && strstr(preload, "vgpreload"))
		/* Its model of bpf(2) flags the union's unused bytes and NULL keys, and it slows the
		 * CPU burns and exits of the children the checks time. */
		(void)snprintf(t.why, sizeof(t.why), "under valgrind, which does not model bpf(2)");
	else if (access("/sys/kernel/btf/vmlinux", R_OK) < 0)
		(void)snprintf(t.why, sizeof(t.why), "no kernel BTF");
	else if (r < 0)
		(void)snprintf(t.why, sizeof(t.why), "no cgroup2 tree");
	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(t.cg); i++)
		(void)snprintf(t.cg[i], sizeof(t.cg[i]), "%s/spore-meter-test-%d-%zu", t.cg_root,
			       (int)getpid(), i);
	return 0;
}

/* After each test, whatever happened in it. */
static int test_teardown(void **state)
{
	(void)state;
	if (t.child > 0) {
		(void)kill(t.child, SIGKILL);
		(void)waitpid(t.child, NULL, 0);
		t.child = 0;
	}
	t.m = meter_free(t.m);
	for (size_t i = 0; i < ELEMENTSOF(t.cg); i++)
		if (t.cg[i][0])
			(void)rmdir(t.cg[i]);
	if (t.pin_dir[0]) {
		char p[256];

		(void)snprintf(p, sizeof(p), "%s/fn_stats", t.pin_dir);
		(void)unlink(p);
		(void)snprintf(p, sizeof(p), "%s/cg_slot", t.pin_dir);
		(void)unlink(p);
		(void)rmdir(t.pin_dir);
	}
	return 0;
}

#define SKIP_IF_NEEDED()                                                                           \
	do {                                                                                       \
		if (t.why[0]) {                                                                    \
			print_message("skipped: %s\n", t.why);                                     \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

static bool exists(const char *fmt, ...) _printf_(1, 2);
static bool exists(const char *fmt, ...)
{
	char p[512];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(p, sizeof(p), fmt, ap);
	va_end(ap);
	return access(p, F_OK) == 0;
}

static struct meter *new_meter(enum meter_cpu_hook hook)
{
	const struct meter_config cfg = {
		.pin_dir = t.pin_dir, .bpf = true, .max_functions = 64, .cpu_hook = hook,
	};
	_cleanup_free_ char *why = NULL;
	struct meter *m = NULL;

	assert_int_equal(meter_new(&cfg, &m, &why), 0);
	if (why)
		fail_msg("BPF did not load: %s", why);
	assert_true(meter_bpf_active(m));
	return m;
}

#if METER_HAVE_BPF
static uint32_t pinned_map_id(const char *name)
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	char p[256];
	int fd;

	(void)snprintf(p, sizeof(p), "%s/%s", t.pin_dir, name);
	fd = bpf_obj_get(p);
	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		info.id = 0;
	(void)close(fd);
	return info.id;
}
#endif

/* stdout of a shell command, malloc'ed. */
static char *run(const char *fmt, ...) _printf_(1, 2);
static char *run(const char *fmt, ...)
{
	_cleanup_(buf_done) struct buf out = BUF_INIT;
	char cmd[1024], chunk[4096];
	va_list ap;
	FILE *p;
	size_t n;

	va_start(ap, fmt);
	(void)vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "re");
	assert_non_null(p);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		assert_int_equal(buf_append(&out, chunk, n), 0);
	(void)pclose(p);
	return buf_steal(&out, NULL);
}

/* ---- loading, pins ------------------------------------------------------------------------ */

static void test_pins(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	t.m = new_meter(METER_CPU_HOOK_AUTO);
	assert_string_equal(meter_cpu_hook_name(t.m), "sched_stat_runtime");
	assert_string_equal(meter_pin_dir(t.m), t.pin_dir);
	assert_true(exists("%s/fn_stats", t.pin_dir));
	assert_true(exists("%s/cg_slot", t.pin_dir));

	/* The counters spored writes through the mmap are what the map holds. */
	uint32_t slot;
	assert_int_equal(meter_fn_open(t.m, "pinned-fn", &slot), 0);
	for (int i = 0; i < 7; i++)
		meter_count_request(meter_fn(t.m, slot), i == 3 ? SPORE_ERR_TIMEOUT : METER_OK,
				    1000);
#if METER_HAVE_BPF
	{
		char p[256];
		struct spore_fn_stats s;
		int fd;

		(void)snprintf(p, sizeof(p), "%s/fn_stats", t.pin_dir);
		fd = bpf_obj_get(p);
		assert_true(fd >= 0);
		assert_int_equal(bpf_map_lookup_elem(fd, &slot, &s), 0);
		(void)close(fd);
		assert_string_equal(s.name, "pinned-fn");
		assert_int_equal(s.requests, 7);
		assert_int_equal(s.errors.timeout, 1);
		assert_int_equal(s.lat_us[9], 7); /* 1000 us: [512, 1024) */
	}
#endif

	/* Gone with the meter, pin directory included. */
	t.m = meter_free(t.m);
	assert_false(exists("%s/fn_stats", t.pin_dir));
	assert_false(exists("%s/cg_slot", t.pin_dir));
	assert_false(exists("%s", t.pin_dir));
}

/* A spored that died without cleaning up leaves its pins; the next one replaces them. */
static void test_stale_pins(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
#if METER_HAVE_BPF
	t.child = fork();
	assert_true(t.child >= 0);
	if (t.child == 0) {
		const struct meter_config cfg = { .pin_dir = t.pin_dir, .bpf = true };
		struct meter *m = NULL;
		uint32_t slot;

		if (meter_new(&cfg, &m, NULL) < 0 || !meter_bpf_active(m) ||
		    meter_fn_open(m, "stale-fn", &slot) < 0)
			_exit(1);
		meter_count_request(meter_fn(m, slot), METER_OK, 5);
		_exit(0); /* no meter_free(): the pins stay */
	}
	int status;
	assert_int_equal(waitpid(t.child, &status, 0), t.child);
	t.child = 0;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	uint32_t stale_stats = pinned_map_id("fn_stats"), stale_cg = pinned_map_id("cg_slot");
	assert_int_not_equal(stale_stats, 0);
	assert_int_not_equal(stale_cg, 0);
	_cleanup_free_ char *before = run(BPFTOOL " map dump pinned %s/fn_stats", t.pin_dir);
	assert_non_null(strstr(before, "\"stale-fn\""));

	t.m = new_meter(METER_CPU_HOOK_AUTO);
	assert_int_not_equal(pinned_map_id("fn_stats"), 0);
	assert_int_not_equal(pinned_map_id("fn_stats"), stale_stats);
	assert_int_not_equal(pinned_map_id("cg_slot"), stale_cg);
	_cleanup_free_ char *after = run(BPFTOOL " map dump pinned %s/fn_stats", t.pin_dir);
	assert_null(strstr(after, "stale-fn"));
	uint32_t slot;
	assert_int_equal(meter_fn_open(t.m, "stale-fn", &slot), 0);
	assert_int_equal(meter_fn(t.m, slot)->requests, 0);
#endif
}

/* ---- CPU attribution ---------------------------------------------------------------------- */

/* Forks a child that moves itself into cgroup dir and burns burn_ms of CPU. */
static pid_t spawn_burner(const char *dir, unsigned burn_ms)
{
	char procs[1200];
	pid_t pid;

	(void)snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	pid = fork();
	if (pid != 0)
		return pid;
	if (write_str(procs, "0") < 0)
		_exit(2);
	uint64_t start = now_ns(CLOCK_THREAD_CPUTIME_ID);
	volatile uint64_t x = 0;
	while (now_ns(CLOCK_THREAD_CPUTIME_ID) - start < (uint64_t)burn_ms * 1000000u)
		for (int i = 0; i < 10000; i++)
			x += (uint64_t)i;
	(void)x;
	_exit(0);
}

static void cpu_attribution(enum meter_cpu_hook hook, const char *hook_name)
{
	uint64_t id0, id1;
	uint32_t burn, idle;

	t.m = new_meter(hook);
	assert_string_equal(meter_cpu_hook_name(t.m), hook_name);
	assert_int_equal(mkdir(t.cg[0], 0755), 0);
	assert_int_equal(mkdir(t.cg[1], 0755), 0);
	assert_int_equal(meter_cgroup_id(t.cg[0], &id0), 0);
	assert_int_equal(meter_cgroup_id(t.cg[1], &id1), 0);
	assert_int_not_equal(id0, id1);
	assert_int_equal(meter_fn_open(t.m, "burner", &burn), 0);
	assert_int_equal(meter_fn_open(t.m, "idler", &idle), 0);
	assert_int_equal(meter_cgroup_add(t.m, id0, burn), 0);
	assert_int_equal(meter_cgroup_add(t.m, id1, idle), 0);

	t.child = spawn_burner(t.cg[0], 200);
	assert_true(t.child > 0);
	struct rusage ru;
	int status;
	assert_int_equal(wait4(t.child, &status, 0, &ru), t.child);
	t.child = 0;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	uint64_t cpu = __atomic_load_n(&meter_fn(t.m, burn)->cpu_ns, __ATOMIC_RELAXED);
	uint64_t rusage_ns =
		((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
		((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
	char stat[1200];
	(void)snprintf(stat, sizeof(stat), "%s/cpu.stat", t.cg[0]);
	uint64_t cg_ns = read_key(stat, "usage_usec") * 1000u;
	print_message("%s: BPF %.3f ms, cgroup cpu.stat %.3f ms, rusage %.3f ms\n", hook_name,
		      (double)cpu / 1e6, (double)cg_ns / 1e6, (double)rusage_ns / 1e6);
	/* The default hook (sched_stat_runtime) charges exactly what the kernel charges the
	 * cgroup: within 5% of the cgroup's own accounting and of the child's rusage (which also
	 * counts the moments before it moved itself into the cgroup). The sched_switch fallback
	 * has been seen to miss a whole slice now and then on this loaded VM (up to 7.5% short,
	 * docs/METERING.md): it gets 15%. */
	unsigned lo = streq(hook_name, "sched_switch") ? 85 : 95;
	assert_true(cpu * 100 >= cg_ns * lo && cpu * 100 <= cg_ns * 105);
	assert_true(cpu * 100 >= rusage_ns * lo && cpu * 100 <= rusage_ns * 105);
	assert_int_equal(meter_fn(t.m, idle)->cpu_ns, 0);

	/* Unmapped: no more charges. The slot's figure stays. */
	assert_int_equal(meter_cgroup_del(t.m, id0), 0);
	assert_int_equal(meter_cgroup_del(t.m, id0), -ENOENT);
	t.child = spawn_burner(t.cg[0], 30);
	assert_int_equal(waitpid(t.child, &status, 0), t.child);
	t.child = 0;
	assert_int_equal(meter_fn(t.m, burn)->cpu_ns, cpu);

	/* Closing a slot unmaps what still points at it. */
	meter_fn_close(t.m, idle);
	assert_int_equal(meter_cgroup_del(t.m, id1), -ENOENT);
	assert_int_equal(meter_cgroup_add(t.m, id1, idle), -ENOENT);
	/* Fallback-only input is ignored while BPF counts. */
	meter_fn_set_cpu(t.m, burn, 1);
	assert_int_equal(meter_fn(t.m, burn)->cpu_ns, cpu);
}

static void test_cpu_runtime(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	cpu_attribution(METER_CPU_HOOK_RUNTIME, "sched_stat_runtime");
}

static void test_cpu_switch(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	cpu_attribution(METER_CPU_HOOK_SWITCH, "sched_switch");
}

/* A CPU-bound task that is never switched out: sched_stat_runtime charges it while it runs. */
static void test_cpu_while_running(void **state)
{
	uint64_t id;
	uint32_t slot;

	(void)state;
	SKIP_IF_NEEDED();
	t.m = new_meter(METER_CPU_HOOK_RUNTIME);
	assert_int_equal(mkdir(t.cg[0], 0755), 0);
	assert_int_equal(meter_cgroup_id(t.cg[0], &id), 0);
	assert_int_equal(meter_fn_open(t.m, "spinner", &slot), 0);
	assert_int_equal(meter_cgroup_add(t.m, id, slot), 0);
	t.child = spawn_burner(t.cg[0], 10000);
	assert_true(t.child > 0);
	/* Wait until ~300 ms of CPU are charged, well before it ends. */
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + 5000000000u, cpu = 0;
	while (now_ns(CLOCK_MONOTONIC) < deadline) {
		cpu = __atomic_load_n(&meter_fn(t.m, slot)->cpu_ns, __ATOMIC_RELAXED);
		if (cpu >= 300000000u)
			break;
		(void)usleep(20000);
	}
	assert_true(cpu >= 300000000u);
	assert_int_equal(waitpid(t.child, NULL, WNOHANG), 0); /* still running */
}

static void test_cgroup_id(void **state)
{
	struct stat st;
	uint64_t id;

	(void)state;
	SKIP_IF_NEEDED();
	assert_int_equal(mkdir(t.cg[2], 0755), 0);
	assert_int_equal(meter_cgroup_id(t.cg[2], &id), 0);
	assert_int_equal(stat(t.cg[2], &st), 0);
	assert_int_equal(id, (uint64_t)st.st_ino);
	/* Not a cgroup2 directory (a v1 hierarchy, or no cgroup at all). */
	assert_int_equal(meter_cgroup_id("/proc", &id), -EMEDIUMTYPE);
	assert_int_equal(meter_cgroup_id("/nonexistent-spore", &id), -ENOENT);
}

static void test_cgroup_map_full(void **state)
{
	const struct meter_config cfg = {
		.pin_dir = t.pin_dir, .bpf = true, .max_functions = 4, .max_cgroups = 2,
	};
	uint32_t slot;

	(void)state;
	SKIP_IF_NEEDED();
	assert_int_equal(meter_new(&cfg, &t.m, NULL), 0);
	assert_true(meter_bpf_active(t.m));
	assert_int_equal(meter_fn_open(t.m, "f", &slot), 0);
	assert_int_equal(meter_cgroup_add(t.m, 1001, slot), 0);
	assert_int_equal(meter_cgroup_add(t.m, 1002, slot), 0);
	assert_int_equal(meter_cgroup_add(t.m, 1002, slot), 0); /* update in place */
	assert_int_equal(meter_cgroup_add(t.m, 1003, slot), -E2BIG);
	assert_int_equal(meter_cgroup_add(t.m, 1003, 3), -ENOENT); /* slot not open */
	assert_int_equal(meter_cgroup_add(t.m, 1003, 99), -ENOENT);
	meter_fn_close(t.m, slot);
	assert_int_equal(meter_cgroup_del(t.m, 1001), -ENOENT);
	assert_int_equal(meter_cgroup_del(t.m, 1002), -ENOENT);
}

/* ---- what operators see ------------------------------------------------------------------- */

static void test_bpftool(void **state)
{
	uint32_t slot;
	uint64_t id;

	(void)state;
	SKIP_IF_NEEDED();
	t.m = new_meter(METER_CPU_HOOK_AUTO);
	assert_int_equal(meter_fn_open(t.m, "first", &slot), 0);
	assert_int_equal(meter_fn_open(t.m, "hello-bpftool", &slot), 0);
	assert_int_equal(slot, 1);
	struct spore_fn_stats *s = meter_fn(t.m, slot);
	for (int i = 0; i < 42; i++)
		meter_count_request(s, i < 2 ? SPORE_ERR_QUEUE_FULL : METER_OK, 300);
	meter_count_cold_start(s);
	assert_int_equal(mkdir(t.cg[2], 0755), 0);
	assert_int_equal(meter_cgroup_id(t.cg[2], &id), 0);
	assert_int_equal(meter_cgroup_add(t.m, id, slot), 0);

	_cleanup_free_ char *dump = run(BPFTOOL " map dump pinned %s/fn_stats", t.pin_dir);
	/* Named fields, the name as a string, with the figures of that slot. */
	const char *p = strstr(dump, "\"name\": \"hello-bpftool\"");
	assert_non_null(p);
	static const char *const fields[] = {
		"\"requests\": 42",     "\"queue_full\": 2",     "\"throttled\": 2",
		"\"cold_starts\": 1",   "\"cpu_ns\": ",          "\"mem_peak_bytes\": ",
		"\"lat_sum_us\": 12600", "\"function_error\": 0", "\"lat_us\": [",
	};
	const char *end = strstr(p, "\"key\": 2");
	assert_non_null(end);
	for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
		const char *f = strstr(p, fields[i]);
		if (!f || f > end)
			fail_msg("bpftool dump lacks %s for the function:\n%.2000s", fields[i], p);
	}
	/* The cgroup map: cgroup id -> slot. */
	_cleanup_free_ char *cg = run(BPFTOOL " -j map dump pinned %s/cg_slot", t.pin_dir);
	char want[128];
	(void)snprintf(want, sizeof(want), "\"key\":%" PRIu64 ",\"value\":1", id);
	if (!strstr(cg, want))
		fail_msg("cg_slot dump lacks %s: %s", want, cg);

	/* /metrics says the same. */
	_cleanup_(buf_done) struct buf prom = BUF_INIT;
	assert_int_equal(metrics_prometheus(t.m, NULL, &prom), 0);
	const char *text = buf_cstr(&prom);
	assert_non_null(
		strstr(text, "spore_function_duration_seconds_count{function=\"hello-bpftool\"} 42\n"));
	assert_non_null(strstr(text, "spore_meter_bpf 1\n"));
}

/* Without privilege: the meter still works, in fallback mode, and says why. */
static void test_fallback_unprivileged(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	t.child = fork();
	assert_true(t.child >= 0);
	if (t.child == 0) {
		const struct meter_config cfg = { .pin_dir = t.pin_dir, .bpf = true };
		_cleanup_free_ char *why = NULL;
		struct meter *m = NULL;
		uint32_t slot;

		/* An ordinary user: no capabilities left after the uid change. */
		if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
			_exit(10);
		if (meter_new(&cfg, &m, &why) < 0)
			_exit(11);
		/* The cause, in one line. */
		/* EPERM from bpf(), or EACCES from the pin directory on bpffs first (kernels
		 * differ in which comes first for an unprivileged user) */
		if (meter_bpf_active(m) || !why || strchr(why, '\n') ||
		    (!strstr(why, "Operation not permitted") && !strstr(why, "Permission denied"))) {
			fprintf(stderr, "unprivileged: unexpected reason: %s\n", why ?: "(none)");
			_exit(12);
		}
		fprintf(stderr, "unprivileged: %s\n", why);
		if (meter_fn_open(m, "x", &slot) < 0 ||
		    meter_cgroup_add(m, 1, slot) != -EOPNOTSUPP)
			_exit(13);
		meter_fn_set_cpu(m, slot, 12345);
		if (meter_fn(m, slot)->cpu_ns != 12345)
			_exit(14);
		meter_free(m);
		_exit(access(t.pin_dir, F_OK) == 0 ? 15 : 0);
	}
	int status;
	assert_int_equal(waitpid(t.child, &status, 0), t.child);
	t.child = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- sporectl top -------------------------------------------------------------------------- */

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete)

/* A fake spored: answers the k-th connection on its unix socket with answers[k]. */
struct fake {
	int fd;
	char path[108];
	const char *answers[4]; /* whole HTTP answers; NULL ends */
	char requests[4][128];  /* the request lines that came */
	pthread_t thread;
};

static void *fake_serve(void *p)
{
	struct fake *f = p;

	for (size_t k = 0; k < ELEMENTSOF(f->answers) && f->answers[k]; k++) {
		_cleanup_close_ int c = accept4(f->fd, NULL, NULL, SOCK_CLOEXEC);
		char req[4096];
		size_t n = 0;
		ssize_t l;

		if (c < 0)
			break;
		while (n < sizeof(req) - 1 && (l = read(c, req + n, sizeof(req) - 1 - n)) > 0) {
			n += (size_t)l;
			req[n] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		req[n] = '\0';
		(void)snprintf(f->requests[k], sizeof(f->requests[k]), "%.*s",
			       (int)strcspn(req, "\r\n"), req);
		if (write(c, f->answers[k], strlen(f->answers[k])) < 0)
			break;
	}
	return NULL;
}

static void fake_start(struct fake *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	(void)snprintf(f->path, sizeof(f->path), "/tmp/spore-meter-test-%d.sock", (int)getpid());
	(void)unlink(f->path);
	strcpy(sa.sun_path, f->path);
	f->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->fd >= 0);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->fd, 8), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_serve, f), 0);
}

static void fake_stop(struct fake *f)
{
	/* Unblocks accept() if sporectl asked less than expected. */
	(void)shutdown(f->fd, SHUT_RDWR);
	(void)pthread_join(f->thread, NULL);
	(void)close(f->fd);
	(void)unlink(f->path);
}

static char *http_ok(cJSON *j)
{
	_cleanup_free_ char *body = cJSON_PrintUnformatted(j);
	char *s = NULL;

	assert_non_null(body);
	assert_true(asprintf(&s,
			     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			     strlen(body), body) > 0);
	return s;
}

static const cJSON *row_of(const cJSON *top, const char *name)
{
	const cJSON *f;

	cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(top, "functions"))
		if (streq(cJSON_GetObjectItemCaseSensitive(f, "name")->valuestring, name))
			return f;
	return NULL;
}

static bool near(double v, double want)
{
	return v > want - 0.01 && v < want + 0.01;
}

static double jnum(const cJSON *o, const char *k)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!cJSON_IsNumber(x))
		fail_msg("'%s' is not a number", k);
	return x->valuedouble;
}

static void test_top_api(void **state)
{
	_cleanup_(meter_freep) struct meter *m = NULL;
	const struct meter_config cfg = { .bpf = false, .max_functions = 8 };
	_cleanup_free_ char *a1 = NULL, *a2 = NULL, *a3 = NULL;
	uint32_t api, other, late;

	(void)state;
	assert_int_equal(meter_new(&cfg, &m, NULL), 0);
	assert_int_equal(meter_fn_open(m, "api", &api), 0);
	assert_int_equal(meter_fn_open(m, "other", &other), 0);
	for (int i = 0; i < 100; i++)
		meter_count_request(meter_fn(m, api), METER_OK, 50000); /* before: slow */
	meter_fn_set_cpu(m, api, 1000000000);
	_cleanup_(cJSON_Deletep) cJSON *j1 = metrics_json(m);
	/* One interval later: 60 more at 1.5 ms (3 of them errors), 150 ms more CPU, a function
	 * that was not there before. */
	for (int i = 0; i < 60; i++)
		meter_count_request(meter_fn(m, api), i < 3 ? SPORE_ERR_CRASHED : METER_OK, 1500);
	meter_fn_set_cpu(m, api, 1150000000);
	meter_set_gauges(meter_fn(m, api), 4, 2, 5);
	meter_fn_set_memory(m, api, 3u << 20, 0);
	assert_int_equal(meter_fn_open(m, "late", &late), 0);
	for (int i = 0; i < 6; i++)
		meter_count_request(meter_fn(m, late), METER_OK, 10);
	_cleanup_(cJSON_Deletep) cJSON *j2 = metrics_json(m);
	a1 = http_ok(j1);
	a2 = http_ok(j2);

	/* --json: one frame after one interval (300 ms), from the API. */
	struct fake f = { .answers = { a1, a2 } };
	fake_start(&f);
	_cleanup_free_ char *out = run("env -u SPORE_PIN_DIR SPORECTL_TOP_INTERVAL_MS=300 "
				       SPORECTL_BIN " --socket %s --json top",
				       f.path);
	fake_stop(&f);
	assert_string_equal(f.requests[0], "GET /v1/metrics HTTP/1.1");
	assert_string_equal(f.requests[1], "GET /v1/metrics HTTP/1.1");
	_cleanup_(cJSON_Deletep) cJSON *top = cJSON_Parse(out);
	if (!top)
		fail_msg("not JSON: %s", out);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(top, "source")->valuestring, "api");
	double dt = jnum(top, "interval_s");
	assert_true(dt >= 0.3 && dt < 5.0);
	const cJSON *r = row_of(top, "api");
	assert_non_null(r);
	print_message("api: %.1f req/s, %.1f%% CPU over %.3f s\n", jnum(r, "rps"),
		      jnum(r, "cpu_percent"), dt);
	/* Rates over sporectl's own interval, which it reports. */
	assert_true(near(jnum(r, "rps"), 60 / dt));
	assert_true(near(jnum(r, "errors_per_s"), 3 / dt));
	assert_true(near(jnum(r, "cpu_percent"), 15 / dt));
	assert_true(jnum(r, "requests") == 160);
	assert_true(jnum(r, "errors") == 3);
	assert_true(jnum(r, "inflight") == 4 && jnum(r, "queued") == 2);
	assert_true(jnum(r, "instances") == 5);
	assert_true(jnum(r, "memory_bytes") == 3 << 20);
	/* Latency of the interval only: the 1.5 ms ones, not the earlier 50 ms ones. */
	assert_true(jnum(r, "p50_us") >= 1024 && jnum(r, "p50_us") < 2048);
	assert_true(jnum(r, "p99_us") >= 1024 && jnum(r, "p99_us") < 2048);
	r = row_of(top, "late");
	assert_non_null(r);
	assert_true(near(jnum(r, "rps"), 6 / dt));
	r = row_of(top, "other");
	assert_non_null(r);
	assert_true(jnum(r, "rps") == 0);
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "p50_us")));
	/* Busiest first. */
	const cJSON *fns = cJSON_GetObjectItemCaseSensitive(top, "functions");
	const cJSON *first = cJSON_GetArrayItem(fns, 0);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(first, "name")->valuestring, "api");

	/* The table, for the names asked only. */
	struct fake g = { .answers = { a1, a2 } };
	fake_start(&g);
	_cleanup_free_ char *table = run("env -u SPORE_PIN_DIR SPORECTL_TOP_INTERVAL_MS=100 "
					 SPORECTL_BIN " --socket %s top late api",
					 g.path);
	fake_stop(&g);
	assert_true(startswith(table, "FUNCTION "));
	assert_non_null(strstr(table, "REQ/s"));
	assert_non_null(strstr(table, "\napi "));
	assert_non_null(strstr(table, "\nlate "));
	assert_null(strstr(table, "other"));
	assert_non_null(strstr(table, "3.0M"));

	/* A spored without /v1/metrics: a failure, saying so. */
	a3 = strdup("HTTP/1.1 404 Not Found\r\nContent-Length: 21\r\nConnection: close\r\n\r\n"
		    "{\"error\":\"not_found\"}");
	struct fake h = { .answers = { a3 } };
	fake_start(&h);
	_cleanup_free_ char *err = run("env -u SPORE_PIN_DIR " SPORECTL_BIN
				       " --socket %s top 2>&1; echo \"exit $?\"",
				       h.path);
	fake_stop(&h);
	assert_non_null(strstr(err, "404"));
	assert_non_null(strstr(err, "exit 1"));
}

static void test_top_maps(void **state)
{
	uint32_t a, b;

	(void)state;
	SKIP_IF_NEEDED();
	t.m = new_meter(METER_CPU_HOOK_AUTO);
	assert_int_equal(meter_fn_open(t.m, "maps-fn", &a), 0);
	assert_int_equal(meter_fn_open(t.m, "gone-fn", &b), 0);
	for (int i = 0; i < 7; i++)
		meter_count_request(meter_fn(t.m, a), METER_OK, 100);
	meter_set_gauges(meter_fn(t.m, a), 1, 0, 2);
	meter_fn_close(t.m, b);

	/* No spored at that socket: the figures come from the map alone. */
	_cleanup_free_ char *out = run("SPORE_PIN_DIR=%s SPORECTL_TOP_INTERVAL_MS=100 " SPORECTL_BIN
				       " --socket /nonexistent/spored.sock --json top",
				       t.pin_dir);
	_cleanup_(cJSON_Deletep) cJSON *top = cJSON_Parse(out);
	if (!top)
		fail_msg("not JSON: %s", out);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(top, "source")->valuestring, "bpf");
	const cJSON *r = row_of(top, "maps-fn");
	assert_non_null(r);
	assert_true(jnum(r, "requests") == 7);
	assert_true(jnum(r, "instances") == 2 && jnum(r, "inflight") == 1);
	assert_true(jnum(r, "rps") == 0);
	assert_null(row_of(top, "gone-fn"));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(top, "functions")), 1);
}

/* ---- the cost of the hooks ------------------------------------------------------------------ */

/* A pipe ping-pong between two processes pinned to CPU 0: each round trip is two context
 * switches. Both run in cgroup dir (NULL: where we are); with fifo at SCHED_FIFO priority 1, so
 * that other load on the host stays off CPU 0. Returns the wall time a round trip, and in
 * *ret_cpu the CPU time both processes used a round trip (which leaves out the time CPU 0 gave
 * to others, and is steadier on a busy host). */
static double pingpong(unsigned rounds, const char *dir, bool fifo, double *ret_cpu)
{
	const struct sched_param rt = { .sched_priority = 1 }, other = { .sched_priority = 0 };
	int ab[2], ba[2];
	cpu_set_t cpus, old;
	char procs[1200];
	pid_t pid;
	char c = 0;

	if (pipe2(ab, O_CLOEXEC) < 0 || pipe2(ba, O_CLOEXEC) < 0)
		return -1;
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	(void)sched_getaffinity(0, sizeof(old), &old);
	(void)sched_setaffinity(0, sizeof(cpus), &cpus);
	if (fifo)
		(void)sched_setscheduler(0, SCHED_FIFO, &rt);
	if (dir) {
		(void)snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
		(void)write_str(procs, "0");
	}
	pid = fork(); /* inherits CPU, policy and cgroup */
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* Our copies of the other ends would keep read() from seeing EOF. */
		(void)close(ab[1]);
		(void)close(ba[0]);
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* 1: start counting our CPU time; 2: stop, and answer with it. */
		uint64_t cpu0 = 0, d;
		for (;;) {
			if (read(ab[0], &c, 1) != 1)
				_exit(0);
			if (c == 1)
				cpu0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
			if (c == 2) {
				d = now_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
				if (write(ba[1], &d, sizeof(d)) != sizeof(d))
					_exit(1);
				continue;
			}
			if (write(ba[1], &c, 1) != 1)
				_exit(1);
		}
	}
	(void)close(ab[0]);
	(void)close(ba[1]);
	for (unsigned i = 0; i < 2000; i++) /* warm up */
		if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
			break;
	c = 1;
	if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
		return -1;
	c = 0;
	uint64_t cpu0 = now_ns(CLOCK_PROCESS_CPUTIME_ID), t0 = now_ns(CLOCK_MONOTONIC);
	for (unsigned i = 0; i < rounds; i++)
		if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
			break;
	uint64_t t1 = now_ns(CLOCK_MONOTONIC), cpu1 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
	uint64_t child_cpu = 0;
	c = 2;
	if (write(ab[1], &c, 1) != 1 || read(ba[0], &child_cpu, sizeof(child_cpu)) != 8)
		child_cpu = 0;
	*ret_cpu = (double)(cpu1 - cpu0 + child_cpu) / rounds;
	(void)close(ab[1]);
	(void)waitpid(pid, NULL, 0);
	(void)close(ba[0]);
	if (dir) {
		(void)snprintf(procs, sizeof(procs), "%s/cgroup.procs", t.cg_root);
		(void)write_str(procs, "0");
	}
	if (fifo)
		(void)sched_setscheduler(0, SCHED_OTHER, &other);
	(void)sched_setaffinity(0, sizeof(old), &old);
	return (double)(t1 - t0) / rounds;
}

static double median(double *v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double x = v[j];
			v[j] = v[j - 1];
			v[j - 1] = x;
		}
	return v[n / 2];
}

#if METER_HAVE_BPF
/* run_cnt and run_time_ns of the newest loaded program called name (ours: just loaded). */
static int prog_stats(const char *name, uint64_t *ret_cnt, uint64_t *ret_ns)
{
	uint32_t id = 0, best = 0;
	struct bpf_prog_info best_info = {};

	while (bpf_prog_get_next_id(id, &id) == 0) {
		struct bpf_prog_info info = {};
		uint32_t len = sizeof(info);
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && streq(info.name, name) &&
		    id > best) {
			best = id;
			best_info = info;
		}
		(void)close(fd);
	}
	if (!best)
		return -ENOENT;
	*ret_cnt = best_info.run_cnt;
	*ret_ns = best_info.run_time_ns;
	return 0;
}
#endif

#define BENCH_REPS 11

static int bench(unsigned rounds, bool fifo)
{
	static const struct {
		const char *what;
		enum meter_cpu_hook hook; /* _METER_CPU_HOOK_MAX: no meter */
		bool inside;
	} runs[] = {
		{ "no meter, other cgroup", _METER_CPU_HOOK_MAX, false },
		{ "no meter, function cgroup", _METER_CPU_HOOK_MAX, true },
		{ "sched_stat_runtime, other cgroup", METER_CPU_HOOK_RUNTIME, false },
		{ "sched_stat_runtime, function cgroup", METER_CPU_HOOK_RUNTIME, true },
		{ "sched_switch, other cgroup", METER_CPU_HOOK_SWITCH, false },
		{ "sched_switch, function cgroup", METER_CPU_HOOK_SWITCH, true },
	};
	double rt[ELEMENTSOF(runs)][BENCH_REPS], cpu[ELEMENTSOF(runs)][BENCH_REPS],
		per_run[ELEMENTSOF(runs)],
		runs_per_switch[ELEMENTSOF(runs)];
	uint64_t id;
	uint32_t slot;

	(void)group_setup(NULL);
	if (t.why[0]) {
		fprintf(stderr, "test-meter --bench: %s\n", t.why);
		return 77;
	}
	if (mkdir(t.cg[0], 0755) < 0 || meter_cgroup_id(t.cg[0], &id) < 0) {
		fprintf(stderr, "test-meter --bench: cannot make cgroup %s: %m\n", t.cg[0]);
		return 1;
	}
	/* Two passes: the round trips without the kernel's BPF run time statistics (they cost
	 * two clock reads a run themselves), interleaved so that drifting load on the host hits
	 * every variant alike; then one pass with them, for the cost of a program run and the
	 * number of runs a context switch. */
	for (size_t pass = 0; pass < 2; pass++) {
#if METER_HAVE_BPF
		_cleanup_close_ int stats_fd = pass == 1 ? bpf_enable_stats(BPF_STATS_RUN_TIME)
							 : -EBADF;
		if (pass == 1 && stats_fd < 0)
			fprintf(stderr, "test-meter --bench: no BPF run time stats: %s\n",
				strerror(-stats_fd));
#endif
		for (size_t rep = 0; rep < (pass == 0 ? BENCH_REPS : 1); rep++)
			for (size_t k = 0; k < ELEMENTSOF(runs); k++) {
				uint64_t c0 = 0, n0 = 0, c1 = 0, n1 = 0;
				const char *prog = runs[k].hook == METER_CPU_HOOK_RUNTIME
							   ? "on_runtime"
							   : "on_switch";
				double ns, cpu_ns = 0;

				if (runs[k].hook == _METER_CPU_HOOK_MAX && pass == 1)
					continue;
				if (runs[k].hook != _METER_CPU_HOOK_MAX) {
					const struct meter_config cfg = {
						.pin_dir = t.pin_dir,
						.bpf = true,
						.cpu_hook = runs[k].hook,
					};
					if (meter_new(&cfg, &t.m, NULL) < 0 || !meter_bpf_active(t.m) ||
					    meter_fn_open(t.m, "bench", &slot) < 0 ||
					    meter_cgroup_add(t.m, id, slot) < 0) {
						fprintf(stderr, "test-meter --bench: no BPF meter\n");
						(void)test_teardown(NULL);
						return 1;
					}
				}
#if METER_HAVE_BPF
				if (pass == 1)
					(void)prog_stats(prog, &c0, &n0);
#endif
				ns = pingpong(rounds, runs[k].inside ? t.cg[0] : NULL, fifo, &cpu_ns);
#if METER_HAVE_BPF
				if (pass == 1)
					(void)prog_stats(prog, &c1, &n1);
#endif
				(void)prog;
				if (pass == 0) {
					rt[k][rep] = ns;
					cpu[k][rep] = cpu_ns;
				} else {
					per_run[k] = c1 > c0 ? (double)(n1 - n0) / (double)(c1 - c0)
							     : 0;
					runs_per_switch[k] = (double)(c1 - c0) / (2.0 * rounds);
				}
				t.m = meter_free(t.m);
			}
	}

	printf("pipe ping-pong: 2 processes on CPU 0%s, %u round trips (2 context switches each); "
	       "round trips: median of %d interleaved runs; program runs: one more run with BPF "
	       "run time statistics\n",
	       fifo ? " at SCHED_FIFO" : "", rounds, BENCH_REPS);
	printf("  %-36s %9s %9s %9s %9s %10s %8s\n", "", "wall/rt", "+/switch", "CPU/rt",
	       "+/switch", "runs", "ns/run");
	for (size_t k = 0; k < ELEMENTSOF(runs); k++) {
		/* Against the run without meter in the same cgroup. */
		double base = median(rt[runs[k].inside ? 1 : 0], BENCH_REPS);
		double cbase = median(cpu[runs[k].inside ? 1 : 0], BENCH_REPS);
		double ns = median(rt[k], BENCH_REPS), c = median(cpu[k], BENCH_REPS);

		printf("  %-36s %9.0f %+9.0f %9.0f %+9.0f", runs[k].what, ns, (ns - base) / 2, c,
		       (c - cbase) / 2);
		if (runs[k].hook != _METER_CPU_HOOK_MAX)
			printf(" %7.2f/sw %8.0f", runs_per_switch[k], per_run[k]);
		printf("\n");
	}
	printf("  (ns; rt: round trip; runs: program runs a context switch; ns/run: the kernel's "
	       "run_time_ns/run_cnt)\n");
	(void)test_teardown(NULL);
	return 0;
}

int main(int argc, char *argv[])
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_pins, test_teardown),
		cmocka_unit_test_teardown(test_stale_pins, test_teardown),
		cmocka_unit_test_teardown(test_cpu_runtime, test_teardown),
		cmocka_unit_test_teardown(test_cpu_switch, test_teardown),
		cmocka_unit_test_teardown(test_cpu_while_running, test_teardown),
		cmocka_unit_test_teardown(test_cgroup_id, test_teardown),
		cmocka_unit_test_teardown(test_cgroup_map_full, test_teardown),
		cmocka_unit_test_teardown(test_bpftool, test_teardown),
		cmocka_unit_test_teardown(test_fallback_unprivileged, test_teardown),
		cmocka_unit_test_teardown(test_top_api, test_teardown),
		cmocka_unit_test_teardown(test_top_maps, test_teardown),
	};

	if (argc >= 2 && streq(argv[1], "--bench"))
		return bench(argc >= 3 ? (unsigned)strtoul(argv[2], NULL, 10) : 100000,
			     argc >= 4 && streq(argv[3], "fifo"));
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
