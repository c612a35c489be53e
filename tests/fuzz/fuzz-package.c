/* SPDX-License-Identifier: MIT */
/* Fuzzes package validation and extraction (src/package.c): the input is the archive (.zip, .tar
 * or .tar.gz bytes, as decoded from a deploy's "code"), unpacked with package_extract() into a
 * fresh directory that is checked and removed after each input.
 *
 * Layout, under $SPORE_FUZZ_TMPDIR (else $TMPDIR, else /tmp; run.sh points it at a tmpfs):
 *   spore-fuzz-package.XXXXXX/outside/canary   must stay exactly as it is
 *   spore-fuzz-package.XXXXXX/pkg.XXXXXX/      the package directory of one input
 *
 * Checks, beyond ASan/UBSan/LSan: only 0 or -EINVAL (with a one-line message) comes back, and
 * *ret_error is set exactly on -EINVAL; whatever the outcome, partial content included, nothing
 * appeared or changed next to the package directory; the tree holds only directories (0755),
 * regular files (0644 or 0755, no setuid/setgid) and symlinks; every symlink resolves beneath the
 * package (openat2() with RESOLVE_BENEATH); every hard link of a file is inside the package; at
 * most LIM_ENTRIES non-directory names and at most LIM_BYTES bytes of file data exist. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fuzz-common.h"
#include "package.h"

/* Small, so that inputs of a few KiB reach them (a gzip stream expands 1000-fold). */
#define LIM_ENTRIES 32
#define LIM_BYTES (64 * 1024)

static const char canary[] = "spore fuzz canary\n";

static char base[4096];
static int base_fd = -EBADF;

struct walk {
	int root_fd;
	size_t n_names; /* non-directories */
	uint64_t bytes; /* regular file data, each inode once */
	struct {
		dev_t dev;
		ino_t ino;
		nlink_t nlink;
		size_t seen;
	} inodes[4 * LIM_ENTRIES];
	size_t n_inodes;
};

static void remove_tree(int dir_fd, const char *name)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	FUZZ_CHECK(fd >= 0, "open '%s' to remove: %m", name);
	DIR *d = fdopendir(fd);
	FUZZ_CHECK(d != NULL, "fdopendir: %m");
	for (struct dirent *de; (de = readdir(d));) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type == DT_DIR)
			remove_tree(dirfd(d), de->d_name);
		else
			FUZZ_CHECK(unlinkat(dirfd(d), de->d_name, 0) == 0, "unlink '%s': %m",
				   de->d_name);
	}
	closedir(d);
	FUZZ_CHECK(unlinkat(dir_fd, name, AT_REMOVEDIR) == 0, "rmdir '%s': %m", name);
}

static void note_inode(struct walk *w, const struct stat *st)
{
	for (size_t i = 0; i < w->n_inodes; i++)
		if (w->inodes[i].dev == st->st_dev && w->inodes[i].ino == st->st_ino) {
			w->inodes[i].seen++;
			return;
		}
	FUZZ_CHECK(w->n_inodes < sizeof(w->inodes) / sizeof(w->inodes[0]), "too many files");
	w->inodes[w->n_inodes].dev = st->st_dev;
	w->inodes[w->n_inodes].ino = st->st_ino;
	w->inodes[w->n_inodes].nlink = st->st_nlink;
	w->inodes[w->n_inodes].seen = 1;
	w->n_inodes++;
	w->bytes += (uint64_t)st->st_size;
}

