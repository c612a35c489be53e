/* SPDX-License-Identifier: MIT */
/* sporectl's HTTP requests to spored through libcurl: over the API unix socket (URL
 * http://localhost/...) or to a base URL, with an optional bearer token. One request per call,
 * HTTP/1.1, no proxy (proxy environment variables are ignored: spored is local), no
 * "Expect: 100-continue". Call curl_global_init() once before the first request. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "sporectl-util.h"
#include "util/buf.h"

struct client {
	const char *socket_path; /* used when url is NULL */
	const char *url;         /* base URL ("http://127.0.0.1:8080"), no trailing '/' */
	const char *token;       /* "Authorization: Bearer <token>" when non-NULL and non-empty */
};

struct client_response {
	long status;
	struct buf body;    /* the whole body, or with on_line only a non-2xx body */
	struct buf headers; /* the X-Spore-* response headers, one "Name: value\n" each */
};

void client_response_done(struct client_response *r);

/* Sends method path (path starts with '/' and is appended to the base as is: the caller
 * escapes) with body (content type application/json) when body is non-NULL; a POST or PUT
 * without body sends an empty one.
 *
 * With on_line set, a 2xx body is not collected but handed over line by line as it arrives
 * (partial lines are held until complete; see line_split_feed()), and a last unterminated line
 * at the end; an on_line error aborts the transfer and is returned as is.
 *
 * Returns 0 when an HTTP answer arrived, whatever its status (*ret filled). Otherwise -errno
 * (-ECONNREFUSED, -ENOENT, -EACCES... for a failed connect; -ETIMEDOUT; -EPIPE when the
 * connection broke mid-answer; -EIO else) and *ret_error (malloc'ed) says what failed, naming
 * the socket or URL. */
int client_request(const struct client *c, const char *method, const char *path, const void *body,
		   size_t body_len, line_cb_t on_line, void *userdata,
		   struct client_response *ret, char **ret_error);

/* "unix socket '/run/spore/spored.sock'" or "'http://127.0.0.1:8080'"; malloc'ed. */
char *client_describe(const struct client *c);
