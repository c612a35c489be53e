/* SPDX-License-Identifier: MIT */
/* The API's routing table: method + path -> route and function name. Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum route_id {
	ROUTE_HEALTHZ,
	ROUTE_FUNCTIONS_LIST,
	ROUTE_FUNCTION_PUT,
	ROUTE_FUNCTION_GET,
	ROUTE_FUNCTION_DELETE,
	ROUTE_FUNCTION_ROLLBACK,
	ROUTE_FUNCTION_INVOKE,
	ROUTE_FUNCTION_LOGS,
	ROUTE_RUNTIMES,
	ROUTE_METRICS,          /* GET /metrics: Prometheus */
	ROUTE_METRICS_JSON,     /* GET /v1/metrics */
	ROUTE_FUNCTION_STATS,   /* GET /v1/functions/{name}/stats */
	ROUTE_FUNCTION_PATCH,   /* PATCH /v1/functions/{name}: scaling settings */
	ROUTE_FUNCTION_HTTP,    /* any method on /fn/{name}[/{path...}]: an HTTP route */
	ROUTE_FUNCTION_DEAD_LETTERS, /* GET /v1/functions/{name}/dead-letters */
	ROUTE_INVOCATION_GET,   /* GET /v1/invocations/{id} (the id in name) */
	_ROUTE_MAX,
	_ROUTE_INVALID = -22,
};

struct route_match {
	enum route_id id;
	bool management;  /* served on TCP only with the API token */
	char name[256];   /* the {name} segment, undecoded; "" when the route has none */
	bool name_too_long;
	size_t rest; /* ROUTE_FUNCTION_HTTP: offset in the path of what follows the name ("" or
			"/...") */
	const char *allow; /* for -EOPNOTSUPP: the methods the path takes, e.g. "GET, PUT, DELETE" */
};

/* 0 and *ret filled; -ENOENT (no such path: 404); -EOPNOTSUPP (path known, method not: 405,
 * ret->allow set). */
int route_match(const char *method, const char *path, struct route_match *ret);
