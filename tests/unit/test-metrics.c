/* SPDX-License-Identifier: MIT */
/* The meter in fallback mode (no BPF: deterministic, no privilege needed) and the renderings of
 * its figures: slots, the inline counters, the latency histogram and its quantiles, Prometheus
 * text and JSON. The BPF side is tests/unit-extra/test-meter.c. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "meter.h"
#include "metrics.h"
#include "util/buf.h"
#include "util/cleanup.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete)

static struct meter *fallback(uint32_t max_functions)
{
	const struct meter_config cfg = { .bpf = false, .max_functions = max_functions };
	char *why = NULL;
	struct meter *m = NULL;

	assert_int_equal(meter_new(&cfg, &m, &why), 0);
	assert_non_null(m);
	assert_false(meter_bpf_active(m));
	assert_null(meter_cpu_hook_name(m));
	assert_null(meter_pin_dir(m));
	/* Fallback on purpose: nothing to explain. */
	assert_null(why);
	return m;
}

/* ---- the meter ------------------------------------------------------------------------------ */

static void test_config(void **state)
{
	struct meter *m = NULL;
	struct meter_config cfg = { .bpf = false };

	(void)state;
	assert_int_equal(meter_new(NULL, &m, NULL), -EINVAL);
	assert_int_equal(meter_new(&cfg, NULL, NULL), -EINVAL);
	cfg.max_functions = METER_MAX_FUNCTIONS_LIMIT + 1;
	assert_int_equal(meter_new(&cfg, &m, NULL), -EINVAL);
	cfg.max_functions = 0;
	cfg.max_cgroups = METER_MAX_CGROUPS_LIMIT + 1;
	assert_int_equal(meter_new(&cfg, &m, NULL), -EINVAL);
	cfg.max_cgroups = 0;
	cfg.cpu_hook = _METER_CPU_HOOK_MAX;
	assert_int_equal(meter_new(&cfg, &m, NULL), -EINVAL);
	assert_null(m);
	cfg.cpu_hook = METER_CPU_HOOK_AUTO;
	/* Defaults; no reason wanted. */
	assert_int_equal(meter_new(&cfg, &m, NULL), 0);
	assert_int_equal(meter_max_functions(m), METER_MAX_FUNCTIONS_DEFAULT);
	m = meter_free(m);
	assert_null(meter_free(NULL));
}

static void test_slots(void **state)
{
	_cleanup_(meter_freep) struct meter *m = fallback(3);
	char name71[72], name72[73];
	uint32_t a, b, c, x;

	(void)state;
	memset(name71, 'n', 71);
	name71[71] = '\0';
	memset(name72, 'n', 72);
	name72[72] = '\0';

	static const struct {
		const char *name;
		int r;
	} bad[] = {
		{ NULL, -EINVAL },
		{ "", -EINVAL },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		assert_int_equal(meter_fn_open(m, bad[i].name, &x), bad[i].r);
	assert_int_equal(meter_fn_open(m, name72, &x), -ENAMETOOLONG);

	assert_int_equal(meter_fn_open(m, "alpha", &a), 0);
	assert_int_equal(meter_fn_open(m, name71, &b), 0);
	assert_int_not_equal(a, b);
	assert_string_equal(meter_fn(m, b)->name, name71);
	/* Again: the same slot. */
	assert_int_equal(meter_fn_open(m, "alpha", &x), 0);
	assert_int_equal(x, a);
	assert_int_equal(meter_fn_find(m, name71, &x), 0);
	assert_int_equal(x, b);
	assert_int_equal(meter_fn_find(m, "gamma", &x), -ENOENT);
	assert_int_equal(meter_fn_open(m, "gamma", &c), 0);
	assert_int_equal(meter_fn_open(m, "delta", &x), -ENOSPC);
	assert_null(meter_fn(m, 3));
	assert_null(meter_fn(m, UINT32_MAX));

	/* Closed: zeroed, free for the next name, which starts from zero. */
	meter_count_request(meter_fn(m, a), METER_OK, 10);
	meter_count_cold_start(meter_fn(m, a));
	meter_fn_close(m, a);
	assert_string_equal(meter_fn(m, a)->name, "");
	assert_int_equal(meter_fn(m, a)->requests, 0);
	assert_int_equal(meter_fn_find(m, "alpha", &x), -ENOENT);
	assert_int_equal(meter_fn_open(m, "delta", &x), 0);
	assert_int_equal(x, a);
	assert_int_equal(meter_fn(m, x)->requests, 0);
	assert_int_equal(meter_fn(m, x)->cold_starts, 0);
	meter_fn_close(m, 99); /* out of range: nothing */
	meter_fn_close(NULL, 0);
}

static void test_buckets(void **state)
{
	static const struct {
		uint64_t us;
		unsigned bucket;
	} cases[] = {
		{ 0, 0 },
		{ 1, 0 },
		{ 2, 1 },
		{ 3, 1 },
		{ 4, 2 },
		{ 1023, 9 },
		{ 1024, 10 },
		{ 1000000, 19 },          /* 1 s: [524288, 1048576) */
		{ (1ull << 31) - 1, 30 }, /* the last finite bucket */
		{ 1ull << 31, 31 },
		{ UINT64_MAX, 31 },
	};
	_cleanup_(meter_freep) struct meter *m = fallback(4);
	uint32_t slot;

	(void)state;
	assert_int_equal(meter_fn_open(m, "f", &slot), 0);
	struct spore_fn_stats *s = meter_fn(m, slot);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		uint64_t before = s->lat_us[cases[i].bucket];

		assert_int_equal(meter_lat_bucket(cases[i].us), cases[i].bucket);
		meter_count_request(s, METER_OK, cases[i].us);
		assert_int_equal(s->lat_us[cases[i].bucket], before + 1);
	}
	assert_int_equal(s->requests, ELEMENTSOF(cases));
}

