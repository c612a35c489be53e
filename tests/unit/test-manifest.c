/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "manifest.h"
#include "util/cleanup.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

static const struct manifest sentinel = { .memory_mb = 7777, .timeout_ms = 7777 };

static void parse(const char *json, int *ret_rc, struct manifest *m, char **err)
{
	_cleanup_(cJSON_Deletep) cJSON *j = cJSON_Parse(json);
	if (!j)
		fail_msg("test JSON does not parse: %s", json);
	*m = sentinel;
	*err = NULL;
	*ret_rc = manifest_from_json(j, m, err);
}

/* ---- valid manifests ---- */

struct valid_case {
	const char *json;
	const char *runtime;
	const char *handler;
	uint32_t memory_mb;
	uint32_t timeout_ms;
	size_t n_env;
};

static const struct valid_case valid_cases[] = {
	{ "{\"runtime\":\"python3\",\"handler\":\"app.handler\"}", "python3", "app.handler",
	  MANIFEST_MEMORY_DEFAULT, MANIFEST_TIMEOUT_DEFAULT, 0 },
	{ "{\"runtime\":\"python3\",\"handler\":\"pkg.mod.func\",\"memory_mb\":256,"
	  "\"timeout_ms\":1000,\"env\":{\"A\":\"1\",\"_b2\":\"\"},\"code\":\"AAAA\"}",
	  "python3", "pkg.mod.func", 256, 1000, 2 },
	{ "{\"runtime\":\"python3\",\"handler\":\"_m._f\",\"env\":{}}", "python3", "_m._f",
	  MANIFEST_MEMORY_DEFAULT, MANIFEST_TIMEOUT_DEFAULT, 0 },
	{ "{\"runtime\":\"native\",\"handler\":\"handle\"}", "native", "handle",
	  MANIFEST_MEMORY_DEFAULT, MANIFEST_TIMEOUT_DEFAULT, 0 },
	{ "{\"runtime\":\"native\",\"handler\":\"libfn.so:spore_handle\"}", "native",
	  "libfn.so:spore_handle", MANIFEST_MEMORY_DEFAULT, MANIFEST_TIMEOUT_DEFAULT, 0 },
	{ "{\"runtime\":\"native\",\"handler\":\"my-fn_2.so:h\"}", "native", "my-fn_2.so:h",
	  MANIFEST_MEMORY_DEFAULT, MANIFEST_TIMEOUT_DEFAULT, 0 },
	/* nodejs: "file.export", as Lambda splits it (path, file without extension, export) */
	{ "{\"runtime\":\"nodejs\",\"handler\":\"index.handler\"}", "nodejs", "index.handler",
	  MANIFEST_MEMORY_DEFAULT, MANIFEST_TIMEOUT_DEFAULT, 0 },
	{ "{\"runtime\":\"nodejs\",\"handler\":\"src/v1.2/app-main.lib.$run_2\"}", "nodejs",
	  "src/v1.2/app-main.lib.$run_2", MANIFEST_MEMORY_DEFAULT, MANIFEST_TIMEOUT_DEFAULT, 0 },
	{ "{\"runtime\":\"nodejs\",\"handler\":\"@scope/x.y\"}", "nodejs", "@scope/x.y",
	  MANIFEST_MEMORY_DEFAULT, MANIFEST_TIMEOUT_DEFAULT, 0 },
	/* exec: the executable's path in the package */
	{ "{\"runtime\":\"exec\",\"handler\":\"handler.sh\"}", "exec", "handler.sh",
	  MANIFEST_MEMORY_DEFAULT, MANIFEST_TIMEOUT_DEFAULT, 0 },
	{ "{\"runtime\":\"exec\",\"handler\":\"bin/fn\"}", "exec", "bin/fn",
	  MANIFEST_MEMORY_DEFAULT, MANIFEST_TIMEOUT_DEFAULT, 0 },
	{ "{\"runtime\":\"exec\",\"handler\":\".hidden/run.v2+x\"}", "exec",
	  ".hidden/run.v2+x", MANIFEST_MEMORY_DEFAULT, MANIFEST_TIMEOUT_DEFAULT, 0 },
	/* provided: any handler without white space (bootstrap's _HANDLER), or none ("") */
	{ "{\"runtime\":\"provided\"}", "provided", "", MANIFEST_MEMORY_DEFAULT,
	  MANIFEST_TIMEOUT_DEFAULT, 0 },
	{ "{\"runtime\":\"provided\",\"handler\":\"\"}", "provided", "",
	  MANIFEST_MEMORY_DEFAULT, MANIFEST_TIMEOUT_DEFAULT, 0 },
	{ "{\"runtime\":\"provided\",\"handler\":\"function.handler\"}", "provided",
	  "function.handler", MANIFEST_MEMORY_DEFAULT, MANIFEST_TIMEOUT_DEFAULT, 0 },
	{ "{\"runtime\":\"provided\",\"handler\":\"a/../b:c#\xc3\xa9\"}", "provided",
	  "a/../b:c#\xc3\xa9", MANIFEST_MEMORY_DEFAULT, MANIFEST_TIMEOUT_DEFAULT, 0 },
	/* Bounds, and whole numbers written as floats are still whole. */
	{ "{\"runtime\":\"python3\",\"handler\":\"a.b\",\"memory_mb\":64,\"timeout_ms\":1}",
	  "python3", "a.b", 64, 1, 0 },
	{ "{\"runtime\":\"python3\",\"handler\":\"a.b\",\"memory_mb\":10240,"
	  "\"timeout_ms\":900000}",
	  "python3", "a.b", 10240, 900000, 0 },
	{ "{\"runtime\":\"python3\",\"handler\":\"a.b\",\"memory_mb\":128.0,\"timeout_ms\":2e3}",
	  "python3", "a.b", 128, 2000, 0 },
};

