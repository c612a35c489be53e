/* SPDX-License-Identifier: MIT */
/* Rendering of the meter's figures (metrics.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "meter.h"
#include "metrics.h"

/* A consistent-enough copy of one slot: the event loop (the only other writer besides BPF's
 * cpu_ns) is not running while we render, so only cpu_ns can move under us. */
struct snap {
	struct spore_fn_stats s;
	uint64_t lat_count; /* sum of the buckets, so that _count equals the +Inf bucket */
};

static int snap_cmp(const void *a, const void *b)
{
	return strncmp(((const struct snap *)a)->s.name, ((const struct snap *)b)->s.name,
		       SPORE_FN_NAME_MAX);
}

static void snap_one(struct spore_fn_stats *src, struct snap *d)
{
	memcpy(&d->s, src, sizeof(d->s));
	d->s.name[SPORE_FN_NAME_MAX - 1] = '\0';
	d->s.cpu_ns = __atomic_load_n(&src->cpu_ns, __ATOMIC_RELAXED);
	d->lat_count = 0;
	for (unsigned i = 0; i < SPORE_LAT_BUCKETS; i++)
		d->lat_count += d->s.lat_us[i];
}

/* Every open slot, sorted by name. *ret NULL and 0 when none. */
static int snapshot(struct meter *m, struct snap **ret, size_t *ret_n)
{
	uint32_t max = meter_max_functions(m);
	struct snap *v = NULL;
	size_t n = 0, cap = 0;

	for (uint32_t i = 0; i < max; i++) {
		struct spore_fn_stats *s = meter_fn(m, i);

		if (!s || s->name[0] == '\0')
			continue;
		if (n == cap) {
			size_t c = cap ? cap * 2 : 16;
			struct snap *nv = reallocarray(v, c, sizeof(*nv));

			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
			cap = c;
		}
		snap_one(s, &v[n++]);
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), snap_cmp);
	*ret = v;
	*ret_n = n;
	return 0;
}

/* ---- Prometheus --------------------------------------------------------------------------- */

int metrics_append_label_value(struct buf *out, const char *value)
{
	for (const char *p = value; *p; p++) {
		const char *esc = NULL;
		int r;

		switch (*p) {
		case '\\':
			esc = "\\\\";
			break;
		case '"':
			esc = "\\\"";
			break;
		case '\n':
			esc = "\\n";
			break;
		}
		r = esc ? buf_append_str(out, esc) : buf_append(out, p, 1);
		if (r < 0)
			return r;
	}
	return 0;
}

/* value / scale (scale = 10^digits) as an exact decimal, trailing zeros dropped:
 * 1500000 us -> "1.5". */
static void fixed_str(char out[48], uint64_t value, unsigned digits, uint64_t scale)
{
	char frac[24];
	int l;

	l = snprintf(frac, sizeof(frac), "%0*" PRIu64, (int)digits, value % scale);
	while (l > 0 && frac[l - 1] == '0')
		frac[--l] = '\0';
	if (l == 0)
		(void)snprintf(out, 48, "%" PRIu64, value / scale);
	else
		(void)snprintf(out, 48, "%" PRIu64 ".%s", value / scale, frac);
}

static int append_fixed(struct buf *out, uint64_t value, unsigned digits, uint64_t scale)
{
	char s[48];

	fixed_str(s, value, digits, scale);
	return buf_append_str(out, s);
}

