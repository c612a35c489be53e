/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <syslog.h>

#include "spore-config.h"
#include "util/cleanup.h"
#include "util/log.h"

#define KIB UINT64_C(1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

enum key_kind {
	KEY_PATH,      /* absolute path (char *) */
	KEY_SOCKET,    /* absolute path that fits sun_path (char *) */
	KEY_LISTEN,    /* ADDR:PORT list */
	KEY_TOKEN,     /* api_token */
	KEY_LOG_LEVEL, /* int */
	KEY_U32,       /* integer into uint32_t */
	KEY_U64,       /* integer into uint64_t */
	KEY_BOOL,      /* yes|no|true|false|1|0 into bool */
	KEY_ACCOUNT,   /* an AWS account id, 12 digits (char *) */
	KEY_REGION,    /* an AWS region name, [a-z0-9-]{1,32} (char *) */
};

struct key_def {
	const char *key;
	enum key_kind kind;
	size_t offset;
	uint64_t min, max;
	bool size; /* K, M, G suffixes allowed */
};

#define FIELD(f) offsetof(struct spore_config, f)

static const struct key_def keys[] = {
	{ "state_dir", KEY_PATH, FIELD(state_dir), 0, 0, false },
	{ "api_socket", KEY_SOCKET, FIELD(api_socket), 0, 0, false },
	{ "listen", KEY_LISTEN, 0, 0, 0, false },
	{ "api_token", KEY_TOKEN, 0, 0, 0, false },
	{ "runtime_dir", KEY_PATH, FIELD(runtime_dir), 0, 0, false },
	{ "log_level", KEY_LOG_LEVEL, 0, 0, 0, false },
	{ "idle_ttl_s", KEY_U32, FIELD(idle_ttl_s), 1, 86400, false },
	{ "max_instances", KEY_U32, FIELD(max_instances), 1, 1000, false },
	{ "queue_max", KEY_U32, FIELD(queue_max), 1, 100000, false },
	{ "queue_timeout_ms", KEY_U32, FIELD(queue_timeout_ms), 1, 3600000, false },
	{ "max_connections", KEY_U32, FIELD(max_connections), 1, 1000000, false },
	{ "header_timeout_ms", KEY_U32, FIELD(header_timeout_ms), 100, 600000, false },
	{ "keepalive_timeout_ms", KEY_U32, FIELD(keepalive_timeout_ms), 100, 3600000, false },
	{ "header_max_bytes", KEY_U32, FIELD(header_max), 1024, 1048576, true },
	{ "invoke_body_max_bytes", KEY_U64, FIELD(invoke_body_max), 1, GIB, true },
	{ "deploy_body_max_bytes", KEY_U64, FIELD(deploy_body_max), 1, 4 * GIB, true },
	{ "package_max_bytes", KEY_U64, FIELD(package_max_bytes), 1, UINT64_MAX, true },
	{ "package_max_entries", KEY_U32, FIELD(package_max_entries), 1, UINT32_MAX, false },
	{ "log_max_bytes", KEY_U64, FIELD(log_max_bytes), 4096, UINT64_MAX, true },
	{ "zygote_spares", KEY_U32, FIELD(zygote_spares), 0, 64, false },
	{ "sandbox", KEY_BOOL, FIELD(sandbox), 0, 0, false },
	{ "sandbox_dir", KEY_PATH, FIELD(sandbox_dir), 0, 0, false },
	{ "sandbox_uid_min", KEY_U32, FIELD(sandbox_uid_min), 1000, 4000000000u, false },
	{ "sandbox_uid_count", KEY_U32, FIELD(sandbox_uid_count), 1, 1000000, false },
	{ "metering_bpf", KEY_BOOL, FIELD(metering_bpf), 0, 0, false },
	{ "max_instances_total", KEY_U32, FIELD(max_instances_total), 1, 1000000, false },
	{ "instance_memory_pct", KEY_U32, FIELD(instance_memory_pct), 1, 1000, false },
	{ "bpf_pin_dir", KEY_PATH, FIELD(bpf_pin_dir), 0, 0, false },
	{ "shutdown_grace_s", KEY_U32, FIELD(shutdown_grace_s), 0, 3600, false },
	{ "lambda_account_id", KEY_ACCOUNT, FIELD(lambda_account_id), 0, 0, false },
	{ "lambda_region", KEY_REGION, FIELD(lambda_region), 0, 0, false },
	{ "lambda_access_keys", KEY_PATH, FIELD(lambda_access_keys), 0, 0, false },
	{ "lambda_allow_unsigned", KEY_BOOL, FIELD(lambda_allow_unsigned), 0, 0, false },
	{ "deps_timeout_s", KEY_U32, FIELD(deps_timeout_s), 1, 86400, false },
};

