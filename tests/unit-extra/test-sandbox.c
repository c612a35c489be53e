/* SPDX-License-Identifier: MIT */
/* sandbox/: a spare is cloned, prepared and entered for real, then checks its own isolation from
 * the inside and reports each check over a pipe; the parent asserts them. Needs root (skips
 * otherwise). All mounts are made in the child's own mount namespace and vanish with it; the
 * host keeps only a temp dir, removed at the end.
 *
 *   test-sandbox            the cmocka tests
 *   test-sandbox --bench N  the cost of each step and namespace, median of N (default 50) */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "sandbox-internal.h"
#include "sandbox.h"
#include "util/cleanup.h"

#define TEST_UID 61234
#define TEST_GID 61235
#define TEST_NOFILE 256
#define CAP_NET_RAW_VALUE 13
#define FILE_CONTENT "hello from the code dir\n"

struct fixture {
	char base[256];       /* /var/tmp/test-sandbox.XXXXXX: not visible inside */
	char root[PATH_MAX];  /* base/root: the sandbox's root_dir */
	char code[PATH_MAX];  /* base/code: file, snippet.py */
	char state[PATH_MAX]; /* base/state: secret */
	char expected_root[256]; /* "bin dev etc ..." as ls / must show it */
	int listen_fd;
	uint16_t port;
	int abstract_fd;        /* an abstract unix socket of the host, listening */
	char abstract_name[64]; /* its name, without the leading NUL */
	pid_t sleeper;
};

/* ---- helpers ------------------------------------------------------------------------------- */

/* Set by main() before any test: probe_i386_abi(). */
static bool i386_abi = true;

static int write_file(const char *path, const char *data)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = strlen(data);

	if (fd < 0)
		return -errno;
	return write(fd, data, len) == (ssize_t)len ? 0 : -EIO;
}

static ssize_t read_text(const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t done = 0;

	if (fd < 0)
		return -errno;
	while (done + 1 < size) {
		ssize_t n = read(fd, buf + done, size - 1 - done);
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	buf[done] = 0;
	return (ssize_t)done;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- fixture ------------------------------------------------------------------------------- */

static const char python_snippet[] =
	"import json, time, threading, socket, os, tempfile, subprocess, hashlib, uuid, random\n"
	"srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
	"srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
	"srv.bind(('127.0.0.1', 0)); srv.listen(4)\n"
	"def serve():\n"
	"    c, _ = srv.accept(); c.sendall(c.recv(64).upper()); c.close()\n"
	"t = threading.Thread(target=serve); t.start()\n"
	"c = socket.create_connection(('127.0.0.1', srv.getsockname()[1]), timeout=5)\n"
	"c.sendall(b'ping'); assert c.recv(64) == b'PING'; c.close(); t.join()\n"
	"u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(('::1', 0))\n"
	"u.sendto(b'x', u.getsockname()); assert u.recv(8) == b'x'\n"
	"with tempfile.TemporaryDirectory() as d:\n"
	"    p = os.path.join(d, 'f.json')\n"
	"    with open(p, 'w') as f: json.dump({'t': time.time()}, f)\n"
	"    os.rename(p, p + '.2'); assert 't' in json.load(open(p + '.2'))\n"
	"from concurrent.futures import ThreadPoolExecutor\n"
	"with ThreadPoolExecutor(4) as ex: assert sum(ex.map(lambda x: x * x, range(100))) == 328350\n"
	"hashlib.sha256(b'x').hexdigest(); uuid.uuid4(); random.random(); os.urandom(8)\n"
	"time.sleep(0.01); time.localtime(); os.cpu_count()\n"
	"assert subprocess.run(['/usr/bin/true']).returncode == 0\n"
	"st = open('/proc/self/status').read()\n"
	"assert '\\nSeccomp:\\t2\\n' in st and '\\nNoNewPrivs:\\t1\\n' in st, st\n"
	"assert os.getuid() != 0 and os.getcwd() == '/var/task'\n"
	"try:\n"
	"    os.unshare(os.CLONE_NEWUSER) if hasattr(os, 'unshare') else None\n"
	"except PermissionError: pass\n"
	"print('python ok', flush=True)\n";

static int fixture_setup(void **state)
{
	static const char *const tops[] = { "bin", "sbin", "lib", "lib64" };
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	char p[PATH_MAX + 32];
	const char *names[16];
	size_t n = 0;
	struct fixture *f;
	pid_t parent;

	*state = NULL;
	if (geteuid() != 0)
		return 0; /* the test skips, saying why */
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->listen_fd = -EBADF;
	f->abstract_fd = -EBADF;
	strcpy(f->base, "/var/tmp/test-sandbox.XXXXXX");
	assert_non_null(mkdtemp(f->base));
	(void)snprintf(f->root, sizeof(f->root), "%s/root", f->base);
	(void)snprintf(f->code, sizeof(f->code), "%s/code", f->base);
	(void)snprintf(f->state, sizeof(f->state), "%s/state", f->base);
	assert_int_equal(mkdir(f->root, 0755), 0);
	assert_int_equal(mkdir(f->code, 0755), 0);
	assert_int_equal(mkdir(f->state, 0700), 0);
	(void)snprintf(p, sizeof(p), "%s/file", f->code);
	assert_int_equal(write_file(p, FILE_CONTENT), 0);
	/* The instance's uid owns the code and may write it: only the read-only bind refuses. */
	assert_int_equal(chown(p, TEST_UID, TEST_GID), 0);
	assert_int_equal(chmod(p, 0666), 0);
	assert_int_equal(chown(f->code, TEST_UID, TEST_GID), 0);
	assert_int_equal(chmod(f->code, 0777), 0);
	(void)snprintf(p, sizeof(p), "%s/snippet.py", f->code);
	assert_int_equal(write_file(p, python_snippet), 0);
	(void)snprintf(p, sizeof(p), "%s/secret", f->state);
	assert_int_equal(write_file(p, "secret\n"), 0);

	/* What ls / must show: the fixed entries, plus the host's bin/sbin/lib/lib64 that exist. */
	names[n++] = "dev";
	names[n++] = "etc";
	names[n++] = "proc";
	names[n++] = "tmp";
	names[n++] = "usr";
	names[n++] = "var";
	for (size_t i = 0; i < ELEMENTSOF(tops); i++) {
		struct stat st;

		(void)snprintf(p, sizeof(p), "/%s", tops[i]);
		if (lstat(p, &st) == 0 && (S_ISLNK(st.st_mode) || S_ISDIR(st.st_mode)))
			names[n++] = tops[i];
	}
	qsort(names, n, sizeof(names[0]), cmp_str);
	for (size_t i = 0; i < n; i++) {
		strcat(f->expected_root, names[i]);
		strcat(f->expected_root, i + 1 < n ? " " : "");
	}

	/* A service on the host's loopback, which the instance must not reach. */
	f->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->listen_fd >= 0);
	assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->listen_fd, 4), 0);
	assert_int_equal(getsockname(f->listen_fd, (struct sockaddr *)&sa, &sl), 0);
	f->port = ntohs(sa.sin_port);

	/* And an abstract unix socket (another function's, say): abstract names are per network
	 * namespace. */
	{
		struct sockaddr_un su = { .sun_family = AF_UNIX };
		size_t n_name;

		(void)snprintf(f->abstract_name, sizeof(f->abstract_name), "spore-test-sandbox-%d",
			       (int)getpid());
		n_name = strlen(f->abstract_name);
		memcpy(su.sun_path + 1, f->abstract_name, n_name);
		f->abstract_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(f->abstract_fd >= 0);
		assert_int_equal(bind(f->abstract_fd, (struct sockaddr *)&su,
				      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n_name)),
				 0);
		assert_int_equal(listen(f->abstract_fd, 4), 0);
	}

	/* A process of the host with the instance's own uid, which kill(-1) must not reach. */
	parent = getpid();
	f->sleeper = fork();
	assert_true(f->sleeper >= 0);
	if (f->sleeper == 0) {
		/* The death signal after the ids: changing them clears it. */
		if (setresgid(TEST_GID, TEST_GID, TEST_GID) < 0 ||
		    setresuid(TEST_UID, TEST_UID, TEST_UID) < 0 ||
		    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
			_exit(1);
		for (;;)
			pause();
	}
	*state = f;
	return 0;
}