static void test_counters(void **state)
{
	static const struct {
		int kind;
		size_t field; /* offsetof in struct spore_fn_errors; SIZE_MAX: none */
		bool throttled;
	} cases[] = {
		{ METER_OK, SIZE_MAX, false },
		{ SPORE_ERR_FUNCTION_ERROR, offsetof(struct spore_fn_errors, function_error),
		  false },
		{ SPORE_ERR_TIMEOUT, offsetof(struct spore_fn_errors, timeout), false },
		{ SPORE_ERR_CRASHED, offsetof(struct spore_fn_errors, crashed), false },
		{ SPORE_ERR_OUT_OF_MEMORY, offsetof(struct spore_fn_errors, out_of_memory), false },
		{ SPORE_ERR_QUEUE_FULL, offsetof(struct spore_fn_errors, queue_full), true },
		{ SPORE_ERR_QUEUE_TIMEOUT, offsetof(struct spore_fn_errors, queue_timeout), true },
		{ SPORE_ERR_OTHER, offsetof(struct spore_fn_errors, other), false },
		{ 42, offsetof(struct spore_fn_errors, other), false },
		{ _SPORE_ERR_INVALID, offsetof(struct spore_fn_errors, other), false },
	};
	_cleanup_(meter_freep) struct meter *m = fallback(4);
	uint32_t slot;

	(void)state;
	assert_int_equal(meter_fn_open(m, "f", &slot), 0);
	struct spore_fn_stats *s = meter_fn(m, slot);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct spore_fn_stats before = *s;

		meter_count_request(s, cases[i].kind, 100);
		assert_int_equal(s->requests, before.requests + 1);
		assert_int_equal(s->lat_sum_us, before.lat_sum_us + 100);
		assert_int_equal(s->throttled, before.throttled + (cases[i].throttled ? 1 : 0));
		for (size_t off = 0; off < sizeof(s->errors); off += sizeof(__u64)) {
			__u64 now, was;

			memcpy(&now, (char *)&s->errors + off, sizeof(now));
			memcpy(&was, (char *)&before.errors + off, sizeof(was));
			assert_int_equal(now, was + (off == cases[i].field ? 1 : 0));
		}
	}

	/* Gauges, which never go below zero. */
	meter_inflight_add(s, 3);
	meter_inflight_add(s, -1);
	assert_int_equal(s->inflight, 2);
	meter_inflight_add(s, -5);
	assert_int_equal(s->inflight, 0);
	meter_queued_add(s, 2);
	meter_queued_add(s, -1);
	assert_int_equal(s->queued, 1);
	meter_instances_add(s, 4);
	meter_instances_add(s, -1);
	assert_int_equal(s->instances, 3);
	meter_set_gauges(s, 7, 8, 9);
	assert_int_equal(s->inflight, 7);
	assert_int_equal(s->queued, 8);
	assert_int_equal(s->instances, 9);
	meter_count_cold_start(s);
	assert_int_equal(s->cold_starts, 1);

	/* CPU from the cgroup files in fallback mode; memory always. Peak never falls. */
	meter_fn_set_cpu(m, slot, 123456789);
	assert_int_equal(s->cpu_ns, 123456789);
	static const struct {
		uint64_t cur, peak, want_cur, want_peak;
	} mem[] = {
		{ 100, 0, 100, 100 },  /* no peak from the cgroup: cur */
		{ 50, 0, 50, 100 },    /* keeps the highest */
		{ 60, 300, 60, 300 },  /* the cgroup's own peak */
		{ 400, 350, 400, 400 },
		{ 10, 20, 10, 400 },
	};
	for (size_t i = 0; i < ELEMENTSOF(mem); i++) {
		meter_fn_set_memory(m, slot, mem[i].cur, mem[i].peak);
		assert_int_equal(s->mem_bytes, mem[i].want_cur);
		assert_int_equal(s->mem_peak_bytes, mem[i].want_peak);
	}
	meter_fn_set_memory(m, 99, 1, 1); /* out of range: nothing */
	meter_fn_set_cpu(m, 99, 1);

	/* Nothing to map without BPF. */
	assert_int_equal(meter_cgroup_add(m, 1234, slot), -EOPNOTSUPP);
	assert_int_equal(meter_cgroup_del(m, 1234), -EOPNOTSUPP);
	uint64_t id;
	assert_int_equal(meter_cgroup_id(NULL, &id), -EINVAL);
	assert_int_equal(meter_cgroup_id("/nonexistent-spore-dir", &id), -ENOENT);
}

