/* SPDX-License-Identifier: MIT */
/* The scheduler: per function, its instances (starting, idle, busy), a bounded FIFO queue of
 * pending invocations, instance creation through the zygotes, timeouts, crash detection, idle
 * reaping and retirement of instances whose version is no longer wanted. Supervisor only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

struct loop;
struct zygotes;
struct registry;
struct log_store;
struct sched;
struct invocation;

struct cgroup_manager;
struct meter;

struct sched_config {
	/* Sandbox: when cgroups is non-NULL every instance gets a cgroup fn-NAME/ID with the
	 * function's limits before it is told its function, and runs as a per-function uid from
	 * [uid_min, uid_min + uid_count) inside the namespaces its zygote made. */
	struct cgroup_manager *cgroups;
	/* Per-function figures (requests, errors, latency, gauges, cold starts; CPU by cgroup id
	 * with BPF, else from the cgroup files; memory from the cgroup files). NULL: none. */
	struct meter *meter;
	struct metrics_codes *codes; /* answers by function, version, status; NULL: none */
	struct secrets *secrets;     /* given to instances as env, masked in logs; NULL: none */
	/* network "egress" (sandbox/egress.h): set up on first use, named after this string
	 * (the state dir) so that two sporeds do not clash; NULL: refused */
	const char *egress_name;
	uint32_t uid_min, uid_count;
	uint32_t max_instances; /* defaults for what a function's scaling settings leave unset */
	uint32_t max_instances_total; /* all functions together; 0: no cap */
	uint64_t memory_budget_mb;    /* memory_mb of all instances together; 0: no cap */
	uint32_t queue_max;
	uint32_t queue_timeout_ms;
	uint32_t idle_ttl_s;
	uint32_t init_timeout_ms;
};

struct invoke_result {
	int status;          /* HTTP status */
	const char *body;    /* JSON */
	size_t len;
	bool reached;        /* an instance ran it: the X-Spore-* headers apply */
	uint32_t version;
	bool cold;
	uint64_t duration_us;
	const char *request_id;
};

/* Called exactly once per accepted invocation, unless it was cancelled first. It may be called
 * before sched_invoke() returns (when no instance can be started); *ret is set before that. */
typedef void (*invoke_done_fn)(void *userdata, const struct invoke_result *r);

int sched_new(struct loop *l, struct zygotes *z, struct registry *reg, struct log_store *logs,
	      const struct sched_config *cfg, struct sched **ret);
/* Kills every instance; pending invocations are dropped without callbacks. */
struct sched *sched_free(struct sched *s);

/* Queues an invocation of the function's version (0 = the live one). The event is copied.
 * -ENOENT: unknown function or version; -EAGAIN: the queue is full; -ENOMEM. */
int sched_invoke(struct sched *s, const char *function, uint32_t version, const char *event,
		 size_t len, invoke_done_fn fn, void *userdata, struct invocation **ret);
/* The same, and on_start(userdata) is called right before the invocation goes to an instance
 * (never for one answered without reaching an instance). */
int sched_invoke_ex(struct sched *s, const char *function, uint32_t version, const char *event,
		    size_t len, invoke_done_fn fn, void (*on_start)(void *userdata), void *userdata,
		    struct invocation **ret);
/* True once the invocation was handed to an instance. */
bool sched_invocation_started(const struct invocation *inv);
/* The caller lost interest (client gone): no callback will come. */
void sched_invocation_cancel(struct sched *s, struct invocation *inv);

/* The live version or the scaling settings changed: idle instances of other versions are
 * retired, reserved instances (min_instances) started, idle ones above max_instances stopped. */
void sched_function_changed(struct sched *s, const char *function);
/* Instances of all functions (not counting dead ones) and their memory_mb together. */
void sched_totals(const struct sched *s, uint32_t *ret_instances, uint64_t *ret_memory_mb);
/* At start: every function's meter slot and reserved instances. */
void sched_start_reserved(struct sched *s);
/* The function is gone: its instances are killed and pending invocations answered 404. */
void sched_function_deleted(struct sched *s, const char *function);

/* About once a second: stops instances idle past idle_ttl_s. (Queue, start-up and invocation
 * deadlines run on their own timers.) */
void sched_tick(struct sched *s);
/* From spored's child reaper (instances orphaned by a dead zygote come here). */
void sched_child_exited(struct sched *s, pid_t pid, int status);

/* [{"id","pid","version","state","invocations"}] for the function (NULL on OOM). */
cJSON *sched_instances_json(struct sched *s, const char *function);

/* The callbacks the zygote manager must call into this scheduler with. */
struct zygote_callbacks;
const struct zygote_callbacks *sched_zygote_callbacks(struct sched *s, struct zygote_callbacks *cb);
void sched_set_zygotes(struct sched *s, struct zygotes *z);
