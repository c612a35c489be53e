/* SPDX-License-Identifier: MIT */
/* The meter: per-function figures (requests, errors by kind, in-flight, queue, instances, cold
 * starts, CPU, memory, a latency histogram) in one struct spore_fn_stats per function
 * (bpf/meter.h), docs/METERING.md. Supervisor only; not thread-safe: one thread (spored's event
 * loop) calls everything here.
 *
 * With BPF (root, kernel BTF, a kernel that takes the programs) the stats live in the pinned,
 * mmap-able BPF array map <pin_dir>/fn_stats: spored counts requests by writing the mapped
 * memory (the inline helpers below: no syscall on the invoke path), a BPF program adds CPU time
 * by cgroup id, and `bpftool map dump pinned <pin_dir>/fn_stats` shows everything by name. The
 * cgroup id -> slot map is pinned beside it as <pin_dir>/cg_slot.
 *
 * Without BPF (fallback mode) the same structs live in ordinary memory; the caller then feeds
 * CPU time from the cgroup files with meter_fn_set_cpu(). Memory always comes from the cgroup
 * files through meter_fn_set_memory() (docs/METERING.md says why).
 *
 * A slot is a function's index in the stats array, from meter_fn_open() until meter_fn_close().
 * Every instance of the function gets its cgroup id mapped to the slot with meter_cgroup_add()
 * when it starts and unmapped with meter_cgroup_del() when it is gone. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "bpf/meter.h"
#include "util/cleanup.h"

#define METER_PIN_DIR_DEFAULT "/sys/fs/bpf/spore"
#define METER_MAX_FUNCTIONS_DEFAULT 1024u
#define METER_MAX_CGROUPS_DEFAULT 8192u
/* Upper bounds the loader accepts (the stats array is 456 bytes a slot). */
#define METER_MAX_FUNCTIONS_LIMIT 65536u
#define METER_MAX_CGROUPS_LIMIT 1048576u

/* Which scheduler hook charges CPU time (bpf/meter.bpf.c). AUTO: sched_stat_runtime, and
 * sched_switch where that cannot load. The others exist for tests and measurements. */
enum meter_cpu_hook {
	METER_CPU_HOOK_AUTO,
	METER_CPU_HOOK_RUNTIME, /* tp_btf/sched_stat_runtime */
	METER_CPU_HOOK_SWITCH,  /* tp_btf/sched_switch */
	_METER_CPU_HOOK_MAX,
	_METER_CPU_HOOK_INVALID = -EINVAL,
};

struct meter_config {
	const char *pin_dir;    /* NULL: METER_PIN_DIR_DEFAULT; must be on a bpf filesystem */
	bool bpf;               /* false: never try BPF, start in fallback mode */
	uint32_t max_functions; /* slots; 0: METER_MAX_FUNCTIONS_DEFAULT */
	uint32_t max_cgroups;   /* cgroup ids mapped at once; 0: METER_MAX_CGROUPS_DEFAULT */
	enum meter_cpu_hook cpu_hook;
};

struct meter;

/* Creates the meter. With cfg->bpf it loads bpf/meter.bpf.c: mounts bpffs on /sys/fs/bpf if
 * pin_dir is below it and nothing is mounted there, creates pin_dir (0700), removes the pins a
 * dead spored left there, loads and attaches the program and pins fn_stats and cg_slot (with
 * BTF) in pin_dir. One spored per pin_dir: a second one takes the pins over.
 *
 * When BPF cannot be used (no privilege, no kernel BTF, the verifier refuses, bpffs cannot be
 * mounted, built without BPF) meter_new() still succeeds, in fallback mode, and sets
 * *ret_reason (malloc'ed, one line, the cause only, e.g. "cannot load the BPF program
 * on_runtime: Operation not permitted (needs root or CAP_BPF+CAP_PERFMON)", for the caller to
 * log once). *ret_reason is not written with BPF running, with cfg->bpf false (fallback mode on
 * purpose), or when ret_reason is NULL. Fails only with -EINVAL (bad cfg) or -ENOMEM. */
int meter_new(const struct meter_config *cfg, struct meter **ret, char **ret_reason);
/* Detaches the program, unmaps and removes the pins (and pin_dir if empty). NULL is fine. */
struct meter *meter_free(struct meter *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct meter *, meter_free)

bool meter_bpf_active(const struct meter *m);
/* "sched_stat_runtime" or "sched_switch" with BPF, NULL in fallback mode. */
const char *meter_cpu_hook_name(const struct meter *m);
uint32_t meter_max_functions(const struct meter *m);
/* The pin directory in use (BPF mode), else NULL. */
const char *meter_pin_dir(const struct meter *m);

/* Finds name's slot, or takes a free one, zeroes it and writes the name. Opening a name that is
 * already open returns its slot again (no reference count: one meter_fn_close() frees it).
 * -EINVAL: empty name; -ENAMETOOLONG: longer than SPORE_FN_NAME_MAX - 1; -ENOSPC: no free slot. */
int meter_fn_open(struct meter *m, const char *name, uint32_t *ret_slot);
/* Frees the slot: unmaps every cgroup id still mapped to it and zeroes it. */
void meter_fn_close(struct meter *m, uint32_t slot);
/* The slot's stats (in the mmap'ed map or in memory); NULL when slot is out of range. The
 * pointer stays valid until meter_free(). */
struct spore_fn_stats *meter_fn(struct meter *m, uint32_t slot);
/* The slot of an open function, or -ENOENT. */
int meter_fn_find(struct meter *m, const char *name, uint32_t *ret_slot);

