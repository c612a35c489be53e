/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>

#include "package.h"
#include "util/cleanup.h"
#include "util/fileio.h"

/* ---- building archives in memory with libarchive's writer ---- */

enum fmt { TGZ, ZIP, TAR };

enum kind { F, D, L, H, FIFO, CHR };

struct ent {
	const char *path;
	enum kind kind;
	const char *data; /* file content, symlink or hard link target */
	mode_t perm;
	size_t fill; /* for F: this many 'x' bytes instead of data */
};

#define ARCHIVE_BUF (8u << 20)

static void build(enum fmt fmt, const struct ent *ents, size_t n, void **ret, size_t *ret_len)
{
	struct archive *a = archive_write_new();
	assert_non_null(a);
	if (fmt == ZIP)
		assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
	else {
		assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
		if (fmt == TGZ)
			assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	}
	char *buf = malloc(ARCHIVE_BUF);
	assert_non_null(buf);
	size_t used = 0;
	assert_int_equal(archive_write_open_memory(a, buf, ARCHIVE_BUF, &used), ARCHIVE_OK);

	for (size_t i = 0; i < n; i++) {
		const struct ent *e = &ents[i];
		struct archive_entry *ae = archive_entry_new();
		assert_non_null(ae);
		archive_entry_set_pathname(ae, e->path);
		archive_entry_set_mtime(ae, 1700000000, 0);
		char *content = NULL;
		size_t len = 0;
		switch (e->kind) {
		case F:
			if (e->fill) {
				content = malloc(e->fill);
				assert_non_null(content);
				memset(content, 'x', e->fill);
				len = e->fill;
			} else if (e->data) {
				content = strdup(e->data);
				len = strlen(e->data);
			}
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, e->perm ?: 0644);
			archive_entry_set_size(ae, (la_int64_t)len);
			break;
		case D:
			archive_entry_set_filetype(ae, AE_IFDIR);
			archive_entry_set_perm(ae, e->perm ?: 0755);
			break;
		case L:
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_perm(ae, 0777);
			archive_entry_set_symlink(ae, e->data);
			break;
		case H:
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0644);
			archive_entry_set_hardlink(ae, e->data);
			archive_entry_set_size(ae, 0);
			break;
		case FIFO:
			archive_entry_set_filetype(ae, AE_IFIFO);
			archive_entry_set_perm(ae, 0644);
			break;
		case CHR:
			archive_entry_set_filetype(ae, AE_IFCHR);
			archive_entry_set_perm(ae, 0644);
			archive_entry_set_rdev(ae, makedev(1, 3));
			break;
		}
		int k = archive_write_header(a, ae);
		if (k != ARCHIVE_OK)
			fail_msg("writing '%s': %s", e->path, archive_error_string(a));
		if (len > 0)
			assert_int_equal(archive_write_data(a, content, len), (la_ssize_t)len);
		free(content);
		archive_entry_free(ae);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	*ret = buf;
	*ret_len = used;
}

/* ---- what must be on disk after a successful extraction ---- */

struct want {
	const char *path;
	enum kind kind; /* F, D, L or H (H: a file that shares its inode with data) */
	mode_t mode;    /* for F and D */
	const char *data; /* F: content; L: target; H: the other name */
};

#define MAX_ENTS 16
#define MAX_WANTS 16

struct tcase {
	const char *name;
	enum fmt fmt;
	struct ent ents[MAX_ENTS];
	struct package_limits lim; /* zero: library defaults */
	int rc;
	const char *error; /* substring, for failures */
	struct want wants[MAX_WANTS];
	/* Must not exist afterwards, relative to the package's parent dir (escape checks). */
	const char *absent;
};

