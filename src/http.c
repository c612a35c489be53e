/* SPDX-License-Identifier: MIT */
#include "http.h"

#include <errno.h>
#include <limits.h>
#include <http_parser.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/cleanup.h"
#include "util/codec.h"

/* More header fields than this in one request: 431. */
#define HTTP_MAX_HEADERS 100
/* Bytes kept from the start of each request to recognise the HTTP/2 connection preface. */
#define PREFIX_MAX 24

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct http_reader {
	http_parser parser;
	size_t max_header_bytes;
	http_body_limit_fn limit_fn;
	void *userdata;

	enum http_reader_state state;
	bool dead;
	int err_status;
	const char *err_message;
	int err_errno; /* -EBADMSG, or -ENOMEM when we ran out of memory */

	/* The request being read. */
	size_t head_bytes; /* bytes fed while in the head (including blank lines before it) */
	char prefix[PREFIX_MAX];
	size_t prefix_len;
	/* Our own look at the head's line endings (head_scan()): libhttp-parser takes bare LF and
	 * folded lines, which a front end that splits only on CRLF would frame differently. */
	unsigned char scan_prev;
	size_t scan_line_len, scan_lines;
	bool scan_done;
	struct buf target;
	struct buf field; /* header name being received */
	struct buf value; /* header value being received */
	bool in_value;    /* the last header callback was a value: a new field starts a new header */
	size_t n_headers_over; /* complete headers past HTTP_MAX_HEADERS: a 431 at the head's end */
	struct http_header *headers;
	size_t n_headers;
	size_t cap_headers;
	struct http_request *req; /* built when the head is complete */
	struct buf body;
	size_t body_limit;
	uint64_t body_wire; /* bytes fed while in the body, framing included */
	bool chunked;
	bool expect_continue;
	bool continue_sent;
	bool complete;
};

