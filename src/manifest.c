/* SPDX-License-Identifier: MIT */
#include "manifest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/error.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

#define HANDLER_MAX_LEN 255

static bool is_alpha_(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

bool function_name_valid(const char *name)
{
	if (!name)
		return false;
	size_t n = strlen(name);
	if (n < 1 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || is_digit(c);
		if (i > 0)
			ok = ok || c == '_' || c == '-';
		if (!ok)
			return false;
	}
	return true;
}

bool manifest_runtime_known(const char *runtime)
{
	return streq(runtime, "python3") || streq(runtime, "native") || streq(runtime, "nodejs") ||
	       streq(runtime, "exec") || streq(runtime, "provided");
}

/* [A-Za-z_][A-Za-z0-9_]* over s[0..n). */
static bool identifier_valid(const char *s, size_t n)
{
	if (n == 0 || !is_alpha_(s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_alpha_(s[i]) && !is_digit(s[i]))
			return false;
	return true;
}

/* "pkg.mod.func": at least two identifiers separated by single dots. */
static bool python_handler_valid(const char *h)
{
	size_t parts = 0;
	const char *p = h;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (!identifier_valid(p, n))
			return false;
		parts++;
		if (!dot)
			break;
		p = dot + 1;
	}
	return parts >= 2;
}

/* A plain file name ending in ".so": no '/', no ':', printable, something before ".so". */
static bool so_file_valid(const char *s, size_t n)
{
	if (n < 4 || memcmp(s + n - 3, ".so", 3) != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!is_alpha_(c) && !is_digit(c) && c != '.' && c != '-' && c != '+')
			return false;
	}
	return true;
}

/* "symbol" or "file.so:symbol". */
static bool native_handler_valid(const char *h)
{
	const char *colon = strchr(h, ':');
	if (!colon)
		return identifier_valid(h, strlen(h));
	return so_file_valid(h, (size_t)(colon - h)) &&
	       identifier_valid(colon + 1, strlen(colon + 1));
}

/* One component of a path in the package: [A-Za-z0-9_.@+-]+, not "." or "..". */
static bool path_component_valid(const char *s, size_t n, bool allow_dot)
{
	if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!is_alpha_(c) && !is_digit(c) && c != '-' && c != '@' && c != '+' &&
		    !(allow_dot && c == '.'))
			return false;
	}
	return true;
}

/* A relative path inside the package: components separated by single slashes. */
static bool package_path_valid(const char *s, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i <= n; i++)
		if (i == n || s[i] == '/') {
			if (!path_component_valid(s + start, i - start, true))
				return false;
			start = i + 1;
		}
	return true;
}