static void test_err_kind_names(void **state)
{
	static const char *const names[] = {
		"function_error", "timeout", "crashed", "out_of_memory", "queue_full",
		"queue_timeout", "other",
	};

	(void)state;
	assert_int_equal(ELEMENTSOF(names), _SPORE_ERR_MAX);
	for (int k = 0; k < _SPORE_ERR_MAX; k++) {
		assert_string_equal(meter_err_kind_to_string((enum spore_err_kind)k), names[k]);
		assert_int_equal(meter_err_kind_from_string(names[k]), k);
	}
	assert_null(meter_err_kind_to_string(_SPORE_ERR_MAX));
	assert_null(meter_err_kind_to_string(_SPORE_ERR_INVALID));
	assert_int_equal(meter_err_kind_from_string("capacity"), SPORE_ERR_OTHER);
	assert_int_equal(meter_err_kind_from_string(NULL), _SPORE_ERR_INVALID);
}

static void test_quantiles(void **state)
{
	static const struct {
		unsigned bucket;
		uint64_t n;
		double q, want;
	} cases[] = {
		/* 100 latencies in [1024, 2048): p50 halfway through it. */
		{ 10, 100, 0.5, 1536 },
		{ 10, 100, 0.0, 1024 },
		{ 10, 100, 1.0, 2048 },
		{ 10, 100, 0.99, 1024 + 1024 * 0.99 },
		{ 0, 10, 0.5, 1 }, /* [0, 2) */
		{ 31, 5, 0.5, 2147483648.0 }, /* open-ended: its lower bound */
	};
	__u64 b[SPORE_LAT_BUCKETS];

	(void)state;
	memset(b, 0, sizeof(b));
	assert_true(spore_lat_quantile_us(b, 0.5) == 0);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		memset(b, 0, sizeof(b));
		b[cases[i].bucket] = cases[i].n;
		double got = spore_lat_quantile_us(b, cases[i].q);
		if (got < cases[i].want - 1e-6 || got > cases[i].want + 1e-6)
			fail_msg("case %zu: %f, want %f", i, got, cases[i].want);
	}
	/* 90 fast, 10 slow: p50 among the fast, p99 among the slow. */
	memset(b, 0, sizeof(b));
	b[3] = 90;  /* [8, 16) */
	b[20] = 10; /* [1048576, 2097152) */
	assert_true(spore_lat_quantile_us(b, 0.5) >= 8 && spore_lat_quantile_us(b, 0.5) < 16);
	assert_true(spore_lat_quantile_us(b, 0.99) >= 1048576 &&
		    spore_lat_quantile_us(b, 0.99) < 2097152);
	/* Out-of-range q is clamped. */
	assert_true(spore_lat_quantile_us(b, -1) == spore_lat_quantile_us(b, 0));
	assert_true(spore_lat_quantile_us(b, 2) == spore_lat_quantile_us(b, 1));
}

/* ---- Prometheus ----------------------------------------------------------------------------- */

