/* SPDX-License-Identifier: MIT */
/* HTTP/1.1 request reader: pure glue around libhttp-parser, bytes in, requests out, no I/O.
 * Also response-head formatting. Safe to call from the supervisor only (not signal safe).
 *
 * Usage: feed bytes as they arrive. http_reader_feed() consumes at most up to the end of one
 * request, so pipelined bytes after it stay with the caller to feed again. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

struct http_header {
	char *name; /* as received; compare with strcasecmp */
	char *value;
};

struct http_request {
	char method[16];    /* "GET", "PUT", ... */
	char *target;       /* raw request target */
	char *path;         /* percent-decoded path without the query; never NULL */
	char *query;        /* raw query string without '?', or NULL */
	struct http_header *headers;
	size_t n_headers;
	char *body; /* NUL-terminated (not counted in body_len); NULL when no body */
	size_t body_len;
	bool keep_alive; /* per HTTP version and Connection header */
	int http_minor;
};

/* Returns the first header with this name (case-insensitive), or NULL. */
const char *http_request_header(const struct http_request *r, const char *name);
/* Looks up a query parameter (percent-decoded, '+' as space, malloc'ed into *ret; "?k" gives "").
 * 0 found (the first of repeated keys), -ENOENT, -EINVAL when its value has a bad escape or
 * %00, -ENOMEM. */
int http_request_query(const struct http_request *r, const char *key, char **ret);
struct http_request *http_request_free(struct http_request *r);

/* Called when the head of a request is complete, to pick its body limit (bytes) by route. path is
 * the decoded path. A NULL function means no limit. */
typedef size_t (*http_body_limit_fn)(const char *method, const char *path, void *userdata);

struct http_reader;
/* max_header_bytes bounds the head (request line, headers, blank lines before it) exactly, however
 * the bytes are split. NULL on OOM or max_header_bytes == 0. */
struct http_reader *http_reader_new(size_t max_header_bytes, http_body_limit_fn limit, void *userdata);
struct http_reader *http_reader_free(struct http_reader *r);

enum http_reader_state {
	HTTP_READER_IDLE,    /* between requests: no byte of the next one seen yet */
	HTTP_READER_HEADERS, /* inside a request head */
	HTTP_READER_BODY,    /* head complete, reading the body */
};
enum http_reader_state http_reader_state(const struct http_reader *r);

/* Feeds len bytes. Returns the number of bytes consumed (>= 0). When a whole request has been
 * read, *ret_request is set (caller owns it) and consumption stops right after it. When the
 * bytes are malformed or over a limit, returns -EBADMSG and sets *ret_status to the status to
 * answer (400, 413, 431, 501, 505) and *ret_message to a static explanation; the reader is then
 * dead (the connection must be closed after the answer).
 * *ret_continue is set to true once, when the head of a request carrying
 * "Expect: 100-continue" is complete and its body has not arrived yet.
 * Out of memory: -ENOMEM, with *ret_status 500 and a message; the reader is dead too.
 * Details: only "Transfer-Encoding: chunked" is taken (anything else 501); Content-Length twice
 * (even equal) or next to Transfer-Encoding is 400; more than 100 header fields 431; the path
 * must be origin form ("/...") or absolute form ("http://host/..."), percent-decoded, %00 refused;
 * chunked trailers are read and dropped. */
int http_reader_feed(struct http_reader *r, const char *data, size_t len,
		     struct http_request **ret_request, bool *ret_continue, int *ret_status,
		     const char **ret_message);

/* "OK", "Not Found", ... ("Unknown" for others). */
const char *http_status_reason(int status);

/* Appends "HTTP/1.1 <status> <reason>\r\n", Content-Type (when non-NULL), Content-Length,
 * "Connection: keep-alive|close", each line of extra_headers (already "\r\n"-terminated, may be
 * NULL) and the blank line. */
int http_format_head(struct buf *out, int status, const char *content_type, size_t content_length,
		     bool keep_alive, const char *extra_headers);
/* Same but with "Transfer-Encoding: chunked" instead of Content-Length, and no Connection line
 * (HTTP/1.1 default: keep-alive). All three formatters append to out, and leave it as it was on
 * failure: -EINVAL for a status outside 100..999, a content_type with CR/LF, or extra_headers not
 * ending in "\r\n"; -ENOMEM. */
int http_format_head_chunked(struct buf *out, int status, const char *content_type,
			     const char *extra_headers);
/* Appends one chunk (len 0 = the terminating chunk). */
int http_format_chunk(struct buf *out, const void *data, size_t len);
