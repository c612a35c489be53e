/* SPDX-License-Identifier: MIT */
/* sporectl helpers without I/O of their own: argument value parsing (durations, K=V, integers,
 * function names), spore.json defaults, a line splitter for streamed bodies, and human-readable
 * formatting (tables, durations, JSON values as table cells). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "util/buf.h"

/* Largest timeout we accept locally; the server applies its own, narrower range. */
#define SPORECTL_DURATION_MAX_MS UINT32_MAX

/* "30s", "500ms", "2m", "1h" or plain milliseconds ("1500"). Integers only, > 0, at most
 * SPORECTL_DURATION_MAX_MS. -EINVAL for anything else (empty, sign, space, unknown unit),
 * -ERANGE when it does not fit. */
int parse_duration_ms(const char *s, uint32_t *ret_ms);

/* Decimal integer in [min, max], no sign, no spaces, no leading '+'. -EINVAL or -ERANGE. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* [A-Za-z_][A-Za-z0-9_]* */
bool env_key_valid(const char *key);

/* "KEY=value" (value may be empty and may contain '='). Key must be env_key_valid(). On success
 * *ret_key and *ret_value are malloc'ed. -EINVAL when there is no '=' or the key is invalid. */
int parse_env_assignment(const char *s, char **ret_key, char **ret_value);

/* [a-z0-9][a-z0-9_-]{0,63}, as the API requires. */
bool fn_name_valid(const char *name);

/* Defaults for a deploy, read from a directory's spore.json. Absent fields stay NULL/0. */
struct deploy_defaults {
	char *runtime;
	char *handler;
	uint32_t memory_mb; /* 0: not set */
	uint32_t timeout_ms; /* 0: not set */
	uint32_t cpu_millis; /* 0: not set */
	cJSON *env;          /* object of string values, or NULL */
};

/* Parses spore.json (an object). Known keys: runtime, handler (strings), memory_mb and
 * cpu_millis (positive integers), timeout_ms (positive integer, or a duration string as parse_duration_ms() takes),
 * env (object of string values with env_key_valid() keys). Other keys are ignored, so the file
 * may carry more. On failure -EINVAL and *ret_error (malloc'ed) names the field, e.g.
 * "memory_mb: must be a positive integer". */
int deploy_defaults_parse(const char *json, size_t len, struct deploy_defaults *ret,
			  char **ret_error);
void deploy_defaults_done(struct deploy_defaults *d);

/* Splits a byte stream into lines. Each complete line is handed to cb without its "\n" (a
 * trailing "\r" is dropped too). Bytes after the last newline stay in *pending until more arrive
 * or line_split_finish() hands them over as a last line. A callback error (<0) stops and is
 * returned. A pending line longer than LINE_SPLIT_MAX gives -ENOBUFS. */
#define LINE_SPLIT_MAX (16u * 1024 * 1024)
typedef int (*line_cb_t)(const char *line, size_t len, void *userdata);
int line_split_feed(struct buf *pending, const void *data, size_t len, line_cb_t cb,
		    void *userdata);
int line_split_finish(struct buf *pending, line_cb_t cb, void *userdata);

/* "2m", "30s", "1500ms": the largest unit that divides ms evenly (ms, s, m, h). */
void format_duration_ms(uint64_t ms, char out[32]);

/* A JSON value as a table cell: strings as is, integral numbers without fraction, other numbers
 * with %g, true/false, and "-" for NULL, null, objects and arrays. malloc'ed; NULL on OOM. */
char *json_cell(const cJSON *item);

/* One log record ({"time","version","instance","stream","message"}) as
 * "TIME vVERSION INSTANCE STREAM: message" (missing fields as "-"). malloc'ed; NULL on OOM. */
char *format_log_record(const cJSON *record);

/* Column-aligned text table: two spaces between columns, the last column unpadded. */
struct table;
struct table *table_new(size_t n_columns, const char *const *headers);
struct table *table_free(struct table *t);
/* Appends one cell (copied); rows fill left to right. NULL text prints as "-". */
int table_add(struct table *t, const char *text);
/* Appends json_cell(item). */
int table_add_json(struct table *t, const cJSON *item);
/* Prints header and rows; -EIO if the stream reports an error. */
int table_print(const struct table *t, FILE *f);
static inline void table_freep(struct table **t)
{
	*t = table_free(*t);
}
#define _cleanup_table_ _cleanup_(table_freep)