static const struct key_def *key_find(const char *key)
{
	for (size_t i = 0; i < ELEMENTSOF(keys); i++)
		if (streq(keys[i].key, key))
			return &keys[i];
	return NULL;
}

static void listen_free(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

void config_done(struct spore_config *c)
{
	if (!c)
		return;
	free(c->state_dir);
	free(c->api_socket);
	listen_free(c->listen, c->n_listen);
	free(c->api_token);
	free(c->runtime_dir);
	free(c->sandbox_dir);
	free(c->bpf_pin_dir);
	free(c->lambda_account_id);
	free(c->lambda_region);
	free(c->lambda_access_keys);
	*c = (struct spore_config){};
}

int config_init(struct spore_config *c)
{
	*c = (struct spore_config){
		.log_level = LOG_INFO,
		.idle_ttl_s = 300,
		.max_instances = 10,
		.queue_max = 100,
		.queue_timeout_ms = 30000,
		.max_connections = 10000,
		.header_timeout_ms = 10000,
		.keepalive_timeout_ms = 60000,
		.header_max = 16384,
		.invoke_body_max = 6 * MIB,
		.deploy_body_max = 64 * MIB,
		.package_max_bytes = 256 * MIB,
		.package_max_entries = 10000,
		.log_max_bytes = 8 * MIB,
		.zygote_spares = 2,
		.sandbox = true,
		.sandbox_uid_min = 200000,
		.sandbox_uid_count = 65536,
		.metering_bpf = true,
		.max_instances_total = 2000,
		.instance_memory_pct = 80,
		.shutdown_grace_s = 30,
		.deps_timeout_s = 300,
	};
	c->sandbox_dir = strdup(SPORE_DEFAULT_SANDBOX_DIR);
	c->bpf_pin_dir = strdup("/sys/fs/bpf/spore");
	c->lambda_account_id = strdup("000000000000");
	c->lambda_region = strdup("us-east-1");
	c->state_dir = strdup(SPORE_DEFAULT_STATE_DIR);
	c->api_socket = strdup(SPORE_DEFAULT_API_SOCKET);
	c->runtime_dir = strdup(SPORE_RUNTIME_DIR);
	c->listen = calloc(1, sizeof(char *));
	if (c->listen) {
		c->listen[0] = strdup(SPORE_DEFAULT_LISTEN);
		c->n_listen = c->listen[0] ? 1 : 0;
	}
	if (!c->state_dir || !c->api_socket || !c->runtime_dir || !c->sandbox_dir ||
	    !c->bpf_pin_dir || !c->lambda_account_id || !c->lambda_region || c->n_listen != 1) {
		config_done(c);
		return -ENOMEM;
	}
	return 0;
}

/* A reason (without the key) into *ret, for the caller to prefix. */
static int reason(char **ret, int err, const char *fmt, ...) _printf_(3, 4);
static int reason(char **ret, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(ret, fmt, ap) < 0) {
		*ret = NULL;
		err = -ENOMEM;
	}
	va_end(ap);
	return err;
}

