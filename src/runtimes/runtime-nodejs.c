/* SPDX-License-Identifier: MIT */
/* spore-zygote-nodejs: Node.js instances. node cannot be forked once it runs (V8 and libuv keep
 * threads), so this zygote keeps a pool of node processes started ahead of demand, already
 * sandboxed, waiting for a function: each spare is cloned as usual (its own pid namespace, the
 * cgroup pool), prepares the sandbox, enters it with an empty /var/task and a uid of its own,
 * and exec()s /usr/bin/node with the bootstrap (spore-nodejs-bootstrap.js), which loads the
 * common modules and then blocks in the addon (spore-nodejs.node) until an instance is asked
 * for. What depends on the function is done at INST_INIT by a helper that the spare forked
 * before entering the sandbox, so that it still has the host's mounts and root's
 * capabilities: it moves node into the instance's cgroups, binds the code read-only over
 * /var/task inside node's mount namespace, sizes /tmp, hands node its three fds and exits.
 * docs/RUNTIMES.md has the design and its figures.
 *
 *   zygote ──clone──> spare (pid 1 of its pid namespace)
 *                       ├─fork─> helper: host mount namespace, root, no seccomp; holds the
 *                       │        spare socket; at INST_INIT (peeked, not consumed): cgroups,
 *                       │        code, /tmp; then passes {chan, stdout, stderr} to node
 *                       └─ sandbox_prepare(), sandbox_enter() with /var/task empty,
 *                          execve(node bootstrap) with fd 3 = its socket to the helper
 *
 * Without --sandbox-dir the spare exec()s node at once and node speaks the spare protocol with
 * the zygote itself. Where no node binary exists, spares and instances are the usual C ones and
 * every INST_INIT fails with Runtime.Unavailable. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "sandbox.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/log.h"
#include "zygote.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

#define BOOTSTRAP_NAME "spore-nodejs-bootstrap.js"
#define ADDON_NAME "spore-nodejs.node"
#define RUNTIME_FILE_MAX ((size_t)4 << 20)
/* Where the runtime files are inside the sandbox, as on Lambda. */
#define SANDBOX_RUNTIME_DIR "/var/runtime"
/* node's end of its socket to the helper (or to the zygote), on every node exec()ed here. */
#define HANDOVER_FD 3
/* /tmp as sandbox_enter() mounts it when not told otherwise; the helper resizes it. */
#define TMP_MB_SPARE SANDBOX_TMP_MB_DEFAULT
#define NOFILE 1024

/* A spare runs node before it knows its function, so it cannot take the function's uid: each
 * spare gets a uid of its own, never one of spored's function range (sandbox_uid_min is at most
 * 4,000,000,000 and sandbox_uid_count at most 1,000,000), and no two spares of one zygote share
 * one until 4096 spares later. 4,100,000,000 + 2^24 < 2^32 - 2. */
#define SPARE_UID_BASE 4100000000u
#define SPARE_UID_SPAN (1u << 24)

static const char *node_path; /* NULL: no node on this host */
static char runtime_dir[PATH_MAX];
static char *bootstrap_data, *addon_data;
static size_t bootstrap_len, addon_len;
static uint32_t spare_seq; /* counted in the zygote before each fork: the child sees its own */
static pid_t zygote_pid;

/* ---- helpers ------------------------------------------------------------------------------ */

static _noreturn_ _printf_(2, 3) void die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("spore-nodejs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	_exit(code);
}

static int send_fds(int sock, char c, const int fds[3])
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 3)];
	} control = {};
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * 3);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * 3);
	for (;;) {
		if (sendmsg(sock, &mh, MSG_NOSIGNAL) == 1)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

/* Receives the one-byte ZYGOTE_SPARE_GO with exactly three fds (O_CLOEXEC). 0: EOF. */
static int recv_go(int sock, int ret_fds[3])
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 8)];
	} control;
	char c = 0;
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	int fds[8], n_fds = 0;
	ssize_t n;

	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (n_fds < 8)
				fds[n_fds++] = fd;
			else
				(void)close(fd);
		}
	}
	if (n == 0 && n_fds == 0)
		return 0;
	if (n != 1 || c != ZYGOTE_SPARE_GO || n_fds != 3 || (mh.msg_flags & MSG_CTRUNC)) {
		for (int i = 0; i < n_fds; i++)
			(void)close(fds[i]);
		return -EBADMSG;
	}
	memcpy(ret_fds, fds, sizeof(int) * 3);
	return 1;
}