/* seccomp(2) itself: valgrind (3.19) does not implement it, so no sandbox can be entered there. */
static bool have_seccomp(void)
{
	uint32_t action = SECCOMP_RET_KILL_PROCESS;

	return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

#define SKIP_UNLESS_ROOT(f)                                                                        \
	do {                                                                                       \
		if (!(f)) {                                                                        \
			printf("# skipped: needs root (namespaces, mounts, setresuid)\n");          \
			skip();                                                                    \
		}                                                                                  \
		if (!have_seccomp()) {                                                             \
			printf("# skipped: seccomp(2) is not available (valgrind does not "          \
			       "implement it)\n");                                                  \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

static void remove_tree(const char *path)
{
	_cleanup_closedir_ DIR *d = opendir(path);
	struct dirent *de;

	if (!d) {
		(void)unlink(path);
		return;
	}
	while ((de = readdir(d))) {
		char p[PATH_MAX + 256];

		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		(void)snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (de->d_type == DT_DIR)
			remove_tree(p);
		else
			(void)unlink(p);
	}
	(void)rmdir(path);
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	if (!f)
		return 0;
	if (f->sleeper > 0) {
		(void)kill(f->sleeper, SIGKILL);
		(void)waitpid(f->sleeper, NULL, 0);
	}
	f->listen_fd = safe_close(f->listen_fd);
	f->abstract_fd = safe_close(f->abstract_fd);
	remove_tree(f->base);
	free(f);
	return 0;
}

/* ---- the child's side ---------------------------------------------------------------------- */

static int report_fd = -EBADF;
static unsigned n_checks;

static void check(const char *name, bool ok, const char *fmt, ...) _printf_(3, 4);
static void check(const char *name, bool ok, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "%s %s: ", ok ? "OK" : "FAIL", name);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(report_fd, line, (size_t)n);
	n_checks++;
}

#define CHECK_ERRNO(name, expr, want)                                                              \
	do {                                                                                       \
		long _r;                                                                           \
		errno = 0;                                                                         \
		_r = (long)(expr);                                                                 \
		check(name, _r < 0 && errno == (want), "%s = %ld, errno %d (%s), want %s", #expr,  \
		      _r, errno, strerror(errno), #want);                                          \
	} while (0)

/* The child's status, or -1. */
static int wait_status(pid_t p)
{
	int st;

	if (p <= 0 || waitpid(p, &st, 0) != p)
		return -1;
	return st;
}

static void report_error(const char *what, int r, const struct sandbox_error *e)
{
	check(what, false, "step '%s' failed: %s (%s)", e->step ? e->step : "?", strerror(-r),
	      e->message ? e->message : "-");
}

/* "Name:\t<value>" of /proc/self/status. */
static bool status_field(const char *status, const char *key, char *out, size_t size)
{
	char k[64];
	const char *p;
	size_t n;

	(void)snprintf(k, sizeof(k), "\n%s:\t", key);
	p = strstr(status, k);
	if (!p)
		return false;
	p += strlen(k);
	n = strcspn(p, "\n");
	if (n >= size)
		n = size - 1;
	memcpy(out, p, n);
	out[n] = 0;
	return true;
}

static void check_status(void)
{
	static const char *const zero_caps[] = { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb" };
	char status[4096], v[128];

	check("proc-status", read_text("/proc/self/status", status, sizeof(status)) > 0, "read");
	check("uid", status_field(status, "Uid", v, sizeof(v)) && atoi(v) == TEST_UID &&
			     !strstr(v, "\t0"),
	      "Uid: %s", v);
	check("gid", status_field(status, "Gid", v, sizeof(v)) && atoi(v) == TEST_GID, "Gid: %s", v);
	check("groups", status_field(status, "Groups", v, sizeof(v)) && v[strspn(v, " ")] == 0,
	      "Groups: '%s'", v);
	for (size_t i = 0; i < ELEMENTSOF(zero_caps); i++)
		check(zero_caps[i],
		      status_field(status, zero_caps[i], v, sizeof(v)) &&
			      streq(v, "0000000000000000"),
		      "%s", v);
	check("NoNewPrivs", status_field(status, "NoNewPrivs", v, sizeof(v)) && streq(v, "1"), "%s",
	      v);
	check("Seccomp", status_field(status, "Seccomp", v, sizeof(v)) && streq(v, "2"), "%s", v);
}

static void check_root(const struct fixture *f)
{
	_cleanup_closedir_ DIR *d = opendir("/");
	char got[512] = "", *names[64];
	struct dirent *de;
	size_t n = 0;

	check("opendir-root", d != NULL, "opendir: %s", d ? "ok" : strerror(errno));
	while (d && (de = readdir(d)) && n < ELEMENTSOF(names))
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			names[n++] = strdup(de->d_name);
	qsort(names, n, sizeof(names[0]), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (strlen(got) + strlen(names[i]) + 2 < sizeof(got)) {
			strcat(got, names[i]);
			strcat(got, i + 1 < n ? " " : "");
		}
		free(names[i]);
	}
	check("ls-root", streq(got, f->expected_root), "got '%s', want '%s'", got,
	      f->expected_root);
}

static void check_files(const struct fixture *f)
{
	char buf[256], cwd[PATH_MAX] = "";
	struct stat st;
	bool ok;
	ssize_t n;
	int fd;

	n = read_text("/var/task/file", buf, sizeof(buf));
	check("code-readable", n > 0 && streq(buf, FILE_CONTENT), "read: %zd", n);
	CHECK_ERRNO("code-readonly", open("/var/task/new", O_WRONLY | O_CREAT | O_CLOEXEC, 0644),
		    EROFS);
	CHECK_ERRNO("code-readonly-existing", open("/var/task/file", O_WRONLY | O_CLOEXEC), EROFS);
	CHECK_ERRNO("code-readonly-chmod", chmod("/var/task/file", 0600), EROFS);
	CHECK_ERRNO("root-readonly", mkdir("/newdir", 0755), EROFS);
	CHECK_ERRNO("etc-readonly", mkdir("/etc/newdir", 0755), EROFS);
	CHECK_ERRNO("dev-readonly", mkdir("/dev/newdir", 0755), EROFS);
	CHECK_ERRNO("usr-readonly", open("/usr/bin/spore-test", O_WRONLY | O_CREAT | O_CLOEXEC, 0644),
		    EROFS);
	ok = getcwd(cwd, sizeof(cwd)) && streq(cwd, "/var/task");
	check("cwd", ok, "%s", cwd);

	/* /tmp: writable, and only tmp_mb (1 MiB here) of it. */
	errno = 0;
	fd = open("/tmp/small", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ok = fd >= 0 && write(fd, "x", 1) == 1;
	check("tmp-writable", ok, "%s", strerror(errno));
	if (fd >= 0)
		(void)close(fd);
	fd = open("/tmp/big", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		static char chunk[64 * 1024];
		size_t total = 0;
		int err = 0;

		while (total < (4u << 20)) {
			ssize_t w = write(fd, chunk, sizeof(chunk));
			if (w < 0) {
				err = errno;
				break;
			}
			total += (size_t)w;
		}
		check("tmp-full", err == ENOSPC && total <= (1u << 20),
		      "wrote %zu bytes, then errno %d (%s)", total, err, strerror(err));
		(void)close(fd);
		(void)unlink("/tmp/big");
	} else
		check("tmp-full", false, "open: %s", strerror(errno));

	/* Nothing of the host's beyond the built root. */
	CHECK_ERRNO("no-shadow", open("/etc/shadow", O_RDONLY | O_CLOEXEC), ENOENT);
	CHECK_ERRNO("no-root-home", stat("/root", &st), ENOENT);
	CHECK_ERRNO("no-home", stat("/home", &st), ENOENT);
	CHECK_ERRNO("no-ld-preload", stat("/etc/ld.so.preload", &st), ENOENT);
	CHECK_ERRNO("no-state-dir", stat(f->state, &st), ENOENT);
	CHECK_ERRNO("no-test-base", stat(f->base, &st), ENOENT);
	CHECK_ERRNO("no-dev-shm", stat("/dev/shm", &st), ENOENT);
	CHECK_ERRNO("no-sys", stat("/sys", &st), ENOENT);
	n = read_text("/etc/passwd", buf, sizeof(buf));
	ok = n > 0 && strstr(buf, "\nspore:x:61234:61235:");
	check("passwd", ok, "%.*s", (int)strcspn(strstr(buf, "\nspore") ?: buf, "\n"),
	      strstr(buf, "\nspore") ?: buf);

	/* /dev works for the unprivileged uid. */
	errno = 0;
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	ok = fd >= 0 && write(fd, "x", 1) == 1;
	check("dev-null", ok, "%s", strerror(errno));
	if (fd >= 0)
		(void)close(fd);
	n = read_text("/dev/urandom", buf, 17);
	check("dev-urandom", n == 16, "%zd", n);
}

static long clone_or_exit(unsigned long flags)
{
	long r = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);

	if (r == 0)
		_exit(0);
	return r;
}

static void check_syscalls(void)
{
	int r, st;
	pid_t p;

	CHECK_ERRNO("mount", mount("tmpfs", "/tmp", "tmpfs", 0, NULL), EPERM);
	CHECK_ERRNO("umount2", umount2("/proc", MNT_DETACH), EPERM);
	CHECK_ERRNO("unshare-user", unshare(CLONE_NEWUSER), EPERM);
	CHECK_ERRNO("unshare-net", unshare(CLONE_NEWNET), EPERM);
	CHECK_ERRNO("setns", setns(0, 0), EPERM);
	/* In a child of ours: were it allowed, whoever traces it must not be the test. */
	if (sandbox_seccomp_sanitizer)
		check("ptrace-traceme", true, "not checked: sanitizer build (LeakSanitizer's ptrace)");
	else {
		p = fork();
		if (p == 0)
			_exit(ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0 ? errno : 0);
		st = wait_status(p);
		check("ptrace-traceme", WIFEXITED(st) && WEXITSTATUS(st) == EPERM,
		      "ptrace(PTRACE_TRACEME): status %#x, want exit EPERM", st);
	}
	CHECK_ERRNO("process_vm_readv", syscall(SYS_process_vm_readv, 1, NULL, 0, NULL, 0, 0), EPERM);
	CHECK_ERRNO("bpf", syscall(SYS_bpf, BPF_MAP_CREATE, NULL, 0), EPERM);
	CHECK_ERRNO("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0), EPERM);
	CHECK_ERRNO("keyctl",
		    syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0), EPERM);
	CHECK_ERRNO("add_key", syscall(SYS_add_key, "user", "k", "v", 1, KEY_SPEC_PROCESS_KEYRING),
		    EPERM);
	CHECK_ERRNO("userfaultfd", syscall(SYS_userfaultfd, 0), EPERM);
	CHECK_ERRNO("io_uring_setup", syscall(SYS_io_uring_setup, 1, NULL), EPERM);
	CHECK_ERRNO("setuid-0", syscall(SYS_setuid, 0), EPERM);
	CHECK_ERRNO("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"), EPERM);
	if (sandbox_seccomp_sanitizer)
		check("set-dumpable", true, "not checked: sanitizer build (LeakSanitizer's ptrace)");
	else
		CHECK_ERRNO("set-dumpable", prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), EPERM);
	/* The calls only phase 2 needed, refused by the lock. */
	CHECK_ERRNO("setgroups", setgroups(0, NULL), EPERM);
	CHECK_ERRNO("setresuid-self", syscall(SYS_setresuid, TEST_UID, TEST_UID, TEST_UID), EPERM);
	CHECK_ERRNO("capset", syscall(SYS_capset, NULL, NULL), EPERM);
	CHECK_ERRNO("seccomp", syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, NULL), EPERM);
	CHECK_ERRNO("unshare-cgroup", unshare(CLONE_NEWCGROUP), EPERM);
	CHECK_ERRNO("mount_setattr", syscall(SYS_mount_setattr, -1, "/", 0, NULL, 0), EPERM);
	CHECK_ERRNO("ambient-raise",
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW_VALUE, 0, 0), EPERM);
	CHECK_ERRNO("securebits", prctl(PR_SET_SECUREBITS, 0, 0, 0, 0), EPERM);
	r = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	check("dumpable", r == 0, "PR_GET_DUMPABLE: %d", r);
	/* (Were they allowed, the child would leave at once: clone_or_exit().) */
	CHECK_ERRNO("clone-newnet", clone_or_exit(CLONE_NEWNET), EPERM);
	CHECK_ERRNO("clone-newuser", clone_or_exit(CLONE_NEWUSER), EPERM);
	CHECK_ERRNO("clone3", syscall(SYS_clone3, NULL, 0), ENOSYS);
	CHECK_ERRNO("socket-vsock", socket(40 /* AF_VSOCK */, SOCK_STREAM | SOCK_CLOEXEC, 0), EPERM);
	CHECK_ERRNO("socket-packet", socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0), EPERM);
	CHECK_ERRNO("socket-uevent",
		    socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT), EPERM);
	errno = 0;
	r = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	check("socket-netlink-route", r >= 0, "%s", strerror(errno));
	if (r >= 0)
		(void)close(r);

	/* Plain fork (clone without namespace flags) works. */
	p = fork();
	if (p == 0)
		_exit(7);
	st = wait_status(p);
	check("fork", p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 7, "pid %d status %#x", (int)p,
	      st);

	/* Other ABIs kill the process: i386 getpid through int 0x80, and an x32 getpid. Some
	 * kernels (a PVM guest here) fault int 0x80 before any filter sees it: probed unfiltered
	 * in main(). */
