/* SPDX-License-Identifier: MIT */
#include "sporectl-pack.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/fileio.h"

/* Deeper trees than this are refused (-ELOOP) rather than recursed into. */
#define PACK_MAX_DEPTH 128

DEFINE_TRIVIAL_CLEANUP_FUNC(struct archive *, archive_write_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct archive_entry *, archive_entry_free)


static bool has_suffix_ci(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a > b && strcasecmp(s + a - b, suffix) == 0;
}

int pack_classify(const char *path, enum pack_kind *ret_kind)
{
	const char *base = basename(path); /* GNU basename: no copy, no change */
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode)) {
		*ret_kind = PACK_DIRECTORY;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return _PACK_KIND_INVALID;
	/* The suffix must follow a name: "x.so", not ".so". */
	if (has_suffix_ci(base, ".zip"))
		*ret_kind = PACK_ARCHIVE_ZIP;
	else if (has_suffix_ci(base, ".tar.gz") || has_suffix_ci(base, ".tgz"))
		*ret_kind = PACK_ARCHIVE_TARGZ;
	else if (has_suffix_ci(base, ".so"))
		*ret_kind = PACK_SHARED_OBJECT;
	else
		return _PACK_KIND_INVALID;
	return 0;
}

static la_ssize_t on_write(struct archive *a, void *userdata, const void *data, size_t len)
{
	int r = buf_append(userdata, data, len);

	if (r < 0) {
		archive_set_error(a, -r, "out of memory");
		return -1;
	}
	return (la_ssize_t)len;
}

static int writer_open(struct buf *out, struct archive **ret, char **ret_error)
{
	_cleanup_(archive_write_freep) struct archive *a = NULL;

	a = archive_write_new();
	if (!a)
		return -ENOMEM;
	if (archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
	    archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    /* No mtime in the gzip header: same tree, same bytes. */
	    archive_write_set_filter_option(a, "gzip", "timestamp", NULL) < ARCHIVE_WARN ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open2(a, out, NULL, on_write, NULL, NULL) != ARCHIVE_OK)
		return error_set(ret_error, -EIO, "cannot create archive: %s",
				 archive_error_string(a) ?: "libarchive error");
	*ret = TAKE_PTR(a);
	return 0;
}

static int archive_fail(struct archive *a, const char *path, char **ret_error)
{
	int e = archive_errno(a);

	return error_set(ret_error, e > 0 ? -e : -EIO, "'%s': cannot add to archive: %s", path,
			 archive_error_string(a) ?: "libarchive error");
}

/* A header with the normalised metadata. */
static struct archive_entry *entry_new(const char *path, mode_t type, mode_t perm, int64_t size)
{
	struct archive_entry *e = archive_entry_new();

	if (!e)
		return NULL;
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, perm & 0777);
	archive_entry_set_size(e, size);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_mtime(e, 0, 0);
	return e;
}

static int add_regular(struct archive *a, int dir_fd, const char *name, const char *path,
		       char **ret_error)
{
	_cleanup_(archive_entry_freep) struct archive_entry *e = NULL;
	_cleanup_close_ int fd = -EBADF;
	char chunk[64 * 1024];
	struct stat st;
	int64_t left;

	fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return error_set(ret_error, -errno, "'%s': %m", path);
	if (fstat(fd, &st) < 0)
		return error_set(ret_error, -errno, "'%s': %m", path);
	if (!S_ISREG(st.st_mode))
		return error_set(ret_error, -EINVAL, "'%s': changed while packing", path);

	e = entry_new(path, AE_IFREG, st.st_mode, st.st_size);
	if (!e)
		return -ENOMEM;
	if (archive_write_header(a, e) < ARCHIVE_WARN)
		return archive_fail(a, path, ret_error);

	/* The header promised st_size bytes: a file that shrinks meanwhile is zero-padded by
	 * libarchive, one that grows is cut. */
	for (left = st.st_size; left > 0;) {
		ssize_t n = read(fd, chunk, (size_t)left < sizeof(chunk) ? (size_t)left : sizeof(chunk));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return error_set(ret_error, -errno, "'%s': %m", path);
		}
		if (n == 0)
			break;
		if (archive_write_data(a, chunk, (size_t)n) < 0)
			return archive_fail(a, path, ret_error);
		left -= n;
	}
	if (archive_write_finish_entry(a) < ARCHIVE_WARN)
		return archive_fail(a, path, ret_error);
	return 0;
}