/* Checks the tree below dir_fd (path: its name relative to the package, "" for the root). */
static void check_tree(struct walk *w, int dir_fd, const char *path, unsigned depth)
{
	FUZZ_CHECK(depth < 4096, "tree too deep");
	int fd = dup(dir_fd);
	FUZZ_CHECK(fd >= 0, "dup: %m");
	DIR *d = fdopendir(fd);
	FUZZ_CHECK(d != NULL, "fdopendir: %m");
	rewinddir(d);
	for (struct dirent *de; (de = readdir(d));) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *sub = NULL;
		FUZZ_CHECK(asprintf(&sub, "%s%s%s", path, *path ? "/" : "", de->d_name) >= 0,
			   "oom");
		struct stat st;
		FUZZ_CHECK(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0,
			   "stat '%s': %m", sub);
		mode_t perm = st.st_mode & 07777;
		if (S_ISDIR(st.st_mode)) {
			FUZZ_CHECK(perm == 0755, "directory '%s' mode %04o", sub, perm);
			int sfd = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			FUZZ_CHECK(sfd >= 0, "open '%s': %m", sub);
			check_tree(w, sfd, sub, depth + 1);
			close(sfd);
		} else if (S_ISREG(st.st_mode)) {
			FUZZ_CHECK(perm == 0644 || perm == 0755, "file '%s' mode %04o", sub, perm);
			note_inode(w, &st);
			w->n_names++;
		} else if (S_ISLNK(st.st_mode)) {
			/* Must resolve beneath the package, through any chain of links. A dangling,
			 * looping or too long one resolves nowhere; one that leaves gives EXDEV. */
			struct open_how how = {
				.flags = O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
			};
			int lfd = (int)syscall(SYS_openat2, w->root_fd, sub, &how, sizeof(how));
			FUZZ_CHECK(lfd >= 0 || errno == ENOENT || errno == ELOOP ||
					   errno == ENOTDIR || errno == ENAMETOOLONG,
				   "symlink '%s' resolves outside the package: %m", sub);
			if (lfd >= 0)
				close(lfd);
			w->n_names++;
		} else
			FUZZ_CHECK(false, "'%s' has file type %o", sub, st.st_mode & S_IFMT);
		free(sub);
	}
	closedir(d);
}

