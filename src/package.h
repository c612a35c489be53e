/* SPDX-License-Identifier: MIT */
/* Function packages: a .zip or .tar.gz (libarchive) unpacked safely into a directory.
 * Supervisor only. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct package_limits {
	uint32_t max_entries;  /* 10000 */
	uint64_t max_bytes;    /* 256 MiB, total unpacked file size */
};

/* Unpacks the archive in data/len into the empty directory dir_fd. Refuses (-EINVAL, with
 * *ret_error malloc'ed naming the entry and reason): entries with ".." components or absolute
 * paths, symlinks whose target is absolute or leaves the package, hard links to outside or to
 * unknown entries, device files, FIFOs, sockets, more than max_entries entries, more than
 * max_bytes unpacked, and data that is not a zip or tar(.gz) archive. Files are created with
 * openat() below dir_fd without following symlinks; modes keep the user's exec bit, no
 * setuid/setgid. Everything written is fsync'ed before success. On failure the directory may hold
 * partial content: the caller removes it.
 *
 * Details: lim NULL means the defaults above. *ret_error is written only with -EINVAL (may be
 * NULL); other errors (-ENOSPC, -EDQUOT, -EIO, -ENOMEM) come back unchanged. An archive with no
 * entries is refused ("package: archive has no entries"). Symlink targets may use ".." only as
 * leading components ("../lib/x", not "a/../x"), so a chain of links cannot climb out. Nothing is
 * written through a symlink or onto an existing name; a hard link must name a regular file that an
 * earlier entry created. Directories are 0755, files 0755 if the user exec bit is set, else
 * 0644. */
int package_extract(int dir_fd, const void *data, size_t len, const struct package_limits *lim,
		    char **ret_error);
