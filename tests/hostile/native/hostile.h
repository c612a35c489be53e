/* SPDX-License-Identifier: MIT */
/* What the native hostile functions share: reading the event, building the JSON answer, and
 * trying one thing (open, read, write, connect) and describing what happened.
 *
 * Every attack exports one handler, "handler" (ABI: <spore/spore.h>), and answers 200 with a JSON
 * object: {"ok": bool, "errno": N, "error": "strerror"} for a single try, or {"results": [...]}
 * of such objects (each with "what") for several. The integration test
 * (tests/integration/test_hostile.py) reads those fields; the python3 functions in
 * ../python3/ answer the same shapes. */
#pragma once

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spore/spore.h>

SPORE_EXPORT spore_handler_t handler;

#define H_UNUSED __attribute__((unused))

static H_UNUSED cJSON *h_event(const char *event, size_t len)
{
	cJSON *ev = cJSON_ParseWithLength(event, len);

	return ev ? ev : cJSON_CreateNull();
}

static H_UNUSED const char *h_str(const cJSON *ev, const char *key, const char *def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, key);

	return cJSON_IsString(v) ? v->valuestring : def;
}

static H_UNUSED double h_num(const cJSON *ev, const char *key, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, key);

	return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* True inside spore's sandbox: PID 1 of our own pid namespace, not root. The attacks that would
 * hurt the host if run unconfined (kill(-1), the fork bomb) refuse to run otherwise. */
static H_UNUSED bool h_sandboxed(void)
{
	return getpid() == 1 && getuid() != 0 && geteuid() != 0;
}

/* {"what": what, "ok": err == 0, "errno": err, "error": strerror(err)}; what may be NULL. */
static H_UNUSED cJSON *h_result(const char *what, int err)
{
	cJSON *r = cJSON_CreateObject();

	if (what)
		cJSON_AddStringToObject(r, "what", what);
	cJSON_AddBoolToObject(r, "ok", err == 0);
	cJSON_AddNumberToObject(r, "errno", err);
	cJSON_AddStringToObject(r, "error", err ? strerror(err) : "");
	return r;
}

/* Serialises j (taking it) into the handler's answer. */
static H_UNUSED int h_respond(cJSON *j, char **ret_response, size_t *ret_len)
{
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;

	cJSON_Delete(j);
	if (!s)
		return 1;
	*ret_response = s;
	*ret_len = strlen(s);
	return 0;
}

/* Opens path read-only and reads up to 64 KiB (a directory: lists up to 64 names). The result
 * carries "data" (what was read, as text; NUL bytes become '\n') when it worked. */
static H_UNUSED cJSON *h_try_read(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char buf[65536];
	ssize_t n;
	struct stat st;
	cJSON *r;

	if (fd < 0)
		return h_result(path, errno);
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		DIR *d = fdopendir(fd);
		struct dirent *de;
		size_t used = 0;

		if (!d) {
			int e = errno;

			close(fd);
			return h_result(path, e);
		}
		buf[0] = 0;
		/* 64 names of at most 256 bytes each fit in buf */
		for (int i = 0; i < 64 && (de = readdir(d)); i++)
			used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s\n", de->d_name);
		closedir(d);
		r = h_result(path, 0);
		cJSON_AddStringToObject(r, "data", buf);
		return r;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		int e = errno;

		close(fd);
		return h_result(path, e);
	}
	close(fd);
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == 0)
			buf[i] = '\n';
	buf[n] = 0;
	r = h_result(path, 0);
	cJSON_AddStringToObject(r, "data", buf);
	return r;
}

/* Creates path (O_CREAT|O_EXCL, then one write). */
static H_UNUSED cJSON *h_try_write(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	int e = 0;

	if (fd < 0)
		return h_result(path, errno);
	if (write(fd, "hostile\n", 8) != 8)
		e = errno ? errno : EIO;
	close(fd);
	return h_result(path, e);
}

/* connect() of a fresh SOCK_STREAM socket of the given family to addr (blocking, with a short
 * send/receive timeout, which on Linux also bounds a TCP connect). */
static H_UNUSED int h_connect(int family, const struct sockaddr *addr, socklen_t len)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = 2 };
	int e = 0;

	if (fd < 0)
		return errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, addr, len) < 0)
		e = errno;
	close(fd);
	return e;
}

/* An abstract unix address for name ("\0name"); returns its length. */
static H_UNUSED socklen_t h_abstract_addr(const char *name, struct sockaddr_un *ret)
{
	size_t n = strlen(name);

	memset(ret, 0, sizeof(*ret));
	ret->sun_family = AF_UNIX;
	if (n > sizeof(ret->sun_path) - 1)
		n = sizeof(ret->sun_path) - 1;
	memcpy(ret->sun_path + 1, name, n);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

/* The common shape of the path attacks: try fn on every string of event.paths (or on defaults,
 * NULL-terminated, when the event has none) and answer {"results": [...]}. */
static H_UNUSED int h_each_path(const char *event, size_t event_len, const char *const *defaults,
				cJSON *(*fn)(const char *path), char **ret_response,
				size_t *ret_len)
{
	cJSON *ev = h_event(event, event_len), *out = cJSON_CreateObject();
	const cJSON *paths = cJSON_GetObjectItemCaseSensitive(ev, "paths"), *p;
	cJSON *results = cJSON_AddArrayToObject(out, "results");

	if (cJSON_IsArray(paths)) {
		cJSON_ArrayForEach(p, paths)
			if (cJSON_IsString(p))
				cJSON_AddItemToArray(results, fn(p->valuestring));
	} else {
		for (size_t i = 0; defaults[i]; i++)
			cJSON_AddItemToArray(results, fn(defaults[i]));
	}
	cJSON_Delete(ev);
	return h_respond(out, ret_response, ret_len);
}