/* Strict unsigned decimal with an optional binary K/M/G suffix: no sign, no spaces, no overflow. */
static int parse_u64(const char *s, bool size, uint64_t *ret)
{
	uint64_t v = 0;
	const char *p = s;
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (*p && size) {
		uint64_t m = 0;
		switch (*p) {
		case 'K':
		case 'k':
			m = KIB;
			break;
		case 'M':
		case 'm':
			m = MIB;
			break;
		case 'G':
		case 'g':
			m = GIB;
			break;
		default:
			return -EINVAL;
		}
		if (p[1])
			return -EINVAL;
		if (v > UINT64_MAX / m)
			return -ERANGE;
		v *= m;
		p++;
	}
	if (*p)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* One ADDR:PORT: "A.B.C.D:PORT" or "[v6]:PORT". */
static bool listen_valid(const char *s)
{
	const char *colon = strrchr(s, ':');
	if (!colon)
		return false;
	_cleanup_free_ char *host = NULL;
	int af;
	if (s[0] == '[') {
		if (colon == s || colon[-1] != ']')
			return false;
		host = strndup(s + 1, (size_t)(colon - s - 2));
		af = AF_INET6;
	} else {
		host = strndup(s, (size_t)(colon - s));
		af = AF_INET;
	}
	if (!host)
		return false;
	unsigned char addr[sizeof(struct in6_addr)];
	if (inet_pton(af, host, addr) != 1)
		return false;
	const char *port = colon + 1;
	uint64_t p;
	if (strlen(port) > 5 || parse_u64(port, false, &p) < 0 || p < 1 || p > 65535)
		return false;
	return true;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = 0;
	return s;
}

/* Parses a comma separated ADDR:PORT list and either replaces the list or appends to it. */
static int set_listen(struct spore_config *c, const char *value, bool append, char **ret_reason)
{
	_cleanup_free_ char *copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	size_t n_new = 0, base = append ? c->n_listen : 0;
	size_t max_new = 1;
	for (const char *p = value; *p; p++)
		max_new += *p == ',';
	char **l = calloc(base + max_new, sizeof(char *));
	if (!l)
		return -ENOMEM;
	int r = 0;
	char *rest = copy;
	/* strsep keeps empty elements, so "a,,b" and a trailing comma are caught. */
	for (char *tok; (tok = strsep(&rest, ",")) != NULL;) {
		char *t = trim(tok);
		if (!listen_valid(t)) {
			r = reason(ret_reason, -EINVAL, "invalid address '%s' (expected ADDR:PORT)", t);
			goto out;
		}
		for (size_t i = 0; i < base; i++)
			if (streq(c->listen[i], t)) {
				r = reason(ret_reason, -EINVAL, "address '%s' given twice", t);
				goto out;
			}
		for (size_t i = 0; i < n_new; i++)
			if (streq(l[base + i], t)) {
				r = reason(ret_reason, -EINVAL, "address '%s' given twice", t);
				goto out;
			}
		l[base + n_new] = strdup(t);
		if (!l[base + n_new]) {
			r = -ENOMEM;
			goto out;
		}
		n_new++;
	}
	/* Success: take the old entries over (append) or drop them (replace). */
	for (size_t i = 0; i < base; i++)
		l[i] = c->listen[i];
	if (append)
		free(c->listen);
	else
		listen_free(c->listen, c->n_listen);
	c->listen = TAKE_PTR(l);
	c->n_listen = base + n_new;
	return 0;
out:
	for (size_t i = 0; i < n_new; i++)
		free(l[base + i]);
	free(l);
	return r;
}

static int set_string(char **field, const char *value)
{
	char *s = strdup(value);
	if (!s)
		return -ENOMEM;
	free(*field);
	*field = s;
	return 0;
}

/* Applies key = value; on -EINVAL *ret_reason explains (without naming the key). */
static int set_key(struct spore_config *c, const struct key_def *k, const char *value, bool append,
		   char **ret_reason)
{
	switch (k->kind) {
	case KEY_PATH:
	case KEY_SOCKET: {
		if (value[0] != '/')
			return reason(ret_reason, -EINVAL, "must be an absolute path, got '%s'", value);
		if (k->kind == KEY_SOCKET && strlen(value) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
			return reason(ret_reason, -EINVAL,
				      "path too long for a unix socket (at most %zu bytes), got '%s'",
				      sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1, value);
		return set_string((char **)((char *)c + k->offset), value);
	}
	case KEY_LISTEN:
		return set_listen(c, value, append, ret_reason);
	case KEY_TOKEN: {
		if (value[0] == 0) {
			/* Empty: no token, management API on the unix socket only. */
			free(c->api_token);
			c->api_token = NULL;
			return 0;
		}
		/* Never echo the token: it is a secret. */
		size_t n = strlen(value);
		if (n < 16)
			return reason(ret_reason, -EINVAL, "must be at least 16 characters, got %zu", n);
		for (const char *p = value; *p; p++)
			if (*p <= ' ' || *p >= 127)
				return reason(ret_reason, -EINVAL,
					      "must contain only printable ASCII without spaces");
		return set_string(&c->api_token, value);
	}
	case KEY_LOG_LEVEL: {
		int l = log_level_from_string(value);
		if (l < 0)
			return reason(ret_reason, -EINVAL,
				      "must be one of debug, info, notice, warning, error, got '%s'",
				      value);
		c->log_level = l;
		return 0;
	}
	case KEY_BOOL: {
		bool *b = (bool *)((char *)c + k->offset);
		if (streq(value, "yes") || streq(value, "true") || streq(value, "1"))
			*b = true;
		else if (streq(value, "no") || streq(value, "false") || streq(value, "0"))
			*b = false;
		else
			return reason(ret_reason, -EINVAL, "must be yes or no, got '%s'", value);
		return 0;
	}
	case KEY_ACCOUNT:
		if (strlen(value) != 12 || strspn(value, "0123456789") != 12)
			return reason(ret_reason, -EINVAL, "must be 12 digits, got '%s'", value);
		return set_string((char **)((char *)c + k->offset), value);
	case KEY_REGION:
		if (!*value || strlen(value) > 32 ||
		    strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(value))
			return reason(ret_reason, -EINVAL,
				      "must be a region name such as us-east-1, got '%s'", value);
		return set_string((char **)((char *)c + k->offset), value);
	case KEY_U32:
	case KEY_U64: {
		uint64_t v;
		int r = parse_u64(value, k->size, &v);
		if (r < 0 || v < k->min || v > k->max) {
			const char *what = k->size ? "a size" : "an integer";
			const char *sfx = k->size ? " (suffix K, M or G allowed)" : "";
			if (k->max == UINT64_MAX || (k->kind == KEY_U32 && k->max == UINT32_MAX))
				return reason(ret_reason, -EINVAL,
					      "must be %s of at least %" PRIu64 "%s, got '%s'", what,
					      k->min, sfx, value);
			return reason(ret_reason, -EINVAL,
				      "must be %s between %" PRIu64 " and %" PRIu64 "%s, got '%s'",
				      what, k->min, k->max, sfx, value);
		}
		if (k->kind == KEY_U32)
			*(uint32_t *)((char *)c + k->offset) = (uint32_t)v;
		else
			*(uint64_t *)((char *)c + k->offset) = v;
		return 0;
	}
	}
	return -EINVAL;
}

static int set_labelled(struct spore_config *c, const char *label, const char *key,
			const char *value, bool append, char **ret_error)
{
	const struct key_def *k = key_find(key);
	if (!k) {
		if (label)
			return reason(ret_error, -EINVAL, "%s: unknown key '%s'", label, key);
		return reason(ret_error, -EINVAL, "unknown key '%s'", key);
	}
	_cleanup_free_ char *why = NULL;
	int r = set_key(c, k, value, append, &why);
	if (r == -EINVAL) {
		if (label)
			return reason(ret_error, -EINVAL, "%s: %s: %s", label, key, why);
		return reason(ret_error, -EINVAL, "%s: %s", key, why);
	}
	if (r < 0)
		return reason(ret_error, r, "out of memory");
	return 0;
}

int config_set(struct spore_config *c, const char *key, const char *value, char **ret_error)
{
	return set_labelled(c, NULL, key, value, false, ret_error);
}

/* The keys config_apply_live() changes in a running spored (see config.h). */
static const char *const live_keys[] = {
	"log_level",	    "api_token",	 "invoke_body_max_bytes", "deploy_body_max_bytes",
	"header_max_bytes", "header_timeout_ms", "keepalive_timeout_ms",  "max_connections",
	"shutdown_grace_s",
};

static bool str_eq_null(const char *a, const char *b)
{
	return a == b || (a && b && streq(a, b));
}

static bool key_equal(const struct key_def *k, const struct spore_config *a,
		      const struct spore_config *b)
{
	switch (k->kind) {
	case KEY_PATH:
	case KEY_SOCKET:
	case KEY_ACCOUNT:
	case KEY_REGION:
		return str_eq_null(*(char *const *)((const char *)a + k->offset),
				   *(char *const *)((const char *)b + k->offset));
	case KEY_LISTEN:
		if (a->n_listen != b->n_listen)
			return false;
		for (size_t i = 0; i < a->n_listen; i++)
			if (!streq(a->listen[i], b->listen[i]))
				return false;
		return true;
	case KEY_TOKEN:
		return str_eq_null(a->api_token, b->api_token);
	case KEY_LOG_LEVEL:
		return a->log_level == b->log_level;
	case KEY_U32:
		return *(const uint32_t *)((const char *)a + k->offset) ==
		       *(const uint32_t *)((const char *)b + k->offset);
	case KEY_U64:
		return *(const uint64_t *)((const char *)a + k->offset) ==
		       *(const uint64_t *)((const char *)b + k->offset);
	case KEY_BOOL:
		return *(const bool *)((const char *)a + k->offset) ==
		       *(const bool *)((const char *)b + k->offset);
	default:
		return true;
	}
}

/* Copies one live key's value (the kinds live_keys holds). */
static int key_copy(const struct key_def *k, struct spore_config *c, const struct spore_config *n)
{
	switch (k->kind) {
	case KEY_TOKEN:
		if (!n->api_token) {
			free(c->api_token);
			c->api_token = NULL;
			return 0;
		}
		return set_string(&c->api_token, n->api_token);
	case KEY_LOG_LEVEL:
		c->log_level = n->log_level;
		return 0;
	case KEY_U32:
		*(uint32_t *)((char *)c + k->offset) = *(const uint32_t *)((const char *)n + k->offset);
		return 0;
	case KEY_U64:
		*(uint64_t *)((char *)c + k->offset) = *(const uint64_t *)((const char *)n + k->offset);
		return 0;
	default:
		return -EINVAL;
	}
}

int config_apply_live(struct spore_config *c, const struct spore_config *n,
		      void (*changed)(const char *key, bool live, void *userdata), void *userdata)
{
	int count = 0;
	for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
		const struct key_def *k = &keys[i];
		if (key_equal(k, c, n))
			continue;
		bool live = false;
		for (size_t j = 0; j < ELEMENTSOF(live_keys); j++)
			if (streq(live_keys[j], k->key))
				live = true;
		if (live) {
			int r = key_copy(k, c, n);
			if (r < 0)
				return r;
			count++;
		}
		if (changed)
			changed(k->key, live, userdata);
	}
	return count;
}

/* Splits one config line. Returns 0 with *ret_key NULL for blank and comment lines. */
static int parse_line(char *line, char **ret_key, char **ret_value, char **ret_reason)
{
	char *s = trim(line);
	if (*s == 0 || *s == '#') {
		*ret_key = NULL;
		return 0;
	}
	char *eq = strchr(s, '=');
	if (!eq)
		return reason(ret_reason, -EINVAL, "expected 'key = value', got '%s'", s);
	*eq = 0;
	char *key = trim(s);
	char *value = eq + 1;
	while (*value == ' ' || *value == '\t')
		value++;
	if (*key == 0)
		return reason(ret_reason, -EINVAL, "missing key before '='");
	if (*value == '"') {
		char *end = strchr(value + 1, '"');
		if (!end)
			return reason(ret_reason, -EINVAL, "%s: unterminated quote", key);
		*end = 0;
		char *after = end + 1;
		after += strspn(after, " \t\r");
		if (*after != 0 && *after != '#')
			return reason(ret_reason, -EINVAL, "%s: unexpected text after the closing quote",
				      key);
		value++;
	} else {
		/* A '#' after whitespace starts a comment; quote values that need " #". */
		for (char *p = value; *p; p++)
			if (*p == '#' && p > value && (p[-1] == ' ' || p[-1] == '\t')) {
				*p = 0;
				break;
			}
		value = trim(value);
	}
	*ret_key = key;
	*ret_value = value;
	return 0;
}

int config_load_file(struct spore_config *c, const char *path, char **ret_error)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f) {
		int r = -errno;
		return reason(ret_error, r, "cannot open config file '%s': %s", path, strerror(-r));
	}
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	bool seen_listen = false;
	for (unsigned lineno = 1;; lineno++) {
		errno = 0;
		ssize_t n = getline(&line, &cap, f);
		if (n < 0) {
			if (errno != 0 && !feof(f))
				return reason(ret_error, -errno, "cannot read config file '%s': %s", path,
					      strerror(errno));
			break;
		}
		_cleanup_free_ char *label = NULL;
		if (asprintf(&label, "%s:%u", path, lineno) < 0)
			return -ENOMEM;
		if ((size_t)n != strlen(line))
			return reason(ret_error, -EINVAL, "%s: NUL byte in line", label);
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = 0;

		char *key = NULL, *value = NULL;
		_cleanup_free_ char *why = NULL;
		int r = parse_line(line, &key, &value, &why);
		if (r < 0)
			return r == -ENOMEM ? r : reason(ret_error, r, "%s: %s", label, why);
		if (!key)
			continue;
		/* The file's first listen replaces the default list; later ones add to it. */
		bool append = false;
		if (streq(key, "listen")) {
			append = seen_listen;
			seen_listen = true;
		}
		r = set_labelled(c, label, key, value, append, ret_error);
		if (r < 0)
			return r;
	}
	return 0;
}

