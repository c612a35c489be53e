/* SPDX-License-Identifier: MIT */
#include "package.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/fileio.h"

#define DEFAULT_MAX_ENTRIES 10000
#define DEFAULT_MAX_BYTES (256ULL << 20)
#define COPY_CHUNK (64 * 1024)

DEFINE_TRIVIAL_CLEANUP_FUNC(struct archive *, archive_read_free);

struct extract {
	int dir_fd;
	uint32_t max_entries;
	uint64_t max_bytes;
	uint32_t n_entries;
	uint64_t n_bytes;
	/* Directories we created (normalised paths), fsync'ed once everything is in place. */
	char **dirs;
	size_t n_dirs, cap_dirs;
	/* The entry being handled, already made safe for a message. */
	char name[220];
	char **ret_error;
	char *buf; /* COPY_CHUNK bytes */
};

static void extract_done(struct extract *ex)
{
	for (size_t i = 0; i < ex->n_dirs; i++)
		free(ex->dirs[i]);
	free(ex->dirs);
	free(ex->buf);
}

/* Copies a name from the archive for a message: at most 200 bytes, non-printable bytes and
 * quotes replaced, so the message stays one line whatever the archive holds. */
static void safe_name(const char *s, char *out, size_t outsz)
{
	size_t i = 0, max = outsz - 4;
	for (; s[i] && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = c < 0x20 || c >= 0x7f || c == '\'' ? '?' : (char)c;
	}
	if (s[i]) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = 0;
}

/* libarchive's message for a, made fit for a one-line error: trailing whitespace (it ends some
 * with a newline) dropped, then cleaned as safe_name() cleans names. */
static const char *archive_msg(struct archive *a, char out[208])
{
	const char *s = archive_error_string(a);
	char tmp[208];
	if (!s)
		return "unknown error";
	size_t n = strnlen(s, sizeof(tmp) - 1);
	memcpy(tmp, s, n);
	while (n > 0 && (unsigned char)tmp[n - 1] <= ' ')
		n--;
	tmp[n] = 0;
	safe_name(tmp, out, 208);
	return out;
}

_printf_(2, 3) static int fail(struct extract *ex, const char *fmt, ...)
{
	if (!ex->ret_error)
		return -EINVAL;
	/* A later failure replaces an earlier message. */
	char *prev = *ex->ret_error;
	*ex->ret_error = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = error_setv(ex->ret_error, -EINVAL, fmt, ap);
	va_end(ap);
	if (r == -ENOMEM)
		*ex->ret_error = prev;
	else
		free(prev);
	return r;
}

/* A failed syscall while writing an entry: errors that come from what the archive holds
 * (a name used twice, a path through a file or symlink, a name too long) refuse the package;
 * resource errors (ENOSPC, EDQUOT, EIO, ENOMEM, ...) are returned unchanged. */
static int sys_fail(struct extract *ex, int r, const char *what)
{
	switch (-r) {
	case EEXIST:
		return fail(ex, "entry '%s': %s: already exists in the package", ex->name, what);
	case ENOTDIR:
	case ELOOP:
		return fail(ex, "entry '%s': %s: a path component is not a directory", ex->name,
			    what);
	case ENAMETOOLONG:
		return fail(ex, "entry '%s': %s: name too long", ex->name, what);
	case EISDIR:
	case EINVAL:
	case EMLINK:
	case EPERM:
		return fail(ex, "entry '%s': %s: %s", ex->name, what, strerror(-r));
	default:
		return r;
	}
}

/* Normalises an archive path into "a/b/c": drops empty and "." components, refuses absolute
 * paths and any "..". The result is "" for the package root itself. */
static int normalize(struct extract *ex, const char *path, const char *what, char **ret)
{
	if (path[0] == '/')
		return fail(ex, "entry '%s': %s is absolute", ex->name, what);
	if (strlen(path) >= PATH_MAX)
		return fail(ex, "entry '%s': %s is too long", ex->name, what);

	_cleanup_free_ char *out = malloc(strlen(path) + 1);
	if (!out)
		return -ENOMEM;
	size_t n = 0;
	for (const char *p = path; *p;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return fail(ex, "entry '%s': %s leaves the package", ex->name, what);
		if (len > 0 && !(len == 1 && p[0] == '.')) {
			if (n > 0)
				out[n++] = '/';
			memcpy(out + n, p, len);
			n += len;
		}
		p += len;
		if (*p == '/')
			p++;
	}
	out[n] = 0;
	*ret = TAKE_PTR(out);
	return 0;
}