const char *http_request_header(const struct http_request *r, const char *name)
{
	if (!r || !name)
		return NULL;
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

/* Percent-decodes n bytes of s. -EINVAL for a bad or truncated escape, or one that decodes to
 * NUL; -ENOMEM. */
static int pct_decode(const char *s, size_t n, bool plus_is_space, char **ret)
{
	_cleanup_free_ char *out = malloc(n + 1);
	if (!out)
		return -ENOMEM;
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			if (n - i < 3)
				return -EINVAL;
			int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -EINVAL;
			out[j++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+' && plus_is_space)
			out[j++] = ' ';
		else
			out[j++] = c;
	}
	out[j] = 0;
	*ret = TAKE_PTR(out);
	return 0;
}

int http_request_query(const struct http_request *r, const char *key, char **ret)
{
	if (!r || !key || !r->query)
		return -ENOENT;
	const char *p = r->query;
	for (;;) {
		size_t len = strcspn(p, "&");
		if (len > 0) {
			const char *eq = memchr(p, '=', len);
			size_t klen = eq ? (size_t)(eq - p) : len;
			_cleanup_free_ char *k = NULL;
			int q = pct_decode(p, klen, true, &k);
			if (q == -ENOMEM)
				return q;
			/* A key we cannot decode is not the one asked for. */
			if (q >= 0 && streq(k, key)) {
				char *v = NULL;
				if (eq)
					q = pct_decode(eq + 1, len - klen - 1, true, &v);
				else
					q = (v = strdup("")) ? 0 : -ENOMEM;
				if (q < 0)
					return q;
				*ret = v;
				return 0;
			}
		}
		if (p[len] == 0)
			break;
		p += len + 1;
	}
	return -ENOENT;
}

static void headers_free(struct http_header *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
}

struct http_request *http_request_free(struct http_request *r)
{
	if (!r)
		return NULL;
	free(r->target);
	free(r->path);
	free(r->query);
	headers_free(r->headers, r->n_headers);
	free(r->body);
	free(r);
	return NULL;
}

/* Forget everything about the current request; ready for the next one. */
static void reader_reset_message(struct http_reader *r)
{
	http_parser_init(&r->parser, HTTP_REQUEST);
	r->parser.data = r;
	r->state = HTTP_READER_IDLE;
	r->head_bytes = 0;
	r->prefix_len = 0;
	r->scan_prev = 0;
	r->scan_line_len = r->scan_lines = 0;
	r->scan_done = false;
	buf_done(&r->target);
	buf_done(&r->field);
	buf_done(&r->value);
	r->in_value = false;
	headers_free(r->headers, r->n_headers);
	r->headers = NULL;
	r->n_headers = r->cap_headers = 0;
	r->n_headers_over = 0;
	r->req = http_request_free(r->req);
	buf_done(&r->body);
	r->body_limit = 0;
	r->body_wire = 0;
	r->chunked = false;
	r->expect_continue = false;
	r->continue_sent = false;
	r->complete = false;
}

struct http_reader *http_reader_new(size_t max_header_bytes, http_body_limit_fn limit,
				    void *userdata)
{
	/* libhttp-parser has a process-wide head limit of its own (80 KiB unless raised). Ours is
	 * per reader and exact; keep the library's above every reader's so ours decides. The
	 * library's still bounds chunked trailers, which we do not count. */
	static uint32_t lib_max = HTTP_MAX_HEADER_SIZE;
	if (max_header_bytes == 0)
		return NULL;
	if (max_header_bytes >= lib_max && max_header_bytes < UINT32_MAX - 4096) {
		lib_max = (uint32_t)max_header_bytes + 4096;
		http_parser_set_max_header_size(lib_max);
	}

	struct http_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->max_header_bytes = max_header_bytes;
	r->limit_fn = limit;
	r->userdata = userdata;
	reader_reset_message(r);
	return r;
}

struct http_reader *http_reader_free(struct http_reader *r)
{
	if (!r)
		return NULL;
	reader_reset_message(r);
	free(r);
	return NULL;
}

enum http_reader_state http_reader_state(const struct http_reader *r)
{
	return r->state;
}

/* Records the answer for a failed request; the reader is dead from now on. Returns -1 so that
 * callbacks can return it to stop the parser. */
static int reader_fail(struct http_reader *r, int status, const char *message)
{
	/* Whatever else is wrong with a head that the parser read as HTTP/0.9 (a request line
	 * without a version), the answer is the same 505 however the bytes were split: whether
	 * a failure is seen in the same read as the end of the request line or in a later one
	 * must not change it. */
	if (status != 503 && r->state != HTTP_READER_BODY && r->parser.http_major == 0 &&
	    r->parser.http_minor == 9) {
		status = 505;
		message = "HTTP/0.9 is not supported";
	}
	if (!r->dead) {
		r->dead = true;
		r->err_status = status;
		r->err_message = message;
		r->err_errno = status == 503 ? -ENOMEM : -EBADMSG;
	}
	return -1;
}

static int reader_oom(struct http_reader *r)
{
	return reader_fail(r, 503, "out of memory");
}

/* Strips trailing whitespace: libhttp-parser drops the leading whitespace of a value only. */
static void strip_trailing_ws(struct buf *b)
{
	while (b->len > 0 && (b->data[b->len - 1] == ' ' || b->data[b->len - 1] == '\t'))
		b->len--;
}

static bool is_token(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c && strchr("!#$%&'*+-.^_`|~", c))))
			return false;
	}
	return true;
}

/* Moves the header being received (if any) into the list. */
static int finish_header(struct http_reader *r)
{
	if (!r->in_value && r->field.len == 0)
		return 0;
	/* Our libhttp-parser build is not strict and lets a space into names ("Host : x"), which
	 * RFC 9112 makes a 400. */
	if (r->field.len == 0 || !is_token(r->field.data, r->field.len))
		return reader_fail(r, 400, "invalid header field name");
	if (r->n_headers >= HTTP_MAX_HEADERS) {
		/* Counted, not kept: the 431 comes with the end of the head, so that a malformed
		 * byte further on gets the same answer however the bytes were split. */
		r->n_headers_over++;
		buf_reset(&r->field);
		buf_reset(&r->value);
		r->in_value = false;
		return 0;
	}
	if (r->n_headers == r->cap_headers) {
		size_t cap = r->cap_headers ? r->cap_headers * 2 : 16;
		struct http_header *h = reallocarray(r->headers, cap, sizeof(*h));
		if (!h)
			return reader_oom(r);
		r->headers = h;
		r->cap_headers = cap;
	}
	strip_trailing_ws(&r->value);
	char *name = buf_steal(&r->field, NULL);
	char *value = name ? buf_steal(&r->value, NULL) : NULL;
	if (!name || !value) {
		free(name);
		return reader_oom(r);
	}
	r->headers[r->n_headers++] = (struct http_header){ .name = name, .value = value };
	r->in_value = false;
	return 0;
}

