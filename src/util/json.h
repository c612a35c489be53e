/* SPDX-License-Identifier: MIT */
#pragma once

#include <cjson/cJSON.h>

#include "cleanup.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete)
#define _cleanup_json_ _cleanup_(cJSON_Deletep)

#include <string.h>

/* Parses exactly len bytes of NUL-terminated data as one JSON value: trailing data after the
 * value (other than whitespace) and embedded NULs are refused. NULL when invalid. */
static inline cJSON *json_parse_exact(const char *data, size_t len)
{
	if (!data || data[len] != 0 || memchr(data, 0, len))
		return NULL;
	return cJSON_ParseWithLengthOpts(data, len + 1, NULL, 1);
}