#if defined(__x86_64__)
	if (i386_abi) {
		p = fork();
		if (p == 0) {
			long ret = 20; /* __NR_getpid on i386 */
			__asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
			_exit(0);
		}
		st = wait_status(p);
		check("i386-killed", WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "status %#x", st);
	} else {
		check("i386-unavailable", true, "int 0x80 faults on this kernel without a filter");
	}
	p = fork();
	if (p == 0) {
		(void)syscall(0x40000000 | SYS_getpid);
		_exit(0);
	}
	st = wait_status(p);
	check("x32-killed", WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "status %#x", st);
#endif
}

static void check_pid_and_signals(void)
{
	int st, sig = 0;
	bool ok;
	pid_t p;

	check("pid1", getpid() == 1, "getpid() = %d", (int)getpid());
	ok = prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0) == 0 && sig == SIGKILL;
	check("pdeathsig-kept", ok, "PR_GET_PDEATHSIG: %d", sig);
	/* kill(-1, SIGKILL) reaches our own child (so it did something) and nothing outside: the
	 * parent checks that its sleeper, same uid, is still alive. */
	p = fork();
	if (p == 0) {
		for (;;)
			pause();
	}
	errno = 0;
	ok = p > 0 && kill(-1, SIGKILL) == 0;
	check("kill-all", ok, "%s", strerror(errno));
	st = wait_status(p);
	check("kill-all-reached-ours", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status %#x",
	      st);
}