/* Closes every fd above 2 but a and b. */
static void close_all_but(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;

	if (lo > 3)
		(void)close_range(3, (unsigned)lo - 1, 0);
	if (hi > lo + 1)
		(void)close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
	(void)close_range((unsigned)hi + 1, ~0U, 0);
}

/* dirname of our own executable: the runtime files are installed beside it. */
static int find_runtime_dir(void)
{
	ssize_t n = readlink("/proc/self/exe", runtime_dir, sizeof(runtime_dir) - 1);
	char *slash;

	if (n < 0)
		return -errno;
	runtime_dir[n] = 0;
	slash = strrchr(runtime_dir, '/');
	if (!slash || slash == runtime_dir)
		return -EINVAL;
	*slash = 0;
	return 0;
}

static int nodejs_init_language(void)
{
	static const char *const candidates[] = { "/usr/bin/node", "/usr/bin/nodejs",
						   "/usr/local/bin/node" };
	_cleanup_close_ int dfd = -EBADF;
	int r;

	zygote_pid = getpid();
	r = find_runtime_dir();
	if (r < 0)
		return log_error_errno(r, "zygote-nodejs: cannot find the runtime directory: %m");
	dfd = open(runtime_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return log_error_errno(errno, "zygote-nodejs: '%s': %m", runtime_dir);
	r = read_file(dfd, BOOTSTRAP_NAME, RUNTIME_FILE_MAX, &bootstrap_data, &bootstrap_len);
	if (r < 0)
		return log_error_errno(r, "zygote-nodejs: '%s/%s': %m", runtime_dir,
				       BOOTSTRAP_NAME);
	r = read_file(dfd, ADDON_NAME, RUNTIME_FILE_MAX, &addon_data, &addon_len);
	if (r < 0)
		return log_error_errno(r, "zygote-nodejs: '%s/%s': %m", runtime_dir, ADDON_NAME);
	for (size_t i = 0; i < ELEMENTSOF(candidates) && !node_path; i++)
		if (access(candidates[i], X_OK) == 0)
			node_path = candidates[i];
	if (!node_path)
		log_warning("zygote-nodejs: no node binary (/usr/bin/node): every nodejs instance "
			    "will fail to start");
	return 0;
}

static void nodejs_before_fork(void)
{
	spare_seq++;
}

/* ---- node --------------------------------------------------------------------------------- */

/* exec()s node with the bootstrap; sock becomes HANDOVER_FD, 0 1 2 stay, the rest is closed.
 * fresh: an instance is waiting already (no ready spare was there), so the bootstrap skips
 * the warm-up, which would only delay it. */
static _noreturn_ void exec_node(int sock, const char *bootstrap, bool sandboxed, bool fresh)
{
	char *argv[] = { (char *)"node", (char *)bootstrap, NULL };
	char *envp[] = {
		(char *)"PATH=/usr/local/bin:/usr/bin:/bin",
		(char *)"LANG=C.UTF-8",
		(char *)"TZ=:UTC",
		(char *)(sandboxed ? "SPORE_NODEJS_SANDBOX=1" : "SPORE_NODEJS_SANDBOX=0"),
		(char *)(fresh ? "SPORE_NODEJS_FRESH=1" : "SPORE_NODEJS_FRESH=0"),
		NULL,
	};

	if (sock != HANDOVER_FD && dup2(sock, HANDOVER_FD) < 0)
		die(2, "dup2: %m");
	/* dup2() leaves the copy without FD_CLOEXEC, but not when sock was HANDOVER_FD already. */
	if (fcntl(HANDOVER_FD, F_SETFD, 0) < 0)
		die(2, "fcntl: %m");
	(void)close_range(HANDOVER_FD + 1, ~0U, 0);
	execve(node_path, argv, envp);
	die(2, "execve(%s): %m", node_path);
}

/* ---- the helper --------------------------------------------------------------------------- */

static int frame_send(int fd, uint32_t type, const char *payload)
{
	struct proto_frame h = { .type = type, .len = (uint32_t)strlen(payload) };
	int r;

	r = write_all(fd, &h, sizeof(h));
	return r < 0 ? r : write_all(fd, payload, h.len);
}

/* INST_INIT_ERROR for an INIT the helper could not carry out (the instance then exits 1). */
static _noreturn_ _printf_(3, 4) void init_fail(int chan, const char *type, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL, *json = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		msg = NULL;
	json = runtime_error_json(type, msg ?: "out of memory", NULL, 0);
	if (json)
		(void)frame_send(chan, INST_INIT_ERROR, json);
	_exit(1);
}

/* Reads INST_INIT without taking it off the socket (node reads it after us). spored writes it
 * in one piece, and at most ~64 KiB (env and secrets are 4 KiB each): the socket holds it. */
static int peek_init(int chan, char **ret_payload, size_t *ret_len)
{
	_cleanup_free_ char *buf = NULL;
	struct proto_frame h;
	size_t total;
	ssize_t n;

	for (int tries = 0;; tries++) {
		do
			n = recv(chan, &h, sizeof(h), MSG_PEEK | MSG_WAITALL);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		if ((size_t)n == sizeof(h))
			break;
		if (tries > 5000)
			return -ETIMEDOUT;
		(void)usleep(1000);
	}
	if (h.type != INST_INIT)
		return -EBADMSG;
	if (h.len > (1u << 20))
		return -EMSGSIZE;
	total = sizeof(h) + h.len;
	buf = malloc(total + 1);
	if (!buf)
		return -ENOMEM;
	for (int tries = 0;; tries++) {
		do
			n = recv(chan, buf, total, MSG_PEEK | MSG_WAITALL);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return -errno;
		if ((size_t)n == total)
			break;
		if (n == 0 || tries > 5000)
			return n == 0 ? -EPIPE : -ETIMEDOUT;
		(void)usleep(1000);
	}
	memmove(buf, buf + sizeof(h), h.len);
	buf[h.len] = 0;
	*ret_len = h.len;
	*ret_payload = TAKE_PTR(buf);
	return 1;
}

static bool json_uint(const cJSON *j, const char *key, uint32_t def, uint32_t *ret)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	if (!v) {
		*ret = def;
		return true;
	}
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= UINT32_MAX) ||
	    v->valuedouble != (double)(uint32_t)v->valuedouble)
		return false;
	*ret = (uint32_t)v->valuedouble;
	return true;
}

