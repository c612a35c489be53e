/* SPDX-License-Identifier: MIT */
#include "async.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "logs.h"
#include "loop.h"
#include "registry.h"
#include "scheduler.h"
#include "util/cleanup.h"
#include "util/codec.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/log.h"

#define ENTRY_MAX_BYTES (8u << 20)
#define DONE_KEEP_S (24 * 3600)
#define THROTTLED_RETRY_US (200u * 1000u)

enum entry_state {
	ENTRY_QUEUED,  /* waiting here (on disk: "queued") */
	ENTRY_HANDED,  /* in the scheduler's queue, not on an instance yet (on disk: "queued") */
	ENTRY_RUNNING, /* on an instance (on disk: "running", written before it got there) */
};

struct entry {
	struct async *a;
	char id[40];
	char *function;
	char *event;
	size_t len;
	uint32_t version; /* 0: the live version when it runs */
	enum entry_state state;
	uint32_t attempts;
	int64_t accepted_us;   /* CLOCK_REALTIME */
	uint64_t not_before_us; /* CLOCK_MONOTONIC (now_us()) */
	struct invocation *inv;
	struct entry *prev, *next;
};

struct async {
	struct loop *loop;
	struct sched *sched;
	struct registry *reg;
	struct async_config cfg;
	int pending_fd, done_fd, dead_fd;
	struct entry *head, *tail;
	size_t n_pending;
	size_t n_running;
	uint32_t seq;
	struct loop_timer timer;
	bool pumping;
};

static void pump(struct async *a);

static void entry_free(struct entry *e)
{
	if (!e)
		return;
	free(e->function);
	free(e->event);
	free(e);
}

static void list_remove(struct async *a, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		a->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		a->tail = e->prev;
	e->prev = e->next = NULL;
	a->n_pending--;
}

static void list_append(struct async *a, struct entry *e)
{
	e->prev = a->tail;
	e->next = NULL;
	if (a->tail)
		a->tail->next = e;
	else
		a->head = e;
	a->tail = e;
	a->n_pending++;
}

static char *file_name(const char *id)
{
	char *s = NULL;
	return asprintf(&s, "%s.json", id) < 0 ? NULL : s;
}

