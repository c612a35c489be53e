/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "logs.h"
#include "util/fileio.h"

struct ctx {
	char dir[64];
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	strcpy(c->dir, "/tmp/spore-test-logs-XXXXXX");
	assert_non_null(mkdtemp(c->dir));
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	rm_rf_at(AT_FDCWD, c->dir);
	free(c);
	return 0;
}

static size_t count_lines(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += s[i] == '\n';
	return n;
}

static void test_append_tail(void **state)
{
	struct ctx *c = *state;
	struct log_store *s;
	assert_int_equal(log_store_new(c->dir, 1 << 20, &s), 0);
	char msg[32];
	for (int i = 0; i < 10; i++) {
		int n = snprintf(msg, sizeof(msg), "line %d \"q\"", i);
		assert_int_equal(log_store_append(s, "fn", 3, "i-1", i % 2 ? "stderr" : "stdout", msg,
						  (size_t)n),
				 0);
	}
	static const struct {
		size_t n, want;
		const char *last;
	} cases[] = { { 0, 0, NULL }, { 1, 1, "line 9 \"q\"" }, { 3, 3, "line 9 \"q\"" },
		      { 10, 10, "line 9 \"q\"" }, { 50, 10, "line 9 \"q\"" } };
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct buf b = BUF_INIT;
		assert_int_equal(log_store_tail(s, "fn", cases[k].n, &b), 0);
		assert_int_equal(count_lines(b.data, b.len), cases[k].want);
		if (cases[k].want) {
			/* The first returned line is line 10 - want. */
			cJSON *j = cJSON_ParseWithLength(b.data, strcspn(buf_cstr(&b), "\n"));
			assert_non_null(j);
			char expect[32];
			snprintf(expect, sizeof(expect), "line %zu \"q\"", 10 - cases[k].want);
			assert_string_equal(cJSON_GetObjectItem(j, "message")->valuestring, expect);
			assert_int_equal(cJSON_GetObjectItem(j, "version")->valueint, 3);
			assert_string_equal(cJSON_GetObjectItem(j, "instance")->valuestring, "i-1");
			assert_non_null(strstr(cJSON_GetObjectItem(j, "time")->valuestring, "Z"));
			cJSON_Delete(j);
		}
		buf_done(&b);
	}
	struct buf b = BUF_INIT;
	assert_int_equal(log_store_tail(s, "missing", 10, &b), 0);
	assert_int_equal(b.len, 0);
	buf_done(&b);
	log_store_free(s);
}

static void test_rotation(void **state)
{
	struct ctx *c = *state;
	struct log_store *s;
	assert_int_equal(log_store_new(c->dir, 4096, &s), 0);
	char msg[200];
	memset(msg, 'x', sizeof(msg));
	for (int i = 0; i < 100; i++)
		assert_int_equal(log_store_append(s, "rot", 1, "i-2", "stdout", msg, sizeof(msg)), 0);
	char p[128];
	struct stat st;
	snprintf(p, sizeof(p), "%s/rot.log", c->dir);
	assert_int_equal(stat(p, &st), 0);
	assert_true(st.st_size <= 4096);
	snprintf(p, sizeof(p), "%s/rot.log.1", c->dir);
	assert_int_equal(stat(p, &st), 0);
	/* A tail spanning both files. */
	struct buf b = BUF_INIT;
	assert_int_equal(log_store_tail(s, "rot", 20, &b), 0);
	assert_int_equal(count_lines(b.data, b.len), 20);
	buf_done(&b);
	assert_int_equal(log_store_remove(s, "rot"), 0);
	assert_int_equal(stat(p, &st), -1);
	log_store_free(s);
}

struct seen {
	int n;
	char last[256];
};

static void on_line(void *ud, const char *line, size_t len)
{
	struct seen *x = ud;
	x->n++;
	snprintf(x->last, sizeof(x->last), "%.*s", (int)len, line);
}

static void test_follow(void **state)
{
	struct ctx *c = *state;
	struct log_store *s;
	assert_int_equal(log_store_new(c->dir, 1 << 20, &s), 0);
	struct seen a = { 0 }, b = { 0 };
	struct log_follower *fa, *fb;
	assert_int_equal(log_store_follow(s, "f", on_line, &a, &fa), 0);
	assert_int_equal(log_store_follow(s, "f", on_line, &b, &fb), 0);
	assert_int_equal(log_store_append(s, "f", 1, "i", "stdout", "one", 3), 0);
	assert_int_equal(log_store_append(s, "other", 1, "i", "stdout", "x", 1), 0);
	fb = log_follower_free(fb);
	assert_int_equal(log_store_append(s, "f", 1, "i", "stdout", "two", 3), 0);
	assert_int_equal(a.n, 2);
	assert_int_equal(b.n, 1);
	assert_non_null(strstr(a.last, "\"two\""));
	assert_int_equal(a.last[strlen(a.last) - 1], '\n');
	/* Removing the function detaches its followers safely. */
	assert_int_equal(log_store_remove(s, "f"), 0);
	assert_int_equal(log_store_append(s, "f", 2, "i", "stdout", "three", 5), 0);
	assert_int_equal(a.n, 2);
	log_follower_free(fa);
	log_store_free(s);
}

static void test_time(void **state)
{
	(void)state;
	char out[32];
	format_time_us(1795462697123456LL, out);
	assert_string_equal(out, "2026-11-23T19:38:17.123456Z");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_follow, setup, teardown),
		cmocka_unit_test(test_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
