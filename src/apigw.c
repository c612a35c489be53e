/* SPDX-License-Identifier: MIT */
#include "apigw.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "util/buf.h"
#include "util/cleanup.h"
#include "util/codec.h"
#include "util/error.h"
#include "util/json.h"


/* Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF), NUL allowed. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t len;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
		} else
			return false;
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static bool textual(const char *content_type)
{
	static const char *const kinds[] = { "text/", "application/json", "application/xml",
					     "application/javascript",
					     "application/x-www-form-urlencoded" };
	if (!content_type || !content_type[0])
		return true;
	for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
		if (strncasecmp(content_type, kinds[i], strlen(kinds[i])) == 0)
			return true;
	/* application/something+json, +xml */
	const char *semi = strchr(content_type, ';');
	size_t n = semi ? (size_t)(semi - content_type) : strlen(content_type);
	return (n > 5 && strncasecmp(content_type + n - 5, "+json", 5) == 0) ||
	       (n > 4 && strncasecmp(content_type + n - 4, "+xml", 4) == 0);
}

/* Adds value to obj[key], joining with "," if the key is there already. */
static int add_joined(cJSON *obj, const char *key, const char *value)
{
	cJSON *old = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!old)
		return cJSON_AddStringToObject(obj, key, value) ? 0 : -ENOMEM;
	_cleanup_free_ char *joined = NULL;
	if (asprintf(&joined, "%s,%s", old->valuestring, value) < 0)
		return -ENOMEM;
	cJSON *n = cJSON_CreateString(joined);
	if (!n)
		return -ENOMEM;
	return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, n) ? 0 : -ENOMEM;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes [s, s+n) ('+' is a space); a bad escape is kept as it is. */
static char *query_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int h, l;
		if (s[i] == '+')
			*o++ = ' ';
		else if (s[i] == '%' && i + 2 < n &&
			 (h = hexval(s[i + 1])) >= 0 && (l = hexval(s[i + 2])) >= 0 && (h || l)) {
			*o++ = (char)(h << 4 | l);
			i += 2;
		} else
			*o++ = s[i];
	}
	*o = 0;
	return out;
}

static int add_query(cJSON *params, const char *query)
{
	for (const char *p = query; p && *p;) {
		size_t n = strcspn(p, "&");
		const char *eq = memchr(p, '=', n);
		size_t kn = eq ? (size_t)(eq - p) : n;
		if (kn > 0) {
			_cleanup_free_ char *k = query_decode(p, kn);
			_cleanup_free_ char *v = eq ? query_decode(eq + 1, n - kn - 1) : strdup("");
			if (!k || !v)
				return -ENOMEM;
			/* cJSON keeps strings as C strings: a decoded NUL ends them, harmlessly. */
			int r = add_joined(params, k, v);
			if (r < 0)
				return r;
		}
		p += n;
		if (*p == '&')
			p++;
	}
	return 0;
}