/* Moves node (pid 1 of our pid namespace, all its threads) into the instance's v1 cgroups:
 * spored names their "tasks" files, for a single-threaded instance that moves itself; node
 * has threads, so their "cgroup.procs". */
static void helper_cgroups(int chan, const cJSON *tasks)
{
	const cJSON *t;

	cJSON_ArrayForEach (t, tasks) {
		_cleanup_free_ char *procs = NULL;
		_cleanup_close_ int fd = -EBADF;
		const char *p = cJSON_GetStringValue(t);
		size_t l = p ? strlen(p) : 0;
		int r;

		if (!p || p[0] != '/' || l < 7 || !streq(p + l - 6, "/tasks") || strstr(p, "/../"))
			init_fail(chan, "Runtime.InvalidInit",
				  "INST_INIT: sandbox.cgroup_tasks: not a cgroup tasks file");
		if (asprintf(&procs, "%.*scgroup.procs", (int)(l - 5), p) < 0)
			init_fail(chan, "Runtime.SandboxError", "out of memory");
		fd = open(procs, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		r = fd < 0 ? -errno : write_all(fd, "1", 1);
		if (r < 0)
			init_fail(chan, "Runtime.SandboxError", "cannot enter cgroup '%s': %s", p,
				  strerror(-r));
	}
}

/* The function's code, read-only, over node's empty /var/task: a detached copy of the host's
 * directory made here, moved into node's mount namespace. Then /tmp at its size. */
static void helper_mounts(int chan, const char *code_dir, uint32_t tmp_mb)
{
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
					       MOUNT_ATTR_NODEV };
	_cleanup_close_ int tree = -EBADF, node = -EBADF;
	struct stat st;

	if (code_dir[0] != '/' || stat(code_dir, &st) < 0 || !S_ISDIR(st.st_mode))
		init_fail(chan, "Runtime.SandboxError",
			  "entering the sandbox failed at 'mount-code': %s: code_dir is not a "
			  "directory",
			  code_dir);
	/* Not recursive, as sandbox_enter(): nothing mounted below the code comes along. */
	tree = open_tree(AT_FDCWD, code_dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0 || mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
		init_fail(chan, "Runtime.SandboxError", "entering the sandbox failed at "
			  "'mount-code': %m");
	node = pidfd_open(1, 0);
	if (node < 0 || setns(node, CLONE_NEWNS) < 0)
		init_fail(chan, "Runtime.SandboxError", "entering the sandbox failed at "
			  "'setns': %m");
	if (move_mount(tree, "", AT_FDCWD, "/var/task", MOVE_MOUNT_F_EMPTY_PATH) < 0)
		init_fail(chan, "Runtime.SandboxError", "entering the sandbox failed at "
			  "'mount-code': %m");
	if (tmp_mb != TMP_MB_SPARE) {
		/* As sandbox/mount.c: one inode per 4 KiB, at least 1024. */
		uint32_t inodes = tmp_mb > UINT32_MAX / 256 ? UINT32_MAX : tmp_mb * 256;
		char opts[96];

		(void)snprintf(opts, sizeof(opts), "size=%" PRIu32 "m,nr_inodes=%" PRIu32, tmp_mb,
			       inodes < 1024 ? 1024 : inodes);
		if (mount(NULL, "/tmp", NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV, opts) < 0)
			init_fail(chan, "Runtime.SandboxError", "entering the sandbox failed at "
				  "'mount-tmp': %m");
	}
}

/* Everything INST_INIT asks of root, done for node. Returns when node may have the fds (done,
 * or not an INIT: node refuses it); exits after an INST_INIT_ERROR. */
static void helper_init(int chan)
{
	_cleanup_(cJSON_Deletep) cJSON *j = NULL;
	_cleanup_free_ char *payload = NULL;
	const cJSON *sb;
	const char *code_dir;
	uint32_t uid, gid, tmp_mb;
	size_t len = 0;
	int r;

	r = peek_init(chan, &payload, &len);
	if (r == 0)
		_exit(0); /* spored closed the channel before INIT: nothing to start */
	if (r == -EBADMSG)
		return; /* not INIT: node gets the chan, reports it and exits 2, running nothing */
	if (r < 0)
		init_fail(chan, "Runtime.InvalidInit", "INST_INIT: %s", strerror(-r));
	j = cJSON_ParseWithLength(payload, len);
	if (!cJSON_IsObject(j))
		init_fail(chan, "Runtime.InvalidInit", "INST_INIT: not a JSON object");
	code_dir = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "code_dir"));
	if (!code_dir)
		init_fail(chan, "Runtime.InvalidInit", "INST_INIT: code_dir: must be a string");
	sb = cJSON_GetObjectItemCaseSensitive(j, "sandbox");
	if (!cJSON_IsObject(sb))
		init_fail(chan, "Runtime.InvalidInit",
			  "INST_INIT: sandbox: required by this zygote");
	/* uid and gid are checked as sandbox_enter() checks them, though node already runs as the
	 * spare's own (see SPARE_UID_BASE). */
	if (!json_uint(sb, "uid", 0, &uid) || !json_uint(sb, "gid", 0, &gid) ||
	    !json_uint(sb, "tmp_mb", TMP_MB_SPARE, &tmp_mb) || uid == 0 || gid == 0 || tmp_mb == 0)
		init_fail(chan, "Runtime.InvalidInit",
			  "INST_INIT: sandbox: uid, gid, tmp_mb must be positive integers");
	/* First into the cgroups, before node runs anything of the function. */
	helper_cgroups(chan, cJSON_GetObjectItemCaseSensitive(sb, "cgroup_tasks"));
	helper_mounts(chan, code_dir, tmp_mb);
}

