/* SPDX-License-Identifier: MIT */
/* sporectl: the command line client of spored's HTTP API (docs/API.md, docs/SPORECTL.md).
 * Exit status: 0 success, 1 failure (spored answered with an error, could not be reached, a
 * local file could not be read), 2 usage error. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "spore-config.h"
#include "sporectl-client.h"
#include "sporectl-pack.h"
#include "sporectl-top.h"
#include "sporectl-util.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/codec.h"
#include "util/fileio.h"

#define EXIT_USAGE 2

/* spored refuses larger deploy bodies with 413; say so before sending them. */
#define DEPLOY_BODY_MAX (64u * 1024 * 1024)
/* Largest event read from a file or stdin; spored's own limit (6 MiB) gives a 413 above it. */
#define EVENT_MAX (64u * 1024 * 1024)
#define LOGS_TAIL_MAX 10000

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete)

/* Options that only some commands take. */
enum {
	OPTF_DEPLOY = 1 << 0, /* --runtime --handler --memory --timeout --env */
	OPTF_FOLLOW = 1 << 1,
	OPTF_TAIL = 1 << 2,
	_OPTF_COUNT = 3,
};

struct ctl {
	struct client client;
	bool json;
	bool verbose;

	unsigned used;                      /* OPTF_* given */
	const char *used_name[_OPTF_COUNT]; /* how each was spelled first, for messages */

	const char *runtime;
	const char *handler;
	uint32_t memory_mb;  /* 0: not given */
	uint32_t timeout_ms; /* 0: not given */
	cJSON *env;          /* --env K=V, in order; NULL if none */

	bool follow;
	int64_t tail; /* -1: not given */
};

struct command {
	const char *name;
	int (*run)(struct ctl *ctl, char **args, size_t n_args);
	size_t min_args, max_args;
	unsigned options; /* OPTF_* allowed */
};

/* o's member k, or NULL (also when o is not an object). */
static const cJSON *field(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("sporectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'sporectl --help' for more information.\n", stderr);
	return EXIT_USAGE;
}

static int fail(const char *fmt, ...) _printf_(1, 2);
static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("sporectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAILURE;
}

static int oom(void)
{
	return fail("out of memory");
}

static void help(void)
{
	printf("Usage: sporectl [OPTIONS] COMMAND [ARGS]\n"
	       "\n"
	       "Deploy, invoke and inspect spore functions through spored's API.\n"
	       "\n"
	       "Commands:\n"
	       "  deploy NAME PATH [--runtime R] [--handler H] [--memory MB] [--timeout DUR]\n"
	       "                   [--env K=V]...\n"
	       "                          Deploy PATH (a directory, a .zip/.tar.gz/.tgz archive or\n"
	       "                          a .so file) as NAME's next version and make it live\n"
	       "  invoke NAME [JSON|@FILE|-]\n"
	       "                          Invoke NAME with an event (the argument, FILE, or stdin;\n"
	       "                          none means null) and print the result\n"
	       "  ls                      List functions\n"
	       "  info NAME               Show NAME's configuration, versions and instances\n"
	       "  versions NAME           List NAME's versions\n"
	       "  rollback NAME [VERSION] Make VERSION (default: the one below the live one) live\n"
	       "  rm NAME                 Delete NAME with all its versions and instances\n"
	       "  logs NAME [-f] [--tail N]\n"
	       "                          Print NAME's log lines\n"
	       "  runtimes                List runtimes and their zygotes\n"
	       "  top [NAME...]           Live per-function figures (requests/s, errors,\n"
	       "                          instances, CPU, memory, latency), every second\n"
	       "\n"
	       "Options:\n"
	       "      --socket PATH       API unix socket (default: $SPORE_SOCKET or\n"
	       "                          " SPORE_DEFAULT_API_SOCKET ")\n"
	       "      --url URL           Talk to spored at URL (http://HOST:PORT) instead\n"
	       "      --token TOKEN       Bearer token (default: $SPORE_TOKEN)\n"
	       "      --json              Print spored's JSON answers as they are\n"
	       "  -v, --verbose           Print X-Spore-* response headers to stderr\n"
	       "  -h, --help              Show this help\n"
	       "  -V, --version           Show the version\n"
	       "\n"
	       "deploy:\n"
	       "      --runtime R         python3 or native\n"
	       "      --handler H         module.function (python3) or symbol (native)\n"
	       "      --memory MB         Memory limit in MiB\n"
	       "      --timeout DUR       30s, 500ms, 2m, 1h, or plain milliseconds\n"
	       "      --env K=V           Set an environment variable (repeatable)\n"
	       "  A directory's spore.json may hold runtime, handler, memory_mb, timeout_ms,\n"
	       "  cpu_millis and env; flags override it.\n"
	       "\n"
	       "logs:\n"
	       "  -f, --follow            Keep printing new lines until interrupted\n"
	       "  -n, --tail N            Start with the last N lines (spored's default: 100)\n"
	       "\n"
	       "Exit status: 0 success, 1 failure (an error answer from spored, spored not\n"
	       "reachable, a file not readable), 2 usage error.\n");
}

/* Prints the error answer of spored: "sporectl: 404 not_found: message" on stderr (plus the
 * stack trace of a function_error), and the raw body on stdout with --json. */
