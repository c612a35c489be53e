/* SPDX-License-Identifier: MIT */
/* Fuzzes the HTTP request glue (src/http.c) the way spored's server uses it: a byte stream fed to
 * http_reader_feed() in pieces, pipelined requests fed again from where the last one stopped.
 *
 * Input: byte 0 is the piece size (0: the whole stream in one call; n: n bytes per call, each
 * piece in its own exactly-sized allocation so that ASan sees any read past it), byte 1 picks the
 * reader's settings (bits 0-1: head limit 16384, 1024, 200 or 64 bytes; bit 2 set: no body limit,
 * else spored's per-route limits scaled down), the rest is the stream.
 *
 * Checks, beyond ASan/UBSan/LSan: the contract in http.h (statuses, consumption, a dead reader
 * stays dead, bodies NUL-terminated and within their limit, heads within theirs, at most 100
 * headers with token names) and that the stream gives the same requests and the same final answer
 * whether it comes in one piece or in many. Each request also goes through what api.c does with
 * it: route_match(), the query parameters it reads, json_parse_exact() of a body, and a response
 * head. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "fuzz-common.h"
#include "http.h"
#include "route.h"
#include "util/buf.h"
#include "util/json.h"

#define MAX_HEADERS 100

static const size_t head_limits[4] = { 16384, 1024, 200, 64 };

struct opts {
	size_t max_header;
	bool body_limits;
};

/* spored's api_body_limit(), with the sizes scaled down so the fuzzer reaches them. */
static size_t body_limit(const char *method, const char *path, void *userdata)
{
	FUZZ_CHECK(userdata != NULL, "no userdata");
	FUZZ_CHECK(method && path, "method or path NULL");
	struct route_match m;
	if (route_match(method, path, &m) < 0)
		return 256;
	switch (m.id) {
	case ROUTE_FUNCTION_PUT:
		return 4096;
	case ROUTE_FUNCTION_INVOKE:
		return 2048;
	default:
		return 256;
	}
}

static bool is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      strchr("!#$%&'*+-.^_`|~", c)))
			return false;
	}
	return true;
}

static void log_str(struct buf *log, const char *s)
{
	if (!s) {
		(void)buf_append_str(log, "-|");
		return;
	}
	(void)buf_printf(log, "%zu:", strlen(s));
	(void)buf_append_str(log, s);
	(void)buf_append(log, "|", 1);
}

/* What api.c does with a request before it reaches the registry or the scheduler. */
static void use_request(const struct http_request *req)
{
	static const char *const keys[] = { "version", "tail", "follow", "" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *v = NULL;
		int r = http_request_query(req, keys[i], &v);
		FUZZ_CHECK(r == 0 || r == -ENOENT || r == -EINVAL, "query '%s': %d", keys[i], r);
		FUZZ_CHECK((r == 0) == (v != NULL), "query '%s': %d but value %p", keys[i], r,
			   (void *)v);
		FUZZ_CHECK(!req->query ? r == -ENOENT : true, "query without a query string");
		free(v);
	}

	struct route_match m = { 0 };
	int r = route_match(req->method, req->path, &m);
	FUZZ_CHECK(r == 0 || r == -ENOENT || r == -EOPNOTSUPP, "route_match: %d", r);
	if (r == -EOPNOTSUPP)
		FUZZ_CHECK(m.allow != NULL, "405 without Allow");
	if (r == 0)
		FUZZ_CHECK(memchr(m.name, 0, sizeof(m.name)) != NULL, "route name not terminated");

	if (req->body) {
		cJSON *j = json_parse_exact(req->body, req->body_len);
		cJSON_Delete(j);
	}

	/* A response whose Content-Type echoes the path must be refused or stay one line. */
	struct buf out = BUF_INIT;
	r = http_format_head(&out, 400, req->path, req->body_len, req->keep_alive, NULL);
	if (strpbrk(req->path, "\r\n"))
		FUZZ_CHECK(r == -EINVAL && out.len == 0, "CR/LF in Content-Type taken: %d", r);
	else {
		FUZZ_CHECK(r == 0, "http_format_head: %d", r);
		size_t lines = 0;
		for (size_t i = 0; i + 1 < out.len; i++)
			lines += out.data[i] == '\r' && out.data[i + 1] == '\n';
		FUZZ_CHECK(lines == 5, "response head has %zu lines", lines);
	}
	buf_done(&out);
}

