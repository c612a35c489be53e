/* SPDX-License-Identifier: MIT */
#include "api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "deps.h"
#include "lambda.h"
#include "logs.h"
#include "loop.h"
#include "apigw.h"
#include "async.h"
#include "secrets.h"
#include "manifest.h"
#include "metrics.h"
#include "registry.h"
#include "route.h"
#include "scheduler.h"
#include "server.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/codec.h"
#include "util/json.h"
#include "util/log.h"
#include "zygotes.h"

#define SMALL_BODY_MAX (64u * 1024u)
#define TAIL_DEFAULT 100
#define TAIL_MAX 10000

struct pending_deploy;

struct api {
	struct api_deps d;
	struct package_limits package_limits;
	struct pending_deploy *deploys; /* waiting for their dependencies */
	struct lambda *lambda;          /* the Lambda REST API (src/lambda.c) */
};

int api_new(const struct api_deps *deps, struct api **ret)
{
	struct api *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->d = *deps;
	a->package_limits.max_entries = deps->config->package_max_entries;
	a->package_limits.max_bytes = deps->config->package_max_bytes;
	char *warning = NULL;
	int r = lambda_new(&a->d, &a->lambda, &warning);
	if (r < 0) {
		free(a);
		return r;
	}
	if (warning) {
		log_error("%s", warning);
		free(warning);
	}
	*ret = a;
	return 0;
}

static void pending_deploy_free(struct api *a, struct pending_deploy *p);

struct api *api_free(struct api *a)
{
	if (!a)
		return NULL;
	while (a->deploys)
		pending_deploy_free(a, a->deploys);
	a->lambda = lambda_free(a->lambda);
	free(a);
	return NULL;
}

size_t api_body_limit(const char *method, const char *path, void *userdata)
{
	struct api *a = userdata;
	struct route_match m;
	if (lambda_path(path))
		return lambda_body_limit(a->lambda, method, path);
	if (route_match(method, path, &m) < 0)
		return SMALL_BODY_MAX;
	switch (m.id) {
	case ROUTE_FUNCTION_PUT:
		return (size_t)a->d.config->deploy_body_max;
	case ROUTE_FUNCTION_INVOKE:
	case ROUTE_FUNCTION_HTTP:
		return (size_t)a->d.config->invoke_body_max;
	default:
		return SMALL_BODY_MAX;
	}
}

#define ASYNC_EVENT_MAX (1024u * 1024u) /* as Lambda: async payloads up to 1 MB */

/* --- responses ----------------------------------------------------------------------------- */

static void respond_json(struct conn *c, int status, cJSON *j, const char *extra)
{
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	if (!s) {
		static const char oom[] = "{\"error\":\"internal\",\"message\":\"out of memory\"}\n";
		(void)conn_respond(c, 500, "application/json", oom, sizeof(oom) - 1, NULL);
		return;
	}
	size_t n = strlen(s);
	char *t = realloc(s, n + 2);
	if (t) {
		s = t;
		s[n++] = '\n';
		s[n] = 0;
	}
	(void)conn_respond(c, status, "application/json", s, n, extra);
	free(s);
}

static void respond_error(struct conn *c, int status, const char *kind, const char *fmt, ...)
	_printf_(4, 5);
static void respond_error(struct conn *c, int status, const char *kind, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cJSON *j = cJSON_CreateObject();
	if (j) {
		cJSON_AddStringToObject(j, "error", kind);
		cJSON_AddStringToObject(j, "message", msg);
	}
	respond_json(c, status, j, NULL);
}

/* --- helpers ------------------------------------------------------------------------------- */

static bool constant_time_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;
	for (size_t i = 0; i < la; i++)
		d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
	return d == 0;
}

