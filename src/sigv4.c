/* SPDX-License-Identifier: MIT */
#include "sigv4.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/cleanup.h"
#include "util/codec.h"

#define ALGORITHM "AWS4-HMAC-SHA256"
#define TERMINATOR "aws4_request"
#define UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

const char *sigv4_status_error_type(enum sigv4_status s)
{
	switch (s) {
	case SIGV4_OK:
		return "";
	case SIGV4_MISSING:
		return "MissingAuthenticationTokenException";
	case SIGV4_INCOMPLETE:
		return "IncompleteSignatureException";
	case SIGV4_UNKNOWN_KEY:
		return "UnrecognizedClientException";
	case SIGV4_BAD_SIGNATURE:
	case SIGV4_EXPIRED:
		return "InvalidSignatureException";
	default:
		return "InvalidSignatureException";
	}
}

/* --- encoding ------------------------------------------------------------------------------ */

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

static int uri_encode(struct buf *out, const char *s, size_t n, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	int r = buf_reserve(out, n * 3);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/'))
			out->data[out->len++] = (char)c;
		else {
			out->data[out->len++] = '%';
			out->data[out->len++] = hex[c >> 4];
			out->data[out->len++] = hex[c & 15];
		}
	}
	return 0;
}

/* Percent-decodes s[0..n) into a new buffer; '+' stays '+'. -EINVAL for a bad escape. */
static int pct_decode(const char *s, size_t n, struct buf *out)
{
	int r = buf_reserve(out, n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			out->data[out->len++] = s[i];
			continue;
		}
		if (n - i < 3)
			return -EINVAL;
		int a = hex_digit(s[i + 1]), b = hex_digit(s[i + 2]);
		if (a < 0 || b < 0)
			return -EINVAL;
		out->data[out->len++] = (char)(a << 4 | b);
		i += 2;
	}
	return 0;
}

/* --- canonical URI ------------------------------------------------------------------------- */

int sigv4_canonical_uri(const char *raw_path, size_t len, struct buf *out)
{
	/* Segments without the empty and "." ones, ".." taking the previous one away (RFC 3986
	 * 5.2.4, with runs of '/' made one, as AWS's signers do). */
	size_t n_seg = 0;
	for (size_t i = 0; i < len; i++)
		n_seg += raw_path[i] == '/';
	_cleanup_free_ size_t *start = calloc(n_seg + 1, sizeof(size_t));
	_cleanup_free_ size_t *slen = calloc(n_seg + 1, sizeof(size_t));
	if (!start || !slen)
		return -ENOMEM;
	size_t kept = 0;
	for (size_t i = 0; i <= len;) {
		size_t j = i;
		while (j < len && raw_path[j] != '/')
			j++;
		size_t l = j - i;
		if (l == 0 || (l == 1 && raw_path[i] == '.')) {
			/* skipped */
		} else if (l == 2 && raw_path[i] == '.' && raw_path[i + 1] == '.') {
			if (kept > 0)
				kept--;
		} else {
			start[kept] = i;
			slen[kept] = l;
			kept++;
		}
		i = j + 1;
	}
	int r = buf_append(out, "/", 1);
	for (size_t k = 0; r >= 0 && k < kept; k++) {
		if (k > 0)
			r = buf_append(out, "/", 1);
		if (r >= 0)
			r = uri_encode(out, raw_path + start[k], slen[k], true);
	}
	if (r >= 0 && kept > 0 && len > 0 && raw_path[len - 1] == '/')
		r = buf_append(out, "/", 1);
	return r;
}

/* --- canonical query ----------------------------------------------------------------------- */

struct qpair {
	char *key, *value; /* encoded, NUL-terminated */
};

static int cmp_qpair(const void *a, const void *b)
{
	const struct qpair *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : strcmp(x->value, y->value);
}

/* Decodes s[0..n) and encodes it again as the canonical form (malloc'ed). */
static int requote(const char *s, size_t n, char **ret)
{
	struct buf dec = BUF_INIT, enc = BUF_INIT;
	int r = pct_decode(s, n, &dec);
	if (r >= 0)
		r = uri_encode(&enc, dec.data ? dec.data : "", dec.len, false);
	if (r >= 0 && !buf_cstr(&enc))
		r = -ENOMEM;
	buf_done(&dec);
	if (r < 0) {
		buf_done(&enc);
		return r;
	}
	*ret = buf_steal(&enc, NULL);
	return *ret ? 0 : -ENOMEM;
}