static void check_request(const struct http_request *req, const struct opts *o, struct buf *log)
{
	FUZZ_CHECK(memchr(req->method, 0, sizeof(req->method)) && req->method[0], "bad method");
	FUZZ_CHECK(req->target && req->path, "target or path NULL");
	FUZZ_CHECK(req->path[0] == '/', "path '%s' not absolute", req->path);
	FUZZ_CHECK(req->n_headers <= MAX_HEADERS, "%zu headers", req->n_headers);
	FUZZ_CHECK(req->n_headers == 0 || req->headers, "headers NULL");
	FUZZ_CHECK((req->body == NULL) == (req->body_len == 0), "body %p with length %zu",
		   (void *)req->body, req->body_len);
	if (req->body)
		FUZZ_CHECK(req->body[req->body_len] == 0, "body not NUL-terminated");
	if (o->body_limits)
		FUZZ_CHECK(req->body_len <= body_limit(req->method, req->path, (void *)o),
			   "body of %zu bytes over the limit", req->body_len);

	(void)buf_printf(log, "REQ %s ", req->method);
	log_str(log, req->target);
	log_str(log, req->path);
	log_str(log, req->query);
	for (size_t i = 0; i < req->n_headers; i++) {
		FUZZ_CHECK(req->headers[i].name && req->headers[i].value, "header %zu NULL", i);
		FUZZ_CHECK(is_token(req->headers[i].name), "header name '%s' not a token",
			   req->headers[i].name);
		const char *v = http_request_header(req, req->headers[i].name);
		FUZZ_CHECK(v != NULL, "header '%s' not found by name", req->headers[i].name);
		log_str(log, req->headers[i].name);
		log_str(log, req->headers[i].value);
	}
	(void)buf_printf(log, "body=%zu:", req->body_len);
	if (req->body)
		(void)buf_append(log, req->body, req->body_len);
	(void)buf_printf(log, " ka=%d minor=%d\n", req->keep_alive, req->http_minor);

	use_request(req);
}

/* Feeds the stream in pieces of piece bytes (0: all at once) and logs what came out. */
static void run(const char *stream, size_t len, size_t piece, const struct opts *o,
		struct buf *log)
{
	struct http_reader *reader =
		http_reader_new(o->max_header, o->body_limits ? body_limit : NULL, (void *)o);
	FUZZ_CHECK(reader != NULL, "http_reader_new failed");
	FUZZ_CHECK(http_reader_state(reader) == HTTP_READER_IDLE, "new reader not idle");

	size_t off = 0, since = 0; /* bytes fed since the last request */
	while (off < len) {
		size_t n = piece > 0 && piece < len - off ? piece : len - off;
		char *p = malloc(n);
		FUZZ_CHECK(p != NULL, "oom");
		memcpy(p, stream + off, n);
		size_t used = 0;
		while (used < n) {
			struct http_request *req = NULL;
			bool cont = false;
			int status = 0;
			const char *message = NULL;
			int r = http_reader_feed(reader, p + used, n - used, &req, &cont, &status,
						 &message);
			if (r < 0) {
				FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM, "feed: %d", r);
				FUZZ_CHECK(r == -ENOMEM ? status == 500
							: (status == 400 || status == 413 ||
							   status == 431 || status == 501 ||
							   status == 505),
					   "status %d with %d", status, r);
				FUZZ_CHECK(message && *message, "no message for %d", status);
				(void)buf_printf(log, "ERR %d %d\n", status, r);

				/* Dead: the same answer again, whatever comes next. */
				int status2 = 0;
				const char *message2 = NULL;
				int r2 = http_reader_feed(reader, "x", 1, &req, &cont, &status2,
							  &message2);
				FUZZ_CHECK(r2 == r && status2 == status, "dead reader: %d/%d", r2,
					   status2);
				free(p);
				goto out;
			}
			FUZZ_CHECK((size_t)r <= n - used, "consumed %d of %zu", r, n - used);
			used += (size_t)r;
			since += (size_t)r;
			if (req) {
				/* The head limit is exact: what came before the body (blank lines
				 * before the request line included) fits it. */
				if (!http_request_header(req, "Transfer-Encoding"))
					FUZZ_CHECK(since - req->body_len <= o->max_header,
						   "a head of %zu bytes for a limit of %zu",
						   since - req->body_len, o->max_header);
				since = 0;
				FUZZ_CHECK(r > 0, "a request from 0 bytes");
				FUZZ_CHECK(!cont, "100-continue with a complete request");
				FUZZ_CHECK(http_reader_state(reader) == HTTP_READER_IDLE,
					   "not idle after a request");
				check_request(req, o, log);
				http_request_free(req);
				continue;
			}
			/* No request: everything given was taken (server.c relies on it). */
			FUZZ_CHECK(used == n, "consumed %d, left %zu without a request or error", r,
				   n - used);
			if (cont)
				FUZZ_CHECK(http_reader_state(reader) == HTTP_READER_BODY,
					   "100-continue outside a body");
		}
		free(p);
		off += n;
	}
	(void)buf_printf(log, "END %d\n", (int)http_reader_state(reader));
out:
	http_reader_free(reader);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	struct opts o = {
		.max_header = head_limits[data[1] & 3],
		.body_limits = !(data[1] & 4),
	};
	size_t piece = data[0];
	const char *stream = (const char *)data + 2;
	size_t len = size - 2;

	struct buf split = BUF_INIT;
	run(stream, len, piece, &o, &split);
	FUZZ_LOG("%.*s", (int)split.len, split.data ? split.data : "");
	if (piece > 0 && piece < len) {
		struct buf whole = BUF_INIT;
		run(stream, len, 0, &o, &whole);
		FUZZ_CHECK(split.len == whole.len &&
				   memcmp(split.data, whole.data, split.len) == 0,
			   "pieces of %zu bytes and the whole stream differ:\n--- pieces\n%.*s\n"
			   "--- whole\n%.*s",
			   piece, (int)split.len, split.data ? split.data : "", (int)whole.len,
			   whole.data ? whole.data : "");
		buf_done(&whole);
	}
	buf_done(&split);
	return 0;
}
