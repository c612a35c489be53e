/* SPDX-License-Identifier: MIT */
#include "json.h"

#include <stdbool.h>
#include <stdint.h>

/* A strict RFC 8259 check, written apart from cJSON (which takes more: other control bytes as
 * whitespace, "01", "1.", "-.5", raw control characters in strings, bytes that are not UTF-8),
 * so that what spored accepts is what every runtime's JSON parser accepts too. */

struct scan {
	const unsigned char *p, *end, *start;
	unsigned depth;
};

static void ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool word(struct scan *s, const char *w)
{
	for (; *w; w++, s->p++)
		if (s->p >= s->end || *s->p != (unsigned char)*w)
			return false;
	return true;
}

static bool digit(const struct scan *s)
{
	return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

static bool number(struct scan *s)
{
	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (!digit(s))
		return false;
	if (*s->p == '0')
		s->p++;
	else
		while (digit(s))
			s->p++;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (!digit(s))
			return false;
		while (digit(s))
			s->p++;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (!digit(s))
			return false;
		while (digit(s))
			s->p++;
	}
	return true;
}

static int hex(unsigned char c)
{
	return c >= '0' && c <= '9' ? c - '0'
	       : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
							: -1;
}

/* One UTF-8 sequence at s->p whose first byte is >= 0x80: shortest form, no surrogates, at
 * most U+10FFFF. */
static bool utf8(struct scan *s)
{
	unsigned char c = *s->p;
	unsigned n;
	uint32_t cp;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 1;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3;
		cp = c & 0x07;
	} else
		return false;
	if ((size_t)(s->end - s->p) <= n)
		return false;
	for (unsigned i = 1; i <= n; i++) {
		if ((s->p[i] & 0xc0) != 0x80)
			return false;
		cp = cp << 6 | (s->p[i] & 0x3f);
	}
	if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 3 && cp < 0x10000) ||
	    cp > 0x10ffff)
		return false;
	s->p += n + 1;
	return true;
}

static bool string(struct scan *s)
{
	s->p++; /* the opening quote */
	while (s->p < s->end) {
		unsigned char c = *s->p;
		if (c == '"') {
			s->p++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			s->p++;
			if (s->p >= s->end)
				return false;
			c = *s->p++;
			if (c == 'u') {
				for (int i = 0; i < 4; i++, s->p++)
					if (s->p >= s->end || hex(*s->p) < 0)
						return false;
			} else if (!(c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' ||
				     c == 'n' || c == 'r' || c == 't'))
				return false;
		} else if (c >= 0x80) {
			if (!utf8(s))
				return false;
		} else
			s->p++;
	}
	return false;
}

static bool value(struct scan *s);

static bool container(struct scan *s, unsigned char close, bool object)
{
	if (++s->depth > JSON_MAX_DEPTH)
		return false;
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		s->depth--;
		return true;
	}
	for (;;) {
		if (object) {
			if (s->p >= s->end || *s->p != '"' || !string(s))
				return false;
			ws(s);
			if (s->p >= s->end || *s->p != ':')
				return false;
			s->p++;
		}
		if (!value(s))
			return false;
		ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			ws(s);
			continue;
		}
		if (s->p < s->end && *s->p == close) {
			s->p++;
			s->depth--;
			return true;
		}
		return false;
	}
}

static bool value(struct scan *s)
{
	ws(s);
	if (s->p >= s->end)
		return false;
	switch (*s->p) {
	case '{':
		return container(s, '}', true);
	case '[':
		return container(s, ']', false);
	case '"':
		return string(s);
	case 't':
		return word(s, "true");
	case 'f':
		return word(s, "false");
	case 'n':
		return word(s, "null");
	default:
		return number(s);
	}
}

bool json_valid(const char *data, size_t len, size_t *ret_error_offset)
{
	struct scan s = { (const unsigned char *)data, (const unsigned char *)data + len,
			  (const unsigned char *)data, 0 };
	bool ok = value(&s);
	if (ok) {
		ws(&s);
		ok = s.p == s.end;
	}
	if (!ok && ret_error_offset)
		*ret_error_offset = (size_t)(s.p - s.start) < len ? (size_t)(s.p - s.start) : len;
	return ok;
}