/* The entry as stored; extra members (status, result, error) added by the caller. */
static cJSON *entry_json(const struct entry *e, const char *state)
{
	cJSON *j = cJSON_CreateObject();
	_cleanup_free_ char *ev = strndup(e->event, e->len);
	if (!j || !ev || !cJSON_AddStringToObject(j, "id", e->id) ||
	    !cJSON_AddStringToObject(j, "function", e->function) ||
	    !cJSON_AddStringToObject(j, "state", state) ||
	    !cJSON_AddNumberToObject(j, "attempts", e->attempts) ||
	    !cJSON_AddNumberToObject(j, "accepted_us", (double)e->accepted_us) ||
	    !cJSON_AddStringToObject(j, "event", ev) ||
	    (e->version && !cJSON_AddNumberToObject(j, "version", e->version))) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

static int write_json(int dir_fd, const char *id, cJSON *j)
{
	_cleanup_free_ char *name = file_name(id);
	_cleanup_free_ char *s = cJSON_PrintUnformatted(j);
	if (!name || !s)
		return -ENOMEM;
	return write_file_atomic(dir_fd, name, s, strlen(s), 0600);
}

static int store_pending(struct entry *e)
{
	_cleanup_json_ cJSON *j = entry_json(e, e->state == ENTRY_RUNNING ? "running" : "queued");
	return j ? write_json(e->a->pending_fd, e->id, j) : -ENOMEM;
}

/* Moves the entry to done/ or dead/ (written there first, then removed from pending/). */
static int store_final(struct entry *e, bool ok, int status, const char *body, size_t len)
{
	struct async *a = e->a;
	_cleanup_json_ cJSON *j = entry_json(e, ok ? "succeeded" : "failed");
	_cleanup_free_ char *b = body ? strndup(body, len) : NULL;
	if (!j || (body && !b) || !cJSON_AddNumberToObject(j, "status", status) ||
	    !cJSON_AddNumberToObject(j, "finished_us", (double)realtime_us()))
		return -ENOMEM;
	cJSON *parsed = b ? cJSON_Parse(b) : NULL;
	if (ok)
		cJSON_AddItemToObject(j, "result", parsed ?: cJSON_CreateString(b ?: ""));
	else
		cJSON_AddItemToObject(j, "error", parsed ?: cJSON_CreateString(b ?: "failed"));
	int r = write_json(ok ? a->done_fd : a->dead_fd, e->id, j);
	if (r < 0)
		return r;
	_cleanup_free_ char *name = file_name(e->id);
	if (!name)
		return -ENOMEM;
	if (unlinkat(a->pending_fd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	(void)fsync(a->pending_fd);
	return 0;
}

static void finish(struct entry *e, bool ok, int status, const char *body, size_t len)
{
	struct async *a = e->a;
	int r = store_final(e, ok, status, body, len);
	if (r < 0)
		log_error_errno(r, "async: cannot record the end of invocation %s of '%s' (%m); it "
				"stays pending on disk", e->id, e->function);
	if (!ok)
		log_info("async: invocation %s of '%s' failed %u time(s); now a dead letter", e->id,
			 e->function, e->attempts);
	list_remove(a, e);
	entry_free(e);
}

static char *error_json(const char *kind, const char *msg)
{
	cJSON *j = cJSON_CreateObject();
	char *s = NULL;
	if (j && cJSON_AddStringToObject(j, "error", kind) &&
	    cJSON_AddStringToObject(j, "message", msg))
		s = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return s;
}

/* Durably running before it runs: a crash from here on is at most once. */
static void on_start(void *userdata)
{
	struct entry *e = userdata;
	e->state = ENTRY_RUNNING;
	e->attempts++;
	int r = store_pending(e);
	if (r < 0)
		log_warning_errno(r, "async: cannot record invocation %s of '%s' as running (%m); "
				  "a crash now would run it again", e->id, e->function);
}

static void on_done(void *userdata, const struct invoke_result *r)
{
	struct entry *e = userdata;
	struct async *a = e->a;
	bool started = e->state == ENTRY_RUNNING;
	e->inv = NULL;
	a->n_running--;
	if (r->status == 200)
		finish(e, true, r->status, r->body, r->len);
	else if (!started && (r->status == 429 || r->status == 503)) {
		/* Throttled, at capacity, no instance to be had: it never ran; not an attempt. */
		e->state = ENTRY_QUEUED;
		e->not_before_us = now_us() + THROTTLED_RETRY_US;
	} else if ((!started && r->status != 404 && ++e->attempts > a->cfg.retries) ||
		   r->status == 404 || e->attempts > a->cfg.retries)
		/* (not started and not 404: its instance could not initialise; an attempt) */
		finish(e, false, r->status, r->body, r->len);
	else {
		/* Retry with back-off: backoff_ms, then twice that, ... */
		e->state = ENTRY_QUEUED;
		unsigned shift = e->attempts - 1 < 16 ? e->attempts - 1 : 16;
		e->not_before_us = now_us() + (((uint64_t)a->cfg.backoff_ms * 1000u) << shift);
		int k = store_pending(e);
		if (k < 0)
			log_warning_errno(k, "async: cannot record invocation %s for a retry: %m",
					  e->id);
	}
	pump(a);
}

static void on_timer(struct loop_timer *t)
{
	struct async *a = (struct async *)((char *)t - offsetof(struct async, timer));
	pump(a);
}

/* Hands ready entries to the scheduler, up to max_running; re-arms the timer for the next one
 * waiting for its time. */
static void pump(struct async *a)
{
	if (a->pumping)
		return;
	a->pumping = true;
	uint64_t now = now_us(), next = 0;
	for (struct entry *e = a->head, *n; e && a->n_running < a->cfg.max_running; e = n) {
		n = e->next;
		if (e->state != ENTRY_QUEUED)
			continue;
		if (e->not_before_us > now) {
			if (!next || e->not_before_us < next)
				next = e->not_before_us;
			continue;
		}
		e->state = ENTRY_HANDED;
		a->n_running++;
		int r = sched_invoke_ex(a->sched, e->function, e->version, e->event, e->len, on_done,
					on_start,
					e, &e->inv);
		if (r == -EAGAIN) {
			/* The function's queue is full: later, not an attempt. */
			a->n_running--;
			e->state = ENTRY_QUEUED;
			e->not_before_us = now + THROTTLED_RETRY_US;
			if (!next || e->not_before_us < next)
				next = e->not_before_us;
		} else if (r < 0) {
			a->n_running--;
			_cleanup_free_ char *body = error_json(
				r == -ENOENT ? "not_found" : "internal",
				r == -ENOENT ? "the function (or the version it was sent to) does not "
					       "exist any more"
					     : strerror(-r));
			finish(e, false, r == -ENOENT ? 404 : 500, body, body ? strlen(body) : 0);
		}
		/* else: on_done() may have run already and freed e; n was taken before. */
	}
	loop_timer_stop(a->loop, &a->timer);
	if (next)
		(void)loop_timer_start(a->loop, &a->timer, next);
	a->pumping = false;
}

static void make_id(struct async *a, char out[40])
{
	unsigned char b[4];
	if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b))
		memset(b, 0, sizeof(b));
	/* Sorts by acceptance: time, then a counter, then a little randomness. */
	snprintf(out, 40, "%016" PRIx64 "%08" PRIx32 "%02x%02x%02x%02x", (uint64_t)realtime_us(),
		 ++a->seq, b[0], b[1], b[2], b[3]);
}

int async_submit(struct async *a, const char *function, const char *event, size_t len,
		 char ret_id[40])
{
	return async_submit_version(a, function, 0, event, len, ret_id);
}

int async_submit_version(struct async *a, const char *function, uint32_t version,
			 const char *event, size_t len, char ret_id[40])
{
	if (a->n_pending >= a->cfg.max_pending)
		return -EAGAIN;
	struct entry *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->a = a;
	e->function = strdup(function);
	e->event = malloc(len + 1);
	if (!e->function || !e->event) {
		entry_free(e);
		return -ENOMEM;
	}
	memcpy(e->event, event, len);
	e->event[len] = 0;
	e->len = len;
	e->version = version;
	e->accepted_us = realtime_us();
	e->state = ENTRY_QUEUED;
	make_id(a, e->id);
	int r = store_pending(e);
	if (r < 0) {
		entry_free(e);
		return r;
	}
	memcpy(ret_id, e->id, 40);
	list_append(a, e);
	pump(a);
	return 0;
}

static bool id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n >= 40)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

