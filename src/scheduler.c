/* SPDX-License-Identifier: MIT */
#include "scheduler.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <math.h>

#include "logs.h"
#include "loop.h"
#include "proto.h"
#include "registry.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/codec.h"
#include "util/log.h"
#include "util/json.h"
#include "zygotes.h"
#include "cgroup.h"
#include "meter.h"
#include "metrics.h"
#include "secrets.h"
#include "egress.h"

#define SCALE_BUCKETS 6 /* the autoscaler's stable window, in seconds */

/* How long a dead instance's channel waits for its exit status before we answer anyway. */
#define EXIT_STATUS_WAIT_US (1000u * 1000u)
#define LOG_LINE_MAX 16384

enum inst_state {
	INSTANCE_STARTING,
	INSTANCE_IDLE,
	INSTANCE_BUSY,
	INSTANCE_DEAD, /* channel gone or killed; waiting for the exit status */
};

static const char *const inst_state_names[] = {
	[INSTANCE_STARTING] = "starting",
	[INSTANCE_IDLE] = "idle",
	[INSTANCE_BUSY] = "busy",
	[INSTANCE_DEAD] = "stopping",
};

struct fn_state;

struct pipe_reader {
	struct instance *inst;
	int fd;
	uint64_t token;
	const char *stream;
	struct buf line;
	struct loop_timer more; /* a chatty function's output is read in slices, one per turn */
};

/* Bytes of a function's output read per loop turn, so one function cannot stall spored. */
#define PIPE_SLICE (256u * 1024u)

struct instance {
	struct sched *s;
	struct fn_state *fn;
	char id[20];
	uint32_t version;
	uint32_t timeout_ms;
	char runtime[16];
	struct cgroup_limits limits;
	char cgroup[112]; /* "fn-NAME/ID" once created (v2: "pool-RT/i-..." when cloned there) */
	char v2cgroup[112]; /* hybrid host: the unified-tree cgroup it was cloned into, else "" */
	uint64_t cgroup_id; /* its v2 cgroup id, mapped to the function in the meter; 0: none */
	bool egress;                 /* network "egress": INIT waits for its veth pair */
	struct egress_lease *lease;  /* its share of the egress pool, once attached */
	char *init_json;  /* INST_INIT, sent once the instance is in its cgroup */
	/* Sandbox: sent with INST_INIT (SCM_RIGHTS), in this order: the code as a detached mount,
	 * then the v1 tasks files of its cgroups, opened here (its spare pivot_rooted ahead of
	 * demand: the host's paths are out of its reach). */
	int init_fds[1 + 8]; /* the code, and a tasks file per hierarchy (CG_HIERARCHY_MAX) */
	size_t n_init_fds;
	bool self_attach; /* the instance moves itself into its cgroup (INIT's cgroup_tasks) */
	pid_t pid;
	uint64_t spawn_token;
	enum inst_state state;
	uint64_t invocations;
	uint64_t idle_since_us;
	uint64_t started_us;
	uint64_t ready_us; /* when it became ready; 0 once its first invocation was dispatched */
	/* Its cgroup's figures as last read by fn_meter_tick(); metered: read at least once. */
	uint64_t m_mem, m_peak, m_cpu_ns;
	bool metered;

	int chan;
	uint64_t chan_token;
	uint64_t chan_out_token;
	bool chan_out_armed;
	struct buf in;
	struct buf out;

	struct pipe_reader pipes[2];

	struct invocation *current;
	struct loop_timer timer; /* start-up or invocation deadline, then exit-status wait */
	bool timed_out;
	bool retiring;
	bool have_status;
	int status;

	struct instance *prev, *next;
};

struct invocation {
	struct sched *s;
	struct fn_state *fn;
	uint32_t version;
	char request_id[40];
	char *event;
	size_t len;
	invoke_done_fn done;
	void (*on_start)(void *userdata); /* right before it goes to an instance; may be NULL */
	void *userdata;
	uint64_t enqueued_us;
	uint64_t started_us;
	struct instance *inst;
	bool queued;
	int meter_kind; /* enum spore_err_kind + 1 where the answer's kind does not tell; 0 */
	bool cold; /* it waited for a new instance to start */
	struct loop_timer queue_timer; /* queue_timeout_ms after it was queued */
	struct invocation *prev, *next;
};

struct fn_state {
	struct sched *s;
	char *name;
	uint32_t uid; /* sandbox uid and gid */
	struct instance *instances;
	size_t n_instances; /* not counting DEAD ones */
	struct invocation *q_head, *q_tail;
	size_t q_len;
	bool pumping, pump_again;
	struct spore_fn_stats *stats; /* the meter's slot for this function, NULL without one */
	uint32_t slot;
	uint64_t cpu_gone_ns; /* fallback CPU figure: what instances now gone had used */
	/* The autoscaler: concurrency (running + queued), integrated over time in one-second
	 * buckets at every change; the stable window is all of them, the panic window the last
	 * one or two. */
	double conc_bucket[SCALE_BUCKETS]; /* concurrency x microseconds */
	unsigned conc_bi;
	uint64_t conc_bucket_start_us;
	uint32_t conc_now;
	uint64_t conc_at_us;
	uint64_t panic_until_us;
	uint64_t cpu_seen_ns, cpu_seen_at_us; /* for the CPU-bound scale-out */
	uint64_t meter_turn; /* fn_meter_tick(): which slice of the instances is read this tick */
	/* v1 hierarchies: the cgroup of this function's next instance, made ahead of demand by
	 * fn_pre_cgroup() with the live version's limits, so that a cold start does not make one
	 * (8 mkdir and the limits in four hierarchies: ~0.3 ms of the path). Kept while the
	 * function was deployed or started an instance within PRE_CGROUP_KEEP_US. */
	struct {
		bool ready;
		uint64_t token; /* the instance's spawn token and, through it, its id */
		char id[20];
		struct cgroup_limits limits;
		char **tasks; /* its v1 tasks files, for the instance to move itself in */
		int task_fds[8]; /* the same, opened (sent with INST_INIT); n_task_fds of them */
		size_t n_task_fds;
		uint64_t wanted_until_us;
	} pre;
	struct fn_state *next;
};

#define PRE_CGROUP_KEEP_US (3600ull * 1000000ull)
/* Cgroups made ahead of demand per tick, at most: a tick after many deploys stays short. */
#define PRE_CGROUPS_PER_TICK 16

/* A cgroup that could not be removed yet (processes on their way out). */
struct grave {
	char *path;
	bool kill; /* an instance's own cgroup: kill what is left; a function's: only rmdir */
	uint64_t deadline_us;
	struct grave *next;
};

struct sched {
	struct loop *loop;
	struct grave *graves, **graves_tail; /* removal retried in order: children first */
	struct loop_timer grave_timer;
	struct zygotes *zygotes;
	struct registry *reg;
	struct log_store *logs;
	struct sched_config cfg;
	struct fn_state *fns;
	uint64_t next_token;
	uint32_t next_uid;
	struct egress *egress; /* made on the first instance with network "egress" */
	uint32_t n_instances; /* all functions, not counting dead ones */
	uint64_t memory_mb;   /* their memory_mb together */
};

/* A function's scaling settings as in force: its own, else spored's defaults. */
struct eff_scaling {
	uint32_t min, max, ttl_s, queue_max, queue_timeout_ms;
	double target;
};

#define STABLE_WINDOW_US ((double)SCALE_BUCKETS * 1e6)

static struct eff_scaling fn_eff(const struct fn_state *fn)
{
	const struct sched *s = fn->s;
	const struct fn_record *rec = registry_find(s->reg, fn->name);
	static const struct fn_scaling none = { 0 };
	const struct fn_scaling *sc = rec ? &rec->scaling : &none;
	struct eff_scaling e = {
		.min = sc->min_instances,
		.max = sc->max_instances ? sc->max_instances : s->cfg.max_instances,
		.ttl_s = sc->idle_ttl_s ? sc->idle_ttl_s : s->cfg.idle_ttl_s,
		.queue_max = sc->queue_max ? sc->queue_max : s->cfg.queue_max,
		.queue_timeout_ms = sc->queue_timeout_ms ? sc->queue_timeout_ms
							 : s->cfg.queue_timeout_ms,
		.target = sc->target_concurrency > 0 ? sc->target_concurrency : 1.0,
	};
	if (e.min > e.max)
		e.min = e.max;
	return e;
}

static void fn_pump(struct fn_state *fn);
static void instance_kill(struct instance *inst);
static void instance_finalize(struct instance *inst);

/* --- helpers ------------------------------------------------------------------------------- */

/* Request ids are drawn from the kernel's random pool 4 KiB at a time: one getrandom() per 256
 * invocations instead of one each (a syscall per request showed in the warm-path profile,
 * docs/BENCHMARKS.md). The bytes are the same kind; each is used once. */
static int random_bytes(unsigned char *b, size_t n)
{
	static unsigned char pool[4096];
	static size_t off = sizeof(pool);

	if (n > sizeof(pool))
		return -EINVAL;
	if (sizeof(pool) - off < n) {
		if (getrandom(pool, sizeof(pool), GRND_NONBLOCK) != (ssize_t)sizeof(pool))
			return -EAGAIN;
		off = 0;
	}
	memcpy(b, pool + off, n);
	explicit_bzero(pool + off, n);
	off += n;
	return 0;
}

static void make_uuid(char out[40])
{
	unsigned char b[16];
	if (random_bytes(b, sizeof(b)) < 0) {
		uint64_t t = now_us();
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)(t >> (i % 8 * 8)) ^ (unsigned char)(i * 37);
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	uuid_format(b, out);
}

static char *error_body(const char *kind, const char *fmt, ...) _printf_(2, 3);
static char *error_body(const char *kind, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cJSON *j = cJSON_CreateObject();
	if (!j)
		return NULL;
	cJSON_AddStringToObject(j, "error", kind);
	cJSON_AddStringToObject(j, "message", msg);
	char *s = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return s;
}

