/* SPDX-License-Identifier: MIT */
/* apigw: HTTP requests as API Gateway payload 2.0 events, results back onto responses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "apigw.h"
#include "util/cleanup.h"

static cJSON *event_of(const struct apigw_request *req)
{
	char *s = NULL;
	assert_int_equal(apigw_event(req, &s), 0);
	cJSON *j = cJSON_Parse(s);
	free(s);
	assert_non_null(j);
	return j;
}

static const char *str(const cJSON *o, const char *path)
{
	/* "a.b.c" */
	char buf[128];
	strncpy(buf, path, sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = 0;
	const cJSON *cur = o;
	for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save))
		cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
	return cJSON_GetStringValue(cur);
}

static void test_event(void **state)
{
	(void)state;
	const struct apigw_header h[] = {
		{ "Content-Type", "application/json" },
		{ "X-Multi", "a" },
		{ "x-multi", "b" },
		{ "Cookie", "s=1; theme=dark" },
		{ "User-Agent", "curl/7.88" },
	};
	const struct apigw_request req = {
		.method = "POST", .path = "/items/42", .query = "q=a+b&q=c&x=%2F&flag",
		.headers = h, .n_headers = ELEMENTSOF(h), .body = "{\"k\":1}", .body_len = 7,
		.source_ip = "127.0.0.1", .request_id = "rid-1", .host = "localhost:8080",
		.time_us = 1700000000123456LL, .http_minor = 1,
	};
	cJSON *j = event_of(&req);
	assert_string_equal(str(j, "version"), "2.0");
	assert_string_equal(str(j, "routeKey"), "$default");
	assert_string_equal(str(j, "rawPath"), "/items/42");
	assert_string_equal(str(j, "rawQueryString"), "q=a+b&q=c&x=%2F&flag");
	assert_string_equal(str(j, "headers.content-type"), "application/json");
	assert_string_equal(str(j, "headers.x-multi"), "a,b");
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "headers"), "cookie"));
	cJSON *cookies = cJSON_GetObjectItem(j, "cookies");
	assert_int_equal(cJSON_GetArraySize(cookies), 2);
	assert_string_equal(cJSON_GetArrayItem(cookies, 1)->valuestring, "theme=dark");
	assert_string_equal(str(j, "queryStringParameters.q"), "a b,c");
	assert_string_equal(str(j, "queryStringParameters.x"), "/");
	assert_string_equal(str(j, "queryStringParameters.flag"), "");
	assert_string_equal(str(j, "requestContext.http.method"), "POST");
	assert_string_equal(str(j, "requestContext.http.path"), "/items/42");
	assert_string_equal(str(j, "requestContext.http.protocol"), "HTTP/1.1");
	assert_string_equal(str(j, "requestContext.http.sourceIp"), "127.0.0.1");
	assert_string_equal(str(j, "requestContext.http.userAgent"), "curl/7.88");
	assert_string_equal(str(j, "requestContext.requestId"), "rid-1");
	assert_string_equal(str(j, "requestContext.domainName"), "localhost:8080");
	assert_string_equal(str(j, "requestContext.time"), "14/Nov/2023:22:13:20 +0000");
	assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "requestContext"), "timeEpoch")
			    ->valuedouble == 1700000000123.0);
	assert_string_equal(str(j, "body"), "{\"k\":1}");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "isBase64Encoded")));
	cJSON_Delete(j);
}

static void test_event_bodies(void **state)
{
	(void)state;
	static const struct {
		const char *ctype;
		const char *body;
		size_t len;
		bool b64;
		const char *want;
	} cases[] = {
		{ "text/plain", "hello", 5, false, "hello" },
		{ NULL, "plain", 5, false, "plain" },
		{ "application/octet-stream", "hello", 5, true, "aGVsbG8=" },
		{ "text/plain", "a\0b", 3, true, "YQBi" },
		{ "text/plain", "\xff\xfe", 2, true, "//4=" },
		{ "text/plain", "\xc0\xaf", 2, true, "wK8=" },           /* overlong */
		{ "application/vnd.x+json", "{}", 2, false, "{}" },
		{ "image/png", "\x89PNG", 4, true, "iVBORw==" },
		{ "text/html; charset=utf-8", "\xc3\xa9t\xc3\xa9", 5, false, "\xc3\xa9t\xc3\xa9" },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct apigw_header h = { "content-type", cases[i].ctype };
		struct apigw_request req = { .method = "PUT", .path = "/", .headers = &h,
					     .n_headers = cases[i].ctype ? 1 : 0,
					     .body = cases[i].body, .body_len = cases[i].len };
		cJSON *j = event_of(&req);
		assert_string_equal(str(j, "body"), cases[i].want);
		assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(j, "isBase64Encoded")),
				 cases[i].b64);
		assert_null(cJSON_GetObjectItem(j, "queryStringParameters"));
		cJSON_Delete(j);
	}
	/* no body at all */
	struct apigw_request req = { .method = "GET", .path = "/" };
	cJSON *j = event_of(&req);
	assert_null(cJSON_GetObjectItem(j, "body"));
	cJSON_Delete(j);
}