int sigv4_canonical_query(const char *raw_query, struct buf *out)
{
	if (!raw_query || !*raw_query)
		return 0;
	size_t n = 1;
	for (const char *p = raw_query; *p; p++)
		n += *p == '&';
	struct qpair *pairs = calloc(n, sizeof(*pairs));
	if (!pairs)
		return -ENOMEM;
	size_t count = 0;
	int r = 0;
	for (const char *p = raw_query; r >= 0;) {
		size_t l = strcspn(p, "&");
		if (l > 0) {
			const char *eq = memchr(p, '=', l);
			size_t kl = eq ? (size_t)(eq - p) : l;
			r = requote(p, kl, &pairs[count].key);
			if (r >= 0) {
				r = eq ? requote(eq + 1, l - kl - 1, &pairs[count].value)
				       : ((pairs[count].value = strdup("")) ? 0 : -ENOMEM);
				count++;
			} else if (pairs[count].key)
				count++;
		}
		if (!p[l])
			break;
		p += l + 1;
	}
	if (r >= 0) {
		qsort(pairs, count, sizeof(*pairs), cmp_qpair);
		for (size_t i = 0; r >= 0 && i < count; i++)
			r = buf_printf(out, "%s%s=%s", i ? "&" : "", pairs[i].key, pairs[i].value);
	}
	for (size_t i = 0; i < count; i++) {
		free(pairs[i].key);
		free(pairs[i].value);
	}
	free(pairs);
	return r;
}

/* --- canonical headers --------------------------------------------------------------------- */

static bool ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Appends value trimmed, with inner runs of white space as one space. */
static int append_trimall(struct buf *out, const char *v)
{
	int r = buf_reserve(out, strlen(v));
	if (r < 0)
		return r;
	bool pending_space = false, any = false;
	for (const char *p = v; *p; p++) {
		if (ws(*p)) {
			pending_space = any;
			continue;
		}
		if (pending_space)
			out->data[out->len++] = ' ';
		pending_space = false;
		any = true;
		out->data[out->len++] = *p;
	}
	return 0;
}

/* Appends "name:v1,v2\n" for one signed header. -ENOENT when the request has none. */
static int append_header(struct buf *out, const struct sigv4_request *req, const char *name,
			 size_t nl)
{
	bool found = false;
	int r = buf_append(out, name, nl);
	if (r >= 0)
		r = buf_append(out, ":", 1);
	for (size_t i = 0; r >= 0 && i < req->n_headers; i++) {
		const char *h = req->headers[i].name;
		if (strlen(h) != nl || strncasecmp(h, name, nl) != 0)
			continue;
		if (found)
			r = buf_append(out, ",", 1);
		if (r >= 0)
			r = append_trimall(out, req->headers[i].value ? req->headers[i].value : "");
		found = true;
	}
	if (r >= 0)
		r = buf_append(out, "\n", 1);
	if (r < 0)
		return r;
	return found ? 0 : -ENOENT;
}