/* [A-Za-z_$][A-Za-z0-9_$]*: a JavaScript identifier (ASCII). */
static bool js_identifier_valid(const char *s, size_t n)
{
	if (n == 0 || (!is_alpha_(s[0]) && s[0] != '$'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_alpha_(s[i]) && !is_digit(s[i]) && s[i] != '$')
			return false;
	return true;
}

/* As Lambda's Node.js runtime splits it: "dir/file.export", the module "dir/file" (its file
 * name without extension, so without a dot) and the export, dotted for a nested one. */
static bool nodejs_handler_valid(const char *h)
{
	const char *slash = strrchr(h, '/');
	const char *name = slash ? slash + 1 : h;
	const char *dot = strchr(name, '.');
	if (!dot || (slash && !package_path_valid(h, (size_t)(slash - h))) ||
	    !path_component_valid(name, (size_t)(dot - name), false))
		return false;
	for (const char *p = dot + 1;;) {
		const char *d = strchr(p, '.');
		size_t n = d ? (size_t)(d - p) : strlen(p);
		if (!js_identifier_valid(p, n))
			return false;
		if (!d)
			return true;
		p = d + 1;
	}
}

/* exec: the executable's path in the package, "bin/fn" or "handler.sh". */
static bool exec_handler_valid(const char *h)
{
	return package_path_valid(h, strlen(h));
}

/* provided: Lambda's pattern [^\s]+ (empty: no handler): no white space or control bytes. */
static bool provided_handler_valid(const char *h)
{
	for (; *h; h++)
		if ((unsigned char)*h <= ' ' || *h == 0x7f)
			return false;
	return true;
}

/* Copies a user-supplied string for an error message: at most 64 bytes, non-printable bytes
 * replaced, so a message stays one short line whatever the input. */
static void user_str(const char *s, char out[static 72])
{
	size_t i = 0;
	for (; s[i] && i < 64; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
	}
	if (s[i]) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = 0;
}

_printf_(2, 3) static int fail(char **ret_error, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = error_setv(ret_error, -EINVAL, fmt, ap);
	va_end(ap);
	return r;
}

/* A JSON number that is whole and within [min, max]. */
static bool json_uint_in_range(const cJSON *v, double min, double max, uint32_t *ret)
{
	if (!cJSON_IsNumber(v))
		return false;
	double d = v->valuedouble;
	/* The range check comes first so the cast is defined (and rejects NaN). */
	if (!(d >= min && d <= max) || (double)(uint32_t)d != d)
		return false;
	*ret = (uint32_t)d;
	return true;
}

static const char *const allowed_keys[] = {
	"runtime", "handler", "memory_mb", "timeout_ms", "tmp_mb", "pids_max", "cpu_millis",
	"network",	"env",	   "code",
};

static int check_keys(const cJSON *j, char **ret_error)
{
	char name[72];
	for (const cJSON *c = j->child; c; c = c->next) {
		bool known = false;
		for (size_t i = 0; i < ELEMENTSOF(allowed_keys); i++)
			if (streq(c->string, allowed_keys[i]))
				known = true;
		if (!known) {
			user_str(c->string ?: "", name);
			return fail(ret_error, "unknown field '%s'", name);
		}
		for (const cJSON *d = c->next; d; d = d->next)
			if (streq(c->string, d->string))
				return fail(ret_error, "%s: given more than once", c->string);
	}
	return 0;
}

static int parse_env(const cJSON *env, struct manifest *m, char **ret_error)
{
	char name[72];
	if (!cJSON_IsObject(env))
		return fail(ret_error, "env: must be an object of strings");

	size_t n = 0, total = 0;
	for (const cJSON *c = env->child; c; c = c->next) {
		const char *k = c->string ?: "";
		user_str(k, name);
		if (!identifier_valid(k, strlen(k)))
			return fail(ret_error, "env.%s: names must match [A-Za-z_][A-Za-z0-9_]*",
				    name);
		if (startswith(k, "AWS_") || startswith(k, "SPORE_"))
			return fail(ret_error,
				    "env.%s: names starting with 'AWS_' or 'SPORE_' are reserved",
				    name);
		if (!cJSON_IsString(c) || !c->valuestring)
			return fail(ret_error, "env.%s: value must be a string", name);
		/* Counted as the environment block needs it: "KEY=value\0". */
		total += strlen(k) + 1 + strlen(c->valuestring) + 1;
		if (total > MANIFEST_ENV_MAX_BYTES)
			return fail(ret_error, "env: more than %d bytes in total (as KEY=value)",
				    MANIFEST_ENV_MAX_BYTES);
		for (const cJSON *d = env->child; d != c; d = d->next)
			if (streq(d->string, k))
				return fail(ret_error, "env.%s: given more than once", name);
		n++;
	}
	if (n == 0)
		return 0;

	m->env_keys = calloc(n, sizeof(char *));
	m->env_values = calloc(n, sizeof(char *));
	if (!m->env_keys || !m->env_values)
		return -ENOMEM;
	for (const cJSON *c = env->child; c; c = c->next) {
		m->env_keys[m->n_env] = strdup(c->string);
		m->env_values[m->n_env] = strdup(c->valuestring);
		/* Count the pair first so manifest_done() frees a half-copied one. */
		m->n_env++;
		if (!m->env_keys[m->n_env - 1] || !m->env_values[m->n_env - 1])
			return -ENOMEM;
	}
	return 0;
}

int manifest_from_json(const cJSON *j, struct manifest *ret, char **ret_error)
{
	char val[72];
	int r;

	if (!cJSON_IsObject(j))
		return fail(ret_error, "manifest: must be a JSON object");
	r = check_keys(j, ret_error);
	if (r < 0)
		return r;

	_cleanup_(manifest_done) struct manifest m = {
		.memory_mb = MANIFEST_MEMORY_DEFAULT,
		.timeout_ms = MANIFEST_TIMEOUT_DEFAULT,
		.tmp_mb = MANIFEST_TMP_DEFAULT,
		.pids_max = MANIFEST_PIDS_DEFAULT,
	};

	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "runtime");
	if (!v)
		return fail(ret_error, "runtime: is required");
	if (!cJSON_IsString(v) || !v->valuestring)
		return fail(ret_error, "runtime: must be a string");
	if (!manifest_runtime_known(v->valuestring)) {
		user_str(v->valuestring, val);
		return fail(ret_error,
			    "runtime: unknown runtime '%s' (known: python3, native, nodejs, exec, "
			    "provided)",
			    val);
	}
	m.runtime = strdup(v->valuestring);
	if (!m.runtime)
		return -ENOMEM;

	v = cJSON_GetObjectItemCaseSensitive(j, "handler");
	/* provided: optional, as on Lambda (it is only bootstrap's _HANDLER); absent is "". */
	const char *h = !v && streq(m.runtime, "provided") ? "" : cJSON_GetStringValue(v);
	if (!v && !h)
		return fail(ret_error, "handler: is required");
	if (!h)
		return fail(ret_error, "handler: must be a string");
	if (strlen(h) > HANDLER_MAX_LEN)
		return fail(ret_error, "handler: longer than %d characters", HANDLER_MAX_LEN);
	if (streq(m.runtime, "python3") && !python_handler_valid(h))
		return fail(ret_error, "handler: python3 handlers are 'module.function' (dotted "
				       "Python identifiers)");
	if (streq(m.runtime, "native") && !native_handler_valid(h))
		return fail(ret_error,
			    "handler: native handlers are 'symbol' or 'file.so:symbol' (a C "
			    "identifier; file.so a plain file name in the package)");
	if (streq(m.runtime, "nodejs") && !nodejs_handler_valid(h))
		return fail(ret_error,
			    "handler: nodejs handlers are 'file.export' (file: its path in the "
			    "package without the extension; export: a JavaScript identifier, "
			    "dotted for a nested one)");
	if (streq(m.runtime, "exec") && !exec_handler_valid(h))
		return fail(ret_error,
			    "handler: exec handlers are the path of an executable in the package "
			    "('bin/fn', 'handler.sh'), relative, without '.' or '..' components");
	if (streq(m.runtime, "provided") && !provided_handler_valid(h))
		return fail(ret_error, "handler: provided handlers are any text without white space or "
				       "control characters (bootstrap's _HANDLER), or none");
	m.handler = strdup(h);
	if (!m.handler)
		return -ENOMEM;

	v = cJSON_GetObjectItemCaseSensitive(j, "memory_mb");
	if (v && !json_uint_in_range(v, MANIFEST_MEMORY_MIN, MANIFEST_MEMORY_MAX, &m.memory_mb))
		return fail(ret_error, "memory_mb: must be an integer between %d and %d",
			    MANIFEST_MEMORY_MIN, MANIFEST_MEMORY_MAX);

	v = cJSON_GetObjectItemCaseSensitive(j, "timeout_ms");
	if (v && !json_uint_in_range(v, MANIFEST_TIMEOUT_MIN, MANIFEST_TIMEOUT_MAX, &m.timeout_ms))
		return fail(ret_error, "timeout_ms: must be an integer between %d and %d",
			    MANIFEST_TIMEOUT_MIN, MANIFEST_TIMEOUT_MAX);

	v = cJSON_GetObjectItemCaseSensitive(j, "tmp_mb");
	if (v && !json_uint_in_range(v, MANIFEST_TMP_MIN, MANIFEST_TMP_MAX, &m.tmp_mb))
		return fail(ret_error, "tmp_mb: must be an integer between %d and %d",
			    MANIFEST_TMP_MIN, MANIFEST_TMP_MAX);

	v = cJSON_GetObjectItemCaseSensitive(j, "pids_max");
	if (v && !json_uint_in_range(v, MANIFEST_PIDS_MIN, MANIFEST_PIDS_MAX, &m.pids_max))
		return fail(ret_error, "pids_max: must be an integer between %d and %d",
			    MANIFEST_PIDS_MIN, MANIFEST_PIDS_MAX);

	v = cJSON_GetObjectItemCaseSensitive(j, "cpu_millis");
	if (v && !json_uint_in_range(v, MANIFEST_CPU_MIN, MANIFEST_CPU_MAX, &m.cpu_millis))
		return fail(ret_error, "cpu_millis: must be an integer between %d and %d",
			    MANIFEST_CPU_MIN, MANIFEST_CPU_MAX);

	v = cJSON_GetObjectItemCaseSensitive(j, "network");
	if (v) {
		if (!cJSON_IsString(v) || !v->valuestring)
			return fail(ret_error, "network: must be a string");
		if (streq(v->valuestring, "egress"))
			m.egress = true;
		else if (!streq(v->valuestring, "none"))
			return fail(ret_error,
				    "network: must be 'none' (loopback only) or 'egress' (NAT to the "
				    "outside, nothing of the host)");
	}

	v = cJSON_GetObjectItemCaseSensitive(j, "env");
	if (v) {
		r = parse_env(v, &m, ret_error);
		if (r < 0)
			return r;
	}

	*ret = m;
	m = (struct manifest){};
	return 0;
}

