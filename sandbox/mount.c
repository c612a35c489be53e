/* SPDX-License-Identifier: MIT */
/* The instance's root: a tmpfs on the host's root_dir, seen only in the spare's own mount
 * namespace, holding
 *
 *   /usr                 the host's, bound read-only (with /bin /sbin /lib /lib64 as on the host:
 *                        symlinks into usr/ on Debian 12, read-only binds elsewhere)
 *   /etc                 a handful of files written here (passwd and group for the instance's
 *                        ids, hosts, hostname, nsswitch.conf, ...) and /etc/ssl/certs bound
 *   /dev                 null zero full random urandom, and the fd/std* links into /proc
 *   /proc                a procfs of the instance's own pid namespace
 *   /tmp                 phase 2: a tmpfs of tmp_mb
 *   /var/task            phase 2: the function's code, bound read-only
 *
 * Phase 1 builds all but /tmp and /var/task while the host's paths are still reachable; phase
 * 2 adds those two, pivot_roots, drops the host's tree and makes the root read-only. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "sandbox-internal.h"
#include "util/cleanup.h"

#define ROOT_TMPFS_OPTS "mode=0755,size=4m,nr_inodes=1024"
#define COPY_MAX ((size_t)4 << 20)
#define RO_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV)

/* root + "/" + rel into buf (PATH_MAX). */
static int rpath(char *buf, const char *root, const char *rel)
{
	int n = snprintf(buf, PATH_MAX, "%s/%s", root, rel);

	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static int mkdir_mode(const char *root, const char *rel, mode_t mode)
{
	char p[PATH_MAX];
	int r;

	r = rpath(p, root, rel);
	if (r < 0)
		return r;
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return -errno;
	/* The umask must not decide who may write /tmp. */
	return RET_NERRNO(chmod(p, mode));
}

/* Makes the mount at (or, recursive, below) path read-only, nosuid, nodev. mount_setattr() with
 * AT_RECURSIVE: Linux 5.12; before it only the top mount of a recursive bind becomes
 * read-only (drop the fallback with 5.12). */
static int make_readonly(const char *path, bool recursive)
{
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
					       MOUNT_ATTR_NODEV };

	if (mount_setattr(AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &attr, sizeof(attr)) == 0)
		return 0;
	if (errno != ENOSYS)
		return -errno;
	return RET_NERRNO(mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | RO_FLAGS, NULL));
}

static int bind_readonly(const char *src, const char *dst, bool recursive)
{
	if (mount(src, dst, NULL, MS_BIND | (recursive ? MS_REC : 0), NULL) < 0)
		return -errno;
	return make_readonly(dst, recursive);
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Creates root/rel (it must not exist) with data, mode 0644. */
static int write_new(const char *root, const char *rel, const void *data, size_t len)
{
	_cleanup_close_ int fd = -EBADF;
	char p[PATH_MAX];
	int r;

	r = rpath(p, root, rel);
	if (r < 0)
		return r;
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	r = write_all(fd, data, len);
	if (r < 0)
		return r;
	return RET_NERRNO(fchmod(fd, 0644));
}

static int write_newf(const char *root, const char *rel, const char *fmt, ...) _printf_(3, 4);
static int write_newf(const char *root, const char *rel, const char *fmt, ...)
{
	_cleanup_free_ char *s = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		s = NULL;
		return -ENOMEM;
	}
	return write_new(root, rel, s, (size_t)n);
}