static const char *find_header(const struct sigv4_request *req, const char *name)
{
	for (size_t i = 0; i < req->n_headers; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

/* The path and query of a request target (origin or absolute form). */
static void split_target(const char *target, const char **ret_path, size_t *ret_path_len,
			 const char **ret_query)
{
	const char *p = target;
	if (*p != '/') {
		const char *s = strstr(p, "://");
		if (s) {
			p = s + 3;
			p += strcspn(p, "/?");
		}
	}
	size_t pl = strcspn(p, "?#");
	*ret_path = p;
	*ret_path_len = pl;
	*ret_query = p[pl] == '?' ? p + pl + 1 : NULL;
}

int sigv4_canonical_request(const struct sigv4_request *req, const char *signed_headers,
			    const char *payload_hash, char **ret, const char **ret_missing,
			    size_t *ret_missing_len)
{
	const char *path, *query;
	size_t pl;
	split_target(req->target, &path, &pl, &query);
	_cleanup_free_ char *q = NULL;
	if (query) {
		size_t ql = strcspn(query, "#");
		q = strndup(query, ql);
		if (!q)
			return -ENOMEM;
	}
	struct buf out = BUF_INIT;
	int r = buf_append_str(&out, req->method);
	if (r >= 0)
		r = buf_append(&out, "\n", 1);
	if (r >= 0)
		r = sigv4_canonical_uri(path, pl, &out);
	if (r >= 0)
		r = buf_append(&out, "\n", 1);
	if (r >= 0)
		r = sigv4_canonical_query(q, &out);
	if (r >= 0)
		r = buf_append(&out, "\n", 1);
	for (const char *p = signed_headers; r >= 0;) {
		size_t l = strcspn(p, ";");
		if (l == 0) {
			r = -EINVAL;
			break;
		}
		r = append_header(&out, req, p, l);
		if (r == -ENOENT) {
			if (ret_missing)
				*ret_missing = p;
			if (ret_missing_len)
				*ret_missing_len = l;
		}
		if (!p[l])
			break;
		p += l + 1;
	}
	if (r >= 0)
		r = buf_printf(&out, "\n%s\n%s", signed_headers, payload_hash);
	if (r >= 0 && !buf_cstr(&out))
		r = -ENOMEM;
	if (r < 0) {
		buf_done(&out);
		return r;
	}
	*ret = buf_steal(&out, NULL);
	return *ret ? 0 : -ENOMEM;
}

/* --- crypto -------------------------------------------------------------------------------- */

static int hmac(const void *key, size_t key_len, const void *msg, size_t len,
		unsigned char out[32])
{
	unsigned int n = 0;
	if (key_len > INT32_MAX ||
	    !HMAC(EVP_sha256(), key, (int)key_len, msg, len, out, &n) || n != 32)
		return -EIO;
	return 0;
}

int sigv4_signing_key(const char *secret, const char *date, const char *region,
		      const char *service, unsigned char out[32])
{
	_cleanup_free_ char *k = NULL;
	if (asprintf(&k, "AWS4%s", secret) < 0)
		return -ENOMEM;
	unsigned char a[32], b[32];
	int r = hmac(k, strlen(k), date, strlen(date), a);
	if (r >= 0)
		r = hmac(a, 32, region, strlen(region), b);
	if (r >= 0)
		r = hmac(b, 32, service, strlen(service), a);
	if (r >= 0)
		r = hmac(a, 32, TERMINATOR, strlen(TERMINATOR), out);
	OPENSSL_cleanse(k, strlen(k));
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	return r;
}

int sigv4_signature(const unsigned char key[32], const char *amz_date, const char *scope,
		    const char *canonical_request, char out[65])
{
	char h[65];
	sha256_hex(canonical_request, strlen(canonical_request), h);
	_cleanup_free_ char *sts = NULL;
	if (asprintf(&sts, ALGORITHM "\n%s\n%s\n%s", amz_date, scope, h) < 0)
		return -ENOMEM;
	unsigned char mac[32];
	int r = hmac(key, 32, sts, strlen(sts), mac);
	if (r < 0)
		return r;
	hex_encode(mac, 32, out);
	return 0;
}

/* --- Authorization ------------------------------------------------------------------------- */

static int copy_part(char *dst, size_t size, const char *s, size_t n)
{
	if (n == 0 || n >= size)
		return -EINVAL;
	memcpy(dst, s, n);
	dst[n] = 0;
	return 0;
}

#define WHY(msg)                                                                                   \
	do {                                                                                       \
		if (ret_why)                                                                       \
			*ret_why = msg;                                                            \
		return -EINVAL;                                                                    \
	} while (0)

static int parse_credential(const char *s, size_t n, struct sigv4_auth *a, const char **ret_why)
{
	/* KEY/DATE/REGION/SERVICE/aws4_request; the key id itself has no '/'. */
	const char *end = s + n, *p = s;
	char *fields[5] = { a->key_id, a->date, a->region, a->service, a->terminator };
	size_t sizes[5] = { sizeof(a->key_id), sizeof(a->date), sizeof(a->region),
			    sizeof(a->service), sizeof(a->terminator) };
	for (size_t i = 0; i < 5; i++) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		const char *fe = i < 4 ? slash : end;
		if (!fe || (i == 4 && slash))
			WHY("Credential must have exactly 5 slash-delimited elements, e.g. "
			    "keyid/date/region/service/term");
		if (copy_part(fields[i], sizes[i], p, (size_t)(fe - p)) < 0)
			WHY("a Credential element is empty or too long");
		p = fe + 1;
	}
	if (strlen(a->date) != 8 || strspn(a->date, "0123456789") != 8)
		WHY("the Credential date must be YYYYMMDD");
	return 0;
}

int sigv4_parse_authorization(const char *value, struct sigv4_auth *ret, const char **ret_why)
{
	struct sigv4_auth a = {};
	size_t al = strlen(ALGORITHM);
	if (!value || strncmp(value, ALGORITHM, al) != 0 || (value[al] != ' ' && value[al] != '\t'))
		WHY("only the AWS4-HMAC-SHA256 algorithm is supported");
	bool cred = false, sh = false, sig = false;
	for (const char *p = value + al; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		size_t l = strcspn(p, ",");
		size_t tl = l;
		while (tl > 0 && (p[tl - 1] == ' ' || p[tl - 1] == '\t'))
			tl--;
		const char *eq = memchr(p, '=', tl);
		if (!eq)
			WHY("Authorization header elements must be 'name=value'");
		size_t nl = (size_t)(eq - p), vl = tl - nl - 1;
		const char *v = eq + 1;
		if (nl == 10 && strncmp(p, "Credential", 10) == 0) {
			if (parse_credential(v, vl, &a, ret_why) < 0)
				return -EINVAL;
			cred = true;
		} else if (nl == 13 && strncmp(p, "SignedHeaders", 13) == 0) {
			if (copy_part(a.signed_headers, sizeof(a.signed_headers), v, vl) < 0)
				WHY("SignedHeaders is empty or too long");
			for (const char *c = a.signed_headers; *c; c++)
				if ((*c >= 'A' && *c <= 'Z') || ws(*c) || *c == ':')
					WHY("SignedHeaders must be lowercase header names "
					    "separated by ';'");
			sh = true;
		} else if (nl == 9 && strncmp(p, "Signature", 9) == 0) {
			if (vl != 64 || copy_part(a.signature, sizeof(a.signature), v, vl) < 0)
				WHY("Signature must be 64 hex digits");
			for (const char *c = a.signature; *c; c++)
				if (hex_digit(*c) < 0)
					WHY("Signature must be 64 hex digits");
			for (char *c = a.signature; *c; c++)
				if (*c >= 'A' && *c <= 'F')
					*c = (char)(*c - 'A' + 'a');
			sig = true;
		} else
			WHY("unknown element in the Authorization header");
		p += l;
	}
	if (!cred)
		WHY("Authorization header requires 'Credential' parameter");
	if (!sh)
		WHY("Authorization header requires 'SignedHeaders' parameter");
	if (!sig)
		WHY("Authorization header requires 'Signature' parameter");
	*ret = a;
	return 0;
}

#undef WHY

int sigv4_parse_amz_date(const char *s, int64_t *ret)
{
	if (!s || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z' || strspn(s, "0123456789") != 8 ||
	    strspn(s + 9, "0123456789") != 6)
		return -EINVAL;
	int v[6];
	static const int at[6] = { 0, 4, 6, 9, 11, 13 }, len[6] = { 4, 2, 2, 2, 2, 2 };
	for (size_t i = 0; i < 6; i++) {
		v[i] = 0;
		for (int k = 0; k < len[i]; k++)
			v[i] = v[i] * 10 + (s[at[i] + k] - '0');
	}
	if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 ||
	    v[4] > 59 || v[5] > 60)
		return -EINVAL;
	struct tm tm = { .tm_year = v[0] - 1900, .tm_mon = v[1] - 1, .tm_mday = v[2],
			 .tm_hour = v[3], .tm_min = v[4], .tm_sec = v[5] };
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*ret = (int64_t)t;
	return 0;
}