/* Parses a positive 32-bit integer. */
static int parse_u32(const char *s, uint32_t *ret)
{
	if (!s || !*s || strlen(s) > 10)
		return -EINVAL;
	uint64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v == 0 || v > UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

static cJSON *version_json(const struct fn_version *v)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	char t[32];
	format_time_us(v->created_us, t);
	if (!cJSON_AddNumberToObject(o, "version", v->version) ||
	    !cJSON_AddStringToObject(o, "sha256", v->sha256) ||
	    !cJSON_AddStringToObject(o, "created", t) ||
	    !cJSON_AddStringToObject(o, "runtime", v->manifest.runtime) ||
	    !cJSON_AddStringToObject(o, "handler", v->manifest.handler) ||
	    !cJSON_AddNumberToObject(o, "memory_mb", v->manifest.memory_mb) ||
	    !cJSON_AddNumberToObject(o, "timeout_ms", v->manifest.timeout_ms)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* name, live_version, runtime, handler, memory_mb, timeout_ms of the live version. */
static cJSON *function_summary(const struct fn_record *f)
{
	const struct fn_version *v = fn_record_version(f, f->live);
	cJSON *o = cJSON_CreateObject();
	if (!o || !v)
		return o;
	cJSON_AddStringToObject(o, "name", f->name);
	cJSON_AddNumberToObject(o, "live_version", f->live);
	cJSON_AddStringToObject(o, "runtime", v->manifest.runtime);
	cJSON_AddStringToObject(o, "handler", v->manifest.handler);
	cJSON_AddNumberToObject(o, "memory_mb", v->manifest.memory_mb);
	cJSON_AddNumberToObject(o, "timeout_ms", v->manifest.timeout_ms);
	return o;
}

static const struct fn_record *find_function(struct api *a, struct conn *c,
					     const struct route_match *m)
{
	const struct fn_record *f = m->name_too_long ? NULL : registry_find(a->d.registry, m->name);
	if (f)
		return f;
	for (size_t i = 0; i < registry_broken_count(a->d.registry); i++)
		if (streq(registry_broken_at(a->d.registry, i), m->name)) {
			respond_error(c, 409, "conflict",
				      "function '%s' is broken on disk (unreadable function.json); "
				      "fix or remove it first",
				      m->name);
			return NULL;
		}
	respond_error(c, 404, "not_found", "function '%.64s' does not exist", m->name);
	return NULL;
}

/* --- routes -------------------------------------------------------------------------------- */

static void route_healthz(struct api *a, struct conn *c, const struct http_request *req)
{
	(void)a;
	(void)req; /* HEAD gets the same head; the server leaves the body out */
	static const char ok[] = "{\"status\":\"ok\"}\n";
	(void)conn_respond(c, 200, "application/json", ok, sizeof(ok) - 1, NULL);
}

static void route_runtimes(struct api *a, struct conn *c)
{
	cJSON *j = cJSON_CreateObject();
	cJSON *arr = j ? cJSON_AddArrayToObject(j, "runtimes") : NULL;
	for (size_t i = 0; arr && i < zygotes_count(a->d.zygotes); i++) {
		struct zygote_info zi;
		zygotes_info(a->d.zygotes, i, &zi);
		cJSON *o = cJSON_CreateObject();
		if (!o || !cJSON_AddItemToArray(arr, o))
			break;
		char t[32] = "";
		if (zi.started_us)
			format_time_us(zi.started_us, t);
		cJSON_AddStringToObject(o, "name", zi.runtime);
		cJSON_AddNumberToObject(o, "pid", zi.pid);
		cJSON_AddStringToObject(o, "state", zygote_state_to_string(zi.state));
		cJSON_AddNumberToObject(o, "restarts", zi.restarts);
		if (zi.started_us)
			cJSON_AddStringToObject(o, "started", t);
		else
			cJSON_AddNullToObject(o, "started");
	}
	respond_json(c, 200, j, NULL);
}

static void route_list(struct api *a, struct conn *c)
{
	cJSON *j = cJSON_CreateObject();
	cJSON *arr = j ? cJSON_AddArrayToObject(j, "functions") : NULL;
	for (size_t i = 0; arr && i < registry_count(a->d.registry); i++) {
		const struct fn_record *f = registry_at(a->d.registry, i);
		cJSON *o = function_summary(f);
		if (!o || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			break;
		}
		cJSON_AddNumberToObject(o, "versions", (double)f->n_versions);
	}
	respond_json(c, 200, j, NULL);
}

/* Every scaling setting as in force (the function's own, else spored's default). */
static cJSON *scaling_effective_json(struct api *a, const struct fn_record *f)
{
	const struct spore_config *cfg = a->d.config;
	const struct fn_scaling *sc = &f->scaling;
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	if (!cJSON_AddNumberToObject(o, "min_instances", sc->min_instances) ||
	    !cJSON_AddNumberToObject(o, "max_instances",
				     sc->max_instances ?: cfg->max_instances) ||
	    !cJSON_AddNumberToObject(o, "target_concurrency",
				     sc->target_concurrency > 0 ? sc->target_concurrency : 1.0) ||
	    !cJSON_AddNumberToObject(o, "idle_ttl_s", sc->idle_ttl_s ?: cfg->idle_ttl_s) ||
	    !cJSON_AddNumberToObject(o, "queue_max", sc->queue_max ?: cfg->queue_max) ||
	    !cJSON_AddNumberToObject(o, "queue_timeout_ms",
				     sc->queue_timeout_ms ?: cfg->queue_timeout_ms) ||
	    !(sc->schedule[0] ? cJSON_AddStringToObject(o, "schedule", sc->schedule)
			      : cJSON_AddNullToObject(o, "schedule")) ||
	    !cJSON_AddStringToObject(o, "auth", sc->auth_token ? "token" : "none")) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* With "auth": "token", the answer to the management call that set it carries the routes' bearer
 * token (made on first use; the same one afterwards). */
static void add_route_token(struct api *a, const struct fn_record *f, cJSON *o)
{
	char token[65];
	if (f && f->scaling.auth_token && a->d.secrets &&
	    secrets_route_token(a->d.secrets, f->name, true, token) >= 0)
		cJSON_AddStringToObject(o, "route_token", token);
}

/* PATCH /v1/functions/{name}: scaling settings only; no new version. */
static void route_patch(struct api *a, struct conn *c, const struct route_match *m,
			const struct http_request *req)
{
	const struct fn_record *f = find_function(a, c, m);
	if (!f)
		return;
	_cleanup_json_ cJSON *j = req->body_len ? json_parse_exact(req->body, req->body_len) : NULL;
	if (!cJSON_IsObject(j)) {
		respond_error(c, 400, "bad_request",
			      "body: a JSON object of scaling settings is required (%s)",
			      SCALING_KEYS);
		return;
	}
	_cleanup_json_ cJSON *sec = cJSON_DetachItemFromObjectCaseSensitive(j, "secrets");
	struct fn_scaling sc = f->scaling;
	_cleanup_free_ char *err = NULL;
	if (sec && (!a->d.secrets || secrets_validate(sec, &err) < 0)) {
		respond_error(c, 400, "bad_request", "%s", err ?: "secrets: not available here");
		return;
	}
	int r = scaling_apply_json(j, true, a->d.config->max_instances, &sc, &err);
	if (r < 0) {
		respond_error(c, 400, "bad_request", "%s", err ?: "invalid scaling settings");
		return;
	}
	if (sec) {
		r = secrets_update(a->d.secrets, f->name, sec, &err);
		if (r < 0) {
			respond_error(c, r == -EINVAL ? 400 : 500,
				      r == -EINVAL ? "bad_request" : "internal", "%s",
				      err ?: strerror(-r));
			return;
		}
		log_info("api: secrets of '%s' changed", m->name);
	}
	r = registry_set_scaling(a->d.registry, f->name, &sc);
	if (r == -ENOSPC || r == -EDQUOT) {
		respond_error(c, 507, "insufficient_storage",
			      "no space left in the state directory for '%s'", m->name);
		return;
	}
	if (r < 0) {
		respond_error(c, r == -EBUSY ? 409 : 500, r == -EBUSY ? "conflict" : "internal",
			      "cannot change the scaling of '%s': %s", m->name, strerror(-r));
		return;
	}
	log_info("api: scaling of '%s' changed", m->name);
	sched_function_changed(a->d.sched, m->name);
	f = registry_find(a->d.registry, m->name);
	cJSON *o = f ? scaling_effective_json(a, f) : NULL;
	if (o)
		add_route_token(a, f, o);
	respond_json(c, 200, o, NULL);
}

static void route_get(struct api *a, struct conn *c, const struct route_match *m)
{
	const struct fn_record *f = find_function(a, c, m);
	if (!f)
		return;
	cJSON *o = function_summary(f);
	const struct fn_version *live = fn_record_version(f, f->live);
	if (o && live) {
		cJSON *env = cJSON_AddObjectToObject(o, "env");
		for (size_t i = 0; env && i < live->manifest.n_env; i++)
			cJSON_AddStringToObject(env, live->manifest.env_keys[i],
						live->manifest.env_values[i]);
	}
	cJSON *vers = o ? cJSON_AddArrayToObject(o, "versions") : NULL;
	for (size_t i = 0; vers && i < f->n_versions; i++) {
		cJSON *v = version_json(&f->versions[i]);
		if (v)
			cJSON_AddItemToArray(vers, v);
	}
	cJSON *scj = o ? scaling_effective_json(a, f) : NULL;
	if (scj)
		cJSON_AddItemToObject(o, "scaling", scj);
	cJSON *names = o && a->d.secrets ? secrets_names(a->d.secrets, f->name) : NULL;
	if (names)
		cJSON_AddItemToObject(o, "secrets", names);
	cJSON *inst = sched_instances_json(a->d.sched, f->name);
	if (o && inst)
		cJSON_AddItemToObject(o, "instances", inst);
	else
		cJSON_Delete(inst);
	respond_json(c, 200, o, NULL);
}

/* The answer to a failed deploy, by cause (registry_stage() / registry_deploy_stage()). */
static void respond_deploy_error(struct conn *c, const char *name, int r, const char *derr)
{
	switch (r) {
	case -EINVAL:
		if (derr && (startswith(derr, "dependencies:") || startswith(derr, "package.json:")))
			respond_error(c, 422, "dependencies", "%s", derr);
		else
			respond_error(c, 400, "bad_request", "code: %s", derr ?: "invalid archive");
		break;
	case -ETIMEDOUT:
		respond_error(c, 422, "dependencies", "%s", derr ?: "dependencies: timed out");
		break;
	case -EBUSY:
		respond_error(c, 409, "conflict",
			      "function '%s' is broken on disk (unreadable function.json); "
			      "fix or remove it first",
			      name);
		break;
	case -ENOSPC:
	case -EDQUOT:
		respond_error(c, 507, "insufficient_storage",
			      "no space left in the state directory for '%s'", name);
		break;
	case -EMFILE:
	case -ENFILE:
	case -ENOMEM:
		/* spored's own resources: the deploy may work in a moment. */
		log_warning_errno(r, "api: deploy of '%s' failed: %m", name);
		respond_error(c, 503, "unavailable",
			      "deploy of '%s' failed for want of resources (%s); try again", name,
			      strerror(-r));
		break;
	default:
		log_error_errno(r, "api: deploy of '%s' failed: %m", name);
		respond_error(c, 500, "internal", "deploy of '%s' failed: %s%s%s", name,
			      strerror(-r), derr ? ": " : "", derr ?: "");
	}
}

/* What a deploy needs once its code is staged. */
struct deploy_req {
	const char *name;
	const struct fn_scaling *sc; /* NULL: the function's settings are kept */
	cJSON *sec;                  /* secrets to store, or NULL */
	size_t bytes;                /* the archive's size, for the log */
	uint64_t t0;
};

/* Commits a staged deploy and answers (c may be NULL: the client went away meanwhile). */
static void deploy_commit(struct api *a, struct conn *c, const struct deploy_req *dr,
			  const struct manifest *man, struct registry_stage *st)
{
	uint32_t version = 0;
	_cleanup_free_ char *derr = NULL;
	int r = registry_deploy_stage(a->d.registry, dr->name, man, dr->sc, st, &version, &derr);
	if (r < 0) {
		if (c)
			respond_deploy_error(c, dr->name, r, derr);
		else
			log_warning_errno(r, "api: deploy of '%s' failed: %m", dr->name);
		return;
	}
	const struct fn_record *f = registry_find(a->d.registry, dr->name);
	const struct fn_version *v = f ? fn_record_version(f, version) : NULL;
	log_info("api: deployed '%s' version %u (%zu bytes, %.1f ms)", dr->name, version, dr->bytes,
		 (double)(now_us() - dr->t0) / 1000.0);
	if (dr->sec) {
		_cleanup_free_ char *serr = NULL;
		r = secrets_update(a->d.secrets, dr->name, dr->sec, &serr);
		if (r < 0) {
			log_error_errno(r, "api: secrets of '%s' not stored: %m", dr->name);
			sched_function_changed(a->d.sched, dr->name);
			if (c)
				respond_error(c, r == -ENOSPC || r == -EDQUOT ? 507 : 500,
					      r == -ENOSPC || r == -EDQUOT ? "insufficient_storage"
									   : "internal",
					      "version %u of '%s' is deployed, but its secrets could "
					      "not be stored (%s); send them again with PATCH",
					      version, dr->name, serr ?: strerror(-r));
			return;
		}
	}
	sched_function_changed(a->d.sched, dr->name);
	if (!c)
		return;
	cJSON *o = cJSON_CreateObject();
	if (o) {
		cJSON_AddStringToObject(o, "name", dr->name);
		cJSON_AddNumberToObject(o, "version", version);
		cJSON_AddStringToObject(o, "sha256", v ? v->sha256 : "");
		add_route_token(a, f, o);
	}
	respond_json(c, 201, o, NULL);
}

/* A deploy waiting for npm. It goes on if the client hangs up (the deploy still lands). */
struct pending_deploy {
	struct pending_deploy *next;
	struct api *a;
	struct conn *conn;
	struct deps_job *job;
	char name[256];
	struct fn_scaling sc;
	bool scaled;
	cJSON *sec;
	struct manifest man;
	struct registry_stage st;
	size_t bytes;
	uint64_t t0;
};

static void pending_deploy_free(struct api *a, struct pending_deploy *p)
{
	for (struct pending_deploy **it = &a->deploys; *it; it = &(*it)->next)
		if (*it == p) {
			*it = p->next;
			break;
		}
	if (p->job)
		deps_cancel(a->d.deps, p->job);
	if (p->conn) {
		conn_set_abort(p->conn, NULL, NULL);
		conn_unref(p->conn);
	}
	registry_stage_discard(a->d.registry, &p->st);
	manifest_done(&p->man);
	cJSON_Delete(p->sec);
	free(p);
}

void api_drain(struct api *a)
{
	if (!a)
		return;
	/* A deploy waiting for npm could wait for minutes: it is answered now, and not made. */
	while (a->deploys) {
		struct pending_deploy *p = a->deploys;
		if (p->conn)
			respond_error(p->conn, 503, "unavailable",
				      "spored is shutting down: the deploy of '%s' was not made "
				      "(its dependencies were still being installed); deploy again",
				      p->name);
		log_notice("api: shutting down: the deploy of '%s' was not made", p->name);
		pending_deploy_free(a, p);
	}
}

static void deploy_abort(void *ud)
{
	struct pending_deploy *p = ud;
	log_info("api: the client of the deploy of '%s' went away; the deploy goes on", p->name);
	conn_unref(p->conn);
	p->conn = NULL;
}

static void deploy_deps_done(void *ud, int r, const char *message)
{
	struct pending_deploy *p = ud;
	struct api *a = p->a;
	p->job = NULL;
	if (r < 0) {
		log_warning("api: deploy of '%s' failed: %s", p->name, message ?: strerror(-r));
		if (p->conn)
			respond_deploy_error(p->conn, p->name, r == -ETIMEDOUT ? r : -EINVAL,
					     message);
	} else {
		struct deploy_req dr = {
			.name = p->name,
			.sc = p->scaled ? &p->sc : NULL,
			.sec = p->sec,
			.bytes = p->bytes,
			.t0 = p->t0,
		};
		if (p->conn)
			conn_set_abort(p->conn, NULL, NULL);
		deploy_commit(a, p->conn, &dr, &p->man, &p->st);
	}
	pending_deploy_free(a, p);
}

/* Starts installing the staged package's dependencies: 1 when they came from the cache (commit
 * now), 0 when the deploy now waits for npm (man, st and dr->sec are taken), -errno. */
static int deploy_with_deps(struct api *a, struct conn *c, const struct deploy_req *dr,
			    struct manifest *man, struct registry_stage *st, char **ret_error)
{
	struct pending_deploy *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	if (dr->sec && !(p->sec = cJSON_Duplicate(dr->sec, true))) {
		free(p);
		return -ENOMEM;
	}
	int r = deps_install(a->d.deps, st->code_fd, deploy_deps_done, p, &p->job, ret_error);
	if (r != 0) {
		cJSON_Delete(p->sec);
		free(p);
		return r;
	}
	p->a = a;
	snprintf(p->name, sizeof(p->name), "%s", dr->name);
	if (dr->sc) {
		p->sc = *dr->sc;
		p->scaled = true;
	}
	p->man = *man;
	*man = (struct manifest){ 0 };
	p->st = *st;
	*st = (struct registry_stage){ .code_fd = -EBADF };
	p->bytes = dr->bytes;
	p->t0 = dr->t0;
	p->conn = conn_ref(c);
	conn_set_abort(c, deploy_abort, p);
	p->next = a->deploys;
	a->deploys = p;
	log_info("api: deploy of '%s' waits for its dependencies", p->name);
	return 0;
}

static void route_put(struct api *a, struct conn *c, const struct route_match *m,
		      const struct http_request *req)
{
	if (m->name_too_long || !function_name_valid(m->name)) {
		respond_error(c, 400, "bad_request",
			      "name: '%.64s' is not a valid function name (must match "
			      "[a-z0-9][a-z0-9_-]{0,63})",
			      m->name);
		return;
	}
	if (!req->body || req->body_len == 0) {
		respond_error(c, 400, "bad_request", "body: a JSON object is required");
		return;
	}
	_cleanup_json_ cJSON *j = json_parse_exact(req->body, req->body_len);
	if (!j || !cJSON_IsObject(j)) {
		respond_error(c, 400, "bad_request", "body: not a valid JSON object");
		return;
	}
	/* Secrets are kept apart from the configuration (and never shown): take them out. */
	_cleanup_json_ cJSON *sec = cJSON_DetachItemFromObjectCaseSensitive(j, "secrets");
	if (sec) {
		_cleanup_free_ char *serr = NULL;
		if (!a->d.secrets || secrets_validate(sec, &serr) < 0) {
			respond_error(c, 400, "bad_request", "%s",
				      serr ?: "secrets: not available here");
			return;
		}
	}
	/* The scaling settings belong to the function, not the version: take them out first. */
	const struct fn_record *old = registry_find(a->d.registry, m->name);
	struct fn_scaling sc = old ? old->scaling : (struct fn_scaling){};
	bool scaled = false;
	_cleanup_free_ char *err = NULL;
	int r = scaling_apply_json(j, false, a->d.config->max_instances, &sc, &err);
	if (r < 0) {
		respond_error(c, 400, "bad_request", "%s", err ?: "invalid scaling settings");
		return;
	}
	for (cJSON *it = j->child, *next; it; it = next) {
		next = it->next;
		if (scaling_key(it->string)) {
			cJSON_Delete(cJSON_DetachItemViaPointer(j, it));
			scaled = true;
		}
	}
	struct manifest man = { 0 };
	r = manifest_from_json(j, &man, &err);
	if (r < 0) {
		respond_error(c, 400, "bad_request", "%s", err ?: "invalid function configuration");
		return;
	}
	if (!zygotes_has_runtime(a->d.zygotes, man.runtime)) {
		respond_error(c, 400, "bad_request", "runtime: '%s' is not available here",
			      man.runtime);
		manifest_done(&man);
		return;
	}
	cJSON *code = cJSON_GetObjectItem(j, "code");
	if (!cJSON_IsString(code)) {
		respond_error(c, 400, "bad_request",
			      "code: required, a base64 string of a .zip or .tar.gz archive");
		manifest_done(&man);
		return;
	}
	_cleanup_free_ unsigned char *bytes = NULL;
	size_t n = 0;
	r = base64_decode(code->valuestring, strlen(code->valuestring), &bytes, &n);
	if (r < 0 || n == 0) {
		respond_error(c, 400, "bad_request", "code: %s",
			      r < 0 ? "not valid base64" : "the archive is empty");
		manifest_done(&man);
		return;
	}
	_cleanup_free_ char *derr = NULL;
	struct deploy_req dr = {
		.name = m->name,
		.sc = scaled ? &sc : NULL,
		.sec = sec,
		.bytes = n,
		.t0 = now_us(),
	};
	struct registry_stage st;
	r = registry_stage(a->d.registry, bytes, n, &a->package_limits, &st, &derr);
	if (r < 0) {
		respond_deploy_error(c, m->name, r, derr);
		manifest_done(&man);
		return;
	}
	/* A nodejs package declaring dependencies it does not ship gets them installed first;
	 * the answer waits for npm (deploy_deps_done()), the previous version serving meanwhile. */
	bool waiting = false;
	r = a->d.deps ? deps_needed(st.code_fd, man.runtime, &derr) : 0;
	if (r > 0) {
		r = deploy_with_deps(a, c, &dr, &man, &st, &derr);
		waiting = r == 0;
	}
	if (r < 0) {
		registry_stage_discard(a->d.registry, &st);
		if (r == -EBUSY) {
			cJSON *jb = cJSON_CreateObject();
			if (jb && (!cJSON_AddStringToObject(jb, "error", "unavailable") ||
				   !cJSON_AddStringToObject(jb, "message", derr ?: "busy"))) {
				cJSON_Delete(jb);
				jb = NULL;
			}
			respond_json(c, 503, jb, "Retry-After: 5\r\n");
		} else
			respond_deploy_error(c, m->name, r, derr);
		manifest_done(&man);
		return;
	}
	if (waiting) /* for npm: the manifest, stage and secrets are the deploy's now */
		return;
	deploy_commit(a, c, &dr, &man, &st);
	manifest_done(&man);
}

static void route_delete(struct api *a, struct conn *c, const struct route_match *m)
{
	if (!find_function(a, c, m))
		return;
	int r = api_function_delete(&a->d, m->name);
	if (r < 0) {
		respond_error(c, 500, "internal", "delete of '%s' failed: %s", m->name, strerror(-r));
		return;
	}
	(void)conn_respond(c, 204, NULL, NULL, 0, NULL);
}

int api_function_delete(const struct api_deps *d, const char *fn_name)
{
	/* fn_name may be the registry's own copy, gone with registry_delete(). */
	_cleanup_free_ char *name = strdup(fn_name);
	if (!name)
		return -ENOMEM;
	int r = registry_delete(d->registry, name);
	if (r < 0)
		return log_error_errno(r, "api: delete of '%s' failed: %m", name);
	sched_function_deleted(d->sched, name);
	if (d->async)
		async_function_deleted(d->async, name);
	metrics_codes_forget(d->codes, name);
	if (d->secrets)
		secrets_remove(d->secrets, name);
	(void)log_store_remove(d->logs, name);
	log_info("api: deleted '%s'", name);
	return 0;
}

static void route_rollback(struct api *a, struct conn *c, const struct route_match *m,
			   const struct http_request *req)
{
	const struct fn_record *f = find_function(a, c, m);
	if (!f)
		return;
	uint32_t target = 0;
	if (req->body_len > 0) {
		_cleanup_json_ cJSON *j = json_parse_exact(req->body, req->body_len);
		if (!j || !cJSON_IsObject(j)) {
			respond_error(c, 400, "bad_request", "body: not a valid JSON object");
			return;
		}
		for (cJSON *it = j->child; it; it = it->next)
			if (!streq(it->string, "version")) {
				respond_error(c, 400, "bad_request", "unknown field '%s'", it->string);
				return;
			}
		cJSON *v = cJSON_GetObjectItem(j, "version");
		if (v) {
			if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > UINT32_MAX ||
			    v->valuedouble != (double)(uint32_t)v->valuedouble) {
				respond_error(c, 400, "bad_request",
					      "version: must be a positive integer");
				return;
			}
			target = (uint32_t)v->valuedouble;
		}
	}
	if (target == 0) {
		for (size_t i = 0; i < f->n_versions; i++)
			if (f->versions[i].version < f->live && f->versions[i].version > target)
				target = f->versions[i].version;
		if (target == 0) {
			respond_error(c, 409, "conflict",
				      "function '%s' has no version before %u to roll back to",
				      f->name, f->live);
			return;
		}
	} else if (!fn_record_version(f, target)) {
		respond_error(c, 404, "not_found", "version %u of '%s' does not exist", target,
			      f->name);
		return;
	}
	int r = registry_set_live(a->d.registry, m->name, target);
	if (r < 0) {
		log_error_errno(r, "api: rollback of '%s' failed: %m", m->name);
		respond_error(c, 500, "internal", "rollback of '%s' failed: %s", m->name,
			      strerror(-r));
		return;
	}
	log_info("api: '%s' rolled back to version %u", m->name, target);
	sched_function_changed(a->d.sched, m->name);
	cJSON *o = cJSON_CreateObject();
	if (o) {
		cJSON_AddStringToObject(o, "name", m->name);
		cJSON_AddNumberToObject(o, "version", target);
	}
	respond_json(c, 200, o, NULL);
}

/* --- invoke -------------------------------------------------------------------------------- */

struct pending_invoke {
	struct api *a;
	struct conn *conn;
	struct invocation *inv;
	bool http; /* an HTTP route: the result is an API Gateway response */
};

static void invoke_abort(void *ud)
{
	struct pending_invoke *p = ud;
	sched_invocation_cancel(p->a->d.sched, p->inv);
	conn_unref(p->conn);
	free(p);
}

static void invoke_done(void *ud, const struct invoke_result *r)
{
	struct pending_invoke *p = ud;
	char extra[256] = "";
	if (r->status == 429)
		snprintf(extra, sizeof(extra), "Retry-After: 1\r\n");
	else if (r->reached)
		snprintf(extra, sizeof(extra),
			 "X-Spore-Version: %u\r\nX-Spore-Cold-Start: %s\r\nX-Spore-Duration-Us: %llu\r\n"
			 "X-Spore-Request-Id: %s\r\n",
			 r->version, r->cold ? "true" : "false", (unsigned long long)r->duration_us,
			 r->request_id);
	if (p->http && r->status == 200) {
		struct apigw_response resp;
		_cleanup_free_ char *err = NULL;
		int k = apigw_response(r->body, r->len, &resp, &err);
		if (k >= 0) {
			_cleanup_free_ char *hdrs = NULL;
			if (asprintf(&hdrs, "%s%s", extra, resp.extra_headers) < 0)
				hdrs = NULL;
			(void)conn_respond(p->conn, resp.status, resp.content_type, resp.body,
					   resp.body_len, hdrs ?: extra);
			apigw_response_done(&resp);
		} else {
			cJSON *j = cJSON_CreateObject();
			char msg[512];
			snprintf(msg, sizeof(msg), "the function returned an invalid HTTP response: %s",
				 err ?: strerror(-k));
			if (j && (!cJSON_AddStringToObject(j, "error", "bad_gateway") ||
				  !cJSON_AddStringToObject(j, "message", msg))) {
				cJSON_Delete(j);
				j = NULL;
			}
			respond_json(p->conn, 502, j, extra);
		}
	} else
		(void)conn_respond(p->conn, r->status, "application/json", r->body, r->len, extra);
	conn_unref(p->conn);
	free(p);
}

/* Hands the event to the scheduler; the answer comes through invoke_done(). */
static void start_invoke(struct api *a, struct conn *c, const struct fn_record *f,
			 uint32_t version, const char *event, size_t len, bool http)
{
	struct pending_invoke *p = calloc(1, sizeof(*p));
	if (!p) {
		respond_error(c, 503, "unavailable", "out of memory; try again");
		return;
	}
	p->a = a;
	p->conn = conn_ref(c);
	p->http = http;
	/* The answer may come before sched_invoke() returns (an instance that cannot be started):
	 * everything p needs is set up first, and p is not touched after a successful call. */
	conn_set_abort(c, invoke_abort, p);
	int r = sched_invoke(a->d.sched, f->name, version, event, len, invoke_done, p, &p->inv);
	if (r < 0) {
		conn_set_abort(c, NULL, NULL);
		conn_unref(c);
		free(p);
		if (r == -EAGAIN) {
			cJSON *j = cJSON_CreateObject();
			char msg[256];
			snprintf(msg, sizeof(msg),
				 "function '%s' has a full queue of invocations; try again later",
				 f->name);
			if (j && (!cJSON_AddStringToObject(j, "error", "throttled") ||
				  !cJSON_AddStringToObject(j, "message", msg))) {
				cJSON_Delete(j);
				j = NULL;
			}
			respond_json(c, 429, j, "Retry-After: 1\r\n");
		} else if (r == -ENOENT)
			respond_error(c, 404, "not_found", "function '%s' version does not exist",
				      f->name);
		else
			respond_error(c, 500, "internal", "invoke failed: %s", strerror(-r));
	}
}

/* A random id for requestContext.requestId (the invocation gets its own request id too). */
static void make_request_id(char out[40])
{
	unsigned char b[16];
	if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
		uint64_t t = now_us();
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)(t >> (i % 8 * 8)) ^ (unsigned char)(i * 131);
	}
	hex_encode(b, sizeof(b), out);
}