static void test_valid(void **state)
{
	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(valid_cases); i++) {
		const struct valid_case *c = &valid_cases[i];
		struct manifest m;
		char *err;
		int rc;
		parse(c->json, &rc, &m, &err);
		if (rc != 0)
			fail_msg("case %zu (%s): rc %d, error '%s'", i, c->json, rc, err);
		assert_null(err);
		assert_string_equal(m.runtime, c->runtime);
		assert_string_equal(m.handler, c->handler);
		assert_int_equal(m.memory_mb, c->memory_mb);
		assert_int_equal(m.timeout_ms, c->timeout_ms);
		assert_int_equal(m.n_env, c->n_env);
		manifest_done(&m);
		assert_null(m.runtime);
		assert_int_equal(m.n_env, 0);
	}
}

/* ---- invalid manifests: each names its field ---- */

struct invalid_case {
	const char *json;
	const char *error; /* substring of the message */
};

#define PY "\"runtime\":\"python3\",\"handler\":\"app.h\""
#define NAT(h) "{\"runtime\":\"native\",\"handler\":\"" h "\"}"
#define PYH(h) "{\"runtime\":\"python3\",\"handler\":\"" h "\"}"
#define NODE(h) "{\"runtime\":\"nodejs\",\"handler\":\"" h "\"}"
#define EXEC(h) "{\"runtime\":\"exec\",\"handler\":\"" h "\"}"
#define NODE_ERR "handler: nodejs handlers are 'file.export'"
#define EXEC_ERR "handler: exec handlers are the path of an executable in the package"

