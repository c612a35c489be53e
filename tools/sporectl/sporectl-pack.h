/* SPDX-License-Identifier: MIT */
/* Turning the PATH given to "sporectl deploy" into the bytes of a package (.tar.gz or .zip),
 * in memory, with libarchive.
 *
 * Packs are reproducible: entries sorted by name, mtime 0, uid/gid 0 with no owner names, and no
 * timestamp in the gzip header, so the same tree always gives the same bytes (and the same
 * sha256 on the server). Only permission bits 0777 are kept (exec bits survive; setuid, setgid
 * and sticky do not). */
#pragma once

#include <stddef.h>

#include "util/buf.h"

enum pack_kind {
	PACK_DIRECTORY,     /* packed into a .tar.gz */
	PACK_ARCHIVE_ZIP,   /* *.zip, sent as is */
	PACK_ARCHIVE_TARGZ, /* *.tar.gz or *.tgz, sent as is */
	PACK_SHARED_OBJECT, /* *.so, packed alone into a .tar.gz */
	_PACK_KIND_MAX,
	_PACK_KIND_INVALID = -EINVAL,
};

/* Largest archive file read as is; the server refuses deploy bodies above 64 MiB anyway. */
#define PACK_ARCHIVE_MAX (64u * 1024 * 1024)

/* What PATH is: a directory (following symlinks), or a regular file named *.zip, *.tar.gz,
 * *.tgz or *.so (suffix case-insensitive). -ENOENT etc. from stat(); _PACK_KIND_INVALID
 * (-EINVAL) when it exists but is none of these. */
int pack_classify(const char *path, enum pack_kind *ret_kind);

/* Packs the tree below dir_fd into a .tar.gz in *ret (appended). Regular files, directories and
 * symlinks (stored as links, target unchanged) are packed with paths relative to the directory,
 * no "./" prefix; entries named "__pycache__" or ".git" are skipped at every depth, with what is
 * below them; other file types (FIFOs, sockets, devices) are skipped. Symlinks are never
 * followed. On failure -errno and *ret_error (malloc'ed) names the path and the cause. */
int pack_directory(int dir_fd, struct buf *ret, char **ret_error);

/* Packs the one regular file at path into a .tar.gz with a single entry named name (the caller
 * usually passes the basename). Same normalisation as pack_directory(). */
int pack_single_file(const char *path, const char *name, struct buf *ret, char **ret_error);

/* Reads an existing archive as is (at most PACK_ARCHIVE_MAX bytes, else -EFBIG) and checks its
 * magic bytes match kind (zip: "PK\3\4" or "PK\5\6"; tar.gz: 1f 8b), else -EMEDIUMTYPE. */
int pack_read_archive(const char *path, enum pack_kind kind, struct buf *ret, char **ret_error);