/* ANY /fn/{name}[/{path...}]: the request as an API Gateway HTTP API payload 2.0 event. */
static void route_fn_http(struct api *a, struct conn *c, const struct route_match *m,
			  const struct http_request *req)
{
	const struct fn_record *f = find_function(a, c, m);
	if (!f)
		return;
	if (f->scaling.auth_token) {
		char token[65];
		const char *h = http_request_header(req, "authorization");
		if (!a->d.secrets || secrets_route_token(a->d.secrets, f->name, false, token) < 0 ||
		    !h || strncasecmp(h, "Bearer ", 7) != 0 || !constant_time_eq(h + 7, token)) {
			cJSON *j = cJSON_CreateObject();
			char msg[160];
			snprintf(msg, sizeof(msg), "the routes of '%s' need its bearer token "
				 "(Authorization: Bearer ...)", f->name);
			if (j && (!cJSON_AddStringToObject(j, "error", "unauthorized") ||
				  !cJSON_AddStringToObject(j, "message", msg))) {
				cJSON_Delete(j);
				j = NULL;
			}
			respond_json(c, 401, j, "WWW-Authenticate: Bearer\r\n");
			return;
		}
	}
	struct apigw_header *hs = calloc(req->n_headers + 1, sizeof(*hs));
	if (!hs) {
		respond_error(c, 503, "unavailable", "out of memory; try again");
		return;
	}
	for (size_t i = 0; i < req->n_headers; i++)
		hs[i] = (struct apigw_header){ req->headers[i].name, req->headers[i].value };
	char ip[64], rid[40];
	conn_peer_ip(c, ip, sizeof(ip));
	make_request_id(rid);
	const char *rest = req->path + m->rest;
	struct apigw_request ar = {
		.method = req->method,
		.path = rest[0] ? rest : "/",
		.query = req->query,
		.headers = hs,
		.n_headers = req->n_headers,
		.body = req->body,
		.body_len = req->body_len,
		.source_ip = ip,
		.request_id = rid,
		.host = http_request_header(req, "host"),
		.time_us = realtime_us(),
		.http_minor = req->http_minor,
	};
	_cleanup_free_ char *event = NULL;
	int r = apigw_event(&ar, &event);
	free(hs);
	if (r < 0) {
		respond_error(c, 503, "unavailable", "out of memory; try again");
		return;
	}
	start_invoke(a, c, f, 0, event, strlen(event), true);
}