/* The figures both renderings are checked against: "api" (3 ok at 1.5 ms, 1 timeout at 3 s, 1
 * queue_full at 0), "zeta" (nothing yet), opened in that order: output is sorted by name. */
static struct meter *sample(void)
{
	struct meter *m = fallback(8);
	uint32_t zeta, api;

	assert_int_equal(meter_fn_open(m, "zeta", &zeta), 0);
	assert_int_equal(meter_fn_open(m, "api", &api), 0);
	struct spore_fn_stats *s = meter_fn(m, api);
	for (int i = 0; i < 3; i++)
		meter_count_request(s, METER_OK, 1500);
	meter_count_request(s, SPORE_ERR_TIMEOUT, 3000000);
	meter_count_request(s, SPORE_ERR_QUEUE_FULL, 0);
	meter_count_cold_start(s);
	meter_set_gauges(s, 2, 1, 3);
	meter_fn_set_cpu(m, api, 1250000000);
	meter_fn_set_memory(m, api, 64 << 20, 100 << 20);
	return m;
}

static bool has_line(const char *text, const char *line)
{
	size_t l = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[l] == '\n')
			return true;
	return false;
}

static void test_prometheus(void **state)
{
	static const char *const lines[] = {
		"# TYPE spore_function_requests_total counter",
		"spore_function_requests_total{function=\"api\",version=\"1\",status=\"200\"} 3",
		"spore_function_requests_total{function=\"api\",version=\"1\",status=\"429\"} 1",
		"spore_function_requests_total{function=\"api\",version=\"2\",status=\"504\"} 1",
		"spore_function_requests_total{function=\"we\\\"ird\",version=\"7\",status=\"200\"} 1",
		"# TYPE spore_function_errors_total counter",
		"spore_function_errors_total{function=\"api\",kind=\"function_error\"} 0",
		"spore_function_errors_total{function=\"api\",kind=\"timeout\"} 1",
		"spore_function_errors_total{function=\"api\",kind=\"queue_full\"} 1",
		"spore_function_errors_total{function=\"api\",kind=\"other\"} 0",
		"spore_function_errors_total{function=\"zeta\",kind=\"crashed\"} 0",
		"# TYPE spore_function_inflight gauge",
		"spore_function_inflight{function=\"api\"} 2",
		"# TYPE spore_function_queue_length gauge",
		"spore_function_queue_length{function=\"api\"} 1",
		"# TYPE spore_function_instances gauge",
		"spore_function_instances{function=\"api\"} 3",
		"# TYPE spore_function_cold_starts_total counter",
		"spore_function_cold_starts_total{function=\"api\"} 1",
		"# TYPE spore_function_throttled_total counter",
		"spore_function_throttled_total{function=\"api\"} 1",
		"# TYPE spore_function_cpu_seconds_total counter",
		"spore_function_cpu_seconds_total{function=\"api\"} 1.25",
		"spore_function_cpu_seconds_total{function=\"zeta\"} 0",
		"# TYPE spore_function_memory_bytes gauge",
		"spore_function_memory_bytes{function=\"api\"} 67108864",
		"# TYPE spore_function_memory_peak_bytes gauge",
		"spore_function_memory_peak_bytes{function=\"api\"} 104857600",
		"# TYPE spore_function_duration_seconds histogram",
		"spore_function_duration_seconds_bucket{function=\"api\",le=\"0.000002\"} 1",
		"spore_function_duration_seconds_bucket{function=\"api\",le=\"0.001024\"} 1",
		"spore_function_duration_seconds_bucket{function=\"api\",le=\"0.002048\"} 4",
		"spore_function_duration_seconds_bucket{function=\"api\",le=\"2.097152\"} 4",
		"spore_function_duration_seconds_bucket{function=\"api\",le=\"4.194304\"} 5",
		"spore_function_duration_seconds_bucket{function=\"api\",le=\"2147.483648\"} 5",
		"spore_function_duration_seconds_bucket{function=\"api\",le=\"+Inf\"} 5",
		"spore_function_duration_seconds_sum{function=\"api\"} 3.0045",
		"spore_function_duration_seconds_count{function=\"api\"} 5",
		"spore_function_duration_seconds_bucket{function=\"zeta\",le=\"+Inf\"} 0",
		"spore_function_duration_seconds_sum{function=\"zeta\"} 0",
		"spore_function_duration_seconds_count{function=\"zeta\"} 0",
		"# TYPE spore_meter_bpf gauge",
		"spore_meter_bpf 0",
	};
	_cleanup_(meter_freep) struct meter *m = sample();
	_cleanup_(buf_done) struct buf out = BUF_INIT;
	struct metrics_codes *codes = metrics_codes_new();

	(void)state;
	assert_non_null(codes);
	/* out of order on purpose: rendered sorted by function, version, status */
	assert_int_equal(metrics_codes_count(codes, "api", 2, 504), 0);
	assert_int_equal(metrics_codes_count(codes, "we\"ird", 7, 200), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(metrics_codes_count(codes, "api", 1, 200), 0);
	assert_int_equal(metrics_codes_count(codes, "api", 1, 429), 0);
	assert_int_equal(metrics_codes_count(codes, "gone", 1, 200), 0);
	metrics_codes_forget(codes, "gone");
	assert_int_equal(metrics_prometheus(m, codes, &out), 0);
	codes = metrics_codes_free(codes);
	const char *text = buf_cstr(&out);
	assert_null(strstr(text, "gone"));
	assert_true(strstr(text, "status=\"200\"} 3") < strstr(text, "status=\"429\"} 1"));
	for (size_t i = 0; i < ELEMENTSOF(lines); i++)
		if (!has_line(text, lines[i]))
			fail_msg("missing line: %s\n---\n%s", lines[i], text);

	/* Well-formed throughout: comments, or NAME{LABELS} VALUE with a number; "api" before
	 * "zeta" in every family; 32 buckets a function, cumulative. */
	size_t n_samples = 0, n_buckets = 0;
	uint64_t last_cum = 0;
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		assert_non_null(nl); /* every line ends with \n */
		char line[512];
		size_t l = (size_t)(nl - p);
		assert_true(l > 0 && l < sizeof(line));
		memcpy(line, p, l);
		line[l] = '\0';
		p = nl + 1;
		if (line[0] == '#') {
			assert_true(startswith(line, "# HELP spore_") ||
				    startswith(line, "# TYPE spore_"));
			continue;
		}
		n_samples++;
		char *sp = strrchr(line, ' ');
		assert_non_null(sp);
		char *end;
		(void)strtod(sp + 1, &end);
		assert_true(*end == '\0' && end != sp + 1);
		if (startswith(line, "spore_function_duration_seconds_bucket{function=\"api\"")) {
			uint64_t cum = strtoull(sp + 1, NULL, 10);
			assert_true(cum >= last_cum);
			last_cum = cum;
			n_buckets++;
		}
	}
	assert_int_equal(n_buckets, SPORE_LAT_BUCKETS);
	/* 8 simple families + 7 error kinds + cpu + 32 buckets + sum + count, per function. */
	/* per function: 7 gauges and counters, 7 error kinds, CPU, 32 buckets, _sum, _count; then
	 * the 4 requests_total series and spore_meter_bpf */
	assert_int_equal(n_samples, 2 * (7 + 7 + 1 + 32 + 2) + 4 + 1);
	const char *api = strstr(text, "spore_function_instances{function=\"api\"}");
	const char *zeta = strstr(text, "spore_function_instances{function=\"zeta\"}");
	assert_true(api && zeta && api < zeta);
}