/* What a stored file says, reshaped for the API. */
static cJSON *public_json(cJSON *stored)
{
	cJSON *out = cJSON_CreateObject();
	if (!out)
		return NULL;
	static const char *const keys[] = { "id", "function", "state", "attempts", "status",
					    "result", "error" };
	for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
		cJSON *v = cJSON_GetObjectItemCaseSensitive(stored, keys[i]);
		if (v)
			cJSON_AddItemToObject(out, keys[i], cJSON_Duplicate(v, true));
	}
	char t[32];
	cJSON *acc = cJSON_GetObjectItemCaseSensitive(stored, "accepted_us");
	if (cJSON_IsNumber(acc)) {
		format_time_us((int64_t)acc->valuedouble, t);
		cJSON_AddStringToObject(out, "accepted", t);
	}
	cJSON *fin = cJSON_GetObjectItemCaseSensitive(stored, "finished_us");
	if (cJSON_IsNumber(fin)) {
		format_time_us((int64_t)fin->valuedouble, t);
		cJSON_AddStringToObject(out, "finished", t);
	}
	return out;
}

static int read_json(int dir_fd, const char *id, cJSON **ret)
{
	_cleanup_free_ char *name = file_name(id);
	_cleanup_free_ char *data = NULL;
	size_t len;
	if (!name)
		return -ENOMEM;
	int r = read_file(dir_fd, name, ENTRY_MAX_BYTES, &data, &len);
	if (r < 0)
		return r;
	cJSON *j = json_parse_exact(data, len);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return -EBADMSG;
	}
	*ret = j;
	return 0;
}

