/* SPDX-License-Identifier: MIT */
#include "sporectl-util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/error.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete)

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Digits only, accumulated with overflow check. Returns the number of digits consumed (0 when
 * none) or -ERANGE. */
static int scan_digits(const char *s, uint64_t *ret)
{
	uint64_t v = 0;
	int n = 0;

	for (; is_digit(s[n]); n++) {
		unsigned d = (unsigned)(s[n] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
		if (n == INT32_MAX - 1)
			return -ERANGE;
	}
	*ret = v;
	return n;
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v;
	int n;

	if (!s)
		return -EINVAL;
	n = scan_digits(s, &v);
	if (n < 0)
		return n;
	if (n == 0 || s[n] != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int parse_duration_ms(const char *s, uint32_t *ret_ms)
{
	static const struct {
		const char *suffix;
		uint64_t factor;
	} units[] = {
		{ "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 }, { "h", 60 * 60 * 1000 },
	};
	uint64_t v;
	int n;

	if (!s)
		return -EINVAL;
	n = scan_digits(s, &v);
	if (n < 0)
		return n;
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < ELEMENTSOF(units); i++) {
		if (!streq(s + n, units[i].suffix))
			continue;
		if (v > SPORECTL_DURATION_MAX_MS / units[i].factor)
			return -ERANGE;
		v *= units[i].factor;
		if (v == 0)
			return -EINVAL;
		*ret_ms = (uint32_t)v;
		return 0;
	}
	return -EINVAL;
}

bool env_key_valid(const char *key)
{
	if (!key || !*key)
		return false;
	if (!((key[0] >= 'A' && key[0] <= 'Z') || (key[0] >= 'a' && key[0] <= 'z') || key[0] == '_'))
		return false;
	for (const char *p = key + 1; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || is_digit(*p) ||
		      *p == '_'))
			return false;
	return true;
}

int parse_env_assignment(const char *s, char **ret_key, char **ret_value)
{
	_cleanup_free_ char *key = NULL, *value = NULL;
	const char *eq;

	if (!s)
		return -EINVAL;
	eq = strchr(s, '=');
	if (!eq)
		return -EINVAL;
	key = strndup(s, (size_t)(eq - s));
	if (!key)
		return -ENOMEM;
	if (!env_key_valid(key))
		return -EINVAL;
	value = strdup(eq + 1);
	if (!value)
		return -ENOMEM;
	*ret_key = TAKE_PTR(key);
	*ret_value = TAKE_PTR(value);
	return 0;
}

bool fn_name_valid(const char *name)
{
	size_t n;

	if (!name)
		return false;
	n = strlen(name);
	if (n < 1 || n > 64)
		return false;
	if (!((name[0] >= 'a' && name[0] <= 'z') || is_digit(name[0])))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || is_digit(name[i]) || name[i] == '_' ||
		      name[i] == '-'))
			return false;
	return true;
}


/* A JSON number that is a whole number in [min, max]. */
static bool json_uint(const cJSON *item, double min, double max, uint64_t *ret)
{
	double d;

	if (!cJSON_IsNumber(item))
		return false;
	d = cJSON_GetNumberValue(item);
	if (!isfinite(d) || d != floor(d) || d < min || d > max)
		return false;
	*ret = (uint64_t)d;
	return true;
}