static int on_message_begin(http_parser *p)
{
	struct http_reader *r = p->data;
	r->state = HTTP_READER_HEADERS;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct http_reader *r = p->data;
	return buf_append(&r->target, at, len) < 0 ? reader_oom(r) : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_reader *r = p->data;
	if (r->state == HTTP_READER_BODY)
		return 0; /* chunked trailer: ignored */
	if (r->in_value && finish_header(r) < 0)
		return -1;
	return buf_append(&r->field, at, len) < 0 ? reader_oom(r) : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_reader *r = p->data;
	if (r->state == HTTP_READER_BODY)
		return 0;
	r->in_value = true;
	return buf_append(&r->value, at, len) < 0 ? reader_oom(r) : 0;
}

static bool strcaseeq_trimmed(const char *s, const char *word)
{
	s += strspn(s, " \t");
	size_t n = strlen(word);
	if (strncasecmp(s, word, n) != 0)
		return false;
	return s[n + strspn(s + n, " \t")] == 0;
}

/* Transfer-Encoding headers: 0 if none or exactly one "chunked"; else fails the reader. */
static int check_transfer_encoding(struct http_reader *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n_headers; i++) {
		if (strcasecmp(r->headers[i].name, "Transfer-Encoding") != 0)
			continue;
		if (!strcaseeq_trimmed(r->headers[i].value, "chunked"))
			return reader_fail(r, 501, "unsupported Transfer-Encoding (only chunked)");
		n++;
	}
	if (n > 1)
		return reader_fail(r, 400, "repeated Transfer-Encoding");
	return 0;
}

/* Splits the request target into a decoded path and the raw query. Accepts the origin form
 * ("/p?q") and the absolute form ("http://host/p?q", which servers must accept). */
static int split_target(struct http_reader *r, const char *target, char **ret_path,
			char **ret_query)
{
	const char *t = target;
	if (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0) {
		t = strstr(t, "://") + 3;
		t += strcspn(t, "/?#");
	} else if (t[0] != '/')
		return reader_fail(r, 400, "request target must be an absolute path");

	size_t plen = strcspn(t, "?#");
	_cleanup_free_ char *path = NULL, *query = NULL;
	if (plen == 0)
		path = strdup("/");
	else {
		int q = pct_decode(t, plen, false, &path);
		if (q == -EINVAL)
			return reader_fail(r, 400, "invalid percent-encoding in request path");
		if (q < 0)
			return reader_oom(r);
	}
	if (!path)
		return reader_oom(r);
	if (t[plen] == '?') {
		const char *q = t + plen + 1;
		query = strndup(q, strcspn(q, "#"));
		if (!query)
			return reader_oom(r);
	}
	*ret_path = TAKE_PTR(path);
	*ret_query = TAKE_PTR(query);
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http_reader *r = p->data;
	/* Only 0 (go on), 1 and 2 (skip body) are not errors: fail with -1. */
	if (finish_header(r) < 0)
		return -1;
	if (r->n_headers_over > 0)
		return reader_fail(r, 431, "too many header fields");
	if (p->http_major != 1)
		return reader_fail(r, 505, "HTTP version not supported (only HTTP/1.x)");
	if (p->method == HTTP_CONNECT)
		return reader_fail(r, 501, "method CONNECT is not supported");
	if (check_transfer_encoding(r) < 0)
		return -1;

	struct http_request *req = calloc(1, sizeof(*req));
	if (!req)
		return reader_oom(r);
	r->req = req;
	(void)snprintf(req->method, sizeof(req->method), "%s",
		       http_method_str((enum http_method)p->method));
	req->target = buf_steal(&r->target, NULL);
	if (!req->target)
		return reader_oom(r);
	if (split_target(r, req->target, &req->path, &req->query) < 0)
		return -1;
	req->headers = TAKE_PTR(r->headers);
	req->n_headers = r->n_headers;
	r->n_headers = r->cap_headers = 0;
	req->http_minor = p->http_minor;

	r->chunked = p->flags & F_CHUNKED;
	r->body_limit = r->limit_fn ? r->limit_fn(req->method, req->path, r->userdata) : SIZE_MAX;
	if (!r->chunked && (p->flags & F_CONTENTLENGTH) && p->content_length > r->body_limit)
		return reader_fail(r, 413, "request body too large");

	const char *expect = http_request_header(req, "Expect");
	bool has_body = r->chunked || (p->content_length > 0 && p->content_length != UINT64_MAX);
	r->expect_continue = expect && strcaseeq_trimmed(expect, "100-continue") && has_body &&
			     p->http_minor >= 1;
	r->state = HTTP_READER_BODY;
	return 0;
}