static const struct tcase cases[] = {
	{ .name = "tree",
	  .fmt = TGZ,
	  .ents = { { "./", D },
		    { "src/", D, .perm = 0700 },
		    { "src/lib/", D },
		    { "src/lib/mod.py", F, "x = 1\n", 0600 },
		    { "bin/run", F, "#!/bin/sh\necho hi\n", 0755 },
		    { "app.py", F, "def h(e, c):\n    return e\n", 0644 },
		    { "suid", F, "s", 06755 },
		    { "empty", F, "", 0644 },
		    { "./dot/./a//b.txt", F, "b", 0644 } },
	  .wants = { { "src", D, 0755 },
		     { "src/lib", D, 0755 },
		     { "src/lib/mod.py", F, 0644, "x = 1\n" },
		     { "bin", D, 0755 },
		     { "bin/run", F, 0755, "#!/bin/sh\necho hi\n" },
		     { "app.py", F, 0644, "def h(e, c):\n    return e\n" },
		     { "suid", F, 0755, "s" },
		     { "empty", F, 0644, "" },
		     { "dot/a/b.txt", F, 0644, "b" } } },
	{ .name = "zip",
	  .fmt = ZIP,
	  .ents = { { "pkg/", D },
		    { "pkg/__init__.py", F, "", 0644 },
		    { "pkg/handler.py", F, "def handler(e, c):\n    return 42\n", 0644 },
		    { "tool", F, "#!/bin/sh\n", 0755 },
		    { "lib.py", L, "pkg/handler.py" } },
	  .wants = { { "pkg", D, 0755 },
		     { "pkg/__init__.py", F, 0644, "" },
		     { "pkg/handler.py", F, 0644, "def handler(e, c):\n    return 42\n" },
		     { "tool", F, 0755, "#!/bin/sh\n" },
		     { "lib.py", L, 0, "pkg/handler.py" } } },
	{ .name = "plain tar, implicit parents",
	  .fmt = TAR,
	  .ents = { { "a/b/c/d.txt", F, "deep", 0644 } },
	  .wants = { { "a", D, 0755 }, { "a/b", D, 0755 }, { "a/b/c", D, 0755 },
		     { "a/b/c/d.txt", F, 0644, "deep" } } },
	{ .name = "dir entry after its content",
	  .fmt = TGZ,
	  .ents = { { "d/f", F, "f" }, { "d/", D } },
	  .wants = { { "d", D, 0755 }, { "d/f", F, 0644, "f" } } },
	{ .name = "dotdot",
	  .fmt = TGZ,
	  .ents = { { "../x", F, "evil" } },
	  .rc = -EINVAL,
	  .error = "entry '../x': path leaves the package",
	  .absent = "x" },
	{ .name = "dotdot in the middle",
	  .fmt = TGZ,
	  .ents = { { "a/../../x", F, "evil" } },
	  .rc = -EINVAL,
	  .error = "entry 'a/../../x': path leaves the package",
	  .absent = "x" },
	{ .name = "dotdot that would stay inside",
	  .fmt = TGZ,
	  .ents = { { "a/../b", F, "b" } },
	  .rc = -EINVAL,
	  .error = "path leaves the package" },
	{ .name = "dotdot in zip",
	  .fmt = ZIP,
	  .ents = { { "../x", F, "evil" } },
	  .rc = -EINVAL,
	  .error = "entry '../x': path leaves the package",
	  .absent = "x" },
	{ .name = "absolute",
	  .fmt = TGZ,
	  .ents = { { "/tmp/spore-test-package-abs", F, "evil" } },
	  .rc = -EINVAL,
	  .error = "entry '/tmp/spore-test-package-abs': path is absolute" },
	{ .name = "symlink absolute",
	  .fmt = TGZ,
	  .ents = { { "passwd", L, "/etc/passwd" } },
	  .rc = -EINVAL,
	  .error = "entry 'passwd': symlink target is absolute" },
	{ .name = "symlink up and out",
	  .fmt = TGZ,
	  .ents = { { "d/l", L, "../../x" } },
	  .rc = -EINVAL,
	  .error = "entry 'd/l': symlink target leaves the package" },
	{ .name = "symlink up and out from root",
	  .fmt = TGZ,
	  .ents = { { "l", L, ".." } },
	  .rc = -EINVAL,
	  .error = "entry 'l': symlink target leaves the package" },
	{ .name = "symlink out in zip",
	  .fmt = ZIP,
	  .ents = { { "l", L, "../../../etc/shadow" } },
	  .rc = -EINVAL,
	  .error = "entry 'l': symlink target leaves the package" },
	{ .name = "symlink chain escape",
	  .fmt = TGZ,
	  /* s resolves to d1/x, so "s/../../.." would reach the parent of the package. */
	  .ents = { { "d1/d2/s", L, "../x" }, { "d1/d2/t", L, "s/../../.." } },
	  .rc = -EINVAL,
	  .error = "entry 'd1/d2/t': symlink target has '..' after a name" },
	{ .name = "symlinks inside",
	  .fmt = TGZ,
	  .ents = { { "lib/real.py", F, "r" },
		    { "link.py", L, "lib/real.py" },
		    { "lib/up", L, "../link.py" },
		    { "lib/self", L, "." },
		    { "lib/dangling", L, "./nothing/yet" } },
	  .wants = { { "lib/real.py", F, 0644, "r" },
		     { "link.py", L, 0, "lib/real.py" },
		     { "lib/up", L, 0, "../link.py" },
		     { "lib/self", L, 0, "." },
		     { "lib/dangling", L, 0, "./nothing/yet" } } },
	{ .name = "write through an earlier symlink",
	  .fmt = TGZ,
	  .ents = { { "sub/", D }, { "d", L, "sub" }, { "d/x", F, "x" } },
	  .rc = -EINVAL,
	  .error = "entry 'd/x': opening a directory: a path component is not a directory" },
	{ .name = "replace a file with a symlink",
	  .fmt = TGZ,
	  .ents = { { "a", F, "a" }, { "a", L, "b" } },
	  .rc = -EINVAL,
	  .error = "entry 'a': creating the symlink: already exists" },
	{ .name = "duplicate file",
	  .fmt = TGZ,
	  .ents = { { "a", F, "1" }, { "a", F, "2" } },
	  .rc = -EINVAL,
	  .error = "entry 'a': creating the file: already exists" },
	{ .name = "file used as a directory",
	  .fmt = TGZ,
	  .ents = { { "a", F, "1" }, { "a/b", F, "2" } },
	  .rc = -EINVAL,
	  .error = "entry 'a/b'" },
	{ .name = "hard link ok",
	  .fmt = TGZ,
	  .ents = { { "a", F, "data", 0755 }, { "sub/b", H, "a" } },
	  .wants = { { "a", F, 0755, "data" }, { "sub/b", H, 0, "a" } } },
	{ .name = "hard link outside",
	  .fmt = TGZ,
	  .ents = { { "h", H, "../../../../etc/passwd" } },
	  .rc = -EINVAL,
	  .error = "entry 'h': hard link target leaves the package" },
	{ .name = "hard link absolute",
	  .fmt = TGZ,
	  .ents = { { "h", H, "/etc/passwd" } },
	  .rc = -EINVAL,
	  .error = "entry 'h': hard link target is absolute" },
	{ .name = "hard link to an unknown entry",
	  .fmt = TGZ,
	  .ents = { { "h", H, "later" }, { "later", F, "x" } },
	  .rc = -EINVAL,
	  .error = "entry 'h': hard link target is not a file extracted before it" },
	{ .name = "hard link through a symlink",
	  .fmt = TGZ,
	  .ents = { { "dir/f", F, "f" }, { "l", L, "dir" }, { "h", H, "l/f" } },
	  .rc = -EINVAL,
	  .error = "entry 'h': hard link target is not a file extracted before it" },
	{ .name = "hard link to a directory",
	  .fmt = TGZ,
	  .ents = { { "dir/", D }, { "h", H, "dir" } },
	  .rc = -EINVAL,
	  .error = "entry 'h': hard link target is not a file extracted before it" },
	{ .name = "fifo",
	  .fmt = TGZ,
	  .ents = { { "ok", F, "x" }, { "pipe", FIFO } },
	  .rc = -EINVAL,
	  .error = "entry 'pipe': FIFOs are not allowed" },
	{ .name = "char device",
	  .fmt = TGZ,
	  .ents = { { "null", CHR } },
	  .rc = -EINVAL,
	  .error = "entry 'null': device files are not allowed" },
	{ .name = "entries at the limit",
	  .fmt = TGZ,
	  .ents = { { "d/", D }, { "d/a", F, "a" }, { "d/b", F, "b" } },
	  .lim = { .max_entries = 3, .max_bytes = 1000 },
	  .wants = { { "d/a", F, 0644, "a" }, { "d/b", F, 0644, "b" } } },
	{ .name = "too many entries",
	  .fmt = TGZ,
	  .ents = { { "d/", D }, { "d/a", F, "a" }, { "d/b", F, "b" }, { "d/c", F, "c" } },
	  .lim = { .max_entries = 3, .max_bytes = 1000 },
	  .rc = -EINVAL,
	  .error = "entry 'd/c': package has more than 3 entries" },
	{ .name = "bytes at the limit",
	  .fmt = TGZ,
	  .ents = { { "a", F, .fill = 60 }, { "b", F, .fill = 40 } },
	  .lim = { .max_entries = 10, .max_bytes = 100 } },
	{ .name = "too many bytes in one file",
	  .fmt = TGZ,
	  .ents = { { "big", F, .fill = 101 } },
	  .lim = { .max_entries = 10, .max_bytes = 100 },
	  .rc = -EINVAL,
	  .error = "entry 'big': package unpacks to more than 100 bytes" },
	{ .name = "too many bytes in total",
	  .fmt = ZIP,
	  .ents = { { "a", F, .fill = 60 }, { "b", F, .fill = 60 } },
	  .lim = { .max_entries = 10, .max_bytes = 100 },
	  .rc = -EINVAL,
	  .error = "entry 'b': package unpacks to more than 100 bytes" },
	{ .name = "empty tar.gz",
	  .fmt = TGZ,
	  .rc = -EINVAL,
	  .error = "package: archive has no entries" },
	{ .name = "empty zip",
	  .fmt = ZIP,
	  .rc = -EINVAL,
	  .error = "package: archive has no entries" },
	{ .name = "names with odd bytes are quoted safely",
	  .fmt = TGZ,
	  .ents = { { "bad\n'name/../x", F, "x" } },
	  .rc = -EINVAL,
	  .error = "entry 'bad??name/../x': path leaves the package" },
};

