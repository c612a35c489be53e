/* SPDX-License-Identifier: MIT */
#include "route.h"

#include <errno.h>
#include <string.h>

#include "util/cleanup.h"

enum shape {
	SHAPE_HEALTHZ,   /* /healthz */
	SHAPE_RUNTIMES,  /* /v1/runtimes */
	SHAPE_FUNCTIONS, /* /v1/functions */
	SHAPE_FUNCTION,  /* /v1/functions/{name} */
	SHAPE_ROLLBACK,  /* /v1/functions/{name}/rollback */
	SHAPE_INVOKE,    /* /v1/functions/{name}/invoke */
	SHAPE_LOGS,      /* /v1/functions/{name}/logs */
	SHAPE_METRICS,   /* /metrics */
	SHAPE_V1_METRICS, /* /v1/metrics */
	SHAPE_STATS,     /* /v1/functions/{name}/stats */
	SHAPE_FN_HTTP,   /* /fn/{name}[/...] */
	SHAPE_DEAD,      /* /v1/functions/{name}/dead-letters */
	SHAPE_INVOCATION, /* /v1/invocations/{id} */
};

static const struct {
	enum shape shape;
	const char *method;
	enum route_id id;
	bool management;
} table[] = {
	{ SHAPE_HEALTHZ, "GET", ROUTE_HEALTHZ, false },
	{ SHAPE_HEALTHZ, "HEAD", ROUTE_HEALTHZ, false },
	{ SHAPE_RUNTIMES, "GET", ROUTE_RUNTIMES, true },
	{ SHAPE_FUNCTIONS, "GET", ROUTE_FUNCTIONS_LIST, true },
	{ SHAPE_FUNCTION, "GET", ROUTE_FUNCTION_GET, true },
	{ SHAPE_FUNCTION, "PUT", ROUTE_FUNCTION_PUT, true },
	{ SHAPE_FUNCTION, "DELETE", ROUTE_FUNCTION_DELETE, true },
	{ SHAPE_FUNCTION, "PATCH", ROUTE_FUNCTION_PATCH, true },
	{ SHAPE_METRICS, "GET", ROUTE_METRICS, false },
	{ SHAPE_V1_METRICS, "GET", ROUTE_METRICS_JSON, true },
	{ SHAPE_STATS, "GET", ROUTE_FUNCTION_STATS, true },
	{ SHAPE_DEAD, "GET", ROUTE_FUNCTION_DEAD_LETTERS, true },
	{ SHAPE_INVOCATION, "GET", ROUTE_INVOCATION_GET, true },
	{ SHAPE_ROLLBACK, "POST", ROUTE_FUNCTION_ROLLBACK, true },
	{ SHAPE_INVOKE, "POST", ROUTE_FUNCTION_INVOKE, false },
	{ SHAPE_LOGS, "GET", ROUTE_FUNCTION_LOGS, true },
};

static const char *const allow[] = {
	[SHAPE_HEALTHZ] = "GET, HEAD",
	[SHAPE_RUNTIMES] = "GET",
	[SHAPE_FUNCTIONS] = "GET",
	[SHAPE_FUNCTION] = "GET, PUT, PATCH, DELETE",
	[SHAPE_ROLLBACK] = "POST",
	[SHAPE_INVOKE] = "POST",
	[SHAPE_LOGS] = "GET",
	[SHAPE_METRICS] = "GET",
	[SHAPE_V1_METRICS] = "GET",
	[SHAPE_STATS] = "GET",
	[SHAPE_FN_HTTP] = "any",
	[SHAPE_DEAD] = "GET",
	[SHAPE_INVOCATION] = "GET",
};

