/* SPDX-License-Identifier: MIT */
/* File helpers. Every fd opened here is O_CLOEXEC. All take a directory fd first (AT_FDCWD ok). */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Write all bytes, retrying on EINTR/short writes. */
int write_all(int fd, const void *data, size_t len);
/* Write path atomically: temp file in the same dir, fsync, rename, fsync the dir. */
int write_file_atomic(int dir_fd, const char *path, const void *data, size_t len, mode_t mode);
/* Read a whole file (at most max bytes, else -EFBIG); result NUL-terminated. */
int read_file(int dir_fd, const char *path, size_t max, char **ret_data, size_t *ret_len);
/* mkdir -p (mode for created dirs); existing dirs are fine. */
int mkdir_p(const char *path, mode_t mode);
/* Recursively remove path below dir_fd (no symlink following). Missing is fine. */
int rm_rf_at(int dir_fd, const char *path);
/* fsync a directory by path. */
int fsync_path(int dir_fd, const char *path);