static char *make_tmp(void)
{
	char *t = strdup("/tmp/test-package-XXXXXX");
	assert_non_null(t);
	assert_non_null(mkdtemp(t));
	return t;
}

struct ctx {
	char *top;  /* temp dir */
	int pkg_fd; /* top/pkg */
};

static void ctx_open(struct ctx *c)
{
	c->top = make_tmp();
	int tfd = open(c->top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(tfd >= 0);
	assert_int_equal(mkdirat(tfd, "pkg", 0755), 0);
	c->pkg_fd = openat(tfd, "pkg", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(c->pkg_fd >= 0);
	close(tfd);
}

static void ctx_close(struct ctx *c)
{
	if (c->pkg_fd >= 0)
		close(c->pkg_fd);
	c->pkg_fd = -EBADF;
	if (c->top) {
		(void)rm_rf_at(AT_FDCWD, c->top);
		free(c->top);
		c->top = NULL;
	}
}

static int teardown(void **state)
{
	ctx_close(*state);
	return 0;
}

static int setup(void **state)
{
	static struct ctx c = { .pkg_fd = -EBADF };
	*state = &c;
	return 0;
}

static void check_want(int pkg_fd, const struct want *w, const char *cname)
{
	struct stat st;
	if (fstatat(pkg_fd, w->path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		fail_msg("%s: '%s' missing: %m", cname, w->path);
	switch (w->kind) {
	case D:
		assert_true(S_ISDIR(st.st_mode));
		if ((st.st_mode & 07777) != w->mode)
			fail_msg("%s: '%s' mode %o, want %o", cname, w->path, st.st_mode & 07777,
				 w->mode);
		break;
	case F: {
		assert_true(S_ISREG(st.st_mode));
		if ((st.st_mode & 07777) != w->mode)
			fail_msg("%s: '%s' mode %o, want %o", cname, w->path, st.st_mode & 07777,
				 w->mode);
		_cleanup_free_ char *data = NULL;
		size_t len;
		assert_int_equal(read_file(pkg_fd, w->path, 1 << 20, &data, &len), 0);
		assert_int_equal(len, strlen(w->data));
		assert_string_equal(data, w->data);
		break;
	}
	case L: {
		assert_true(S_ISLNK(st.st_mode));
		char buf[256];
		ssize_t n = readlinkat(pkg_fd, w->path, buf, sizeof(buf) - 1);
		assert_true(n >= 0);
		buf[n] = 0;
		assert_string_equal(buf, w->data);
		break;
	}
	case H: {
		struct stat other;
		assert_int_equal(fstatat(pkg_fd, w->data, &other, AT_SYMLINK_NOFOLLOW), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(st.st_ino, other.st_ino);
		assert_int_equal(st.st_nlink, 2);
		break;
	}
	default:
		fail();
	}
}

static void test_cases(void **state)
{
	struct ctx *c = *state;
	/* A strict umask proves modes are set exactly, not left to the umask. */
	mode_t old_umask = umask(077);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		const struct tcase *t = &cases[i];
		size_t n = 0;
		while (n < MAX_ENTS && t->ents[n].path)
			n++;
		_cleanup_free_ void *data = NULL;
		size_t len;
		build(t->fmt, t->ents, n, &data, &len);

		ctx_open(c);
		char *err = NULL;
		const struct package_limits *lim = t->lim.max_entries ? &t->lim : NULL;
		int rc = package_extract(c->pkg_fd, data, len, lim, &err);
		if (rc != t->rc)
			fail_msg("case '%s': rc %d, want %d (error '%s')", t->name, rc, t->rc,
				 err ?: "");
		if (t->rc == 0) {
			assert_null(err);
			for (size_t w = 0; w < MAX_WANTS && t->wants[w].path; w++)
				check_want(c->pkg_fd, &t->wants[w], t->name);
		} else if (!err || !strstr(err, t->error))
			fail_msg("case '%s': error '%s', want '%s'", t->name, err ?: "(none)",
				 t->error);
		if (t->absent) {
			char p[512];
			snprintf(p, sizeof(p), "%s/%s", c->top, t->absent);
			assert_int_equal(access(p, F_OK), -1);
		}
		free(err);
		ctx_close(c);
	}
	umask(old_umask);
}

static void test_bytes_at_limit_content(void **state)
{
	struct ctx *c = *state;
	const struct ent ents[] = { { "a", F, .fill = 60 }, { "b", F, .fill = 40 } };
	_cleanup_free_ void *data = NULL;
	size_t len;
	build(TGZ, ents, ELEMENTSOF(ents), &data, &len);
	ctx_open(c);
	struct package_limits lim = { .max_entries = 2, .max_bytes = 100 };
	assert_int_equal(package_extract(c->pkg_fd, data, len, &lim, NULL), 0);
	struct stat st;
	assert_int_equal(fstatat(c->pkg_fd, "a", &st, 0), 0);
	assert_int_equal(st.st_size, 60);
	assert_int_equal(fstatat(c->pkg_fd, "b", &st, 0), 0);
	assert_int_equal(st.st_size, 40);
	ctx_close(c);
}

static void test_garbage(void **state)
{
	struct ctx *c = *state;
	static const char *const inputs[] = {
		"this is not an archive at all, just some text that goes on",
		"\x1f\x8b\x08\x00garbage after a gzip magic number",
		"PK\x03\x04 and then nothing sensible",
	};
	for (size_t i = 0; i < ELEMENTSOF(inputs); i++) {
		ctx_open(c);
		char *err = NULL;
		int rc = package_extract(c->pkg_fd, inputs[i], strlen(inputs[i]), NULL, &err);
		assert_int_equal(rc, -EINVAL);
		assert_non_null(err);
		if (!strstr(err, "package:"))
			fail_msg("input %zu: error '%s'", i, err);
		free(err);
		ctx_close(c);
	}

	/* Random bytes (fixed seed) and no bytes at all. */
	unsigned char rnd[4096];
	srand(42);
	for (size_t i = 0; i < sizeof(rnd); i++)
		rnd[i] = (unsigned char)rand();
	ctx_open(c);
	char *err = NULL;
	assert_int_equal(package_extract(c->pkg_fd, rnd, sizeof(rnd), NULL, &err), -EINVAL);
	assert_non_null(strstr(err, "not a zip or tar(.gz) archive"));
	free(err);
	err = NULL;
	assert_int_equal(package_extract(c->pkg_fd, "", 0, NULL, &err), -EINVAL);
	assert_non_null(strstr(err, "not a zip or tar(.gz) archive"));
	free(err);
	ctx_close(c);
}

/* A tar.gz cut short: the entries before the cut are refused as a whole (-EINVAL), nothing
 * escapes, and the message says what happened. */
static void test_truncated(void **state)
{
	struct ctx *c = *state;
	const struct ent ents[] = { { "a", F, .fill = 100000 }, { "b", F, .fill = 100000 } };
	_cleanup_free_ void *data = NULL;
	size_t len;
	build(TAR, ents, ELEMENTSOF(ents), &data, &len);
	ctx_open(c);
	char *err = NULL;
	assert_int_equal(package_extract(c->pkg_fd, data, len / 2, NULL, &err), -EINVAL);
	assert_non_null(err);
	assert_non_null(strstr(err, "entry '"));
	free(err);
	ctx_close(c);
}

static void test_many_entries_default_limit(void **state)
{
	struct ctx *c = *state;
	/* 10001 entries against the default limit of 10000. Every entry counts, a repeated
	 * directory too; that keeps this cheap (10000 new files would each be fsync'ed, 10000
	 * new directories take seconds on a busy disk). */
	size_t n = 10001;
	struct ent *ents = calloc(n, sizeof(*ents));
	char (*names)[16] = calloc(n, 16);
	assert_non_null(ents);
	assert_non_null(names);
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], 16, i == n - 1 ? "last/" : "d/");
		ents[i] = (struct ent){ names[i], D };
	}
	_cleanup_free_ void *data = NULL;
	size_t len;
	build(TGZ, ents, n, &data, &len);
	ctx_open(c);
	char *err = NULL;
	assert_int_equal(package_extract(c->pkg_fd, data, len, NULL, &err), -EINVAL);
	assert_non_null(strstr(err, "entry 'last/': package has more than 10000 entries"));
	free(err);
	ctx_close(c);
	free(ents);
	free(names);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_cases, teardown),
		cmocka_unit_test_teardown(test_bytes_at_limit_content, teardown),
		cmocka_unit_test_teardown(test_garbage, teardown),
		cmocka_unit_test_teardown(test_truncated, teardown),
		cmocka_unit_test_teardown(test_many_entries_default_limit, teardown),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