/* Splits a normalised non-root path in place: returns the last component and sets *ret_parent
 * to the parent ("" for the root). */
static const char *split_last(char *path, const char **ret_parent)
{
	char *slash = strrchr(path, '/');
	if (!slash) {
		*ret_parent = "";
		return path;
	}
	*slash = 0;
	*ret_parent = path;
	return slash + 1;
}

static int record_dir(struct extract *ex, const char *path, size_t len)
{
	if (ex->n_dirs == ex->cap_dirs) {
		size_t cap = ex->cap_dirs ? ex->cap_dirs * 2 : 16;
		char **n = realloc(ex->dirs, cap * sizeof(char *));
		if (!n)
			return -ENOMEM;
		ex->dirs = n;
		ex->cap_dirs = cap;
	}
	char *p = strndup(path, len);
	if (!p)
		return -ENOMEM;
	ex->dirs[ex->n_dirs++] = p;
	return 0;
}

/* Creates the directory name below fd (or finds one we made before) and opens it, never
 * following a symlink. Records directories it creates. */
static int mkdir_open(struct extract *ex, int fd, const char *name, const char *full,
		      size_t full_len, int *ret_fd)
{
	bool created = false;
	/* Open first: most parents exist already, and a failed mkdirat() costs a directory lock. */
	_cleanup_close_ int dfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 && errno == ENOENT) {
		if (mkdirat(fd, name, 0755) >= 0)
			created = true;
		else if (errno != EEXIST)
			return sys_fail(ex, -errno, "creating a directory");
		dfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (dfd < 0)
		return sys_fail(ex, -errno, "opening a directory");
	if (created) {
		/* The exact mode whatever the umask. */
		if (fchmod(dfd, 0755) < 0)
			return -errno;
		int r = record_dir(ex, full, full_len);
		if (r < 0)
			return r;
	}
	*ret_fd = TAKE_FD(dfd);
	return 0;
}

/* Opens the directory dir (normalised, "" = root) below ex->dir_fd one component at a time
 * with O_NOFOLLOW, so neither a symlink nor a file in the package can redirect what follows.
 * With create, missing directories are made (0755). */
