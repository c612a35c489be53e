/* SPDX-License-Identifier: MIT */
/* cron: schedule expressions and their next firing time (UTC). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cron.h"
#include "util/cleanup.h"

static int64_t at(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
			 .tm_min = mi, .tm_sec = s };
	return (int64_t)timegm(&tm);
}

static void test_next(void **state)
{
	(void)state;
	/* 2026-11-23 is a Monday. */
	static const struct {
		const char *expr;
		int64_t after, want;
	} cases[] = {
		{ "cron(* * * * *)", 0, 60 },
		{ "cron(*/5 * * * *)", 1763900000, 1763900100 },
		{ "cron(0 12 * * *)", 1763899200 /* 12:00 */, 1763985600 /* next day 12:00 */ },
		{ "cron(30 9 1 * *)", 1763899200, 1764581400 /* 2025-12-01 09:30 */ },
		{ "cron(0 0 29 2 *)", 1763899200, 1835395200 /* 2028-02-29 */ },
		{ "cron(15 10 * * MON-FRI)", 1763899200, 1763979300 },
		{ "cron(0 0 * JAN SUN)", 1763899200, 1767484800 /* 2026-01-04: first Jan Sunday */ },
		{ "rate(1 minute)", 1763899201, 1763899260 },
		{ "rate(5 minutes)", 1763899200, 1763899500 },
		{ "rate(2 hours)", 1763899200, 1763906400 },
		{ "rate(1 day)", 1763899200, 1763942400 },
		{ "rate(3 seconds)", 10, 12 },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct cron c;
		char *err = NULL;
		if (cron_parse(cases[i].expr, &c, &err) < 0)
			fail_msg("%s: %s", cases[i].expr, err);
		int64_t t = 0;
		assert_int_equal(cron_next(&c, cases[i].after, &t), 0);
		if (t != cases[i].want)
			fail_msg("%s after %lld: %lld, want %lld", cases[i].expr,
				 (long long)cases[i].after, (long long)t, (long long)cases[i].want);
	}
}

static void test_calendar(void **state)
{
	(void)state;
	struct cron c;
	int64_t t;
	/* 2026-11-23 Monday 10:00 UTC */
	int64_t now = at(2026, 11, 23, 10, 0, 0);
	assert_int_equal(cron_parse("cron(0 8 * * 1,3)", &c, NULL), 0);
	assert_int_equal(cron_next(&c, now, &t), 0);
	assert_int_equal(t, at(2026, 11, 25, 8, 0, 0)); /* Wednesday */
	/* DOM and DOW both restricted: either matches */
	assert_int_equal(cron_parse("cron(0 0 1 * 6)", &c, NULL), 0);
	assert_int_equal(cron_next(&c, now, &t), 0);
	assert_int_equal(t, at(2026, 11, 28, 0, 0, 0)); /* Saturday before Dec 1 */
	/* 7 is Sunday */
	assert_int_equal(cron_parse("cron(0 0 * * 7)", &c, NULL), 0);
	assert_int_equal(cron_next(&c, now, &t), 0);
	assert_int_equal(t, at(2026, 11, 29, 0, 0, 0));
	/* steps in ranges, lists, names */
	assert_int_equal(cron_parse("cron(10-20/5,59 */6 * dec,Jan *)", &c, NULL), 0);
	assert_int_equal(cron_next(&c, now, &t), 0);
	assert_int_equal(t, at(2026, 12, 1, 0, 10, 0));
	assert_int_equal(cron_next(&c, t, &t), 0);
	assert_int_equal(t, at(2026, 12, 1, 0, 15, 0));
	/* never */
	assert_int_equal(cron_parse("cron(0 0 30 2 *)", &c, NULL), 0);
	assert_int_equal(cron_next(&c, now, &t), -ENOENT);
	/* a run of cron(* ...) is strictly increasing, minute by minute */
	assert_int_equal(cron_parse("cron(* * * * *)", &c, NULL), 0);
	int64_t prev = now;
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(cron_next(&c, prev, &t), 0);
		assert_int_equal(t, prev + 60);
		prev = t;
	}
}

static void test_invalid(void **state)
{
	(void)state;
	static const struct {
		const char *expr, *mentions;
	} cases[] = {
		{ "", "schedule" },
		{ "cron()", "schedule" },
		{ "cron( )", "0 field" },
		{ "cron(* * * *)", "4 field" },
		{ "cron(* * * * * *)", "more than 5" },
		{ "cron(60 * * * *)", "minute" },
		{ "cron(* 24 * * *)", "hour" },
		{ "cron(* * 0 * *)", "day of month" },
		{ "cron(* * * 13 *)", "month" },
		{ "cron(* * * * 8)", "day of week" },
		{ "cron(5-1 * * * *)", "backwards" },
		{ "cron(*/0 * * * *)", "step" },
		{ "cron(a * * * *)", "minute" },
		{ "cron(1,,2 * * * *)", "minute" },
		{ "cron(* * * FOO *)", "month" },
		{ "cron(* * * * *", "schedule" },
		{ "every(5 minutes)", "schedule" },
		{ "rate(0 minutes)", "between" },
		{ "rate(5 fortnights)", "unit" },
		{ "rate(minutes)", "rate(N" },
		{ "rate(5minutes)", "rate(N" },
		{ "rate(-5 minutes)", "rate(N" },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct cron c;
		char *err = NULL;
		assert_int_equal(cron_parse(cases[i].expr, &c, &err), -EINVAL);
		assert_non_null(err);
		if (!strstr(err, cases[i].mentions))
			fail_msg("'%s': '%s' does not mention '%s'", cases[i].expr, err,
				 cases[i].mentions);
		free(err);
	}
	char *long_expr = malloc(400);
	assert_non_null(long_expr);
	memset(long_expr, '*', 399);
	long_expr[399] = 0;
	memcpy(long_expr, "cron(", 5);
	long_expr[398] = ')';
	struct cron c;
	assert_int_equal(cron_parse(long_expr, &c, NULL), -EINVAL);
	free(long_expr);
	assert_int_equal(cron_parse(NULL, &c, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_next),
		cmocka_unit_test(test_calendar),
		cmocka_unit_test(test_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