static int add_symlink(struct archive *a, int dir_fd, const char *name, const char *path,
		       const struct stat *st, char **ret_error)
{
	_cleanup_(archive_entry_freep) struct archive_entry *e = NULL;
	_cleanup_free_ char *target = NULL;
	size_t size = st->st_size > 0 ? (size_t)st->st_size + 1 : 256;
	ssize_t n;

	/* Links in /proc-like filesystems report size 0; grow until the target fits. */
	for (;;) {
		free(target);
		target = malloc(size);
		if (!target)
			return -ENOMEM;
		n = readlinkat(dir_fd, name, target, size);
		if (n < 0)
			return error_set(ret_error, -errno, "'%s': %m", path);
		if ((size_t)n < size)
			break;
		if (size > 1024 * 1024)
			return error_set(ret_error, -ENAMETOOLONG, "'%s': link target too long", path);
		size *= 2;
	}
	target[n] = '\0';

	e = entry_new(path, AE_IFLNK, 0777, 0);
	if (!e)
		return -ENOMEM;
	archive_entry_set_symlink(e, target);
	if (archive_write_header(a, e) < ARCHIVE_WARN)
		return archive_fail(a, path, ret_error);
	return 0;
}

static int add_directory_entry(struct archive *a, const char *path, mode_t mode, char **ret_error)
{
	_cleanup_(archive_entry_freep) struct archive_entry *e = NULL;

	e = entry_new(path, AE_IFDIR, mode, 0);
	if (!e)
		return -ENOMEM;
	if (archive_write_header(a, e) < ARCHIVE_WARN)
		return archive_fail(a, path, ret_error);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool skipped_name(const char *name)
{
	return streq(name, ".") || streq(name, "..") || streq(name, "__pycache__") ||
	       streq(name, ".git");
}

/* Sorted names of the entries in dir_fd (dup'ed; dir_fd stays open), skipped names left out. */
static int list_dir(int dir_fd, const char *path, char ***ret, size_t *ret_n, char **ret_error)
{
	_cleanup_closedir_ DIR *d = NULL;
	_cleanup_strv_free_ char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int fd;

	fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return error_set(ret_error, -errno, "'%s': %m", path);
	d = fdopendir(fd);
	if (!d) {
		int r = -errno;
		safe_close(fd);
		return error_set(ret_error, r, "'%s': %m", path);
	}
	rewinddir(d);

	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno != 0)
				return error_set(ret_error, -errno, "'%s': %m", path);
			break;
		}
		if (skipped_name(de->d_name))
			continue;
		if (n + 1 >= cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **v = reallocarray(names, ncap, sizeof(char *));
			if (!v)
				return -ENOMEM;
			names = v;
			cap = ncap;
		}
		names[n] = strdup(de->d_name);
		if (!names[n])
			return -ENOMEM;
		names[++n] = NULL;
	}
	if (n > 0)
		qsort(names, n, sizeof(char *), cmp_names);
	else {
		names = calloc(1, sizeof(char *));
		if (!names)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(names);
	*ret_n = n;
	return 0;
}