/* The helper: root, in the host's mount namespace, no seccomp filter (forked before
 * sandbox_prepare()); a member of the instance's pid namespace, where node is pid 1. */
static _noreturn_ void helper_main(int zsock, int nsock)
{
	const char ready = ZYGOTE_SPARE_READY;
	int fds[3];
	char c;
	ssize_t n;
	int r;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != 1)
		_exit(0);
	(void)prctl(PR_SET_NAME, "spore-node-init");
	close_all_but(zsock, nsock);

	/* node is up and waiting: so is the spare */
	do
		n = recv(nsock, &c, 1, 0);
	while (n < 0 && errno == EINTR);
	if (n != 1 || c != ZYGOTE_SPARE_READY)
		_exit(0);
	/* A spawn without a ready spare queued its GO before the fork and closed its end: EPIPE. */
	(void)send(zsock, &ready, 1, MSG_NOSIGNAL);
	r = recv_go(zsock, fds);
	if (r == 0)
		_exit(0); /* retired */
	if (r < 0)
		die(2, "helper: bad hand-over from the zygote: %s", strerror(-r));
	helper_init(fds[0]);
	r = send_fds(nsock, ZYGOTE_SPARE_GO, fds);
	if (r < 0)
		die(2, "helper: cannot hand the instance to node: %s", strerror(-r));
	_exit(0);
}

/* ---- the spare ---------------------------------------------------------------------------- */

static int write_runtime_file(const char *dir, const char *name, const char *data, size_t len)
{
	_cleanup_free_ char *p = NULL;
	_cleanup_close_ int fd = -EBADF;
	int r;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	r = write_all(fd, data, len);
	return r < 0 ? r : RET_NERRNO(fchmod(fd, 0644));
}

