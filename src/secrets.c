/* SPDX-License-Identifier: MIT */
#include "secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/codec.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/json.h"

/* The secrets of the functions seen so far, cached: the log path asks for every line. */
struct cached {
	char *fn;
	cJSON *obj;
};

struct secrets {
	int dir_fd;
	struct cached *v;
	size_t n, cap;
};

int secrets_open(const char *state_dir, struct secrets **ret)
{
	_cleanup_free_ char *dir = NULL;
	if (asprintf(&dir, "%s/secrets", state_dir) < 0)
		return -ENOMEM;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	/* Whatever made it before: only spored reads it. */
	if (chmod(dir, 0700) < 0)
		return -errno;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	struct secrets *s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	s->dir_fd = fd;
	*ret = s;
	return 0;
}

struct secrets *secrets_free(struct secrets *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].fn);
		cJSON_Delete(s->v[i].obj);
	}
	free(s->v);
	safe_close(s->dir_fd);
	free(s);
	return NULL;
}

static char *file_of(const char *function)
{
	char *p = NULL;
	return asprintf(&p, "%s.json", function) < 0 ? NULL : p;
}

/* The cached object of the function (loaded from disk the first time); NULL on OOM. */
static cJSON *lookup(struct secrets *s, const char *function)
{
	for (size_t i = 0; i < s->n; i++)
		if (streq(s->v[i].fn, function))
			return s->v[i].obj;
	_cleanup_free_ char *name = file_of(function);
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	cJSON *obj = NULL;
	if (name && read_file(s->dir_fd, name, SECRETS_MAX_BYTES * 2, &data, &len) >= 0)
		obj = json_parse_exact(data, len);
	if (!cJSON_IsObject(obj)) {
		cJSON_Delete(obj);
		obj = cJSON_CreateObject();
	}
	if (!obj)
		return NULL;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct cached *nv = reallocarray(s->v, cap, sizeof(*nv));
		if (!nv) {
			cJSON_Delete(obj);
			return NULL;
		}
		s->v = nv;
		s->cap = cap;
	}
	char *fn = strdup(function);
	if (!fn) {
		cJSON_Delete(obj);
		return NULL;
	}
	s->v[s->n++] = (struct cached){ fn, obj };
	return obj;
}