static void test_prometheus_empty_and_escaping(void **state)
{
	_cleanup_(meter_freep) struct meter *m = fallback(4);
	_cleanup_(buf_done) struct buf out = BUF_INIT;
	uint32_t slot;

	(void)state;
	/* No function: the families alone. */
	assert_int_equal(metrics_prometheus(m, NULL, &out), 0);
	assert_true(has_line(buf_cstr(&out), "# TYPE spore_function_requests_total counter"));
	assert_null(strstr(buf_cstr(&out), "{function="));
	assert_true(has_line(buf_cstr(&out), "spore_meter_bpf 0"));

	/* Label values escaped as the exposition format says (the API never makes such names,
	 * but the meter takes any bytes). */
	assert_int_equal(meter_fn_open(m, "a\"b\\c\nd", &slot), 0);
	meter_count_request(meter_fn(m, slot), METER_OK, 1);
	buf_reset(&out);
	assert_int_equal(metrics_prometheus(m, NULL, &out), 0);
	assert_true(has_line(buf_cstr(&out),
			     "spore_function_duration_seconds_count{function=\"a\\\"b\\\\c\\nd\"} 1"));

	static const struct {
		const char *in, *out;
	} esc[] = {
		{ "", "" },
		{ "plain-name_1", "plain-name_1" },
		{ "\"", "\\\"" },
		{ "\\", "\\\\" },
		{ "\n", "\\n" },
		{ "tab\there", "tab\there" }, /* only the three are escaped */
	};
	for (size_t i = 0; i < ELEMENTSOF(esc); i++) {
		_cleanup_(buf_done) struct buf b = BUF_INIT;

		assert_int_equal(metrics_append_label_value(&b, esc[i].in), 0);
		assert_string_equal(buf_cstr(&b), esc[i].out);
	}
	assert_int_equal(metrics_prometheus(NULL, NULL, &out), -EINVAL);
}

