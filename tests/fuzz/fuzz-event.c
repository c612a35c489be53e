/* SPDX-License-Identifier: MIT */
/* Fuzzes the parsing of invocation events (and the other small JSON bodies of the API): api.c
 * takes a request body when json_parse_exact() (src/util/json.h) accepts it, and passes the raw
 * bytes on to the instance, where the python3 runtime reads them with json.loads() and the native
 * runtime with cJSON again. The input is the body.
 *
 * Checks, beyond ASan/UBSan/LSan: the contract of json_parse_exact(): bodies with a NUL byte are
 * refused, and what it accepts is JSON (RFC 8259: whitespace is space, tab, CR and LF; strict
 * number syntax; no raw control characters in strings; UTF-8 text), so that no runtime refuses an
 * event spored took (json_strict() below follows what Python's json.loads() takes from bytes:
 * a leading BOM and encoded surrogates pass); an accepted body also passes the native runtime's own
 * check; a refusal's error offset, which the API turns into "near byte N", lies inside the
 * body; cJSON's printing of an accepted value parses again. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz-common.h"
#include "util/json.h"

static bool json_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* ---- a strict JSON checker (RFC 8259), independent of cJSON ---- */

struct cursor {
	const unsigned char *p, *end;
	unsigned depth, max_depth;
	bool surrogate_escape; /* a \uD800-\uDFFF escape: cJSON refuses unpaired ones */
	bool surrogate_utf8;   /* an encoded surrogate: Python passes it, spored refuses it */
};

static void skip_ws(struct cursor *c)
{
	while (c->p < c->end && json_ws((char)*c->p))
		c->p++;
}

static bool lit(struct cursor *c, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
		return false;
	c->p += n;
	return true;
}

static bool digits(struct cursor *c)
{
	const unsigned char *s = c->p;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
		c->p++;
	return c->p > s;
}

static bool number(struct cursor *c)
{
	if (c->p < c->end && *c->p == '-')
		c->p++;
	if (c->p < c->end && *c->p == '0')
		c->p++;
	else if (!(c->p < c->end && *c->p >= '1' && *c->p <= '9') || !digits(c))
		return false;
	if (c->p < c->end && *c->p == '.') {
		c->p++;
		if (!digits(c))
			return false;
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		c->p++;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (!digits(c))
			return false;
	}
	return true;
}

/* One UTF-8 sequence starting at a byte >= 0x80: shortest form, at most U+10FFFF (encoded
 * surrogates pass, as with Python's "surrogatepass"). */
