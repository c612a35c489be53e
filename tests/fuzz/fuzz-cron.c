/* SPDX-License-Identifier: MIT */
/* Schedule expressions (src/cron.c), as a deploy body or PATCH hands them over: parsing never
 * crashes, a refusal is -EINVAL with a one-line message, and for an accepted expression the next
 * firing time is strictly later than the time asked about, fires on a whole minute (cron) or on a
 * multiple of the period (rate), matches every field of the expression, and asking again from it
 * gives a later one. */
#include <errno.h>
#include <time.h>

#include "cron.h"
#include "fuzz-common.h"

static bool matches(const struct cron *c, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || tm.tm_sec != 0)
		return false;
	bool dom = c->doms >> tm.tm_mday & 1, dow = c->dows >> tm.tm_wday & 1;
	bool day = c->dom_any && c->dow_any ? true
		   : c->dom_any		     ? dow
		   : c->dow_any		     ? dom
					     : dom || dow;
	return (c->minutes >> tm.tm_min & 1) && (c->hours >> tm.tm_hour & 1) &&
	       (c->months >> (tm.tm_mon + 1) & 1) && day;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	/* The first 4 bytes pick the time asked about (2000..2100), the rest is the expression. */
	uint32_t x;
	memcpy(&x, data, 4);
	int64_t after = 946684800 + (int64_t)(x % 3155760000u);
	char *expr = fuzz_strndup(data + 4, size - 4);
	struct cron c;
	char *err = NULL;
	int r = cron_parse(expr, &c, &err);
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL, "cron_parse: %d", r);
		FUZZ_CHECK(err && !strchr(err, '\n'), "message: %s", err ? err : "(none)");
		free(err);
		free(expr);
		return 0;
	}
	FUZZ_CHECK(err == NULL, "an accepted expression set a message");
	int64_t t = 0, t2 = 0;
	r = cron_next(&c, after, &t);
	if (r == 0) {
		FUZZ_CHECK(t > after, "next %lld not after %lld", (long long)t, (long long)after);
		if (c.rate_s)
			FUZZ_CHECK(t % (int64_t)c.rate_s == 0 && t - after <= (int64_t)c.rate_s,
				   "rate: %lld", (long long)t);
		else
			FUZZ_CHECK(matches(&c, t), "'%s': %lld does not match", expr, (long long)t);
		FUZZ_CHECK(cron_next(&c, t, &t2) == 0 && t2 > t, "no later firing after %lld",
			   (long long)t);
	} else
		FUZZ_CHECK(r == -ENOENT && !c.rate_s, "cron_next: %d", r);
	free(expr);
	return 0;
}