/* /var/runtime in the spare's root (its own tmpfs, writable until sandbox_enter() makes it
 * read-only): the bootstrap and the addon, which node loads after pivot_root. */
static int install_runtime_files(const char *root)
{
	_cleanup_free_ char *dir = NULL;
	int r;

	if (asprintf(&dir, "%s%s", root, SANDBOX_RUNTIME_DIR) < 0)
		return -ENOMEM;
	if (mkdir(dir, 0755) < 0 || chmod(dir, 0755) < 0)
		return -errno;
	r = write_runtime_file(dir, BOOTSTRAP_NAME, bootstrap_data, bootstrap_len);
	if (r < 0)
		return r;
	return write_runtime_file(dir, ADDON_NAME, addon_data, addon_len);
}

static void nodejs_spare_main(const char *sandbox_dir, int sock, const int fds[3])
{
	struct sandbox_error e = { 0 };
	_cleanup_free_ char *task = NULL, *bootstrap = NULL;
	uint32_t uid;
	int hn[2];
	pid_t h;
	int r;

	if (!node_path)
		return; /* a C instance, whose load() reports it */

	if (fds) {
		/* No ready spare: this spare's GO is queued now, so node finds it when it is up. */
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
			die(2, "socketpair: %m");
		r = send_fds(sv[0], ZYGOTE_SPARE_GO, fds);
		if (r < 0)
			die(2, "sendmsg: %s", strerror(-r));
		(void)close(sv[0]);
		for (int i = 0; i < 3; i++)
			(void)close(fds[i]);
		sock = sv[1];
	}

	if (!sandbox_dir) {
		if (asprintf(&bootstrap, "%s/%s", runtime_dir, BOOTSTRAP_NAME) < 0)
			die(2, "out of memory");
		exec_node(sock, bootstrap, false, fds != NULL);
	}

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, hn) < 0)
		die(2, "socketpair: %m");
	h = fork();
	if (h < 0)
		die(2, "fork: %m");
	if (h == 0) {
		(void)close(hn[1]);
		helper_main(sock, hn[0]);
	}
	(void)close(sock);
	(void)close(hn[0]);

	struct sandbox_prepare_opts o = { .root_dir = sandbox_dir, .runtime = "nodejs" };
	if (sandbox_prepare(&o, &e) < 0)
		die(3, "sandbox: %s: %s%s%s", e.step ?: "prepare", strerror(-e.error),
		    e.message ? ": " : "", e.message ?: "");
	r = install_runtime_files(sandbox_dir);
	if (r < 0)
		die(3, "sandbox: runtime files: %s", strerror(-r));

	/* The spare's own root of /var/task, bound over itself: an empty, read-only directory
	 * until the helper mounts the code on top. */
	if (asprintf(&task, "%s/var/task", sandbox_dir) < 0)
		die(2, "out of memory");
	uid = SPARE_UID_BASE +
	      (((uint32_t)zygote_pid * 4096u + spare_seq % 4096u) % SPARE_UID_SPAN);
	struct sandbox_config c = {
		.code_dir = task,
		.uid = uid,
		.gid = uid,
		.tmp_mb = TMP_MB_SPARE,
		.nofile = NOFILE,
		.runtime = "nodejs",
		.network = "none",
	};
	if (sandbox_enter(&c, &e) < 0)
		die(3, "sandbox: %s: %s%s%s", e.step ?: "enter", strerror(-e.error),
		    e.message ? ": " : "", e.message ?: "");
	exec_node(hn[1], SANDBOX_RUNTIME_DIR "/" BOOTSTRAP_NAME, true, fds != NULL);
}

/* ---- without node ------------------------------------------------------------------------- */

static int nodejs_load(const struct inst_config *cfg, char **ret_error)
{
	(void)cfg;
	*ret_error = runtime_error_jsonf("Runtime.Unavailable", "Node.js is not installed on "
					 "this host (no /usr/bin/node)");
	return -ENOENT;
}

static int nodejs_invoke(const char *event, size_t event_len, const struct inst_invoke *inv,
			 char **ret_out, size_t *ret_len)
{
	(void)event, (void)event_len, (void)inv, (void)ret_out, (void)ret_len;
	return -EIO; /* never loaded */
}

static const struct runtime_ops nodejs_ops = {
	.name = "nodejs",
	.init_language = nodejs_init_language,
	.before_fork = nodejs_before_fork,
	.load = nodejs_load,
	.invoke = nodejs_invoke,
	.spare_main = nodejs_spare_main,
};

int main(int argc, char *argv[])
{
	return zygote_main(&nodejs_ops, argc, argv);
}