enum {
	OPT_CONFIG = 0x100,
	OPT_LISTEN,
	OPT_API_SOCKET,
	OPT_STATE_DIR,
	OPT_RUNTIME_DIR,
	OPT_LOG_LEVEL,
};

static const struct option options[] = {
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "api-socket", required_argument, NULL, OPT_API_SOCKET },
	{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
	{ "runtime-dir", required_argument, NULL, OPT_RUNTIME_DIR },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{}
};

static const struct {
	int opt;
	const char *flag, *key, *expect;
} flag_keys[] = {
	{ OPT_CONFIG, "--config", NULL, "FILE" },
	{ OPT_LISTEN, "--listen", "listen", "ADDR:PORT" },
	{ OPT_API_SOCKET, "--api-socket", "api_socket", "PATH" },
	{ OPT_STATE_DIR, "--state-dir", "state_dir", "DIR" },
	{ OPT_RUNTIME_DIR, "--runtime-dir", "runtime_dir", "DIR" },
	{ OPT_LOG_LEVEL, "--log-level", "log_level", "LEVEL" },
};

static size_t flag_index(int opt)
{
	for (size_t i = 0; i < ELEMENTSOF(flag_keys); i++)
		if (flag_keys[i].opt == opt)
			return i;
	return SIZE_MAX;
}

