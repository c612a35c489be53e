/* SPDX-License-Identifier: MIT */
/* HTTP routes to functions (ANY /fn/{name}/{path...}): the request as an AWS API Gateway HTTP API
 * payload 2.0 event, and the function's result back onto an HTTP response. Pure: no I/O, no
 * logging. ../shared/LAMBDA-API.md has the wire facts. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct apigw_header {
	const char *name;
	const char *value;
};

struct apigw_request {
	const char *method;     /* "GET" */
	const char *path;       /* the path below /fn/{name}, starting with '/': rawPath */
	const char *query;      /* raw query without '?', or NULL */
	const struct apigw_header *headers;
	size_t n_headers;
	const char *body;       /* may be NULL */
	size_t body_len;
	const char *source_ip;  /* "127.0.0.1" */
	const char *request_id; /* becomes requestContext.requestId */
	const char *host;       /* the Host header, for requestContext.domainName; may be NULL */
	int64_t time_us;        /* CLOCK_REALTIME */
	int http_minor;         /* HTTP/1.x */
};

/* The event JSON (malloc'ed). Header names are lower-cased, repeated headers joined with ",",
 * Cookie headers split into "cookies"; repeated query keys joined with "," in
 * queryStringParameters; a body that is valid UTF-8 with a textual content type (text/ *, JSON,
 * XML, form, JavaScript) or none is passed as a string, any other as base64 with
 * isBase64Encoded true. -ENOMEM. */
int apigw_event(const struct apigw_request *req, char **ret_json);

struct apigw_response {
	int status;
	char *content_type;  /* from the result's headers, else "application/json" */
	char *extra_headers; /* "Name: value\r\n"... (Set-Cookie per cookie); never Content-Type,
				Content-Length, Connection or Transfer-Encoding */
	char *body;
	size_t body_len;
};

/* Maps a function's result (JSON bytes) to a response: an object with "statusCode" is a
 * {statusCode, headers, cookies, body, isBase64Encoded} response; anything else is a 200
 * application/json body of the result itself. -EINVAL with *ret_error (malloc'ed) when the
 * result claims to be a response but is not a valid one (a statusCode outside 100..599, a header
 * name that is not a token, a value with CR, LF or NUL, a body that is not a string, bad base64):
 * the caller answers 502. -ENOMEM. */
int apigw_response(const char *result, size_t len, struct apigw_response *ret, char **ret_error);
void apigw_response_done(struct apigw_response *r);
