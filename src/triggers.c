/* SPDX-License-Identifier: MIT */
#include "triggers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "async.h"
#include "cron.h"
#include "logs.h"
#include "registry.h"
#include "util/cleanup.h"
#include "util/log.h"

struct trig {
	char *fn;
	char expr[SCHEDULE_MAX];
	struct cron cron;
	int64_t next_s; /* 0: never */
	bool seen;
};

struct triggers {
	struct registry *reg;
	struct async *async;
	struct trig *v;
	size_t n, cap;
};

int triggers_new(struct registry *reg, struct async *async, struct triggers **ret)
{
	struct triggers *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->reg = reg;
	t->async = async;
	*ret = t;
	return 0;
}

struct triggers *triggers_free(struct triggers *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].fn);
	free(t->v);
	free(t);
	return NULL;
}

static struct trig *find(struct triggers *t, const char *fn)
{
	for (size_t i = 0; i < t->n; i++)
		if (streq(t->v[i].fn, fn))
			return &t->v[i];
	return NULL;
}

static struct trig *add(struct triggers *t, const char *fn)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		struct trig *nv = reallocarray(t->v, cap, sizeof(*nv));
		if (!nv)
			return NULL;
		t->v = nv;
		t->cap = cap;
	}
	char *name = strdup(fn);
	if (!name)
		return NULL;
	t->v[t->n] = (struct trig){ .fn = name };
	return &t->v[t->n++];
}

static void fire(struct triggers *t, struct trig *g, int64_t when_s)
{
	char when[32];
	format_time_us(when_s * 1000000, when);
	cJSON *ev = cJSON_CreateObject();
	_cleanup_free_ char *s = NULL;
	if (ev && cJSON_AddStringToObject(ev, "source", "spore.schedule") &&
	    cJSON_AddStringToObject(ev, "time", when) &&
	    cJSON_AddStringToObject(ev, "schedule", g->expr))
		s = cJSON_PrintUnformatted(ev);
	cJSON_Delete(ev);
	char id[40];
	int r = s ? async_submit(t->async, g->fn, s, strlen(s), id) : -ENOMEM;
	if (r < 0)
		log_warning_errno(r, "triggers: '%s' (%s) was due at %s but could not be queued: %m",
				  g->fn, g->expr, when);
	else
		log_debug("triggers: '%s' (%s) fired for %s as %s", g->fn, g->expr, when, id);
}

int triggers_tick(struct triggers *t, int64_t now_us)
{
	int64_t now_s = now_us / 1000000;
	int fired = 0;
	for (size_t i = 0; i < t->n; i++)
		t->v[i].seen = false;
	for (size_t i = 0; i < registry_count(t->reg); i++) {
		const struct fn_record *rec = registry_at(t->reg, i);
		const char *expr = rec->scaling.schedule;
		if (!expr[0])
			continue;
		struct trig *g = find(t, rec->name);
		if (!g || !streq(g->expr, expr)) {
			/* New or changed: from now on (what was missed is not replayed). */
			if (!g && !(g = add(t, rec->name)))
				return -ENOMEM;
			snprintf(g->expr, sizeof(g->expr), "%s", expr);
			g->next_s = 0;
			if (cron_parse(expr, &g->cron, NULL) < 0 ||
			    cron_next(&g->cron, now_s, &g->next_s) < 0)
				g->next_s = 0;
		}
		g->seen = true;
		if (g->next_s && now_s >= g->next_s) {
			fire(t, g, g->next_s);
			fired++;
			/* Due times that passed meanwhile (a stalled loop) are skipped, not bunched. */
			if (cron_next(&g->cron, now_s, &g->next_s) < 0)
				g->next_s = 0;
		}
	}
	/* Functions deleted, or no longer scheduled. */
	for (size_t i = 0; i < t->n;)
		if (!t->v[i].seen) {
			free(t->v[i].fn);
			t->v[i] = t->v[--t->n];
		} else
			i++;
	return fired;
}
