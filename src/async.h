/* SPDX-License-Identifier: MIT */
/* Asynchronous invocations: accepted with 202, kept durably under STATE/async until they ran,
 * retried on failure, then kept as a dead letter. Supervisor only.
 *
 * On disk (one JSON file per invocation, written with write_file_atomic(): fsync'ed before the
 * caller answers 202):
 *   STATE/async/pending/ID.json   accepted or waiting for a retry ("state": "queued"), or running
 *                                 ("state": "running", written before it is handed to an instance)
 *   STATE/async/done/ID.json      succeeded, with its result
 *   STATE/async/dead/ID.json      failed every attempt, or interrupted: the dead-letter list
 * IDs sort by acceptance time. At start, a pending invocation still marked running was interrupted
 * by a dead spored: it may have run in part, so it is not run again but goes to the dead letters
 * with that error (at most once, never lost). Succeeded ones are kept for DONE_KEEP_S (GET
 * /v1/invocations/{id}), dead letters until their function is deleted. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct loop;
struct sched;
struct registry;
struct async;

struct async_config {
	uint32_t retries;     /* after the first attempt; default 2 */
	uint32_t backoff_ms;  /* first retry after this, doubling; default 1000 */
	uint32_t max_pending; /* accepted and not finished, all functions; default 100000 */
	uint32_t max_running; /* handed to the scheduler at once, all functions; default 64 */
};

/* Opens (creating) STATE/async, loads what is pending and dead-letters what was interrupted. */
int async_new(struct loop *l, struct sched *s, struct registry *reg, const char *state_dir,
	      const struct async_config *cfg, struct async **ret);
/* Starts dispatching what was loaded (call once the zygotes are up). */
void async_start(struct async *a);
/* Stops dispatching; what is pending stays on disk for the next start (one that was handed to
 * the scheduler but not yet to an instance goes back to queued). Call before sched_free(). */
struct async *async_free(struct async *a);

/* Accepts an invocation of the function's live version (at the time it runs). The event is
 * stored durably before this returns. *ret_id (40 bytes) gets its id. -EAGAIN: max_pending
 * reached; -ENOSPC/-EDQUOT: disk full; -ENOMEM. */
int async_submit(struct async *a, const char *function, const char *event, size_t len,
		 char ret_id[40]);
/* The same, pinned to one version (0: the live one when it runs, as async_submit()); a version
 * gone by then fails it as any other error does (retries, then a dead letter). */
int async_submit_version(struct async *a, const char *function, uint32_t version,
			 const char *event, size_t len, char ret_id[40]);

/* {"id","function","state":"queued"|"running"|"succeeded"|"failed","attempts","accepted",
 * "status","result"|"error"}; -ENOENT if unknown (or pruned). */
int async_get_json(struct async *a, const char *id, cJSON **ret);
/* {"dead_letters":[{"id","accepted","attempts","status","error"}...]} of a function, oldest
 * first. */
int async_dead_letters_json(struct async *a, const char *function, cJSON **ret);

/* Accepted and not finished yet, all functions. */
size_t async_pending(const struct async *a);

/* The function was deleted: its pending invocations (not yet on an instance) and its dead
 * letters are dropped. */
void async_function_deleted(struct async *a, const char *function);
