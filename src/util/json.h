/* SPDX-License-Identifier: MIT */
#pragma once

#include <cjson/cJSON.h>

#include "cleanup.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete)
#define _cleanup_json_ _cleanup_(cJSON_Deletep)