/* ---- JSON ----------------------------------------------------------------------------------- */

static double num(const cJSON *o, const char *path)
{
	char buf[128], *save = NULL;

	(void)snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
		o = cJSON_GetObjectItemCaseSensitive(o, k);
		if (!o)
			fail_msg("no %s in the JSON", path);
	}
	if (!cJSON_IsNumber(o))
		fail_msg("%s is not a number", path);
	return o->valuedouble;
}

static void test_json(void **state)
{
	static const struct {
		const char *path;
		double want;
	} fields[] = {
		{ "requests", 5 },
		{ "errors.function_error", 0 },
		{ "errors.timeout", 1 },
		{ "errors.crashed", 0 },
		{ "errors.out_of_memory", 0 },
		{ "errors.queue_full", 1 },
		{ "errors.queue_timeout", 0 },
		{ "errors.other", 0 },
		{ "throttled", 1 },
		{ "inflight", 2 },
		{ "queued", 1 },
		{ "instances", 3 },
		{ "cold_starts", 1 },
		{ "cpu_ns", 1250000000 },
		{ "memory_bytes", 64 << 20 },
		{ "memory_peak_bytes", 100 << 20 },
		{ "latency_us.count", 5 },
		{ "latency_us.sum", 3004500 },
	};
	_cleanup_(meter_freep) struct meter *m = sample();
	_cleanup_(cJSON_Deletep) cJSON *j = metrics_json(m);

	(void)state;
	assert_non_null(j);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "bpf")));
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "cpu_hook")));
	const cJSON *fns = cJSON_GetObjectItemCaseSensitive(j, "functions");
	assert_true(cJSON_IsArray(fns));
	assert_int_equal(cJSON_GetArraySize(fns), 2);
	const cJSON *api = cJSON_GetArrayItem(fns, 0), *zeta = cJSON_GetArrayItem(fns, 1);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(api, "name")->valuestring, "api");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(zeta, "name")->valuestring, "zeta");
	for (size_t i = 0; i < ELEMENTSOF(fields); i++)
		if (num(api, fields[i].path) != fields[i].want)
			fail_msg("%s: %f, want %f", fields[i].path, num(api, fields[i].path),
				 fields[i].want);
	/* 3 of 5 in [1024, 2048) us, the 0 in bucket 0, the 3 s in [2^21, 2^22). */
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(api, "latency_us"), "buckets");
	assert_int_equal(cJSON_GetArraySize(b), SPORE_LAT_BUCKETS);
	for (int i = 0; i < SPORE_LAT_BUCKETS; i++) {
		double want = i == 0 ? 1 : i == 10 ? 3 : i == 21 ? 1 : 0;
		assert_true(cJSON_GetArrayItem(b, i)->valuedouble == want);
	}
	/* p50: rank 2.5 of 5 -> 1.5 of the 3 in [1024, 2048) -> 1536; p99 in [2^21, 2^22). */
	assert_true(num(api, "latency_us.p50") == 1536);
	assert_true(num(api, "latency_us.p99") >= 2097152 && num(api, "latency_us.p99") < 4194304);
	assert_true(num(zeta, "latency_us.p50") == 0);
	assert_true(num(zeta, "requests") == 0);

	/* One function alone, the same object. */
	_cleanup_(cJSON_Deletep) cJSON *one = NULL;
	assert_int_equal(metrics_fn_json(m, "api", &one), 0);
	assert_true(cJSON_Compare(one, api, true));
	cJSON *none = NULL;
	assert_int_equal(metrics_fn_json(m, "nope", &none), -ENOENT);
	assert_null(none);
	assert_null(metrics_json(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_slots),
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_err_kind_names),
		cmocka_unit_test(test_quantiles),
		cmocka_unit_test(test_prometheus),
		cmocka_unit_test(test_prometheus_empty_and_escaping),
		cmocka_unit_test(test_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
