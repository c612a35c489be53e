/* SPDX-License-Identifier: MIT */
/* sporectl top: a live per-function table (docs/SPORECTL.md, docs/METERING.md), refreshed every
 * second: requests/s, errors/s, in-flight, queue, instances, cold starts, CPU %, memory and the
 * p50/p99 latency of the last interval (from the difference of two latency histograms).
 *
 * Where the figures come from:
 *   - the pinned BPF map fn_stats, read through a read-only mmap (no load on spored), when it
 *     can be opened (root) and sporectl talks to the default spored: no --url, the default
 *     socket; $SPORE_PIN_DIR names another pin directory (and picks the maps explicitly);
 *   - otherwise spored's API, GET /v1/metrics.
 * On a terminal it redraws until interrupted; otherwise (or with json) it prints one frame, one
 * interval after the first sample, and exits. $SPORECTL_TOP_INTERVAL_MS changes the interval
 * (default 1000). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "bpf/meter.h"
#include "sporectl-client.h"

/* Returns the exit status (0, or 1 after printing why). functions: only these (none: all). */
int sporectl_top(const struct client *c, bool json, char **functions, size_t n_functions);

/* ---- internals, exposed for the tests ---- */

struct top_fn {
	struct spore_fn_stats s; /* the name is s.name */
};

/* The functions of a GET /v1/metrics answer (metrics_json()), in *ret (malloc'ed, n in
 * *ret_n). -EBADMSG when it is not that shape, -ENOMEM. */
int top_parse_json(const char *json, size_t len, struct top_fn **ret, size_t *ret_n);
