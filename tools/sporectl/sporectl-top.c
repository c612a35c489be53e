/* SPDX-License-Identifier: MIT */
/* sporectl top (sporectl-top.h). */
#include "sporectl-top.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/bpf.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "spore-config.h"
#include "util/buf.h"
#include "util/cleanup.h"

#define PIN_DIR_DEFAULT "/sys/fs/bpf/spore"
#define INTERVAL_MS_DEFAULT 1000u

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete)

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- where the figures come from ---------------------------------------------------------- */

struct source {
	const struct client *client; /* API, when map is NULL */
	char *api_name;              /* client_describe() */
	const struct spore_fn_stats *map;
	size_t map_len;
	uint32_t max_entries;
	char *pin_dir;
};

static void source_done(struct source *s)
{
	if (s->map)
		(void)munmap((void *)s->map, s->map_len);
	free(s->pin_dir);
	free(s->api_name);
}

/* The pinned fn_stats map, mapped read-only: plain bpf(2), so that sporectl needs no libbpf. */
static int source_open_map(struct source *s, const char *dir)
{
	union bpf_attr a;
	struct bpf_map_info info;
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ char *path = NULL;
	size_t len, page = (size_t)getpagesize();
	void *p;

	if (asprintf(&path, "%s/fn_stats", dir) < 0)
		return -ENOMEM;
	memset(&a, 0, sizeof(a));
	a.pathname = (uint64_t)(uintptr_t)path;
	/* Not BPF_F_RDONLY: mmap() turns MAP_SHARED of a read-only file into a private mapping,
	 * which the kernel refuses for BPF maps. The mapping itself is PROT_READ. */
	fd = (int)syscall(__NR_bpf, BPF_OBJ_GET, &a, sizeof(a));
	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	memset(&a, 0, sizeof(a));
	a.info.bpf_fd = (uint32_t)fd;
	a.info.info_len = sizeof(info);
	a.info.info = (uint64_t)(uintptr_t)&info;
	if (syscall(__NR_bpf, BPF_OBJ_GET_INFO_BY_FD, &a, sizeof(a)) < 0)
		return -errno;
	/* Another layout (an older or newer spored): the API knows how to say it. */
	if (info.type != BPF_MAP_TYPE_ARRAY || !(info.map_flags & BPF_F_MMAPABLE) ||
	    info.value_size != sizeof(struct spore_fn_stats) || info.max_entries == 0)
		return -EPROTO;
	len = ((size_t)info.max_entries * info.value_size + page - 1) & ~(page - 1);
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	s->pin_dir = strdup(dir);
	if (!s->pin_dir) {
		(void)munmap(p, len);
		return -ENOMEM;
	}
	s->map = p;
	s->map_len = len;
	s->max_entries = info.max_entries;
	return 0;
}

static int source_open(struct source *s, const struct client *c)
{
	const char *env = getenv("SPORE_PIN_DIR");

	s->client = c;
	s->api_name = client_describe(c);
	if (!s->api_name)
		return -ENOMEM;
	/* The maps are this host's default spored's: use them only when that is the one asked. */
	if (env && *env)
		return source_open_map(s, env) == -ENOMEM ? -ENOMEM : 0;
	if (!c->url && streq(c->socket_path, SPORE_DEFAULT_API_SOCKET))
		return source_open_map(s, PIN_DIR_DEFAULT) == -ENOMEM ? -ENOMEM : 0;
	return 0;
}

static int fn_cmp(const void *a, const void *b)
{
	return strncmp(((const struct top_fn *)a)->s.name, ((const struct top_fn *)b)->s.name,
		       SPORE_FN_NAME_MAX);
}