static const struct invalid_case invalid_cases[] = {
	{ "[]", "manifest: must be a JSON object" },
	{ "\"x\"", "manifest: must be a JSON object" },
	{ "{\"handler\":\"a.b\"}", "runtime: is required" },
	{ "{\"runtime\":5,\"handler\":\"a.b\"}", "runtime: must be a string" },
	{ "{\"runtime\":null,\"handler\":\"a.b\"}", "runtime: must be a string" },
	{ "{\"runtime\":\"node\",\"handler\":\"a.b\"}", "runtime: unknown runtime 'node'" },
	{ "{\"runtime\":\"Python3\",\"handler\":\"a.b\"}", "runtime: unknown runtime" },
	{ "{\"runtime\":\"java\",\"handler\":\"a.b\"}",
	  "(known: python3, native, nodejs, exec, provided)" },
	{ "{\"runtime\":\"python3\"}", "handler: is required" },
	{ "{\"runtime\":\"python3\",\"handler\":[]}", "handler: must be a string" },
	{ PYH("app"), "handler: python3 handlers are 'module.function'" },
	{ PYH(""), "handler: python3 handlers are 'module.function'" },
	{ PYH("app."), "handler: python3 handlers are 'module.function'" },
	{ PYH(".app"), "handler: python3 handlers are 'module.function'" },
	{ PYH("a..b"), "handler: python3 handlers are 'module.function'" },
	{ PYH("1a.b"), "handler: python3 handlers are 'module.function'" },
	{ PYH("a.b-c"), "handler: python3 handlers are 'module.function'" },
	{ PYH("a/b.c"), "handler: python3 handlers are 'module.function'" },
	{ PYH("a.b "), "handler: python3 handlers are 'module.function'" },
	{ PYH("a:b"), "handler: python3 handlers are 'module.function'" },
	{ NAT(""), "handler: native handlers are 'symbol' or 'file.so:symbol'" },
	{ NAT("a.b"), "handler: native handlers are" },
	{ NAT("1abc"), "handler: native handlers are" },
	{ NAT("x.so:"), "handler: native handlers are" },
	{ NAT(":f"), "handler: native handlers are" },
	{ NAT("x:f"), "handler: native handlers are" },
	{ NAT(".so:f"), "handler: native handlers are" },
	{ NAT("x.so:1f"), "handler: native handlers are" },
	{ NAT("x.so:f:g"), "handler: native handlers are" },
	{ NAT("lib/x.so:f"), "handler: native handlers are" },
	{ NAT("/usr/lib/x.so:f"), "handler: native handlers are" },
	{ NAT("../x.so:f"), "handler: native handlers are" },
	{ NAT("x.so.1:f"), "handler: native handlers are" },
	{ NODE(""), NODE_ERR },
	{ NODE("index"), NODE_ERR },
	{ NODE("index."), NODE_ERR },
	{ NODE(".handler"), NODE_ERR },
	{ NODE("a..b"), NODE_ERR },
	{ NODE("a.b."), NODE_ERR },
	{ NODE("a.1b"), NODE_ERR },
	{ NODE("a.b-c"), NODE_ERR },
	{ NODE("/abs.h"), NODE_ERR },
	{ NODE("../up.h"), NODE_ERR },
	{ NODE("a/../b.h"), NODE_ERR },
	{ NODE("a/./b.h"), NODE_ERR },
	{ NODE("a//b.h"), NODE_ERR },
	{ NODE("dir/.h"), NODE_ERR },
	{ NODE("in dex.h"), NODE_ERR },
	{ NODE("a:b.h"), NODE_ERR },
	{ NODE("caf\xc3\xa9.h"), NODE_ERR },
	{ EXEC(""), EXEC_ERR },
	{ EXEC("/bin/sh"), EXEC_ERR },
	{ EXEC("../x"), EXEC_ERR },
	{ EXEC("bin/../x"), EXEC_ERR },
	{ EXEC("./x"), EXEC_ERR },
	{ EXEC("bin/"), EXEC_ERR },
	{ EXEC("a//b"), EXEC_ERR },
	{ EXEC("a b"), EXEC_ERR },
	{ EXEC("x\\\\y"), EXEC_ERR },
	{ EXEC("x;rm"), EXEC_ERR },
	{ "{\"runtime\":\"provided\",\"handler\":\"a b\"}", "handler: provided handlers are" },
	{ "{\"runtime\":\"provided\",\"handler\":\"a\\tb\"}", "handler: provided handlers are" },
	{ "{\"runtime\":\"provided\",\"handler\":\"a\\u0001\"}", "handler: provided handlers" },
	{ "{\"runtime\":\"provided\",\"handler\":7}", "handler: must be a string" },
	{ "{\"runtime\":\"provided\",\"handler\":null}", "handler: must be a string" },
	{ "{\"runtime\":\"exec\"}", "handler: is required" },
	{ "{" PY ",\"memory_mb\":63}", "memory_mb: must be an integer between 64 and 10240" },
	{ "{" PY ",\"memory_mb\":10241}", "memory_mb: must be an integer between 64 and 10240" },
	{ "{" PY ",\"memory_mb\":12.5}", "memory_mb: must be an integer" },
	{ "{" PY ",\"memory_mb\":128.5}", "memory_mb: must be an integer" },
	{ "{" PY ",\"memory_mb\":\"128\"}", "memory_mb: must be an integer" },
	{ "{" PY ",\"tmp_mb\":0}", "tmp_mb: must be an integer between 1 and 10240" },
	{ "{" PY ",\"tmp_mb\":10241}", "tmp_mb: must be an integer between 1 and 10240" },
	{ "{" PY ",\"pids_max\":0}", "pids_max: must be an integer between 1 and 4096" },
	{ "{" PY ",\"pids_max\":\"8\"}", "pids_max: must be an integer between 1 and 4096" },
	{ "{" PY ",\"cpu_millis\":9}", "cpu_millis: must be an integer between 10 and 64000" },
	{ "{" PY ",\"network\":\"host\"}", "network: must be 'none'" },
	{ "{" PY ",\"network\":1}", "network: must be a string" },
	{ "{" PY ",\"memory_mb\":true}", "memory_mb: must be an integer" },
	{ "{" PY ",\"memory_mb\":null}", "memory_mb: must be an integer" },
	{ "{" PY ",\"memory_mb\":-128}", "memory_mb: must be an integer" },
	{ "{" PY ",\"memory_mb\":1e300}", "memory_mb: must be an integer" },
	{ "{" PY ",\"timeout_ms\":0}", "timeout_ms: must be an integer between 1 and 900000" },
	{ "{" PY ",\"timeout_ms\":900001}", "timeout_ms: must be an integer between 1 and 900000" },
	{ "{" PY ",\"timeout_ms\":1.5}", "timeout_ms: must be an integer" },
	{ "{" PY ",\"timeout_ms\":\"30s\"}", "timeout_ms: must be an integer" },
	{ "{" PY ",\"timeout_ms\":false}", "timeout_ms: must be an integer" },
	{ "{" PY ",\"env\":[]}", "env: must be an object" },
	{ "{" PY ",\"env\":\"A=1\"}", "env: must be an object" },
	{ "{" PY ",\"env\":{\"FOO\":1}}", "env.FOO: value must be a string" },
	{ "{" PY ",\"env\":{\"FOO\":null}}", "env.FOO: value must be a string" },
	{ "{" PY ",\"env\":{\"FOO\":{}}}", "env.FOO: value must be a string" },
	{ "{" PY ",\"env\":{\"1X\":\"a\"}}", "env.1X: names must match" },
	{ "{" PY ",\"env\":{\"A-B\":\"a\"}}", "env.A-B: names must match" },
	{ "{" PY ",\"env\":{\"\":\"a\"}}", "env.: names must match" },
	{ "{" PY ",\"env\":{\"A=B\":\"a\"}}", "env.A=B: names must match" },
	{ "{" PY ",\"env\":{\"AWS_REGION\":\"x\"}}", "env.AWS_REGION: names starting with" },
	{ "{" PY ",\"env\":{\"SPORE_X\":\"x\"}}", "env.SPORE_X: names starting with" },
	{ "{" PY ",\"env\":{\"A\":\"x\",\"A\":\"y\"}}", "env.A: given more than once" },
	{ "{" PY ",\"memroy_mb\":128}", "unknown field 'memroy_mb'" },
	{ "{" PY ",\"Runtime\":\"python3\"}", "unknown field 'Runtime'" },
	{ "{" PY ",\"runtime\":\"python3\"}", "runtime: given more than once" },
};

