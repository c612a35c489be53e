/* SPDX-License-Identifier: MIT */
/* Function logs: one NDJSON file per function under the log dir, rotated once to NAME.log.1 at
 * max_bytes, plus live followers. Supervisor only. A line:
 *   {"time":"2026-11-23T19:38:17.123456Z","version":2,"instance":"i-..","stream":"stdout",
 *    "message":"..."} */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct log_store;
struct log_follower;

int log_store_new(const char *dir, uint64_t max_bytes, struct log_store **ret);
struct log_store *log_store_free(struct log_store *s);

/* Appends one line (msg without its newline; invalid UTF-8 is escaped by cJSON as is). */
int log_store_append(struct log_store *s, const char *function, uint32_t version,
		     const char *instance, const char *stream, const char *msg, size_t len);
/* Appends the last n lines (each ending in '\n') to out. A missing log is empty. */
int log_store_tail(struct log_store *s, const char *function, size_t n, struct buf *out);
/* Removes the function's logs (and ends its followers' feeds: they get no more lines). */
int log_store_remove(struct log_store *s, const char *function);

/* Calls fn for every line appended from now on (line includes its '\n'). */
typedef void (*log_follow_fn)(void *userdata, const char *line, size_t len);
int log_store_follow(struct log_store *s, const char *function, log_follow_fn fn, void *userdata,
		     struct log_follower **ret);
struct log_follower *log_follower_free(struct log_follower *f);

/* RFC 3339 UTC with microseconds into out[32]. */
void format_time_us(int64_t realtime_us, char out[32]);
