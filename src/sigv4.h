/* SPDX-License-Identifier: MIT */
/* AWS Signature Version 4 (AWS4-HMAC-SHA256) in the Authorization header, as the AWS SDKs and
 * CLI sign requests: verification against a secret the caller looks up, and signing (tests, and
 * tools that call spore as AWS would be called). HMAC-SHA256 and SHA-256 from libcrypto. Pure:
 * no I/O, the caller supplies the clock. Presigned URLs (X-Amz-Signature in the query) and
 * SigV4a are not taken.
 *
 * The canonical request is built as AWS specifies for services other than S3:
 *   METHOD \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n PayloadHash
 * CanonicalURI: the path exactly as received (still percent-encoded, never decoded first), with
 *   empty and "." segments removed and ".." applied, then URI-encoded once more: every byte but
 *   A-Z a-z 0-9 - _ . ~ and '/' becomes %XX (so "%3A" in a Lambda path becomes "%253A").
 * CanonicalQuery: each name=value pair percent-decoded then encoded the same way (no '/' kept),
 *   sorted by name, then value; a name without '=' has an empty value.
 * CanonicalHeaders: for each signed header, in the order of the SignedHeaders list, "name:" and
 *   every value of that header, trimmed with inner runs of white space made one space, joined
 *   with ','; one line each. Host is the Host header as sent (with its port).
 * PayloadHash: X-Amz-Content-SHA256 if sent (it must then be the body's hash), else the hex
 *   SHA-256 of the body. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "util/buf.h"

#define SIGV4_KEY_ID_MAX 128
#define SIGV4_DEFAULT_MAX_SKEW_S 900 /* 15 minutes, as AWS */

struct sigv4_request {
	const char *method;
	const char *target; /* the request target as received ("/path?query", or absolute form) */
	const struct http_header *headers;
	size_t n_headers;
	const void *body;
	size_t body_len;
};

/* The parts of "AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request,
 * SignedHeaders=a;b, Signature=HEX". */
struct sigv4_auth {
	char key_id[SIGV4_KEY_ID_MAX + 1];
	char date[9];       /* YYYYMMDD */
	char region[64];
	char service[64];
	char terminator[16]; /* "aws4_request" */
	char signed_headers[1024];
	char signature[65]; /* lowercase hex */
};

/* What went wrong, each answered as AWS does (403 with x-amzn-ErrorType). */
enum sigv4_status {
	SIGV4_OK,
	SIGV4_MISSING,         /* no Authorization header: MissingAuthenticationTokenException */
	SIGV4_INCOMPLETE,      /* Authorization or X-Amz-Date malformed: IncompleteSignatureException */
	SIGV4_UNKNOWN_KEY,     /* key id not configured: UnrecognizedClientException */
	SIGV4_BAD_SIGNATURE,   /* signature, scope or body hash wrong: InvalidSignatureException */
	SIGV4_EXPIRED,         /* X-Amz-Date outside the skew window: InvalidSignatureException */
	_SIGV4_STATUS_MAX,
	_SIGV4_STATUS_INVALID = -22,
};

/* "MissingAuthenticationTokenException", "InvalidSignatureException", ... ("" for SIGV4_OK). */
const char *sigv4_status_error_type(enum sigv4_status s);

/* Returns the secret of key_id (NUL-terminated), or NULL when the key is unknown. */
typedef const char *(*sigv4_secret_fn)(void *userdata, const char *key_id);

struct sigv4_params {
	const char *region;  /* the credential scope must name this region */
	const char *service; /* and this service, e.g. "lambda" */
	int64_t now_s;       /* CLOCK_REALTIME seconds */
	uint32_t max_skew_s; /* X-Amz-Date may differ from now by this much; 0: the default */
	sigv4_secret_fn secret;
	void *userdata;
};

/* Verifies req. Returns a sigv4_status (>= 0), or -ENOMEM. With SIGV4_OK, ret_key_id (when not
 * NULL) gets the key id that signed. With any other status *ret_message (malloc'ed; when
 * ret_message is not NULL) says why, worded like AWS's own messages. */
int sigv4_verify(const struct sigv4_request *req, const struct sigv4_params *p, char **ret_message,
		 char ret_key_id[SIGV4_KEY_ID_MAX + 1]);

/* The building blocks, exported for the tests. */

/* Parses an Authorization header value. -EINVAL (with *ret_why, a static string) when it is not
 * AWS4-HMAC-SHA256 with Credential, SignedHeaders and Signature, or a part is malformed or too
 * long. */
int sigv4_parse_authorization(const char *value, struct sigv4_auth *ret, const char **ret_why);
/* Appends the canonical URI of a raw path (without '?...'). -ENOMEM. */
int sigv4_canonical_uri(const char *raw_path, size_t len, struct buf *out);
/* Appends the canonical query of a raw query string (without '?'; NULL or "" for none). -EINVAL
 * for a bad %-escape, -ENOMEM. */
int sigv4_canonical_query(const char *raw_query, struct buf *out);
/* The whole canonical request (malloc'ed). signed_headers is the ';'-separated lowercase list.
 * -ENOENT (with *ret_missing pointing into signed_headers, length *ret_missing_len) when a signed
 * header is not in the request; -EINVAL for a bad query escape or an empty header name in the
 * list; -ENOMEM. */
int sigv4_canonical_request(const struct sigv4_request *req, const char *signed_headers,
			    const char *payload_hash, char **ret, const char **ret_missing,
			    size_t *ret_missing_len);
/* The signing key: HMAC chain of "AWS4"+secret over date (YYYYMMDD), region, service,
 * "aws4_request". -EIO if libcrypto fails. */
int sigv4_signing_key(const char *secret, const char *date, const char *region,
		      const char *service, unsigned char out[32]);
/* Lowercase hex HMAC-SHA256 of "AWS4-HMAC-SHA256\n" amz_date "\n" scope "\n"
 * hex(SHA-256(canonical_request)) under key, into out[65]. -EIO, -ENOMEM. */
int sigv4_signature(const unsigned char key[32], const char *amz_date, const char *scope,
		    const char *canonical_request, char out[65]);

/* Signs req as an AWS client would: *ret_authorization (malloc'ed) is the Authorization header
 * value for the headers named in signed_headers (which must be in req, X-Amz-Date among them
 * when listed) and amz_date (YYYYMMDDTHHMMSSZ). The payload hash is X-Amz-Content-SHA256 when
 * req has it, else the body's. -EINVAL, -ENOENT (a listed header missing), -ENOMEM, -EIO. */
int sigv4_sign(const struct sigv4_request *req, const char *key_id, const char *secret,
	       const char *region, const char *service, const char *amz_date,
	       const char *signed_headers, char **ret_authorization);

/* Parses YYYYMMDDTHHMMSSZ into seconds since the epoch. -EINVAL. */
int sigv4_parse_amz_date(const char *s, int64_t *ret);