/* Splits path into a shape and name; -ENOENT if it has none. A single trailing '/' is allowed. */
static int path_shape(const char *path, enum shape *ret_shape, struct route_match *m)
{
	size_t len = strlen(path);
	if (len > 1 && path[len - 1] == '/')
		len--;
	if (len == 8 && strncmp(path, "/healthz", 8) == 0) {
		*ret_shape = SHAPE_HEALTHZ;
		return 0;
	}
	if (len == 12 && strncmp(path, "/v1/runtimes", 12) == 0) {
		*ret_shape = SHAPE_RUNTIMES;
		return 0;
	}
	if (len == 8 && strncmp(path, "/metrics", 8) == 0) {
		*ret_shape = SHAPE_METRICS;
		return 0;
	}
	if (len == 11 && strncmp(path, "/v1/metrics", 11) == 0) {
		*ret_shape = SHAPE_V1_METRICS;
		return 0;
	}
	if (strncmp(path, "/fn/", 4) == 0) {
		const char *name = path + 4;
		size_t nl = strcspn(name, "/");
		if (nl == 0)
			return -ENOENT;
		*ret_shape = SHAPE_FN_HTTP;
		m->rest = (size_t)(name + nl - path);
		if (nl >= sizeof(m->name)) {
			m->name_too_long = true;
			nl = sizeof(m->name) - 1;
		}
		memcpy(m->name, name, nl);
		m->name[nl] = 0;
		return 0;
	}
	if (strncmp(path, "/v1/invocations/", 16) == 0) {
		const char *id = path + 16;
		size_t il = len > 16 ? len - 16 : 0;
		if (il == 0 || memchr(id, '/', il))
			return -ENOENT;
		*ret_shape = SHAPE_INVOCATION;
		if (il >= sizeof(m->name)) {
			m->name_too_long = true;
			il = sizeof(m->name) - 1;
		}
		memcpy(m->name, id, il);
		m->name[il] = 0;
		return 0;
	}
	static const char prefix[] = "/v1/functions";
	size_t pl = sizeof(prefix) - 1;
	if (len < pl || strncmp(path, prefix, pl) != 0)
		return -ENOENT;
	if (len == pl) {
		*ret_shape = SHAPE_FUNCTIONS;
		return 0;
	}
	if (path[pl] != '/')
		return -ENOENT;
	const char *name = path + pl + 1;
	const char *end = path + len;
	const char *slash = memchr(name, '/', (size_t)(end - name));
	const char *name_end = slash ? slash : end;
	size_t nl = (size_t)(name_end - name);
	if (nl == 0)
		return -ENOENT;
	if (!slash)
		*ret_shape = SHAPE_FUNCTION;
	else {
		size_t sl = (size_t)(end - slash - 1);
		const char *sub = slash + 1;
		if (sl == 8 && strncmp(sub, "rollback", 8) == 0)
			*ret_shape = SHAPE_ROLLBACK;
		else if (sl == 6 && strncmp(sub, "invoke", 6) == 0)
			*ret_shape = SHAPE_INVOKE;
		else if (sl == 4 && strncmp(sub, "logs", 4) == 0)
			*ret_shape = SHAPE_LOGS;
		else if (sl == 5 && strncmp(sub, "stats", 5) == 0)
			*ret_shape = SHAPE_STATS;
		else if (sl == 12 && strncmp(sub, "dead-letters", 12) == 0)
			*ret_shape = SHAPE_DEAD;
		else
			return -ENOENT;
	}
	if (nl >= sizeof(m->name)) {
		m->name_too_long = true;
		nl = sizeof(m->name) - 1;
	}
	memcpy(m->name, name, nl);
	m->name[nl] = 0;
	return 0;
}

int route_match(const char *method, const char *path, struct route_match *ret)
{
	struct route_match m = { .id = _ROUTE_INVALID };
	enum shape shape;
	int r = path_shape(path, &shape, &m);
	if (r < 0)
		return r;
	if (shape == SHAPE_FN_HTTP) {
		/* Every method: the function decides what it answers. */
		m.id = ROUTE_FUNCTION_HTTP;
		m.management = false;
		*ret = m;
		return 0;
	}
	for (size_t i = 0; i < ELEMENTSOF(table); i++)
		if (table[i].shape == shape && streq(table[i].method, method)) {
			m.id = table[i].id;
			m.management = table[i].management;
			*ret = m;
			return 0;
		}
	ret->allow = allow[shape];
	return -EOPNOTSUPP;
}
