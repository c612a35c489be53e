/* SPDX-License-Identifier: MIT */
/* Function secrets: name/value pairs kept apart from the function's configuration, in
 * STATE/secrets/NAME.json (mode 0600 in a 0700 directory: readable by spored only), handed to
 * the function's instances as environment variables (over the env of the same name), never
 * answered by the API (GET shows their names only) and masked ("***") in the function's log.
 * Supervisor only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#define SECRETS_MAX_BYTES 4096 /* names and values together, per function */
#define SECRETS_MIN_MASK 4     /* values shorter than this are not masked in logs */

struct secrets;

int secrets_open(const char *state_dir, struct secrets **ret);
struct secrets *secrets_free(struct secrets *s);

/* Applies j, an object of NAME: "value" (set) or NAME: null (remove), onto the function's
 * secrets, durably. Names as env keys ([A-Za-z_][A-Za-z0-9_]*, not AWS_* or SPORE_*).
 * -EINVAL with *ret_error naming the key; -ENOSPC/-EDQUOT. */
int secrets_update(struct secrets *s, const char *function, const cJSON *j, char **ret_error);
/* Checks what secrets_update() would refuse, writing nothing. */
int secrets_validate(const cJSON *j, char **ret_error);
/* The function's secrets as an object (caller frees), {} if none; NULL on OOM. */
cJSON *secrets_get(struct secrets *s, const char *function);
/* ["NAME", ...] sorted; NULL on OOM. */
cJSON *secrets_names(struct secrets *s, const char *function);
/* The bearer token of the function's HTTP routes ("auth": "token"), 64 hex digits, in
 * STATE/secrets/NAME.token (0600); made (random) when create and there is none. -ENOENT. */
int secrets_route_token(struct secrets *s, const char *function, bool create, char out[65]);
/* The function is gone: its files are removed. */
void secrets_remove(struct secrets *s, const char *function);

/* Replaces every occurrence of the function's secret values (at least SECRETS_MIN_MASK bytes)
 * in line[0..len) with "***". Returns a malloc'ed copy when something was replaced (its length
 * in *ret_len), else NULL (use the line as it is). */
char *secrets_mask(struct secrets *s, const char *function, const char *line, size_t len,
		   size_t *ret_len);