static int family(struct buf *out, const char *name, const char *type, const char *help)
{
	return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{function="..."[,extra]} */
static int series(struct buf *out, const char *name, const char *suffix, const struct snap *f,
		  const char *extra_label, const char *extra_value)
{
	int r;

	r = buf_printf(out, "%s%s{function=\"", name, suffix);
	if (r >= 0)
		r = metrics_append_label_value(out, f->s.name);
	if (r >= 0 && extra_label) {
		r = buf_printf(out, "\",%s=\"", extra_label);
		if (r >= 0)
			r = metrics_append_label_value(out, extra_value);
	}
	if (r >= 0)
		r = buf_append_str(out, "\"} ");
	return r < 0 ? r : 0;
}

static int sample_u64(struct buf *out, const char *name, const struct snap *f, uint64_t v)
{
	int r = series(out, name, "", f, NULL, NULL);

	return r < 0 ? r : buf_printf(out, "%" PRIu64 "\n", v);
}

/* One family with one sample per function from a field. */
struct simple_family {
	const char *name, *type, *help;
	size_t offset; /* of a __u64 in struct spore_fn_stats */
};

#define FIELD(f) offsetof(struct spore_fn_stats, f)
#define DURATION "spore_function_duration_seconds"

static const struct simple_family simple_families[] = {
	{ "spore_function_inflight", "gauge", "Invocations running on an instance now.", FIELD(inflight) },
	{ "spore_function_queue_length", "gauge", "Invocations waiting in the function's queue now.",
	  FIELD(queued) },
	{ "spore_function_instances", "gauge", "Instances of the function now.", FIELD(instances) },
	{ "spore_function_cold_starts_total", "counter",
	  "Invocations that had to wait for a new instance to start.", FIELD(cold_starts) },
	{ "spore_function_throttled_total", "counter",
	  "Invocations refused with 429 (queue full or queue timeout).", FIELD(throttled) },
	{ "spore_function_memory_bytes", "gauge", "Memory charged to the function's instances now.",
	  FIELD(mem_bytes) },
	{ "spore_function_memory_peak_bytes", "gauge",
	  "Highest memory charged to the function's instances.", FIELD(mem_peak_bytes) },
};

/* ---- answers by function, version and status ---------------------------------------------- */

struct code_entry {
	char *fn;
	uint32_t version;
	int status;
	uint64_t n;
};

struct metrics_codes {
	struct code_entry *v;
	size_t n, cap;
	size_t last; /* the entry hit last: most calls repeat it */
};

struct metrics_codes *metrics_codes_new(void)
{
	return calloc(1, sizeof(struct metrics_codes));
}

struct metrics_codes *metrics_codes_free(struct metrics_codes *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].fn);
	free(c->v);
	free(c);
	return NULL;
}

int metrics_codes_count(struct metrics_codes *c, const char *fn, uint32_t version, int status)
{
	if (!c)
		return 0;
	struct code_entry *e = c->last < c->n ? &c->v[c->last] : NULL;
	if (!e || e->version != version || e->status != status || !streq(e->fn, fn)) {
		e = NULL;
		for (size_t i = 0; i < c->n; i++)
			if (c->v[i].version == version && c->v[i].status == status &&
			    streq(c->v[i].fn, fn)) {
				e = &c->v[i];
				c->last = i;
				break;
			}
	}
	if (!e) {
		if (c->n == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 16;
			struct code_entry *nv = reallocarray(c->v, cap, sizeof(*nv));
			if (!nv)
				return -ENOMEM;
			c->v = nv;
			c->cap = cap;
		}
		char *name = strdup(fn);
		if (!name)
			return -ENOMEM;
		c->v[c->n] = (struct code_entry){ .fn = name, .version = version, .status = status };
		c->last = c->n;
		e = &c->v[c->n++];
	}
	e->n++;
	return 0;
}

void metrics_codes_forget(struct metrics_codes *c, const char *fn)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n;)
		if (streq(c->v[i].fn, fn)) {
			free(c->v[i].fn);
			c->v[i] = c->v[--c->n];
		} else
			i++;
	c->last = 0;
}

static int code_cmp(const void *a, const void *b)
{
	const struct code_entry *x = a, *y = b;
	int r = strcmp(x->fn, y->fn);
	if (r)
		return r;
	if (x->version != y->version)
		return x->version < y->version ? -1 : 1;
	return (x->status > y->status) - (x->status < y->status);
}

static int prometheus_codes(struct metrics_codes *c, struct buf *out)
{
	int r = family(out, "spore_function_requests_total", "counter",
		       "Invocations answered, by function, version and HTTP status (refusals "
		       "included).");
	if (r < 0 || !c)
		return r;
	if (c->n)
		qsort(c->v, c->n, sizeof(*c->v), code_cmp);
	c->last = 0;
	for (size_t i = 0; r >= 0 && i < c->n; i++) {
		r = buf_append_str(out, "spore_function_requests_total{function=\"");
		if (r >= 0)
			r = metrics_append_label_value(out, c->v[i].fn);
		if (r >= 0)
			r = buf_printf(out, "\",version=\"%" PRIu32 "\",status=\"%d\"} %" PRIu64 "\n",
				       c->v[i].version, c->v[i].status, c->v[i].n);
	}
	return r < 0 ? r : 0;
}

