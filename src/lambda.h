/* SPDX-License-Identifier: MIT */
/* The AWS Lambda REST API (2015-03-31, as the AWS SDKs and CLI send it) on top of the same
 * registry, scheduler and log store as /v1: functions, code and configuration, published
 * versions, aliases, Invoke, reserved and provisioned concurrency, with AWS Signature V4
 * authentication against configured access keys. docs/LAMBDA.md describes the mapping.
 * Supervisor only.
 *
 * Lambda's view of a spore function: $LATEST is the function's live spore version; every change
 * of code or configuration through this API deploys a new spore version (the registry's
 * versions are immutable), and a published Lambda version N is a name for one spore version.
 * What only Lambda has (Role, Description, the Lambda runtime name, the zip's size, published
 * versions, aliases, a reserved concurrency of 0) is kept in STATE/functions/NAME/lambda.json,
 * written atomically beside function.json and removed with the function. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

struct api_deps;
struct conn;
struct lambda;

/* Never fails for a bad configuration: a missing or unsafe lambda_access_keys file is reported
 * in *ret_warning (malloc'ed, for the caller to log; NULL when all is well) and every signed
 * request is then refused until the file is fixed (it is read again whenever it changes).
 * -ENOMEM. deps must outlive the lambda. */
int lambda_new(const struct api_deps *deps, struct lambda **ret, char **ret_warning);
/* Cancels the fire-and-forget invocations still running (Event invocations of a version that is
 * not live); call before the scheduler is freed. */
struct lambda *lambda_free(struct lambda *l);

/* True for the paths this module serves: /2015-03-31/..., /2017-10-31/..., /2019-09-30/.... */
bool lambda_path(const char *path);
/* The body limit of a Lambda route (decoded path). */
size_t lambda_body_limit(struct lambda *l, const char *method, const char *path);
/* Answers req (not freed here). Requests on the API unix socket need no signature; over TCP
 * they must be signed with a configured key unless lambda_allow_unsigned is set. */
void lambda_handle(struct lambda *l, struct conn *c, const struct http_request *req);
