/* SPDX-License-Identifier: MIT */
/* A growable byte buffer. Owner frees with buf_done(). Never NUL-terminates implicitly except
 * through buf_cstr(). */
#pragma once

#include <stdarg.h>
#include <stddef.h>

#include "cleanup.h"

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT { NULL, 0, 0 }

int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) _printf_(2, 3);
/* Drop the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Ensures a NUL after the data (not counted in len) and returns data; NULL only on OOM. */
const char *buf_cstr(struct buf *b);
/* Hand over the data (NUL-terminated) and reset the buffer. */
char *buf_steal(struct buf *b, size_t *ret_len);
void buf_done(struct buf *b);
static inline void buf_reset(struct buf *b)
{
	b->len = 0;
}