int async_get_json(struct async *a, const char *id, cJSON **ret)
{
	if (!id_valid(id))
		return -ENOENT;
	for (struct entry *e = a->head; e; e = e->next)
		if (streq(e->id, id)) {
			_cleanup_json_ cJSON *j =
				entry_json(e, e->state == ENTRY_RUNNING ? "running" : "queued");
			cJSON *o = j ? public_json(j) : NULL;
			if (!o)
				return -ENOMEM;
			*ret = o;
			return 0;
		}
	int fds[] = { a->done_fd, a->dead_fd };
	for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
		_cleanup_json_ cJSON *j = NULL;
		int r = read_json(fds[i], id, &j);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return r;
		cJSON *o = public_json(j);
		if (!o)
			return -ENOMEM;
		*ret = o;
		return 0;
	}
	return -ENOENT;
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The ids of the .json files in dir_fd, sorted (oldest first). */
static int list_ids(int dir_fd, char ***ret, size_t *ret_n)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		safe_close(fd);
		return -errno;
	}
	char **v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int r = 0;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || !streq(de->d_name + l - 5, ".json"))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nv = reallocarray(v, cap, sizeof(char *));
			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
		}
		if (!(v[n] = strndup(de->d_name, l - 5))) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return r;
	}
	if (n)
		qsort(v, n, sizeof(char *), cmp_str);
	*ret = v;
	*ret_n = n;
	return 0;
}

static void ids_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int async_dead_letters_json(struct async *a, const char *function, cJSON **ret)
{
	char **ids = NULL;
	size_t n = 0;
	int r = list_ids(a->dead_fd, &ids, &n);
	if (r < 0)
		return r;
	cJSON *o = cJSON_CreateObject();
	cJSON *arr = o ? cJSON_AddArrayToObject(o, "dead_letters") : NULL;
	if (!arr)
		r = -ENOMEM;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		_cleanup_json_ cJSON *j = NULL;
		if (read_json(a->dead_fd, ids[i], &j) < 0)
			continue;
		const char *fn = cJSON_GetStringValue(cJSON_GetObjectItem(j, "function"));
		if (!fn || !streq(fn, function))
			continue;
		cJSON *p = public_json(j);
		if (!p || !cJSON_AddItemToArray(arr, p))
			r = -ENOMEM;
	}
	ids_free(ids, n);
	if (r < 0) {
		cJSON_Delete(o);
		return r;
	}
	*ret = o;
	return 0;
}

size_t async_pending(const struct async *a)
{
	return a->n_pending;
}

