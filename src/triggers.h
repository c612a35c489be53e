/* SPDX-License-Identifier: MIT */
/* Scheduled triggers: every function whose settings have a "schedule" (cron.h) is invoked
 * asynchronously (async.h: durable, retried, dead letters) when it is due, with the event
 * {"source": "spore.schedule", "time": RFC 3339, "schedule": EXPR}. Times missed while spored
 * was down are not replayed: after a start, the first firing is the next one from then.
 * Supervisor only. */
#pragma once

#include <stdint.h>

struct registry;
struct async;
struct triggers;

int triggers_new(struct registry *reg, struct async *async, struct triggers **ret);
struct triggers *triggers_free(struct triggers *t);

/* Call about once a second (and it may be called more often): fires what is due at now_s (Unix
 * seconds, CLOCK_REALTIME) and follows changes of the functions' schedules. Returns how many
 * fired. */
int triggers_tick(struct triggers *t, int64_t now_us);
