/* SPDX-License-Identifier: MIT */
/* Fuzzes function manifest validation (src/manifest.c) as the API gets it: a PUT body parsed
 * with json_parse_exact() and handed to manifest_from_json().
 *
 * Checks, beyond ASan/UBSan/LSan: a refusal is -EINVAL with a one-line message and leaves *ret
 * alone; an accepted manifest keeps every documented bound (runtime, handler shape, ranges, env
 * names and size); it survives manifest_copy() and the trip through manifest_to_json(), printing
 * and parsing again (what the registry stores as function.json and reads back) unchanged. A
 * "code" string goes through base64_decode() as route_put() does, and what it decodes to must
 * come back unchanged from base64_encode() and base64_decode(). The raw input is also checked
 * against function_name_valid(). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz-common.h"
#include "manifest.h"
#include "util/codec.h"
#include "util/json.h"

/* [a-z0-9][a-z0-9_-]{0,63}, written out differently from manifest.c. */
static bool name_valid_ref(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64 || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789") == 0)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static bool ident(const char *s)
{
	static const char first[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
	return *s && strchr(first, *s) &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789") ==
		       strlen(s);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool manifest_equal(const struct manifest *a, const struct manifest *b)
{
	if (!str_eq(a->runtime, b->runtime) || !str_eq(a->handler, b->handler) ||
	    a->memory_mb != b->memory_mb || a->timeout_ms != b->timeout_ms ||
	    a->tmp_mb != b->tmp_mb || a->pids_max != b->pids_max ||
	    a->cpu_millis != b->cpu_millis || a->n_env != b->n_env)
		return false;
	for (size_t i = 0; i < a->n_env; i++)
		if (!str_eq(a->env_keys[i], b->env_keys[i]) ||
		    !str_eq(a->env_values[i], b->env_values[i]))
			return false;
	return true;
}

static void check_valid(const struct manifest *m)
{
	FUZZ_CHECK(manifest_runtime_known(m->runtime), "runtime '%s'", m->runtime);
	/* provided: the handler is optional (bootstrap's _HANDLER), "" when absent */
	FUZZ_CHECK(m->handler && (*m->handler || strcmp(m->runtime, "provided") == 0) &&
			   strlen(m->handler) <= 255,
		   "handler");
	/* No runtime takes white space, a backslash or control bytes */
	for (const char *p = m->handler; *p; p++)
		FUZZ_CHECK((unsigned char)*p > ' ' && *p != 0x7f &&
				   (*p != '\\' || strcmp(m->runtime, "provided") == 0),
			   "%s handler '%s'", m->runtime, m->handler);
	if (strcmp(m->runtime, "python3") == 0)
		FUZZ_CHECK(strchr(m->handler, '.') && !strchr(m->handler, '/') &&
				   !strchr(m->handler, ':'),
			   "python3 handler '%s'", m->handler);
	else if (strcmp(m->runtime, "native") == 0)
		FUZZ_CHECK(!strchr(m->handler, '/'), "native handler '%s'", m->handler);
	else if (strcmp(m->runtime, "nodejs") == 0 || strcmp(m->runtime, "exec") == 0) {
		/* a path inside the package: relative, no empty, "." or ".." component */
		FUZZ_CHECK(m->handler[0] != '/' && !strstr(m->handler, "//") &&
				   strncmp(m->handler, "../", 3) != 0 && !strstr(m->handler, "/../") &&
				   strncmp(m->handler, "./", 2) != 0 && !strstr(m->handler, "/./") &&
				   !ends_with(m->handler, "/..") && !ends_with(m->handler, "/.") &&
				   !ends_with(m->handler, "/") && strcmp(m->handler, "..") != 0 &&
				   strcmp(m->handler, ".") != 0,
			   "%s handler '%s'", m->runtime, m->handler);
		if (strcmp(m->runtime, "nodejs") == 0)
			FUZZ_CHECK(strchr(m->handler, '.'), "nodejs handler '%s'", m->handler);
	}
	FUZZ_CHECK(m->memory_mb >= MANIFEST_MEMORY_MIN && m->memory_mb <= MANIFEST_MEMORY_MAX,
		   "memory_mb %u", m->memory_mb);
	FUZZ_CHECK(m->timeout_ms >= MANIFEST_TIMEOUT_MIN && m->timeout_ms <= MANIFEST_TIMEOUT_MAX,
		   "timeout_ms %u", m->timeout_ms);
	FUZZ_CHECK(m->tmp_mb >= MANIFEST_TMP_MIN && m->tmp_mb <= MANIFEST_TMP_MAX, "tmp_mb %u",
		   m->tmp_mb);
	FUZZ_CHECK(m->pids_max >= MANIFEST_PIDS_MIN && m->pids_max <= MANIFEST_PIDS_MAX,
		   "pids_max %u", m->pids_max);
	FUZZ_CHECK(m->cpu_millis == 0 ||
			   (m->cpu_millis >= MANIFEST_CPU_MIN && m->cpu_millis <= MANIFEST_CPU_MAX),
		   "cpu_millis %u", m->cpu_millis);
	size_t total = 0;
	for (size_t i = 0; i < m->n_env; i++) {
		const char *k = m->env_keys[i], *v = m->env_values[i];
		FUZZ_CHECK(k && v, "env %zu NULL", i);
		FUZZ_CHECK(ident(k), "env name '%s'", k);
		FUZZ_CHECK(strncmp(k, "AWS_", 4) != 0 && strncmp(k, "SPORE_", 6) != 0,
			   "reserved env name '%s'", k);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(m->env_keys[j], k) != 0, "env '%s' twice", k);
		total += strlen(k) + 1 + strlen(v) + 1;
	}
	FUZZ_CHECK(total <= MANIFEST_ENV_MAX_BYTES, "env of %zu bytes", total);
}

/* manifest_to_json(), printed and parsed back as the registry does. */
static void check_round_trip(const struct manifest *m)
{
	cJSON *j = manifest_to_json(m);
	FUZZ_CHECK(j != NULL, "manifest_to_json failed");
	char *text = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	FUZZ_CHECK(text != NULL, "print failed");

	cJSON *j2 = json_parse_exact(text, strlen(text));
	FUZZ_CHECK(j2 != NULL, "own output does not parse: %s", text);
	struct manifest m2 = { 0 };
	char *err = NULL;
	int r = manifest_from_json(j2, &m2, &err);
	FUZZ_CHECK(r == 0, "own output refused (%d, %s): %s", r, err ? err : "-", text);
	FUZZ_CHECK(manifest_equal(m, &m2), "round trip changed the manifest: %s", text);
	manifest_done(&m2);
	cJSON_Delete(j2);
	free(text);
}

/* route_put(): "code" is the archive, base64. */
static void check_code(const cJSON *j)
{
	const cJSON *code = cJSON_GetObjectItem(j, "code");
	if (!cJSON_IsString(code))
		return;
	const char *s = code->valuestring;
	unsigned char *bytes = NULL;
	size_t n = 0;
	int r = base64_decode(s, strlen(s), &bytes, &n);
	FUZZ_CHECK(r == 0 || r == -EINVAL, "base64_decode: %d", r);
	if (r < 0)
		return;
	FUZZ_CHECK(bytes && bytes[n] == 0 && n <= strlen(s) / 4 * 3, "decoded %zu bytes", n);
	char *enc = base64_encode(bytes, n);
	FUZZ_CHECK(enc != NULL, "base64_encode failed");
	unsigned char *back = NULL;
	size_t m = 0;
	r = base64_decode(enc, strlen(enc), &back, &m);
	FUZZ_CHECK(r == 0 && m == n && memcmp(back, bytes, n) == 0,
		   "base64 round trip of %zu bytes: %d, %zu bytes", n, r, m);
	free(back);
	free(enc);
	free(bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size);
	FUZZ_CHECK(function_name_valid(s) == name_valid_ref(s), "function_name_valid('%s')", s);

	cJSON *j = json_parse_exact(s, size);
	if (!j) {
		free(s);
		return 0;
	}

	check_code(j);

	/* Untouched on failure: a sentinel. */
	struct manifest m = { .memory_mb = 0xdead, .n_env = 7 };
	char *err = NULL;
	int r = manifest_from_json(j, &m, &err);
	FUZZ_LOG("manifest_from_json: %d %s", r, err ? err : "");
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL, "manifest_from_json: %d", r);
		FUZZ_CHECK(err && *err && !strchr(err, '\n') && strlen(err) < 512,
			   "bad error message '%s'", err ? err : "(null)");
		FUZZ_CHECK(m.memory_mb == 0xdead && m.n_env == 7 && !m.runtime && !m.handler,
			   "*ret written on failure");
		free(err);
	} else {
		FUZZ_CHECK(r == 0, "manifest_from_json: %d", r);
		FUZZ_CHECK(err == NULL, "error set on success: %s", err);
		check_valid(&m);
		check_round_trip(&m);

		struct manifest c = { 0 };
		FUZZ_CHECK(manifest_copy(&m, &c) == 0, "manifest_copy failed");
		FUZZ_CHECK(manifest_equal(&m, &c), "manifest_copy differs");
		manifest_done(&c);
		manifest_done(&m);
		FUZZ_CHECK(!m.runtime && !m.env_keys && m.n_env == 0, "manifest_done left data");
	}
	cJSON_Delete(j);
	free(s);
	return 0;
}