static void route_invoke(struct api *a, struct conn *c, const struct route_match *m,
			 const struct http_request *req)
{
	const struct fn_record *f = find_function(a, c, m);
	if (!f)
		return;
	uint32_t version = 0;
	_cleanup_free_ char *vs = NULL;
	int r = http_request_query(req, "version", &vs);
	if (r == 0) {
		if (parse_u32(vs, &version) < 0) {
			respond_error(c, 400, "bad_request", "version: '%.32s' is not a positive integer",
				      vs);
			return;
		}
		if (!fn_record_version(f, version)) {
			respond_error(c, 404, "not_found", "version %u of '%s' does not exist",
				      version, f->name);
			return;
		}
	} else if (r != -ENOENT) {
		respond_error(c, 400, "bad_request", "query: malformed");
		return;
	}
	const char *type = http_request_header(req, "x-spore-invocation-type");
	bool event_type = type && strcasecmp(type, "event") == 0;
	if (type && !event_type && strcasecmp(type, "request-response") != 0) {
		respond_error(c, 400, "bad_request",
			      "X-Spore-Invocation-Type: '%.32s' is not event or request-response", type);
		return;
	}
	if (event_type && req->body_len > ASYNC_EVENT_MAX) {
		respond_error(c, 413, "payload_too_large",
			      "body: an asynchronous event is at most %u bytes", ASYNC_EVENT_MAX);
		return;
	}
	const char *event = "null";
	size_t len = 4;
	if (req->body_len > 0) {
		size_t at = 0;
		cJSON *j = json_parse_exact_at(req->body, req->body_len, &at);
		if (!j) {
			respond_error(c, 400, "bad_request",
				      "body: the event is not valid JSON (near byte %zu)", at);
			return;
		}
		cJSON_Delete(j);
		event = req->body;
		len = req->body_len;
	}
	if (event_type) {
		if (version) {
			respond_error(c, 400, "bad_request",
				      "version: asynchronous invocations run the live version");
			return;
		}
		char id[40];
		r = a->d.async ? async_submit(a->d.async, f->name, event, len, id) : -EOPNOTSUPP;
		if (r == -EAGAIN) {
			respond_error(c, 429, "throttled", "too many asynchronous invocations pending");
			return;
		}
		if (r == -ENOSPC || r == -EDQUOT) {
			respond_error(c, 507, "insufficient_storage",
				      "no space left in the state directory for the event");
			return;
		}
		if (r < 0) {
			respond_error(c, 500, "internal", "cannot accept the event: %s", strerror(-r));
			return;
		}
		char extra[96];
		snprintf(extra, sizeof(extra), "X-Spore-Invocation-Id: %s\r\n", id);
		cJSON *j = cJSON_CreateObject();
		if (j && (!cJSON_AddStringToObject(j, "id", id) ||
			  !cJSON_AddStringToObject(j, "state", "queued"))) {
			cJSON_Delete(j);
			j = NULL;
		}
		respond_json(c, 202, j, extra);
		return;
	}
	start_invoke(a, c, f, version, event, len, false);
}