/* prefix: the archive path of dir_fd ("" for the top). */
static int pack_tree(struct archive *a, int dir_fd, const char *prefix, unsigned depth,
		     char **ret_error)
{
	_cleanup_strv_free_ char **names = NULL;
	size_t n = 0;
	int r;

	if (depth > PACK_MAX_DEPTH)
		return error_set(ret_error, -ELOOP, "'%s': directories nested deeper than %d", prefix,
				 PACK_MAX_DEPTH);

	r = list_dir(dir_fd, *prefix ? prefix : ".", &names, &n, ret_error);
	if (r < 0)
		return r;

	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *path = NULL;
		struct stat st;

		if (*prefix)
			r = asprintf(&path, "%s/%s", prefix, names[i]);
		else
			r = asprintf(&path, "%s", names[i]);
		if (r < 0)
			return -ENOMEM;

		if (fstatat(dir_fd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			return error_set(ret_error, -errno, "'%s': %m", path);

		if (S_ISREG(st.st_mode))
			r = add_regular(a, dir_fd, names[i], path, ret_error);
		else if (S_ISLNK(st.st_mode))
			r = add_symlink(a, dir_fd, names[i], path, &st, ret_error);
		else if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub = -EBADF;

			sub = openat(dir_fd, names[i],
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				return error_set(ret_error, -errno, "'%s': %m", path);
			r = add_directory_entry(a, path, st.st_mode, ret_error);
			if (r >= 0)
				r = pack_tree(a, sub, path, depth + 1, ret_error);
		} else
			r = 0; /* FIFOs, sockets, devices: not part of a package */
		if (r < 0)
			return r;
	}
	return 0;
}

static int writer_close(struct archive *a, char **ret_error)
{
	if (archive_write_close(a) != ARCHIVE_OK)
		return error_set(ret_error, -EIO, "cannot finish archive: %s",
				 archive_error_string(a) ?: "libarchive error");
	return 0;
}

int pack_directory(int dir_fd, struct buf *ret, char **ret_error)
{
	_cleanup_(archive_write_freep) struct archive *a = NULL;
	_cleanup_(buf_done) struct buf out = BUF_INIT;
	int r;

	r = writer_open(&out, &a, ret_error);
	if (r < 0)
		return r;
	r = pack_tree(a, dir_fd, "", 0, ret_error);
	if (r < 0)
		return r;
	r = writer_close(a, ret_error);
	if (r < 0)
		return r;
	r = buf_append(ret, out.data, out.len);
	if (r < 0)
		return r;
	return 0;
}

int pack_single_file(const char *path, const char *name, struct buf *ret, char **ret_error)
{
	_cleanup_(archive_write_freep) struct archive *a = NULL;
	_cleanup_(buf_done) struct buf out = BUF_INIT;
	int r;

	if (!name || !*name || strchr(name, '/'))
		return error_set(ret_error, -EINVAL, "'%s': invalid entry name", name ?: "");

	r = writer_open(&out, &a, ret_error);
	if (r < 0)
		return r;
	/* AT_FDCWD plus the full path: the link check (O_NOFOLLOW) then only concerns the last
	 * component, and pack_classify() already followed it with stat(). Use the real file. */
	{
		_cleanup_free_ char *resolved = realpath(path, NULL);

		if (!resolved)
			return error_set(ret_error, -errno, "'%s': %m", path);
		r = add_regular(a, AT_FDCWD, resolved, name, ret_error);
		if (r < 0)
			return r;
	}
	r = writer_close(a, ret_error);
	if (r < 0)
		return r;
	return buf_append(ret, out.data, out.len);
}

int pack_read_archive(const char *path, enum pack_kind kind, struct buf *ret, char **ret_error)
{
	_cleanup_free_ char *data = NULL;
	size_t len;
	bool ok;
	int r;

	r = read_file(AT_FDCWD, path, PACK_ARCHIVE_MAX, &data, &len);
	if (r == -EFBIG)
		return error_set(ret_error, r, "'%s': larger than %u MiB", path,
				 PACK_ARCHIVE_MAX / (1024 * 1024));
	if (r < 0)
		return error_set(ret_error, r, "'%s': %s", path, strerror(-r));

	switch (kind) {
	case PACK_ARCHIVE_ZIP:
		ok = len >= 4 && (memcmp(data, "PK\3\4", 4) == 0 || memcmp(data, "PK\5\6", 4) == 0);
		if (!ok)
			return error_set(ret_error, -EMEDIUMTYPE, "'%s': not a zip archive", path);
		break;
	case PACK_ARCHIVE_TARGZ:
		ok = len >= 2 && (unsigned char)data[0] == 0x1f && (unsigned char)data[1] == 0x8b;
		if (!ok)
			return error_set(ret_error, -EMEDIUMTYPE, "'%s': not a gzip-compressed tar archive",
					 path);
		break;
	default:
		return -EINVAL;
	}
	return buf_append(ret, data, len);
}