static bool key_valid(const char *k)
{
	if (!k || !((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || *k == '_'))
		return false;
	for (const char *p = k; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return strncmp(k, "AWS_", 4) != 0 && strncmp(k, "SPORE_", 6) != 0 && strlen(k) <= 128;
}

int secrets_validate(const cJSON *j, char **ret_error)
{
	if (!cJSON_IsObject(j))
		return error_set(ret_error, -EINVAL,
				 "secrets: must be an object of NAME: \"value\" (or null to remove)");
	size_t total = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, j) {
		if (!key_valid(it->string))
			return error_set(ret_error, -EINVAL,
					 "secrets: '%.64s' is not a valid name ([A-Za-z_][A-Za-z0-9_]*, "
					 "not AWS_* or SPORE_*)", it->string);
		if (!cJSON_IsString(it) && !cJSON_IsNull(it))
			return error_set(ret_error, -EINVAL, "secrets: %s: must be a string or null",
					 it->string);
		total += strlen(it->string) + (cJSON_IsString(it) ? strlen(it->valuestring) : 0);
	}
	if (total > SECRETS_MAX_BYTES)
		return error_set(ret_error, -EINVAL, "secrets: more than %d bytes in all",
				 SECRETS_MAX_BYTES);
	return 0;
}

int secrets_update(struct secrets *s, const char *function, const cJSON *j, char **ret_error)
{
	if (!cJSON_IsObject(j))
		return error_set(ret_error, -EINVAL,
				 "secrets: must be an object of NAME: \"value\" (or null to remove)");
	cJSON *cur = lookup(s, function);
	if (!cur)
		return -ENOMEM;
	_cleanup_json_ cJSON *n = cJSON_Duplicate(cur, true);
	if (!n)
		return -ENOMEM;
	const cJSON *it;
	cJSON_ArrayForEach(it, j) {
		if (!key_valid(it->string))
			return error_set(ret_error, -EINVAL,
					 "secrets: '%.64s' is not a valid name ([A-Za-z_][A-Za-z0-9_]*, "
					 "not AWS_* or SPORE_*)", it->string);
		cJSON_DeleteItemFromObjectCaseSensitive(n, it->string);
		if (cJSON_IsNull(it))
			continue;
		if (!cJSON_IsString(it))
			return error_set(ret_error, -EINVAL, "secrets: %s: must be a string",
					 it->string);
		if (!cJSON_AddStringToObject(n, it->string, it->valuestring))
			return -ENOMEM;
	}
	_cleanup_free_ char *text = cJSON_PrintUnformatted(n);
	if (!text)
		return -ENOMEM;
	if (strlen(text) > SECRETS_MAX_BYTES)
		return error_set(ret_error, -EINVAL, "secrets: more than %d bytes in all",
				 SECRETS_MAX_BYTES);
	_cleanup_free_ char *name = file_of(function);
	if (!name)
		return -ENOMEM;
	int r = cJSON_GetArraySize(n) == 0
			? (unlinkat(s->dir_fd, name, 0) < 0 && errno != ENOENT ? -errno : 0)
			: write_file_atomic(s->dir_fd, name, text, strlen(text), 0600);
	if (r < 0)
		return r;
	for (size_t i = 0; i < s->n; i++)
		if (streq(s->v[i].fn, function)) {
			cJSON_Delete(s->v[i].obj);
			s->v[i].obj = TAKE_PTR(n);
			break;
		}
	return 0;
}

cJSON *secrets_get(struct secrets *s, const char *function)
{
	cJSON *cur = lookup(s, function);
	return cur ? cJSON_Duplicate(cur, true) : NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

cJSON *secrets_names(struct secrets *s, const char *function)
{
	cJSON *cur = lookup(s, function);
	if (!cur)
		return NULL;
	size_t n = (size_t)cJSON_GetArraySize(cur), k = 0;
	_cleanup_free_ const char **names = calloc(n + 1, sizeof(char *));
	if (!names)
		return NULL;
	const cJSON *it;
	cJSON_ArrayForEach(it, cur)
		names[k++] = it->string;
	qsort(names, k, sizeof(char *), cmp_str);
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < k; i++)
		if (!cJSON_AddItemToArray(a, cJSON_CreateString(names[i]))) {
			cJSON_Delete(a);
			return NULL;
		}
	return a;
}

int secrets_route_token(struct secrets *s, const char *function, bool create, char out[65])
{
	_cleanup_free_ char *name = NULL, *data = NULL;
	size_t len = 0;
	if (asprintf(&name, "%s.token", function) < 0)
		return -ENOMEM;
	int r = read_file(s->dir_fd, name, 128, &data, &len);
	if (r >= 0 && len == 64) {
		memcpy(out, data, 65);
		return 0;
	}
	if (r < 0 && r != -ENOENT)
		return r;
	if (!create)
		return -ENOENT;
	unsigned char b[32];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -EIO;
	char hex[65];
	hex_encode(b, sizeof(b), hex);
	r = write_file_atomic(s->dir_fd, name, hex, 64, 0600);
	if (r < 0)
		return r;
	memcpy(out, hex, 65);
	return 0;
}

void secrets_remove(struct secrets *s, const char *function)
{
	_cleanup_free_ char *name = file_of(function), *tok = NULL;
	if (name)
		(void)unlinkat(s->dir_fd, name, 0);
	if (asprintf(&tok, "%s.token", function) >= 0)
		(void)unlinkat(s->dir_fd, tok, 0);
	for (size_t i = 0; i < s->n; i++)
		if (streq(s->v[i].fn, function)) {
			free(s->v[i].fn);
			cJSON_Delete(s->v[i].obj);
			s->v[i] = s->v[--s->n];
			break;
		}
}

char *secrets_mask(struct secrets *s, const char *function, const char *line, size_t len,
		   size_t *ret_len)
{
	cJSON *cur = s ? lookup(s, function) : NULL;
	if (!cur || !cur->child)
		return NULL;
	char *out = NULL;
	size_t out_len = len;
	const cJSON *it;
	cJSON_ArrayForEach(it, cur) {
		const char *v = it->valuestring;
		size_t vl = v ? strlen(v) : 0;
		if (vl < SECRETS_MIN_MASK)
			continue;
		const char *src = out ?: line;
		size_t sl = out ? out_len : len;
		if (!memmem(src, sl, v, vl))
			continue;
		/* "***" is never longer than the value: the result fits in sl bytes. */
		char *dst = malloc(sl + 1), *d = dst;
		if (!dst)
			break;
		for (size_t i = 0; i < sl;) {
			if (i + vl <= sl && memcmp(src + i, v, vl) == 0) {
				memcpy(d, "***", 3);
				d += 3;
				i += vl;
			} else
				*d++ = src[i++];
		}
		*d = 0;
		free(out);
		out = dst;
		out_len = (size_t)(d - dst);
	}
	if (out)
		*ret_len = out_len;
	return out;
}