int deploy_defaults_parse(const char *json, size_t len, struct deploy_defaults *ret,
			  char **ret_error)
{
	_cleanup_(cJSON_Deletep) cJSON *root = NULL;
	struct deploy_defaults d = {};
	const cJSON *item;
	uint64_t v;
	int r;

	root = cJSON_ParseWithLength(json, len);
	if (!root)
		return error_set(ret_error, -EINVAL, "not valid JSON");
	if (!cJSON_IsObject(root))
		return error_set(ret_error, -EINVAL, "must be a JSON object");

	item = cJSON_GetObjectItemCaseSensitive(root, "runtime");
	if (item) {
		if (!cJSON_IsString(item) || !*item->valuestring)
			return error_set(ret_error, -EINVAL, "runtime: must be a non-empty string");
		d.runtime = strdup(item->valuestring);
		if (!d.runtime)
			goto oom;
	}

	item = cJSON_GetObjectItemCaseSensitive(root, "handler");
	if (item) {
		if (!cJSON_IsString(item) || !*item->valuestring) {
			r = error_set(ret_error, -EINVAL, "handler: must be a non-empty string");
			goto fail;
		}
		d.handler = strdup(item->valuestring);
		if (!d.handler)
			goto oom;
	}

	item = cJSON_GetObjectItemCaseSensitive(root, "memory_mb");
	if (item) {
		if (!json_uint(item, 1, UINT32_MAX, &v)) {
			r = error_set(ret_error, -EINVAL, "memory_mb: must be a positive integer");
			goto fail;
		}
		d.memory_mb = (uint32_t)v;
	}

	item = cJSON_GetObjectItemCaseSensitive(root, "cpu_millis");
	if (item) {
		if (!json_uint(item, 1, UINT32_MAX, &v)) {
			r = error_set(ret_error, -EINVAL, "cpu_millis: must be a positive integer");
			goto fail;
		}
		d.cpu_millis = (uint32_t)v;
	}

	item = cJSON_GetObjectItemCaseSensitive(root, "timeout_ms");
	if (item) {
		if (json_uint(item, 1, SPORECTL_DURATION_MAX_MS, &v))
			d.timeout_ms = (uint32_t)v;
		else if (!cJSON_IsString(item) ||
			 parse_duration_ms(item->valuestring, &d.timeout_ms) < 0) {
			r = error_set(ret_error, -EINVAL, "timeout_ms: must be a positive integer (milliseconds) "
						 "or a duration like \"30s\"");
			goto fail;
		}
	}

	item = cJSON_GetObjectItemCaseSensitive(root, "env");
	if (item) {
		const cJSON *e;

		if (!cJSON_IsObject(item)) {
			r = error_set(ret_error, -EINVAL, "env: must be an object of strings");
			goto fail;
		}
		cJSON_ArrayForEach(e, item) {
			if (!env_key_valid(e->string)) {
				r = error_set(ret_error, -EINVAL, "env: invalid variable name '%s'", e->string);
				goto fail;
			}
			if (!cJSON_IsString(e)) {
				r = error_set(ret_error, -EINVAL, "env.%s: must be a string", e->string);
				goto fail;
			}
		}
		d.env = cJSON_Duplicate(item, true);
		if (!d.env)
			goto oom;
	}

	*ret = d;
	return 0;
oom:
	r = -ENOMEM;
fail:
	deploy_defaults_done(&d);
	return r;
}

void deploy_defaults_done(struct deploy_defaults *d)
{
	if (!d)
		return;
	free(d->runtime);
	free(d->handler);
	cJSON_Delete(d->env);
	*d = (struct deploy_defaults){};
}

int line_split_feed(struct buf *pending, const void *data, size_t len, line_cb_t cb,
		    void *userdata)
{
	const char *p = data, *end = p + len;
	int r;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n;

		if (!nl) {
			if (pending->len + (size_t)(end - p) > LINE_SPLIT_MAX)
				return -ENOBUFS;
			return buf_append(pending, p, (size_t)(end - p));
		}

		if (pending->len > 0) {
			/* Completes a line begun in an earlier chunk. */
			if (pending->len + (size_t)(nl - p) > LINE_SPLIT_MAX)
				return -ENOBUFS;
			r = buf_append(pending, p, (size_t)(nl - p));
			if (r < 0)
				return r;
			n = pending->len;
			if (n > 0 && pending->data[n - 1] == '\r')
				n--;
			r = cb(buf_cstr(pending), n, userdata);
			buf_reset(pending);
		} else {
			n = (size_t)(nl - p);
			if (n > 0 && p[n - 1] == '\r')
				n--;
			r = cb(p, n, userdata);
		}
		if (r < 0)
			return r;
		p = nl + 1;
	}
	return 0;
}

int line_split_finish(struct buf *pending, line_cb_t cb, void *userdata)
{
	size_t n = pending->len;
	int r;

	if (n == 0)
		return 0;
	if (pending->data[n - 1] == '\r')
		n--;
	r = cb(buf_cstr(pending), n, userdata);
	buf_reset(pending);
	return r;
}

