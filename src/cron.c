/* SPDX-License-Identifier: MIT */
#include "cron.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/cleanup.h"
#include "util/error.h"

#define EXPR_MAX 256

struct field {
	const char *name;
	int lo, hi;
	const char *const *names; /* names[i] stands for lo + i; NULL: numbers only */
};

static const char *const month_names[] = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
					   "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL };
static const char *const dow_names[] = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL };

static const struct field fields[5] = {
	{ "minute", 0, 59, NULL },
	{ "hour", 0, 23, NULL },
	{ "day of month", 1, 31, NULL },
	{ "month", 1, 12, month_names },
	{ "day of week", 0, 7, dow_names },
};

/* A number or a name of field f at *p; advances *p. */
static int value(const struct field *f, const char **p, int *ret)
{
	const char *s = *p;
	if (isdigit((unsigned char)*s)) {
		long v = 0;
		while (isdigit((unsigned char)*s) && v < 1000)
			v = v * 10 + (*s++ - '0');
		*ret = (int)v;
		*p = s;
		return 0;
	}
	for (size_t i = 0; f->names && f->names[i]; i++)
		if (strncasecmp(s, f->names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
			*ret = f->lo + (int)i;
			*p = s + 3;
			return 0;
		}
	return -EINVAL;
}

/* One field: a comma list of *, n, a-b, each with an optional /step. Sets bits lo..hi in *mask. */
static int parse_field(const struct field *f, unsigned idx, const char *s, uint64_t *mask,
		       bool *any, char **ret_error)
{
	*mask = 0;
	*any = streq(s, "*") || streq(s, "?");
	for (const char *p = s;;) {
		int a, b, step = 1;
		if (*p == '*' || *p == '?') {
			a = f->lo;
			b = f->hi;
			p++;
		} else {
			if (value(f, &p, &a) < 0)
				return error_set(ret_error, -EINVAL,
						 "cron: field %u (%s): '%s' is not a number%s", idx + 1,
						 f->name, s, f->names ? " or a name" : "");
			b = a;
			if (*p == '-') {
				p++;
				if (value(f, &p, &b) < 0)
					return error_set(ret_error, -EINVAL,
							 "cron: field %u (%s): bad range in '%s'", idx + 1,
							 f->name, s);
			} else if (*p == '/')
				b = f->hi; /* "a/n": from a to the end */
		}
		if (*p == '/') {
			p++;
			if (!isdigit((unsigned char)*p) || value(f, &p, &step) < 0 || step < 1 ||
			    step > f->hi)
				return error_set(ret_error, -EINVAL,
						 "cron: field %u (%s): bad step in '%s'", idx + 1, f->name,
						 s);
		}
		if (a < f->lo || a > f->hi || b < f->lo || b > f->hi)
			return error_set(ret_error, -EINVAL,
					 "cron: field %u (%s): %d is out of range %d-%d", idx + 1,
					 f->name, a < f->lo || a > f->hi ? a : b, f->lo, f->hi);
		if (a > b)
			return error_set(ret_error, -EINVAL,
					 "cron: field %u (%s): range %d-%d goes backwards", idx + 1,
					 f->name, a, b);
		for (int v = a; v <= b; v += step)
			*mask |= 1ULL << v;
		if (*p == 0)
			break;
		if (*p != ',')
			return error_set(ret_error, -EINVAL, "cron: field %u (%s): unexpected '%c' in '%s'",
					 idx + 1, f->name, *p, s);
		p++;
	}
	return 0;
}

static int parse_rate(const char *body, struct cron *c, char **ret_error)
{
	char unit[16];
	unsigned long n;
	int used = 0;
	const char *sp = body + strspn(body, "0123456789");
	if (!isdigit((unsigned char)body[0]) || *sp != ' ' ||
	    sscanf(body, "%lu %15[a-z]%n", &n, unit, &used) != 2 || body[used] != 0)
		return error_set(ret_error, -EINVAL,
				 "rate: must be rate(N minutes|hours|days), e.g. rate(5 minutes)");
	static const struct {
		const char *one, *many;
		uint64_t s;
	} units[] = {
		{ "second", "seconds", 1 },
		{ "minute", "minutes", 60 },
		{ "hour", "hours", 3600 },
		{ "day", "days", 86400 },
	};
	for (size_t i = 0; i < ELEMENTSOF(units); i++)
		if (streq(unit, units[i].one) || streq(unit, units[i].many)) {
			if (n < 1 || n > 100000)
				return error_set(ret_error, -EINVAL,
						 "rate: N must be between 1 and 100000");
			*c = (struct cron){ .rate_s = n * units[i].s };
			return 0;
		}
	return error_set(ret_error, -EINVAL,
			 "rate: unknown unit '%s' (seconds, minutes, hours or days)", unit);
}

int cron_parse(const char *expr, struct cron *ret, char **ret_error)
{
	size_t n = expr ? strlen(expr) : 0;
	if (n < 7 || n > EXPR_MAX || expr[n - 1] != ')')
		return error_set(ret_error, -EINVAL,
				 "schedule: must be cron(MIN HOUR DOM MON DOW) or rate(N UNIT), at most "
				 "%d characters", EXPR_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)expr[i] < 0x20 || (unsigned char)expr[i] >= 0x7f)
			return error_set(ret_error, -EINVAL,
					 "schedule: only printable ASCII (byte %zu is not)", i);
	char body[EXPR_MAX];
	struct cron c = { 0 };
	if (strncmp(expr, "rate(", 5) == 0) {
		memcpy(body, expr + 5, n - 6);
		body[n - 6] = 0;
		int r = parse_rate(body, &c, ret_error);
		if (r < 0)
			return r;
		*ret = c;
		return 0;
	}
	if (strncmp(expr, "cron(", 5) != 0)
		return error_set(ret_error, -EINVAL,
				 "schedule: must be cron(MIN HOUR DOM MON DOW) or rate(N UNIT)");
	memcpy(body, expr + 5, n - 6);
	body[n - 6] = 0;
	char *parts[6] = { 0 }, *save = NULL;
	unsigned k = 0;
	for (char *t = strtok_r(body, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (k == 5)
			return error_set(ret_error, -EINVAL, "cron: more than 5 fields");
		parts[k++] = t;
	}
	if (k != 5)
		return error_set(ret_error, -EINVAL,
				 "cron: %u field(s); must be 5: minute hour day-of-month month "
				 "day-of-week", k);
	uint64_t m[5];
	bool any[5];
	for (unsigned i = 0; i < 5; i++) {
		int r = parse_field(&fields[i], i, parts[i], &m[i], &any[i], ret_error);
		if (r < 0)
			return r;
	}
	c.minutes = m[0];
	c.hours = (uint32_t)m[1];
	c.doms = (uint32_t)m[2];
	c.months = (uint16_t)m[3];
	c.dows = (uint8_t)((m[4] | (m[4] >> 7)) & 0x7f); /* 7 is Sunday too */
	c.dom_any = any[2];
	c.dow_any = any[4];
	*ret = c;
	return 0;
}

static bool day_matches(const struct cron *c, const struct tm *tm)
{
	bool dom = c->doms >> tm->tm_mday & 1, dow = c->dows >> tm->tm_wday & 1;
	if (c->dom_any && c->dow_any)
		return true;
	if (c->dom_any)
		return dow;
	if (c->dow_any)
		return dom;
	return dom || dow;
}

int cron_next(const struct cron *c, int64_t after_s, int64_t *ret)
{
	if (c->rate_s) {
		int64_t p = (int64_t)c->rate_s;
		int64_t t = after_s >= 0 ? (after_s / p + 1) * p : -((-after_s) / p) * p + p;
		*ret = t;
		return 0;
	}
	/* From the next whole minute; skip by month, day, hour, then minute. */
	time_t t = (time_t)((after_s / 60 + 1) * 60);
	time_t limit = t + (time_t)8 * 366 * 86400;
	struct tm tm;
	while (t < limit) {
		if (!gmtime_r(&t, &tm))
			return -EOVERFLOW;
		if (!(c->months >> (tm.tm_mon + 1) & 1)) {
			tm.tm_mday = 1;
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
			tm.tm_mon++;
			t = timegm(&tm);
			continue;
		}
		if (!day_matches(c, &tm)) {
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
			tm.tm_mday++;
			t = timegm(&tm);
			continue;
		}
		if (!(c->hours >> tm.tm_hour & 1)) {
			tm.tm_min = tm.tm_sec = 0;
			tm.tm_hour++;
			t = timegm(&tm);
			continue;
		}
		if (!(c->minutes >> tm.tm_min & 1)) {
			t += 60;
			continue;
		}
		*ret = (int64_t)t;
		return 0;
	}
	return -ENOENT;
}
