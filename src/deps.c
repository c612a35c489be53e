/* SPDX-License-Identifier: MIT */
/* Dependencies installed at deploy time (deps.h): npm in a bubblewrap sandbox, a cache by hash.
 *
 * Why bubblewrap: Debian's packaged, audited tool for exactly this (an unprivileged mount/pid/
 * user namespace sandbox around one command); spore's own sandbox/ builds instances for zygotes
 * (a pre-forked spare, a seccomp list per runtime, no network), which a one-off npm run with the
 * network does not fit. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deps.h"
#include "loop.h"
#include "util/codec.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/log.h"

#define NPM_DEFAULT "/usr/bin/npm"
#define NODE_PATH "/usr/bin/node"
#define BWRAP_DEFAULT "/usr/bin/bwrap"
#define TIMEOUT_DEFAULT_S 300u
#define MAX_BUILDS_DEFAULT 2u
#define MAX_BYTES_DEFAULT (1ull << 30)
#define MANIFEST_MAX (1u << 20) /* package.json, lock files, .npmrc: 1 MiB each at most */
#define LOG_TAIL 1500
#define TREE_DEPTH_MAX 128
#define NOBODY 65534

/* The files an install depends on, in the order they are hashed; package.json first. */
static const char *const inputs[] = { "package.json", "package-lock.json", "npm-shrinkwrap.json",
				      ".npmrc" };

struct deps_job {
	struct deps_job *next;
	int code_fd;
	deps_done_fn done;
	void *ud;
};

struct build {
	struct build *next;
	struct deps *d;
	char key[65];
	char dir[96]; /* below STATE/deps/tmp */
	pid_t pid;
	bool ci;
	bool timed_out;
	struct loop_timer timer;
	struct deps_job *jobs;
};

struct deps {
	struct loop *loop;
	int state_fd, tmp_fd, cache_fd;
	char *npm, *bwrap;
	uint32_t timeout_s, max_builds;
	uint64_t max_bytes;
	bool sandbox;
	unsigned counter;
	struct build *builds;
	size_t n_builds;
};

static int open_dir(int fd, const char *name)
{
	int r = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return r < 0 ? -errno : r;
}

static int mkdir_open(int fd, const char *name, mode_t mode)
{
	if (mkdirat(fd, name, mode) < 0 && errno != EEXIST)
		return -errno;
	return open_dir(fd, name);
}

int deps_new(struct loop *l, const struct deps_config *cfg, struct deps **ret)
{
	struct deps *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->loop = l;
	d->state_fd = d->tmp_fd = d->cache_fd = -EBADF;
	d->timeout_s = cfg->timeout_s ?: TIMEOUT_DEFAULT_S;
	d->max_builds = cfg->max_builds ?: MAX_BUILDS_DEFAULT;
	d->max_bytes = cfg->max_bytes ?: MAX_BYTES_DEFAULT;
	d->sandbox = cfg->sandbox;
	d->npm = strdup(cfg->npm ?: NPM_DEFAULT);
	d->bwrap = strdup(cfg->bwrap ?: BWRAP_DEFAULT);
	int r = d->npm && d->bwrap ? 0 : -ENOMEM;
	if (r >= 0) {
		d->state_fd = fcntl(cfg->state_fd, F_DUPFD_CLOEXEC, 3);
		r = d->state_fd < 0 ? -errno : 0;
	}
	_cleanup_close_ int deps_fd = -EBADF;
	if (r >= 0)
		r = deps_fd = mkdir_open(d->state_fd, "deps", 0700);
	if (r >= 0)
		r = d->cache_fd = mkdir_open(deps_fd, "npm", 0755);
	/* Builds of a previous run are unfinished by definition. */
	if (r >= 0)
		r = rm_rf_at(deps_fd, "tmp");
	if (r >= 0)
		r = d->tmp_fd = mkdir_open(deps_fd, "tmp", 0755);
	if (r < 0) {
		deps_free(d);
		return r;
	}
	*ret = d;
	return 0;
}

static void build_free(struct build *b)
{
	struct deps *d = b->d;
	loop_timer_stop(d->loop, &b->timer);
	(void)rm_rf_at(d->tmp_fd, b->dir);
	char log[128];
	snprintf(log, sizeof(log), "%s.log", b->dir);
	(void)unlinkat(d->tmp_fd, log, 0);
	for (struct deps_job *j = b->jobs, *n; j; j = n) {
		n = j->next;
		safe_close(j->code_fd);
		free(j);
	}
	for (struct build **p = &d->builds; *p; p = &(*p)->next)
		if (*p == b) {
			*p = b->next;
			d->n_builds--;
			break;
		}
	free(b);
}