/* --- verify and sign ----------------------------------------------------------------------- */

static int fail(char **ret_message, int status, const char *fmt, ...) _printf_(3, 4);
static int fail(char **ret_message, int status, const char *fmt, ...)
{
	if (!ret_message)
		return status;
	va_list ap;
	va_start(ap, fmt);
	int k = vasprintf(ret_message, fmt, ap);
	va_end(ap);
	if (k < 0) {
		*ret_message = NULL;
		return -ENOMEM;
	}
	return status;
}

static void format_amz_date(int64_t t, char out[17])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
		strcpy(out, "?");
}

/* The payload hash to sign: X-Amz-Content-SHA256 when sent (checked against the body), else the
 * body's. 0, or a status with *ret_message. */
static int payload_hash(const struct sigv4_request *req, char out[65], char **ret_message)
{
	sha256_hex(req->body ? req->body : "", req->body ? req->body_len : 0, out);
	const char *h = find_header(req, "x-amz-content-sha256");
	if (!h)
		return 0;
	if (streq(h, UNSIGNED_PAYLOAD) || startswith(h, "STREAMING-"))
		return fail(ret_message, SIGV4_BAD_SIGNATURE,
			    "X-Amz-Content-SHA256 '%.40s' is not accepted here: the payload must be "
			    "signed",
			    h);
	if (strcasecmp(h, out) != 0)
		return fail(ret_message, SIGV4_BAD_SIGNATURE,
			    "The provided 'x-amz-content-sha256' header does not match what was "
			    "computed.");
	return 0;
}

