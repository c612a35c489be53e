/* SPDX-License-Identifier: MIT */
/* A native spore function (ABI: <spore/spore.h>). Build:
 *   cc -shared -fPIC -O2 -o hello.so hello.c -lcjson
 * Deploy with handler "hello" (the package's only .so) or "hello.so:echo". Handlers:
 *   hello  {"name": N} -> {"message": "hello, N", "function_version", "request_id"}
 *   echo   returns the event
 *   noop   returns null
 *   fail   fails with {"errorType": "ValueError", ...}
 *   sleep  {"seconds": S} sleeps S seconds
 *   crash  {"how": "segv"|"abort"|"exit", "code": N} ends the instance
 *   log    {"lines": N} writes N lines to stdout and to stderr */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <spore/spore.h>

/* Handlers: exported, the ABI's signature. "sleep" and "log" are libc/libm names, so those two
 * get their exported names from asm labels. */
SPORE_EXPORT spore_handler_t hello, echo, noop, fail, crash;
SPORE_EXPORT spore_handler_t sleep_handler __asm__("sleep");
SPORE_EXPORT spore_handler_t log_handler __asm__("log");
SPORE_EXPORT spore_init_t spore_init;

static const char *greeting = "hello";

/* Optional; runs once per instance after dlopen(). */
int spore_init(void)
{
	const char *g = getenv("GREETING");

	if (g && *g)
		greeting = g;
	return 0;
}

static int respond(cJSON *j, char **ret_response, size_t *ret_len)
{
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;

	cJSON_Delete(j);
	if (!s)
		return 1; /* out of memory: an error without a message */
	*ret_response = s;
	*ret_len = strlen(s);
	return 0;
}

static double event_number(const char *event, size_t len, const char *key, double def)
{
	cJSON *j = cJSON_ParseWithLength(event, len);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
	double d = cJSON_IsNumber(v) ? v->valuedouble : def;

	cJSON_Delete(j);
	return d;
}

int hello(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	  size_t *ret_len)
{
	cJSON *ev = cJSON_ParseWithLength(event, event_len), *out = cJSON_CreateObject();
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(ev, "name");
	char msg[256];

	(void)snprintf(msg, sizeof(msg), "%s, %s", greeting,
		       cJSON_IsString(name) ? name->valuestring : "world");
	cJSON_Delete(ev);
	if (!cJSON_AddStringToObject(out, "message", msg) ||
	    !cJSON_AddStringToObject(out, "function_version", ctx->function_version) ||
	    !cJSON_AddStringToObject(out, "request_id", ctx->aws_request_id) ||
	    !cJSON_AddNumberToObject(out, "remaining_ms",
				     (double)ctx->get_remaining_time_in_millis(ctx))) {
		cJSON_Delete(out);
		return 1;
	}
	return respond(out, ret_response, ret_len);
}

int echo(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	 size_t *ret_len)
{
	char *copy = malloc(event_len);

	(void)ctx;
	if (!copy)
		return 1;
	memcpy(copy, event, event_len);
	*ret_response = copy;
	*ret_len = event_len;
	return 0;
}

int noop(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	 size_t *ret_len)
{
	(void)event, (void)event_len, (void)ctx, (void)ret_response, (void)ret_len;
	return 0; /* no response: null */
}

int fail(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	 size_t *ret_len)
{
	static const char err[] =
		"{\"errorType\":\"ValueError\",\"errorMessage\":\"something went wrong\"}";

	(void)event, (void)event_len, (void)ctx;
	*ret_response = strdup(err);
	*ret_len = *ret_response ? strlen(err) : 0;
	return 1;
}

int sleep_handler(const char *event, size_t event_len, const struct spore_context *ctx,
		  char **ret_response, size_t *ret_len)
{
	double s = event_number(event, event_len, "seconds", 1);
	struct timespec ts;
	cJSON *out;

	(void)ctx;
	if (!(s >= 0) || s > 3600)
		s = 1;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0)
		;
	out = cJSON_CreateObject();
	if (!cJSON_AddNumberToObject(out, "slept", s)) {
		cJSON_Delete(out);
		return 1;
	}
	return respond(out, ret_response, ret_len);
}

int crash(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	  size_t *ret_len)
{
	cJSON *j = cJSON_ParseWithLength(event, event_len);
	const cJSON *how = cJSON_GetObjectItemCaseSensitive(j, "how");
	char h[16];
	int code = (int)event_number(event, event_len, "code", 3);

	(void)ctx, (void)ret_response, (void)ret_len;
	(void)snprintf(h, sizeof(h), "%s", cJSON_IsString(how) ? how->valuestring : "segv");
	cJSON_Delete(j);
	fflush(NULL);
	if (strcmp(h, "exit") == 0)
		_exit(code);
	if (strcmp(h, "abort") == 0)
		abort();
	/* A real fault: a sandboxed instance is PID 1 of its pid namespace, and the kernel ignores
	 * signals PID 1 sends itself (kill, raise), but not the SIGSEGV of a bad access. */
	/* An unmapped address in page 0, not NULL itself: UBSan would report a NULL store and
	 * exit instead of letting the fault happen. */
	static volatile uintptr_t nowhere = 16;
	*(volatile int *)nowhere = 0;
	return 1;
}

int log_handler(const char *event, size_t event_len, const struct spore_context *ctx,
		char **ret_response, size_t *ret_len)
{
	int n = (int)event_number(event, event_len, "lines", 2);
	cJSON *out;

	for (int i = 0; i < n; i++) {
		printf("stdout line %d of %s\n", i, ctx->aws_request_id);
		fprintf(stderr, "stderr line %d of %s\n", i, ctx->aws_request_id);
	}
	out = cJSON_CreateObject();
	if (!cJSON_AddNumberToObject(out, "lines", n)) {
		cJSON_Delete(out);
		return 1;
	}
	return respond(out, ret_response, ret_len);
}