int apigw_event(const struct apigw_request *req, char **ret_json)
{
	_cleanup_(cJSON_Deletep) cJSON *j = cJSON_CreateObject();
	if (!j)
		return -ENOMEM;
	cJSON *headers = cJSON_CreateObject(), *cookies = cJSON_CreateArray();
	cJSON *params = cJSON_CreateObject();
	cJSON_AddItemToObject(j, "version", cJSON_CreateString("2.0"));
	cJSON_AddItemToObject(j, "routeKey", cJSON_CreateString("$default"));
	cJSON_AddItemToObject(j, "rawPath", cJSON_CreateString(req->path));
	cJSON_AddItemToObject(j, "rawQueryString", cJSON_CreateString(req->query ?: ""));
	if (!headers || !cookies || !params) {
		cJSON_Delete(headers);
		cJSON_Delete(cookies);
		cJSON_Delete(params);
		return -ENOMEM;
	}
	cJSON_AddItemToObject(j, "cookies", cookies);
	cJSON_AddItemToObject(j, "headers", headers);
	const char *content_type = NULL, *user_agent = "";
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct apigw_header *h = &req->headers[i];
		char name[256];
		size_t n = strlen(h->name);
		if (n >= sizeof(name))
			continue;
		for (size_t k = 0; k <= n; k++)
			name[k] = (char)tolower((unsigned char)h->name[k]);
		if (streq(name, "cookie")) {
			/* "a=1; b=2" -> ["a=1", "b=2"] */
			for (const char *p = h->value; *p;) {
				p += strspn(p, " ");
				size_t m = strcspn(p, ";");
				if (m > 0) {
					_cleanup_free_ char *c = strndup(p, m);
					if (!c || !cJSON_AddItemToArray(cookies, cJSON_CreateString(c)))
						return -ENOMEM;
				}
				p += m;
				if (*p == ';')
					p++;
			}
			continue;
		}
		if (streq(name, "content-type"))
			content_type = h->value;
		if (streq(name, "user-agent"))
			user_agent = h->value;
		int r = add_joined(headers, name, h->value);
		if (r < 0)
			return r;
	}
	if (req->query && req->query[0]) {
		cJSON_AddItemToObject(j, "queryStringParameters", params);
		int r = add_query(params, req->query);
		if (r < 0)
			return r;
	} else
		cJSON_Delete(params);

	time_t secs = (time_t)(req->time_us / 1000000);
	struct tm tm;
	char when[64];
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	gmtime_r(&secs, &tm);
	/* API Gateway's own format: "12/Mar/2020:19:03:58 +0000". */
	(void)snprintf(when, sizeof(when), "%02d/%s/%04d:%02d:%02d:%02d +0000", tm.tm_mday,
		       months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	cJSON *ctx = cJSON_AddObjectToObject(j, "requestContext");
	cJSON *http = ctx ? cJSON_AddObjectToObject(ctx, "http") : NULL;
	char proto[16];
	(void)snprintf(proto, sizeof(proto), "HTTP/1.%d", req->http_minor);
	if (!http || !cJSON_AddStringToObject(ctx, "accountId", "anonymous") ||
	    !cJSON_AddStringToObject(ctx, "apiId", "spore") ||
	    !cJSON_AddStringToObject(ctx, "domainName", req->host ?: "localhost") ||
	    !cJSON_AddStringToObject(ctx, "domainPrefix", "spore") ||
	    !cJSON_AddStringToObject(http, "method", req->method) ||
	    !cJSON_AddStringToObject(http, "path", req->path) ||
	    !cJSON_AddStringToObject(http, "protocol", proto) ||
	    !cJSON_AddStringToObject(http, "sourceIp", req->source_ip ?: "") ||
	    !cJSON_AddStringToObject(http, "userAgent", user_agent) ||
	    !cJSON_AddStringToObject(ctx, "requestId", req->request_id ?: "") ||
	    !cJSON_AddStringToObject(ctx, "routeKey", "$default") ||
	    !cJSON_AddStringToObject(ctx, "stage", "$default") ||
	    !cJSON_AddStringToObject(ctx, "time", when) ||
	    !cJSON_AddNumberToObject(ctx, "timeEpoch", (double)(req->time_us / 1000)))
		return -ENOMEM;

	bool b64 = false;
	if (req->body_len > 0) {
		b64 = !textual(content_type) ||
		      !utf8_valid((const unsigned char *)req->body, req->body_len) ||
		      memchr(req->body, 0, req->body_len);
		if (b64) {
			_cleanup_free_ char *enc = base64_encode(req->body, req->body_len);
			if (!enc || !cJSON_AddStringToObject(j, "body", enc))
				return -ENOMEM;
		} else {
			_cleanup_free_ char *txt = strndup(req->body, req->body_len);
			if (!txt || !cJSON_AddStringToObject(j, "body", txt))
				return -ENOMEM;
		}
	}
	if (!cJSON_AddBoolToObject(j, "isBase64Encoded", b64))
		return -ENOMEM;
	char *s = cJSON_PrintUnformatted(j);
	if (!s)
		return -ENOMEM;
	*ret_json = s;
	return 0;
}

/* RFC 9110 token characters. */
static bool token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || strchr("!#$%&'*+-.^_`|~", *s)))
			return false;
	return true;
}

static bool value_ok(const char *s)
{
	return !strpbrk(s, "\r\n");
}

/* A header value as the result gave it: a string, a number or a boolean. */
static int header_value(const cJSON *v, char buf[64], const char **ret)
{
	if (cJSON_IsString(v))
		*ret = v->valuestring;
	else if (cJSON_IsNumber(v)) {
		(void)snprintf(buf, 64, "%.17g", v->valuedouble);
		*ret = buf;
	} else if (cJSON_IsBool(v))
		*ret = cJSON_IsTrue(v) ? "true" : "false";
	else
		return -EINVAL;
	return 0;
}

static bool reserved_header(const char *name)
{
	static const char *const names[] = { "content-length", "connection", "transfer-encoding",
					     "keep-alive", "upgrade", "te", "trailer" };
	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (strcasecmp(name, names[i]) == 0)
			return true;
	return false;
}

