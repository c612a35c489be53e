/* SPDX-License-Identifier: MIT */
/* The HTTP API (docs/API.md): management and invoke routes on top of the registry, the scheduler,
 * the zygotes and the log store. Supervisor only. */
#pragma once

#include <stddef.h>

#include "http.h"

struct api;
struct conn;
struct spore_config;
struct registry;
struct sched;
struct zygotes;
struct log_store;

struct api_deps {
	const struct spore_config *config;
	struct registry *registry;
	struct sched *sched;
	struct zygotes *zygotes;
	struct log_store *logs;
	struct meter *meter;
	struct async *async;
	struct metrics_codes *codes;
	struct secrets *secrets;
	struct deps *deps; /* NULL: dependencies are not installed at deploy */
};

int api_new(const struct api_deps *deps, struct api **ret);
/* Removes a function and everything spored keeps of it (instances, pending and dead-letter
 * asynchronous invocations, figures, secrets, logs), as DELETE /v1/functions/{name} does (also
 * the Lambda API's DeleteFunction). Logs the outcome. -ENOENT, -EBUSY, other -errno. */
int api_function_delete(const struct api_deps *d, const char *name);
struct api *api_free(struct api *a);
/* Shutting down: answers what would wait long (deploys waiting for their dependencies: 503, not
 * made) so the grace period is for invocations. */
void api_drain(struct api *a);

/* For server_new(): the request callback and the per-route body limit. userdata is the api. */
void api_handle(struct conn *c, struct http_request *req, void *userdata);
size_t api_body_limit(const char *method, const char *path, void *userdata);