static void check_network(const struct fixture *f)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(f->port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char dev[4096], names[256] = "", *line, *save = NULL;
	struct utsname u = {};
	bool ok;
	int fd, i = 0;

	ok = uname(&u) == 0 && streq(u.nodename, "spore");
	check("hostname", ok, "%s", u.nodename);
	check("proc-net-dev", read_text("/proc/net/dev", dev, sizeof(dev)) > 0, "read");
	for (line = strtok_r(dev, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
		char *colon = strchr(line, ':');

		if (i < 2 || !colon)
			continue;
		*colon = 0;
		line += strspn(line, " ");
		strcat(names, names[0] ? " " : "");
		strncat(names, line, sizeof(names) - strlen(names) - 1);
	}
	check("only-lo", streq(names, "lo"), "interfaces: '%s'", names);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	errno = 0;
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno == ECONNREFUSED;
	check("host-loopback-unreachable", ok, "connect to 127.0.0.1:%u: %s", f->port,
	      strerror(errno));
	if (fd >= 0)
		(void)close(fd);

	{
		struct sockaddr_un su = { .sun_family = AF_UNIX };
		size_t n_name = strlen(f->abstract_name);

		memcpy(su.sun_path + 1, f->abstract_name, n_name);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		errno = 0;
		ok = fd >= 0 &&
		     connect(fd, (struct sockaddr *)&su,
			     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n_name)) < 0 &&
		     errno == ECONNREFUSED;
		check("host-abstract-unreachable", ok, "connect to @%s: %s", f->abstract_name,
		      strerror(errno));
		if (fd >= 0)
			(void)close(fd);
	}
}