/* Nothing but outside/ and the current package next to each other; the canary as it was. */
static void check_surroundings(const char *pkg_name)
{
	int fd = dup(base_fd);
	FUZZ_CHECK(fd >= 0, "dup: %m");
	DIR *d = fdopendir(fd);
	FUZZ_CHECK(d != NULL, "fdopendir: %m");
	rewinddir(d);
	for (struct dirent *de; (de = readdir(d));)
		FUZZ_CHECK(strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
				   strcmp(de->d_name, "outside") == 0 ||
				   strcmp(de->d_name, pkg_name) == 0,
			   "'%s' appeared next to the package", de->d_name);
	closedir(d);

	fd = openat(base_fd, "outside", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	FUZZ_CHECK(fd >= 0, "outside/: %m");
	d = fdopendir(fd);
	FUZZ_CHECK(d != NULL, "fdopendir: %m");
	size_t n = 0;
	for (struct dirent *de; (de = readdir(d));)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			FUZZ_CHECK(strcmp(de->d_name, "canary") == 0, "'outside/%s' appeared",
				   de->d_name);
			n++;
		}
	FUZZ_CHECK(n == 1, "outside/canary is gone");
	struct stat st;
	FUZZ_CHECK(fstatat(dirfd(d), "canary", &st, AT_SYMLINK_NOFOLLOW) == 0, "canary: %m");
	FUZZ_CHECK(S_ISREG(st.st_mode) && st.st_nlink == 1 && (st.st_mode & 07777) == 0600 &&
			   st.st_size == (off_t)sizeof(canary) - 1,
		   "canary changed (mode %o, %lu links, %lld bytes)", st.st_mode,
		   (unsigned long)st.st_nlink, (long long)st.st_size);
	char buf[sizeof(canary)] = { 0 };
	int cfd = openat(dirfd(d), "canary", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	FUZZ_CHECK(cfd >= 0, "canary: %m");
	FUZZ_CHECK(read(cfd, buf, sizeof(buf)) == (ssize_t)sizeof(canary) - 1 &&
			   memcmp(buf, canary, sizeof(canary) - 1) == 0,
		   "canary content changed");
	close(cfd);
	closedir(d);
}

static void cleanup_base(void)
{
	if (base_fd < 0)
		return;
	remove_tree(base_fd, "outside");
	close(base_fd);
	base_fd = -EBADF;
	(void)rmdir(base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *tmp = getenv("SPORE_FUZZ_TMPDIR");
	if (!tmp || !*tmp)
		tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = "/tmp";
	FUZZ_CHECK(snprintf(base, sizeof(base), "%s/spore-fuzz-package.XXXXXX", tmp) <
			   (int)sizeof(base),
		   "path too long");
	FUZZ_CHECK(mkdtemp(base) != NULL, "mkdtemp '%s': %m", base);
	base_fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	FUZZ_CHECK(base_fd >= 0, "open '%s': %m", base);
	FUZZ_CHECK(mkdirat(base_fd, "outside", 0755) == 0, "mkdir outside: %m");
	int fd = openat(base_fd, "outside/canary", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FUZZ_CHECK(fd >= 0 && write(fd, canary, sizeof(canary) - 1) == sizeof(canary) - 1,
		   "canary: %m");
	close(fd);
	FUZZ_CHECK(atexit(cleanup_base) == 0, "atexit");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char pkg_name[] = "pkg.XXXXXX";
	char path[sizeof(base) + sizeof(pkg_name) + 1];
	snprintf(path, sizeof(path), "%s/%s", base, pkg_name);
	FUZZ_CHECK(mkdtemp(path) != NULL, "mkdtemp: %m");
	memcpy(pkg_name, path + strlen(base) + 1, sizeof(pkg_name));
	int dir_fd = openat(base_fd, pkg_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	FUZZ_CHECK(dir_fd >= 0, "open '%s': %m", path);

	/* An exactly-sized copy: the archive reader must not read past it. */
	void *copy = malloc(size ? size : 1);
	FUZZ_CHECK(copy != NULL, "oom");
	if (size)
		memcpy(copy, data, size);

	const struct package_limits lim = { .max_entries = LIM_ENTRIES, .max_bytes = LIM_BYTES };
	char *err = NULL;
	int r = package_extract(dir_fd, copy, size, &lim, &err);
	free(copy);
	FUZZ_LOG("package_extract: %d %s", r, err ? err : "");
	FUZZ_CHECK(r == 0 || r == -EINVAL, "package_extract: %d (%s)", r, strerror(-r));
	if (r == -EINVAL)
		FUZZ_CHECK(err && *err && !strchr(err, '\n') && strlen(err) < 1024,
			   "bad error message '%s'", err ? err : "(null)");
	else
		FUZZ_CHECK(err == NULL, "error set on success: '%s'", err);
	free(err);

	check_surroundings(pkg_name);
	struct walk *w = calloc(1, sizeof(*w));
	FUZZ_CHECK(w != NULL, "oom");
	w->root_fd = dir_fd;
	check_tree(w, dir_fd, "", 0);
	FUZZ_CHECK(w->n_names <= LIM_ENTRIES, "%zu names for a limit of %d entries", w->n_names,
		   LIM_ENTRIES);
	FUZZ_CHECK(w->bytes <= LIM_BYTES, "%llu bytes for a limit of %d",
		   (unsigned long long)w->bytes, LIM_BYTES);
	for (size_t i = 0; i < w->n_inodes; i++)
		FUZZ_CHECK(w->inodes[i].seen == w->inodes[i].nlink,
			   "a file with %lu links, %zu of them in the package",
			   (unsigned long)w->inodes[i].nlink, w->inodes[i].seen);
	FUZZ_LOG("  %zu names, %llu bytes", w->n_names, (unsigned long long)w->bytes);
	free(w);

	close(dir_fd);
	remove_tree(base_fd, pkg_name);
	return 0;
}