static int prometheus_functions(const struct snap *v, size_t n, struct buf *out)
{
	int r;

	for (size_t k = 0; k < ELEMENTSOF(simple_families); k++) {
		const struct simple_family *sf = &simple_families[k];

		r = family(out, sf->name, sf->type, sf->help);
		for (size_t i = 0; r >= 0 && i < n; i++) {
			uint64_t x;

			memcpy(&x, (const char *)&v[i].s + sf->offset, sizeof(x));
			r = sample_u64(out, sf->name, &v[i], x);
		}
		if (r < 0)
			return r;
	}

	r = family(out, "spore_function_errors_total", "counter",
		   "Invocations that ended in an error, by kind.");
	for (size_t i = 0; r >= 0 && i < n; i++)
		for (int kind = 0; r >= 0 && kind < _SPORE_ERR_MAX; kind++) {
			__u64 e[_SPORE_ERR_MAX];

			memcpy(e, &v[i].s.errors, sizeof(e));
			r = series(out, "spore_function_errors_total", "", &v[i], "kind",
				   meter_err_kind_to_string((enum spore_err_kind)kind));
			if (r >= 0)
				r = buf_printf(out, "%llu\n", (unsigned long long)e[kind]);
		}

	if (r >= 0)
		r = family(out, "spore_function_cpu_seconds_total", "counter",
			   "CPU time used by the function's instances.");
	for (size_t i = 0; r >= 0 && i < n; i++) {
		r = series(out, "spore_function_cpu_seconds_total", "", &v[i], NULL, NULL);
		if (r >= 0)
			r = append_fixed(out, v[i].s.cpu_ns, 9, 1000000000u);
		if (r >= 0)
			r = buf_append_str(out, "\n");
	}

	if (r >= 0)
		r = family(out, DURATION, "histogram",
			   "Invocation latency, from arrival to answer.");
	for (size_t i = 0; r >= 0 && i < n; i++) {
		uint64_t cum = 0;
		char le[48];

		for (unsigned b = 0; r >= 0 && b < SPORE_LAT_BUCKETS; b++) {
			cum += v[i].s.lat_us[b];
			/* Bucket b holds [2^b, 2^(b+1)) us: le = 2^(b+1) us, in seconds. */
			if (b == SPORE_LAT_BUCKETS - 1)
				(void)snprintf(le, sizeof(le), "+Inf");
			else
				fixed_str(le, 1ull << (b + 1), 6, 1000000u);
			r = series(out, DURATION, "_bucket", &v[i], "le", le);
			if (r >= 0)
				r = buf_printf(out, "%" PRIu64 "\n", cum);
		}
		if (r >= 0)
			r = series(out, DURATION, "_sum", &v[i], NULL, NULL);
		if (r >= 0)
			r = append_fixed(out, v[i].s.lat_sum_us, 6, 1000000u);
		if (r >= 0)
			r = buf_append_str(out, "\n");
		if (r >= 0)
			r = series(out, DURATION, "_count", &v[i], NULL, NULL);
		if (r >= 0)
			r = buf_printf(out, "%" PRIu64 "\n", v[i].lat_count);
	}
	return r < 0 ? r : 0;
}

int metrics_prometheus(struct meter *m, struct metrics_codes *codes, struct buf *out)
{
	_cleanup_free_ struct snap *v = NULL;
	size_t n = 0;
	int r;

	if (!m || !out)
		return -EINVAL;
	r = snapshot(m, &v, &n);
	if (r < 0)
		return r;
	r = prometheus_codes(codes, out);
	if (r >= 0)
		r = prometheus_functions(v, n, out);
	if (r < 0)
		return r;
	r = family(out, "spore_meter_bpf", "gauge",
		   "1 when CPU time is measured by BPF, 0 when read from the cgroup files.");
	if (r >= 0)
		r = buf_printf(out, "spore_meter_bpf %d\n", meter_bpf_active(m) ? 1 : 0);
	return r < 0 ? r : 0;
}

