/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/* The per-function figures shared by bpf/meter.bpf.c, spored (src/meter.c, src/metrics.c) and
 * sporectl top. Fixed-width types only; no pointers. One struct spore_fn_stats per function, at
 * the function's slot in the BPF_F_MMAPABLE array map "fn_stats" (or in ordinary memory when BPF
 * could not load).
 *
 * Writers, one per field:
 *   cpu_ns              BPF (atomic adds from any CPU), or spored from the cgroup files in
 *                       fallback mode
 *   everything else     spored's event loop thread, in place through the mmap: no syscall
 * Readers (bpftool, sporectl top, /metrics) may read at any time: every field is an aligned
 * 64-bit word, so a reader sees each counter whole, though not all counters of one instant.
 *
 * Bump SPORE_METER_ABI when the layout changes: readers of the pinned map (sporectl top) check
 * the map's value size against sizeof(struct spore_fn_stats). */
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SPORE_METER_ABI 1

/* 64 characters (the longest function name the API takes) + NUL, rounded up to 8 bytes. */
#define SPORE_FN_NAME_MAX 72
/* Latency histogram: bucket i counts latencies in [2^i, 2^(i+1)) us, 0 us in bucket 0, and the
 * last bucket everything from 2^31 us (~36 min) up. */
#define SPORE_LAT_BUCKETS 32

/* How an invocation ended, when not with a result. The names (spore_err_kind_name()) are the
 * "error" values of spored's error answers, except queue_full and queue_timeout, which clients
 * see as 429 "throttled". */
enum spore_err_kind {
	SPORE_ERR_FUNCTION_ERROR, /* the handler raised or returned an error */
	SPORE_ERR_TIMEOUT,        /* ran past its timeout */
	SPORE_ERR_CRASHED,        /* the instance died during the invocation */
	SPORE_ERR_OUT_OF_MEMORY,  /* ... killed by its memory limit */
	SPORE_ERR_QUEUE_FULL,     /* refused: the queue was full (429) */
	SPORE_ERR_QUEUE_TIMEOUT,  /* waited in the queue past queue_timeout_ms (429) */
	SPORE_ERR_OTHER,          /* anything else (capacity, start-up failure, ...) */
	_SPORE_ERR_MAX,
	_SPORE_ERR_INVALID = -22, /* -EINVAL; errno.h is not available to BPF programs */
};

/* Named fields rather than an array so that bpftool prints the kind with each count. Same
 * order as enum spore_err_kind. */
struct spore_fn_errors {
	__u64 function_error;
	__u64 timeout;
	__u64 crashed;
	__u64 out_of_memory;
	__u64 queue_full;
	__u64 queue_timeout;
	__u64 other;
};

struct spore_fn_stats {
	char name[SPORE_FN_NAME_MAX]; /* NUL-terminated; "" marks a free slot */
	__u64 requests;               /* invocations that ended, whatever the outcome */
	struct spore_fn_errors errors;
	__u64 throttled;      /* refused with 429: errors.queue_full + errors.queue_timeout */
	__u64 inflight;       /* gauge: running on an instance now */
	__u64 queued;         /* gauge: waiting in the function's queue now */
	__u64 instances;      /* gauge: instances started and not yet gone */
	__u64 cold_starts;    /* invocations that had to wait for a new instance */
	__u64 cpu_ns;         /* CPU time of the function's instances */
	__u64 mem_bytes;      /* memory charged to the function's instances now (cgroup) */
	__u64 mem_peak_bytes; /* highest mem_bytes seen (or reported by the cgroup) */
	__u64 lat_sum_us;     /* sum of the latencies counted in lat_us */
	__u64 lat_us[SPORE_LAT_BUCKETS];
};

#ifndef __bpf__
/* The latency (us) below which a fraction q (0..1) of the counted latencies fall, interpolated
 * linearly inside the bucket; 0 when the histogram is empty. For src/metrics.c and sporectl top. */
static inline double spore_lat_quantile_us(const __u64 *buckets, double q)
{
	__u64 total = 0, seen = 0;
	double rank;

	for (unsigned i = 0; i < SPORE_LAT_BUCKETS; i++)
		total += buckets[i];
	if (total == 0)
		return 0;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	rank = q * (double)total;
	for (unsigned i = 0; i < SPORE_LAT_BUCKETS; i++) {
		double lo = i == 0 ? 0 : (double)(1ull << i), hi = (double)(1ull << (i + 1));

		if (buckets[i] == 0)
			continue;
		if ((double)(seen + buckets[i]) >= rank || i == SPORE_LAT_BUCKETS - 1) {
			if (i == SPORE_LAT_BUCKETS - 1)
				return lo; /* open-ended */
			return lo + (hi - lo) * ((rank - (double)seen) / (double)buckets[i]);
		}
		seen += buckets[i];
	}
	return 0; /* not reached */
}

_Static_assert(sizeof(struct spore_fn_stats) % 8 == 0, "fn_stats entries must stay 8-aligned");
_Static_assert(sizeof(struct spore_fn_errors) == _SPORE_ERR_MAX * sizeof(__u64),
	       "one errors field per enum spore_err_kind");
#endif