static void route_invocation(struct api *a, struct conn *c, const struct route_match *m)
{
	cJSON *j = NULL;
	int r = a->d.async ? async_get_json(a->d.async, m->name, &j) : -ENOENT;
	if (r == -ENOENT)
		respond_error(c, 404, "not_found", "no asynchronous invocation '%.64s'", m->name);
	else if (r < 0)
		respond_error(c, 500, "internal", "cannot read invocation '%.64s': %s", m->name,
			      strerror(-r));
	else
		respond_json(c, 200, j, NULL);
}

static void route_dead_letters(struct api *a, struct conn *c, const struct route_match *m)
{
	const struct fn_record *f = find_function(a, c, m);
	if (!f)
		return;
	cJSON *j = NULL;
	int r = a->d.async ? async_dead_letters_json(a->d.async, f->name, &j) : -EOPNOTSUPP;
	if (r < 0)
		respond_error(c, 500, "internal", "cannot list dead letters: %s", strerror(-r));
	else
		respond_json(c, 200, j, NULL);
}

/* --- logs ---------------------------------------------------------------------------------- */

struct log_stream {
	struct conn *conn;
	struct log_follower *follower;
};

static void log_stream_abort(void *ud)
{
	struct log_stream *ls = ud;
	log_follower_free(ls->follower);
	conn_unref(ls->conn);
	free(ls);
}

