/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "route.h"

static void test_table(void **state)
{
	(void)state;
	static const struct {
		const char *method, *path;
		int ret;
		enum route_id id;
		const char *name;
		int management;
	} cases[] = {
		{ "GET", "/healthz", 0, ROUTE_HEALTHZ, "", 0 },
		{ "HEAD", "/healthz", 0, ROUTE_HEALTHZ, "", 0 },
		{ "GET", "/healthz/", 0, ROUTE_HEALTHZ, "", 0 },
		{ "GET", "/v1/runtimes", 0, ROUTE_RUNTIMES, "", 1 },
		{ "GET", "/v1/functions", 0, ROUTE_FUNCTIONS_LIST, "", 1 },
		{ "GET", "/v1/functions/", 0, ROUTE_FUNCTIONS_LIST, "", 1 },
		{ "PUT", "/v1/functions/hello", 0, ROUTE_FUNCTION_PUT, "hello", 1 },
		{ "GET", "/v1/functions/hello", 0, ROUTE_FUNCTION_GET, "hello", 1 },
		{ "DELETE", "/v1/functions/a-b_c", 0, ROUTE_FUNCTION_DELETE, "a-b_c", 1 },
		{ "POST", "/v1/functions/hello/rollback", 0, ROUTE_FUNCTION_ROLLBACK, "hello", 1 },
		{ "POST", "/v1/functions/hello/invoke", 0, ROUTE_FUNCTION_INVOKE, "hello", 0 },
		{ "POST", "/v1/functions/hello/invoke/", 0, ROUTE_FUNCTION_INVOKE, "hello", 0 },
		{ "GET", "/v1/functions/hello/logs", 0, ROUTE_FUNCTION_LOGS, "hello", 1 },
		{ "GET", "/v1/functions/BAD!/logs", 0, ROUTE_FUNCTION_LOGS, "BAD!", 1 },
		{ "PATCH", "/v1/functions/hello", 0, ROUTE_FUNCTION_PATCH, "hello", 1 },
		{ "GET", "/v1/functions/hello/stats", 0, ROUTE_FUNCTION_STATS, "hello", 1 },
		{ "GET", "/metrics", 0, ROUTE_METRICS, "", 0 },
		{ "GET", "/v1/metrics", 0, ROUTE_METRICS_JSON, "", 1 },
		{ "POST", "/metrics", -EOPNOTSUPP, 0, NULL, 0 },
		{ "GET", "/metricsx", -ENOENT, 0, NULL, 0 },
		{ "GET", "/fn/web", 0, ROUTE_FUNCTION_HTTP, "web", 0 },
		{ "DELETE", "/fn/web/a/b", 0, ROUTE_FUNCTION_HTTP, "web", 0 },
		{ "PROPFIND", "/fn/web/", 0, ROUTE_FUNCTION_HTTP, "web", 0 },
		{ "GET", "/fn/", -ENOENT, 0, NULL, 0 },
		{ "GET", "/v1/functions/f/dead-letters", 0, ROUTE_FUNCTION_DEAD_LETTERS, "f", 1 },
		{ "GET", "/v1/invocations/00ab", 0, ROUTE_INVOCATION_GET, "00ab", 1 },
		{ "GET", "/v1/invocations/00ab/", 0, ROUTE_INVOCATION_GET, "00ab", 1 },
		{ "GET", "/v1/invocations/", -ENOENT, 0, NULL, 0 },
		{ "GET", "/v1/invocations/a/b", -ENOENT, 0, NULL, 0 },
		{ "DELETE", "/v1/invocations/a", -EOPNOTSUPP, 0, NULL, 0 },
		{ "GET", "/fn//x", -ENOENT, 0, NULL, 0 },
		{ "POST", "/healthz", -EOPNOTSUPP, 0, NULL, 0 },
		{ "GET", "/v1/functions/hello/invoke", -EOPNOTSUPP, 0, NULL, 0 },
		{ "POST", "/v1/functions/hello", -EOPNOTSUPP, 0, NULL, 0 },
		{ "PUT", "/v1/functions", -EOPNOTSUPP, 0, NULL, 0 },
		{ "GET", "/", -ENOENT, 0, NULL, 0 },
		{ "GET", "/v1", -ENOENT, 0, NULL, 0 },
		{ "GET", "/v1/functionsx", -ENOENT, 0, NULL, 0 },
		{ "GET", "/v1/functions//logs", -ENOENT, 0, NULL, 0 },
		{ "POST", "/v1/functions/hello/other", -ENOENT, 0, NULL, 0 },
		{ "POST", "/v1/functions/hello/invoke/x", -ENOENT, 0, NULL, 0 },
		{ "GET", "/healthzz", -ENOENT, 0, NULL, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct route_match m;
		memset(&m, 0, sizeof(m));
		int r = route_match(cases[i].method, cases[i].path, &m);
		if (r != cases[i].ret)
			fail_msg("case %zu %s %s: got %d want %d", i, cases[i].method, cases[i].path, r,
				 cases[i].ret);
		if (r == 0) {
			assert_int_equal(m.id, cases[i].id);
			assert_string_equal(m.name, cases[i].name);
			assert_int_equal(m.management, cases[i].management);
		} else if (r == -EOPNOTSUPP)
			assert_non_null(m.allow);
	}
}

static void test_allow(void **state)
{
	(void)state;
	struct route_match m;
	assert_int_equal(route_match("POST", "/v1/functions/x", &m), -EOPNOTSUPP);
	assert_string_equal(m.allow, "GET, PUT, PATCH, DELETE");
}

static void test_fn_http_rest(void **state)
{
	(void)state;
	static const struct {
		const char *path, *rest;
	} cases[] = {
		{ "/fn/web", "" }, { "/fn/web/", "/" }, { "/fn/web/a/b", "/a/b" }, { "/fn/w/x%", "/x%" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct route_match m;
		assert_int_equal(route_match("GET", cases[i].path, &m), 0);
		assert_string_equal(cases[i].path + m.rest, cases[i].rest);
	}
}

static void test_long_name(void **state)
{
	(void)state;
	char path[600] = "/v1/functions/";
	memset(path + strlen(path), 'a', 400);
	struct route_match m;
	assert_int_equal(route_match("GET", path, &m), 0);
	assert_true(m.name_too_long);
	assert_int_equal(strlen(m.name), sizeof(m.name) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_allow),
		cmocka_unit_test(test_long_name),
		cmocka_unit_test(test_fn_http_rest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