static int on_chunk_header(http_parser *p)
{
	struct http_reader *r = p->data;
	/* The chunk size is in content_length: refuse before its data arrives. */
	if (p->content_length > r->body_limit - r->body.len)
		return reader_fail(r, 413, "request body too large");
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_reader *r = p->data;
	if (len > r->body_limit - r->body.len)
		return reader_fail(r, 413, "request body too large");
	return buf_append(&r->body, at, len) < 0 ? reader_oom(r) : 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_reader *r = p->data;
	if (!r->req) /* cannot happen: the head completed first */
		return reader_fail(r, 400, "malformed request");
	r->req->keep_alive = http_should_keep_alive(p);
	if (r->body.len > 0) {
		r->req->body_len = r->body.len;
		r->req->body = buf_steal(&r->body, NULL);
		if (!r->req->body)
			return reader_oom(r);
	}
	r->complete = true;
	/* Stop right after this message: pipelined bytes stay with the caller. */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
	.on_chunk_header = on_chunk_header,
};

static bool header_named(const struct http_reader *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return true;
	return false;
}

/* Translates a libhttp-parser error into the answer. */
static int reader_fail_parser(struct http_reader *r, enum http_errno e)
{
	switch (e) {
	case HPE_HEADER_OVERFLOW:
		return reader_fail(r, 431, "request header block too large");
	case HPE_INVALID_METHOD: {
		/* The HTTP/2 preface starts with the unknown method PRI. Only the bytes up to the
		 * one the parser stopped at count, so that the answer does not depend on how the
		 * bytes were split into reads. */
		size_t n = r->head_bytes + 1 < r->prefix_len ? r->head_bytes + 1 : r->prefix_len;
		if (n >= 3 && memcmp(r->prefix, h2_preface, n) == 0)
			return reader_fail(r, 505, "HTTP/2 is not supported (only HTTP/1.x)");
		return reader_fail(r, 400, "invalid request method");
	}
	case HPE_INVALID_VERSION:
		if (r->parser.http_major >= 2)
			return reader_fail(r, 505, "HTTP version not supported (only HTTP/1.x)");
		return reader_fail(r, 400, "invalid HTTP version");
	case HPE_INVALID_URL:
	case HPE_INVALID_HOST:
	case HPE_INVALID_PORT:
	case HPE_INVALID_PATH:
	case HPE_INVALID_QUERY_STRING:
	case HPE_INVALID_FRAGMENT:
		return reader_fail(r, 400, "invalid request target");
	case HPE_INVALID_HEADER_TOKEN:
		return reader_fail(r, 400, "invalid character in header");
	case HPE_INVALID_CONTENT_LENGTH:
		return reader_fail(r, 400, "invalid Content-Length");
	case HPE_UNEXPECTED_CONTENT_LENGTH:
		/* Either a second Content-Length or one next to Transfer-Encoding. */
		(void)finish_header(r);
		if (r->dead)
			break;
		if (header_named(r, "Transfer-Encoding")) {
			if (check_transfer_encoding(r) < 0)
				break;
			return reader_fail(r, 400,
					   "Content-Length together with Transfer-Encoding");
		}
		return reader_fail(r, 400, "repeated Content-Length");
	case HPE_INVALID_TRANSFER_ENCODING:
		return reader_fail(r, 501, "unsupported Transfer-Encoding (only chunked)");
	case HPE_INVALID_CHUNK_SIZE:
		return reader_fail(r, 400, "invalid chunk size");
	default:
		/* Callback failures have set the answer already. */
		return reader_fail(r, 400, http_errno_description(e));
	}
	return -1;
}