static int sample_map(struct source *s, struct top_fn **ret, size_t *ret_n)
{
	struct top_fn *v = NULL;
	size_t n = 0;

	v = calloc(s->max_entries, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->max_entries; i++) {
		/* Each field is an aligned 64-bit word that spored or BPF stores whole. */
		memcpy(&v[n].s, &s->map[i], sizeof(v[n].s));
		v[n].s.name[SPORE_FN_NAME_MAX - 1] = '\0';
		if (v[n].s.name[0])
			n++;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static uint64_t get_u64(const cJSON *o, const char *k)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(x) && x->valuedouble > 0 ? (uint64_t)x->valuedouble : 0;
}

int top_parse_json(const char *json, size_t len, struct top_fn **ret, size_t *ret_n)
{
	_cleanup_(cJSON_Deletep) cJSON *j = cJSON_ParseWithLength(json, len);
	_cleanup_free_ struct top_fn *v = NULL;
	const cJSON *fns, *f;
	size_t n = 0;
	int k;

	fns = cJSON_GetObjectItemCaseSensitive(j, "functions");
	if (!cJSON_IsArray(fns))
		return -EBADMSG;
	k = cJSON_GetArraySize(fns);
	v = calloc(k > 0 ? (size_t)k : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	cJSON_ArrayForEach(f, fns) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(f, "errors");
		const cJSON *lat = cJSON_GetObjectItemCaseSensitive(f, "latency_us");
		const cJSON *b = cJSON_GetObjectItemCaseSensitive(lat, "buckets"), *x;
		struct spore_fn_stats *s = &v[n].s;
		unsigned i = 0;

		if (!cJSON_IsString(name) || !*name->valuestring ||
		    strlen(name->valuestring) >= SPORE_FN_NAME_MAX)
			return -EBADMSG;
		strcpy(s->name, name->valuestring);
		s->requests = get_u64(f, "requests");
		s->errors.function_error = get_u64(e, "function_error");
		s->errors.timeout = get_u64(e, "timeout");
		s->errors.crashed = get_u64(e, "crashed");
		s->errors.out_of_memory = get_u64(e, "out_of_memory");
		s->errors.queue_full = get_u64(e, "queue_full");
		s->errors.queue_timeout = get_u64(e, "queue_timeout");
		s->errors.other = get_u64(e, "other");
		s->throttled = get_u64(f, "throttled");
		s->inflight = get_u64(f, "inflight");
		s->queued = get_u64(f, "queued");
		s->instances = get_u64(f, "instances");
		s->cold_starts = get_u64(f, "cold_starts");
		s->cpu_ns = get_u64(f, "cpu_ns");
		s->mem_bytes = get_u64(f, "memory_bytes");
		s->mem_peak_bytes = get_u64(f, "memory_peak_bytes");
		s->lat_sum_us = get_u64(lat, "sum");
		cJSON_ArrayForEach(x, b) {
			if (i >= SPORE_LAT_BUCKETS)
				break;
			s->lat_us[i++] = cJSON_IsNumber(x) && x->valuedouble > 0
						 ? (__u64)x->valuedouble
						 : 0;
		}
		n++;
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

/* Fills *ret; on failure prints why (once per distinct message in live mode: the caller). */
static int sample(struct source *s, struct top_fn **ret, size_t *ret_n, char **ret_error)
{
	_cleanup_(client_response_done) struct client_response resp = {};
	int r;

	if (s->map)
		r = sample_map(s, ret, ret_n);
	else {
		r = client_request(s->client, "GET", "/v1/metrics", NULL, 0, NULL, NULL, &resp,
				   ret_error);
		if (r < 0)
			return r;
		if (resp.status < 200 || resp.status >= 300) {
			const char *body = buf_cstr(&resp.body) ?: "";

			if (asprintf(ret_error, "GET /v1/metrics: %ld %.*s", resp.status,
				     (int)strcspn(body, "\r\n"), body) < 0)
				return -ENOMEM;
			return -EIO;
		}
		r = top_parse_json(resp.body.data ?: "", resp.body.len, ret, ret_n);
		if (r == -EBADMSG &&
		    asprintf(ret_error, "GET /v1/metrics: not a metrics answer") < 0)
			return -ENOMEM;
	}
	if (r >= 0 && *ret_n > 1)
		qsort(*ret, *ret_n, sizeof(**ret), fn_cmp);
	return r;
}

/* ---- rows --------------------------------------------------------------------------------- */

struct row {
	const char *name;
	uint64_t requests, errors, inflight, queued, instances, cold_starts, mem;
	double rps, eps, cpu_pct, p50_us, p99_us; /* p*: < 0 when no request ended meanwhile */
};

static uint64_t errors_of(const struct spore_fn_stats *s)
{
	const struct spore_fn_errors *e = &s->errors;

	return e->function_error + e->timeout + e->crashed + e->out_of_memory + e->queue_full +
	       e->queue_timeout + e->other;
}

static uint64_t delta(uint64_t now, uint64_t then)
{
	return now >= then ? now - then : now; /* restarted: counted from 0 */
}

static void make_row(const struct spore_fn_stats *prev, const struct spore_fn_stats *cur,
		     double dt_s, struct row *r)
{
	static const struct spore_fn_stats zero;
	__u64 lat[SPORE_LAT_BUCKETS];
	uint64_t n = 0;

	if (!prev || cur->requests < prev->requests)
		prev = &zero; /* new, or a restarted spored */
	*r = (struct row){
		.name = cur->name,
		.requests = cur->requests,
		.errors = errors_of(cur),
		.inflight = cur->inflight,
		.queued = cur->queued,
		.instances = cur->instances,
		.cold_starts = cur->cold_starts,
		.mem = cur->mem_bytes,
		.rps = (double)delta(cur->requests, prev->requests) / dt_s,
		.eps = (double)delta(errors_of(cur), errors_of(prev)) / dt_s,
		.cpu_pct = (double)delta(cur->cpu_ns, prev->cpu_ns) / (dt_s * 1e9) * 100.0,
		.p50_us = -1,
		.p99_us = -1,
	};
	for (unsigned i = 0; i < SPORE_LAT_BUCKETS; i++) {
		lat[i] = delta(cur->lat_us[i], prev->lat_us[i]);
		n += lat[i];
	}
	if (n > 0) {
		r->p50_us = spore_lat_quantile_us(lat, 0.5);
		r->p99_us = spore_lat_quantile_us(lat, 0.99);
	}
}

static void fmt_latency(double us, char out[16])
{
	if (us < 0)
		(void)snprintf(out, 16, "-");
	else if (us < 1000)
		(void)snprintf(out, 16, "%.0fus", us);
	else if (us < 1000000)
		(void)snprintf(out, 16, "%.1fms", us / 1e3);
	else
		(void)snprintf(out, 16, "%.2fs", us / 1e6);
}

static void fmt_bytes(uint64_t b, char out[16])
{
	if (b < 1024)
		(void)snprintf(out, 16, "%" PRIu64 "B", b);
	else if (b < 1024 * 1024)
		(void)snprintf(out, 16, "%.1fK", (double)b / 1024);
	else if (b < 1024ull * 1024 * 1024)
		(void)snprintf(out, 16, "%.1fM", (double)b / (1024 * 1024));
	else
		(void)snprintf(out, 16, "%.1fG", (double)b / (1024 * 1024 * 1024));
}

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->rps != y->rps)
		return x->rps > y->rps ? -1 : 1; /* busiest first */
	return strcmp(x->name, y->name);
}

static bool wanted(const char *name, char **functions, size_t n_functions)
{
	if (n_functions == 0)
		return true;
	for (size_t i = 0; i < n_functions; i++)
		if (streq(functions[i], name))
			return true;
	return false;
}

/* The rows of cur (sorted by name, as prev), matched with prev by name. */
static struct row *make_rows(const struct top_fn *prev, size_t n_prev, const struct top_fn *cur,
			     size_t n_cur, double dt_s, char **functions, size_t n_functions,
			     size_t *ret_n)
{
	struct row *rows = calloc(n_cur ? n_cur : 1, sizeof(*rows));
	size_t n = 0, j = 0;

	if (!rows)
		return NULL;
	for (size_t i = 0; i < n_cur; i++) {
		int c = 1;

		while (j < n_prev && (c = fn_cmp(&prev[j], &cur[i])) < 0)
			j++;
		if (!wanted(cur[i].s.name, functions, n_functions))
			continue;
		make_row(j < n_prev && c == 0 ? &prev[j].s : NULL, &cur[i].s, dt_s, &rows[n++]);
	}
	qsort(rows, n, sizeof(*rows), row_cmp);
	*ret_n = n;
	return rows;
}

static int print_json(const struct source *src, const struct row *rows, size_t n, double dt_s)
{
	_cleanup_(cJSON_Deletep) cJSON *o = cJSON_CreateObject();
	_cleanup_free_ char *text = NULL;
	cJSON *a;
	bool ok;

	ok = o && cJSON_AddStringToObject(o, "source", src->map ? "bpf" : "api") &&
	     cJSON_AddNumberToObject(o, "interval_s", dt_s) &&
	     (a = cJSON_AddArrayToObject(o, "functions"));
	for (size_t i = 0; ok && i < n; i++) {
		const struct row *r = &rows[i];
		cJSON *f = cJSON_CreateObject();

		ok = f && cJSON_AddItemToArray(a, f);
		if (!ok) {
			cJSON_Delete(f);
			break;
		}
		ok = cJSON_AddStringToObject(f, "name", r->name) &&
		     cJSON_AddNumberToObject(f, "requests", (double)r->requests) &&
		     cJSON_AddNumberToObject(f, "rps", r->rps) &&
		     cJSON_AddNumberToObject(f, "errors", (double)r->errors) &&
		     cJSON_AddNumberToObject(f, "errors_per_s", r->eps) &&
		     cJSON_AddNumberToObject(f, "inflight", (double)r->inflight) &&
		     cJSON_AddNumberToObject(f, "queued", (double)r->queued) &&
		     cJSON_AddNumberToObject(f, "instances", (double)r->instances) &&
		     cJSON_AddNumberToObject(f, "cold_starts", (double)r->cold_starts) &&
		     cJSON_AddNumberToObject(f, "cpu_percent", r->cpu_pct) &&
		     cJSON_AddNumberToObject(f, "memory_bytes", (double)r->mem) &&
		     (r->p50_us < 0 ? cJSON_AddNullToObject(f, "p50_us")
				    : cJSON_AddNumberToObject(f, "p50_us", r->p50_us)) &&
		     (r->p99_us < 0 ? cJSON_AddNullToObject(f, "p99_us")
				    : cJSON_AddNumberToObject(f, "p99_us", r->p99_us));
	}
	text = ok ? cJSON_Print(o) : NULL;
	if (!text)
		return -ENOMEM;
	puts(text);
	return 0;
}

static void print_table(const struct source *src, const struct row *rows, size_t n, double dt_s,
			bool live)
{
	int w = 8; /* "FUNCTION" */
	double total = 0;

	for (size_t i = 0; i < n; i++) {
		int l = (int)strlen(rows[i].name);

		if (l > w)
			w = l;
		total += rows[i].rps;
	}
	if (live) {
		char clock[16] = "";
		time_t t = time(NULL);
		struct tm tm;

		if (localtime_r(&t, &tm))
			(void)strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
		/* Home and clear: one frame a refresh. */
		fputs("\033[H\033[2J", stdout);
		printf("sporectl top - %s  %zu function%s, %.1f requests/s, from %s%s, every %.1fs "
		       "(Ctrl-C quits)\n\n",
		       clock, n, n == 1 ? "" : "s", total, src->map ? "BPF maps in " : "spored at ",
		       src->map ? src->pin_dir : src->api_name, dt_s);
	}
	printf("%-*s %9s %7s %8s %6s %5s %7s %6s %8s %8s %8s\n", w, "FUNCTION", "REQ/s", "ERR/s",
	       "INFLIGHT", "QUEUE", "INST", "COLD", "CPU%", "MEM", "P50", "P99");
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		char mem[16], p50[16], p99[16];

		fmt_bytes(r->mem, mem);
		fmt_latency(r->p50_us, p50);
		fmt_latency(r->p99_us, p99);
		printf("%-*s %9.1f %7.1f %8" PRIu64 " %6" PRIu64 " %5" PRIu64 " %7" PRIu64
		       " %6.1f %8s %8s %8s\n",
		       w, r->name, r->rps, r->eps, r->inflight, r->queued, r->instances,
		       r->cold_starts, r->cpu_pct, mem, p50, p99);
	}
	(void)fflush(stdout);
}