static void log_stream_line(void *ud, const char *line, size_t len)
{
	struct log_stream *ls = ud;
	(void)conn_stream_write(ls->conn, line, len);
}

static void route_logs(struct api *a, struct conn *c, const struct route_match *m,
		       const struct http_request *req)
{
	const struct fn_record *f = find_function(a, c, m);
	if (!f)
		return;
	uint32_t tail = TAIL_DEFAULT;
	_cleanup_free_ char *ts = NULL, *fs = NULL;
	if (http_request_query(req, "tail", &ts) == 0) {
		if (streq(ts, "0"))
			tail = 0;
		else if (parse_u32(ts, &tail) < 0 || tail > TAIL_MAX) {
			respond_error(c, 400, "bad_request",
				      "tail: must be an integer between 0 and %u", TAIL_MAX);
			return;
		}
	}
	bool follow = false;
	if (http_request_query(req, "follow", &fs) == 0) {
		if (streq(fs, "1") || streq(fs, "true"))
			follow = true;
		else if (!streq(fs, "0") && !streq(fs, "false")) {
			respond_error(c, 400, "bad_request", "follow: must be 1 or 0");
			return;
		}
	}
	struct buf out = BUF_INIT;
	int r = log_store_tail(a->d.logs, f->name, tail, &out);
	if (r < 0) {
		buf_done(&out);
		respond_error(c, 500, "internal", "cannot read the logs of '%s': %s", f->name,
			      strerror(-r));
		return;
	}
	if (!follow) {
		(void)conn_respond(c, 200, "application/x-ndjson", out.data, out.len, NULL);
		buf_done(&out);
		return;
	}
	struct log_stream *ls = calloc(1, sizeof(*ls));
	if (!ls || conn_stream_begin(c, 200, "application/x-ndjson", NULL) < 0) {
		free(ls);
		buf_done(&out);
		return;
	}
	(void)conn_stream_write(c, out.data, out.len);
	buf_done(&out);
	ls->conn = conn_ref(c);
	r = log_store_follow(a->d.logs, f->name, log_stream_line, ls, &ls->follower);
	if (r < 0) {
		conn_unref(c);
		free(ls);
		(void)conn_stream_end(c);
		return;
	}
	conn_set_abort(c, log_stream_abort, ls);
}