static int reader_answer_failure(struct http_reader *r, int *ret_status, const char **ret_message)
{
	*ret_status = r->err_status;
	*ret_message = r->err_message;
	return r->err_errno;
}

/* Refuses a head with a line ended by a bare LF, or a folded header line (obs-fold, RFC 9112
 * 5.2): both are allowed to a lenient server, but a request smuggler's tools. Scans p[0..n) up to
 * the end of the head and returns how many bytes are fine: the caller feeds the parser those,
 * and fails on the first bad byte only once the parser has taken everything before it, so that
 * the answer is the same however the bytes were split. *ret_why: the refusal, or NULL. */
static size_t head_scan(struct http_reader *r, const char *p, size_t n, const char **ret_why)
{
	*ret_why = NULL;
	for (size_t i = 0; i < n && !r->scan_done; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '\n') {
			if (r->scan_prev != '\r') {
				*ret_why = "bare LF in the request head (lines end with CRLF)";
				return i;
			}
			if (r->scan_line_len == 0 && r->scan_lines > 0)
				r->scan_done = true; /* the blank line that ends the head */
			else if (r->scan_line_len > 0)
				r->scan_lines++;
			r->scan_line_len = 0;
		} else if (c != '\r') {
			if (r->scan_line_len == 0 && r->scan_lines > 0 && (c == ' ' || c == '\t')) {
				*ret_why = "folded header line (obs-fold) in the request";
				return i;
			}
			r->scan_line_len++;
		}
		r->scan_prev = c;
	}
	return n;
}

int http_reader_feed(struct http_reader *r, const char *data, size_t len,
		     struct http_request **ret_request, bool *ret_continue, int *ret_status,
		     const char **ret_message)
{
	size_t off = 0;

	if (r->dead)
		return reader_answer_failure(r, ret_status, ret_message);
	if (len > INT_MAX) /* the count must fit the return value; the rest comes next call */
		len = INT_MAX;

	while (off < len) {
		bool in_head = r->state != HTTP_READER_BODY;
		size_t n = len - off;

		if (in_head) {
			/* Feed no more than the head may still take: the limit is exact whatever
			 * the splits. */
			if (r->head_bytes >= r->max_header_bytes) {
				(void)reader_fail(r, 431, "request header block too large");
				return reader_answer_failure(r, ret_status, ret_message);
			}
			if (n > r->max_header_bytes - r->head_bytes)
				n = r->max_header_bytes - r->head_bytes;
			if (r->prefix_len < PREFIX_MAX) {
				size_t k = PREFIX_MAX - r->prefix_len;
				if (k > n)
					k = n;
				memcpy(r->prefix + r->prefix_len, data + off, k);
				r->prefix_len += k;
			}
			const char *why;
			size_t ok = head_scan(r, data + off, n, &why);
			if (why && ok == 0) {
				(void)reader_fail(r, 400, why);
				return reader_answer_failure(r, ret_status, ret_message);
			}
			n = ok;
		}

		size_t k = http_parser_execute(&r->parser, &settings, data + off, n);
		enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
		off += k;
		if (in_head)
			r->head_bytes += k;
		else
			r->body_wire += k;

		if (r->dead)
			return reader_answer_failure(r, ret_status, ret_message);
		if (e == HPE_PAUSED && r->complete) {
			struct http_request *req = TAKE_PTR(r->req);
			reader_reset_message(r);
			*ret_request = req;
			*ret_continue = false;
			return (int)off;
		}
		if (e != HPE_OK) {
			(void)reader_fail_parser(r, e); /* 505 for HTTP/0.9: reader_fail() */
			return reader_answer_failure(r, ret_status, ret_message);
		}
		/* libhttp-parser takes "GET /\r\n" as HTTP/0.9 and would wait for headers. */
		if (r->state != HTTP_READER_BODY && r->parser.http_major == 0 &&
		    r->parser.http_minor == 9) {
			(void)reader_fail(r, 505, "HTTP/0.9 is not supported");
			return reader_answer_failure(r, ret_status, ret_message);
		}
		if (k != n) {
			(void)reader_fail(r, 400, "malformed request");
			return reader_answer_failure(r, ret_status, ret_message);
		}
		/* Chunk extensions are skipped by the parser without a bound: cap the framing. */
		if (r->chunked && r->body_limit < UINT64_MAX / 16 &&
		    r->body_wire > 8 * (uint64_t)r->body_limit + 65536) {
			(void)reader_fail(r, 413, "chunked framing too large");
			return reader_answer_failure(r, ret_status, ret_message);
		}
	}

	*ret_request = NULL;
	*ret_continue = false;
	if (r->expect_continue && !r->continue_sent && r->state == HTTP_READER_BODY &&
	    r->body.len == 0) {
		r->continue_sent = true;
		*ret_continue = true;
	}
	return (int)off;
}