static int server_error(const struct ctl *ctl, struct client_response *resp)
{
	_cleanup_(cJSON_Deletep) cJSON *j = NULL;
	const cJSON *error, *message, *trace;
	const char *body = buf_cstr(&resp->body);

	if (ctl->json && resp->body.len > 0) {
		fputs(body, stdout);
		if (body[resp->body.len - 1] != '\n')
			fputc('\n', stdout);
	}

	j = cJSON_ParseWithLength(body, resp->body.len);
	error = field(j, "error");
	message = field(j, "message");
	if (!cJSON_IsString(error)) {
		/* Not spored's error format (a proxy?): show the start of what came. */
		size_t n = strcspn(body, "\r\n");
		if (n > 200)
			n = 200;
		if (n == 0)
			return fail("%ld (empty answer)", resp->status);
		return fail("%ld: %.*s", resp->status, (int)n, body);
	}
	fprintf(stderr, "sporectl: %ld %s: %s\n", resp->status, error->valuestring,
		cJSON_IsString(message) ? message->valuestring : "(no message)");

	trace = field(j, "stackTrace");
	if (cJSON_IsString(trace) && *trace->valuestring) {
		fputs(trace->valuestring, stderr);
		if (trace->valuestring[strlen(trace->valuestring) - 1] != '\n')
			fputc('\n', stderr);
	} else if (cJSON_IsArray(trace)) {
		const cJSON *line;

		cJSON_ArrayForEach(line, trace) {
			size_t l;

			if (!cJSON_IsString(line))
				continue;
			l = strlen(line->valuestring);
			fputs(line->valuestring, stderr);
			if (l == 0 || line->valuestring[l - 1] != '\n')
				fputc('\n', stderr);
		}
	}
	return EXIT_FAILURE;
}

/* Runs one request. Returns 0 with *resp filled when spored answered 2xx; otherwise prints why
 * and returns the exit status. */
static int request(const struct ctl *ctl, const char *method, const char *path, const void *body,
		   size_t body_len, line_cb_t on_line, void *userdata, struct client_response *resp)
{
	_cleanup_free_ char *error = NULL;
	int r;

	r = client_request(&ctl->client, method, path, body, body_len, on_line, userdata, resp,
			   &error);
	if (r == -ENOMEM)
		return oom();
	if (r < 0) {
		if (!ctl->client.url && (r == -ENOENT || r == -ECONNREFUSED))
			return fail("%s (is spored running? --socket or $SPORE_SOCKET names another "
				    "socket)",
				    error);
		if (!ctl->client.url && r == -EACCES)
			return fail("%s (the API socket is for root or its group)", error);
		return fail("%s", error);
	}
	if (ctl->verbose && resp->headers.len > 0)
		fputs(buf_cstr(&resp->headers), stderr);
	if (resp->status < 200 || resp->status >= 300)
		return server_error(ctl, resp);
	return 0;
}

/* Prints a body as is, ending it with a newline. */
static void print_body(struct client_response *resp)
{
	if (resp->body.len == 0)
		return;
	fwrite(resp->body.data, 1, resp->body.len, stdout);
	if (resp->body.data[resp->body.len - 1] != '\n')
		fputc('\n', stdout);
}

/* Parses a 2xx body that must be JSON; prints why not and returns NULL otherwise. */
static cJSON *parse_answer(struct client_response *resp)
{
	cJSON *j = cJSON_ParseWithLength(resp->body.data ?: "", resp->body.len);

	if (!j)
		(void)fail("spored's answer is not valid JSON");
	return j;
}

static int check_name(const char *name)
{
	if (!fn_name_valid(name))
		return usage_error("invalid function name '%s' (expected [a-z0-9][a-z0-9_-]{0,63})",
				   name);
	return 0;
}

static char *cell_memory(const cJSON *item)
{
	char *s = NULL;

	if (!cJSON_IsNumber(item))
		return json_cell(item);
	if (asprintf(&s, "%.0fMB", cJSON_GetNumberValue(item)) < 0)
		return NULL;
	return s;
}

static char *cell_timeout(const cJSON *item)
{
	char b[32];
	double d;

	if (!cJSON_IsNumber(item))
		return json_cell(item);
	d = cJSON_GetNumberValue(item);
	if (d < 0 || d > (double)UINT64_MAX || d != (double)(uint64_t)d)
		return json_cell(item);
	format_duration_ms((uint64_t)d, b);
	return strdup(b);
}

static int table_add_owned(struct table *t, char *s)
{
	int r;

	if (!s)
		return -ENOMEM;
	r = table_add(t, s);
	free(s);
	return r;
}

static int print_table(struct table *t)
{
	int r = table_print(t, stdout);

	if (r == -ENOMEM)
		return oom();
	if (r < 0)
		return fail("cannot write output: %s", strerror(-r));
	return 0;
}

/* ---- deploy ---------------------------------------------------------------------------- */

static int read_defaults(int dir_fd, const char *dir, struct deploy_defaults *ret)
{
	_cleanup_free_ char *data = NULL, *error = NULL;
	size_t len;
	int r;

	r = read_file(dir_fd, "spore.json", 1024 * 1024, &data, &len);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return fail("cannot read '%s/spore.json': %s", dir, strerror(-r));
	r = deploy_defaults_parse(data, len, ret, &error);
	if (r == -ENOMEM)
		return oom();
	if (r < 0)
		return fail("%s/spore.json: %s", dir, error);
	return 0;
}