/* --- dispatch ------------------------------------------------------------------------------ */

static bool authorized(struct api *a, struct conn *c, const struct http_request *req)
{
	if (conn_is_unix(c))
		return true;
	const char *token = a->d.config->api_token;
	if (!token) {
		respond_error(c, 401, "unauthorized",
			      "management routes are served on the API unix socket only; set "
			      "api_token in the configuration to allow them over TCP");
		return false;
	}
	const char *h = http_request_header(req, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !constant_time_eq(h + 7, token)) {
		respond_error(c, 401, "unauthorized",
			      "management routes over TCP need 'Authorization: Bearer <api_token>'%s",
			      h ? "; the token given does not match" : "");
		return false;
	}
	return true;
}

/* --- metrics ------------------------------------------------------------------------------- */

static void route_metrics(struct api *a, struct conn *c)
{
	struct buf out = BUF_INIT;
	uint32_t instances = 0;
	uint64_t memory_mb = 0;
	sched_totals(a->d.sched, &instances, &memory_mb);
	unsigned restarts = 0, running = 0;
	for (size_t i = 0; i < zygotes_count(a->d.zygotes); i++) {
		struct zygote_info zi;
		zygotes_info(a->d.zygotes, i, &zi);
		restarts += zi.restarts;
		running += zi.state == ZYGOTE_RUNNING;
	}
	/* spored's own figures, after the functions'. */
	if (metrics_prometheus(a->d.meter, a->d.codes, &out) < 0 ||
	    buf_printf(&out,
		       "# HELP spore_instances Instances of all functions now.\n"
		       "# TYPE spore_instances gauge\nspore_instances %u\n"
		       "# HELP spore_instances_memory_bytes memory_mb of all instances together.\n"
		       "# TYPE spore_instances_memory_bytes gauge\nspore_instances_memory_bytes %llu\n"
		       "# HELP spore_async_pending Asynchronous invocations accepted and not finished.\n"
		       "# TYPE spore_async_pending gauge\nspore_async_pending %zu\n"
		       "# HELP spore_zygotes_running Zygotes up and ready.\n"
		       "# TYPE spore_zygotes_running gauge\nspore_zygotes_running %u\n"
		       "# HELP spore_zygote_restarts_total Zygote restarts since spored started.\n"
		       "# TYPE spore_zygote_restarts_total counter\nspore_zygote_restarts_total %u\n",
		       instances, (unsigned long long)memory_mb << 20,
		       a->d.async ? async_pending(a->d.async) : (size_t)0, running, restarts) < 0) {
		buf_done(&out);
		respond_error(c, 503, "unavailable", "out of memory; try again");
		return;
	}
	(void)conn_respond(c, 200, METRICS_PROMETHEUS_CONTENT_TYPE, out.data, out.len,
			   NULL);
	buf_done(&out);
}