static void check_misc(void)
{
	char cg[1024], *line, *save = NULL;
	struct rlimit rl = {};
	bool all_root = true, ok;

	ok = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur == TEST_NOFILE &&
	     rl.rlim_max == TEST_NOFILE;
	check("rlimit-nofile", ok, "%lu/%lu", (unsigned long)rl.rlim_cur,
	      (unsigned long)rl.rlim_max);
	ok = getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur == 0 && rl.rlim_max == 0;
	check("rlimit-core", ok, "%lu/%lu", (unsigned long)rl.rlim_cur, (unsigned long)rl.rlim_max);
	/* In its own cgroup namespace every hierarchy's path is "/". */
	check("proc-cgroup", read_text("/proc/self/cgroup", cg, sizeof(cg)) > 0, "read");
	for (line = strtok_r(cg, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t n = strlen(line);
		if (n < 2 || !streq(line + n - 2, ":/"))
			all_root = false;
	}
	check("cgroup-ns", all_root, "every path is / unless this fails");
}

static struct sandbox_config test_config(const struct fixture *f, const char *runtime)
{
	return (struct sandbox_config){
		.code_dir = f->code,
		.tmp_mb = 1,
		.uid = TEST_UID,
		.gid = TEST_GID,
		.nofile = TEST_NOFILE,
		.runtime = runtime,
		.network = "none",
	};
}

/* Runs fn in a spare (prepared, entered with config c unless c is NULL) and returns what it
 * reported; asserts the child exited 0. */
typedef void (*child_fn)(const struct fixture *f);

/* As the zygote's spares: pivot_root in phase 1, the code handed to phase 2 as a detached
 * mount (here made by the child itself before it prepares; spored makes it in the zygote). */
static bool pivot_early;

static char *run_in_sandbox(const struct fixture *f, const struct sandbox_config *c, child_fn fn)
{
	_cleanup_free_ char *out = NULL;
	size_t len = 0, cap = 0;
	int pipefd[2], st;
	pid_t pid;

	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	(void)fflush(stdout); /* the child exit()s: nothing of ours to flush twice */
	pid = sandbox_clone_spare();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sandbox_prepare_opts o = { .root_dir = f->root,
						  .runtime = c ? c->runtime : "native",
						  .pivot = pivot_early };
		struct sandbox_config cc = c ? *c : (struct sandbox_config){};
		struct sandbox_error e = {};
		int r;

		(void)close(pipefd[0]);
		report_fd = pipefd[1];
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (pivot_early && c) {
			cc.code_fd = (int)open_tree(AT_FDCWD, c->code_dir,
						    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
			if (cc.code_fd < 0) {
				report_error("open_tree", -errno, &e);
				_exit(1);
			}
		}
		r = sandbox_prepare(&o, &e);
		if (r < 0) {
			report_error("prepare", r, &e);
			_exit(1);
		}
		if (c) {
			r = sandbox_enter(&cc, &e);
			if (r < 0) {
				report_error("enter", r, &e);
				_exit(1);
			}
		}
		fn(f);
		/* exit(), not _exit(): in sanitizer builds LeakSanitizer checks us, from inside. */
		exit(0);
	}
	(void)close(pipefd[1]);
	for (;;) {
		struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
		ssize_t n;

		/* A child that hangs (stopped, blocked) fails the test instead of hanging it. */
		if (poll(&pfd, 1, 60 * 1000) == 0) {
			(void)kill(pid, SIGKILL);
			(void)waitpid(pid, NULL, 0);
			fail_msg("sandboxed child: no report for 60 s, killed");
		}
		if (cap - len < 1024) {
			char *p = realloc(out, cap + 8192);
			assert_non_null(p);
			out = p;
			cap += 8192;
		}
		n = read(pipefd[0], out + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	out[len] = 0;
	(void)close(pipefd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	printf("%s", out);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("sandboxed child: status %#x", st);
	return TAKE_PTR(out);
}

static void assert_report(const char *out, unsigned min_checks)
{
	unsigned ok = 0;

	for (const char *l = out; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
		if (startswith(l, "FAIL "))
			fail_msg("a check failed: %.*s", (int)strcspn(l, "\n"), l);
		if (startswith(l, "OK "))
			ok++;
	}
	if (ok < min_checks)
		fail_msg("only %u checks reported, want %u", ok, min_checks);
}

static void isolation_checks(const struct fixture *f)
{
	check_pid_and_signals();
	check_status();
	check_root(f);
	check_files(f);
	check_syscalls();
	check_network(f);
	check_misc();
	check("done", true, "%u checks", n_checks + 1);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_isolation(void **state)
{
	struct fixture *f = *state;
	struct sandbox_config c;
	_cleanup_free_ char *out = NULL;

	SKIP_UNLESS_ROOT(f);
	c = test_config(f, "native");
	out = run_in_sandbox(f, &c, isolation_checks);
	assert_non_null(strstr(out, "OK done"));
	assert_report(out, 60);
	/* kill(-1, SIGKILL) inside did not reach the host's process of the same uid. */
	assert_int_equal(kill(f->sleeper, 0), 0);
	assert_int_equal(waitpid(f->sleeper, NULL, WNOHANG), 0);
}

/* The same checks in a spare that pivot_rooted in phase 1 and got the code as a mount. */
static void test_isolation_pivoted(void **state)
{
	pivot_early = true;
	test_isolation(state);
	pivot_early = false;
}

/* The python3 policy is enough for a real interpreter: python3 is exec'ed inside the sandbox,
 * under the filter (execve is on the list: functions may run subprocesses; no_new_privs and
 * nosuid mounts keep exec from gaining anything), and runs json, threads, sockets on loopback,
 * files in /tmp and a subprocess. The zygote's instances never exec, so this covers more than
 * they need: interpreter start-up as well as the handler's work. */
static void exec_python(const struct fixture *f)
{
	char *const argv[] = { "python3", "-I", "-B", "/var/task/snippet.py", NULL };
	char *const envp[] = { "PATH=/usr/bin:/bin", "LANG=C.UTF-8", NULL };

	(void)f;
	if (dup2(report_fd, STDOUT_FILENO) < 0 || dup2(report_fd, STDERR_FILENO) < 0)
		_exit(3);
	execve("/usr/bin/python3", argv, envp);
	_exit(4);
}

static void test_python_policy(void **state)
{
	struct fixture *f = *state;
	struct sandbox_config c;
	_cleanup_free_ char *out = NULL;

	SKIP_UNLESS_ROOT(f);
	c = test_config(f, "python3");
	c.tmp_mb = 8;
	out = run_in_sandbox(f, &c, exec_python);
	assert_non_null(strstr(out, "python ok\n"));
}

/* Errors come back as {step, -errno}, before anything is changed where they can. */
struct error_case {
	const char *name;
	bool prepare;
	const char *root;            /* NULL: the fixture's */
	const char *prepare_runtime; /* NULL: native */
	struct sandbox_config config;
	const char *step;
	int error;
};

static void test_errors(void **state)
{
	struct fixture *f = *state;

	SKIP_UNLESS_ROOT(f);
	const struct error_case cases[] = {
		{ "not prepared", false, NULL, NULL, test_config(f, "native"), "prepared", -EINVAL },
		{ "relative root", true, "var/tmp", NULL, {}, "root_dir", -EINVAL },
		{ "missing root", true, "/nonexistent/root", NULL, {}, "mount-root", -ENOENT },
		{ "bad prepare runtime", true, NULL, "java", {}, "runtime", -EINVAL },
		{ "runtime mismatch", true, NULL, "python3", test_config(f, "native"), "runtime",
		  -EINVAL },
		{ "egress", true, NULL, NULL,
		  { .code_dir = f->code, .uid = TEST_UID, .gid = TEST_GID, .runtime = "native",
		    .network = "egress" },
		  "network", -EOPNOTSUPP },
		{ "bad network", true, NULL, NULL,
		  { .code_dir = f->code, .uid = TEST_UID, .gid = TEST_GID, .runtime = "native",
		    .network = "host" },
		  "network", -EINVAL },
		{ "bad runtime", true, NULL, NULL,
		  { .code_dir = f->code, .uid = TEST_UID, .gid = TEST_GID, .runtime = "cobol" },
		  "runtime", -EINVAL },
		{ "root uid", true, NULL, NULL,
		  { .code_dir = f->code, .uid = 0, .gid = TEST_GID, .runtime = "native" },
		  "ids", -EINVAL },
		{ "missing code", true, NULL, NULL,
		  { .code_dir = "/nonexistent/code", .uid = TEST_UID, .gid = TEST_GID,
		    .runtime = "native" },
		  "mount-code", -ENOENT },
		{ "relative code", true, NULL, NULL,
		  { .code_dir = "code", .uid = TEST_UID, .gid = TEST_GID },
		  "mount-code", -EINVAL },
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		const struct error_case *t = &cases[i];
		struct {
			int r;
			char step[32];
			bool has_message;
		} got = {};
		int pipefd[2], st;
		pid_t pid;

		assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
		pid = sandbox_clone_spare();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct sandbox_prepare_opts o = { .root_dir = t->root ? t->root : f->root,
							  .runtime = t->prepare_runtime ?: "native" };
			struct sandbox_error e = {};

			got.r = t->prepare ? sandbox_prepare(&o, &e) : 0;
			if (got.r == 0)
				got.r = sandbox_enter(&t->config, &e);
			(void)snprintf(got.step, sizeof(got.step), "%s", e.step ? e.step : "");
			got.has_message = e.message != NULL;
			(void)!write(pipefd[1], &got, sizeof(got));
			_exit(0);
		}
		(void)close(pipefd[1]);
		assert_int_equal(read(pipefd[0], &got, sizeof(got)), sizeof(got));
		(void)close(pipefd[0]);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		printf("# %s: step '%s', %s\n", t->name, got.step, strerror(-got.r));
		assert_int_equal(got.r, t->error);
		assert_string_equal(got.step, t->step);
		if (t->error == -EOPNOTSUPP)
			assert_true(got.has_message);
	}
}

/* The tables, without root: every refused syscall is on no list, every listed name is a
 * syscall of x86_64, nothing is listed twice, and both filters compile. */
static void test_policy_tables(void **state)
{
	(void)state;
	for (const char *const *r = sandbox_seccomp_refused; *r; r++) {
		for (size_t i = 0; i < sandbox_seccomp_n_allow; i++)
			if (streq(*r, sandbox_seccomp_allow[i].name))
				fail_msg("'%s' is refused but on the allow-list", *r);
		for (const char *const *c = sandbox_seccomp_conditional; *c; c++)
			if (streq(*r, *c))
				fail_msg("'%s' is refused but allowed conditionally", *r);
	}
	for (size_t i = 0; i < sandbox_seccomp_n_allow; i++) {
		const char *name = sandbox_seccomp_allow[i].name;

#if defined(__x86_64__)
		if (seccomp_syscall_resolve_name(name) == __NR_SCMP_ERROR)
			fail_msg("'%s' is not a syscall", name);
#endif
		assert_true(sandbox_seccomp_allow[i].runtimes != 0);
		for (size_t j = i + 1; j < sandbox_seccomp_n_allow; j++)
			if (streq(name, sandbox_seccomp_allow[j].name))
				fail_msg("'%s' is listed twice", name);
	}
	/* libseccomp asks the kernel which actions it may use; without seccomp(2) (valgrind) it
	 * would refuse KILL_PROCESS. Compiling needs no kernel: claim the API level of 4.14+. */
	if (!have_seccomp() && seccomp_api_get() < 3) {
		printf("# seccomp(2) unavailable: compiling at libseccomp API level 3\n");
		assert_int_equal(seccomp_api_set(3), 0);
	}
	assert_int_equal(sandbox_init("python3", NULL), 0);
	assert_int_equal(sandbox_init("native", NULL), 0);
	assert_int_equal(sandbox_init("java", NULL), -EINVAL);
	assert_int_equal(sandbox_runtime_from_string("python3"), SANDBOX_RUNTIME_PYTHON3);
	assert_string_equal(sandbox_runtime_to_string(SANDBOX_RUNTIME_NATIVE), "native");
	assert_int_equal(sandbox_runtime_from_string(NULL), _SANDBOX_RUNTIME_INVALID);
}

/* ---- bench --------------------------------------------------------------------------------- */

#define MAX_STEPS 48
#define MAX_RUNS 400

struct sample {
	const char *step; /* a static string of the library: same address in parent and child */
	uint64_t ns;
};

static struct sample samples[MAX_STEPS];
static size_t n_samples;

static void record_step(const char *step, uint64_t ns)
{
	if (n_samples < MAX_STEPS)
		samples[n_samples++] = (struct sample){ step, ns };
}

/* 1000 calls each: getppid() (allowed unconditionally: the kernel's cache answers without
 * running the filter) and prctl(PR_GET_NAME) (argument-checked: the BPF runs). */
static void syscall_costs(bool filtered)
{
	char comm[16];
	uint64_t t0;

	t0 = now_ns();
	for (int i = 0; i < 1000; i++)
		(void)syscall(SYS_getppid);
	record_step(filtered ? "getppid() x1000, under the filters"
			     : "getppid() x1000, without a filter",
		    now_ns() - t0);
	t0 = now_ns();
	for (int i = 0; i < 1000; i++)
		(void)prctl(PR_GET_NAME, comm, 0, 0, 0);
	record_step(filtered ? "prctl(PR_GET_NAME) x1000, under the filters"
			     : "prctl(PR_GET_NAME) x1000, without a filter",
		    now_ns() - t0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double median_us(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(v[0]), cmp_u64);
	return n ? (double)v[n / 2] / 1000.0 : 0;
}

struct series {
	const char *name;
	uint64_t v[MAX_RUNS];
	size_t n;
};

static struct series series[64];
static size_t n_series;

static void add(const char *name, uint64_t ns)
{
	size_t i;

	for (i = 0; i < n_series; i++)
		if (streq(series[i].name, name))
			break;
	if (i == n_series) {
		if (n_series == ELEMENTSOF(series))
			return;
		series[n_series++].name = name;
	}
	if (series[i].n < MAX_RUNS)
		series[i].v[series[i].n++] = ns;
}

static void print_series(const char *title)
{
	printf("\n%s\n", title);
	for (size_t i = 0; i < n_series; i++) {
		printf("  %-40s %9.1f us  (n=%zu)\n", series[i].name,
		       median_us(series[i].v, series[i].n), series[i].n);
		series[i].n = 0;
	}
	n_series = 0;
}

static pid_t raw_clone(unsigned long flags)
{
	return (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
}

static int bench(int runs)
{
	static const struct {
		const char *name;
		unsigned long flags;
	} flags[] = {
		{ "none (raw clone = fork)", 0 },
		{ "CLONE_NEWPID", CLONE_NEWPID },
		{ "CLONE_NEWNS", CLONE_NEWNS },
		{ "CLONE_NEWIPC", CLONE_NEWIPC },
		{ "CLONE_NEWUTS", CLONE_NEWUTS },
		{ "CLONE_NEWNET", CLONE_NEWNET },
		{ "CLONE_NEWCGROUP", CLONE_NEWCGROUP },
		{ "PID|NS|IPC|UTS|NET (one clone)",
		  CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET },
	};
	static char round_trip[ELEMENTSOF(flags)][80];
	struct fixture *f = NULL;
	void *st = NULL;
	int netns_fd;
	pid_t holder;

	if (runs < 3 || runs > MAX_RUNS)
		runs = 50;
	if (geteuid() != 0) {
		fprintf(stderr, "bench needs root\n");
		return 77;
	}
	if (fixture_setup(&st) != 0 || !st)
		return 1;
	f = st;

	/* 1. Each namespace in a raw clone: the time the parent is blocked in clone(), and the
	 * round trip with the child's exit and reaping (namespace teardown included). */
	for (size_t i = 0; i < ELEMENTSOF(flags); i++)
		for (int k = 0; k < runs; k++) {
			uint64_t t0 = now_ns(), t1, t2;
			pid_t p = raw_clone(flags[i].flags);

			if (p == 0)
				_exit(0);
			t1 = now_ns();
			if (p < 0)
				return 1;
			(void)waitpid(p, NULL, 0);
			t2 = now_ns();
			add(flags[i].name, t1 - t0);
			(void)snprintf(round_trip[i], sizeof(round_trip[i]), "%s +exit+reap",
				       flags[i].name);
			add(round_trip[i], t2 - t0);
		}
	print_series("Namespaces in one raw clone(): parent blocked in clone(), and the round trip");

	/* 2. What sandbox_clone_spare() costs the zygote (unshare(NEWPID) + fork + setns), next to
	 * a plain fork(). */
	assert_int_equal(ns_pidns_open(), 0);
	for (int k = 0; k < runs; k++) {
		uint64_t t0 = now_ns();
		pid_t p = fork();

		if (p == 0)
			_exit(0);
		add("fork() (glibc)", now_ns() - t0);
		(void)waitpid(p, NULL, 0);
		t0 = now_ns();
		p = sandbox_clone_spare();
		if (p == 0)
			_exit(0);
		add("sandbox_clone_spare()", now_ns() - t0);
		(void)waitpid(p, NULL, 0);
	}
	/* Sharing one network namespace per function instead: setns() into it. */
	holder = fork();
	if (holder == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || unshare(CLONE_NEWNET) < 0)
			_exit(1);
		for (;;)
			pause();
	}
	usleep(100000);
	{
		char p[64];

		(void)snprintf(p, sizeof(p), "/proc/%d/ns/net", (int)holder);
		netns_fd = open(p, O_RDONLY | O_CLOEXEC);
	}
	for (int k = 0; k < runs && netns_fd >= 0; k++) {
		int pfd[2];
		uint64_t d = 0;
		pid_t p;

		if (pipe2(pfd, O_CLOEXEC) < 0)
			return 1;
		p = fork();
		if (p == 0) {
			uint64_t t0 = now_ns();
			if (setns(netns_fd, CLONE_NEWNET) < 0)
				_exit(1);
			d = now_ns() - t0;
			(void)!write(pfd[1], &d, sizeof(d));
			_exit(0);
		}
		(void)close(pfd[1]);
		if (read(pfd[0], &d, sizeof(d)) == sizeof(d))
			add("setns() into a shared netns", d);
		(void)close(pfd[0]);
		(void)waitpid(p, NULL, 0);
	}
	(void)kill(holder, SIGKILL);
	(void)waitpid(holder, NULL, 0);
	netns_fd = safe_close(netns_fd);
	print_series("Phase 0, in the zygote");

	/* 3. Compiling the filters (sandbox_init() in the zygote, or the first enter()). */
	for (int k = 0; k < runs; k++) {
		int pfd[2];
		uint64_t d[2] = {};
		pid_t p;

		if (pipe2(pfd, O_CLOEXEC) < 0)
			return 1;
		p = fork();
		if (p == 0) {
			uint64_t t0 = now_ns();
			(void)sandbox_seccomp_compile(SANDBOX_RUNTIME_PYTHON3);
			d[0] = now_ns() - t0;
			t0 = now_ns();
			(void)sandbox_seccomp_compile(SANDBOX_RUNTIME_NATIVE);
			d[1] = now_ns() - t0;
			(void)!write(pfd[1], d, sizeof(d));
			_exit(0);
		}
		(void)close(pfd[1]);
		if (read(pfd[0], d, sizeof(d)) == sizeof(d)) {
			add("compile python3 policy + the lock", d[0]);
			add("compile native policy", d[1]);
		}
		(void)close(pfd[0]);
		(void)waitpid(p, NULL, 0);
	}
	print_series("Seccomp filter compilation (once per zygote with sandbox_init())");

	/* 4. Every step of phase 1 and 2 in a spare, filters precompiled as in a zygote; and what a
	 * syscall costs afterwards, next to the same calls here, without a filter. */
	for (int k = 0; k < runs; k++) {
		n_samples = 0;
		syscall_costs(false);
		for (size_t i = 0; i < n_samples; i++)
			add(samples[i].step, samples[i].ns);
	}
	n_samples = 0;
	if (sandbox_init("python3", NULL) < 0)
		return 1;
	for (int k = 0; k < runs; k++) {
		struct sandbox_config c = test_config(f, "python3");
		struct sample got[MAX_STEPS + 3];
		uint64_t t_clone = now_ns(), t_exit;
		ssize_t n;
		int pfd[2];
		pid_t p;

		if (pipe2(pfd, O_CLOEXEC) < 0)
			return 1;
		p = sandbox_clone_spare();
		if (p == 0) {
			struct sandbox_prepare_opts o = { .root_dir = f->root, .runtime = "python3" };
			uint64_t t0, t1, t2;

			sandbox_step_hook = record_step;
			t0 = now_ns();
			if (sandbox_prepare(&o, NULL) < 0)
				_exit(1);
			t1 = now_ns();
			if (sandbox_enter(&c, NULL) < 0)
				_exit(2);
			t2 = now_ns();
			record_step("= phase 1 total (sandbox_prepare)", t1 - t0);
			record_step("= phase 2 total (sandbox_enter)", t2 - t1);
			syscall_costs(true);
			(void)!write(pfd[1], samples, n_samples * sizeof(samples[0]));
			_exit(0);
		}
		t_clone = now_ns() - t_clone;
		(void)close(pfd[1]);
		n = read(pfd[0], got, sizeof(got));
		(void)close(pfd[0]);
		t_exit = now_ns();
		(void)waitpid(p, NULL, 0);
		t_exit = now_ns() - t_exit;
		if (n <= 0)
			return 1;
		add("sandbox_clone_spare() in the zygote", t_clone);
		for (size_t i = 0; i < (size_t)n / sizeof(got[0]); i++)
			add(got[i].step, got[i].ns);
		add("exit + reap of the instance", t_exit);
	}
	print_series("Each step (phase 1 in the spare ahead of time, phase 2 on the cold path)");
	return fixture_teardown(&st);
}

/* Whether this kernel runs i386 system calls at all (int 0x80 getpid, no filter). */
static bool probe_i386_abi(void)
{
#if defined(__x86_64__)
	int st;
	pid_t p = fork();

	if (p == 0) {
		long ret = 20; /* __NR_getpid on i386 */
		__asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
		_exit(ret == (long)getpid() ? 0 : 1);
	}
	if (p < 0 || waitpid(p, &st, 0) != p)
		return true; /* unknown: let the real check decide */
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
#else
	return false;
#endif
}

int main(int argc, char *argv[])
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_tables),
		cmocka_unit_test_setup_teardown(test_isolation, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_isolation_pivoted, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_python_policy, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_errors, fixture_setup, fixture_teardown),
	};

	if (argc > 1 && streq(argv[1], "--bench"))
		return bench(argc > 2 ? atoi(argv[2]) : 50);
	i386_abi = probe_i386_abi();
	if (!i386_abi)
		fprintf(stderr, "note: this kernel does not run i386 system calls (int 0x80 faults "
				"without a filter): the i386 seccomp check has nothing to check\n");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