/* ---- JSON --------------------------------------------------------------------------------- */

static bool add_u64(cJSON *o, const char *k, uint64_t v)
{
	return cJSON_AddNumberToObject(o, k, (double)v) != NULL;
}

static cJSON *fn_json(const struct snap *f)
{
	cJSON *o = cJSON_CreateObject(), *e, *lat, *b;
	__u64 errs[_SPORE_ERR_MAX];
	bool ok;

	if (!o)
		return NULL;
	memcpy(errs, &f->s.errors, sizeof(errs));
	ok = cJSON_AddStringToObject(o, "name", f->s.name) && add_u64(o, "requests", f->s.requests);
	e = ok ? cJSON_AddObjectToObject(o, "errors") : NULL;
	ok = e != NULL;
	for (int k = 0; ok && k < _SPORE_ERR_MAX; k++)
		ok = add_u64(e, meter_err_kind_to_string((enum spore_err_kind)k), errs[k]);
	ok = ok && add_u64(o, "throttled", f->s.throttled) &&
	     add_u64(o, "inflight", f->s.inflight) && add_u64(o, "queued", f->s.queued) &&
	     add_u64(o, "instances", f->s.instances) &&
	     add_u64(o, "cold_starts", f->s.cold_starts) && add_u64(o, "cpu_ns", f->s.cpu_ns) &&
	     add_u64(o, "memory_bytes", f->s.mem_bytes) &&
	     add_u64(o, "memory_peak_bytes", f->s.mem_peak_bytes);
	lat = ok ? cJSON_AddObjectToObject(o, "latency_us") : NULL;
	ok = lat && add_u64(lat, "count", f->lat_count) && add_u64(lat, "sum", f->s.lat_sum_us) &&
	     cJSON_AddNumberToObject(lat, "p50", spore_lat_quantile_us(f->s.lat_us, 0.5)) &&
	     cJSON_AddNumberToObject(lat, "p99", spore_lat_quantile_us(f->s.lat_us, 0.99));
	b = ok ? cJSON_AddArrayToObject(lat, "buckets") : NULL;
	ok = b != NULL;
	for (unsigned i = 0; ok && i < SPORE_LAT_BUCKETS; i++) {
		cJSON *x = cJSON_CreateNumber((double)f->s.lat_us[i]);

		ok = x && cJSON_AddItemToArray(b, x);
		if (x && !ok)
			cJSON_Delete(x);
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

cJSON *metrics_json(struct meter *m)
{
	_cleanup_free_ struct snap *v = NULL;
	cJSON *o, *a;
	size_t n = 0;
	const char *hook;

	if (!m || snapshot(m, &v, &n) < 0)
		return NULL;
	o = cJSON_CreateObject();
	if (!o)
		return NULL;
	hook = meter_cpu_hook_name(m);
	if (!cJSON_AddBoolToObject(o, "bpf", meter_bpf_active(m)) ||
	    !(hook ? cJSON_AddStringToObject(o, "cpu_hook", hook)
		   : cJSON_AddNullToObject(o, "cpu_hook")) ||
	    !(a = cJSON_AddArrayToObject(o, "functions")))
		goto oom;
	for (size_t i = 0; i < n; i++) {
		cJSON *f = fn_json(&v[i]);

		if (!f)
			goto oom;
		if (!cJSON_AddItemToArray(a, f)) {
			cJSON_Delete(f);
			goto oom;
		}
	}
	return o;
oom:
	cJSON_Delete(o);
	return NULL;
}

int metrics_fn_json(struct meter *m, const char *name, cJSON **ret)
{
	struct snap f;
	uint32_t slot;
	cJSON *o;
	int r;

	if (!m || !name || !ret)
		return -EINVAL;
	r = meter_fn_find(m, name, &slot);
	if (r < 0)
		return r;
	snap_one(meter_fn(m, slot), &f);
	o = fn_json(&f);
	if (!o)
		return -ENOMEM;
	*ret = o;
	return 0;
}