/* The body of a function_error from the instance's {"errorType","errorMessage","stackTrace"}. */
static char *function_error_body(const char *payload, size_t len, const char *prefix)
{
	cJSON *e = cJSON_ParseWithLength(payload, len);
	cJSON *j = cJSON_CreateObject();
	if (!j) {
		cJSON_Delete(e);
		return NULL;
	}
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(e, "errorType"));
	const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(e, "errorMessage"));
	char m[2048];
	snprintf(m, sizeof(m), "%s%s: %s", prefix, type ?: "Error", msg ?: "");
	cJSON_AddStringToObject(j, "error", "function_error");
	cJSON_AddStringToObject(j, "message", m);
	cJSON_AddStringToObject(j, "errorType", type ?: "Error");
	cJSON_AddStringToObject(j, "errorMessage", msg ?: "");
	cJSON *st = cJSON_DetachItemFromObject(e, "stackTrace");
	if (!st)
		st = cJSON_CreateArray();
	cJSON_AddItemToObject(j, "stackTrace", st);
	cJSON_Delete(e);
	char *s = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return s;
}

static void describe_status(int status, char *out, size_t n)
{
	if (WIFSIGNALED(status))
		snprintf(out, n, "was killed by signal %d (SIG%s)", WTERMSIG(status),
			 sigabbrev_np(WTERMSIG(status)) ?: "?");
	else if (WIFEXITED(status))
		snprintf(out, n, "exited with code %d", WEXITSTATUS(status));
	else
		snprintf(out, n, "ended (status 0x%x)", (unsigned)status);
}

/* --- invocations --------------------------------------------------------------------------- */

static void queue_remove(struct fn_state *fn, struct invocation *inv)
{
	if (!inv->queued)
		return;
	loop_timer_stop(inv->s->loop, &inv->queue_timer);
	if (inv->prev)
		inv->prev->next = inv->next;
	else
		fn->q_head = inv->next;
	if (inv->next)
		inv->next->prev = inv->prev;
	else
		fn->q_tail = inv->prev;
	inv->prev = inv->next = NULL;
	inv->queued = false;
	fn->q_len--;
}

static void invocation_free(struct invocation *inv)
{
	free(inv->event);
	free(inv);
}

/* --- meter --------------------------------------------------------------------------------- */

/* The error kind of an answer, for the meter: the "error" member error_body() puts first. */
static int meter_kind(int status, const char *body, size_t len)
{
	static const char prefix[] = "{\"error\":\"";
	if (status < 400)
		return METER_OK;
	if (!body || len <= sizeof(prefix) - 1 || memcmp(body, prefix, sizeof(prefix) - 1) != 0)
		return SPORE_ERR_OTHER;
	const char *k = body + sizeof(prefix) - 1;
	const char *e = memchr(k, '"', len - (sizeof(prefix) - 1));
	char kind[32];
	if (!e || (size_t)(e - k) >= sizeof(kind))
		return SPORE_ERR_OTHER;
	memcpy(kind, k, (size_t)(e - k));
	kind[e - k] = 0;
	enum spore_err_kind r = meter_err_kind_from_string(kind);
	return r < 0 ? SPORE_ERR_OTHER : (int)r;
}

/* The gauges, recomputed from the scheduler's own state after every change of it. */
static void fn_gauges(struct fn_state *fn)
{
	if (!fn->stats)
		return;
	uint64_t busy = 0;
	for (struct instance *i = fn->instances; i; i = i->next)
		busy += i->state == INSTANCE_BUSY && i->current;
	meter_set_gauges(fn->stats, busy, fn->q_len, fn->n_instances);
}

/* Folds the concurrency since the last change into the windows, then takes the new one. */
static void fn_conc_update(struct fn_state *fn)
{
	uint64_t now = now_us();
	if (!fn->conc_at_us)
		fn->conc_at_us = fn->conc_bucket_start_us = now;
	if (now - fn->conc_bucket_start_us > (uint64_t)(2 * SCALE_BUCKETS) * 1000000u) {
		/* Long quiet: every bucket holds the same level. */
		for (unsigned i = 0; i < SCALE_BUCKETS; i++)
			fn->conc_bucket[i] = fn->conc_now * 1e6;
		fn->conc_bucket_start_us = now - (now - fn->conc_bucket_start_us) % 1000000u;
		fn->conc_bucket[fn->conc_bi] = fn->conc_now * (double)(now - fn->conc_bucket_start_us);
		fn->conc_at_us = now;
	}
	while (fn->conc_at_us < now) {
		uint64_t end = fn->conc_bucket_start_us + 1000000u;
		uint64_t until = now < end ? now : end;
		fn->conc_bucket[fn->conc_bi] += fn->conc_now * (double)(until - fn->conc_at_us);
		fn->conc_at_us = until;
		if (until == end) {
			fn->conc_bi = (fn->conc_bi + 1) % SCALE_BUCKETS;
			fn->conc_bucket[fn->conc_bi] = 0;
			fn->conc_bucket_start_us = end;
		}
	}
	uint32_t busy = 0;
	for (struct instance *i = fn->instances; i; i = i->next)
		busy += i->state == INSTANCE_BUSY && i->current;
	fn->conc_now = busy + (uint32_t)fn->q_len;
}

/* Answers and frees an invocation (already off the queue and off its instance). */
static void invocation_complete(struct invocation *inv, int status, const char *body, size_t len,
				struct instance *inst)
{
	(void)metrics_codes_count(inv->s->cfg.codes, inv->fn->name,
				  inst ? inst->version : inv->version, status);
	if (inv->fn->stats) {
		int kind = inv->meter_kind ? inv->meter_kind - 1 : meter_kind(status, body, len);
		meter_count_request(inv->fn->stats, kind, now_us() - inv->enqueued_us);
		if (inv->cold)
			meter_count_cold_start(inv->fn->stats);
	}
	if (inv->done) {
		struct invoke_result r = {
			.status = status,
			.body = body ?: "",
			.len = body ? len : 0,
			.reached = inst != NULL,
			.version = inst ? inst->version : inv->version,
			.cold = inv->cold,
			.duration_us = inv->started_us ? now_us() - inv->started_us : 0,
			.request_id = inv->request_id,
		};
		inv->done(inv->userdata, &r);
	}
	struct fn_state *fn = inv->fn;
	invocation_free(inv);
	fn_gauges(fn);
	fn_conc_update(fn);
}

static void invocation_fail(struct invocation *inv, int status, char *body)
{
	/* Takes body. */
	invocation_complete(inv, status, body, body ? strlen(body) : 0, NULL);
	free(body);
}

/* --- instance channel ---------------------------------------------------------------------- */

static void chan_flush(struct instance *inst);

static void on_chan_writable(void *ud, int res, uint32_t flags)
{
	struct instance *inst = ud;
	(void)flags;
	inst->chan_out_armed = false;
	if (res < 0 && res != -ECANCELED)
		return;
	chan_flush(inst);
}

static void instance_init_fds_close(struct instance *inst)
{
	for (size_t i = 0; i < inst->n_init_fds; i++)
		safe_close(inst->init_fds[i]);
	inst->n_init_fds = 0;
}

/* send(), or, while INST_INIT's fds are still ours, sendmsg() with them attached (SCM_RIGHTS:
 * they go with the first byte, INST_INIT's). */
static ssize_t chan_send_some(struct instance *inst)
{
	if (inst->n_init_fds == 0)
		return send(inst->chan, inst->out.data, inst->out.len, MSG_DONTWAIT | MSG_NOSIGNAL);
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(inst->init_fds))];
	} u;
	memset(&u, 0, sizeof(u));
	struct iovec iov = { .iov_base = inst->out.data, .iov_len = inst->out.len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			     .msg_controllen = CMSG_SPACE(inst->n_init_fds * sizeof(int)) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(inst->n_init_fds * sizeof(int));
	memcpy(CMSG_DATA(c), inst->init_fds, inst->n_init_fds * sizeof(int));
	ssize_t n = sendmsg(inst->chan, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n > 0)
		instance_init_fds_close(inst);
	return n;
}

static void chan_flush(struct instance *inst)
{
	while (inst->out.len > 0 && inst->chan >= 0) {
		ssize_t n = chan_send_some(inst);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				if (!inst->chan_out_armed) {
					struct io_uring_sqe *sqe =
						loop_sqe(inst->s->loop, inst->chan_out_token);
					if (sqe) {
						io_uring_prep_poll_add(sqe, inst->chan, POLLOUT);
						inst->chan_out_armed = true;
					}
				}
				return;
			}
			/* The instance is gone; the read side will see it. */
			buf_reset(&inst->out);
			return;
		}
		buf_consume(&inst->out, (size_t)n);
	}
}

static int chan_send(struct instance *inst, uint32_t type, const void *a, size_t alen,
		     const void *b, size_t blen)
{
	struct proto_frame f = { .type = type, .len = (uint32_t)(alen + blen) };
	int r = buf_append(&inst->out, &f, sizeof(f));
	if (r >= 0)
		r = buf_append(&inst->out, a, alen);
	if (r >= 0)
		r = buf_append(&inst->out, b, blen);
	if (r < 0)
		return r;
	chan_flush(inst);
	return 0;
}

static void instance_set_idle(struct instance *inst)
{
	inst->state = INSTANCE_IDLE;
	inst->idle_since_us = now_us();
	loop_timer_stop(inst->s->loop, &inst->timer);
}

static void instance_dispatch(struct instance *inst, struct invocation *inv)
{
	/* Cold: the invocation was waiting when this new instance became ready. A reserved or
	 * pre-warmed instance that was ready before it came is warm. */
	inv->cold = inst->ready_us && inv->enqueued_us <= inst->ready_us;
	inst->ready_us = 0;
	if (inv->on_start)
		inv->on_start(inv->userdata);
	struct sched *s = inst->s;
	inv->inst = inst;
	inv->started_us = now_us();
	inst->current = inv;
	inst->state = INSTANCE_BUSY;
	inst->invocations++;
	struct proto_invoke pi = { .deadline_ms = realtime_us() / 1000 + inst->timeout_ms };
	memcpy(pi.request_id, inv->request_id, sizeof(pi.request_id));
	int r = chan_send(inst, INST_INVOKE, &pi, sizeof(pi), inv->event, inv->len);
	(void)loop_timer_start(s->loop, &inst->timer, now_us() + (uint64_t)inst->timeout_ms * 1000u);
	if (r < 0) {
		inst->current = NULL;
		invocation_fail(inv, 500, error_body("internal", "out of memory"));
		instance_kill(inst);
	}
}