void format_duration_ms(uint64_t ms, char out[32])
{
	if (ms > 0 && ms % (60 * 60 * 1000) == 0)
		snprintf(out, 32, "%" PRIu64 "h", ms / (60 * 60 * 1000));
	else if (ms > 0 && ms % (60 * 1000) == 0)
		snprintf(out, 32, "%" PRIu64 "m", ms / (60 * 1000));
	else if (ms > 0 && ms % 1000 == 0)
		snprintf(out, 32, "%" PRIu64 "s", ms / 1000);
	else
		snprintf(out, 32, "%" PRIu64 "ms", ms);
}

char *json_cell(const cJSON *item)
{
	char *s = NULL;

	if (cJSON_IsString(item))
		return strdup(item->valuestring);
	if (cJSON_IsBool(item))
		return strdup(cJSON_IsTrue(item) ? "true" : "false");
	if (cJSON_IsNumber(item)) {
		double d = cJSON_GetNumberValue(item);
		int r;

		if (isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0)
			r = asprintf(&s, "%" PRId64, (int64_t)d);
		else
			r = asprintf(&s, "%g", d);
		return r < 0 ? NULL : s;
	}
	return strdup("-");
}

char *format_log_record(const cJSON *record)
{
	_cleanup_free_ char *time = NULL, *version = NULL, *instance = NULL, *stream = NULL;
	const cJSON *message;
	char *s = NULL;

	time = json_cell(cJSON_GetObjectItemCaseSensitive(record, "time"));
	version = json_cell(cJSON_GetObjectItemCaseSensitive(record, "version"));
	instance = json_cell(cJSON_GetObjectItemCaseSensitive(record, "instance"));
	stream = json_cell(cJSON_GetObjectItemCaseSensitive(record, "stream"));
	if (!time || !version || !instance || !stream)
		return NULL;
	message = cJSON_GetObjectItemCaseSensitive(record, "message");
	if (asprintf(&s, "%s v%s %s %s: %s", time, version, instance, stream,
		     cJSON_IsString(message) ? message->valuestring : "") < 0)
		return NULL;
	return s;
}

struct table {
	size_t n_columns;
	char **cells; /* headers first, then rows */
	size_t n_cells;
	size_t cap;
};

struct table *table_free(struct table *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->n_cells; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
	return NULL;
}

int table_add(struct table *t, const char *text)
{
	char *copy;

	if (t->n_cells == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 32;
		char **n = reallocarray(t->cells, cap, sizeof(char *));
		if (!n)
			return -ENOMEM;
		t->cells = n;
		t->cap = cap;
	}
	copy = strdup(text ? text : "-");
	if (!copy)
		return -ENOMEM;
	t->cells[t->n_cells++] = copy;
	return 0;
}

int table_add_json(struct table *t, const cJSON *item)
{
	_cleanup_free_ char *s = json_cell(item);

	if (!s)
		return -ENOMEM;
	return table_add(t, s);
}

struct table *table_new(size_t n_columns, const char *const *headers)
{
	struct table *t;

	if (n_columns == 0)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->n_columns = n_columns;
	for (size_t i = 0; i < n_columns; i++)
		if (table_add(t, headers[i]) < 0)
			return table_free(t);
	return t;
}

int table_print(const struct table *t, FILE *f)
{
	_cleanup_free_ size_t *width = NULL;

	width = calloc(t->n_columns, sizeof(size_t));
	if (!width)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_cells; i++) {
		size_t l = strlen(t->cells[i]);
		if (l > width[i % t->n_columns])
			width[i % t->n_columns] = l;
	}
	for (size_t i = 0; i < t->n_cells; i++) {
		size_t col = i % t->n_columns;
		bool last = col == t->n_columns - 1 || i == t->n_cells - 1;

		if (last)
			fprintf(f, "%s\n", t->cells[i]);
		else
			fprintf(f, "%-*s  ", (int)width[col], t->cells[i]);
	}
	return ferror(f) ? -EIO : 0;
}