int sigv4_verify(const struct sigv4_request *req, const struct sigv4_params *p, char **ret_message,
		 char ret_key_id[SIGV4_KEY_ID_MAX + 1])
{
	if (ret_message)
		*ret_message = NULL;
	const char *authz = find_header(req, "authorization");
	if (!authz)
		return fail(ret_message, SIGV4_MISSING, "Missing Authentication Token");
	struct sigv4_auth a;
	const char *why = NULL;
	if (sigv4_parse_authorization(authz, &a, &why) < 0)
		return fail(ret_message, SIGV4_INCOMPLETE, "%s", why);
	const char *amz_date = find_header(req, "x-amz-date");
	int64_t t;
	if (!amz_date)
		return fail(ret_message, SIGV4_INCOMPLETE,
			    "Authorization header requires existence of a 'X-Amz-Date' header.");
	if (sigv4_parse_amz_date(amz_date, &t) < 0)
		return fail(ret_message, SIGV4_INCOMPLETE,
			    "X-Amz-Date '%.32s' must be in the form YYYYMMDDTHHMMSSZ", amz_date);
	if (strncmp(amz_date, a.date, 8) != 0)
		return fail(ret_message, SIGV4_BAD_SIGNATURE,
			    "Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
			    "of date from HTTP: '%s' != '%.8s', from '%s'.",
			    a.date, amz_date, amz_date);
	if (!streq(a.service, p->service))
		return fail(ret_message, SIGV4_BAD_SIGNATURE,
			    "Credential should be scoped to correct service: '%s'.", p->service);
	if (!streq(a.region, p->region))
		return fail(ret_message, SIGV4_BAD_SIGNATURE,
			    "Credential should be scoped to a valid region (this endpoint is '%s', "
			    "not '%s').",
			    p->region, a.region);
	if (!streq(a.terminator, TERMINATOR))
		return fail(ret_message, SIGV4_BAD_SIGNATURE,
			    "Credential should be scoped with a valid terminator: 'aws4_request', "
			    "not '%s'.",
			    a.terminator);
	bool has_host = false;
	for (const char *h = a.signed_headers; *h;) {
		size_t l = strcspn(h, ";");
		if (l == 4 && strncmp(h, "host", 4) == 0)
			has_host = true;
		h += l + (h[l] == ';');
	}
	if (!has_host)
		return fail(ret_message, SIGV4_BAD_SIGNATURE,
			    "'Host' or ':authority' must be a 'SignedHeader' in the AWS "
			    "Authorization.");
	uint32_t skew = p->max_skew_s ? p->max_skew_s : SIGV4_DEFAULT_MAX_SKEW_S;
	if (t < p->now_s - (int64_t)skew || t > p->now_s + (int64_t)skew) {
		char now[17], lim[17];
		format_amz_date(p->now_s, now);
		bool early = t < p->now_s;
		format_amz_date(early ? p->now_s - skew : p->now_s + skew, lim);
		return fail(ret_message, SIGV4_EXPIRED,
			    "Signature %s: %s is now %s than %s (%s %c %u min.)",
			    early ? "expired" : "not yet current", amz_date,
			    early ? "earlier" : "later", lim, now, early ? '-' : '+', skew / 60);
	}
	const char *secret = p->secret ? p->secret(p->userdata, a.key_id) : NULL;
	if (!secret)
		return fail(ret_message, SIGV4_UNKNOWN_KEY,
			    "The security token included in the request is invalid.");

	char ph[65];
	int r = payload_hash(req, ph, ret_message);
	if (r != 0)
		return r;
	const char *sent_hash = find_header(req, "x-amz-content-sha256");
	_cleanup_free_ char *creq = NULL;
	const char *missing = NULL;
	size_t missing_len = 0;
	r = sigv4_canonical_request(req, a.signed_headers, sent_hash ? sent_hash : ph, &creq,
				    &missing, &missing_len);
	if (r == -ENOENT)
		return fail(ret_message, SIGV4_BAD_SIGNATURE,
			    "The request signature we calculated does not match the signature you "
			    "provided: signed header '%.*s' is not in the request.",
			    (int)(missing_len > 64 ? 64 : missing_len), missing);
	if (r == -EINVAL)
		return fail(ret_message, SIGV4_BAD_SIGNATURE,
			    "The request signature we calculated does not match the signature you "
			    "provided: the query string or SignedHeaders is malformed.");
	if (r < 0)
		return r;
	unsigned char key[32];
	r = sigv4_signing_key(secret, a.date, a.region, a.service, key);
	char scope[256], sig[65];
	if (r >= 0) {
		snprintf(scope, sizeof(scope), "%s/%s/%s/%s", a.date, a.region, a.service,
			 TERMINATOR);
		r = sigv4_signature(key, amz_date, scope, creq, sig);
	}
	OPENSSL_cleanse(key, sizeof(key));
	if (r < 0)
		return r == -ENOMEM ? r : fail(ret_message, SIGV4_BAD_SIGNATURE, "cannot compute "
					       "the signature");
	if (CRYPTO_memcmp(sig, a.signature, 64) != 0)
		return fail(ret_message, SIGV4_BAD_SIGNATURE,
			    "The request signature we calculated does not match the signature you "
			    "provided. Check your AWS Secret Access Key and signing method. Consult "
			    "the service documentation for details.");
	if (ret_key_id)
		memcpy(ret_key_id, a.key_id, strlen(a.key_id) + 1);
	return SIGV4_OK;
}