static void fail_queued_version(struct fn_state *fn, uint32_t version, int status,
				const char *body)
{
	for (struct invocation *inv = fn->q_head, *next; inv; inv = next) {
		next = inv->next;
		if (inv->version != version)
			continue;
		queue_remove(fn, inv);
		invocation_complete(inv, status, body, strlen(body), NULL);
	}
}

static void handle_frame(struct instance *inst, uint32_t type, const char *p, size_t len)
{
	struct fn_state *fn = inst->fn;
	switch (type) {
	case INST_READY:
		if (inst->state != INSTANCE_STARTING)
			break;
		log_debug("sched: instance %s of '%s' v%u ready in %.2f ms", inst->id, fn->name,
			  inst->version, (double)(now_us() - inst->started_us) / 1000.0);
		instance_set_idle(inst);
		inst->ready_us = now_us();
		fn_pump(fn);
		break;
	case INST_INIT_ERROR: {
		if (inst->state != INSTANCE_STARTING)
			break;
		_cleanup_free_ char *body = function_error_body(p, len, "initialisation failed: ");
		log_info("sched: instance %s of '%s' v%u failed to initialise", inst->id, fn->name,
			 inst->version);
		inst->retiring = true;
		if (body)
			fail_queued_version(fn, inst->version, 500, body);
		instance_kill(inst);
		break;
	}
	case INST_RESULT:
	case INST_ERROR: {
		struct invocation *inv = inst->current;
		if (inst->state != INSTANCE_BUSY || !inv)
			break;
		inst->current = NULL;
		instance_set_idle(inst);
		if (type == INST_RESULT) {
			invocation_complete(inv, 200, len ? p : "null", len ? len : 4, inst);
		} else {
			_cleanup_free_ char *body = function_error_body(p, len, "");
			invocation_complete(inv, 500, body ?: "{}", body ? strlen(body) : 2, inst);
		}
		fn_pump(fn);
		break;
	}
	default:
		log_warning("sched: instance %s sent unknown frame type %u; killing it", inst->id,
			    type);
		instance_kill(inst);
	}
}

static void on_chan(void *ud, int res, uint32_t flags)
{
	struct instance *inst = ud;
	(void)flags;
	if (res < 0 && res != -ECANCELED) {
		instance_kill(inst);
		return;
	}
	for (;;) {
		if (buf_reserve(&inst->in, 65536) < 0) {
			instance_kill(inst);
			return;
		}
		ssize_t n = recv(inst->chan, inst->in.data + inst->in.len, 65536, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			instance_kill(inst);
			return;
		}
		if (n == 0) {
			/* The instance closed its end: it died or is dying. */
			instance_kill(inst);
			return;
		}
		/* A short read emptied the socket: whatever comes next wakes the poll again, so
		 * the loop ends after the frames below instead of with a recv() that says EAGAIN
		 * (one syscall per invocation, docs/BENCHMARKS.md). Not when the poll saw a hang-up:
		 * then we read on to the end of the stream. */
		bool drained = (size_t)n < 65536 && res >= 0 &&
			       !(res & (POLLRDHUP | POLLHUP | POLLERR));
		inst->in.len += (size_t)n;
		size_t off = 0;
		while (inst->in.len - off >= sizeof(struct proto_frame)) {
			struct proto_frame f;
			memcpy(&f, inst->in.data + off, sizeof(f));
			if (f.len > PROTO_MAX_FRAME) {
				log_warning("sched: instance %s sent a %u byte frame; killing it",
					    inst->id, f.len);
				instance_kill(inst);
				return;
			}
			if (inst->in.len - off - sizeof(f) < f.len)
				break;
			handle_frame(inst, f.type, inst->in.data + off + sizeof(f), f.len);
			off += sizeof(f) + f.len;
			if (inst->state == INSTANCE_DEAD)
				return;
		}
		buf_consume(&inst->in, off);
		if (drained)
			break;
	}
}

/* --- logs from the instance's stdout/stderr ------------------------------------------------ */

static void pipe_emit(struct pipe_reader *pr, const char *line, size_t len)
{
	struct instance *inst = pr->inst;
	size_t mlen = 0;
	_cleanup_free_ char *masked =
		secrets_mask(inst->s->cfg.secrets, inst->fn->name, line, len, &mlen);
	int r = log_store_append(inst->s->logs, inst->fn->name, inst->version, inst->id, pr->stream,
				 masked ?: line, masked ? mlen : len);
	if (r < 0)
		log_warning_errno(r, "sched: failed to write log of '%s': %m, ignoring",
				  inst->fn->name);
}

static void pipe_drain(struct pipe_reader *pr, bool final)
{
	char buf[16384];
	size_t budget = final ? SIZE_MAX : PIPE_SLICE;
	for (;;) {
		if (budget < sizeof(buf)) {
			/* More may be waiting: continue on the next turn (a multishot poll does not
			 * fire again for data that is already there). */
			(void)loop_timer_start(pr->inst->s->loop, &pr->more, 0);
			return;
		}
		ssize_t n = read(pr->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0)
			budget -= (size_t)n;
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN)) {
				final = true;
				loop_op_free(pr->inst->s->loop, pr->token, NULL);
				pr->token = 0;
				pr->fd = safe_close(pr->fd);
			}
			break;
		}
		size_t start = 0;
		for (size_t i = 0; i < (size_t)n; i++) {
			if (buf[i] != '\n')
				continue;
			if (pr->line.len > 0) {
				(void)buf_append(&pr->line, buf + start, i - start);
				pipe_emit(pr, pr->line.data, pr->line.len);
				buf_reset(&pr->line);
			} else
				pipe_emit(pr, buf + start, i - start);
			start = i + 1;
		}
		(void)buf_append(&pr->line, buf + start, (size_t)n - start);
		if (pr->line.len >= LOG_LINE_MAX) {
			pipe_emit(pr, pr->line.data, pr->line.len);
			buf_reset(&pr->line);
		}
	}
	if (final && pr->line.len > 0) {
		pipe_emit(pr, pr->line.data, pr->line.len);
		buf_reset(&pr->line);
	}
}

static void on_pipe_more(struct loop_timer *t)
{
	struct pipe_reader *pr = (struct pipe_reader *)((char *)t - offsetof(struct pipe_reader, more));
	if (pr->fd >= 0)
		pipe_drain(pr, false);
}

static void on_pipe(void *ud, int res, uint32_t flags)
{
	struct pipe_reader *pr = ud;
	(void)flags;
	(void)res;
	pipe_drain(pr, false);
}

/* --- instance lifecycle -------------------------------------------------------------------- */

static void instance_unlink(struct instance *inst)
{
	struct fn_state *fn = inst->fn;
	if (inst->prev)
		inst->prev->next = inst->next;
	else
		fn->instances = inst->next;
	if (inst->next)
		inst->next->prev = inst->prev;
}

#define GRAVE_RETRY_US (20u * 1000u)
#define GRAVE_GIVE_UP_US (10u * 1000000u)

/* Removes a cgroup whose processes were just killed. The loop never waits for them to go: while
 * the removal fails with EBUSY it is retried from a timer (in order, so children before their
 * parent), and given up with a warning after GRAVE_GIVE_UP_US (the next spored's start-up
 * cleanup removes it then). */
static void cgroup_bury(struct sched *s, const char *path, bool kill)
{
	struct cgroup_manager *cg = s->cfg.cgroups;
	int r = s->graves ? -EBUSY : cgroup_remove(cg, path);
	if (r != -EBUSY) {
		if (r < 0)
			log_warning_errno(r, "sched: cannot remove cgroup '%s': %m, ignoring", path);
		return;
	}
	struct grave *g = calloc(1, sizeof(*g));
	if (g && !(g->path = strdup(path))) {
		free(g);
		g = NULL;
	}
	if (!g) {
		log_warning("sched: out of memory; cgroup '%s' is left for the next start", path);
		return;
	}
	g->deadline_us = now_us() + GRAVE_GIVE_UP_US;
	g->kill = kill;
	*s->graves_tail = g;
	s->graves_tail = &g->next;
	if (!loop_timer_armed(&s->grave_timer))
		(void)loop_timer_start(s->loop, &s->grave_timer, now_us() + GRAVE_RETRY_US);
}

static void on_grave_timer(struct loop_timer *t)
{
	struct sched *s = (struct sched *)((char *)t - offsetof(struct sched, grave_timer));
	uint64_t now = now_us();
	while (s->graves) {
		struct grave *g = s->graves;
		/* A function's cgroup may be in use again by now (a new deploy of the name): only
		 * an instance's own cgroup is ever killed. */
		if (g->kill)
			(void)cgroup_kill_nowait(s->cfg.cgroups, g->path);
		int r = cgroup_remove(s->cfg.cgroups, g->path);
		if (r == -EBUSY && now < g->deadline_us)
			break;
		if (r < 0)
			log_warning_errno(r, "sched: cannot remove cgroup '%s': %m, leaving it for the "
					  "next start", g->path);
		s->graves = g->next;
		free(g->path);
		free(g);
	}
	if (!s->graves)
		s->graves_tail = &s->graves;
	else
		(void)loop_timer_start(s->loop, &s->grave_timer, now + GRAVE_RETRY_US);
}

/* Kills whatever is left in the instance's cgroups and removes them. */
static void instance_cgroup_cleanup(struct instance *inst)
{
	struct cgroup_manager *cg = inst->s->cfg.cgroups;
	if (!cg)
		return;
	struct meter *meter = inst->s->cfg.meter;
	if (meter && inst->cgroup_id) {
		(void)meter_cgroup_del(meter, inst->cgroup_id);
		inst->cgroup_id = 0;
	}
	uint64_t cpu;
	if (meter && !meter_bpf_active(meter) && inst->cgroup[0] &&
	    cgroup_cpu_usage_ns(cg, inst->cgroup, &cpu) >= 0)
		inst->fn->cpu_gone_ns += cpu;
	char *paths[] = { inst->cgroup, inst->v2cgroup };
	for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
		if (!paths[i][0])
			continue;
		int r = cgroup_kill_nowait(cg, paths[i]);
		if (r < 0 && r != -ENOENT)
			log_warning_errno(r, "sched: cannot kill cgroup '%s': %m, ignoring", paths[i]);
		cgroup_bury(inst->s, paths[i], true);
		paths[i][0] = 0;
	}
}

