/* SPDX-License-Identifier: MIT */
#pragma once

#include <cjson/cJSON.h>

#include "cleanup.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete)
#define _cleanup_json_ _cleanup_(cJSON_Deletep)

#include <string.h>

#include <stdbool.h>

/* Nesting deeper than this is refused: every runtime parses what spored accepts (Python's
 * json.loads gives up before 1000 levels, and less inside a handler). */
#define JSON_MAX_DEPTH 256

/* Strict RFC 8259 (json.c): whitespace only space, tab, CR, LF; strict numbers; no raw control
 * characters in strings; UTF-8 in shortest form without surrogates; at most JSON_MAX_DEPTH
 * levels. On false, *ret_error_offset (if given) is where it went wrong (<= len). */
bool json_valid(const char *data, size_t len, size_t *ret_error_offset);

/* Parses exactly len bytes of NUL-terminated data as one JSON value, after json_valid():
 * trailing data after the value (other than whitespace) and embedded NULs are refused. NULL
 * when invalid; *ret_error_offset (if given) then says where. */
static inline cJSON *json_parse_exact_at(const char *data, size_t len, size_t *ret_error_offset)
{
	if (!data || data[len] != 0) {
		if (ret_error_offset)
			*ret_error_offset = 0;
		return NULL;
	}
	const char *nul = memchr(data, 0, len);
	if (nul) {
		if (ret_error_offset)
			*ret_error_offset = (size_t)(nul - data);
		return NULL;
	}
	if (!json_valid(data, len, ret_error_offset))
		return NULL;
	cJSON *j = cJSON_ParseWithLengthOpts(data, len + 1, NULL, 1);
	if (!j && ret_error_offset)
		*ret_error_offset = 0;
	return j;
}

static inline cJSON *json_parse_exact(const char *data, size_t len)
{
	return json_parse_exact_at(data, len, NULL);
}
