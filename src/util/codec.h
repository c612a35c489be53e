/* SPDX-License-Identifier: MIT */
/* Base64 and SHA-256 through OpenSSL's libcrypto, and hex. Pure. */
#pragma once

#include <stddef.h>

/* Decodes standard base64 (whitespace ignored, padding required as usual). -EINVAL on bad
 * input. *ret is malloc'ed (NUL-terminated, not counted in *ret_len). */
int base64_decode(const char *in, size_t in_len, unsigned char **ret, size_t *ret_len);
/* Encodes without newlines; malloc'ed NUL-terminated string or NULL on OOM. */
char *base64_encode(const void *in, size_t in_len);
/* The value of hex digit c (either case), or -1. Inline: http.c uses it in programs that do not
 * link codec.c (and its libcrypto). */
static inline int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
/* Lowercase hex of len bytes into out[2 * len + 1] (NUL-terminated). */
void hex_encode(const void *in, size_t len, char *out);
/* b as a UUID string "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into out[37]. */
void uuid_format(const unsigned char b[16], char out[37]);
/* Lowercase hex SHA-256 into out[65]. */
void sha256_hex(const void *data, size_t len, char out[65]);