static bool utf8_seq(struct cursor *c)
{
	unsigned char b = *c->p;
	size_t n;
	uint32_t cp;
	if (b >= 0xc2 && b <= 0xdf)
		n = 1, cp = b & 0x1f;
	else if (b >= 0xe0 && b <= 0xef)
		n = 2, cp = b & 0x0f;
	else if (b >= 0xf0 && b <= 0xf4)
		n = 3, cp = b & 0x07;
	else
		return false;
	if ((size_t)(c->end - c->p) <= n)
		return false;
	for (size_t i = 1; i <= n; i++) {
		if ((c->p[i] & 0xc0) != 0x80)
			return false;
		cp = cp << 6 | (c->p[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
		return false;
	if (n == 2 && cp >= 0xd800 && cp <= 0xdfff)
		c->surrogate_utf8 = true;
	c->p += n + 1;
	return true;
}

static bool string(struct cursor *c)
{
	if (!lit(c, "\""))
		return false;
	while (c->p < c->end) {
		unsigned char b = *c->p;
		if (b == '"') {
			c->p++;
			return true;
		}
		if (b < 0x20)
			return false;
		if (b == '\\') {
			c->p++;
			if (c->p >= c->end)
				return false;
			unsigned char e = *c->p++;
			if (e == 'u') {
				if (c->end - c->p >= 1 && (*c->p == 'd' || *c->p == 'D'))
					c->surrogate_escape = true;
				for (int i = 0; i < 4; i++, c->p++)
					if (c->p >= c->end || !*c->p ||
					    !strchr("0123456789abcdefABCDEF", *c->p))
						return false;
			} else if (!strchr("\"\\/bfnrt", e) || !e)
				return false;
		} else if (b >= 0x80) {
			if (!utf8_seq(c))
				return false;
		} else
			c->p++;
	}
	return false;
}

static bool value(struct cursor *c);

static bool members(struct cursor *c, char close, bool object)
{
	c->p++;
	skip_ws(c);
	if (c->p < c->end && *c->p == close) {
		c->p++;
		return true;
	}
	for (;;) {
		skip_ws(c);
		if (object) {
			if (!string(c))
				return false;
			skip_ws(c);
			if (!lit(c, ":"))
				return false;
		}
		if (!value(c))
			return false;
		skip_ws(c);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		if (c->p < c->end && *c->p == close) {
			c->p++;
			return true;
		}
		return false;
	}
}

static bool value(struct cursor *c)
{
	skip_ws(c);
	if (c->p >= c->end)
		return false;
	bool ok;
	switch (*c->p) {
	case '{':
	case '[':
		if (++c->depth > 4096)
			return false;
		if (c->depth > c->max_depth)
			c->max_depth = c->depth;
		ok = members(c, *c->p == '{' ? '}' : ']', *c->p == '{');
		c->depth--;
		return ok;
	case '"':
		return string(c);
	case 't':
		return lit(c, "true");
	case 'f':
		return lit(c, "false");
	case 'n':
		return lit(c, "null");
	default:
		return number(c);
	}
}

/* Also says whether spored may refuse the value all the same: nesting deeper than
 * JSON_MAX_DEPTH (util/json.h; cJSON's own limit is 1000), \uD8xx-\uDFxx escapes, which cJSON
 * refuses unless paired, and what spored's json_valid() is stricter about than Python: a leading
 * byte order mark and UTF-8-encoded surrogates. */
static bool json_strict(const char *data, size_t len, bool *ret_cjson_may_refuse)
{
	struct cursor c = { (const unsigned char *)data, (const unsigned char *)data + len };
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
		c.p += 3;
	bool ok = value(&c);
	if (ok) {
		skip_ws(&c);
		ok = c.p == c.end;
	}
	*ret_cjson_may_refuse = c.max_depth > JSON_MAX_DEPTH || c.surrogate_escape ||
				c.surrogate_utf8 || (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = fuzz_strndup(data, size);
	bool has_nul = memchr(data, 0, size) != NULL;
	bool may_refuse;
	bool strict = json_strict(body, size, &may_refuse);

	size_t at = SIZE_MAX;
	cJSON *j = json_parse_exact_at(body, size, &at);
	FUZZ_LOG("json_parse_exact: %s", j ? "accepted" : "refused");
	if (!j) {
		/* What route_invoke() reports as "near byte N": inside the body. */
		FUZZ_CHECK(at <= size, "error offset %zu outside the body (%zu bytes)", at, size);
		/* A valid event must not get a 400. */
		FUZZ_CHECK(!strict || has_nul || may_refuse, "JSON refused: '%s'", body);
		free(body);
		return 0;
	}

	FUZZ_CHECK(!has_nul, "a body with a NUL byte accepted");

	/* The native runtime checks the event again with strlen() and cJSON: same verdict. */
	FUZZ_CHECK(strlen(body) == size, "length");
	cJSON *again = cJSON_ParseWithLengthOpts(body, size + 1, NULL, 1);
	FUZZ_CHECK(again != NULL, "the runtime's parse refuses what spored accepted");

	/* JSON that every runtime takes. */
	FUZZ_CHECK(strict, "accepted, but not JSON (RFC 8259): '%s'", body);

	/* Printing what was accepted gives JSON that is accepted too, and both parses print the
	 * same (cJSON_Compare() cannot be used: inf != inf there). */
	char *printed = cJSON_PrintUnformatted(j);
	char *printed2 = cJSON_PrintUnformatted(again);
	FUZZ_CHECK(printed && printed2, "print failed");
	FUZZ_CHECK(strcmp(printed, printed2) == 0, "two parses of the same body differ");
	cJSON *re = json_parse_exact(printed, strlen(printed));
	FUZZ_CHECK(re != NULL, "printed value does not parse: %s", printed);
	cJSON_Delete(re);
	free(printed2);
	free(printed);
	cJSON_Delete(again);

	cJSON_Delete(j);
	free(body);
	return 0;
}
