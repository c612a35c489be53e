/* SPDX-License-Identifier: MIT */
/* Read /proc/1/environ (PID 1 of the namespace is the instance itself) and the environment of host pids (event.paths): nothing of the host's environment may come back. */
#include "hostile.h"

static const char *const default_paths[] = { "/proc/1/environ", "/proc/self/environ", "/proc/1/cmdline", NULL };

/* The environment this process was exec'd with (the zygote's), read from our own memory between
 * env_start and env_end of /proc/self/stat: PID 1 is ourselves, so this is what /proc/1/environ
 * would show if it were readable. */
static cJSON *own_initial_environ(void)
{
	static const char what[] = "memory:env_start..env_end";
	char stat[4096], *p;
	unsigned long long start = 0, end = 0;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, stat, sizeof(stat) - 1) : -1;
	cJSON *r;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return h_result(what, n < 0 ? errno : EIO);
	stat[n] = 0;
	p = strrchr(stat, ')');
	/* after ')': field 3 onwards; env_start and env_end are fields 50 and 51 */
	for (int field = 2; p && field < 50; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p, " %llu %llu", &start, &end) != 2 || !start || end <= start)
		return h_result(what, EACCES);
	if (end - start > 65535)
		end = start + 65535;
	char *copy = malloc(end - start + 1);
	if (!copy)
		return h_result(what, ENOMEM);
	memcpy(copy, (const void *)(uintptr_t)start, end - start);
	for (size_t i = 0; i < end - start; i++)
		if (copy[i] == 0)
			copy[i] = '\n';
	copy[end - start] = 0;
	r = h_result(what, 0);
	cJSON_AddStringToObject(r, "data", copy);
	free(copy);
	return r;
}

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	cJSON *ev = h_event(event, event_len), *out = cJSON_CreateObject();
	const cJSON *paths = cJSON_GetObjectItemCaseSensitive(ev, "paths"), *p;
	cJSON *results = cJSON_AddArrayToObject(out, "results");

	(void)ctx;
	if (cJSON_IsArray(paths)) {
		cJSON_ArrayForEach(p, paths)
			if (cJSON_IsString(p))
				cJSON_AddItemToArray(results, h_try_read(p->valuestring));
	} else {
		for (size_t i = 0; default_paths[i]; i++)
			cJSON_AddItemToArray(results, h_try_read(default_paths[i]));
	}
	cJSON_AddItemToArray(results, own_initial_environ());
	cJSON_Delete(ev);
	return h_respond(out, ret_response, ret_len);
}