static void print_help(const char *prog)
{
	printf("Usage: %s [OPTIONS]\n\n"
	       "Runs the spore function-as-a-service daemon.\n\n"
	       "  --config FILE         configuration file (default %s, if present)\n"
	       "  --listen ADDR:PORT    HTTP listen address, IPv4 A.B.C.D:PORT or [IPv6]:PORT;\n"
	       "                        repeatable or comma separated (default %s)\n"
	       "  --api-socket PATH     management API unix socket (default %s)\n"
	       "  --state-dir DIR       state directory (default %s)\n"
	       "  --runtime-dir DIR     directory of the spore-zygote-* programs (default %s)\n"
	       "  --log-level LEVEL     debug, info, notice, warning or error (default info)\n"
	       "  -h, --help            show this help and exit\n"
	       "  -V, --version         show the version and exit\n\n"
	       "Flags override the configuration file; every key is documented in %s.\n"
	       "Sockets passed by systemd (named http and api) replace --listen and --api-socket;\n"
	       "SIGHUP reloads the configuration, SIGTERM stops after in-flight requests (spored(8)).\n",
	       prog, SPORE_DEFAULT_CONFIG, SPORE_DEFAULT_LISTEN, SPORE_DEFAULT_API_SOCKET,
	       SPORE_DEFAULT_STATE_DIR, SPORE_RUNTIME_DIR, SPORE_DEFAULT_CONFIG);
}