const char *http_status_reason(int status)
{
	switch (status) {
#define XX(num, name, string)                                                                      \
	case num:                                                                                  \
		return #string;
		HTTP_STATUS_MAP(XX)
#undef XX
	default:
		return "Unknown";
	}
}

/* A header value we write must not end the line early. */
static bool header_value_ok(const char *s)
{
	return !s || strpbrk(s, "\r\n") == NULL;
}

static bool extra_headers_ok(const char *s)
{
	if (!s || !*s)
		return true;
	size_t n = strlen(s);
	return n >= 2 && s[n - 2] == '\r' && s[n - 1] == '\n';
}

/* v in decimal into buf (no NUL); its length. */
static size_t fmt_u64(char buf[24], uint64_t v)
{
	char tmp[24];
	size_t n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

int http_format_head(struct buf *out, int status, const char *content_type, size_t content_length,
		     bool keep_alive, const char *extra_headers)
{
	if (status < 100 || status > 999 || !header_value_ok(content_type) ||
	    !extra_headers_ok(extra_headers))
		return -EINVAL;
	size_t old = out->len;
	/* Appended piece by piece: printf's machinery was a few percent of spored's CPU per
	 * request. */
	char num[24];
	int r = buf_append(out, "HTTP/1.1 ", 9);
	if (r >= 0)
		r = buf_append(out, num, fmt_u64(num, (uint64_t)status));
	if (r >= 0)
		r = buf_append(out, " ", 1);
	if (r >= 0)
		r = buf_append_str(out, http_status_reason(status));
	if (r >= 0 && content_type) {
		r = buf_append(out, "\r\nContent-Type: ", 16);
		if (r >= 0)
			r = buf_append_str(out, content_type);
	}
	/* 1xx, 204 and 304 answers carry no Content-Length (RFC 9110 8.6). */
	if (r >= 0 && status >= 200 && status != 204 && status != 304) {
		r = buf_append(out, "\r\nContent-Length: ", 18);
		if (r >= 0)
			r = buf_append(out, num, fmt_u64(num, content_length));
	}
	if (r >= 0)
		r = keep_alive ? buf_append(out, "\r\nConnection: keep-alive\r\n", 26)
			       : buf_append(out, "\r\nConnection: close\r\n", 21);
	if (r >= 0 && extra_headers)
		r = buf_append_str(out, extra_headers);
	if (r >= 0)
		r = buf_append(out, "\r\n", 2);
	if (r < 0)
		out->len = old;
	return r;
}

int http_format_head_chunked(struct buf *out, int status, const char *content_type,
			     const char *extra_headers)
{
	if (status < 100 || status > 999 || !header_value_ok(content_type) ||
	    !extra_headers_ok(extra_headers))
		return -EINVAL;
	size_t old = out->len;
	int r = buf_printf(out, "HTTP/1.1 %d %s\r\n", status, http_status_reason(status));
	if (r >= 0 && content_type)
		r = buf_printf(out, "Content-Type: %s\r\n", content_type);
	if (r >= 0)
		r = buf_append_str(out, "Transfer-Encoding: chunked\r\n");
	if (r >= 0 && extra_headers)
		r = buf_append_str(out, extra_headers);
	if (r >= 0)
		r = buf_append(out, "\r\n", 2);
	if (r < 0)
		out->len = old;
	return r;
}

int http_format_chunk(struct buf *out, const void *data, size_t len)
{
	size_t old = out->len;
	int r = buf_printf(out, "%zx\r\n", len);
	if (r >= 0 && len > 0)
		r = buf_append(out, data, len);
	if (r >= 0)
		r = buf_append(out, "\r\n", 2);
	if (r < 0)
		out->len = old;
	return r;
}