static int build_package(const char *path, struct deploy_defaults *defaults, struct buf *pkg)
{
	_cleanup_free_ char *error = NULL;
	enum pack_kind kind;
	int r;

	r = pack_classify(path, &kind);
	if (r == _PACK_KIND_INVALID)
		return usage_error("'%s' is not a directory, a .zip, .tar.gz or .tgz archive, or a .so "
				   "file",
				   path);
	if (r < 0)
		return fail("cannot access '%s': %s", path, strerror(-r));

	switch (kind) {
	case PACK_DIRECTORY: {
		_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0)
			return fail("cannot open '%s': %m", path);
		r = read_defaults(fd, path, defaults);
		if (r != 0)
			return r;
		r = pack_directory(fd, pkg, &error);
		break;
	}
	case PACK_ARCHIVE_ZIP:
	case PACK_ARCHIVE_TARGZ:
		r = pack_read_archive(path, kind, pkg, &error);
		break;
	case PACK_SHARED_OBJECT:
		r = pack_single_file(path, basename(path), pkg, &error);
		break;
	default:
		r = -EINVAL;
	}
	if (r == -ENOMEM)
		return oom();
	if (r < 0)
		return fail("cannot pack '%s': %s", path, error ?: strerror(-r));
	return 0;
}

/* The deploy body minus "code": {"runtime","handler",["memory_mb"],["timeout_ms"],["env"]}. */
static int build_manifest(const struct ctl *ctl, struct deploy_defaults *defaults, char **ret)
{
	_cleanup_(cJSON_Deletep) cJSON *m = NULL, *env = NULL;
	const char *runtime = ctl->runtime ?: defaults->runtime;
	const char *handler = ctl->handler ?: defaults->handler;
	uint32_t memory = ctl->memory_mb ?: defaults->memory_mb;
	uint32_t timeout = ctl->timeout_ms ?: defaults->timeout_ms;
	const cJSON *e;
	char *s;

	if (!runtime)
		return usage_error("deploy needs --runtime (or \"runtime\" in the directory's "
				   "spore.json)");
	if (!handler)
		return usage_error("deploy needs --handler (or \"handler\" in the directory's "
				   "spore.json)");

	m = cJSON_CreateObject();
	env = defaults->env ? cJSON_Duplicate(defaults->env, true) : cJSON_CreateObject();
	if (!m || !env)
		return oom();
	if (!cJSON_AddStringToObject(m, "runtime", runtime) ||
	    !cJSON_AddStringToObject(m, "handler", handler))
		return oom();
	if (memory > 0 && !cJSON_AddNumberToObject(m, "memory_mb", memory))
		return oom();
	if (timeout > 0 && !cJSON_AddNumberToObject(m, "timeout_ms", timeout))
		return oom();
	/* spore.json only: the CPU share (spored's default follows memory_mb, as on Lambda). */
	if (defaults->cpu_millis > 0 && !cJSON_AddNumberToObject(m, "cpu_millis", defaults->cpu_millis))
		return oom();

	/* Flags override spore.json key by key; new keys keep their command line order. */
	cJSON_ArrayForEach(e, ctl->env) {
		cJSON *v = cJSON_CreateString(e->valuestring);

		if (!v)
			return oom();
		if (field(env, e->string)) {
			if (!cJSON_ReplaceItemInObjectCaseSensitive(env, e->string, v)) {
				cJSON_Delete(v);
				return oom();
			}
		} else if (!cJSON_AddItemToObject(env, e->string, v)) {
			cJSON_Delete(v);
			return oom();
		}
	}
	if (cJSON_GetArraySize(env) > 0) {
		if (!cJSON_AddItemToObject(m, "env", env))
			return oom();
		env = NULL;
	}

	s = cJSON_PrintUnformatted(m);
	if (!s)
		return oom();
	*ret = s;
	return 0;
}

static int cmd_deploy(struct ctl *ctl, char **args, size_t n_args)
{
	_cleanup_(deploy_defaults_done) struct deploy_defaults defaults = {};
	_cleanup_(buf_done) struct buf pkg = BUF_INIT, body = BUF_INIT;
	_cleanup_(client_response_done) struct client_response resp = {};
	_cleanup_(cJSON_Deletep) cJSON *answer = NULL;
	_cleanup_free_ char *manifest = NULL, *code = NULL, *path = NULL;
	const char *name = args[0];
	const cJSON *version, *sha;
	size_t mlen;
	int r;

	(void)n_args;
	r = check_name(name);
	if (r != 0)
		return r;
	r = build_package(args[1], &defaults, &pkg);
	if (r != 0)
		return r;
	r = build_manifest(ctl, &defaults, &manifest);
	if (r != 0)
		return r;

	code = base64_encode(pkg.data ?: "", pkg.len);
	if (!code)
		return oom();
	mlen = strlen(manifest);
	/* manifest is "{...}" with at least runtime and handler: splice code in before the '}'
	 * rather than copying megabytes of base64 through cJSON. */
	if (buf_append(&body, manifest, mlen - 1) < 0 ||
	    buf_append_str(&body, ",\"code\":\"") < 0 || buf_append_str(&body, code) < 0 ||
	    buf_append_str(&body, "\"}") < 0)
		return oom();
	if (body.len > DEPLOY_BODY_MAX)
		return fail("the package of '%s' is %zu bytes (%zu with base64): more than the "
			    "%u MiB deploy body spored accepts",
			    args[1], pkg.len, body.len, DEPLOY_BODY_MAX / (1024 * 1024));
	free(code);
	code = NULL;

	if (asprintf(&path, "/v1/functions/%s", name) < 0)
		return oom();
	r = request(ctl, "PUT", path, body.data, body.len, NULL, NULL, &resp);
	if (r != 0)
		return r;
	if (ctl->json) {
		print_body(&resp);
		return EXIT_SUCCESS;
	}
	answer = parse_answer(&resp);
	if (!answer)
		return EXIT_FAILURE;
	version = field(answer, "version");
	sha = field(answer, "sha256");
	{
		_cleanup_free_ char *v = json_cell(version), *s = json_cell(sha);

		if (!v || !s)
			return oom();
		printf("Deployed %s version %s (sha256 %s)\n", name, v, s);
	}
	return EXIT_SUCCESS;
}