static void instance_release(struct instance *inst)
{
	struct loop *l = inst->s->loop;
	if (inst->lease) {
		int k = egress_release(inst->s->egress, inst->lease);
		if (k < 0)
			log_warning_errno(k, "sched: cannot take down the egress of instance %s: %m",
					  inst->id);
		inst->lease = NULL;
	}
	instance_cgroup_cleanup(inst);
	free(inst->init_json);
	instance_init_fds_close(inst);
	loop_timer_stop(l, &inst->timer);
	loop_op_free(l, inst->chan_token, NULL);
	loop_op_free(l, inst->chan_out_token, NULL);
	inst->chan = safe_close(inst->chan);
	for (int i = 0; i < 2; i++) {
		struct pipe_reader *pr = &inst->pipes[i];
		loop_timer_stop(l, &pr->more);
		if (pr->fd >= 0)
			pipe_drain(pr, true);
		loop_op_free(l, pr->token, NULL);
		pr->fd = safe_close(pr->fd);
		buf_done(&pr->line);
	}
	buf_done(&inst->in);
	buf_done(&inst->out);
	free(inst);
}

static void on_instance_timer(struct loop_timer *t)
{
	struct instance *inst = (struct instance *)((char *)t - offsetof(struct instance, timer));
	struct fn_state *fn = inst->fn;
	switch (inst->state) {
	case INSTANCE_STARTING: {
		log_warning("sched: instance %s of '%s' v%u did not start within %u ms; killing it",
			    inst->id, fn->name, inst->version, inst->s->cfg.init_timeout_ms);
		_cleanup_free_ char *body = error_body(
			"unavailable", "an instance of '%s' version %u did not start within %u ms",
			fn->name, inst->version, inst->s->cfg.init_timeout_ms);
		inst->retiring = true;
		if (body)
			fail_queued_version(fn, inst->version, 503, body);
		instance_kill(inst);
		break;
	}
	case INSTANCE_BUSY: {
		struct invocation *inv = inst->current;
		inst->current = NULL;
		inst->timed_out = true;
		log_info("sched: invocation %s of '%s' v%u timed out after %u ms; killing instance %s",
			 inv ? inv->request_id : "?", fn->name, inst->version, inst->timeout_ms, inst->id);
		if (inv) {
			_cleanup_free_ char *body =
				error_body("timeout", "function '%s' version %u ran past its timeout of %u ms",
					   fn->name, inst->version, inst->timeout_ms);
			invocation_complete(inv, 504, body ?: "{}", body ? strlen(body) : 2, inst);
		}
		instance_kill(inst);
		break;
	}
	case INSTANCE_DEAD:
		/* No exit status came: answer with what we know. */
		instance_finalize(inst);
		break;
	case INSTANCE_IDLE:
		break;
	}
}

/* Kills the instance (if still running) and waits for its exit status to finish it off. */
static void instance_kill(struct instance *inst)
{
	if (inst->state == INSTANCE_DEAD)
		return;
	struct fn_state *fn = inst->fn;
	inst->state = INSTANCE_DEAD;
	fn->n_instances--;
	inst->s->n_instances--;
	inst->s->memory_mb -= inst->limits.memory_max >> 20;
	if (inst->pid > 0 && !inst->have_status)
		(void)kill(inst->pid, SIGKILL);
	loop_op_free(inst->s->loop, inst->chan_token, NULL);
	inst->chan_token = 0;
	/* Never finalize from here: callers are often inside this instance's own callbacks. The
	 * timer finishes it on the next loop turn if the exit status is already known, else after
	 * a grace period unless the status arrives first. */
	(void)loop_timer_start(inst->s->loop, &inst->timer,
			       now_us() + (inst->have_status ? 0 : EXIT_STATUS_WAIT_US));
	/* Capacity freed: someone queued may get a new instance. */
	fn_pump(fn);
}

/* The instance is dead and (normally) its status known: answer, log, free. */
static void instance_finalize(struct instance *inst)
{
	struct fn_state *fn = inst->fn;
	char what[96] = "died";
	if (inst->have_status)
		describe_status(inst->status, what, sizeof(what));
	uint64_t ooms = 0;
	if (inst->s->cfg.cgroups && inst->cgroup[0] &&
	    cgroup_oom_kills(inst->s->cfg.cgroups, inst->cgroup, &ooms) >= 0 && ooms > 0)
		log_info("sched: instance %s of '%s' v%u ran out of memory (memory_mb %llu)",
			 inst->id, fn->name, inst->version,
			 (unsigned long long)(inst->limits.memory_max >> 20));
	struct invocation *inv = TAKE_PTR(inst->current);
	if (inv && ooms > 0) {
		_cleanup_free_ char *body = error_body(
			"out_of_memory",
			"instance %s of '%s' version %u ran out of memory (limit %llu MB) during the "
			"invocation",
			inst->id, fn->name, inst->version,
			(unsigned long long)(inst->limits.memory_max >> 20));
		invocation_complete(inv, 502, body ?: "{}", body ? strlen(body) : 2, inst);
	} else if (inv) {
		_cleanup_free_ char *body = error_body(
			"crashed", "instance %s (pid %d) of '%s' version %u %s during the invocation",
			inst->id, (int)inst->pid, fn->name, inst->version, what);
		invocation_complete(inv, 502, body ?: "{}", body ? strlen(body) : 2, inst);
	} else if (!inst->retiring && !inst->timed_out && inst->invocations == 0 &&
		   inst->idle_since_us == 0) {
		/* Died while starting, without an init error: the code cannot start. */
		_cleanup_free_ char *body = error_body(
			"crashed", "instance %s of '%s' version %u %s while initialising", inst->id,
			fn->name, inst->version, what);
		if (body)
			fail_queued_version(fn, inst->version, 502, body);
	}
	if (!inst->retiring && !inst->timed_out)
		log_info("sched: instance %s (pid %d) of '%s' v%u %s", inst->id, (int)inst->pid,
			 fn->name, inst->version, what);
	instance_unlink(inst);
	instance_release(inst);
	fn_pump(fn);
}

static struct instance *instance_find_pid(struct sched *s, pid_t pid)
{
	for (struct fn_state *fn = s->fns; fn; fn = fn->next)
		for (struct instance *i = fn->instances; i; i = i->next)
			if (i->pid == pid)
				return i;
	return NULL;
}

static struct instance *instance_find_token(struct sched *s, uint64_t token)
{
	for (struct fn_state *fn = s->fns; fn; fn = fn->next)
		for (struct instance *i = fn->instances; i; i = i->next)
			if (i->spawn_token == token)
				return i;
	return NULL;
}

static void instance_exited(struct instance *inst, int status)
{
	if (inst->have_status)
		return;
	inst->have_status = true;
	inst->status = status;
	if (inst->state == INSTANCE_DEAD)
		(void)loop_timer_start(inst->s->loop, &inst->timer, now_us());
	/* Otherwise the channel's EOF (which follows at once) finishes it. */
}

/* Puts a freshly spawned instance into its own cgroup, before it learns its function.
 * cloned_into: the v2 cgroup its zygote cloned it into (CLONE_INTO_CGROUP), or NULL.
 *  - v1 (hybrid host): instance_start() made fn-NAME/ID with the limits and the instance moves
 *    itself in (INIT's cgroup_tasks); the unified-tree cgroup it was cloned into is its v2
 *    cgroup (the id BPF sees, and cgroup.kill).
 *  - v2: the cgroup it was cloned into gets the limits and is its cgroup; without one,
 *    fn-NAME/ID is made now and the instance moved there from here (an RCU grace period). */
static int instance_enter_cgroup(struct instance *inst, const char *cloned_into)
{
	struct cgroup_manager *cg = inst->s->cfg.cgroups;
	if (!cg)
		return 0;
	int r = 0;
	const char *path = inst->cgroup;
	if (cgroup_manager_backend(cg) == CGROUP_BACKEND_V2) {
		if (cloned_into) {
			snprintf(inst->cgroup, sizeof(inst->cgroup), "%s", cloned_into);
			path = inst->cgroup;
			r = cgroup_create(cg, path, &inst->limits);
		} else {
			snprintf(inst->cgroup, sizeof(inst->cgroup), "fn-%s/%s", inst->fn->name,
				 inst->id);
			r = cgroup_create(cg, path, &inst->limits);
			if (r >= 0)
				r = cgroup_attach(cg, path, inst->pid);
		}
	} else {
		if (cloned_into)
			snprintf(inst->v2cgroup, sizeof(inst->v2cgroup), "%s", cloned_into);
		if (!inst->self_attach)
			r = cgroup_attach(cg, path, inst->pid);
	}
	/* BPF charges CPU time by v2 cgroup id: tell the meter whose this one is. */
	const char *v2 = inst->v2cgroup[0] ? inst->v2cgroup
		       : cgroup_manager_backend(cg) == CGROUP_BACKEND_V2 ? inst->cgroup
									  : NULL;
	struct meter *meter = inst->s->cfg.meter;
	if (r >= 0 && v2 && inst->fn->stats && meter_bpf_active(meter)) {
		uint64_t id;
		int k = cgroup_v2_id(cg, v2, &id);
		if (k >= 0)
			k = meter_cgroup_add(meter, id, inst->fn->slot);
		if (k >= 0)
			inst->cgroup_id = id;
		else
			log_debug_errno(k, "sched: cannot meter cgroup '%s' of instance %s: %m", v2,
					inst->id);
	}
	if (r < 0) {
		log_error_errno(r, "sched: cannot put instance %s of '%s' into cgroup '%s': %m",
				inst->id, inst->fn->name, path);
		_cleanup_free_ char *body = error_body(
			"unavailable", "could not set up the cgroup of an instance of '%s': %s",
			inst->fn->name, strerror(-r));
		inst->retiring = true;
		if (body)
			fail_queued_version(inst->fn, inst->version, 503, body);
	}
	return r;
}

