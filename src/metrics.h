/* SPDX-License-Identifier: MIT */
/* The meter's figures rendered for readers: Prometheus text exposition format 0.0.4 (GET
 * /metrics) and JSON (GET /v1/metrics, GET /v1/functions/{name}/stats, sporectl top). Both read
 * a snapshot of each open slot of the meter, functions sorted by name. Supervisor only; does not
 * log. docs/METERING.md lists every metric.
 *
 * JSON, per function (metrics_json() puts them in "functions": [...], with "bpf": bool and
 * "cpu_hook": string|null beside):
 *   {"name", "requests", "errors": {"function_error", "timeout", "crashed", "out_of_memory",
 *    "queue_full", "queue_timeout", "other"}, "throttled", "inflight", "queued", "instances",
 *    "cold_starts", "cpu_ns", "memory_bytes", "memory_peak_bytes",
 *    "latency_us": {"count", "sum", "p50", "p99", "buckets": [32 counts, bucket i =
 *    [2^i, 2^(i+1)) us]}}
 * Counters count since the function was opened in this spored (a restart starts from 0). */
#pragma once

#include <cjson/cJSON.h>

#include "util/buf.h"

struct meter;

/* The Prometheus content type of what metrics_prometheus() writes. */
#define METRICS_PROMETHEUS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends every metric family (HELP, TYPE and one sample per function and label set) to out.
 * -ENOMEM (out then holds part of it). */
struct metrics_codes;
int metrics_prometheus(struct meter *m, struct metrics_codes *codes, struct buf *out);

/* Answers by function, version and HTTP status, for spore_function_requests_total (the BPF stats
 * carry no version or status). Counted in spored's loop, like the meter's own counters. */
struct metrics_codes *metrics_codes_new(void);
struct metrics_codes *metrics_codes_free(struct metrics_codes *c);
/* -ENOMEM (the answer goes uncounted). */
int metrics_codes_count(struct metrics_codes *c, const char *fn, uint32_t version, int status);
/* The function was deleted: its series go. */
void metrics_codes_forget(struct metrics_codes *c, const char *fn);

/* {"bpf", "cpu_hook", "functions": [...]}; NULL on OOM. */
cJSON *metrics_json(struct meter *m);
/* One function's object, as in "functions". -ENOENT: not open; -ENOMEM. */
int metrics_fn_json(struct meter *m, const char *name, cJSON **ret);

/* A Prometheus label value with \, " and newline escaped, appended to out. */
int metrics_append_label_value(struct buf *out, const char *value);