cJSON *manifest_to_json(const struct manifest *m)
{
	_cleanup_(cJSON_Deletep) cJSON *j = cJSON_CreateObject();
	if (!j)
		return NULL;
	if (!cJSON_AddStringToObject(j, "runtime", m->runtime ?: "") ||
	    !cJSON_AddStringToObject(j, "handler", m->handler ?: "") ||
	    !cJSON_AddNumberToObject(j, "memory_mb", m->memory_mb) ||
	    !cJSON_AddNumberToObject(j, "timeout_ms", m->timeout_ms) ||
	    (m->tmp_mb && !cJSON_AddNumberToObject(j, "tmp_mb", m->tmp_mb)) ||
	    (m->pids_max && !cJSON_AddNumberToObject(j, "pids_max", m->pids_max)) ||
	    (m->cpu_millis && !cJSON_AddNumberToObject(j, "cpu_millis", m->cpu_millis)) ||
	    (m->egress && !cJSON_AddStringToObject(j, "network", "egress")))
		return NULL;
	cJSON *env = cJSON_AddObjectToObject(j, "env");
	if (!env)
		return NULL;
	for (size_t i = 0; i < m->n_env; i++)
		if (!cJSON_AddStringToObject(env, m->env_keys[i], m->env_values[i]))
			return NULL;
	return TAKE_PTR(j);
}