/* CPU: map an instance's cgroup (its id on the cgroup v2 hierarchy, meter_cgroup_id()) to the
 * function's slot, and unmap it once the instance is gone. At instance start and stop, not per
 * invocation. -EOPNOTSUPP in fallback mode (use meter_fn_set_cpu() there); -ENOENT: slot not
 * open (add) or id not mapped (del); -E2BIG: max_cgroups ids mapped already. */
int meter_cgroup_add(struct meter *m, uint64_t cgroup_id, uint32_t slot);
int meter_cgroup_del(struct meter *m, uint64_t cgroup_id);
/* The id BPF sees for the cgroup directory at path, which must be on a cgroup2 filesystem (on
 * hybrid hosts: /sys/fs/cgroup/unified/...): -EMEDIUMTYPE otherwise. */
int meter_cgroup_id(const char *cgroup_dir_path, uint64_t *ret);

/* Fallback mode only (ignored while BPF is active): the function's CPU time, summed by the
 * caller from its instances' cgroup files, in ns. */
void meter_fn_set_cpu(struct meter *m, uint32_t slot, uint64_t cpu_ns);
/* Memory charged to the function's instances now, and the highest figure the cgroups report
 * (0 if unknown). mem_peak_bytes keeps the maximum of every cur and peak given. */
void meter_fn_set_memory(struct meter *m, uint32_t slot, uint64_t cur_bytes, uint64_t peak_bytes);

/* "function_error", "timeout", "crashed", "out_of_memory", "queue_full", "queue_timeout",
 * "other"; NULL out of range. */
const char *meter_err_kind_to_string(enum spore_err_kind k);
/* The reverse; spored's other error names ("capacity", ...) give SPORE_ERR_OTHER, NULL gives
 * _SPORE_ERR_INVALID. */
enum spore_err_kind meter_err_kind_from_string(const char *s);

/* ---- the invoke path: inline, no syscall ---------------------------------------------------
 * Single writer (the event loop); the relaxed atomics only keep each 64-bit store whole for the
 * readers in other processes (bpftool, sporectl top). */

#define METER_OK (-1) /* meter_count_request(): no error */

static inline void meter_set_(__u64 *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline void meter_add_(__u64 *p, uint64_t n)
{
	meter_set_(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n);
}

/* Gauges never go below 0, even when a caller's bookkeeping does. */
static inline void meter_sub_(__u64 *p, uint64_t n)
{
	uint64_t v = __atomic_load_n(p, __ATOMIC_RELAXED);

	meter_set_(p, v > n ? v - n : 0);
}

static inline unsigned meter_lat_bucket(uint64_t latency_us)
{
	unsigned b = latency_us ? 63u - (unsigned)__builtin_clzll(latency_us) : 0u;

	return b < SPORE_LAT_BUCKETS ? b : SPORE_LAT_BUCKETS - 1;
}

/* One invocation ended: error_kind is METER_OK or an enum spore_err_kind (any other value counts
 * as SPORE_ERR_OTHER); queue_full and queue_timeout count as throttled too. latency_us goes into
 * the histogram (for a refused request: the time until it was refused). */
static inline void meter_count_request(struct spore_fn_stats *s, int error_kind,
				       uint64_t latency_us)
{
	meter_add_(&s->requests, 1);
	if (error_kind != METER_OK) {
		__u64 *e;

		switch (error_kind) {
		case SPORE_ERR_FUNCTION_ERROR:
			e = &s->errors.function_error;
			break;
		case SPORE_ERR_TIMEOUT:
			e = &s->errors.timeout;
			break;
		case SPORE_ERR_CRASHED:
			e = &s->errors.crashed;
			break;
		case SPORE_ERR_OUT_OF_MEMORY:
			e = &s->errors.out_of_memory;
			break;
		case SPORE_ERR_QUEUE_FULL:
			e = &s->errors.queue_full;
			meter_add_(&s->throttled, 1);
			break;
		case SPORE_ERR_QUEUE_TIMEOUT:
			e = &s->errors.queue_timeout;
			meter_add_(&s->throttled, 1);
			break;
		default:
			e = &s->errors.other;
			break;
		}
		meter_add_(e, 1);
	}
	meter_add_(&s->lat_sum_us, latency_us);
	meter_add_(&s->lat_us[meter_lat_bucket(latency_us)], 1);
}

static inline void meter_count_cold_start(struct spore_fn_stats *s)
{
	meter_add_(&s->cold_starts, 1);
}

/* Gauges: +1/-1 as invocations start and finish, enter and leave the queue, and as instances
 * come and go; or set them outright. */
static inline void meter_inflight_add(struct spore_fn_stats *s, int d)
{
	d >= 0 ? meter_add_(&s->inflight, (uint64_t)d)
	       : meter_sub_(&s->inflight, (uint64_t)-(int64_t)d);
}

static inline void meter_queued_add(struct spore_fn_stats *s, int d)
{
	d >= 0 ? meter_add_(&s->queued, (uint64_t)d)
	       : meter_sub_(&s->queued, (uint64_t)-(int64_t)d);
}

static inline void meter_instances_add(struct spore_fn_stats *s, int d)
{
	d >= 0 ? meter_add_(&s->instances, (uint64_t)d)
	       : meter_sub_(&s->instances, (uint64_t)-(int64_t)d);
}

static inline void meter_set_gauges(struct spore_fn_stats *s, uint64_t inflight, uint64_t queued,
				    uint64_t instances)
{
	meter_set_(&s->inflight, inflight);
	meter_set_(&s->queued, queued);
	meter_set_(&s->instances, instances);
}