static int open_dir(struct extract *ex, const char *dir, bool create, int *ret_fd)
{
	_cleanup_close_ int fd = openat(ex->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;

	_cleanup_free_ char *copy = strdup(dir);
	if (!copy)
		return -ENOMEM;
	for (char *p = copy; *p;) {
		char *slash = strchr(p, '/');
		if (slash)
			*slash = 0;
		int nfd = -EBADF;
		int r;
		if (create)
			r = mkdir_open(ex, fd, p, dir, (size_t)(p - copy) + strlen(p), &nfd);
		else {
			nfd = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			r = nfd < 0 ? sys_fail(ex, -errno, "opening a directory") : 0;
		}
		if (r < 0)
			return r;
		safe_close(fd);
		fd = nfd;
		if (!slash)
			break;
		p = slash + 1;
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int extract_dir(struct extract *ex, char *path)
{
	if (!*path)
		return 0; /* "./": the package root, which exists */
	_cleanup_close_ int fd = -EBADF;
	return open_dir(ex, path, true, &fd);
}

static int extract_file(struct extract *ex, struct archive *a, struct archive_entry *e, char *path)
{
	if (!*path)
		return fail(ex, "entry '%s': a file cannot be the package root", ex->name);

	/* Cheap early refusal; the real count is what is written below. */
	if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0 &&
	    (uint64_t)archive_entry_size(e) > ex->max_bytes - ex->n_bytes)
		return fail(ex, "entry '%s': package unpacks to more than %" PRIu64 " bytes",
			    ex->name, ex->max_bytes);

	mode_t mode = (archive_entry_perm(e) & S_IXUSR) ? 0755 : 0644;
	const char *parent;
	const char *base = split_last(path, &parent);
	_cleanup_close_ int pfd = -EBADF;
	int r = open_dir(ex, parent, true, &pfd);
	if (r < 0)
		return r;
	_cleanup_close_ int fd =
		openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return sys_fail(ex, -errno, "creating the file");
	if (fchmod(fd, mode) < 0)
		return -errno;

	for (;;) {
		la_ssize_t n = archive_read_data(a, ex->buf, COPY_CHUNK);
		if (n == 0)
			break;
		if (n < 0) {
			if (archive_errno(a) == ENOMEM)
				return -ENOMEM;
			char msg[208];
			return fail(ex, "entry '%s': cannot read its data: %s", ex->name,
				    archive_msg(a, msg));
		}
		if ((uint64_t)n > ex->max_bytes - ex->n_bytes)
			return fail(ex,
				    "entry '%s': package unpacks to more than %" PRIu64 " bytes",
				    ex->name, ex->max_bytes);
		ex->n_bytes += (uint64_t)n;
		r = write_all(fd, ex->buf, (size_t)n);
		if (r < 0)
			return r;
	}
	return RET_NERRNO(fsync(fd));
}

/* A symlink may only point inside the package. The target is checked lexically from the link's
 * directory, which is a real directory (open_dir() never follows links). Every ".." must come
 * before the first name: "../lib/x" is fine, "a/../../x" is refused, because "a" could itself be
 * a symlink (now or later in the archive) and then ".." would climb from wherever "a" points,
 * not from where the lexical walk assumes. With leading ".." only, each link resolves inside the
 * package by itself, so chains of links do too. */
static int check_symlink_target(struct extract *ex, const char *parent, const char *target)
{
	if (!*target)
		return fail(ex, "entry '%s': symlink target is empty", ex->name);
	if (target[0] == '/')
		return fail(ex, "entry '%s': symlink target is absolute", ex->name);
	if (strlen(target) >= PATH_MAX)
		return fail(ex, "entry '%s': symlink target is too long", ex->name);

	long depth = 0;
	if (*parent) {
		depth = 1;
		for (const char *p = parent; *p; p++)
			depth += *p == '/';
	}

	bool seen_name = false;
	for (const char *p = target; *p;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (seen_name)
				return fail(ex,
					    "entry '%s': symlink target has '..' after a name "
					    "(only leading '..' are allowed)",
					    ex->name);
			if (--depth < 0)
				return fail(ex, "entry '%s': symlink target leaves the package",
					    ex->name);
		} else if (len > 0 && !(len == 1 && p[0] == '.'))
			seen_name = true;
		p += len;
		if (*p == '/')
			p++;
	}
	return 0;
}

static int extract_symlink(struct extract *ex, struct archive_entry *e, char *path)
{
	if (!*path)
		return fail(ex, "entry '%s': a symlink cannot be the package root", ex->name);
	const char *target = archive_entry_symlink(e) ?: archive_entry_symlink_utf8(e);
	if (!target)
		return fail(ex, "entry '%s': symlink target cannot be read", ex->name);

	const char *parent;
	const char *base = split_last(path, &parent);
	int r = check_symlink_target(ex, parent, target);
	if (r < 0)
		return r;

	_cleanup_close_ int pfd = -EBADF;
	r = open_dir(ex, parent, true, &pfd);
	if (r < 0)
		return r;
	if (symlinkat(target, pfd, base) < 0)
		return sys_fail(ex, -errno, "creating the symlink");
	return 0;
}

static int extract_hardlink(struct extract *ex, const char *link, char *path)
{
	if (!*path)
		return fail(ex, "entry '%s': a hard link cannot be the package root", ex->name);

	_cleanup_free_ char *target = NULL;
	int r = normalize(ex, link, "hard link target", &target);
	if (r < 0)
		return r;
	if (!*target)
		return fail(ex, "entry '%s': hard link to the package root", ex->name);

	/* dir_fd started empty, so whatever regular file is there was extracted before. */
	const char *tparent;
	const char *tbase = split_last(target, &tparent);
	_cleanup_close_ int tfd = -EBADF;
	r = open_dir(ex, tparent, false, &tfd);
	struct stat st;
	if (r >= 0 && fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	if (r == -ENOMEM)
		return r;
	if (r < 0 || !S_ISREG(st.st_mode))
		return fail(ex, "entry '%s': hard link target is not a file extracted before it",
			    ex->name);

	const char *parent;
	const char *base = split_last(path, &parent);
	_cleanup_close_ int pfd = -EBADF;
	r = open_dir(ex, parent, true, &pfd);
	if (r < 0)
		return r;
	/* flags 0: never follow a symlink at the old path. */
	if (linkat(tfd, tbase, pfd, base, 0) < 0)
		return sys_fail(ex, -errno, "creating the hard link");
	return 0;
}

static int extract_entry(struct extract *ex, struct archive *a, struct archive_entry *e)
{
	const char *raw = archive_entry_pathname(e) ?: archive_entry_pathname_utf8(e);
	if (!raw)
		return fail(ex, "entry #%" PRIu32 ": its name cannot be read", ex->n_entries);
	safe_name(raw, ex->name, sizeof(ex->name));

	if (ex->n_entries >= ex->max_entries)
		return fail(ex, "entry '%s': package has more than %" PRIu32 " entries", ex->name,
			    ex->max_entries);
	ex->n_entries++;

	_cleanup_free_ char *path = NULL;
	int r = normalize(ex, raw, "path", &path);
	if (r < 0)
		return r;

	const char *link = archive_entry_hardlink(e) ?: archive_entry_hardlink_utf8(e);
	if (link)
		return extract_hardlink(ex, link, path);

	switch (archive_entry_filetype(e)) {
	case AE_IFDIR:
		return extract_dir(ex, path);
	case AE_IFREG:
		return extract_file(ex, a, e, path);
	case AE_IFLNK:
		return extract_symlink(ex, e, path);
	case AE_IFCHR:
	case AE_IFBLK:
		return fail(ex, "entry '%s': device files are not allowed", ex->name);
	case AE_IFIFO:
		return fail(ex, "entry '%s': FIFOs are not allowed", ex->name);
	case AE_IFSOCK:
		return fail(ex, "entry '%s': sockets are not allowed", ex->name);
	default:
		return fail(ex, "entry '%s': unsupported entry type", ex->name);
	}
}

static int sync_all(struct extract *ex)
{
	/* Deepest last is not needed: each fsync makes that directory's entries durable. */
	for (size_t i = 0; i < ex->n_dirs; i++) {
		_cleanup_close_ int fd = -EBADF;
		int r = open_dir(ex, ex->dirs[i], false, &fd);
		if (r < 0)
			return r;
		if (fsync(fd) < 0)
			return -errno;
	}
	return RET_NERRNO(fsync(ex->dir_fd));
}

int package_extract(int dir_fd, const void *data, size_t len, const struct package_limits *lim,
		    char **ret_error)
{
	_cleanup_(extract_done) struct extract ex = {
		.dir_fd = dir_fd,
		.max_entries = lim ? lim->max_entries : DEFAULT_MAX_ENTRIES,
		.max_bytes = lim ? lim->max_bytes : DEFAULT_MAX_BYTES,
	};
	/* Messages go to a local first so *ret_error is written only on failure. */
	_cleanup_free_ char *error = NULL;
	ex.ret_error = &error;
	int r;

	ex.buf = malloc(COPY_CHUNK);
	if (!ex.buf)
		return -ENOMEM;

	_cleanup_(archive_read_freep) struct archive *a = archive_read_new();
	if (!a)
		return -ENOMEM;
	if (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
	    archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    archive_read_support_format_zip(a) != ARCHIVE_OK)
		return -ENOMEM;

	if (len == 0) {
		r = fail(&ex, "package: not a zip or tar(.gz) archive (no data)");
		goto finish;
	}
	if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
		char msg[208];
		r = fail(&ex, "package: not a zip or tar(.gz) archive (%s)", archive_msg(a, msg));
		goto finish;
	}

	for (;;) {
		struct archive_entry *e;
		int k = archive_read_next_header(a, &e);
		if (k == ARCHIVE_EOF)
			break;
		if (k != ARCHIVE_OK && k != ARCHIVE_WARN) {
			if (archive_errno(a) == ENOMEM) {
				r = -ENOMEM;
				goto finish;
			}
			char msg[208];
			const char *why = archive_msg(a, msg);
			if (ex.n_entries == 0)
				r = fail(&ex, "package: not a zip or tar(.gz) archive (%s)", why);
			else
				r = fail(&ex, "package: archive is corrupt after entry '%s' (%s)",
					 ex.name, why);
			goto finish;
		}
		r = extract_entry(&ex, a, e);
		if (r < 0)
			goto finish;
	}

	/* An archive without entries is nearly always a packing mistake (the wrong directory),
	 * and a function without code cannot run: refuse it rather than deploy nothing. */
	if (ex.n_entries == 0) {
		r = fail(&ex, "package: archive has no entries");
		goto finish;
	}

	r = sync_all(&ex);

finish:
	if (r == -EINVAL && !error)
		r = fail(&ex, "package: invalid archive");
	if (r == -EINVAL && ret_error)
		*ret_error = TAKE_PTR(error);
	return r;
}