static void test_invalid(void **state)
{
	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(invalid_cases); i++) {
		const struct invalid_case *c = &invalid_cases[i];
		struct manifest m;
		char *err;
		int rc;
		parse(c->json, &rc, &m, &err);
		if (rc != -EINVAL)
			fail_msg("case %zu (%s): rc %d, want -EINVAL", i, c->json, rc);
		if (!err || !strstr(err, c->error))
			fail_msg("case %zu (%s): error '%s', want '%s'", i, c->json, err, c->error);
		/* Output untouched on failure. */
		assert_memory_equal(&m, &sentinel, sizeof(m));
		free(err);
	}
}

/* Sizes are built at run time: the env limit counts "KEY=value\0". */
static void test_env_size(void **state)
{
	(void)state;
	for (size_t vlen = MANIFEST_ENV_MAX_BYTES - 4; vlen <= MANIFEST_ENV_MAX_BYTES - 2; vlen++) {
		/* "A=" + value + NUL = vlen + 3 bytes. */
		char *value = malloc(vlen + 1);
		assert_non_null(value);
		memset(value, 'v', vlen);
		value[vlen] = 0;
		char *json;
		assert_true(asprintf(&json, "{" PY ",\"env\":{\"A\":\"%s\"}}", value) > 0);
		struct manifest m;
		char *err;
		int rc;
		parse(json, &rc, &m, &err);
		if (vlen + 3 <= MANIFEST_ENV_MAX_BYTES) {
			assert_int_equal(rc, 0);
			assert_int_equal(m.n_env, 1);
			assert_int_equal(strlen(m.env_values[0]), vlen);
			manifest_done(&m);
		} else {
			assert_int_equal(rc, -EINVAL);
			assert_non_null(strstr(err, "env: more than 4096 bytes"));
			free(err);
		}
		free(json);
		free(value);
	}
}

static void test_handler_length(void **state)
{
	(void)state;
	char h[300];
	for (size_t len = 255; len <= 256; len++) {
		memset(h, 'a', len);
		h[1] = '.'; /* "a.aaaa..." */
		h[len] = 0;
		char *json;
		assert_true(asprintf(&json, PYH("%s"), h) > 0);
		struct manifest m;
		char *err;
		int rc;
		parse(json, &rc, &m, &err);
		if (len <= 255) {
			assert_int_equal(rc, 0);
			manifest_done(&m);
		} else {
			assert_int_equal(rc, -EINVAL);
			assert_non_null(strstr(err, "handler: longer than 255"));
			free(err);
		}
		free(json);
	}
}

