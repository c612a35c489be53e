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
};

int api_new(const struct api_deps *deps, struct api **ret);
struct api *api_free(struct api *a);

/* For server_new(): the request callback and the per-route body limit. userdata is the api. */
void api_handle(struct conn *c, struct http_request *req, void *userdata);
size_t api_body_limit(const char *method, const char *path, void *userdata);