/* Network "egress": the instance's namespace gets its veth pair and NAT before INIT. */
static int instance_egress(struct instance *inst)
{
	struct sched *s = inst->s;
	if (!inst->egress)
		return 0;
	int r = 0;
	_cleanup_free_ char *why = NULL;
	if (!s->egress) {
		struct egress_config ec = { .name = s->cfg.egress_name };
		r = s->cfg.egress_name && s->cfg.cgroups ? egress_new(&ec, &s->egress, &why)
							 : -EOPNOTSUPP;
		if (r < 0)
			log_error_errno(r, "sched: network egress unavailable: %s%m",
					why ? why : "");
		else
			log_info("sched: network egress set up for the first function that asks");
	}
	if (r >= 0)
		r = egress_attach(s->egress, inst->pid, &inst->lease);
	if (r < 0) {
		log_error_errno(r, "sched: cannot give instance %s of '%s' its network: %m", inst->id,
				inst->fn->name);
		_cleanup_free_ char *body = error_body(
			"unavailable", "could not set up network egress for an instance of '%s': %s%s%s",
			inst->fn->name, strerror(-r), why ? ": " : "", why ? why : "");
		inst->retiring = true;
		if (body)
			fail_queued_version(inst->fn, inst->version, 503, body);
	}
	return r;
}

static void on_spawned(void *ud, uint64_t token, pid_t pid, int error, const char *cgroup)
{
	struct sched *s = ud;
	struct instance *inst = instance_find_token(s, token);
	if (!inst) {
		/* Its function went away meanwhile. */
		if (pid > 0)
			(void)kill(pid, SIGKILL);
		if (cgroup && s->cfg.cgroups)
			cgroup_bury(s, cgroup, true);
		return;
	}
	if (pid > 0) {
		inst->pid = pid;
		if (inst->state == INSTANCE_DEAD) {
			if (!inst->have_status)
				(void)kill(pid, SIGKILL);
			if (cgroup && s->cfg.cgroups)
				snprintf(inst->v2cgroup, sizeof(inst->v2cgroup), "%s", cgroup);
			return;
		}
		if (instance_enter_cgroup(inst, cgroup) < 0 || instance_egress(inst) < 0) {
			instance_kill(inst);
			return;
		}
		if (inst->init_json) {
			_cleanup_free_ char *init = TAKE_PTR(inst->init_json);
			if (chan_send(inst, INST_INIT, init, strlen(init), NULL, 0) < 0)
				instance_kill(inst);
		}
		return;
	}
	struct fn_state *fn = inst->fn;
	log_error_errno(error, "sched: could not start an instance of '%s': %m", fn->name);
	_cleanup_free_ char *body =
		error_body("unavailable", "could not start an instance of '%s' (runtime '%s'): %s",
			   fn->name, inst->runtime, strerror(error < 0 ? -error : error));
	inst->retiring = true;
	if (body)
		fail_queued_version(fn, inst->version, 503, body);
	if (inst->state != INSTANCE_DEAD) {
		inst->state = INSTANCE_DEAD;
		fn->n_instances--;
		inst->s->n_instances--;
		inst->s->memory_mb -= inst->limits.memory_max >> 20;
	}
	instance_unlink(inst);
	instance_release(inst);
}

static void on_zygote_exited(void *ud, pid_t pid, int status)
{
	struct sched *s = ud;
	struct instance *inst = instance_find_pid(s, pid);
	if (inst)
		instance_exited(inst, status);
}

void sched_child_exited(struct sched *s, pid_t pid, int status)
{
	on_zygote_exited(s, pid, status);
}


static void instance_retire(struct instance *inst);

/* Stops one idle instance of a function other than except that has more than its reserved
 * ones (the longest idle); false if there is none. */
static bool evict_idle(struct sched *s, struct fn_state *except)
{
	struct instance *best = NULL;
	for (struct fn_state *fn = s->fns; fn; fn = fn->next) {
		if (fn == except || fn->n_instances <= fn_eff(fn).min)
			continue;
		for (struct instance *i = fn->instances; i; i = i->next)
			if (i->state == INSTANCE_IDLE &&
			    (!best || i->idle_since_us < best->idle_since_us))
				best = i;
	}
	if (!best)
		return false;
	log_info("sched: host at capacity: stopping idle instance %s of '%s' for '%s'", best->id,
		 best->fn->name, except->name);
	instance_retire(best);
	return true;
}

/* An instance's cgroup limits from its version's manifest. */
static struct cgroup_limits instance_limits(const struct manifest *m)
{
	/* As on Lambda: a full core at 1,769 MB unless cpu_millis says otherwise. */
	uint64_t millis = m->cpu_millis ? m->cpu_millis : (uint64_t)m->memory_mb * 1000u / 1769u;
	if (millis < 10)
		millis = 10;
	return (struct cgroup_limits){
		.memory_max = (uint64_t)m->memory_mb << 20,
		.cpu_period_us = 100000,
		.cpu_quota_us = (uint32_t)(millis * 100u),
		.pids_max = m->pids_max ? m->pids_max : MANIFEST_PIDS_DEFAULT,
	};
}

static bool limits_equal(const struct cgroup_limits *a, const struct cgroup_limits *b)
{
	return a->memory_max == b->memory_max && a->cpu_quota_us == b->cpu_quota_us &&
	       a->cpu_period_us == b->cpu_period_us && a->pids_max == b->pids_max;
}

static void instance_id(uint64_t token, char id[20])
{
	snprintf(id, 20, "i-%012llx", (unsigned long long)((token * 0x9e3779b97f4a7c15ull) >> 16));
}

/* v1 hierarchies: cgroups are made by spored (v2: they come with the instance). */
static bool pre_cgroups_apply(const struct sched *s)
{
	return s->cfg.cgroups && cgroup_manager_backend(s->cfg.cgroups) != CGROUP_BACKEND_V2;
}

/* Opens the v1 tasks files of tasks for writing into fds (room for max): their number, or
 * -errno with none left open. spored sends them with INST_INIT: the spare, pivot_rooted ahead
 * of demand, cannot reach them by their paths. */
