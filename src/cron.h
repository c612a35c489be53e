/* SPDX-License-Identifier: MIT */
/* Schedule expressions for scheduled triggers, in UTC. Pure.
 *
 *   cron(MIN HOUR DOM MON DOW)   five fields as in crontab(5): numbers, '*', ranges a-b, steps
 *                                 (*\/n, a-b/n, a/n), lists a,b; MON also JAN..DEC, DOW 0..7 or
 *                                 SUN..SAT (0 and 7 are Sunday). When both DOM and DOW are
 *                                 restricted, a day matching either fires (as cron does).
 *   rate(N UNIT)                  every N minutes, hours or days (UNIT singular for N = 1, as
 *                                 AWS writes it; both accepted), aligned to the epoch, so
 *                                 rate(1 minute) fires at every minute's start. spore also takes
 *                                 seconds (not on AWS), for tests and tight loops.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct cron {
	uint64_t minutes;  /* bit m: minute m matches (0..59) */
	uint32_t hours;    /* 0..23 */
	uint32_t doms;     /* bit d: day of month d (1..31) */
	uint16_t months;   /* bit m: month m (1..12) */
	uint8_t dows;      /* bit d: day of week d (0..6, Sunday 0) */
	bool dom_any, dow_any;
	uint64_t rate_s;   /* > 0: a rate() expression, every rate_s seconds */
};

/* -EINVAL with *ret_error (malloc'ed) saying what is wrong ("cron: field 2 (hour): 24 is out of
 * range 0-23"). */
int cron_parse(const char *expr, struct cron *ret, char **ret_error);

/* The first time strictly after after_s (Unix seconds) at which it fires; -ENOENT if never
 * within the next 8 years (e.g. cron(0 0 30 2 *)). */
int cron_next(const struct cron *c, int64_t after_s, int64_t *ret);