void manifest_done(struct manifest *m)
{
	if (!m)
		return;
	free(m->runtime);
	free(m->handler);
	for (size_t i = 0; i < m->n_env; i++) {
		free(m->env_keys[i]);
		free(m->env_values[i]);
	}
	free(m->env_keys);
	free(m->env_values);
	*m = (struct manifest){};
}

int manifest_copy(const struct manifest *src, struct manifest *ret)
{
	_cleanup_(manifest_done) struct manifest m = {
		.memory_mb = src->memory_mb,
		.timeout_ms = src->timeout_ms,
		.tmp_mb = src->tmp_mb,
		.pids_max = src->pids_max,
		.cpu_millis = src->cpu_millis,
		.egress = src->egress,
	};

	if (src->runtime && !(m.runtime = strdup(src->runtime)))
		return -ENOMEM;
	if (src->handler && !(m.handler = strdup(src->handler)))
		return -ENOMEM;
	if (src->n_env > 0) {
		m.env_keys = calloc(src->n_env, sizeof(char *));
		m.env_values = calloc(src->n_env, sizeof(char *));
		if (!m.env_keys || !m.env_values)
			return -ENOMEM;
		for (size_t i = 0; i < src->n_env; i++) {
			m.env_keys[i] = strdup(src->env_keys[i]);
			m.env_values[i] = strdup(src->env_values[i]);
			m.n_env++;
			if (!m.env_keys[i] || !m.env_values[i])
				return -ENOMEM;
		}
	}
	*ret = m;
	m = (struct manifest){};
	return 0;
}