/* ---- invoke ---------------------------------------------------------------------------- */

static int read_fd_all(int fd, size_t max, struct buf *ret)
{
	for (;;) {
		ssize_t n;
		int r = buf_reserve(ret, 64 * 1024);

		if (r < 0)
			return r;
		n = read(fd, ret->data + ret->len, ret->cap - ret->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return 0;
		ret->len += (size_t)n;
		if (ret->len > max)
			return -EFBIG;
	}
}

static int read_event(const char *arg, struct buf *ret)
{
	const char *what;
	int r;

	if (!arg)
		return 0; /* no event: spored passes null */

	if (streq(arg, "-")) {
		what = "stdin";
		r = read_fd_all(STDIN_FILENO, EVENT_MAX, ret);
		if (r == -EFBIG)
			return fail("event on stdin is larger than %u MiB", EVENT_MAX / (1024 * 1024));
		if (r < 0)
			return fail("cannot read stdin: %s", strerror(-r));
	} else if (arg[0] == '@') {
		_cleanup_free_ char *data = NULL;
		size_t len;

		what = arg + 1;
		if (!*what)
			return usage_error("missing file name after '@'");
		r = read_file(AT_FDCWD, what, EVENT_MAX, &data, &len);
		if (r == -EFBIG)
			return fail("event file '%s' is larger than %u MiB", what,
				    EVENT_MAX / (1024 * 1024));
		if (r < 0)
			return fail("cannot read '%s': %s", what, strerror(-r));
		if (buf_append(ret, data, len) < 0)
			return oom();
	} else {
		what = "argument";
		if (buf_append_str(ret, arg) < 0)
			return oom();
	}

	/* Empty or blank: no event, like no argument. */
	if (strspn(buf_cstr(ret), " \t\r\n") == ret->len) {
		buf_reset(ret);
		return 0;
	}

	{
		_cleanup_(cJSON_Deletep) cJSON *j = NULL;
		const char *end = NULL, *text = buf_cstr(ret);

		if (strlen(text) != ret->len)
			return usage_error("event (%s) is not valid JSON: it contains a NUL byte", what);
		j = cJSON_ParseWithOpts(text, &end, true);
		if (!j) {
			const char *at = cJSON_GetErrorPtr();
			size_t off = at && at >= text && at <= text + ret->len ? (size_t)(at - text) : 0;

			return usage_error("event (%s) is not valid JSON (error near byte %zu)", what,
					   off);
		}
	}
	return 0;
}

static int cmd_invoke(struct ctl *ctl, char **args, size_t n_args)
{
	_cleanup_(buf_done) struct buf event = BUF_INIT;
	_cleanup_(client_response_done) struct client_response resp = {};
	_cleanup_free_ char *path = NULL;
	int r;

	r = check_name(args[0]);
	if (r != 0)
		return r;
	r = read_event(n_args > 1 ? args[1] : NULL, &event);
	if (r != 0)
		return r;
	if (asprintf(&path, "/v1/functions/%s/invoke", args[0]) < 0)
		return oom();
	r = request(ctl, "POST", path, event.len > 0 ? event.data : NULL, event.len, NULL, NULL,
		    &resp);
	if (r != 0)
		return r;
	print_body(&resp);
	return EXIT_SUCCESS;
}

/* ---- ls, info, versions, runtimes ----------------------------------------------------- */

static int cmd_ls(struct ctl *ctl, char **args, size_t n_args)
{
	static const char *const headers[] = { "NAME",   "LIVE",    "RUNTIME", "HANDLER",
					       "MEMORY", "TIMEOUT", "VERSIONS" };
	_cleanup_(client_response_done) struct client_response resp = {};
	_cleanup_(cJSON_Deletep) cJSON *answer = NULL;
	_cleanup_table_ struct table *t = NULL;
	const cJSON *f;
	int r;

	(void)args;
	(void)n_args;
	r = request(ctl, "GET", "/v1/functions", NULL, 0, NULL, NULL, &resp);
	if (r != 0)
		return r;
	if (ctl->json) {
		print_body(&resp);
		return EXIT_SUCCESS;
	}
	answer = parse_answer(&resp);
	if (!answer)
		return EXIT_FAILURE;
	t = table_new(ELEMENTSOF(headers), headers);
	if (!t)
		return oom();
	cJSON_ArrayForEach(f, field(answer, "functions")) {
		if (table_add_json(t, field(f, "name")) < 0 ||
		    table_add_json(t, field(f, "live_version")) < 0 ||
		    table_add_json(t, field(f, "runtime")) < 0 ||
		    table_add_json(t, field(f, "handler")) < 0 ||
		    table_add_owned(t, cell_memory(field(f, "memory_mb"))) < 0 ||
		    table_add_owned(t, cell_timeout(field(f, "timeout_ms"))) < 0 ||
		    table_add_json(t, field(f, "versions")) < 0)
			return oom();
	}
	return print_table(t);
}

/* full_sha: the whole sha256, else its first 12 characters. */
static int print_versions(const cJSON *fn, bool full_sha)
{
	static const char *const headers[] = { "VERSION", "LIVE",   "CREATED", "SHA256",
					       "RUNTIME", "HANDLER", "MEMORY", "TIMEOUT" };
	_cleanup_table_ struct table *t = NULL;
	_cleanup_free_ char *live = json_cell(field(fn, "live_version"));
	const cJSON *v;

	if (!live)
		return oom();
	t = table_new(ELEMENTSOF(headers), headers);
	if (!t)
		return oom();
	cJSON_ArrayForEach(v, field(fn, "versions")) {
		_cleanup_free_ char *ver = json_cell(field(v, "version"));
		_cleanup_free_ char *sha = json_cell(field(v, "sha256"));

		if (!ver || !sha)
			return oom();
		if (!full_sha && strlen(sha) > 12)
			sha[12] = '\0';
		if (table_add(t, ver) < 0 || table_add(t, streq(ver, live) ? "*" : "") < 0 ||
		    table_add_json(t, field(v, "created")) < 0 ||
		    table_add(t, sha) < 0 ||
		    table_add_json(t, field(v, "runtime")) < 0 ||
		    table_add_json(t, field(v, "handler")) < 0 ||
		    table_add_owned(t, cell_memory(field(v, "memory_mb"))) < 0 ||
		    table_add_owned(t, cell_timeout(field(v, "timeout_ms"))) < 0)
			return oom();
	}
	return print_table(t);
}

static int get_function(struct ctl *ctl, const char *name, struct client_response *resp)
{
	_cleanup_free_ char *path = NULL;
	int r;

	r = check_name(name);
	if (r != 0)
		return r;
	if (asprintf(&path, "/v1/functions/%s", name) < 0)
		return oom();
	return request(ctl, "GET", path, NULL, 0, NULL, NULL, resp);
}

static void print_field(const char *label, const char *value)
{
	printf("%-14s%s\n", label, value);
}

static int print_json_field(const char *label, char *value)
{
	if (!value)
		return oom();
	print_field(label, value);
	free(value);
	return 0;
}

static int cmd_info(struct ctl *ctl, char **args, size_t n_args)
{
	static const char *const inst_headers[] = { "INSTANCE", "PID", "VERSION", "STATE",
						    "INVOCATIONS" };
	_cleanup_(client_response_done) struct client_response resp = {};
	_cleanup_(cJSON_Deletep) cJSON *fn = NULL;
	_cleanup_table_ struct table *t = NULL;
	const cJSON *env, *e, *instances, *i;
	char count[32];
	bool first = true;
	int r;

	(void)n_args;
	r = get_function(ctl, args[0], &resp);
	if (r != 0)
		return r;
	if (ctl->json) {
		print_body(&resp);
		return EXIT_SUCCESS;
	}
	fn = parse_answer(&resp);
	if (!fn)
		return EXIT_FAILURE;

	if (print_json_field("Name:", json_cell(field(fn, "name"))) < 0 ||
	    print_json_field("Live version:",
			     json_cell(field(fn, "live_version"))) < 0 ||
	    print_json_field("Runtime:", json_cell(field(fn, "runtime"))) < 0 ||
	    print_json_field("Handler:", json_cell(field(fn, "handler"))) < 0 ||
	    print_json_field("Memory:", cell_memory(field(fn, "memory_mb"))) < 0 ||
	    print_json_field("Timeout:",
			     cell_timeout(field(fn, "timeout_ms"))) < 0)
		return EXIT_FAILURE;

	env = field(fn, "env");
	cJSON_ArrayForEach(e, env) {
		_cleanup_free_ char *v = json_cell(e), *line = NULL;

		if (!v || asprintf(&line, "%s=%s", e->string, v) < 0)
			return oom();
		print_field(first ? "Env:" : "", line);
		first = false;
	}
	if (first)
		print_field("Env:", "-");

	instances = field(fn, "instances");
	snprintf(count, sizeof(count), "%d", cJSON_GetArraySize(instances));
	print_field("Instances:", count);

	fputc('\n', stdout);
	r = print_versions(fn, false);
	if (r != 0)
		return r;

	if (cJSON_GetArraySize(instances) == 0)
		return EXIT_SUCCESS;
	t = table_new(ELEMENTSOF(inst_headers), inst_headers);
	if (!t)
		return oom();
	cJSON_ArrayForEach(i, instances) {
		if (table_add_json(t, field(i, "id")) < 0 ||
		    table_add_json(t, field(i, "pid")) < 0 ||
		    table_add_json(t, field(i, "version")) < 0 ||
		    table_add_json(t, field(i, "state")) < 0 ||
		    table_add_json(t, field(i, "invocations")) < 0)
			return oom();
	}
	fputc('\n', stdout);
	return print_table(t);
}

static int cmd_versions(struct ctl *ctl, char **args, size_t n_args)
{
	_cleanup_(client_response_done) struct client_response resp = {};
	_cleanup_(cJSON_Deletep) cJSON *fn = NULL;
	int r;

	(void)n_args;
	r = get_function(ctl, args[0], &resp);
	if (r != 0)
		return r;
	if (ctl->json) {
		print_body(&resp);
		return EXIT_SUCCESS;
	}
	fn = parse_answer(&resp);
	if (!fn)
		return EXIT_FAILURE;
	return print_versions(fn, true);
}

static int cmd_runtimes(struct ctl *ctl, char **args, size_t n_args)
{
	static const char *const headers[] = { "NAME", "PID", "STATE", "RESTARTS", "STARTED" };
	_cleanup_(client_response_done) struct client_response resp = {};
	_cleanup_(cJSON_Deletep) cJSON *answer = NULL;
	_cleanup_table_ struct table *t = NULL;
	const cJSON *rt;
	int r;

	(void)args;
	(void)n_args;
	r = request(ctl, "GET", "/v1/runtimes", NULL, 0, NULL, NULL, &resp);
	if (r != 0)
		return r;
	if (ctl->json) {
		print_body(&resp);
		return EXIT_SUCCESS;
	}
	answer = parse_answer(&resp);
	if (!answer)
		return EXIT_FAILURE;
	t = table_new(ELEMENTSOF(headers), headers);
	if (!t)
		return oom();
	cJSON_ArrayForEach(rt, field(answer, "runtimes")) {
		if (table_add_json(t, field(rt, "name")) < 0 ||
		    table_add_json(t, field(rt, "pid")) < 0 ||
		    table_add_json(t, field(rt, "state")) < 0 ||
		    table_add_json(t, field(rt, "restarts")) < 0 ||
		    table_add_json(t, field(rt, "started")) < 0)
			return oom();
	}
	return print_table(t);
}

/* ---- rollback, rm ----------------------------------------------------------------------- */

static int cmd_rollback(struct ctl *ctl, char **args, size_t n_args)
{
	_cleanup_(client_response_done) struct client_response resp = {};
	_cleanup_(cJSON_Deletep) cJSON *answer = NULL;
	_cleanup_free_ char *path = NULL, *body = NULL, *v = NULL;
	uint64_t version = 0;
	int r;

	r = check_name(args[0]);
	if (r != 0)
		return r;
	if (n_args > 1) {
		if (parse_uint(args[1], 1, UINT32_MAX, &version) < 0)
			return usage_error("invalid version '%s' (expected a positive integer)",
					   args[1]);
		if (asprintf(&body, "{\"version\":%" PRIu64 "}", version) < 0)
			return oom();
	}
	if (asprintf(&path, "/v1/functions/%s/rollback", args[0]) < 0)
		return oom();
	r = request(ctl, "POST", path, body, body ? strlen(body) : 0, NULL, NULL, &resp);
	if (r != 0)
		return r;
	if (ctl->json) {
		print_body(&resp);
		return EXIT_SUCCESS;
	}
	answer = parse_answer(&resp);
	if (!answer)
		return EXIT_FAILURE;
	v = json_cell(field(answer, "version"));
	if (!v)
		return oom();
	printf("Rolled back %s to version %s\n", args[0], v);
	return EXIT_SUCCESS;
}

static int cmd_rm(struct ctl *ctl, char **args, size_t n_args)
{
	_cleanup_(client_response_done) struct client_response resp = {};
	_cleanup_free_ char *path = NULL;
	int r;

	(void)n_args;
	r = check_name(args[0]);
	if (r != 0)
		return r;
	if (asprintf(&path, "/v1/functions/%s", args[0]) < 0)
		return oom();
	r = request(ctl, "DELETE", path, NULL, 0, NULL, NULL, &resp);
	if (r != 0)
		return r;
	if (ctl->json)
		print_body(&resp);
	else
		printf("Removed %s\n", args[0]);
	return EXIT_SUCCESS;
}

/* ---- logs ------------------------------------------------------------------------------- */

struct logs_state {
	bool json;
	bool follow;
};

static int on_log_line(const char *line, size_t len, void *userdata)
{
	struct logs_state *s = userdata;
	_cleanup_(cJSON_Deletep) cJSON *j = NULL;
	_cleanup_free_ char *text = NULL;

	if (len == 0)
		return 0;
	if (!s->json) {
		j = cJSON_ParseWithLength(line, len);
		if (cJSON_IsObject(j)) {
			text = format_log_record(j);
			if (!text)
				return -ENOMEM;
		}
	}
	if (text)
		fputs(text, stdout);
	else
		fwrite(line, 1, len, stdout); /* --json, or a line that is not a record */
	fputc('\n', stdout);
	if (s->follow)
		fflush(stdout);
	if (ferror(stdout))
		return -EIO;
	return 0;
}

static int cmd_logs(struct ctl *ctl, char **args, size_t n_args)
{
	_cleanup_(client_response_done) struct client_response resp = {};
	_cleanup_(buf_done) struct buf path = BUF_INIT;
	struct logs_state state = { .json = ctl->json, .follow = ctl->follow };
	char sep = '?';
	int r;

	(void)n_args;
	r = check_name(args[0]);
	if (r != 0)
		return r;
	if (buf_printf(&path, "/v1/functions/%s/logs", args[0]) < 0)
		return oom();
	if (ctl->tail >= 0) {
		if (buf_printf(&path, "%ctail=%" PRId64, sep, ctl->tail) < 0)
			return oom();
		sep = '&';
	}
	if (ctl->follow && buf_printf(&path, "%cfollow=1", sep) < 0)
		return oom();

	return request(ctl, "GET", buf_cstr(&path), NULL, 0, on_log_line, &state, &resp);
}

static int cmd_top(struct ctl *ctl, char **args, size_t n_args)
{
	return sporectl_top(&ctl->client, ctl->json, args, n_args);
}

/* ---- arguments -------------------------------------------------------------------------- */

static const struct command commands[] = {
	{ "deploy", cmd_deploy, 2, 2, OPTF_DEPLOY },
	{ "invoke", cmd_invoke, 1, 2, 0 },
	{ "ls", cmd_ls, 0, 0, 0 },
	{ "info", cmd_info, 1, 1, 0 },
	{ "versions", cmd_versions, 1, 1, 0 },
	{ "rollback", cmd_rollback, 1, 2, 0 },
	{ "rm", cmd_rm, 1, 1, 0 },
	{ "logs", cmd_logs, 1, 1, OPTF_FOLLOW | OPTF_TAIL },
	{ "runtimes", cmd_runtimes, 0, 0, 0 },
	{ "top", cmd_top, 0, 64, 0 },
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		if (streq(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void mark_used(struct ctl *ctl, unsigned flag, const char *spelling)
{
	unsigned bit = 0;

	while ((1u << bit) != flag)
		bit++;
	if (!(ctl->used & flag))
		ctl->used_name[bit] = spelling;
	ctl->used |= flag;
}

enum {
	ARG_SOCKET = 0x100,
	ARG_URL,
	ARG_TOKEN,
	ARG_JSON,
	ARG_RUNTIME,
	ARG_HANDLER,
	ARG_MEMORY,
	ARG_TIMEOUT,
	ARG_ENV,
};

/* Returns -1 to go on with *ret_command and the positional arguments in *ret_args (the
 * command's arguments; argv is reused), or an exit status. */
static int parse_argv(int argc, char *argv[], struct ctl *ctl, const struct command **ret_command,
		      char ***ret_args, size_t *ret_n_args)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, ARG_SOCKET },
		{ "url", required_argument, NULL, ARG_URL },
		{ "token", required_argument, NULL, ARG_TOKEN },
		{ "json", no_argument, NULL, ARG_JSON },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "runtime", required_argument, NULL, ARG_RUNTIME },
		{ "handler", required_argument, NULL, ARG_HANDLER },
		{ "memory", required_argument, NULL, ARG_MEMORY },
		{ "timeout", required_argument, NULL, ARG_TIMEOUT },
		{ "env", required_argument, NULL, ARG_ENV },
		{ "follow", no_argument, NULL, 'f' },
		{ "tail", required_argument, NULL, 'n' },
		{}
	};
	const char *socket_path = NULL, *url = NULL, *token = NULL;
	const struct command *cmd = NULL;
	bool show_help = false;
	size_t n_pos = 0;
	uint64_t v;
	int c;

	opterr = 0;
	/* "-": positional arguments come back in order as 1, whatever POSIXLY_CORRECT says, so
	 * options may stand before or after the command. ":": missing arguments give ':'. */
	while ((c = getopt_long(argc, argv, "-:vhVfn:", options, NULL)) != -1) {
		switch (c) {
		case 1:
			argv[n_pos++] = optarg; /* never overtakes optind: reuse argv */
			break;
		case ARG_SOCKET:
			if (!*optarg)
				return usage_error("--socket needs a path");
			socket_path = optarg;
			break;
		case ARG_URL:
			if (!startswith(optarg, "http://") && !startswith(optarg, "https://"))
				return usage_error("invalid --url '%s' (expected http://HOST:PORT)",
						   optarg);
			url = optarg;
			break;
		case ARG_TOKEN:
			token = optarg;
			break;
		case ARG_JSON:
			ctl->json = true;
			break;
		case 'v':
			ctl->verbose = true;
			break;
		case 'h':
			show_help = true;
			break;
		case 'V':
			printf("sporectl %s\n", SPORE_VERSION);
			return EXIT_SUCCESS;
		case ARG_RUNTIME:
			if (!*optarg)
				return usage_error("--runtime needs a value");
			ctl->runtime = optarg;
			mark_used(ctl, OPTF_DEPLOY, "--runtime");
			break;
		case ARG_HANDLER:
			if (!*optarg)
				return usage_error("--handler needs a value");
			ctl->handler = optarg;
			mark_used(ctl, OPTF_DEPLOY, "--handler");
			break;
		case ARG_MEMORY:
			if (parse_uint(optarg, 1, UINT32_MAX, &v) < 0)
				return usage_error("invalid --memory '%s' (expected megabytes, e.g. "
						   "128)",
						   optarg);
			ctl->memory_mb = (uint32_t)v;
			mark_used(ctl, OPTF_DEPLOY, "--memory");
			break;
		case ARG_TIMEOUT:
			if (parse_duration_ms(optarg, &ctl->timeout_ms) < 0)
				return usage_error("invalid --timeout '%s' (expected e.g. 30s, 500ms, "
						   "2m or milliseconds)",
						   optarg);
			mark_used(ctl, OPTF_DEPLOY, "--timeout");
			break;
		case ARG_ENV: {
			_cleanup_free_ char *key = NULL, *value = NULL;
			int r = parse_env_assignment(optarg, &key, &value);

			if (r == -ENOMEM)
				return oom();
			if (r < 0)
				return usage_error("invalid --env '%s' (expected KEY=VALUE, KEY "
						   "matching [A-Za-z_][A-Za-z0-9_]*)",
						   optarg);
			if (!ctl->env) {
				ctl->env = cJSON_CreateObject();
				if (!ctl->env)
					return oom();
			}
			/* The last --env for a key wins. */
			cJSON_DeleteItemFromObjectCaseSensitive(ctl->env, key);
			if (!cJSON_AddStringToObject(ctl->env, key, value))
				return oom();
			mark_used(ctl, OPTF_DEPLOY, "--env");
			break;
		}
		case 'f':
			ctl->follow = true;
			mark_used(ctl, OPTF_FOLLOW, "--follow");
			break;
		case 'n':
			if (parse_uint(optarg, 0, LOGS_TAIL_MAX, &v) < 0)
				return usage_error("invalid --tail '%s' (expected 0 to %d)", optarg,
						   LOGS_TAIL_MAX);
			ctl->tail = (int64_t)v;
			mark_used(ctl, OPTF_TAIL, "--tail");
			break;
		case ':':
			return usage_error("option '%s' needs an argument", argv[optind - 1]);
		case '?':
		default:
			if (optopt >= 0x100 ||
			    (optopt > 0 && startswith(argv[optind - 1], "--") &&
			     strchr(argv[optind - 1], '=')))
				return usage_error("option '%s' takes no argument", argv[optind - 1]);
			if (optopt > 0)
				return usage_error("unknown option '-%c'", optopt);
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	/* After "--" every argument is positional. */
	while (optind < argc)
		argv[n_pos++] = argv[optind++];

	if (show_help) {
		help();
		return EXIT_SUCCESS;
	}
	if (n_pos == 0)
		return usage_error("missing command");
	if (streq(argv[0], "help")) {
		help();
		return EXIT_SUCCESS;
	}
	cmd = find_command(argv[0]);
	if (!cmd)
		return usage_error("unknown command '%s'", argv[0]);
	for (unsigned bit = 0; bit < _OPTF_COUNT; bit++)
		if ((ctl->used & (1u << bit)) && !(cmd->options & (1u << bit)))
			return usage_error("option '%s' does not apply to '%s'", ctl->used_name[bit],
					   cmd->name);
	if (n_pos - 1 < cmd->min_args)
		return usage_error("'%s' needs %s", cmd->name,
				   cmd->min_args == 2 ? "NAME and PATH" : "NAME");
	if (n_pos - 1 > cmd->max_args)
		return usage_error("too many arguments for '%s' (unexpected '%s')", cmd->name,
				   argv[1 + cmd->max_args]);

	if (socket_path && url)
		return usage_error("--socket and --url exclude each other");
	if (url) {
		/* Strip trailing slashes: paths are appended as "/v1/...". */
		size_t l = strlen(url);
		while (l > 0 && url[l - 1] == '/')
			l--;
		ctl->client.url = strndup(url, l);
		if (!ctl->client.url)
			return oom();
	} else {
		const char *env = getenv("SPORE_SOCKET");

		ctl->client.socket_path = socket_path ?: (env && *env ? env : SPORE_DEFAULT_API_SOCKET);
	}
	if (!token) {
		const char *env = getenv("SPORE_TOKEN");
		token = env && *env ? env : NULL;
	}
	ctl->client.token = token;

	*ret_command = cmd;
	*ret_args = argv + 1;
	*ret_n_args = n_pos - 1;
	return -1;
}

int main(int argc, char *argv[])
{
	struct ctl ctl = { .tail = -1 };
	const struct command *cmd = NULL;
	char **args = NULL;
	size_t n_args = 0;
	int r;

	/* libarchive converts non-ASCII file names through the locale's charset. */
	(void)setlocale(LC_CTYPE, "");

	r = parse_argv(argc, argv, &ctl, &cmd, &args, &n_args);
	if (r < 0) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			r = fail("cannot initialise libcurl");
		else {
			r = cmd->run(&ctl, args, n_args);
			curl_global_cleanup();
		}
	}

	cJSON_Delete(ctl.env);
	free((char *)ctl.client.url);

	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "sporectl: cannot write output: %m\n");
		if (r == EXIT_SUCCESS)
			r = EXIT_FAILURE;
	}
	return r;
}