static int tasks_open(char *const *tasks, int *fds, size_t max)
{
	size_t n = 0;
	for (char *const *t = tasks; t && *t; t++) {
		int fd = n < max ? open(*t, O_WRONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
		if (fd < 0) {
			int r = n < max ? -errno : -E2BIG;
			log_error_errno(r, "sched: cannot open '%s': %m", *t);
			while (n > 0)
				safe_close(fds[--n]);
			return r;
		}
		fds[n++] = fd;
	}
	return (int)n;
}

static void fn_pre_task_fds_close(struct fn_state *fn)
{
	for (size_t i = 0; i < fn->pre.n_task_fds; i++)
		safe_close(fn->pre.task_fds[i]);
	fn->pre.n_task_fds = 0;
}

static void fn_pre_cgroup_drop(struct fn_state *fn)
{
	fn_pre_task_fds_close(fn);
	if (!fn->pre.ready)
		return;
	char path[112];
	snprintf(path, sizeof(path), "fn-%s/%s", fn->name, fn->pre.id);
	cgroup_bury(fn->s, path, true);
	fn->pre.tasks = strv_free(fn->pre.tasks);
	fn->pre.ready = false;
}

/* Makes the cgroup of the function's next instance now, with the live version's limits (or
 * replaces one made for other limits); false if none was made. */
static bool fn_pre_cgroup(struct fn_state *fn)
{
	struct sched *s = fn->s;
	if (!pre_cgroups_apply(s))
		return false;
	const struct fn_record *rec = registry_find(s->reg, fn->name);
	const struct fn_version *v = rec ? fn_record_version(rec, rec->live) : NULL;
	if (!v) {
		fn_pre_cgroup_drop(fn);
		return false;
	}
	struct cgroup_limits lim = instance_limits(&v->manifest);
	if (fn->pre.ready && limits_equal(&fn->pre.limits, &lim))
		return false;
	fn_pre_cgroup_drop(fn);
	uint64_t token = ++s->next_token;
	char id[20], path[112];
	instance_id(token, id);
	snprintf(path, sizeof(path), "fn-%s/%s", fn->name, id);
	int r = cgroup_create(s->cfg.cgroups, path, &lim);
	if (r < 0) {
		log_debug_errno(r, "sched: cannot make cgroup '%s' ahead of demand: %m", path);
		return false;
	}
	char **tasks = NULL;
	r = cgroup_self_attach_paths(s->cfg.cgroups, path, &tasks);
	if (r < 0 || !tasks || !tasks[0]) {
		strv_free(tasks);
		(void)cgroup_remove(s->cfg.cgroups, path);
		return false;
	}
	/* Opened now too (on failure, they are opened on the path instead). */
	r = tasks_open(tasks, fn->pre.task_fds, ELEMENTSOF(fn->pre.task_fds));
	fn->pre.n_task_fds = r > 0 ? (size_t)r : 0;
	fn->pre.ready = true;
	fn->pre.token = token;
	memcpy(fn->pre.id, id, sizeof(id));
	fn->pre.limits = lim;
	fn->pre.tasks = tasks;
	return true;
}

static int instance_start(struct fn_state *fn, uint32_t version)
{
	struct sched *s = fn->s;
	const struct fn_record *rec = registry_find(s->reg, fn->name);
	const struct fn_version *v = rec ? fn_record_version(rec, version) : NULL;
	if (!v)
		return -ENOENT;
	const struct manifest *m = &v->manifest;
	struct cgroup_manager *cg = s->cfg.cgroups;
	/* The host's share: instances of all functions together, and their memory. At the limit,
	 * idle instances of other functions beyond their reserved ones make room. */
	while ((s->cfg.max_instances_total && s->n_instances >= s->cfg.max_instances_total) ||
	       (s->cfg.memory_budget_mb && s->memory_mb + m->memory_mb > s->cfg.memory_budget_mb))
		if (!evict_idle(s, fn))
			return -EUSERS;

	struct cgroup_limits limits = instance_limits(m);
	uint64_t token;
	char id[20];
	/* A cold start with the cgroup made ahead of demand skips making one; the next is made on
	 * a later tick (sched_tick()). */
	bool pre = fn->pre.ready && limits_equal(&fn->pre.limits, &limits);
	if (pre_cgroups_apply(s))
		fn->pre.wanted_until_us = now_us() + PRE_CGROUP_KEEP_US;
	if (pre) {
		token = fn->pre.token;
		memcpy(id, fn->pre.id, sizeof(id));
	} else {
		token = ++s->next_token;
		instance_id(token, id);
	}

	/* Sandbox: the instance's cgroup is made now, with its limits. Where the kernel allows it
	 * (v1 hierarchies), the instance moves itself in before it runs any function code (~20 µs);
	 * else spored moves it once its pid is known (an RCU grace period: milliseconds). */
	char cgpath[112] = "";
	_cleanup_strv_free_ char **tasks = NULL;
	if (pre) {
		snprintf(cgpath, sizeof(cgpath), "fn-%s/%s", fn->name, id);
		tasks = TAKE_PTR(fn->pre.tasks);
		fn->pre.ready = false;
	} else if (cg && cgroup_manager_backend(cg) != CGROUP_BACKEND_V2) {
		/* v2: the cgroup comes with the instance (instance_enter_cgroup()). */
		snprintf(cgpath, sizeof(cgpath), "fn-%s/%s", fn->name, id);
		int k = cgroup_create(cg, cgpath, &limits);
		if (k < 0)
			return log_error_errno(k, "sched: cannot create cgroup '%s': %m", cgpath);
		k = cgroup_self_attach_paths(cg, cgpath, &tasks);
		if (k < 0 || !tasks[0])
			tasks = strv_free(tasks);
	}

	_cleanup_free_ char *code_dir = registry_code_dir(s->reg, fn->name, version);
	if (!code_dir) {
		if (cg && cgpath[0])
			(void)cgroup_remove(cg, cgpath);
		return -ENOMEM;
	}
	cJSON *init = cJSON_CreateObject();
	if (!init)
		return -ENOMEM;
	char ver[16];
	snprintf(ver, sizeof(ver), "%u", version);
	cJSON *env = cJSON_AddObjectToObject(init, "env");
	bool ok = env && cJSON_AddStringToObject(init, "function_name", fn->name) &&
		  cJSON_AddStringToObject(init, "function_version", ver) &&
		  cJSON_AddStringToObject(init, "handler", m->handler) &&
		  cJSON_AddStringToObject(init, "code_dir", code_dir) &&
		  cJSON_AddNumberToObject(init, "memory_mb", m->memory_mb) &&
		  cJSON_AddNumberToObject(init, "timeout_ms", m->timeout_ms);
	for (size_t i = 0; ok && i < m->n_env; i++)
		ok = cJSON_AddStringToObject(env, m->env_keys[i], m->env_values[i]) != NULL;
	if (ok && s->cfg.secrets) {
		/* Secrets win over env of the same name. */
		_cleanup_json_ cJSON *sec = secrets_get(s->cfg.secrets, fn->name);
		const cJSON *it;
		ok = sec != NULL;
		cJSON_ArrayForEach(it, sec) {
			cJSON_DeleteItemFromObjectCaseSensitive(env, it->string);
			if (!(ok = cJSON_AddStringToObject(env, it->string, it->valuestring) != NULL))
				break;
		}
	}
	if (ok && s->cfg.cgroups) {
		cJSON *sb = cJSON_AddObjectToObject(init, "sandbox");
		ok = sb && cJSON_AddNumberToObject(sb, "uid", fn->uid) &&
		     cJSON_AddNumberToObject(sb, "gid", fn->uid) &&
		     cJSON_AddNumberToObject(sb, "tmp_mb",
					     m->tmp_mb ? m->tmp_mb : MANIFEST_TMP_DEFAULT);
		if (ok && tasks) {
			cJSON *a = cJSON_AddArrayToObject(sb, "cgroup_tasks");
			for (char **t = tasks; ok && *t; t++)
				ok = a && cJSON_AddItemToArray(a, cJSON_CreateString(*t));
		}
	}
	_cleanup_free_ char *init_json = ok ? cJSON_PrintUnformatted(init) : NULL;
	cJSON_Delete(init);
	if (!init_json) {
		if (cg && cgpath[0])
			(void)cgroup_remove(cg, cgpath);
		return -ENOMEM;
	}

	struct instance *inst = calloc(1, sizeof(*inst));
	if (!inst) {
		if (cg && cgpath[0])
			(void)cgroup_remove(cg, cgpath);
		return -ENOMEM;
	}
	inst->s = s;
	inst->fn = fn;
	inst->version = version;
	inst->timeout_ms = m->timeout_ms;
	snprintf(inst->runtime, sizeof(inst->runtime), "%s", m->runtime);
	inst->limits = limits;
	snprintf(inst->cgroup, sizeof(inst->cgroup), "%s", cgpath);
	inst->self_attach = tasks != NULL;
	inst->chan = -EBADF;
	inst->pipes[0].fd = inst->pipes[1].fd = -EBADF;
	inst->timer.fn = on_instance_timer;
	inst->state = INSTANCE_STARTING;
	inst->started_us = now_us();
	inst->spawn_token = token;
	snprintf(inst->id, sizeof(inst->id), "%s", id);

	int chan[2] = { -EBADF, -EBADF }, out[2] = { -EBADF, -EBADF }, err[2] = { -EBADF, -EBADF };
	int r = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan) < 0 ||
	    pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		r = -errno;
	if (r >= 0) {
		inst->chan = chan[0];
		inst->pipes[0] = (struct pipe_reader){ inst, out[0], 0, "stdout", BUF_INIT,
						       { .fn = on_pipe_more } };
		inst->pipes[1] = (struct pipe_reader){ inst, err[0], 0, "stderr", BUF_INIT,
						       { .fn = on_pipe_more } };
		(void)fcntl(out[0], F_SETFL, O_NONBLOCK);
		(void)fcntl(err[0], F_SETFL, O_NONBLOCK);
		inst->chan_token = loop_op_new(s->loop, on_chan, inst);
		inst->chan_out_token = loop_op_new(s->loop, on_chan_writable, inst);
		if (!inst->chan_token || !inst->chan_out_token)
			r = -ENOMEM;
	}
	if (r >= 0) {
		/* The channel is polled through its own token: re-use chan_token for the poll. */
		loop_op_free(s->loop, inst->chan_token, NULL);
		inst->chan_token = 0;
		r = loop_poll_start(s->loop, inst->chan, POLLIN | POLLRDHUP, on_chan, inst,
				    &inst->chan_token);
	}
	for (int i = 0; r >= 0 && i < 2; i++)
		r = loop_poll_start(s->loop, inst->pipes[i].fd, POLLIN, on_pipe, &inst->pipes[i],
				    &inst->pipes[i].token);
	/* Sandbox: the code goes to the instance as a detached mount, with INST_INIT (its spare
	 * pivot_rooted ahead of demand: the host's paths are out of its reach). nodejs spares get
	 * theirs from their helper instead (runtime-nodejs.c). */
	if (r >= 0 && cg && !streq(m->runtime, "nodejs")) {
		int fd = (int)open_tree(AT_FDCWD, code_dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (fd < 0)
			r = log_error_errno(-errno, "sched: cannot take a mount of '%s' for instance %s: %m",
					    code_dir, inst->id);
		else
			inst->init_fds[inst->n_init_fds++] = fd;
		/* The tasks files were opened ahead with the cgroup, else now. */
		if (r >= 0 && pre && fn->pre.n_task_fds > 0) {
			memcpy(inst->init_fds + inst->n_init_fds, fn->pre.task_fds,
			       fn->pre.n_task_fds * sizeof(int));
			inst->n_init_fds += fn->pre.n_task_fds;
			fn->pre.n_task_fds = 0;
		} else if (r >= 0) {
			int k = tasks_open(tasks, inst->init_fds + inst->n_init_fds,
					   ELEMENTSOF(inst->init_fds) - inst->n_init_fds);
			if (k < 0)
				r = k;
			else
				inst->n_init_fds += (size_t)k;
		}
	}
	inst->egress = m->egress;
	if (r >= 0 && (!cg || inst->self_attach) && !inst->egress)
		r = chan_send(inst, INST_INIT, init_json, strlen(init_json), NULL, 0);
	else if (r >= 0)
		inst->init_json = TAKE_PTR(init_json);
	if (r >= 0)
		r = zygotes_spawn(s->zygotes, m->runtime, inst->spawn_token, chan[1], out[1], err[1]);
	safe_close(chan[1]);
	safe_close(out[1]);
	safe_close(err[1]);
	if (r < 0) {
		if (inst->chan < 0)
			safe_close(chan[0]);
		if (inst->pipes[0].fd < 0)
			safe_close(out[0]);
		if (inst->pipes[1].fd < 0)
			safe_close(err[0]);
		instance_release(inst);
		return r;
	}
	inst->next = fn->instances;
	if (fn->instances)
		fn->instances->prev = inst;
	fn->instances = inst;
	fn->n_instances++;
	s->n_instances++;
	s->memory_mb += m->memory_mb;
	(void)loop_timer_start(s->loop, &inst->timer,
			       now_us() + (uint64_t)s->cfg.init_timeout_ms * 1000u);
	return 0;
}

static void instance_retire(struct instance *inst)
{
	inst->retiring = true;
	instance_kill(inst);
}

/* --- the pump: match queued invocations with instances ------------------------------------- */

static struct instance *find_idle(struct fn_state *fn, uint32_t version)
{
	/* Most recently used first keeps a warm working set and lets the rest age out. */
	struct instance *best = NULL;
	for (struct instance *i = fn->instances; i; i = i->next)
		if (i->state == INSTANCE_IDLE && i->version == version &&
		    (!best || i->idle_since_us > best->idle_since_us))
			best = i;
	return best;
}

static size_t count_starting(struct fn_state *fn, uint32_t version)
{
	size_t n = 0;
	for (struct instance *i = fn->instances; i; i = i->next)
		n += i->state == INSTANCE_STARTING && i->version == version;
	return n;
}

static struct instance *find_idle_other(struct fn_state *fn, uint32_t version)
{
	for (struct instance *i = fn->instances; i; i = i->next)
		if (i->state == INSTANCE_IDLE && i->version != version)
			return i;
	return NULL;
}

static void fn_pump(struct fn_state *fn)
{
	/* Callbacks below can come back here (and change the queue): one pass at a time per
	 * function, and every change of the queue restarts the scan from its head. */
	if (fn->pumping) {
		fn->pump_again = true;
		return;
	}
	fn->pumping = true;
	struct sched *s = fn->s;
	do {
		fn->pump_again = false;
		for (struct invocation *inv = fn->q_head; inv; inv = inv->next) {
			struct instance *idle = find_idle(fn, inv->version);
			if (idle) {
				queue_remove(fn, inv);
				instance_dispatch(idle, inv);
				fn->pump_again = true;
				break;
			}
			size_t ahead_same = 0;
			for (struct invocation *p = fn->q_head; p != inv; p = p->next)
				ahead_same += p->version == inv->version;
			if (count_starting(fn, inv->version) > ahead_same)
				continue; /* an instance on its way will take it */
			if (fn->n_instances >= fn_eff(fn).max) {
				struct instance *victim = find_idle_other(fn, inv->version);
				if (!victim)
					continue;
				instance_retire(victim);
			}
			int r = instance_start(fn, inv->version);
			if (r == -EUSERS && fn->n_instances > 0)
				continue; /* at the host's capacity: wait for one of its own */
			if (r == -EUSERS && inv->queued) {
				queue_remove(fn, inv);
				invocation_fail(inv, 503,
						error_body("capacity",
							   "the host is at its capacity (%u instances, %llu MB "
							   "of instance memory); '%s' cannot start an instance",
							   s->n_instances,
							   (unsigned long long)s->memory_mb, fn->name));
				fn->pump_again = true;
				break;
			}
			if (r < 0 && inv->queued) {
				queue_remove(fn, inv);
				invocation_fail(inv, r == -ENOENT ? 404 : 503,
						error_body(r == -ENOENT ? "not_found" : "unavailable",
							   "could not start an instance of '%s' version %u: %s",
							   fn->name, inv->version, strerror(-r)));
			}
			fn->pump_again = true;
			break;
		}
	} while (fn->pump_again);
	fn->pumping = false;
	fn_gauges(fn);
	fn_conc_update(fn);
}

/* --- functions ----------------------------------------------------------------------------- */

static struct fn_state *fn_get(struct sched *s, const char *name, bool create)
{
	for (struct fn_state *fn = s->fns; fn; fn = fn->next)
		if (streq(fn->name, name))
			return fn;
	if (!create)
		return NULL;
	struct fn_state *fn = calloc(1, sizeof(*fn));
	if (!fn)
		return NULL;
	fn->s = s;
	fn->uid = s->cfg.uid_min + (s->next_uid++ % (s->cfg.uid_count ? s->cfg.uid_count : 1));
	fn->name = strdup(name);
	if (!fn->name) {
		free(fn);
		return NULL;
	}
	/* The slot outlives this state (which goes when the function idles): it is the function's
	 * until it is deleted. */
	if (s->cfg.meter) {
		int r = meter_fn_open(s->cfg.meter, name, &fn->slot);
		if (r < 0)
			log_warning_errno(r, "sched: no meter slot for '%s' (%m); it is not metered",
					  name);
		else {
			fn->stats = meter_fn(s->cfg.meter, fn->slot);
			/* Without BPF the CPU figure is summed here: carry on from where it was. */
			fn->cpu_gone_ns = fn->stats ? fn->stats->cpu_ns : 0;
		}
	}
	fn->next = s->fns;
	s->fns = fn;
	return fn;
}

static void on_queue_timeout(struct loop_timer *t)
{
	struct invocation *inv =
		(struct invocation *)((char *)t - offsetof(struct invocation, queue_timer));
	struct fn_state *fn = inv->fn;
	queue_remove(fn, inv);
	inv->meter_kind = SPORE_ERR_QUEUE_TIMEOUT + 1;
	invocation_fail(inv, 429,
			error_body("throttled",
				   "invocation of '%s' waited %llu ms in the queue without an instance; "
				   "try again later",
				   fn->name,
				   (unsigned long long)((now_us() - inv->enqueued_us + 500) / 1000)));
}

int sched_invoke(struct sched *s, const char *function, uint32_t version, const char *event,
		 size_t len, invoke_done_fn done, void *userdata, struct invocation **ret)
{
	return sched_invoke_ex(s, function, version, event, len, done, NULL, userdata, ret);
}

int sched_invoke_ex(struct sched *s, const char *function, uint32_t version, const char *event,
		    size_t len, invoke_done_fn done, void (*on_start)(void *userdata),
		    void *userdata, struct invocation **ret)
{
	const struct fn_record *rec = registry_find(s->reg, function);
	if (!rec)
		return -ENOENT;
	if (version == 0)
		version = rec->live;
	if (!fn_record_version(rec, version))
		return -ENOENT;
	struct fn_state *fn = fn_get(s, function, true);
	if (!fn)
		return -ENOMEM;
	struct eff_scaling eff = fn_eff(fn);
	if (fn->q_len >= eff.queue_max && !find_idle(fn, version)) {
		if (fn->stats)
			meter_count_request(fn->stats, SPORE_ERR_QUEUE_FULL, 0);
		(void)metrics_codes_count(s->cfg.codes, fn->name, version, 429);
		return -EAGAIN;
	}

	struct invocation *inv = calloc(1, sizeof(*inv));
	if (!inv)
		return -ENOMEM;
	inv->event = malloc(len + 1);
	if (!inv->event) {
		free(inv);
		return -ENOMEM;
	}
	memcpy(inv->event, event, len);
	inv->event[len] = 0;
	inv->len = len;
	inv->s = s;
	inv->fn = fn;
	inv->version = version;
	inv->done = done;
	inv->on_start = on_start;
	inv->userdata = userdata;
	inv->enqueued_us = now_us();
	inv->queue_timer.fn = on_queue_timeout;
	make_uuid(inv->request_id);

	inv->queued = true;
	inv->prev = fn->q_tail;
	if (fn->q_tail)
		fn->q_tail->next = inv;
	else
		fn->q_head = inv;
	fn->q_tail = inv;
	fn->q_len++;
	(void)loop_timer_start(s->loop, &inv->queue_timer,
			       inv->enqueued_us + (uint64_t)eff.queue_timeout_ms * 1000u);
	*ret = inv;
	fn_pump(fn);
	return 0;
}

bool sched_invocation_started(const struct invocation *inv)
{
	return inv->started_us != 0;
}

void sched_invocation_cancel(struct sched *s, struct invocation *inv)
{
	(void)s;
	if (!inv)
		return;
	if (inv->queued) {
		queue_remove(inv->fn, inv);
		invocation_free(inv);
		return;
	}
	/* Running: let it finish, drop the answer. */
	inv->done = NULL;
}

/* How many instances the function should have now: at least its reserved ones; above that what
 * its concurrency over the stable window asks for at its target concurrency, or over the panic
 * window while that asks for twice what it has (a burst: then no scale-down for a stable
 * window); one more while its instances burn their whole CPU quota; never above its maximum. */
static uint32_t fn_desired(struct fn_state *fn, const struct eff_scaling *e, uint64_t now)
{
	fn_conc_update(fn);
	double part = (double)(now - fn->conc_bucket_start_us), sum = 0;
	for (unsigned i = 0; i < SCALE_BUCKETS; i++)
		sum += fn->conc_bucket[i];
	unsigned prev = (fn->conc_bi + SCALE_BUCKETS - 1) % SCALE_BUCKETS;
	double conc_stable = sum / ((double)(SCALE_BUCKETS - 1) * 1e6 + part);
	double conc_panic = (fn->conc_bucket[fn->conc_bi] + fn->conc_bucket[prev]) / (1e6 + part);
	/* Rounded: a short call in an idle window must not keep an instance past its TTL. */
	double stable = floor(conc_stable / e->target + 0.5);
	double panic = ceil(conc_panic / e->target - 1e-6);
	if (panic >= 2.0 * (double)fn->n_instances && panic > stable && fn->n_instances > 0)
		fn->panic_until_us = now + (uint64_t)STABLE_WINDOW_US;
	double want = stable;
	if (now < fn->panic_until_us && panic > want)
		want = panic;
	/* CPU-bound: the instances used at least 90% of their quota since the last look. */
	struct meter *meter = fn->s->cfg.meter;
	if (fn->stats && meter && meter_bpf_active(meter)) {
		uint64_t cpu = fn->stats->cpu_ns, quota_ns_per_s = 0;
		for (struct instance *i = fn->instances; i; i = i->next)
			if (i->state != INSTANCE_DEAD && i->limits.cpu_period_us)
				quota_ns_per_s += (uint64_t)i->limits.cpu_quota_us * 1000000000ull /
						  i->limits.cpu_period_us;
		if (fn->cpu_seen_at_us && now > fn->cpu_seen_at_us && quota_ns_per_s > 0) {
			double used = (double)(cpu - fn->cpu_seen_ns) /
				      ((double)(now - fn->cpu_seen_at_us) / 1e6);
			if (used >= 0.9 * (double)quota_ns_per_s && !find_idle(fn, 0) &&
			    want < (double)fn->n_instances + 1)
				want = (double)fn->n_instances + 1;
		}
		fn->cpu_seen_ns = cpu;
		fn->cpu_seen_at_us = now;
	}
	if (want < e->min)
		want = e->min;
	if (want > e->max)
		want = e->max;
	return (uint32_t)want;
}

/* Starts instances of the live version until the function has want of them. */
static void fn_scale_up(struct fn_state *fn, uint32_t want)
{
	const struct fn_record *rec = registry_find(fn->s->reg, fn->name);
	while (rec && fn->n_instances < want) {
		int r = instance_start(fn, rec->live);
		if (r < 0) {
			log_warning_errno(r, "sched: cannot start a reserved or pre-warmed instance of "
					  "'%s': %m", fn->name);
			break;
		}
	}
}

static void function_changed(struct sched *s, const char *function, bool deployed)
{
	const struct fn_record *rec = registry_find(s->reg, function);
	if (!rec)
		return;
	/* Metered from its deploy on: bpftool and /metrics list it before its first call. */
	uint32_t slot;
	if (s->cfg.meter && meter_fn_open(s->cfg.meter, function, &slot) < 0)
		log_warning("sched: no meter slot for '%s'; it is not metered", function);
	struct eff_scaling e;
	/* A deploy, rollback or change is likely followed by an invocation: its instance's cgroup
	 * is made now, off the cold start's path. */
	bool pre = deployed && pre_cgroups_apply(s);
	struct fn_state *fn = fn_get(s, function, rec->scaling.min_instances > 0 || pre);
	if (!fn)
		return;
	if (pre) {
		fn->pre.wanted_until_us = now_us() + PRE_CGROUP_KEEP_US;
		(void)fn_pre_cgroup(fn);
	}
	e = fn_eff(fn);
	uint32_t idle_over = fn->n_instances > e.max ? (uint32_t)(fn->n_instances - e.max) : 0;
	for (struct instance *i = fn->instances, *next; i; i = next) {
		next = i->next;
		if (i->state != INSTANCE_IDLE)
			continue;
		if (i->version != rec->live || idle_over > 0) {
			idle_over -= idle_over > 0 && i->version == rec->live;
			instance_retire(i);
		}
	}
	fn_scale_up(fn, e.min);
	fn_pump(fn);
}

void sched_function_changed(struct sched *s, const char *function)
{
	function_changed(s, function, true);
}

void sched_totals(const struct sched *s, uint32_t *ret_instances, uint64_t *ret_memory_mb)
{
	*ret_instances = s->n_instances;
	*ret_memory_mb = s->memory_mb;
}

void sched_start_reserved(struct sched *s)
{
	/* At start-up: no cgroups ahead of demand for every function there is, only for those
	 * that start instances (sched_tick()). */
	for (size_t i = 0; i < registry_count(s->reg); i++)
		function_changed(s, registry_at(s->reg, i)->name, false);
}

static void fn_free(struct sched *s, struct fn_state *fn, bool answer)
{
	for (struct fn_state **p = &s->fns; *p; p = &(*p)->next)
		if (*p == fn) {
			*p = fn->next;
			break;
		}
	while (fn->q_head) {
		struct invocation *inv = fn->q_head;
		queue_remove(fn, inv);
		if (answer)
			invocation_fail(inv, 404,
					error_body("not_found", "function '%s' was deleted", fn->name));
		else
			invocation_free(inv);
	}
	while (fn->instances) {
		struct instance *inst = fn->instances;
		struct invocation *inv = TAKE_PTR(inst->current);
		if (inv) {
			if (answer)
				invocation_fail(inv, 404, error_body("not_found",
								     "function '%s' was deleted",
								     fn->name));
			else
				invocation_free(inv);
		}
		if (inst->pid > 0 && !inst->have_status)
			(void)kill(inst->pid, SIGKILL);
		if (inst->state != INSTANCE_DEAD) {
			s->n_instances--;
			s->memory_mb -= inst->limits.memory_max >> 20;
		}
		instance_unlink(inst);
		instance_release(inst);
	}
	fn_pre_cgroup_drop(fn);
	if (s->cfg.cgroups) {
		char path[96];
		snprintf(path, sizeof(path), "fn-%s", fn->name);
		cgroup_bury(s, path, false);
	}
	free(fn->name);
	free(fn);
}

void sched_function_deleted(struct sched *s, const char *function)
{
	struct fn_state *fn = fn_get(s, function, false);
	if (fn)
		fn_free(s, fn, true);
	uint32_t slot;
	if (s->cfg.meter && meter_fn_find(s->cfg.meter, function, &slot) >= 0)
		meter_fn_close(s->cfg.meter, slot);
}

/* Memory (always) and CPU (without BPF) from the instances' cgroup files, once a tick.
 * Reading an instance's cgroup figures costs about five syscalls a file. At a thousand
 * instances, reading them all every tick held the event loop for tens of milliseconds each
 * second (/healthz p99, docs/BENCHMARKS.md), so a tick reads at most this many instances, new
 * ones first, then the rest in turn (all of them each tick up to this many), and the figures
 * sum what was last read for each. */
#define METER_READS_PER_TICK 64

static void fn_meter_tick(struct fn_state *fn)
{
	struct sched *s = fn->s;
	struct cgroup_manager *cg = s->cfg.cgroups;
	if (!fn->stats || !cg)
		return;
	bool cpu_from_cgroups = !meter_bpf_active(s->cfg.meter);
	uint64_t slices = fn->n_instances / METER_READS_PER_TICK + 1;
	uint64_t turn = fn->meter_turn++ % slices;
	unsigned budget = METER_READS_PER_TICK;
	uint64_t mem = 0, peak = 0, cpu = fn->cpu_gone_ns;
	for (struct instance *i = fn->instances; i; i = i->next) {
		uint64_t v;
		if (!i->cgroup[0] || i->state == INSTANCE_DEAD)
			continue;
		if (budget > 0 && (!i->metered || i->spawn_token % slices == turn)) {
			budget--;
			i->metered = true;
			if (cgroup_memory_current(cg, i->cgroup, &v) >= 0)
				i->m_mem = v;
			if (cgroup_memory_peak(cg, i->cgroup, &v) >= 0)
				i->m_peak = v;
			/* cumulative: a stale figure is low, never high, and the exact one is
			 * added to cpu_gone_ns when the instance goes */
			if (cpu_from_cgroups && cgroup_cpu_usage_ns(cg, i->cgroup, &v) >= 0)
				i->m_cpu_ns = v;
		}
		mem += i->m_mem;
		if (i->m_peak > peak)
			peak = i->m_peak;
		if (cpu_from_cgroups)
			cpu += i->m_cpu_ns;
	}
	meter_fn_set_memory(s->cfg.meter, fn->slot, mem, peak > mem ? peak : mem);
	if (!meter_bpf_active(s->cfg.meter))
		meter_fn_set_cpu(s->cfg.meter, fn->slot, cpu);
}

void sched_tick(struct sched *s)
{
	uint64_t now = now_us();
	unsigned pre_budget = PRE_CGROUPS_PER_TICK;
	for (struct fn_state *fn = s->fns, *fnext; fn; fn = fnext) {
		fnext = fn->next;
		fn_meter_tick(fn);
		struct eff_scaling e = fn_eff(fn);
		uint32_t want = fn_desired(fn, &e, now);
		/* Up ahead of demand (pre-warm, reserved instances lost to a crash)... */
		fn_scale_up(fn, want);
		/* ... and down: idle past the TTL, above what is wanted (never the reserved). */
		uint64_t ttl = (uint64_t)e.ttl_s * 1000000u;
		for (struct instance *i = fn->instances, *next; i; i = next) {
			next = i->next;
			if (fn->n_instances <= want)
				break;
			if (i->state == INSTANCE_IDLE && now - i->idle_since_us > ttl) {
				log_debug("sched: instance %s of '%s' idle for %us; stopping it", i->id,
					  fn->name, e.ttl_s);
				instance_retire(i);
			}
		}
		/* The next instance's cgroup, while the function is in use. */
		if (now >= fn->pre.wanted_until_us)
			fn_pre_cgroup_drop(fn);
		else if (pre_budget > 0 && fn_pre_cgroup(fn))
			pre_budget--;
		/* Forget functions with nothing going on (they come back on the next invoke). */
		if (!fn->instances && !fn->q_head && now >= fn->pre.wanted_until_us)
			fn_free(s, fn, false);
	}
}

cJSON *sched_instances_json(struct sched *s, const char *function)
{
	cJSON *a = cJSON_CreateArray();
	if (!a)
		return NULL;
	struct fn_state *fn = fn_get(s, function, false);
	for (struct instance *i = fn ? fn->instances : NULL; i; i = i->next) {
		cJSON *o = cJSON_CreateObject();
		if (!o || !cJSON_AddItemToArray(a, o) || !cJSON_AddStringToObject(o, "id", i->id) ||
		    !cJSON_AddNumberToObject(o, "pid", i->pid) ||
		    !cJSON_AddNumberToObject(o, "version", i->version) ||
		    !cJSON_AddStringToObject(o, "state", inst_state_names[i->state]) ||
		    !cJSON_AddNumberToObject(o, "invocations", (double)i->invocations)) {
			cJSON_Delete(a);
			return NULL;
		}
	}
	return a;
}

void sched_set_zygotes(struct sched *s, struct zygotes *z)
{
	s->zygotes = z;
}

int sched_new(struct loop *l, struct zygotes *z, struct registry *reg, struct log_store *logs,
	      const struct sched_config *cfg, struct sched **ret)
{
	struct sched *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = l;
	s->zygotes = z;
	s->reg = reg;
	s->logs = logs;
	s->cfg = *cfg;
	s->graves_tail = &s->graves;
	s->grave_timer.fn = on_grave_timer;
	*ret = s;
	return 0;
}

struct sched *sched_free(struct sched *s)
{
	if (!s)
		return NULL;
	while (s->fns)
		fn_free(s, s->fns, false);
	s->egress = egress_free(s->egress);
	loop_timer_stop(s->loop, &s->grave_timer);
	while (s->graves) {
		/* Shutting down: now waiting is fine. */
		struct grave *g = s->graves;
		if (g->kill)
			(void)cgroup_kill(s->cfg.cgroups, g->path);
		(void)cgroup_remove(s->cfg.cgroups, g->path);
		s->graves = g->next;
		free(g->path);
		free(g);
	}
	free(s);
	return NULL;
}

const struct zygote_callbacks *sched_zygote_callbacks(struct sched *s, struct zygote_callbacks *cb)
{
	*cb = (struct zygote_callbacks){ .spawned = on_spawned, .exited = on_zygote_exited,
					 .userdata = s };
	return cb;
}