/* Copies the host's regular file src to root/rel; a missing src is not an error. */
static int copy_host_file(const char *src, const char *root, const char *rel)
{
	_cleanup_close_ int in = -EBADF;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t done = 0;

	in = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (in < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(in, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return 0;
	if ((size_t)st.st_size > COPY_MAX)
		return -EFBIG;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (done < (size_t)st.st_size) {
		ssize_t n = read(in, buf + done, (size_t)st.st_size - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break; /* shrank under us: what we have */
		done += (size_t)n;
	}
	return write_new(root, rel, buf, done);
}

/* ---- phase 1 ------------------------------------------------------------------------------- */

/* Nothing we mount may propagate back to the host, nor the host's later mounts into us. */
int mount_private(struct sandbox_ctx *ctx)
{
	(void)ctx;
	return RET_NERRNO(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
}

/* No MS_NODEV: /dev's nodes live in this tmpfs (mknod needs CAP_MKNOD, gone in phase 2, and the
 * root is read-only by then). */
int mount_root_tmpfs(struct sandbox_ctx *ctx)
{
	struct stat st;

	if (stat(ctx->root, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode)) {
		ctx->message = "root_dir is not a directory";
		return -ENOTDIR;
	}
	return RET_NERRNO(mount("tmpfs", ctx->root, "tmpfs", MS_NOSUID, ROOT_TMPFS_OPTS));
}

/* /usr bound read-only; /bin /sbin /lib /lib64 copied as the host has them: a symlink (Debian 12:
 * into usr/) stays a symlink, a directory is bound read-only, a missing one stays missing. */
int mount_system(struct sandbox_ctx *ctx)
{
	static const char *const tops[] = { "bin", "sbin", "lib", "lib64" };
	char p[PATH_MAX];
	int r;

	r = mkdir_mode(ctx->root, "usr", 0755);
	if (r < 0)
		return r;
	r = rpath(p, ctx->root, "usr");
	if (r < 0)
		return r;
	r = bind_readonly("/usr", p, true);
	if (r < 0)
		return r;

	for (size_t i = 0; i < ELEMENTSOF(tops); i++) {
		char host[32], target[PATH_MAX];
		struct stat st;
		ssize_t n;

		(void)snprintf(host, sizeof(host), "/%s", tops[i]);
		if (lstat(host, &st) < 0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		r = rpath(p, ctx->root, tops[i]);
		if (r < 0)
			return r;
		if (S_ISLNK(st.st_mode)) {
			n = readlink(host, target, sizeof(target) - 1);
			if (n < 0)
				return -errno;
			target[n] = 0;
			if (symlink(target, p) < 0)
				return -errno;
		} else if (S_ISDIR(st.st_mode)) {
			r = mkdir_mode(ctx->root, tops[i], 0755);
			if (r < 0)
				return r;
			r = bind_readonly(host, p, true);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* A minimal /etc: what libc and an interpreter read (name service, time zone, the loader's
 * cache, CA certificates), nothing else of the host's (no shadow, no ld.so.preload, no
 * machine-id). passwd and group come in phase 2, when the ids are known. */
int mount_etc(struct sandbox_ctx *ctx)
{
	static const char *const copies[] = { "resolv.conf", "ld.so.cache", "services",
					      "protocols" };
	static const char hosts[] = "127.0.0.1\tlocalhost spore\n"
				    "::1\tlocalhost ip6-localhost ip6-loopback spore\n";
	static const char nsswitch[] = "passwd: files\n"
				       "group: files\n"
				       "shadow: files\n"
				       "hosts: files dns\n"
				       "networks: files\n"
				       "protocols: files\n"
				       "services: files\n";
	char p[PATH_MAX], target[PATH_MAX];
	struct stat st;
	ssize_t n;
	int r;

	r = mkdir_mode(ctx->root, "etc", 0755);
	if (r < 0)
		return r;
	r = write_new(ctx->root, "etc/hosts", hosts, sizeof(hosts) - 1);
	if (r < 0)
		return r;
	r = write_new(ctx->root, "etc/nsswitch.conf", nsswitch, sizeof(nsswitch) - 1);
	if (r < 0)
		return r;
	r = write_newf(ctx->root, "etc/hostname", "spore\n");
	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(copies); i++) {
		char src[64], dst[64];

		(void)snprintf(src, sizeof(src), "/etc/%s", copies[i]);
		(void)snprintf(dst, sizeof(dst), "etc/%s", copies[i]);
		r = copy_host_file(src, ctx->root, dst);
		if (r < 0)
			return r;
	}

	/* localtime: Debian's is a symlink into /usr/share/zoneinfo, which we have. */
	n = readlink("/etc/localtime", target, sizeof(target) - 1);
	if (n > 0) {
		target[n] = 0;
		r = rpath(p, ctx->root, "etc/localtime");
		if (r < 0)
			return r;
		if (symlink(target, p) < 0)
			return -errno;
	} else {
		r = copy_host_file("/etc/localtime", ctx->root, "etc/localtime");
		if (r < 0)
			return r;
	}

	if (stat("/etc/ssl/certs", &st) == 0 && S_ISDIR(st.st_mode)) {
		r = mkdir_mode(ctx->root, "etc/ssl", 0755);
		if (r < 0)
			return r;
		r = mkdir_mode(ctx->root, "etc/ssl/certs", 0755);
		if (r < 0)
			return r;
		r = rpath(p, ctx->root, "etc/ssl/certs");
		if (r < 0)
			return r;
		r = bind_readonly("/etc/ssl/certs", p, false);
		if (r < 0)
			return r;
		r = copy_host_file("/etc/ssl/openssl.cnf", ctx->root, "etc/ssl/openssl.cnf");
		if (r < 0)
			return r;
	}
	return 0;
}

/* Device nodes are made with mknod (cheaper than five binds, and no more mounts to copy or
 * tear down); where mknod is refused (a devices cgroup), the host's node is bound instead. */
int mount_dev(struct sandbox_ctx *ctx)
{
	static const char *const nodes[] = { "null", "zero", "full", "random", "urandom" };
	static const struct {
		const char *name, *target;
	} links[] = {
		{ "fd", "/proc/self/fd" },
		{ "stdin", "/proc/self/fd/0" },
		{ "stdout", "/proc/self/fd/1" },
		{ "stderr", "/proc/self/fd/2" },
	};
	char p[PATH_MAX];
	int r;

	r = mkdir_mode(ctx->root, "dev", 0755);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
		char host[32], rel[32];
		struct stat st;

		(void)snprintf(host, sizeof(host), "/dev/%s", nodes[i]);
		(void)snprintf(rel, sizeof(rel), "dev/%s", nodes[i]);
		if (stat(host, &st) < 0)
			return -errno;
		if (!S_ISCHR(st.st_mode))
			return -ENODEV;
		r = rpath(p, ctx->root, rel);
		if (r < 0)
			return r;
		if (mknod(p, S_IFCHR | 0666, st.st_rdev) == 0) {
			if (chmod(p, 0666) < 0)
				return -errno;
			continue;
		}
		if (errno != EPERM)
			return -errno;
		r = write_new(ctx->root, rel, "", 0);
		if (r < 0)
			return r;
		if (mount(host, p, NULL, MS_BIND, NULL) < 0)
			return -errno;
	}
	for (size_t i = 0; i < ELEMENTSOF(links); i++) {
		char rel[32];

		(void)snprintf(rel, sizeof(rel), "dev/%s", links[i].name);
		r = rpath(p, ctx->root, rel);
		if (r < 0)
			return r;
		if (symlink(links[i].target, p) < 0)
			return -errno;
	}
	return 0;
}

/* The empty mount points of phase 2, made now so that the root can be read-only then. */
int mount_mountpoints(struct sandbox_ctx *ctx)
{
	int r;

	r = mkdir_mode(ctx->root, "tmp", 01777);
	if (r < 0)
		return r;
	r = mkdir_mode(ctx->root, "var", 0755);
	if (r < 0)
		return r;
	return mkdir_mode(ctx->root, "var/task", 0755);
}

/* Our pid namespace is already the instance's (we are its PID 1), so its procfs can be
 * mounted now, off the cold path; /proc/net follows the reader's network namespace. */
int mount_proc(struct sandbox_ctx *ctx)
{
	char p[PATH_MAX];
	int r;

	r = mkdir_mode(ctx->root, "proc", 0555);
	if (r < 0)
		return r;
	r = rpath(p, ctx->root, "proc");
	if (r < 0)
		return r;
	return RET_NERRNO(mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
}

/* ---- phase 2 ------------------------------------------------------------------------------- */

int mount_code(struct sandbox_ctx *ctx)
{
	const char *code = ctx->config->code_dir;
	char p[PATH_MAX];
	struct stat st;
	int r;

	if (ctx->pivoted) {
		/* The host's tree is gone: the code comes as a detached mount, made by the caller
		 * in the host's namespace (a bind from there would be refused). Not recursive,
		 * as below. */
		int fd = ctx->config->code_fd;

		if (fd < 0) {
			ctx->message = "the spare pivoted ahead of demand: the code must come as a "
				       "mount (code_fd), not a path";
			return -EINVAL;
		}
		r = RET_NERRNO(move_mount(fd, "", AT_FDCWD, "/var/task", MOVE_MOUNT_F_EMPTY_PATH));
		(void)close(fd);
		if (r < 0)
			return r;
		return make_readonly("/var/task", false);
	}
	if (!code || code[0] != '/') {
		ctx->message = "code_dir must be an absolute path";
		return -EINVAL;
	}
	if (stat(code, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode)) {
		ctx->message = "code_dir is not a directory";
		return -ENOTDIR;
	}
	r = rpath(p, ctx->root, "var/task");
	if (r < 0)
		return r;
	/* Not recursive: nothing mounted below the code directory comes along. */
	return bind_readonly(code, p, false);
}

int mount_tmp(struct sandbox_ctx *ctx)
{
	char p[PATH_MAX], opts[96];
	uint32_t inodes;
	int r;

	r = rpath(p, ctx->root, "tmp");
	if (r < 0)
		return r;
	/* Empty files and directories cost kernel memory but no blocks: bound them too, at one
	 * inode per 4 KiB of size (tmpfs's default would be half of the host's RAM pages). */
	inodes = ctx->tmp_mb > UINT32_MAX / 256 ? UINT32_MAX : ctx->tmp_mb * 256;
	if (inodes < 1024)
		inodes = 1024;
	(void)snprintf(opts, sizeof(opts), "mode=1777,size=%" PRIu32 "m,nr_inodes=%" PRIu32,
		       ctx->tmp_mb, inodes);
	return RET_NERRNO(mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, opts));
}

int mount_passwd(struct sandbox_ctx *ctx)
{
	const struct sandbox_config *c = ctx->config;
	int r;

	r = write_newf(ctx->root, "etc/passwd",
		       "root:x:0:0:root:/root:/usr/sbin/nologin\n"
		       "spore:x:%u:%u:spore function:/tmp:/usr/sbin/nologin\n"
		       "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		       (unsigned)c->uid, (unsigned)c->gid);
	if (r < 0)
		return r;
	return write_newf(ctx->root, "etc/group",
			  "root:x:0:\n"
			  "spore:x:%u:\n"
			  "nogroup:x:65534:\n",
			  (unsigned)c->gid);
}

/* pivot_root(".", "."): the old root ends up stacked on the new one, and the lazy umount takes
 * it, and with it every host mount, away. */
int mount_pivot(struct sandbox_ctx *ctx)
{
	if (ctx->pivoted)
		return 0; /* done in phase 1 */
	if (chdir(ctx->root) < 0)
		return -errno;
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return -errno;
	if (umount2(".", MNT_DETACH) < 0)
		return -errno;
	return RET_NERRNO(chdir("/"));
}

int mount_root_readonly(struct sandbox_ctx *ctx)
{
	(void)ctx;
	return RET_NERRNO(mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, NULL));
}

int mount_chdir_task(struct sandbox_ctx *ctx)
{
	(void)ctx;
	return RET_NERRNO(chdir("/var/task"));
}
