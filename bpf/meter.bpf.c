/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/* CPU time per function: charges the CPU time the scheduler accounts to a task to the function
 * whose instance cgroup the task is in. The task's cgroup on the default (v2) hierarchy is looked
 * up in cg_slot (filled by spored as instances start and stop) and the time is added to that
 * slot's cpu_ns in fn_stats. Tasks outside spore's cgroups cost one hash lookup.
 *
 * Two hooks, one loaded (src/meter.c picks; docs/METERING.md has the measurements):
 *   on_runtime  tp_btf/sched_stat_runtime: called from update_curr() with exactly the delta the
 *               kernel charges to the task's cgroups (cpuacct/cpu.stat) right after, at every
 *               tick and scheduling event, so cpu_ns follows a task that never sleeps too.
 *               Since 6.8 it fires for every scheduling class; before that for CFS tasks only.
 *   on_switch   tp_btf/sched_switch: charges the outgoing task's sum_exec_runtime growth since
 *               it was switched in on this CPU. Fewer events, but a task that runs without
 *               being switched out is charged only when it is. The fallback where the first
 *               cannot attach.
 */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "meter.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* max_entries of both maps are set by the loader before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct spore_fn_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fn_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);   /* cgroup id (cgroup v2 inode number) */
	__type(value, __u32); /* slot in fn_stats */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cg_slot SEC(".maps");

/* on_switch only: which task is on this CPU and its sum_exec_runtime when it got there. */
struct oncpu {
	__u64 task;
	__u64 sum_exec_runtime;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct oncpu);
} oncpu SEC(".maps");

static __always_inline void charge(__u64 cgroup_id, __u64 ns)
{
	struct spore_fn_stats *s;
	__u32 *slot;

	slot = bpf_map_lookup_elem(&cg_slot, &cgroup_id);
	if (!slot)
		return;
	s = bpf_map_lookup_elem(&fn_stats, slot);
	if (!s)
		return;
	__sync_fetch_and_add(&s->cpu_ns, ns);
}

/* The id of the task's cgroup on the default hierarchy: what bpf_get_current_cgroup_id() says
 * for current, and name_to_handle_at() for the cgroup's directory. Plain loads through the BTF
 * pointers (the verifier makes them fault-safe), not BPF_CORE_READ(): one probe-read helper
 * call a hop cost ~140 ns more a run on the development VM (docs/METERING.md). */
static __always_inline __u64 task_cgroup_id(struct task_struct *t)
{
	return t->cgroups->dfl_cgrp->kn->id;
}

SEC("tp_btf/sched_stat_runtime")
int BPF_PROG(on_runtime, struct task_struct *p, __u64 runtime)
{
	/* p is not always current (update_curr() also runs for a remote runqueue's task). */
	charge(task_cgroup_id(p), runtime);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 zero = 0;
	struct oncpu *o;

	o = bpf_map_lookup_elem(&oncpu, &zero);
	if (!o)
		return 0;
	/* Skipped for the first switch on each CPU after attaching: we do not know since when. */
	if (o->task == (__u64)prev) {
		__u64 now = prev->se.sum_exec_runtime;

		if (now > o->sum_exec_runtime)
			charge(task_cgroup_id(prev), now - o->sum_exec_runtime);
	}
	o->task = (__u64)next;
	o->sum_exec_runtime = next->se.sum_exec_runtime;
	return 0;
}
