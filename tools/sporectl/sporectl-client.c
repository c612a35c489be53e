/* SPDX-License-Identifier: MIT */
#include "sporectl-client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "spore-config.h"
#include "util/cleanup.h"
#include "util/error.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CURL *, curl_easy_cleanup)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct curl_slist *, curl_slist_free_all)

struct transfer {
	CURL *curl;
	struct client_response resp;
	line_cb_t on_line;
	void *userdata;
	struct buf pending; /* partial line */
	int error;          /* why a callback stopped the transfer */
};

void client_response_done(struct client_response *r)
{
	if (!r)
		return;
	buf_done(&r->body);
	buf_done(&r->headers);
	r->status = 0;
}

char *client_describe(const struct client *c)
{
	char *s = NULL;
	int r;

	if (c->url)
		r = asprintf(&s, "'%s'", c->url);
	else
		r = asprintf(&s, "unix socket '%s'", c->socket_path);
	return r < 0 ? NULL : s;
}


static bool status_ok(struct transfer *t)
{
	long code = 0;

	(void)curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
	return code >= 200 && code < 300;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
	size_t n = size * nmemb;
	int r;

	if (t->on_line && status_ok(t))
		r = line_split_feed(&t->pending, ptr, n, t->on_line, t->userdata);
	else
		r = buf_append(&t->resp.body, ptr, n);
	if (r < 0) {
		t->error = r;
		return 0; /* makes curl fail with CURLE_WRITE_ERROR */
	}
	return n;
}

static size_t on_header(char *ptr, size_t size, size_t nitems, void *userdata)
{
	struct transfer *t = userdata;
	size_t n = size * nitems, l = n;
	int r;

	/* A new status line starts a new header block (after a 1xx answer). */
	if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
		buf_reset(&t->resp.headers);
		return n;
	}
	if (n < 8 || strncasecmp(ptr, "X-Spore-", 8) != 0)
		return n;
	while (l > 0 && (ptr[l - 1] == '\n' || ptr[l - 1] == '\r'))
		l--;
	r = buf_append(&t->resp.headers, ptr, l);
	if (r >= 0)
		r = buf_append(&t->resp.headers, "\n", 1);
	if (r < 0) {
		t->error = r;
		return 0;
	}
	return n;
}

static int curl_failure(const struct client *c, CURL *curl, CURLcode code, const char *errbuf,
			char **ret_error)
{
	_cleanup_free_ char *where = client_describe(c);
	const char *detail = *errbuf ? errbuf : curl_easy_strerror(code);
	long os_errno = 0;

	if (!where)
		return -ENOMEM;

	switch (code) {
	case CURLE_COULDNT_CONNECT:
		(void)curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno > 0)
			return error_set(ret_error, -(int)os_errno, "cannot connect to spored at %s: %s",
					 where, strerror((int)os_errno));
		return error_set(ret_error, -ECONNREFUSED, "cannot connect to spored at %s: %s", where,
				 detail);
	case CURLE_COULDNT_RESOLVE_HOST:
		return error_set(ret_error, -EHOSTUNREACH, "cannot connect to spored at %s: %s",
				 where, detail);
	case CURLE_OPERATION_TIMEDOUT:
		return error_set(ret_error, -ETIMEDOUT, "no answer from spored at %s: %s", where,
				 detail);
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
		return error_set(ret_error, -EPIPE, "connection to spored at %s broke: %s", where,
				 detail);
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return error_set(ret_error, -EINVAL, "bad URL %s: %s", where, detail);
	default:
		return error_set(ret_error, -EIO, "request to spored at %s failed: %s", where,
				 detail);
	}
}

int client_request(const struct client *c, const char *method, const char *path, const void *body,
		   size_t body_len, line_cb_t on_line, void *userdata,
		   struct client_response *ret, char **ret_error)
{
	_cleanup_(curl_easy_cleanupp) CURL *curl = NULL;
	_cleanup_(curl_slist_free_allp) struct curl_slist *headers = NULL;
	_cleanup_free_ char *url = NULL, *auth = NULL;
	struct transfer t = { .on_line = on_line, .userdata = userdata };
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *h;
	CURLcode code;
	int r;

	if (asprintf(&url, "%s%s", c->url ?: "http://localhost", path) < 0)
		return -ENOMEM;

	curl = curl_easy_init();
	if (!curl)
		return -ENOMEM;
	t.curl = curl;

	/* "Expect:" removes curl's 100-continue dance for large bodies. */
	h = curl_slist_append(headers, "Expect:");
	if (!h)
		return -ENOMEM;
	headers = h;
	if (body) {
		h = curl_slist_append(headers, "Content-Type: application/json");
		if (!h)
			return -ENOMEM;
		headers = h;
	}
	if (c->token && *c->token) {
		if (asprintf(&auth, "Authorization: Bearer %s", c->token) < 0)
			return -ENOMEM;
		h = curl_slist_append(headers, auth);
		if (!h)
			return -ENOMEM;
		headers = h;
	}

	code = curl_easy_setopt(curl, CURLOPT_URL, url);
	if (code == CURLE_OK && !c->url)
		code = curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
	if (code == CURLE_OK)
		code = curl_easy_setopt(curl, CURLOPT_PROXY, "");
	if (code == CURLE_OK)
		code = curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	if (code == CURLE_OK)
		code = curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	if (code == CURLE_OK)
		code = curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	if (code == CURLE_OK)
		code = curl_easy_setopt(curl, CURLOPT_USERAGENT, "sporectl/" SPORE_VERSION);
	if (code == CURLE_OK)
		code = curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	if (code == CURLE_OK)
		code = curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	if (code == CURLE_OK)
		code = curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	if (code == CURLE_OK)
		code = curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
	if (code == CURLE_OK)
		code = curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	if (code == CURLE_OK)
		code = curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
	if (code == CURLE_OK) {
		if (streq(method, "GET"))
			code = curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
		else if (body || streq(method, "POST") || streq(method, "PUT")) {
			code = curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
						(curl_off_t)(body ? body_len : 0));
			if (code == CURLE_OK)
				code = curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ?: "");
			if (code == CURLE_OK && !streq(method, "POST"))
				code = curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
		} else if (streq(method, "HEAD"))
			code = curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
		else
			code = curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	}
	if (code != CURLE_OK) {
		r = error_set(ret_error, -EINVAL, "cannot set up request: %s", curl_easy_strerror(code));
		goto finish;
	}

	code = curl_easy_perform(curl);
	if (code == CURLE_OK && on_line && status_ok(&t)) {
		r = line_split_finish(&t.pending, on_line, userdata);
		if (r < 0) {
			t.error = r;
			code = CURLE_WRITE_ERROR;
		}
	}
	if (code != CURLE_OK) {
		if (t.error < 0)
			r = error_set(ret_error, t.error, "stopped reading the answer: %s",
				      strerror(-t.error));
		else
			r = curl_failure(c, curl, code, errbuf, ret_error);
		goto finish;
	}

	(void)curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &t.resp.status);
	*ret = t.resp;
	t.resp = (struct client_response){};
	r = 0;
finish:
	client_response_done(&t.resp);
	buf_done(&t.pending);
	return r;
}