int sigv4_sign(const struct sigv4_request *req, const char *key_id, const char *secret,
	       const char *region, const char *service, const char *amz_date,
	       const char *signed_headers, char **ret_authorization)
{
	int64_t t;
	if (sigv4_parse_amz_date(amz_date, &t) < 0 || !*signed_headers)
		return -EINVAL;
	char ph[65];
	sha256_hex(req->body ? req->body : "", req->body ? req->body_len : 0, ph);
	const char *sent = find_header(req, "x-amz-content-sha256");
	_cleanup_free_ char *creq = NULL;
	int r = sigv4_canonical_request(req, signed_headers, sent ? sent : ph, &creq, NULL, NULL);
	if (r < 0)
		return r;
	char date[9], scope[256], sig[65];
	memcpy(date, amz_date, 8);
	date[8] = 0;
	unsigned char key[32];
	r = sigv4_signing_key(secret, date, region, service, key);
	if (r >= 0) {
		snprintf(scope, sizeof(scope), "%s/%s/%s/%s", date, region, service, TERMINATOR);
		r = sigv4_signature(key, amz_date, scope, creq, sig);
	}
	OPENSSL_cleanse(key, sizeof(key));
	if (r < 0)
		return r;
	if (asprintf(ret_authorization,
		     ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s", key_id, scope,
		     signed_headers, sig) < 0)
		return -ENOMEM;
	return 0;
}