void async_function_deleted(struct async *a, const char *function)
{
	for (struct entry *e = a->head, *n; e; e = n) {
		n = e->next;
		if (!streq(e->function, function) || e->inv)
			continue; /* one on an instance ends with the function (404 or killed) */
		_cleanup_free_ char *name = file_name(e->id);
		if (name)
			(void)unlinkat(a->pending_fd, name, 0);
		list_remove(a, e);
		entry_free(e);
	}
	char **ids = NULL;
	size_t n = 0;
	if (list_ids(a->dead_fd, &ids, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		_cleanup_json_ cJSON *j = NULL;
		if (read_json(a->dead_fd, ids[i], &j) < 0)
			continue;
		const char *fn = cJSON_GetStringValue(cJSON_GetObjectItem(j, "function"));
		_cleanup_free_ char *name = file_name(ids[i]);
		if (fn && name && streq(fn, function))
			(void)unlinkat(a->dead_fd, name, 0);
	}
	ids_free(ids, n);
}

/* At start: pending entries back into memory; those a dead spored left running become dead
 * letters; succeeded ones past DONE_KEEP_S go. */
static int load(struct async *a)
{
	char **ids = NULL;
	size_t n = 0;
	int r = list_ids(a->pending_fd, &ids, &n);
	if (r < 0)
		return r;
	size_t interrupted = 0, loaded = 0, bad = 0;
	for (size_t i = 0; i < n; i++) {
		_cleanup_json_ cJSON *j = NULL;
		_cleanup_free_ char *name = file_name(ids[i]);
		if (!name) {
			r = -ENOMEM;
			break;
		}
		const char *fn, *state, *ev;
		const cJSON *att, *acc;
		if (!id_valid(ids[i]) || read_json(a->pending_fd, ids[i], &j) < 0 ||
		    !(fn = cJSON_GetStringValue(cJSON_GetObjectItem(j, "function"))) ||
		    !(state = cJSON_GetStringValue(cJSON_GetObjectItem(j, "state"))) ||
		    !(ev = cJSON_GetStringValue(cJSON_GetObjectItem(j, "event"))) ||
		    !cJSON_IsNumber(att = cJSON_GetObjectItem(j, "attempts")) ||
		    !cJSON_IsNumber(acc = cJSON_GetObjectItem(j, "accepted_us"))) {
			/* A torn or foreign file: keep it aside, never lose it silently. */
			log_error("async: async/pending/%s is unreadable; moved to async/dead/", name);
			(void)renameat(a->pending_fd, name, a->dead_fd, name);
			bad++;
			continue;
		}
		struct entry *e = calloc(1, sizeof(*e));
		if (!e || !(e->function = strdup(fn)) || !(e->event = strdup(ev))) {
			entry_free(e);
			r = -ENOMEM;
			break;
		}
		e->a = a;
		snprintf(e->id, sizeof(e->id), "%s", ids[i]);
		e->len = strlen(ev);
		const cJSON *ver = cJSON_GetObjectItem(j, "version");
		if (cJSON_IsNumber(ver) && ver->valuedouble >= 1 && ver->valuedouble <= UINT32_MAX)
			e->version = (uint32_t)ver->valuedouble;
		e->attempts = (uint32_t)att->valuedouble;
		e->accepted_us = (int64_t)acc->valuedouble;
		list_append(a, e);
		if (streq(state, "running")) {
			_cleanup_free_ char *body = error_json(
				"interrupted", "spored stopped while this invocation was running; it "
					       "is not run again (it may have run in part)");
			finish(e, false, 500, body, body ? strlen(body) : 0);
			interrupted++;
		} else
			loaded++;
	}
	ids_free(ids, n);
	if (loaded || interrupted || bad)
		log_info("async: %zu invocation(s) pending, %zu interrupted by the last stop (now dead "
			 "letters), %zu unreadable",
			 loaded, interrupted, bad);

	/* Prune what succeeded long ago. */
	if (list_ids(a->done_fd, &ids, &n) >= 0) {
		uint64_t cutoff = (uint64_t)realtime_us() - (uint64_t)DONE_KEEP_S * 1000000u;
		for (size_t i = 0; i < n; i++) {
			/* the id starts with 16 hex digits of the acceptance time */
			char head[17];
			snprintf(head, sizeof(head), "%s", ids[i]);
			uint64_t t = strtoull(head, NULL, 16);
			_cleanup_free_ char *name = file_name(ids[i]);
			if (name && t < cutoff)
				(void)unlinkat(a->done_fd, name, 0);
		}
		ids_free(ids, n);
	}
	return r;
}

static int open_sub(int dir_fd, const char *name)
{
	if (mkdirat(dir_fd, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

int async_new(struct loop *l, struct sched *s, struct registry *reg, const char *state_dir,
	      const struct async_config *cfg, struct async **ret)
{
	_cleanup_free_ char *dir = NULL;
	if (asprintf(&dir, "%s/async", state_dir) < 0)
		return -ENOMEM;
	int r = mkdir_p(dir, 0700);
	if (r < 0)
		return r;
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	struct async *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->loop = l;
	a->sched = s;
	a->reg = reg;
	a->cfg = *cfg;
	if (!a->cfg.max_pending)
		a->cfg.max_pending = 100000;
	if (!a->cfg.max_running)
		a->cfg.max_running = 64;
	if (!a->cfg.backoff_ms)
		a->cfg.backoff_ms = 1000;
	a->timer.fn = on_timer;
	a->pending_fd = open_sub(dfd, "pending");
	a->done_fd = open_sub(dfd, "done");
	a->dead_fd = open_sub(dfd, "dead");
	r = a->pending_fd < 0 ? a->pending_fd : a->done_fd < 0 ? a->done_fd : a->dead_fd;
	if (r >= 0)
		r = load(a);
	if (r < 0) {
		async_free(a);
		return r;
	}
	*ret = a;
	return 0;
}

/* Call after the zygotes are up: starts dispatching what was loaded. */
void async_start(struct async *a)
{
	pump(a);
}

struct async *async_free(struct async *a)
{
	if (!a)
		return NULL;
	loop_timer_stop(a->loop, &a->timer);
	while (a->head) {
		struct entry *e = a->head;
		/* One not on an instance yet is "queued" on disk and runs after the restart; one
		 * running stays "running" there: interrupted. */
		if (e->inv)
			sched_invocation_cancel(a->sched, e->inv);
		list_remove(a, e);
		entry_free(e);
	}
	safe_close(a->pending_fd);
	safe_close(a->done_fd);
	safe_close(a->dead_fd);
	free(a);
	return NULL;
}