struct deps *deps_free(struct deps *d)
{
	if (!d)
		return NULL;
	while (d->builds) {
		struct build *b = d->builds;
		if (b->pid > 0) {
			(void)kill(b->pid, SIGKILL);
			(void)waitpid(b->pid, NULL, 0);
		}
		build_free(b);
	}
	safe_close(d->tmp_fd);
	safe_close(d->cache_fd);
	safe_close(d->state_fd);
	free(d->npm);
	free(d->bwrap);
	free(d);
	return NULL;
}

size_t deps_running(const struct deps *d)
{
	return d ? d->n_builds : 0;
}

static bool exists_at(int fd, const char *name)
{
	struct stat st;
	return fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

int deps_needed(int code_fd, const char *runtime, char **ret_error)
{
	if (!runtime || strcmp(runtime, "nodejs") != 0)
		return 0;
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r = read_file(code_fd, "package.json", MANIFEST_MAX, &data, &len);
	if (r == -ENOENT)
		return 0;
	if (r == -EFBIG || r == -E2BIG)
		return error_set(ret_error, -EINVAL, "package.json: larger than %u bytes",
				 MANIFEST_MAX);
	if (r < 0)
		return error_set(ret_error, r == -EISDIR ? -EINVAL : r, "package.json: %s",
				 strerror(-r));
	size_t at = 0;
	_cleanup_json_ cJSON *j = json_parse_exact_at(data, len, &at);
	if (!j || !cJSON_IsObject(j))
		return error_set(ret_error, -EINVAL,
				 "package.json: not a valid JSON object (at byte %zu)", at);
	cJSON *deps = cJSON_GetObjectItemCaseSensitive(j, "dependencies");
	if (!deps)
		return 0;
	if (!cJSON_IsObject(deps))
		return error_set(ret_error, -EINVAL, "package.json: \"dependencies\" must be an object");
	if (!deps->child)
		return 0;
	/* A package that ships its node_modules (as Lambda's zip files do) is taken as it is. */
	if (exists_at(code_fd, "node_modules"))
		return 0;
	return 1;
}

/* The cache key: install mode, node's identity, then every input file's name, size and bytes. */
static int make_key(int code_fd, bool *ret_ci, char key[65])
{
	struct stat st;
	bool ci = exists_at(code_fd, "package-lock.json") || exists_at(code_fd, "npm-shrinkwrap.json");
	char head[256];
	if (stat(NODE_PATH, &st) < 0)
		st = (struct stat){ 0 };
	int n = snprintf(head, sizeof(head), "spore-deps-1\n%s\nnode %ju %jd.%09ld\n",
			 ci ? "npm ci" : "npm install --omit=dev", (uintmax_t)st.st_size,
			 (intmax_t)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	size_t cap = (size_t)n + 1, used = (size_t)n;
	_cleanup_free_ char *all = malloc(cap);
	if (!all)
		return -ENOMEM;
	memcpy(all, head, (size_t)n);
	for (size_t i = 0; i < ELEMENTSOF(inputs); i++) {
		_cleanup_free_ char *data = NULL;
		size_t len = 0;
		int r = read_file(code_fd, inputs[i], MANIFEST_MAX, &data, &len);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return r;
		char line[96];
		int k = snprintf(line, sizeof(line), "%s %zu\n", inputs[i], len);
		char *grown = realloc(all, used + (size_t)k + len + 1);
		if (!grown)
			return -ENOMEM;
		all = grown;
		memcpy(all + used, line, (size_t)k);
		memcpy(all + used + k, data, len);
		used += (size_t)k + len;
	}
	sha256_hex(all, used, key);
	*ret_ci = ci;
	return 0;
}

/* Hard-links the tree src (a directory) into dst, which exists: directories made, files linked,
 * symbolic links copied; anything else is skipped. */
static int link_tree(int src, int dst, unsigned depth)
{
	if (depth > TREE_DEPTH_MAX)
		return -ELOOP;
	int sfd = fcntl(src, F_DUPFD_CLOEXEC, 3);
	if (sfd < 0)
		return -errno;
	_cleanup_(closedirp) DIR *dir = fdopendir(sfd);
	if (!dir) {
		safe_close(sfd);
		return -errno;
	}
	struct dirent *e;
	errno = 0;
	while ((e = readdir(dir))) {
		if (streq(e->d_name, ".") || streq(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(src, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		if (S_ISDIR(st.st_mode)) {
			if (mkdirat(dst, e->d_name, st.st_mode & 07755) < 0)
				return -errno;
			_cleanup_close_ int s2 = open_dir(src, e->d_name);
			_cleanup_close_ int d2 = open_dir(dst, e->d_name);
			if (s2 < 0 || d2 < 0)
				return s2 < 0 ? s2 : d2;
			int r = link_tree(s2, d2, depth + 1);
			if (r < 0)
				return r;
		} else if (S_ISREG(st.st_mode)) {
			if (linkat(src, e->d_name, dst, e->d_name, 0) < 0)
				return -errno;
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t n = readlinkat(src, e->d_name, target, sizeof(target) - 1);
			if (n < 0)
				return -errno;
			target[n] = '\0';
			if (symlinkat(target, dst, e->d_name) < 0)
				return -errno;
		}
		errno = 0;
	}
	return errno ? -errno : 0;
}

/* What a build made, before it is cached: owned by root, written by no one else, size counted;
 * special files (fifos, sockets, devices a script left) removed. */
static int seal_tree(int fd, unsigned depth, uint64_t *bytes, uint64_t max)
{
	if (depth > TREE_DEPTH_MAX)
		return -ELOOP;
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dfd < 0)
		return -errno;
	_cleanup_(closedirp) DIR *dir = fdopendir(dfd);
	if (!dir) {
		safe_close(dfd);
		return -errno;
	}
	struct dirent *e;
	errno = 0;
	while ((e = readdir(dir))) {
		if (streq(e->d_name, ".") || streq(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
			if (unlinkat(fd, e->d_name, 0) < 0)
				return -errno;
			errno = 0;
			continue;
		}
		*bytes += (uint64_t)st.st_blocks * 512u;
		if (*bytes > max)
			return -EFBIG;
		if (geteuid() == 0 && fchownat(fd, e->d_name, 0, 0, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		if (!S_ISLNK(st.st_mode) &&
		    fchmodat(fd, e->d_name, st.st_mode & 0755 & ~(mode_t)S_IFMT, 0) < 0)
			return -errno;
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub = open_dir(fd, e->d_name);
			if (sub < 0)
				return sub;
			int r = seal_tree(sub, depth + 1, bytes, max);
			if (r < 0)
				return r;
		}
		errno = 0;
	}
	return errno ? -errno : 0;
}

/* Links the cached key's node_modules into code_fd and makes it durable. */
static int link_cached(struct deps *d, const char *key, int code_fd)
{
	_cleanup_close_ int entry = open_dir(d->cache_fd, key);
	if (entry < 0)
		return entry;
	_cleanup_close_ int src = open_dir(entry, "node_modules");
	if (src < 0)
		return src;
	if (mkdirat(code_fd, "node_modules", 0755) < 0)
		return -errno;
	_cleanup_close_ int dst = open_dir(code_fd, "node_modules");
	if (dst < 0)
		return dst;
	int r = link_tree(src, dst, 0);
	if (r < 0) {
		(void)rm_rf_at(code_fd, "node_modules");
		return r;
	}
	/* One syncfs for the whole tree (it and the cache live on the state file system). */
	return syncfs(code_fd) < 0 ? -errno : 0;
}

static void build_timeout(struct loop_timer *t)
{
	struct build *b = (struct build *)((char *)t - offsetof(struct build, timer));
	log_warning("deps: npm for %.12s ran past %u s: killed", b->key, b->d->timeout_s);
	b->timed_out = true;
	if (b->pid > 0)
		(void)kill(b->pid, SIGKILL);
}

/* The child: stdin /dev/null, stdout and stderr into the log, then npm (in bwrap, as nobody). */
static _noreturn_ void build_exec(struct deps *d, struct build *b, int dir_fd, int log_fd)
{
	int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0 ||
	    dup2(dir_fd, 3) < 0)
		_exit(126);
	sigset_t all;
	sigemptyset(&all);
	(void)sigprocmask(SIG_SETMASK, &all, NULL);
	/* Everything else open in spored (sockets, the state dir) closes on exec (O_CLOEXEC). */
	const char *mode[] = { "ci", NULL };
	const char *install[] = { "install", "--omit=dev", "--no-package-lock", NULL };
	const char *const *verb = b->ci ? mode : install;
	const char *npm_flags[] = { "--omit=dev", "--no-audit", "--no-fund", "--no-update-notifier",
				    "--no-progress", NULL };
	const char *argv[128];
	size_t n = 0;
	if (d->sandbox) {
		/* nobody cannot reach the build dir by its path (the state dir is root's), and a
		 * /proc/self/fd link of a root-opened fd is out of its reach too: a mount namespace
		 * of this child's own, made while root, shows the directory at /tmp/build (on a
		 * tmpfs of its own over /tmp) for bwrap to bind. */
		/* A detached copy of the build dir's mount, made before the new namespace and
		 * attached inside it (a path would be hidden under the new /tmp if the state dir
		 * lives in /tmp; a plain bind from the old namespace is refused). */
		int tree = (int)open_tree(3, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
		if (tree < 0 || unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "mode=0755,size=64k") < 0 ||
		    mkdir("/tmp/build", 0755) < 0 ||
		    move_mount(tree, "", AT_FDCWD, "/tmp/build", MOVE_MOUNT_F_EMPTY_PATH) < 0) {
			dprintf(2, "spore: cannot set up the build's mount namespace: %s\n",
				strerror(errno));
			_exit(126);
		}
		if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) < 0)
			_exit(126);
		/* After the uid change, which clears it. */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		const char *bw[] = {
			d->bwrap, "--unshare-all", "--share-net", "--die-with-parent", "--new-session",
			"--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
			"--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
			"--symlink", "usr/sbin", "/sbin",
			"--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf",
			"--ro-bind-try", "/etc/hosts", "/etc/hosts",
			"--ro-bind-try", "/etc/nsswitch.conf", "/etc/nsswitch.conf",
			"--ro-bind-try", "/etc/ssl", "/etc/ssl",
			"--ro-bind-try", "/etc/ca-certificates", "/etc/ca-certificates",
			"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
			"--bind", "/tmp/build", "/build", "--chdir", "/build",
			"--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "PATH", "/usr/bin:/bin",
			"--setenv", "LANG", "C.UTF-8", "--setenv", "npm_config_cache", "/tmp/.npm",
			"--setenv", "npm_config_update_notifier", "false",
			"--",
		};
		for (size_t i = 0; i < ELEMENTSOF(bw); i++)
			argv[n++] = bw[i];
	} else {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fchdir(3) < 0)
			_exit(126);
	}
	_Static_assert(ELEMENTSOF(argv) > 80, "argv holds bwrap's options, npm's and the NULL");
	argv[n++] = d->npm;
	for (size_t i = 0; verb[i]; i++)
		argv[n++] = verb[i];
	for (size_t i = b->ci ? 0 : 1; npm_flags[i]; i++)
		argv[n++] = npm_flags[i];
	argv[n] = NULL;
	/* bwrap sets the sandbox's environment itself (--clearenv, --setenv). */
	static const char *const env[] = { "HOME=/tmp", "PATH=/usr/bin:/bin", "LANG=C.UTF-8",
					   "npm_config_update_notifier=false", NULL };
	(void)execve(argv[0], (char *const *)argv, d->sandbox ? (char *const[]){ NULL }
							      : (char *const *)env);
	dprintf(2, "spore: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static int build_start(struct deps *d, struct build *b, int code_fd)
{
	snprintf(b->dir, sizeof(b->dir), "%.16s-%d-%u", b->key, (int)getpid(), d->counter++);
	_cleanup_close_ int dir_fd = mkdir_open(d->tmp_fd, b->dir, 0755);
	if (dir_fd < 0)
		return dir_fd;
	for (size_t i = 0; i < ELEMENTSOF(inputs); i++) {
		_cleanup_free_ char *data = NULL;
		size_t len = 0;
		int r = read_file(code_fd, inputs[i], MANIFEST_MAX, &data, &len);
		if (r == -ENOENT)
			continue;
		if (r >= 0)
			r = write_file_atomic(dir_fd, inputs[i], data, len, 0644);
		if (r < 0)
			return r;
	}
	if (d->sandbox && geteuid() == 0) {
		/* The build writes as nobody; only into its own directory. */
		if (fchown(dir_fd, NOBODY, NOBODY) < 0)
			return -errno;
		for (size_t i = 0; i < ELEMENTSOF(inputs); i++)
			if (fchownat(dir_fd, inputs[i], NOBODY, NOBODY, 0) < 0 && errno != ENOENT)
				return -errno;
	}
	char log[128];
	snprintf(log, sizeof(log), "%s.log", b->dir);
	_cleanup_close_ int log_fd =
		openat(d->tmp_fd, log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (log_fd < 0)
		return -errno;
	if (d->sandbox && geteuid() == 0 && fchown(log_fd, NOBODY, NOBODY) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		build_exec(d, b, dir_fd, log_fd);
	b->pid = pid;
	b->timer.fn = build_timeout;
	if (loop_timer_start(d->loop, &b->timer, now_us() + (uint64_t)d->timeout_s * 1000000u) < 0)
		log_warning("deps: no timer for npm %.12s: it runs without a time limit", b->key);
	log_info("deps: npm %s for %.12s started (pid %d)", b->ci ? "ci" : "install", b->key,
		 (int)pid);
	return 0;
}

static struct build *find_build(struct deps *d, const char *key)
{
	for (struct build *b = d->builds; b; b = b->next)
		if (streq(b->key, key))
			return b;
	return NULL;
}

int deps_install(struct deps *d, int code_fd, deps_done_fn done, void *ud,
		 struct deps_job **ret_job, char **ret_error)
{
	char key[65];
	bool ci;
	int r = make_key(code_fd, &ci, key);
	if (r < 0)
		return error_set(ret_error, r, "package.json: cannot read the package's npm files: %s",
				 strerror(-r));
	if (exists_at(d->cache_fd, key)) {
		r = link_cached(d, key, code_fd);
		if (r >= 0) {
			log_info("deps: node_modules %.12s linked from the cache", key);
			return 1;
		}
		if (r == -ENOSPC || r == -EDQUOT)
			return error_set(ret_error, r, "dependencies: no space left to link them");
		/* A damaged entry: build it again. */
		log_warning("deps: cache entry %.12s unusable (%s): building again", key,
			    strerror(-r));
		(void)rm_rf_at(d->cache_fd, key);
	}
	struct deps_job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->done = done;
	j->ud = ud;
	j->code_fd = fcntl(code_fd, F_DUPFD_CLOEXEC, 3);
	if (j->code_fd < 0) {
		r = -errno;
		free(j);
		return r;
	}
	struct build *b = find_build(d, key);
	if (!b) {
		if (d->n_builds >= d->max_builds) {
			safe_close(j->code_fd);
			free(j);
			return error_set(ret_error, -EBUSY,
					 "dependencies: %u installs are running already; try again",
					 d->max_builds);
		}
		b = calloc(1, sizeof(*b));
		if (!b) {
			safe_close(j->code_fd);
			free(j);
			return -ENOMEM;
		}
		b->d = d;
		b->ci = ci;
		memcpy(b->key, key, sizeof(b->key));
		b->next = d->builds;
		d->builds = b;
		d->n_builds++;
		r = build_start(d, b, code_fd);
		if (r < 0) {
			build_free(b);
			safe_close(j->code_fd);
			free(j);
			return error_set(ret_error, r, "dependencies: cannot start npm: %s",
					 strerror(-r));
		}
	}
	j->next = b->jobs;
	b->jobs = j;
	*ret_job = j;
	return 0;
}

void deps_cancel(struct deps *d, struct deps_job *j)
{
	for (struct build *b = d->builds; b; b = b->next)
		for (struct deps_job **p = &b->jobs; *p; p = &(*p)->next)
			if (*p == j) {
				*p = j->next;
				safe_close(j->code_fd);
				free(j);
				if (!b->jobs && b->pid > 0)
					(void)kill(b->pid, SIGKILL); /* reaped: deps_child_exited() */
				return;
			}
}

/* The last lines npm wrote, on one paragraph: what a deploy's error message quotes. */
static char *log_tail(struct deps *d, const char *dir)
{
	char log[128];
	snprintf(log, sizeof(log), "%s.log", dir);
	_cleanup_close_ int fd = openat(d->tmp_fd, log, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return strdup("");
	struct stat st;
	off_t off = fstat(fd, &st) == 0 && st.st_size > LOG_TAIL ? st.st_size - LOG_TAIL : 0;
	char buf[LOG_TAIL + 1];
	ssize_t n = pread(fd, buf, LOG_TAIL, off);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	char *out = malloc((size_t)n + 1), *o = out;
	if (!out)
		return NULL;
	/* Drop a partial first line, "npm warn" noise and the log-file pointer; join with " | ". */
	char *line = off > 0 ? strchr(buf, '\n') : buf;
	for (char *save = NULL, *l = line ? strtok_r(line, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save)) {
		if (startswith(l, "npm warn") || strstr(l, "A complete log of this run") ||
		    strstr(l, "/tmp/.npm/_logs/"))
			continue;
		size_t len = strlen(l);
		while (len && (l[len - 1] == '\r' || l[len - 1] == ' '))
			len--;
		if (!len)
			continue;
		if (o != out && (size_t)(o - out) + 3 <= (size_t)n) {
			memcpy(o, " | ", 3);
			o += 3;
		}
		size_t room = (size_t)n - (size_t)(o - out);
		if (len > room)
			len = room;
		for (size_t i = 0; i < len; i++)
			*o++ = (unsigned char)l[i] < ' ' ? ' ' : l[i];
	}
	*o = '\0';
	return out;
}

static void finish(struct build *b, int r, const char *message)
{
	struct deps_job *jobs = b->jobs;
	b->jobs = NULL;
	for (struct deps_job *j = jobs, *n; j; j = n) {
		n = j->next;
		int k = r;
		_cleanup_free_ char *msg = NULL;
		if (k >= 0) {
			k = link_cached(b->d, b->key, j->code_fd);
			if (k < 0 && asprintf(&msg, "dependencies: installed, but not linked into the "
						    "package: %s",
					      strerror(-k)) < 0)
				msg = NULL;
		}
		safe_close(j->code_fd);
		deps_done_fn done = j->done;
		void *ud = j->ud;
		free(j);
		done(ud, k, k >= 0 ? NULL : msg ?: message);
	}
}

bool deps_child_exited(struct deps *d, pid_t pid, int status)
{
	if (!d)
		return false;
	struct build *b = d->builds;
	while (b && b->pid != pid)
		b = b->next;
	if (!b)
		return false;
	b->pid = 0;
	loop_timer_stop(d->loop, &b->timer);
	const char *verb = b->ci ? "npm ci" : "npm install";
	_cleanup_free_ char *msg = NULL;
	int r = 0;
	if (!b->jobs) {
		log_info("deps: %s for %.12s ended with no deploy waiting", verb, b->key);
		build_free(b);
		return true;
	}
	if (b->timed_out) {
		_cleanup_free_ char *tail = log_tail(d, b->dir);
		r = -ETIMEDOUT;
		if (asprintf(&msg, "dependencies: %s did not finish within %u s: %s", verb,
			     d->timeout_s, tail && *tail ? tail : "(no output)") < 0)
			msg = NULL;
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		_cleanup_free_ char *tail = log_tail(d, b->dir);
		char how[64];
		if (WIFEXITED(status))
			snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(status));
		else
			snprintf(how, sizeof(how), "killed by signal %d",
				 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		r = -EINVAL;
		if (asprintf(&msg, "dependencies: %s failed (%s): %s", verb, how,
			     tail && *tail ? tail : "(no output)") < 0)
			msg = NULL;
	} else {
		_cleanup_close_ int dir_fd = open_dir(d->tmp_fd, b->dir);
		_cleanup_close_ int nm = dir_fd >= 0 ? open_dir(dir_fd, "node_modules") : -ENOENT;
		uint64_t bytes = 0;
		r = nm < 0 ? nm : seal_tree(nm, 0, &bytes, d->max_bytes);
		if (r >= 0 && geteuid() == 0 && (fchown(nm, 0, 0) < 0 || fchown(dir_fd, 0, 0) < 0))
			r = -errno;
		/* Into the cache under its key (one finished meanwhile by another spored run of
		 * the same key is as good: keep that one). */
		if (r >= 0 && renameat(d->tmp_fd, b->dir, d->cache_fd, b->key) < 0 &&
		    errno != EEXIST && errno != ENOTEMPTY)
			r = -errno;
		if (r >= 0 && syncfs(d->cache_fd) < 0)
			r = -errno;
		if (r == -EFBIG) {
			if (asprintf(&msg, "dependencies: node_modules is larger than %" PRIu64
					   " MiB",
				     d->max_bytes >> 20) < 0)
				msg = NULL;
			r = -EINVAL;
		} else if (r == -ENOENT) {
			if (asprintf(&msg, "dependencies: %s made no node_modules", verb) < 0)
				msg = NULL;
			r = -EINVAL;
		} else if (r < 0 && asprintf(&msg, "dependencies: cannot keep what %s installed: %s",
					     verb, strerror(-r)) < 0)
			msg = NULL;
		if (r >= 0)
			log_info("deps: %s for %.12s done (%" PRIu64 " KiB)", verb, b->key,
				 bytes >> 10);
	}
	if (r < 0)
		log_warning("deps: %s", msg ?: "dependencies: install failed");
	finish(b, r, msg ?: "dependencies: install failed");
	build_free(b);
	return true;
}