static void test_response(void **state)
{
	(void)state;
	struct apigw_response r;
	char *err = NULL;
	const char *res =
		"{\"statusCode\":201,\"headers\":{\"Content-Type\":\"text/plain\",\"X-A\":\"1\","
		"\"X-N\":5,\"Content-Length\":\"999\"},\"cookies\":[\"a=1\",\"b=2; Path=/\"],"
		"\"body\":\"created\"}";
	assert_int_equal(apigw_response(res, strlen(res), &r, &err), 0);
	assert_int_equal(r.status, 201);
	assert_string_equal(r.content_type, "text/plain");
	assert_string_equal(r.extra_headers,
			    "X-A: 1\r\nX-N: 5\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2; Path=/\r\n");
	assert_int_equal(r.body_len, 7);
	assert_memory_equal(r.body, "created", 7);
	apigw_response_done(&r);

	res = "{\"statusCode\":200,\"isBase64Encoded\":true,\"body\":\"AAEC/w==\","
	      "\"headers\":{\"content-type\":\"application/octet-stream\"}}";
	assert_int_equal(apigw_response(res, strlen(res), &r, &err), 0);
	assert_int_equal(r.body_len, 4);
	assert_memory_equal(r.body, "\x00\x01\x02\xff", 4);
	apigw_response_done(&r);

	/* not NUL-terminated where it lies: only len bytes count */
	static const char unterminated[] = "{\"statusCode\":204}xxxx";
	assert_int_equal(apigw_response(unterminated, 18, &r, &err), 0);
	assert_int_equal(r.status, 204);
	apigw_response_done(&r);

	/* plain values: 200 JSON of the value itself */
	static const char *const plain[] = { "{\"a\":1}", "[1,2]", "\"s\"", "42", "null",
					     "{\"status\":500}" };
	for (size_t i = 0; i < ELEMENTSOF(plain); i++) {
		assert_int_equal(apigw_response(plain[i], strlen(plain[i]), &r, &err), 0);
		assert_int_equal(r.status, 200);
		assert_string_equal(r.content_type, "application/json");
		assert_string_equal(r.extra_headers, "");
		assert_int_equal(r.body_len, strlen(plain[i]));
		apigw_response_done(&r);
	}
}

static void test_response_invalid(void **state)
{
	(void)state;
	static const struct {
		const char *res;
		const char *names;
	} cases[] = {
		{ "{\"statusCode\":99}", "statusCode" },
		{ "{\"statusCode\":600}", "statusCode" },
		{ "{\"statusCode\":\"200\"}", "statusCode" },
		{ "{\"statusCode\":200.5}", "statusCode" },
		{ "{\"statusCode\":200,\"headers\":{\"X-A\":\"1\\r\\nSet-Cookie: evil=1\"}}", "X-A" },
		{ "{\"statusCode\":200,\"headers\":{\"Bad Name\":\"1\"}}", "Bad Name" },
		{ "{\"statusCode\":200,\"headers\":{\"X\":{}}}", "X" },
		{ "{\"statusCode\":200,\"headers\":[1]}", "headers" },
		{ "{\"statusCode\":200,\"cookies\":[\"a\\nb\"]}", "cookies" },
		{ "{\"statusCode\":200,\"cookies\":\"a=1\"}", "cookies" },
		{ "{\"statusCode\":200,\"body\":5}", "body" },
		{ "{\"statusCode\":200,\"body\":\"!!\",\"isBase64Encoded\":true}", "base64" },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct apigw_response r = { 0 };
		char *err = NULL;
		assert_int_equal(apigw_response(cases[i].res, strlen(cases[i].res), &r, &err),
				 -EINVAL);
		assert_non_null(err);
		if (!strstr(err, cases[i].names))
			fail_msg("case %zu: '%s' does not name '%s'", i, err, cases[i].names);
		free(err);
		assert_null(r.body);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event),
		cmocka_unit_test(test_event_bodies),
		cmocka_unit_test(test_response),
		cmocka_unit_test(test_response_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