static void route_stats(struct api *a, struct conn *c, const struct route_match *m)
{
	const struct fn_record *f = find_function(a, c, m);
	if (!f)
		return;
	cJSON *j = NULL;
	int r = metrics_fn_json(a->d.meter, f->name, &j);
	if (r == -ENOENT) {
		/* Deployed, never invoked in this spored: all zero. */
		j = cJSON_CreateObject();
		if (j && (!cJSON_AddStringToObject(j, "name", f->name) ||
			  !cJSON_AddNumberToObject(j, "requests", 0))) {
			cJSON_Delete(j);
			j = NULL;
		}
	} else if (r < 0)
		j = NULL;
	respond_json(c, 200, j, NULL);
}

void api_handle(struct conn *c, struct http_request *req, void *userdata)
{
	struct api *a = userdata;
	struct route_match m;
	if (lambda_path(req->path)) {
		lambda_handle(a->lambda, c, req);
		goto out;
	}
	int r = route_match(req->method, req->path, &m);
	if (r == -EOPNOTSUPP) {
		char allow[96];
		snprintf(allow, sizeof(allow), "Allow: %s\r\n", m.allow);
		cJSON *j = cJSON_CreateObject();
		if (j) {
			char msg[160];
			snprintf(msg, sizeof(msg), "method %s is not allowed on %s (allowed: %s)",
				 req->method, req->path, m.allow);
			cJSON_AddStringToObject(j, "error", "method_not_allowed");
			cJSON_AddStringToObject(j, "message", msg);
		}
		respond_json(c, 405, j, allow);
		goto out;
	}
	if (r < 0) {
		respond_error(c, 404, "not_found", "no route for %s %.200s", req->method, req->path);
		goto out;
	}
	if (m.management && !authorized(a, c, req))
		goto out;

	switch (m.id) {
	case ROUTE_HEALTHZ:
		route_healthz(a, c, req);
		break;
	case ROUTE_RUNTIMES:
		route_runtimes(a, c);
		break;
	case ROUTE_FUNCTIONS_LIST:
		route_list(a, c);
		break;
	case ROUTE_FUNCTION_GET:
		route_get(a, c, &m);
		break;
	case ROUTE_FUNCTION_PUT:
		route_put(a, c, &m, req);
		break;
	case ROUTE_FUNCTION_DELETE:
		route_delete(a, c, &m);
		break;
	case ROUTE_FUNCTION_PATCH:
		route_patch(a, c, &m, req);
		break;
	case ROUTE_FUNCTION_ROLLBACK:
		route_rollback(a, c, &m, req);
		break;
	case ROUTE_FUNCTION_INVOKE:
		route_invoke(a, c, &m, req);
		break;
	case ROUTE_FUNCTION_LOGS:
		route_logs(a, c, &m, req);
		break;
	case ROUTE_METRICS:
		route_metrics(a, c);
		break;
	case ROUTE_METRICS_JSON:
		respond_json(c, 200, metrics_json(a->d.meter), NULL);
		break;
	case ROUTE_FUNCTION_STATS:
		route_stats(a, c, &m);
		break;
	case ROUTE_FUNCTION_HTTP:
		route_fn_http(a, c, &m, req);
		break;
	case ROUTE_INVOCATION_GET:
		route_invocation(a, c, &m);
		break;
	case ROUTE_FUNCTION_DEAD_LETTERS:
		route_dead_letters(a, c, &m);
		break;
	default:
		respond_error(c, 500, "internal", "unhandled route");
	}
out:
	http_request_free(req);
}