int apigw_response(const char *result, size_t len, struct apigw_response *ret, char **ret_error)
{
	/* The result need not be NUL-terminated where it lies. */
	_cleanup_free_ char *copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, result, len);
	copy[len] = 0;
	_cleanup_(cJSON_Deletep) cJSON *j = json_parse_exact(copy, len);
	const cJSON *sc = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "statusCode")
					    : NULL;
	struct apigw_response r = { .status = 200 };
	if (!sc) {
		/* A plain value: the result itself is the JSON body. */
		r.content_type = strdup("application/json");
		r.extra_headers = strdup("");
		r.body = strndup(result, len);
		r.body_len = len;
		if (!r.content_type || !r.extra_headers || !r.body) {
			apigw_response_done(&r);
			return -ENOMEM;
		}
		*ret = r;
		return 0;
	}
	if (!cJSON_IsNumber(sc) || sc->valuedouble < 100 || sc->valuedouble > 599 ||
	    sc->valuedouble != (double)(int)sc->valuedouble)
		return error_set(ret_error, -EINVAL,
				 "statusCode: must be an integer between 100 and 599");
	r.status = (int)sc->valuedouble;
	struct buf extra = BUF_INIT;
	int k = 0;
	const cJSON *headers = cJSON_GetObjectItemCaseSensitive(j, "headers");
	if (headers && !cJSON_IsObject(headers) && !cJSON_IsNull(headers)) {
		k = error_set(ret_error, -EINVAL, "headers: must be an object");
		goto fail;
	}
	const cJSON *h;
	cJSON_ArrayForEach(h, headers) {
		char num[64];
		const char *v;
		if (!token(h->string)) {
			k = error_set(ret_error, -EINVAL, "headers: '%.64s' is not a valid header name",
				      h->string);
			goto fail;
		}
		if (header_value(h, num, &v) < 0 || !value_ok(v)) {
			k = error_set(ret_error, -EINVAL,
				      "headers: the value of '%.64s' must be a string without CR or LF",
				      h->string);
			goto fail;
		}
		if (reserved_header(h->string))
			continue; /* spored frames the response itself */
		if (strcasecmp(h->string, "content-type") == 0) {
			free(r.content_type);
			if (!(r.content_type = strdup(v)))
				goto oom;
			continue;
		}
		if (buf_printf(&extra, "%s: %s\r\n", h->string, v) < 0)
			goto oom;
	}
	const cJSON *cookies = cJSON_GetObjectItemCaseSensitive(j, "cookies");
	if (cookies && !cJSON_IsArray(cookies) && !cJSON_IsNull(cookies)) {
		k = error_set(ret_error, -EINVAL, "cookies: must be an array of strings");
		goto fail;
	}
	const cJSON *c;
	cJSON_ArrayForEach(c, cookies) {
		if (!cJSON_IsString(c) || !value_ok(c->valuestring)) {
			k = error_set(ret_error, -EINVAL,
				      "cookies: each must be a string without CR or LF");
			goto fail;
		}
		if (buf_printf(&extra, "Set-Cookie: %s\r\n", c->valuestring) < 0)
			goto oom;
	}
	const cJSON *body = cJSON_GetObjectItemCaseSensitive(j, "body");
	const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(j, "isBase64Encoded");
	if (body && !cJSON_IsString(body) && !cJSON_IsNull(body)) {
		k = error_set(ret_error, -EINVAL, "body: must be a string");
		goto fail;
	}
	if (cJSON_IsString(body) && cJSON_IsTrue(b64)) {
		unsigned char *dec = NULL;
		size_t n = 0;
		k = base64_decode(body->valuestring, strlen(body->valuestring), &dec, &n);
		if (k == -ENOMEM)
			goto oom;
		if (k < 0) {
			k = error_set(ret_error, -EINVAL, "body: isBase64Encoded, but not valid base64");
			goto fail;
		}
		r.body = (char *)dec;
		r.body_len = n;
	} else {
		r.body = strdup(cJSON_IsString(body) ? body->valuestring : "");
		if (!r.body)
			goto oom;
		r.body_len = strlen(r.body);
	}
	if (!r.content_type && !(r.content_type = strdup("application/json")))
		goto oom;
	r.extra_headers = buf_steal(&extra, NULL);
	if (!r.extra_headers)
		goto oom;
	*ret = r;
	return 0;
oom:
	k = -ENOMEM;
fail:
	buf_done(&extra);
	apigw_response_done(&r);
	return k;
}

void apigw_response_done(struct apigw_response *r)
{
	free(r->content_type);
	free(r->extra_headers);
	free(r->body);
	*r = (struct apigw_response){};
}