struct flag_value {
	int opt;
	const char *arg;
};

int config_from_args(struct spore_config *c, int argc, char **argv, char **ret_error)
{
	_cleanup_free_ struct flag_value *flags = calloc((size_t)(argc > 0 ? argc : 1),
							 sizeof(*flags));
	if (!flags)
		return -ENOMEM;
	size_t n_flags = 0;
	const char *config_path = NULL;
	bool help = false, version = false;
	const char *prog = argc > 0 && argv[0] ? argv[0] : "spored";
	const char *slash = strrchr(prog, '/');
	if (slash)
		prog = slash + 1;

	/* Collect first: the file goes under the flags whatever their order. */
	opterr = 0;
	optind = 0; /* glibc: rescan from scratch (tests call this more than once) */
	for (;;) {
		int longindex = -1;
		int o = getopt_long(argc, argv, ":hV", options, &longindex);
		if (o == -1)
			break;
		if (o == 'h')
			help = true;
		else if (o == 'V')
			version = true;
		else if (o == ':') {
			size_t i = flag_index(optopt);
			if (i != SIZE_MAX)
				return reason(ret_error, -EINVAL, "%s: missing argument (expected %s)",
					      flag_keys[i].flag, flag_keys[i].expect);
			return reason(ret_error, -EINVAL, "'%s': missing argument",
				      argv[optind - 1]);
		} else if (o == '?') {
			const char *bad = argv[optind - 1];
			if (optopt != 0 && !startswith(bad, "--"))
				return reason(ret_error, -EINVAL, "unknown option '-%c' (see --help)",
					      optopt);
			if (optopt != 0) {
				/* A long option given an argument it does not take. */
				size_t n = strcspn(bad, "=");
				return reason(ret_error, -EINVAL, "%.*s: takes no argument", (int)n, bad);
			}
			size_t n = strcspn(bad, "=");
			return reason(ret_error, -EINVAL, "unknown option '%.*s' (see --help)",
				      (int)n, bad);
		} else if (o == OPT_CONFIG)
			config_path = optarg;
		else
			flags[n_flags++] = (struct flag_value){ o, optarg };
	}
	if (optind < argc)
		return reason(ret_error, -EINVAL, "unexpected argument '%s' (see --help)",
			      argv[optind]);
	if (help) {
		print_help(prog);
		return 1;
	}
	if (version) {
		printf("spored %s\n", SPORE_VERSION);
		return 1;
	}

	int r;
	if (config_path) {
		if (config_path[0] == 0)
			return reason(ret_error, -EINVAL, "--config: empty path");
		r = config_load_file(c, config_path, ret_error);
	} else {
		char *err = NULL;
		r = config_load_file(c, SPORE_DEFAULT_CONFIG, &err);
		if (r == -ENOENT) { /* no file: defaults */
			free(err);
			r = 0;
		} else if (r < 0)
			*ret_error = err;
	}
	if (r < 0)
		return r == -ENOMEM ? r : -EINVAL;

	bool seen_listen = false;
	for (size_t j = 0; j < n_flags; j++) {
		size_t i = flag_index(flags[j].opt);
		assert(i != SIZE_MAX);
		/* The first --listen replaces what the file (or the default) gave; later ones add. */
		bool append = false;
		if (flags[j].opt == OPT_LISTEN) {
			append = seen_listen;
			seen_listen = true;
		}
		const struct key_def *k = key_find(flag_keys[i].key);
		_cleanup_free_ char *why = NULL;
		r = set_key(c, k, flags[j].arg, append, &why);
		if (r == -EINVAL)
			return reason(ret_error, r, "%s: %s", flag_keys[i].flag, why);
		if (r < 0)
			return r;
	}
	return 0;
}
