/* SPDX-License-Identifier: MIT */
#include "codec.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cleanup.h"

int base64_decode(const char *in, size_t in_len, unsigned char **ret, size_t *ret_len)
{
	/* Strip whitespace first: EVP_DecodeBlock does not skip it in the middle. */
	_cleanup_free_ char *clean = malloc(in_len + 1);
	if (!clean)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < in_len; i++) {
		char c = in[i];
		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		clean[n++] = c;
	}
	if (n % 4 != 0)
		return -EINVAL;
	_cleanup_free_ unsigned char *out = malloc(n / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	if (n == 0) {
		out[0] = 0;
		*ret = TAKE_PTR(out);
		*ret_len = 0;
		return 0;
	}
	if (n > INT32_MAX)
		return -E2BIG;
	int k = EVP_DecodeBlock(out, (const unsigned char *)clean, (int)n);
	if (k < 0)
		return -EINVAL;
	size_t len = (size_t)k;
	/* EVP_DecodeBlock counts padding as zero bytes. */
	if (clean[n - 1] == '=')
		len--;
	if (clean[n - 2] == '=')
		len--;
	out[len] = 0;
	*ret = TAKE_PTR(out);
	*ret_len = len;
	return 0;
}

char *base64_encode(const void *in, size_t in_len)
{
	if (in_len > (size_t)INT32_MAX / 2)
		return NULL;
	char *out = malloc((in_len + 2) / 3 * 4 + 1);
	if (!out)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, in, (int)in_len);
	return out;
}

/* By hand, not snprintf("%02x"): request ids are made per invocation, and printf's machinery
 * was some 5% of spored's CPU per request. */
void hex_encode(const void *in, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *b = in;
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * len] = 0;
}

void uuid_format(const unsigned char b[16], char out[37])
{
	/* 8-4-4-4-12 */
	hex_encode(b, 4, out);
	out[8] = '-';
	hex_encode(b + 4, 2, out + 9);
	out[13] = '-';
	hex_encode(b + 6, 2, out + 14);
	out[18] = '-';
	hex_encode(b + 8, 2, out + 19);
	out[23] = '-';
	hex_encode(b + 10, 6, out + 24);
}

void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, sizeof(md), out);
}
