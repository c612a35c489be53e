/* SPDX-License-Identifier: MIT */
/* spore native function ABI, version 1.
 *
 * A native function is a shared object (built with -fPIC -shared) that spore's native runtime
 * dlopen()s in each instance. It exports a handler with the spore_handler_t signature under the
 * name given in the function's "handler" ("symbol", when the package holds exactly one *.so, or
 * "file.so:symbol"), and optionally `int spore_init(void)`.
 *
 *   spore_init()   called once per instance, right after dlopen(), with the function's
 *                  environment set (AWS_LAMBDA_FUNCTION_NAME, ..., the user's "env") and the
 *                  working directory at the code root. Non-zero fails the instance's start
 *                  (errorType "Runtime.InitError").
 *
 *   handler()      called once per invocation, one at a time, always from the same thread.
 *                  event/event_len: the invocation's JSON event, NUL-terminated (event_len does
 *                  not count the NUL); an empty request body arrives as "null". ctx is valid
 *                  only during the call.
 *                  Success: return 0 and set *ret_response to a malloc'ed buffer holding the
 *                  JSON result and *ret_len to its length. The runtime free()s it. It must be
 *                  valid JSON (one value, nothing after it) or the caller gets errorType
 *                  "Runtime.InvalidResponse". Leaving *ret_response NULL returns JSON null.
 *                  Failure: return non-zero and optionally set *ret_response (*ret_len) to a
 *                  malloc'ed message. A message that is a JSON object with a string
 *                  "errorMessage" (and optionally "errorType" and "stackTrace") is passed on as
 *                  is; any other message becomes {"errorType":"HandlerError","errorMessage":msg}.
 *
 * stdout and stderr are the function's log (stdout is line buffered). Crashing or exiting ends
 * the instance; the caller sees the invocation fail. Example: examples/native/hello/hello.c. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SPORE_ABI_VERSION 1

struct spore_context {
	uint32_t abi_version; /* SPORE_ABI_VERSION the runtime was built with */
	const char *function_name; /* as AWS_LAMBDA_FUNCTION_NAME */
	const char *function_version; /* "1", "2", ... or "$LATEST" */
	uint32_t memory_limit_in_mb;
	const char *aws_request_id; /* this invocation's id (a UUID) */
	int64_t deadline_ms; /* CLOCK_REALTIME ms since the epoch when the invocation times out */
	/* Milliseconds left before the deadline, never negative. */
	int64_t (*get_remaining_time_in_millis)(const struct spore_context *ctx);
	void *reserved[8]; /* zero; later ABI versions may add members here */
};

typedef int spore_handler_t(const char *event, size_t event_len, const struct spore_context *ctx,
			    char **ret_response, size_t *ret_len);
typedef int spore_init_t(void);

/* Mark exported handlers (useful with -fvisibility=hidden). */
#define SPORE_EXPORT __attribute__((visibility("default")))

#ifdef __cplusplus
}
#endif
