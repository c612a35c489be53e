/* SPDX-License-Identifier: MIT */
/* spore-zygote-native: instances dlopen() the function's shared object and call its handler
 * through the ABI in <spore/spore.h>. The zygote has nothing to initialise; it still forks every
 * instance, so an instance costs a fork, not an exec. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/param.h>

#include <spore/spore.h>

#include "util/cleanup.h"
#include "zygote.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

static spore_handler_t *handler;
static const struct inst_config *config;

static int native_init_language(void)
{
	return 0;
}

/* The package's single top-level *.so, for a handler that names only the symbol. */
static int find_single_so(char **ret_file, char **ret_error)
{
	_cleanup_closedir_ DIR *d = NULL;
	_cleanup_free_ char *found = NULL;
	struct dirent *de;
	unsigned n = 0;

	d = opendir(".");
	if (!d) {
		int r = -errno;

		*ret_error =
			runtime_error_jsonf("Runtime.InvalidEntrypoint",
					    "Cannot read the code directory: %s", strerror(-r));
		return r;
	}
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (l <= 3 || !streq(de->d_name + l - 3, ".so"))
			continue;
		if (de->d_type != DT_REG && de->d_type != DT_LNK && de->d_type != DT_UNKNOWN)
			continue;
		if (n++ == 0) {
			found = strdup(de->d_name);
			if (!found)
				return -ENOMEM;
		}
	}
	if (n != 1) {
		*ret_error = runtime_error_jsonf("Runtime.InvalidEntrypoint",
						 "The package must contain exactly one *.so at its "
						 "root for a handler without "
						 "'file.so:', found %u",
						 n);
		return -ENOENT;
	}
	*ret_file = TAKE_PTR(found);
	return 0;
}

static bool path_safe(const char *p)
{
	if (!p[0] || p[0] == '/')
		return false;
	for (;;) {
		size_t l = strcspn(p, "/");

		if (l == 2 && p[0] == '.' && p[1] == '.')
			return false;
		if (!p[l])
			return true;
		p += l + 1;
	}
}

static int native_load(const struct inst_config *cfg, char **ret_error)
{
	_cleanup_free_ char *file = NULL, *path = NULL;
	const char *colon, *symbol;
	spore_init_t *init;
	void *dl;
	int r;

	colon = strrchr(cfg->handler, ':');
	if (colon) {
		file = strndup(cfg->handler, (size_t)(colon - cfg->handler));
		if (!file)
			return -ENOMEM;
		symbol = colon + 1;
		if (!path_safe(file)) {
			*ret_error =
				runtime_error_jsonf("Runtime.MalformedHandlerName",
						    "Bad handler '%s': '%s' must be a relative "
						    "path inside the package",
						    cfg->handler, file);
			return -EINVAL;
		}
	} else {
		symbol = cfg->handler;
		r = find_single_so(&file, ret_error);
		if (r < 0)
			return r;
	}
	if (!symbol[0]) {
		*ret_error = runtime_error_jsonf("Runtime.MalformedHandlerName",
						 "Bad handler '%s': no symbol", cfg->handler);
		return -EINVAL;
	}

	/* With a '/', dlopen() takes a path instead of searching the library path; cwd is the
	 * code root. */
	if (asprintf(&path, "./%s", file) < 0) {
		path = NULL;
		return -ENOMEM;
	}
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		*ret_error = runtime_error_jsonf("Runtime.ImportModuleError",
						 "Unable to load '%s': %s", file, dlerror());
		return -ENOENT;
	}
	handler = (spore_handler_t *)dlsym(dl, symbol);
	if (!handler) {
		*ret_error = runtime_error_jsonf("Runtime.HandlerNotFound",
						 "Handler '%s' missing in '%s'", symbol, file);
		return -ENOENT;
	}
	init = (spore_init_t *)dlsym(dl, "spore_init");
	if (init) {
		r = init();
		if (r != 0) {
			*ret_error = runtime_error_jsonf(
				"Runtime.InitError", "spore_init() in '%s' returned %d", file, r);
			return -EIO;
		}
	}
	/* The object stays loaded for the life of the instance. */
	config = cfg;
	return 0;
}

static int64_t remaining_ms(const struct spore_context *ctx)
{
	int64_t left = ctx->deadline_ms - runtime_now_ms();
	return left > 0 ? left : 0;
}

/* A handler's error message: a JSON error object passes, anything else is wrapped. */
static char *error_from_message(char *msg, size_t len, int code)
{
	_cleanup_(cJSON_Deletep) cJSON *j = NULL;
	const cJSON *m;

	if (!msg)
		return runtime_error_jsonf("HandlerError", "handler returned %d", code);
	j = cJSON_ParseWithLength(msg, len);
	m = cJSON_GetObjectItemCaseSensitive(j, "errorMessage");
	if (cJSON_IsObject(j) && cJSON_IsString(m)) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "errorType");
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "stackTrace");

		if (!cJSON_IsString(t) && !cJSON_AddStringToObject(j, "errorType", "HandlerError"))
			return NULL;
		if (!cJSON_IsArray(s) && !cJSON_AddArrayToObject(j, "stackTrace"))
			return NULL;
		return cJSON_PrintUnformatted(j);
	}
	return runtime_error_jsonf("HandlerError", "%.*s", (int)MIN(len, (size_t)INT32_MAX), msg);
}

/* One JSON value and nothing after it. buf must have a NUL at buf[len]. */
static bool json_valid(const char *buf, size_t len)
{
	cJSON *j;

	if (strlen(buf) != len)
		return false;
	j = cJSON_ParseWithLengthOpts(buf, len + 1, NULL, true);
	cJSON_Delete(j);
	return j != NULL;
}

static int native_invoke(const char *event, size_t event_len, const struct inst_invoke *inv,
			 char **ret_out, size_t *ret_len)
{
	struct spore_context ctx = {
		.abi_version = SPORE_ABI_VERSION,
		.function_name = config->function_name,
		.function_version = config->function_version,
		.memory_limit_in_mb = config->memory_mb,
		.aws_request_id = inv->request_id,
		.deadline_ms = inv->deadline_ms,
		.get_remaining_time_in_millis = remaining_ms,
	};
	_cleanup_free_ char *resp = NULL;
	size_t len = 0;
	char *p;
	int r;

	r = handler(event, event_len, &ctx, &resp, &len);
	if (r != 0) {
		*ret_out = error_from_message(resp, resp ? len : 0, r);
		if (!*ret_out)
			return -ENOMEM;
		*ret_len = strlen(*ret_out);
		return INVOKE_ERROR;
	}
	if (!resp) {
		*ret_out = strdup("null");
		if (!*ret_out)
			return -ENOMEM;
		*ret_len = 4;
		return INVOKE_RESULT;
	}
	/* NUL-terminate for the parser without trusting the handler to have done so. */
	p = realloc(resp, len + 1);
	if (!p)
		return -ENOMEM;
	resp = p;
	resp[len] = 0;
	if (!json_valid(resp, len)) {
		*ret_out = runtime_error_jsonf(
			"Runtime.InvalidResponse",
			"The handler's response (%zu bytes) is not valid JSON", len);
		if (!*ret_out)
			return -ENOMEM;
		*ret_len = strlen(*ret_out);
		return INVOKE_ERROR;
	}
	*ret_len = len;
	*ret_out = TAKE_PTR(resp);
	return INVOKE_RESULT;
}

static const struct runtime_ops native_ops = {
	.name = "native",
	.init_language = native_init_language,
	.load = native_load,
	.invoke = native_invoke,
};

int main(int argc, char *argv[])
{
	return zygote_main(&native_ops, argc, argv);
}