static void assert_manifest_equal(const struct manifest *a, const struct manifest *b)
{
	assert_string_equal(a->runtime, b->runtime);
	assert_string_equal(a->handler, b->handler);
	assert_int_equal(a->memory_mb, b->memory_mb);
	assert_int_equal(a->timeout_ms, b->timeout_ms);
	assert_int_equal(a->egress, b->egress);
	assert_int_equal(a->n_env, b->n_env);
	for (size_t i = 0; i < a->n_env; i++) {
		assert_string_equal(a->env_keys[i], b->env_keys[i]);
		assert_string_equal(a->env_values[i], b->env_values[i]);
	}
}

static void test_round_trip(void **state)
{
	(void)state;
	static const char *const jsons[] = {
		"{\"runtime\":\"python3\",\"handler\":\"pkg.mod.func\",\"memory_mb\":512,"
		"\"timeout_ms\":123,\"env\":{\"Z\":\"last\",\"A\":\"first \\\"quoted\\\"\","
		"\"M\":\"\"}}",
		"{\"runtime\":\"native\",\"handler\":\"libx.so:h\"}",
		"{\"runtime\":\"python3\",\"handler\":\"m.f\",\"network\":\"egress\"}",
	};
	for (size_t i = 0; i < ELEMENTSOF(jsons); i++) {
		struct manifest m, m2, m3;
		char *err;
		int rc;
		parse(jsons[i], &rc, &m, &err);
		assert_int_equal(rc, 0);

		_cleanup_(cJSON_Deletep) cJSON *j = manifest_to_json(&m);
		assert_non_null(j);
		/* Every field is written, defaults included, env in the order given. */
		assert_non_null(cJSON_GetObjectItemCaseSensitive(j, "memory_mb"));
		assert_non_null(cJSON_GetObjectItemCaseSensitive(j, "timeout_ms"));
		assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "env")));
		assert_null(cJSON_GetObjectItemCaseSensitive(j, "code"));

		char *err2 = NULL;
		assert_int_equal(manifest_from_json(j, &m2, &err2), 0);
		assert_manifest_equal(&m, &m2);
		if (m.n_env == 3) {
			assert_string_equal(m2.env_keys[0], "Z");
			assert_string_equal(m2.env_values[1], "first \"quoted\"");
		}

		assert_int_equal(manifest_copy(&m, &m3), 0);
		assert_manifest_equal(&m, &m3);
		if (m.n_env > 0)
			assert_ptr_not_equal(m.env_keys[0], m3.env_keys[0]);
		assert_ptr_not_equal(m.handler, m3.handler);

		manifest_done(&m);
		manifest_done(&m2);
		manifest_done(&m3);
	}
	/* Done twice is harmless. */
	struct manifest z = {};
	manifest_done(&z);
	manifest_done(&z);
}

struct name_case {
	const char *name;
	bool valid;
};

static void test_names(void **state)
{
	(void)state;
	char n64[65], n65[66];
	memset(n64, 'a', 64);
	n64[64] = 0;
	memset(n65, 'a', 65);
	n65[65] = 0;
	const struct name_case cases[] = {
		{ "a", true },      { "0", true },       { "hello-world_2", true },
		{ "9lives", true }, { "a-", true },      { n64, true },
		{ n65, false },     { "", false },       { NULL, false },
		{ "Abc", false },   { "aBc", false },    { "-abc", false },
		{ "_abc", false },  { "a.b", false },    { "a b", false },
		{ "a/b", false },   { "..", false },     { "caf\xc3\xa9", false },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		if (function_name_valid(cases[i].name) != cases[i].valid)
			fail_msg("name case %zu '%s': want %s", i, cases[i].name ?: "(null)",
				 cases[i].valid ? "valid" : "invalid");

	assert_true(manifest_runtime_known("python3"));
	assert_true(manifest_runtime_known("native"));
	assert_true(manifest_runtime_known("nodejs"));
	assert_true(manifest_runtime_known("exec"));
	assert_false(manifest_runtime_known("node"));
	assert_false(manifest_runtime_known("Exec"));
	assert_true(manifest_runtime_known("provided"));
	assert_false(manifest_runtime_known("provided.al2")); /* the Lambda API maps it */
	assert_false(manifest_runtime_known(""));
	assert_false(manifest_runtime_known(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),          cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_env_size),       cmocka_unit_test(test_handler_length),
		cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