/* Sleeps until deadline (CLOCK_MONOTONIC ns); false when interrupted by SIGINT/SIGTERM. */
static bool sleep_until(uint64_t deadline)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline / 1000000000u),
		.tv_nsec = (long)(deadline % 1000000000u),
	};

	while (!stop) {
		int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);

		if (r == 0)
			return !stop;
		if (r != EINTR)
			return false;
	}
	return false;
}

int sporectl_top(const struct client *c, bool json, char **functions, size_t n_functions)
{
	_cleanup_(source_done) struct source src = {};
	_cleanup_free_ struct top_fn *prev = NULL;
	_cleanup_free_ char *last_error = NULL;
	const char *env = getenv("SPORECTL_TOP_INTERVAL_MS");
	bool live = !json && isatty(STDOUT_FILENO);
	uint64_t interval_ms = INTERVAL_MS_DEFAULT, t_prev;
	size_t n_prev = 0;
	bool have_prev; /* rates need two samples in a row */
	struct sigaction sa = { .sa_handler = on_signal };
	int r;

	if (env && *env) {
		char *end;
		unsigned long long v = strtoull(env, &end, 10);

		if (*end || v == 0 || v > 3600000) {
			fprintf(stderr, "sporectl: invalid SPORECTL_TOP_INTERVAL_MS '%s'\n", env);
			return EXIT_FAILURE;
		}
		interval_ms = v;
	}
	if (source_open(&src, c) < 0) {
		fprintf(stderr, "sporectl: out of memory\n");
		return EXIT_FAILURE;
	}
	/* No SA_RESTART: the sleep ends at once. */
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGTERM, &sa, NULL);

	r = sample(&src, &prev, &n_prev, &last_error);
	if (r < 0 && !live) {
		fprintf(stderr, "sporectl: %s\n", last_error ?: strerror(-r));
		return EXIT_FAILURE;
	}
	have_prev = r >= 0;
	t_prev = now_ns();
	while (sleep_until(t_prev + interval_ms * 1000000u)) {
		_cleanup_free_ struct top_fn *cur = NULL;
		_cleanup_free_ struct row *rows = NULL;
		_cleanup_free_ char *error = NULL;
		size_t n_cur = 0, n_rows = 0;
		uint64_t t_cur;

		r = sample(&src, &cur, &n_cur, &error);
		t_cur = now_ns();
		if (r < 0) {
			if (!live) {
				fprintf(stderr, "sporectl: %s\n", error ?: strerror(-r));
				return EXIT_FAILURE;
			}
			/* spored restarting: say so on top of the last figures, and go on. */
			free(last_error);
			last_error = error ? TAKE_PTR(error) : strdup(strerror(-r));
			fputs("\033[H\033[2J", stdout);
			printf("sporectl top: %s (retrying)\n", last_error ?: "error");
			(void)fflush(stdout);
			have_prev = false;
			t_prev = t_cur;
			continue;
		}
		if (!have_prev) {
			free(prev);
			prev = TAKE_PTR(cur);
			n_prev = n_cur;
			t_prev = t_cur;
			have_prev = true;
			continue;
		}
		double dt_s = (double)(t_cur - t_prev) / 1e9;
		rows = make_rows(prev, n_prev, cur, n_cur, dt_s, functions, n_functions, &n_rows);
		if (!rows) {
			fprintf(stderr, "sporectl: out of memory\n");
			return EXIT_FAILURE;
		}
		if (json) {
			if (print_json(&src, rows, n_rows, dt_s) < 0) {
				fprintf(stderr, "sporectl: out of memory\n");
				return EXIT_FAILURE;
			}
		} else
			print_table(&src, rows, n_rows, dt_s, live);
		if (!live)
			return EXIT_SUCCESS;
		free(prev);
		prev = TAKE_PTR(cur);
		n_prev = n_cur;
		t_prev = t_cur;
	}
	if (live)
		putchar('\n');
	return EXIT_SUCCESS;
}
