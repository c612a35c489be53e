/* SPDX-License-Identifier: MIT */
#include "lambda.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "api.h"
#include "async.h"
#include "config.h"
#include "logs.h"
#include "loop.h"
#include "manifest.h"
#include "registry.h"
#include "scaling.h"
#include "scheduler.h"
#include "server.h"
#include "sigv4.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/codec.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/log.h"
#include "zygotes.h"

#define META_FILE REGISTRY_LAMBDA_JSON
#define META_MAX (4u << 20)
#define KEYS_MAX (1u << 20)
#define PAGE_MAX 50
#define ZIP_MAX 52428800u          /* as Lambda: zipped code for a direct upload */
#define SYNC_PAYLOAD_MAX 6291456u  /* as Lambda: 6 MB request and response */
#define ASYNC_PAYLOAD_MAX 1048576u /* spore's async limit (src/api.c), 1 MB */
#define LOG_TAIL_BYTES 4096u       /* X-Amz-Log-Result: the last 4 KB */
#define CAPTURE_MAX (64u * 1024u)  /* log lines kept while an invocation runs */
#define MEMORY_MIN 128             /* Lambda's MemorySize range */
#define MEMORY_MAX 10240
#define TIMEOUT_MAX_S 900
#define EPHEMERAL_MIN 512
#define EPHEMERAL_MAX 10240
#define DESCRIPTION_MAX 256
#define ALIAS_MAX 128


struct lambda {
	struct api_deps d;
	struct package_limits package_limits;
	char arch[16]; /* this host's Lambda architecture: x86_64 or arm64 */
	/* access keys, read again when the file changes */
	char **key_ids, **key_secrets;
	size_t n_keys;
	bool keys_seen; /* keys_stat is valid */
	struct stat keys_stat;
	char *keys_error; /* why the file is not in use, or NULL */
};

/* --- small helpers ------------------------------------------------------------------------- */

static void random_bytes(unsigned char *b, size_t n)
{
	if (getrandom(b, n, GRND_NONBLOCK) == (ssize_t)n)
		return;
	uint64_t t = now_us();
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)((t >> (i % 8 * 8)) ^ (i * 167));
}

static void uuid_from(const unsigned char b[16], char out[37])
{
	uuid_format(b, out);
}

static void make_uuid(char out[37])
{
	unsigned char b[16];
	random_bytes(b, sizeof(b));
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	uuid_from(b, out);
}

/* Lambda's timestamp: 2021-06-16T10:49:22.524+0000. */
static void format_lambda_time(int64_t us, char out[40])
{
	time_t s = (time_t)(us / 1000000);
	struct tm tm;
	if (!gmtime_r(&s, &tm)) {
		strcpy(out, "1970-01-01T00:00:00.000+0000");
		return;
	}
	size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 40 - n, ".%03d+0000", (int)(us % 1000000 / 1000));
}

/* Whole, non-negative JSON number within [min, max]. */
static bool json_int(const cJSON *v, double min, double max, int64_t *ret)
{
	if (!cJSON_IsNumber(v))
		return false;
	double d = v->valuedouble;
	if (!(d >= min && d <= max) || d != floor(d))
		return false;
	*ret = (int64_t)d;
	return true;
}

static bool all_digits(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

static bool parse_u32_str(const char *s, uint32_t *ret)
{
	if (!all_digits(s) || strlen(s) > 10)
		return false;
	unsigned long long v = strtoull(s, NULL, 10);
	if (v == 0 || v > UINT32_MAX)
		return false;
	*ret = (uint32_t)v;
	return true;
}

static bool alias_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > ALIAS_MAX || all_digits(s))
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			return false;
	return true;
}

/* --- responses ----------------------------------------------------------------------------- */

struct reply {
	char request_id[40];
};

static void reply_init(struct reply *rp)
{
	make_uuid(rp->request_id);
}

/* Answers with body j (consumed; NULL: no body) and the request id; extra: more header lines. */
static void send_json(struct conn *c, const struct reply *rp, int status, cJSON *j,
		      const char *extra)
{
	_cleanup_free_ char *hdrs = NULL;
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	if ((j && !s) ||
	    asprintf(&hdrs, "x-amzn-RequestId: %s\r\n%s", rp->request_id, extra ?: "") < 0) {
		static const char oom[] = "{\"Type\":\"Service\",\"message\":\"out of memory\"}";
		char h[128];
		hdrs = NULL;
		free(s);
		snprintf(h, sizeof(h), "x-amzn-RequestId: %s\r\nx-amzn-ErrorType: ServiceException\r\n",
			 rp->request_id);
		(void)conn_respond(c, 500, "application/json", oom, sizeof(oom) - 1, h);
		return;
	}
	if (!s)
		(void)conn_respond(c, status, status == 204 ? NULL : "application/json", NULL, 0,
				   hdrs);
	else
		(void)conn_respond(c, status, "application/json", s, strlen(s), hdrs);
	free(s);
}

/* An error as botocore reads it: status, x-amzn-ErrorType and {"Type","message"}. extra_json, if
 * not NULL, is merged into the body (consumed). */
static void send_error_full(struct conn *c, const struct reply *rp, int status, const char *type,
			    cJSON *extra_json, const char *extra_headers, const char *msg)
{
	cJSON *j = extra_json ? extra_json : cJSON_CreateObject();
	if (j && (!cJSON_AddStringToObject(j, "Type", status >= 500 ? "Service" : "User") ||
		  !cJSON_AddStringToObject(j, "message", msg))) {
		cJSON_Delete(j);
		j = NULL;
	}
	char hdrs[512];
	snprintf(hdrs, sizeof(hdrs), "x-amzn-ErrorType: %s\r\n%s", type, extra_headers ?: "");
	if (!j) {
		static const char oom[] = "{\"Type\":\"Service\",\"message\":\"out of memory\"}";
		char h[128];
		snprintf(h, sizeof(h), "x-amzn-RequestId: %s\r\nx-amzn-ErrorType: ServiceException\r\n",
			 rp->request_id);
		(void)conn_respond(c, 500, "application/json", oom, sizeof(oom) - 1, h);
		return;
	}
	send_json(c, rp, status, j, hdrs);
}

static void send_error_x(struct conn *c, const struct reply *rp, int status, const char *type,
			 const char *fmt, ...) _printf_(5, 6);
static void send_error_x(struct conn *c, const struct reply *rp, int status, const char *type,
			 const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	send_error_full(c, rp, status, type, NULL, NULL, msg);
}

#define send_error(c, rp, ...) send_error_x(c, rp, __VA_ARGS__)
#define E_NOT_FOUND 404, "ResourceNotFoundException"
#define E_CONFLICT 409, "ResourceConflictException"
#define E_INVALID 400, "InvalidParameterValueException"
#define E_PRECONDITION 412, "PreconditionFailedException"
#define E_SERVICE 500, "ServiceException"

static void send_oom(struct conn *c, const struct reply *rp)
{
	send_error(c, rp, E_SERVICE, "out of memory; try again");
}

static void send_throttled(struct conn *c, const struct reply *rp, const char *reason,
			   const char *fmt, ...) _printf_(4, 5);
static void send_throttled(struct conn *c, const struct reply *rp, const char *reason,
			   const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cJSON *x = cJSON_CreateObject();
	if (x && (!cJSON_AddStringToObject(x, "Reason", reason) ||
		  !cJSON_AddStringToObject(x, "retryAfterSeconds", "1"))) {
		cJSON_Delete(x);
		x = NULL;
	}
	send_error_full(c, rp, 429, "TooManyRequestsException", x, "Retry-After: 1\r\n", msg);
}

/* --- access keys --------------------------------------------------------------------------- */

static void keys_clear(struct lambda *l)
{
	for (size_t i = 0; i < l->n_keys; i++) {
		free(l->key_ids[i]);
		if (l->key_secrets[i]) {
			explicit_bzero(l->key_secrets[i], strlen(l->key_secrets[i]));
			free(l->key_secrets[i]);
		}
	}
	free(l->key_ids);
	free(l->key_secrets);
	l->key_ids = l->key_secrets = NULL;
	l->n_keys = 0;
}

static void set_keys_error(struct lambda *l, const char *fmt, ...) _printf_(2, 3);
static void set_keys_error(struct lambda *l, const char *fmt, ...)
{
	free(l->keys_error);
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&l->keys_error, fmt, ap) < 0)
		l->keys_error = NULL;
	va_end(ap);
}

static bool key_id_valid(const char *s, size_t n)
{
	if (n == 0 || n > SIGV4_KEY_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* Parses "KEY_ID:SECRET" lines ('#' comments, blank lines) into l. -EINVAL with the error set. */
static int keys_parse(struct lambda *l, const char *path, char *data)
{
	size_t cap = 1;
	for (const char *p = data; *p; p++)
		cap += *p == '\n';
	char **ids = calloc(cap, sizeof(char *)), **secrets = calloc(cap, sizeof(char *));
	size_t n = 0, lineno = 0;
	int r = ids && secrets ? 0 : -ENOMEM;
	for (char *line = data, *next; r >= 0 && line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		lineno++;
		size_t len = strlen(line);
		while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' ||
				   line[len - 1] == '\t'))
			line[--len] = 0;
		while (*line == ' ' || *line == '\t')
			line++;
		if (!*line || *line == '#')
			continue;
		char *colon = strchr(line, ':');
		if (!colon || !key_id_valid(line, (size_t)(colon - line)) || !colon[1] ||
		    strlen(colon + 1) > 256 || strpbrk(colon + 1, " \t")) {
			set_keys_error(l, "%s:%zu: expected 'KEY_ID:SECRET' (key id [A-Za-z0-9_], "
				       "secret without spaces)", path, lineno);
			r = -EINVAL;
			break;
		}
		ids[n] = strndup(line, (size_t)(colon - line));
		secrets[n] = strdup(colon + 1);
		if (!ids[n] || !secrets[n])
			r = -ENOMEM;
		n++;
	}
	if (r >= 0 && n == 0) {
		set_keys_error(l, "%s: no keys in the file", path);
		r = -EINVAL;
	}
	if (r < 0) {
		for (size_t i = 0; i < n; i++) {
			free(ids ? ids[i] : NULL);
			if (secrets && secrets[i]) {
				explicit_bzero(secrets[i], strlen(secrets[i]));
				free(secrets[i]);
			}
		}
		free(ids);
		free(secrets);
		return r;
	}
	keys_clear(l);
	l->key_ids = ids;
	l->key_secrets = secrets;
	l->n_keys = n;
	return 0;
}

/* Reads the keys file again when it changed (or was never read). Returns true when it was
 * (re)read or found unusable just now, for the caller to log the outcome once. */
static bool keys_refresh(struct lambda *l)
{
	const char *path = l->d.config->lambda_access_keys;
	if (!path)
		return false;
	struct stat st;
	if (stat(path, &st) < 0) {
		if (l->keys_seen || !l->keys_error) {
			l->keys_seen = false;
			keys_clear(l);
			set_keys_error(l, "%s: %s", path, strerror(errno));
			return true;
		}
		return false;
	}
	if (l->keys_seen && st.st_ino == l->keys_stat.st_ino && st.st_dev == l->keys_stat.st_dev &&
	    st.st_size == l->keys_stat.st_size && st.st_mode == l->keys_stat.st_mode &&
	    st.st_uid == l->keys_stat.st_uid &&
	    st.st_mtim.tv_sec == l->keys_stat.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == l->keys_stat.st_mtim.tv_nsec)
		return false;
	l->keys_seen = true;
	l->keys_stat = st;
	keys_clear(l);
	if (!S_ISREG(st.st_mode)) {
		set_keys_error(l, "%s: not a regular file", path);
		return true;
	}
	if (st.st_mode & 077) {
		set_keys_error(l, "%s: readable or writable by group or others (mode %04o); make it "
			       "0600", path, (unsigned)(st.st_mode & 07777));
		return true;
	}
	if (st.st_uid != geteuid()) {
		set_keys_error(l, "%s: owned by uid %u, not by spored's uid %u", path,
			       (unsigned)st.st_uid, (unsigned)geteuid());
		return true;
	}
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r = read_file(AT_FDCWD, path, KEYS_MAX, &data, &len);
	if (r < 0) {
		set_keys_error(l, "%s: %s", path, strerror(-r));
		return true;
	}
	r = keys_parse(l, path, data);
	explicit_bzero(data, len);
	if (r == -ENOMEM) {
		l->keys_seen = false; /* try again next time */
		set_keys_error(l, "%s: out of memory", path);
		return true;
	}
	if (r < 0)
		return true;
	free(l->keys_error);
	l->keys_error = NULL;
	return true;
}

static const char *key_secret(void *ud, const char *key_id)
{
	struct lambda *l = ud;
	for (size_t i = 0; i < l->n_keys; i++)
		if (streq(l->key_ids[i], key_id))
			return l->key_secrets[i];
	return NULL;
}

static void log_keys_state(struct lambda *l)
{
	if (l->keys_error)
		log_error("lambda: access keys not in use: %s; signed requests are refused",
			  l->keys_error);
	else
		log_info("lambda: %zu access key(s) loaded from '%s'", l->n_keys,
			 l->d.config->lambda_access_keys);
}

/* --- module -------------------------------------------------------------------------------- */

int lambda_new(const struct api_deps *deps, struct lambda **ret, char **ret_warning)
{
	struct lambda *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->d = *deps;
	l->package_limits.max_entries = deps->config->package_max_entries;
	l->package_limits.max_bytes = deps->config->package_max_bytes;
	struct utsname u;
	const char *arch = "x86_64";
	if (uname(&u) == 0 && (streq(u.machine, "aarch64") || streq(u.machine, "arm64")))
		arch = "arm64";
	snprintf(l->arch, sizeof(l->arch), "%s", arch);
	*ret_warning = NULL;
	if (deps->config->lambda_access_keys) {
		(void)keys_refresh(l);
		if (l->keys_error && asprintf(ret_warning, "lambda: access keys not in use: %s; "
					      "signed requests are refused until it is fixed",
					      l->keys_error) < 0)
			*ret_warning = NULL;
	}
	*ret = l;
	return 0;
}

struct lambda *lambda_free(struct lambda *l)
{
	if (!l)
		return NULL;
	keys_clear(l);
	free(l->keys_error);
	free(l);
	return NULL;
}

/* --- names and ARNs ------------------------------------------------------------------------ */

struct target {
	char name[72];       /* spore function name (valid or not) */
	char qualifier[136]; /* "" when none */
};

/* Splits a FunctionName as the API takes it: NAME, NAME:QUALIFIER, ACCOUNT:function:NAME[:Q] or
 * arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:Q]. 0; -EINVAL (bad shape); -ENOENT (an ARN
 * of another account or region: no such function here). */
static int split_function_name(struct lambda *l, const char *raw, struct target *t)
{
	*t = (struct target){};
	char *parts[9];
	size_t n = 0;
	_cleanup_free_ char *s = strdup(raw);
	if (!s)
		return -ENOMEM;
	if (strlen(raw) > 170)
		return -EINVAL;
	for (char *p = s;; n++) {
		if (n == ELEMENTSOF(parts))
			return -EINVAL;
		parts[n] = p;
		char *colon = strchr(p, ':');
		if (!colon) {
			n++;
			break;
		}
		*colon = 0;
		p = colon + 1;
	}
	const char *name, *qual = NULL, *region = NULL, *account = NULL;
	if (streq(parts[0], "arn")) {
		if (n < 7 || n > 8 || !streq(parts[2], "lambda") || !streq(parts[5], "function"))
			return -EINVAL;
		region = parts[3];
		account = parts[4];
		name = parts[6];
		qual = n == 8 ? parts[7] : NULL;
	} else if (n >= 3 && streq(parts[1], "function")) {
		if (n > 4)
			return -EINVAL;
		account = parts[0];
		name = parts[2];
		qual = n == 4 ? parts[3] : NULL;
	} else {
		if (n > 2)
			return -EINVAL;
		name = parts[0];
		qual = n == 2 ? parts[1] : NULL;
	}
	if (!*name || strlen(name) >= sizeof(t->name) || (qual && (!*qual ||
	    strlen(qual) >= sizeof(t->qualifier))))
		return -EINVAL;
	snprintf(t->name, sizeof(t->name), "%s", name);
	if (qual)
		snprintf(t->qualifier, sizeof(t->qualifier), "%s", qual);
	if ((region && !streq(region, l->d.config->lambda_region)) ||
	    (account && !streq(account, l->d.config->lambda_account_id)))
		return -ENOENT;
	return 0;
}

static void function_arn(struct lambda *l, const char *name, const char *qualifier,
			 char out[320])
{
	snprintf(out, 320, "arn:aws:lambda:%s:%s:function:%s%s%s", l->d.config->lambda_region,
		 l->d.config->lambda_account_id, name, qualifier && *qualifier ? ":" : "",
		 qualifier && *qualifier ? qualifier : "");
}

static void send_fn_not_found(struct lambda *l, struct conn *c, const struct reply *rp,
			      const char *name, const char *qualifier)
{
	char arn[320];
	function_arn(l, name, qualifier, arn);
	send_error(c, rp, E_NOT_FOUND, "Function not found: %s", arn);
}

/* --- lambda.json --------------------------------------------------------------------------- */

/* {"configs":{"N":{...}},"published":[{"version","spore","description"}],"next_published",
 *  "aliases":[{"name","version","description","revision_id","weights":{"V":w}}],
 *  "throttled":bool,"provisioned":{"qualifier","count","last_modified_us"}} */
static int meta_load(struct lambda *l, const char *name, cJSON **ret)
{
	_cleanup_close_ int fd = registry_function_dir_fd(l->d.registry, name);
	cJSON *j = NULL;
	if (fd >= 0) {
		_cleanup_free_ char *data = NULL;
		size_t len = 0;
		int r = read_file(fd, META_FILE, META_MAX, &data, &len);
		if (r < 0 && r != -ENOENT)
			return r;
		if (r >= 0) {
			j = json_parse_exact(data, len);
			if (!cJSON_IsObject(j)) {
				/* Unreadable metadata: keep serving the function as /v1 knows it. */
				log_warning("lambda: '%s/" META_FILE "' is not a JSON object, ignoring",
					    name);
				cJSON_Delete(j);
				j = NULL;
			}
		}
	} else if (fd != -ENOENT)
		return fd;
	if (!j)
		j = cJSON_CreateObject();
	if (!j)
		return -ENOMEM;
	/* Every member present, of the right type. */
	static const struct {
		const char *key;
		int type;
	} shape[] = { { "configs", cJSON_Object },
		      { "published", cJSON_Array },
		      { "aliases", cJSON_Array } };
	for (size_t i = 0; i < ELEMENTSOF(shape); i++) {
		cJSON *v = cJSON_GetObjectItemCaseSensitive(j, shape[i].key);
		if (v && (v->type & 0xff) == shape[i].type)
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(j, shape[i].key);
		cJSON *n = shape[i].type == cJSON_Object ? cJSON_CreateObject() : cJSON_CreateArray();
		if (!n || !cJSON_AddItemToObject(j, shape[i].key, n)) {
			cJSON_Delete(n);
			cJSON_Delete(j);
			return -ENOMEM;
		}
	}
	*ret = j;
	return 0;
}

static int meta_save(struct lambda *l, const char *name, const cJSON *j)
{
	_cleanup_close_ int fd = registry_function_dir_fd(l->d.registry, name);
	if (fd < 0)
		return fd;
	_cleanup_free_ char *s = cJSON_PrintUnformatted(j);
	if (!s)
		return -ENOMEM;
	return write_file_atomic(fd, META_FILE, s, strlen(s), 0644);
}

static cJSON *meta_member(const cJSON *meta, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(meta, key);
}

/* The Lambda-only settings of spore version v: its own, else those of the nearest earlier version
 * that has them (a version deployed through /v1 inherits Role and Description), else NULL. */
static const cJSON *meta_config(const cJSON *meta, const struct fn_record *f, uint32_t v,
				bool *ret_own)
{
	const cJSON *configs = meta_member(meta, "configs");
	char key[16];
	*ret_own = true;
	for (size_t i = f->n_versions; i-- > 0;) {
		if (f->versions[i].version > v)
			continue;
		snprintf(key, sizeof(key), "%" PRIu32, f->versions[i].version);
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(configs, key);
		if (cJSON_IsObject(c))
			return c;
		*ret_own = false;
	}
	return NULL;
}

static const char *meta_str(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* Sets configs[v] = {runtime, role, description, code_size, arch} (strings may be NULL). */
static int meta_set_config(cJSON *meta, uint32_t v, const char *runtime, const char *role,
			   const char *description, double code_size, const char *arch)
{
	cJSON *configs = meta_member(meta, "configs");
	char key[16];
	snprintf(key, sizeof(key), "%" PRIu32, v);
	cJSON *o = cJSON_CreateObject();
	if (!o || (runtime && !cJSON_AddStringToObject(o, "runtime", runtime)) ||
	    (role && !cJSON_AddStringToObject(o, "role", role)) ||
	    !cJSON_AddStringToObject(o, "description", description ?: "") ||
	    !cJSON_AddNumberToObject(o, "code_size", code_size) ||
	    !cJSON_AddStringToObject(o, "arch", arch)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(configs, key);
	if (!cJSON_AddItemToObject(configs, key, o)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	return 0;
}

static cJSON *meta_published_entry(const cJSON *meta, uint32_t version)
{
	cJSON *e;
	cJSON_ArrayForEach(e, meta_member(meta, "published"))
	{
		int64_t v;
		if (json_int(cJSON_GetObjectItemCaseSensitive(e, "version"), 1, UINT32_MAX, &v) &&
		    (uint32_t)v == version)
			return e;
	}
	return NULL;
}

static uint32_t entry_u32(const cJSON *e, const char *key)
{
	int64_t v = 0;
	return json_int(cJSON_GetObjectItemCaseSensitive(e, key), 1, UINT32_MAX, &v) ? (uint32_t)v
										   : 0;
}

static cJSON *meta_alias(const cJSON *meta, const char *name)
{
	cJSON *e;
	cJSON_ArrayForEach(e, meta_member(meta, "aliases"))
	{
		if (streq(meta_str(e, "name"), name))
			return e;
	}
	return NULL;
}

/* --- resolving qualifiers ------------------------------------------------------------------ */

struct resolved {
	uint32_t spore;  /* the spore version (the live one for $LATEST) */
	bool latest;     /* $LATEST: invocations run whatever is live then */
	char label[16];  /* "$LATEST" or the published number */
	const cJSON *published; /* its entry, for a published version */
	const cJSON *alias;     /* when reached through an alias */
	/* the alias's second version and its weight */
	uint32_t alt_spore;
	bool alt_latest;
	char alt_label[16];
	double alt_weight;
};

/* Resolves a version string ("$LATEST" or a published number). -ENOENT. */
static int resolve_version(const cJSON *meta, const struct fn_record *f, const char *v,
			   uint32_t *ret_spore, bool *ret_latest, const cJSON **ret_entry,
			   char label[16])
{
	if (streq(v, "$LATEST")) {
		*ret_spore = f->live;
		*ret_latest = true;
		*ret_entry = NULL;
		snprintf(label, 16, "$LATEST");
		return 0;
	}
	uint32_t n;
	if (!parse_u32_str(v, &n))
		return -ENOENT;
	const cJSON *e = meta_published_entry(meta, n);
	uint32_t sv = e ? entry_u32(e, "spore") : 0;
	if (!sv || !fn_record_version(f, sv))
		return -ENOENT;
	*ret_spore = sv;
	*ret_latest = false;
	*ret_entry = e;
	snprintf(label, 16, "%" PRIu32, n);
	return 0;
}

/* qualifier "" = $LATEST. -ENOENT when the version or alias does not exist. */
static int resolve(const cJSON *meta, const struct fn_record *f, const char *qualifier,
		   struct resolved *ret)
{
	*ret = (struct resolved){};
	if (!*qualifier || streq(qualifier, "$LATEST") || all_digits(qualifier))
		return resolve_version(meta, f, *qualifier ? qualifier : "$LATEST", &ret->spore,
				       &ret->latest, &ret->published, ret->label);
	const cJSON *a = meta_alias(meta, qualifier);
	if (!a)
		return -ENOENT;
	ret->alias = a;
	int r = resolve_version(meta, f, meta_str(a, "version") ?: "", &ret->spore, &ret->latest,
				&ret->published, ret->label);
	if (r < 0)
		return r;
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(a, "weights");
	const cJSON *e = w ? w->child : NULL;
	if (e && cJSON_IsNumber(e) && e->string) {
		const cJSON *ignored;
		if (resolve_version(meta, f, e->string, &ret->alt_spore, &ret->alt_latest, &ignored,
				    ret->alt_label) >= 0)
			ret->alt_weight = e->valuedouble;
	}
	return 0;
}

/* --- FunctionConfiguration ----------------------------------------------------------------- */

static const char *map_runtime(const char *rt);

/* A RevisionId per spore version: a UUID drawn from its identity, so it changes with every
 * change of code or configuration and needs no storage. */
static void revision_id(const struct fn_record *f, const struct fn_version *v, char out[37])
{
	char seed[256], hex[65];
	snprintf(seed, sizeof(seed), "%s/%" PRIu32 "/%" PRId64 "/%s", f->name, v->version,
		 v->created_us, v->sha256);
	sha256_hex(seed, strlen(seed), hex);
	unsigned char b[16];
	for (size_t i = 0; i < 16; i++) {
		unsigned hi = (unsigned)(hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10);
		unsigned lo = (unsigned)(hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0'
							       : hex[2 * i + 1] - 'a' + 10);
		b[i] = (unsigned char)(hi << 4 | lo);
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	uuid_from(b, out);
}

/* base64 of the SHA-256 (what Lambda calls CodeSha256) from spore's hex form. */
static char *code_sha256_b64(const char *hex)
{
	unsigned char b[32];
	for (size_t i = 0; i < 32; i++) {
		char x[3] = { hex[2 * i], hex[2 * i + 1], 0 };
		b[i] = (unsigned char)strtoul(x, NULL, 16);
	}
	return base64_encode(b, sizeof(b));
}

static cJSON *config_json(struct lambda *l, const struct fn_record *f, const struct fn_version *v,
			  const char *label, const cJSON *meta, const cJSON *published,
			  bool qualified_arn)
{
	bool own;
	const cJSON *mc = meta_config(meta, f, v->version, &own);
	_cleanup_json_ cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	char arn[320], t[40], rev[37];
	function_arn(l, f->name, qualified_arn ? label : NULL, arn);
	format_lambda_time(v->created_us, t);
	revision_id(f, v, rev);
	_cleanup_free_ char *sha = code_sha256_b64(v->sha256);
	const char *runtime = meta_str(mc, "runtime");
	/* A Lambda runtime name holds only for the spore runtime it maps to (a later deploy
	 * through /v1 may have changed it). */
	if (runtime && (!map_runtime(runtime) || !streq(map_runtime(runtime), v->manifest.runtime)))
		runtime = NULL;
	const char *description = published ? meta_str(published, "description") : NULL;
	if (!description)
		description = meta_str(mc, "description") ?: "";
	int64_t code_size = 0;
	if (own)
		(void)json_int(cJSON_GetObjectItemCaseSensitive(mc, "code_size"), 0, 1e15, &code_size);
	const char *role = meta_str(mc, "role");
	if (!sha || !cJSON_AddStringToObject(o, "FunctionName", f->name) ||
	    !cJSON_AddStringToObject(o, "FunctionArn", arn) ||
	    !cJSON_AddStringToObject(o, "Runtime", runtime ?: v->manifest.runtime) ||
	    (role && !cJSON_AddStringToObject(o, "Role", role)) ||
	    !cJSON_AddStringToObject(o, "Handler", v->manifest.handler) ||
	    !cJSON_AddNumberToObject(o, "CodeSize", (double)code_size) ||
	    !cJSON_AddStringToObject(o, "Description", description) ||
	    !cJSON_AddNumberToObject(o, "Timeout", (v->manifest.timeout_ms + 999) / 1000) ||
	    !cJSON_AddNumberToObject(o, "MemorySize", v->manifest.memory_mb) ||
	    !cJSON_AddStringToObject(o, "LastModified", t) ||
	    !cJSON_AddStringToObject(o, "CodeSha256", sha) ||
	    !cJSON_AddStringToObject(o, "Version", label) ||
	    !cJSON_AddStringToObject(o, "RevisionId", rev) ||
	    !cJSON_AddStringToObject(o, "State", "Active") ||
	    !cJSON_AddStringToObject(o, "LastUpdateStatus", "Successful") ||
	    !cJSON_AddStringToObject(o, "PackageType", "Zip"))
		return NULL;
	if (v->manifest.n_env > 0) {
		cJSON *env = cJSON_AddObjectToObject(o, "Environment");
		cJSON *vars = env ? cJSON_AddObjectToObject(env, "Variables") : NULL;
		if (!vars)
			return NULL;
		for (size_t i = 0; i < v->manifest.n_env; i++)
			if (!cJSON_AddStringToObject(vars, v->manifest.env_keys[i],
						     v->manifest.env_values[i]))
				return NULL;
	}
	cJSON *tc = cJSON_AddObjectToObject(o, "TracingConfig");
	cJSON *arch = cJSON_AddArrayToObject(o, "Architectures");
	cJSON *eph = cJSON_AddObjectToObject(o, "EphemeralStorage");
	cJSON *as = cJSON_CreateString(meta_str(mc, "arch") ?: l->arch);
	if (!tc || !arch || !eph || !as || !cJSON_AddStringToObject(tc, "Mode", "PassThrough") ||
	    !cJSON_AddItemToArray(arch, as) ||
	    !cJSON_AddNumberToObject(eph, "Size",
				     v->manifest.tmp_mb ? v->manifest.tmp_mb : MANIFEST_TMP_DEFAULT))
		return NULL;
	return TAKE_PTR(o);
}

/* --- request bodies ------------------------------------------------------------------------ */

/* Parses the JSON object body; answers and returns NULL when it is not one. An empty body is an
 * empty object. */
static cJSON *body_object(struct conn *c, const struct reply *rp, const struct http_request *req)
{
	if (!req->body || req->body_len == 0) {
		cJSON *j = cJSON_CreateObject();
		if (!j)
			send_oom(c, rp);
		return j;
	}
	size_t at = 0;
	cJSON *j = json_parse_exact_at(req->body, req->body_len, &at);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		send_error(c, rp, 400, "InvalidRequestContentException",
			   "Could not parse request body into json: not a JSON object (near byte "
			   "%zu)", at);
		return NULL;
	}
	return j;
}

/* Lambda runtime name -> spore runtime, or NULL when unknown. */
static const char *map_runtime(const char *rt)
{
	if (startswith(rt, "python3.") && all_digits(rt + 8))
		return "python3";
	if (streq(rt, "nodejs") || (startswith(rt, "nodejs") &&
				    (rt[6] >= '0' && rt[6] <= '9')))
		return "nodejs";
	if (streq(rt, "provided") || streq(rt, "provided.al2") || streq(rt, "provided.al2023"))
		return "provided";
	return NULL;
}

/* Validation failures are answered here; return false then. */
struct checker {
	struct conn *c;
	const struct reply *rp;
	bool failed;
};

static bool bad(struct checker *k, const char *fmt, ...) _printf_(2, 3);
static bool bad(struct checker *k, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!k->failed)
		send_error(k->c, k->rp, E_INVALID, "%s", msg);
	k->failed = true;
	return false;
}

static const cJSON *get(const cJSON *j, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(j, key);
}

/* An optional string member: NULL when absent or null; answers when of another type. */
static bool opt_string(struct checker *k, const cJSON *j, const char *key, size_t max,
		       const char **ret)
{
	const cJSON *v = get(j, key);
	*ret = NULL;
	if (!v || cJSON_IsNull(v))
		return true;
	if (!cJSON_IsString(v))
		return bad(k, "%s: must be a string", key);
	if (strlen(v->valuestring) > max)
		return bad(k, "%s: longer than %zu characters", key, max);
	*ret = v->valuestring;
	return true;
}

/* What Lambda settings a request changes. */
struct fn_settings {
	const char *runtime; /* Lambda name */
	const char *role, *handler, *description, *arch;
	int64_t memory, timeout_s, ephemeral;
	const cJSON *env; /* Environment.Variables, or NULL */
	bool has_env;
};

/* The configuration members of CreateFunction and UpdateFunctionConfiguration. Features spore
 * does not have are refused when asked for, accepted and ignored when they would be a no-op. */
static bool parse_settings(struct checker *k, struct lambda *l, const cJSON *j,
			   struct fn_settings *s)
{
	*s = (struct fn_settings){ .memory = -1, .timeout_s = -1, .ephemeral = -1 };
	if (!opt_string(k, j, "Runtime", 64, &s->runtime) ||
	    !opt_string(k, j, "Role", 2048, &s->role) ||
	    !opt_string(k, j, "Handler", 128, &s->handler) ||
	    !opt_string(k, j, "Description", DESCRIPTION_MAX, &s->description))
		return false;
	if (s->runtime && !map_runtime(s->runtime))
		return bad(k, "The runtime parameter of %s is not supported here; supported: "
			   "python3.x, nodejs*, provided, provided.al2, provided.al2023",
			   s->runtime);
	if (s->role && !startswith(s->role, "arn:"))
		return bad(k, "1 validation error detected: Value '%s' at 'role' failed to satisfy "
			   "constraint: Member must satisfy regular expression pattern: "
			   "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
			   s->role);
	if (s->handler && (!*s->handler || strpbrk(s->handler, " \t\r\n")))
		return bad(k, "Handler: '%s' must be non-empty, without white space", s->handler);
	const cJSON *v = get(j, "MemorySize");
	if (v && !cJSON_IsNull(v) && !json_int(v, MEMORY_MIN, MEMORY_MAX, &s->memory))
		return bad(k, "MemorySize: must be an integer between %d and %d (MB)", MEMORY_MIN,
			   MEMORY_MAX);
	v = get(j, "Timeout");
	if (v && !cJSON_IsNull(v) && !json_int(v, 1, TIMEOUT_MAX_S, &s->timeout_s))
		return bad(k, "Timeout: must be an integer between 1 and %d (seconds)",
			   TIMEOUT_MAX_S);
	v = get(j, "Environment");
	if (v && !cJSON_IsNull(v)) {
		const cJSON *vars = get(v, "Variables");
		if (!cJSON_IsObject(v) || (vars && !cJSON_IsNull(vars) && !cJSON_IsObject(vars)))
			return bad(k, "Environment: must be {\"Variables\": {\"KEY\": \"value\"}}");
		s->has_env = true;
		s->env = cJSON_IsObject(vars) ? vars : NULL;
		const cJSON *e;
		cJSON_ArrayForEach(e, s->env)
		{
			if (!cJSON_IsString(e))
				return bad(k, "Environment.Variables: the value of '%s' must be a "
					   "string", e->string);
		}
	}
	v = get(j, "EphemeralStorage");
	if (v && !cJSON_IsNull(v) &&
	    !json_int(get(v, "Size"), EPHEMERAL_MIN, EPHEMERAL_MAX, &s->ephemeral))
		return bad(k, "EphemeralStorage.Size: must be an integer between %d and %d (MB)",
			   EPHEMERAL_MIN, EPHEMERAL_MAX);
	v = get(j, "Architectures");
	if (v && !cJSON_IsNull(v)) {
		if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 1 ||
		    !cJSON_IsString(v->child))
			return bad(k, "Architectures: must be a list of one architecture");
		if (!streq(v->child->valuestring, l->arch))
			return bad(k, "Architectures: this host runs %s functions, not '%s'",
				   l->arch, v->child->valuestring);
		s->arch = v->child->valuestring;
	}
	v = get(j, "PackageType");
	if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && streq(v->valuestring, "Zip")))
		return bad(k, "PackageType: only Zip packages are supported here");
	static const char *const lists[] = { "Layers", "FileSystemConfigs" };
	for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
		v = get(j, lists[i]);
		if (v && !cJSON_IsNull(v) && (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > 0))
			return bad(k, "%s: not supported here", lists[i]);
	}
	v = get(j, "VpcConfig");
	if (v && !cJSON_IsNull(v)) {
		const cJSON *sn = get(v, "SubnetIds");
		if (cJSON_GetArraySize(sn) > 0)
			return bad(k, "VpcConfig: not supported here (functions have no network, or "
				   "egress through spore's own network setting)");
	}
	v = get(j, "ImageConfig");
	if (v && !cJSON_IsNull(v) && cJSON_IsObject(v) && v->child)
		return bad(k, "ImageConfig: container images are not supported here");
	return true;
}

/* The manifest for settings s on top of base (NULL: a new function). */
static bool build_manifest(struct checker *k, struct lambda *l, const struct manifest *base,
			   const struct fn_settings *s, struct manifest *ret)
{
	_cleanup_free_ char *err = NULL;
	_cleanup_json_ cJSON *m = base ? manifest_to_json(base) : cJSON_CreateObject();
	if (!m) {
		send_oom(k->c, k->rp);
		k->failed = true;
		return false;
	}
	const char *rt = s->runtime ? map_runtime(s->runtime) : NULL;
	if (rt) {
		if (!zygotes_has_runtime(l->d.zygotes, rt))
			return bad(k, "The runtime parameter of %s is not available on this host "
				   "(spore runtime '%s' is not running)", s->runtime, rt);
		cJSON_DeleteItemFromObjectCaseSensitive(m, "runtime");
		if (!cJSON_AddStringToObject(m, "runtime", rt))
			goto oom;
	}
	const char *spore_rt = cJSON_GetStringValue(get(m, "runtime"));
	if (s->handler) {
		cJSON_DeleteItemFromObjectCaseSensitive(m, "handler");
		if (!cJSON_AddStringToObject(m, "handler", s->handler))
			goto oom;
	} else if (!get(m, "handler") && !(spore_rt && streq(spore_rt, "provided")))
		/* A custom runtime's Handler is optional, as on Lambda (only its _HANDLER). */
		return bad(k, "Handler: required for runtime %s", s->runtime ?: "?");
	if (s->memory >= 0 || !base) {
		cJSON_DeleteItemFromObjectCaseSensitive(m, "memory_mb");
		if (!cJSON_AddNumberToObject(m, "memory_mb", s->memory >= 0 ? (double)s->memory : 128))
			goto oom;
	}
	if (s->timeout_s >= 0 || !base) {
		/* Lambda's default timeout is 3 seconds. */
		cJSON_DeleteItemFromObjectCaseSensitive(m, "timeout_ms");
		if (!cJSON_AddNumberToObject(m, "timeout_ms",
					     (double)(s->timeout_s >= 0 ? s->timeout_s : 3) * 1000))
			goto oom;
	}
	if (s->ephemeral >= 0) {
		cJSON_DeleteItemFromObjectCaseSensitive(m, "tmp_mb");
		if (!cJSON_AddNumberToObject(m, "tmp_mb", (double)s->ephemeral))
			goto oom;
	}
	if (s->has_env) {
		cJSON_DeleteItemFromObjectCaseSensitive(m, "env");
		cJSON *env = s->env ? cJSON_Duplicate(s->env, true) : cJSON_CreateObject();
		if (!env || !cJSON_AddItemToObject(m, "env", env)) {
			cJSON_Delete(env);
			goto oom;
		}
	}
	int r = manifest_from_json(m, ret, &err);
	if (r == -ENOMEM)
		goto oom;
	if (r < 0)
		return bad(k, "%s", err ?: "invalid function configuration");
	return true;
oom:
	send_oom(k->c, k->rp);
	k->failed = true;
	return false;
}

/* --- handlers: functions ------------------------------------------------------------------- */

static bool replace_member(cJSON *o, const char *key, cJSON *v);

struct ctx {
	struct lambda *l;
	struct conn *c;
	const struct http_request *req;
	struct reply rp;
	struct target t;              /* from the path */
	char alias[ALIAS_MAX + 8];    /* from the path, aliases/{name} */
	const struct fn_record *f;    /* found by the dispatcher when the route names one */
	cJSON *meta;                  /* its lambda.json, loaded by the dispatcher */
};

static const struct fn_version *live_version(const struct fn_record *f)
{
	return fn_record_version(f, f->live);
}

/* The Qualifier query parameter merged with a qualifier in the path's name. Answers and returns
 * false when they differ or the query is malformed. */
static bool take_qualifier(struct ctx *x)
{
	_cleanup_free_ char *q = NULL;
	int r = http_request_query(x->req, "Qualifier", &q);
	if (r == -ENOENT)
		return true;
	if (r < 0) {
		send_error(x->c, &x->rp, E_INVALID, "Qualifier: malformed query");
		return false;
	}
	if (!*q)
		return true;
	if (strlen(q) >= sizeof(x->t.qualifier)) {
		send_error(x->c, &x->rp, E_INVALID, "Qualifier: longer than 128 characters");
		return false;
	}
	if (x->t.qualifier[0] && !streq(x->t.qualifier, q)) {
		send_error(x->c, &x->rp, E_INVALID,
			   "The derived qualifier from the function name does not match the "
			   "specified qualifier.");
		return false;
	}
	snprintf(x->t.qualifier, sizeof(x->t.qualifier), "%s", q);
	return true;
}

static bool check_revision(struct ctx *x, const cJSON *body, const char *current)
{
	const char *want = cJSON_GetStringValue(get(body, "RevisionId"));
	if (!want || streq(want, current))
		return true;
	send_error(x->c, &x->rp, E_PRECONDITION,
		   "The Revision Id provided does not match the latest Revision Id. Call the "
		   "GetFunction/GetAlias API to retrieve the latest Revision Id");
	return false;
}

/* Answers a registry deploy failure. */
static void send_deploy_error(struct ctx *x, const char *name, int r, const char *err)
{
	switch (r) {
	case -EINVAL:
		send_error(x->c, &x->rp, E_INVALID, "Could not unzip uploaded file: %s",
			   err ?: "invalid archive");
		break;
	case -EBUSY:
		send_error(x->c, &x->rp, E_CONFLICT,
			   "Function '%s' is broken on disk (unreadable function.json); fix or "
			   "remove it first", name);
		break;
	case -ENOSPC:
	case -EDQUOT:
		send_error(x->c, &x->rp, 400, "CodeStorageExceededException",
			   "No space left in the state directory for '%s'", name);
		break;
	default:
		log_error_errno(r, "lambda: deploy of '%s' failed: %m", name);
		send_error(x->c, &x->rp, E_SERVICE, "deploy of '%s' failed: %s", name, strerror(-r));
	}
}

/* Decodes Code.ZipFile / ZipFile. Answers and returns false on failure. */
static bool decode_zip(struct ctx *x, const cJSON *holder, unsigned char **ret, size_t *ret_len)
{
	const cJSON *z = get(holder, "ZipFile");
	static const char *const others[] = { "S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri" };
	for (size_t i = 0; i < ELEMENTSOF(others); i++) {
		const cJSON *o = get(holder, others[i]);
		if (o && !cJSON_IsNull(o)) {
			send_error(x->c, &x->rp, E_INVALID,
				   "%s: code from S3 or a container image is not supported here; send "
				   "the zip itself (ZipFile, fileb://...)", others[i]);
			return false;
		}
	}
	if (!cJSON_IsString(z)) {
		send_error(x->c, &x->rp, E_INVALID,
			   "Please provide a source for function code: ZipFile (base64 of a .zip)");
		return false;
	}
	int r = base64_decode(z->valuestring, strlen(z->valuestring), ret, ret_len);
	if (r == -ENOMEM) {
		send_oom(x->c, &x->rp);
		return false;
	}
	if (r < 0 || *ret_len == 0) {
		if (r >= 0)
			free(*ret);
		send_error(x->c, &x->rp, E_INVALID, "Could not unzip uploaded file: %s",
			   r < 0 ? "ZipFile is not valid base64" : "the file is empty");
		return false;
	}
	if (*ret_len > ZIP_MAX) {
		free(*ret);
		send_error(x->c, &x->rp, 413, "RequestEntityTooLargeException",
			   "Zipped code must be smaller than %u bytes (got %zu)", ZIP_MAX, *ret_len);
		return false;
	}
	return true;
}

static int publish(struct ctx *x, const struct fn_record *f, cJSON *meta, const char *description,
		   uint32_t *ret_number);

/* Answers with the configuration of $LATEST, or of published version `published` (201 or 200). */
static void send_config(struct ctx *x, int status, const char *name, uint32_t published)
{
	const struct fn_record *f = registry_find(x->l->d.registry, name);
	_cleanup_json_ cJSON *meta = NULL;
	if (!f || meta_load(x->l, name, &meta) < 0) {
		send_error(x->c, &x->rp, E_SERVICE, "cannot read back function '%s'", name);
		return;
	}
	const cJSON *e = published ? meta_published_entry(meta, published) : NULL;
	const struct fn_version *v = fn_record_version(f, e ? entry_u32(e, "spore") : f->live);
	char label[16] = "$LATEST";
	if (e)
		snprintf(label, sizeof(label), "%" PRIu32, published);
	cJSON *o = v ? config_json(x->l, f, v, label, meta, e, e != NULL) : NULL;
	if (!o) {
		send_oom(x->c, &x->rp);
		return;
	}
	send_json(x->c, &x->rp, status, o, NULL);
}

static void op_create_function(struct ctx *x)
{
	_cleanup_json_ cJSON *j = body_object(x->c, &x->rp, x->req);
	if (!j)
		return;
	struct checker k = { x->c, &x->rp, false };
	const char *fname = cJSON_GetStringValue(get(j, "FunctionName"));
	if (!fname) {
		send_error(x->c, &x->rp, E_INVALID, "FunctionName: required");
		return;
	}
	struct target t;
	int r = split_function_name(x->l, fname, &t);
	if (r == -ENOMEM) {
		send_oom(x->c, &x->rp);
		return;
	}
	if (r < 0 || t.qualifier[0] || !function_name_valid(t.name)) {
		send_error(x->c, &x->rp, E_INVALID,
			   "FunctionName: '%.140s' is not a valid spore function name (must match "
			   "[a-z0-9][a-z0-9_-]{0,63}, without a qualifier; spore names are "
			   "lowercase)", fname);
		return;
	}
	struct fn_settings s;
	if (!parse_settings(&k, x->l, j, &s))
		return;
	if (!s.role) {
		send_error(x->c, &x->rp, E_INVALID, "Role: required");
		return;
	}
	if (!s.runtime) {
		send_error(x->c, &x->rp, E_INVALID, "Runtime: required (python3.x, nodejs*, "
			   "provided, provided.al2, provided.al2023)");
		return;
	}
	const cJSON *pub = get(j, "Publish");
	if (pub && !cJSON_IsBool(pub) && !cJSON_IsNull(pub)) {
		send_error(x->c, &x->rp, E_INVALID, "Publish: must be true or false");
		return;
	}
	if (registry_find(x->l->d.registry, t.name)) {
		send_error(x->c, &x->rp, E_CONFLICT, "Function already exist: %s", t.name);
		return;
	}
	const cJSON *code = get(j, "Code");
	if (!cJSON_IsObject(code)) {
		send_error(x->c, &x->rp, E_INVALID, "Code: required, {\"ZipFile\": base64}");
		return;
	}
	struct manifest man = {};
	if (!build_manifest(&k, x->l, NULL, &s, &man))
		return;
	_cleanup_free_ unsigned char *zip = NULL;
	size_t zlen = 0;
	if (!decode_zip(x, code, &zip, &zlen)) {
		manifest_done(&man);
		return;
	}
	uint32_t version = 0;
	_cleanup_free_ char *err = NULL;
	r = registry_deploy(x->l->d.registry, t.name, &man, zip, zlen, &x->l->package_limits,
			    &version, &err);
	manifest_done(&man);
	if (r < 0) {
		send_deploy_error(x, t.name, r, err);
		return;
	}
	log_info("lambda: created '%s' (version %" PRIu32 ", %zu bytes of zip)", t.name, version,
		 zlen);
	_cleanup_json_ cJSON *meta = NULL;
	r = meta_load(x->l, t.name, &meta);
	if (r >= 0)
		r = meta_set_config(meta, version, s.runtime, s.role, s.description, (double)zlen,
				    s.arch ?: x->l->arch);
	uint32_t published = 0;
	if (r >= 0 && cJSON_IsTrue(pub))
		r = publish(x, registry_find(x->l->d.registry, t.name), meta, NULL, &published);
	if (r >= 0)
		r = meta_save(x->l, t.name, meta);
	if (r < 0)
		log_warning_errno(r, "lambda: Lambda settings of '%s' not stored: %m; it runs with "
				  "spore's defaults for them", t.name);
	sched_function_changed(x->l->d.sched, t.name);
	send_config(x, 201, t.name, published);
}

static void op_get_function(struct ctx *x, bool config_only)
{
	if (!take_qualifier(x))
		return;
	struct resolved rv;
	if (resolve(x->meta, x->f, x->t.qualifier, &rv) < 0) {
		send_fn_not_found(x->l, x->c, &x->rp, x->f->name, x->t.qualifier);
		return;
	}
	const struct fn_version *v = fn_record_version(x->f, rv.spore);
	cJSON *cfg = v ? config_json(x->l, x->f, v, rv.label, x->meta, rv.published,
				     x->t.qualifier[0] != 0) : NULL;
	if (!cfg) {
		send_oom(x->c, &x->rp);
		return;
	}
	if (config_only) {
		send_json(x->c, &x->rp, 200, cfg, NULL);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	if (!o || !replace_member(o, "Configuration", cfg)) {
		cJSON_Delete(o);
		send_oom(x->c, &x->rp);
		return;
	}
	cJSON *code = cJSON_AddObjectToObject(o, "Code");
	if (!code || !cJSON_AddStringToObject(code, "RepositoryType", "S3")) {
		cJSON_Delete(o);
		send_oom(x->c, &x->rp);
		return;
	}
	uint32_t reserved = x->f->scaling.max_instances;
	bool throttled = cJSON_IsTrue(meta_member(x->meta, "throttled"));
	if (throttled || reserved) {
		cJSON *cc = cJSON_AddObjectToObject(o, "Concurrency");
		if (!cc || !cJSON_AddNumberToObject(cc, "ReservedConcurrentExecutions",
						    throttled ? 0 : reserved)) {
			cJSON_Delete(o);
			send_oom(x->c, &x->rp);
			return;
		}
	}
	send_json(x->c, &x->rp, 200, o, NULL);
}

/* Marker and MaxItems: *ret_max in 1..50. Answers and returns false when malformed. */
static bool paging(struct ctx *x, char **ret_marker, size_t *ret_max)
{
	_cleanup_free_ char *mi = NULL;
	*ret_marker = NULL;
	*ret_max = PAGE_MAX;
	int r = http_request_query(x->req, "MaxItems", &mi);
	if (r == 0) {
		uint32_t n;
		if (!parse_u32_str(mi, &n) || n > 10000) {
			send_error(x->c, &x->rp, E_INVALID,
				   "MaxItems: must be an integer between 1 and 10000");
			return false;
		}
		*ret_max = n < PAGE_MAX ? n : PAGE_MAX;
	} else if (r != -ENOENT) {
		send_error(x->c, &x->rp, E_INVALID, "MaxItems: malformed query");
		return false;
	}
	r = http_request_query(x->req, "Marker", ret_marker);
	if (r < 0 && r != -ENOENT) {
		send_error(x->c, &x->rp, E_INVALID, "Marker: malformed query");
		return false;
	}
	if (r == -ENOENT)
		*ret_marker = NULL;
	return true;
}

/* Appends items[from, from+max) of a list built by the caller and the next marker. */
static void send_page(struct ctx *x, const char *list_key, cJSON *all, const char *marker,
		      size_t max, char **markers)
{
	size_t n = (size_t)cJSON_GetArraySize(all), from = 0;
	if (marker && *marker) {
		/* After the item whose marker it is; past those that sort before it when that
		 * item is gone. */
		from = n;
		for (size_t i = 0; i < n; i++)
			if (strcmp(markers[i], marker) >= 0) {
				from = streq(markers[i], marker) ? i + 1 : i;
				break;
			}
	}
	cJSON *o = cJSON_CreateObject();
	cJSON *page = cJSON_CreateArray();
	if (!o || !page || !cJSON_AddItemToObject(o, list_key, page)) {
		cJSON_Delete(o);
		cJSON_Delete(page);
		cJSON_Delete(all);
		send_oom(x->c, &x->rp);
		return;
	}
	for (size_t i = from; i < n && i < from + max; i++) {
		cJSON *it = cJSON_DetachItemFromArray(all, (int)from);
		cJSON_AddItemToArray(page, it);
	}
	if (from + max < n && !cJSON_AddStringToObject(o, "NextMarker", markers[from + max - 1])) {
		cJSON_Delete(o);
		cJSON_Delete(all);
		send_oom(x->c, &x->rp);
		return;
	}
	cJSON_Delete(all);
	send_json(x->c, &x->rp, 200, o, NULL);
}

static void free_markers(char **m, size_t n)
{
	for (size_t i = 0; m && i < n; i++)
		free(m[i]);
	free(m);
}

/* Markers sort as the list does: "name", or "name!NNNNNNNNNN" with the version zero-padded
 * ($LATEST is 0; '!' sorts before every character a name may have). */
static char *marker_for(const char *name, const char *label)
{
	char *s = NULL;
	if (!label)
		return strdup(name);
	if (streq(label, "$LATEST"))
		return asprintf(&s, "%s!0000000000", name) < 0 ? NULL : s;
	return asprintf(&s, "%s!%010u", name, (unsigned)strtoul(label, NULL, 10)) < 0 ? NULL : s;
}

static void op_list_functions(struct ctx *x)
{
	_cleanup_free_ char *marker = NULL, *fv = NULL;
	size_t max;
	if (!paging(x, &marker, &max))
		return;
	int r = http_request_query(x->req, "FunctionVersion", &fv);
	bool all_versions = r == 0 && streq(fv, "ALL");
	if (r == 0 && !all_versions) {
		send_error(x->c, &x->rp, E_INVALID, "FunctionVersion: only ALL is accepted");
		return;
	}
	struct registry *reg = x->l->d.registry;
	cJSON *all = cJSON_CreateArray();
	size_t cap = 0, n = 0;
	char **markers = NULL;
	bool oom = !all;
	for (size_t i = 0; !oom && i < registry_count(reg); i++) {
		const struct fn_record *f = registry_at(reg, i);
		_cleanup_json_ cJSON *meta = NULL;
		if (meta_load(x->l, f->name, &meta) < 0) {
			oom = true;
			break;
		}
		size_t npub = all_versions ? (size_t)cJSON_GetArraySize(meta_member(meta, "published"))
					   : 0;
		for (size_t k = 0; !oom && k <= npub; k++) {
			const cJSON *e = k ? cJSON_GetArrayItem(meta_member(meta, "published"),
								(int)k - 1)
					   : NULL;
			char label[16] = "$LATEST";
			uint32_t sv = f->live;
			if (e) {
				snprintf(label, sizeof(label), "%" PRIu32, entry_u32(e, "version"));
				sv = entry_u32(e, "spore");
			}
			const struct fn_version *v = fn_record_version(f, sv);
			if (!v)
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				char **nm = realloc(markers, cap * sizeof(char *));
				if (!nm) {
					oom = true;
					break;
				}
				markers = nm;
			}
			markers[n] = marker_for(f->name, all_versions ? label : NULL);
			cJSON *o = config_json(x->l, f, v, label, meta, e, e != NULL);
			if (!markers[n] || !o || !cJSON_AddItemToArray(all, o)) {
				free(markers[n]);
				cJSON_Delete(o);
				oom = true;
				break;
			}
			n++;
		}
	}
	if (oom) {
		free_markers(markers, n);
		cJSON_Delete(all);
		send_oom(x->c, &x->rp);
		return;
	}
	send_page(x, "Functions", all, marker, max, markers);
	free_markers(markers, n);
}

static void op_delete_function(struct ctx *x)
{
	if (!take_qualifier(x))
		return;
	const char *q = x->t.qualifier;
	if (q[0]) {
		uint32_t n;
		if (streq(q, "$LATEST")) {
			send_error(x->c, &x->rp, E_INVALID,
				   "$LATEST version cannot be deleted without deleting the function.");
			return;
		}
		if (!parse_u32_str(q, &n)) {
			send_error(x->c, &x->rp, E_INVALID,
				   "Deletion of aliases is not supported through DeleteFunction; use "
				   "DeleteAlias ('%s')", q);
			return;
		}
		cJSON *pub = meta_member(x->meta, "published");
		cJSON *e = meta_published_entry(x->meta, n);
		if (!e) {
			send_fn_not_found(x->l, x->c, &x->rp, x->f->name, q);
			return;
		}
		struct buf users = BUF_INIT;
		cJSON *a;
		cJSON_ArrayForEach(a, meta_member(x->meta, "aliases"))
		{
			const cJSON *w = get(a, "weights");
			if (streq(meta_str(a, "version"), q) ||
			    (w && w->child && streq(w->child->string, q)))
				(void)buf_printf(&users, "%s%s", users.len ? ", " : "",
						 meta_str(a, "name"));
		}
		if (users.len) {
			send_error(x->c, &x->rp, E_CONFLICT,
				   "Unable to delete version because the following aliases reference "
				   "it: [%s]", buf_cstr(&users) ?: "");
			buf_done(&users);
			return;
		}
		buf_done(&users);
		cJSON_DetachItemViaPointer(pub, e);
		cJSON_Delete(e);
		int r = meta_save(x->l, x->f->name, x->meta);
		if (r < 0) {
			send_error(x->c, &x->rp, E_SERVICE, "cannot store the change: %s",
				   strerror(-r));
			return;
		}
		log_info("lambda: deleted version %s of '%s'", q, x->f->name);
		send_json(x->c, &x->rp, 204, NULL, NULL);
		return;
	}
	int r = api_function_delete(&x->l->d, x->f->name);
	if (r < 0) {
		send_error(x->c, &x->rp, E_SERVICE, "delete of '%s' failed: %s", x->f->name,
			   strerror(-r));
		return;
	}
	send_json(x->c, &x->rp, 204, NULL, NULL);
}

static void op_update_code(struct ctx *x)
{
	_cleanup_json_ cJSON *j = body_object(x->c, &x->rp, x->req);
	if (!j)
		return;
	const struct fn_record *f = x->f;
	const struct fn_version *live = live_version(f);
	char rev[37];
	revision_id(f, live, rev);
	if (!check_revision(x, j, rev))
		return;
	struct checker k = { x->c, &x->rp, false };
	struct fn_settings s;
	_cleanup_json_ cJSON *only_arch = cJSON_CreateObject();
	const cJSON *arch = get(j, "Architectures");
	if (!only_arch || (arch && !cJSON_AddItemToObject(only_arch, "Architectures",
							  cJSON_Duplicate(arch, true)))) {
		send_oom(x->c, &x->rp);
		return;
	}
	if (!parse_settings(&k, x->l, only_arch, &s))
		return;
	const cJSON *pub = get(j, "Publish"), *dry = get(j, "DryRun");
	_cleanup_free_ unsigned char *zip = NULL;
	size_t zlen = 0;
	if (!decode_zip(x, j, &zip, &zlen))
		return;
	if (cJSON_IsTrue(dry)) {
		send_config(x, 200, f->name, 0);
		return;
	}
	bool own;
	const cJSON *mc = meta_config(x->meta, f, live->version, &own);
	_cleanup_free_ char *runtime = meta_str(mc, "runtime") ? strdup(meta_str(mc, "runtime")) : NULL;
	_cleanup_free_ char *role = meta_str(mc, "role") ? strdup(meta_str(mc, "role")) : NULL;
	_cleanup_free_ char *desc = meta_str(mc, "description") ? strdup(meta_str(mc, "description"))
							       : NULL;
	struct manifest man = {};
	if (manifest_copy(&live->manifest, &man) < 0) {
		send_oom(x->c, &x->rp);
		return;
	}
	char name[72];
	snprintf(name, sizeof(name), "%s", f->name);
	uint32_t version = 0;
	_cleanup_free_ char *err = NULL;
	int r = registry_deploy(x->l->d.registry, name, &man, zip, zlen, &x->l->package_limits,
				&version, &err);
	manifest_done(&man);
	f = x->f = NULL; /* the registry changed */
	if (r < 0) {
		send_deploy_error(x, name, r, err);
		return;
	}
	log_info("lambda: new code for '%s' (version %" PRIu32 ", %zu bytes of zip)", name, version,
		 zlen);
	r = meta_set_config(x->meta, version, runtime, role, desc, (double)zlen,
			    s.arch ?: x->l->arch);
	uint32_t published = 0;
	if (r >= 0 && cJSON_IsTrue(pub))
		r = publish(x, registry_find(x->l->d.registry, name), x->meta, NULL, &published);
	if (r >= 0)
		r = meta_save(x->l, name, x->meta);
	if (r < 0)
		log_warning_errno(r, "lambda: Lambda settings of '%s' not stored: %m, ignoring",
				  name);
	sched_function_changed(x->l->d.sched, name);
	send_config(x, 200, name, published);
}

static void op_update_config(struct ctx *x)
{
	_cleanup_json_ cJSON *j = body_object(x->c, &x->rp, x->req);
	if (!j)
		return;
	const struct fn_record *f = x->f;
	const struct fn_version *live = live_version(f);
	char rev[37];
	revision_id(f, live, rev);
	if (!check_revision(x, j, rev))
		return;
	struct checker k = { x->c, &x->rp, false };
	struct fn_settings s;
	if (!parse_settings(&k, x->l, j, &s))
		return;
	struct manifest man = {};
	if (!build_manifest(&k, x->l, &live->manifest, &s, &man))
		return;
	bool own;
	const cJSON *mc = meta_config(x->meta, f, live->version, &own);
	_cleanup_free_ char *runtime =
		s.runtime ? strdup(s.runtime)
			  : (meta_str(mc, "runtime") && streq(man.runtime, live->manifest.runtime)
				     ? strdup(meta_str(mc, "runtime"))
				     : NULL);
	_cleanup_free_ char *role = s.role || meta_str(mc, "role")
					    ? strdup(s.role ?: meta_str(mc, "role"))
					    : NULL;
	_cleanup_free_ char *desc = s.description || meta_str(mc, "description")
					    ? strdup(s.description ?: meta_str(mc, "description"))
					    : NULL;
	int64_t code_size = 0;
	if (own)
		(void)json_int(get(mc, "code_size"), 0, 1e15, &code_size);
	char name[72];
	snprintf(name, sizeof(name), "%s", f->name);
	struct registry_stage st;
	int r = registry_stage_copy(x->l->d.registry, name, live->version, &st);
	uint32_t version = 0;
	_cleanup_free_ char *err = NULL;
	if (r >= 0)
		r = registry_deploy_stage(x->l->d.registry, name, &man, NULL, &st, &version, &err);
	manifest_done(&man);
	f = x->f = NULL;
	if (r < 0) {
		send_deploy_error(x, name, r, err);
		return;
	}
	log_info("lambda: new configuration for '%s' (version %" PRIu32 ")", name, version);
	r = meta_set_config(x->meta, version, runtime, role, desc, (double)code_size,
			    meta_str(mc, "arch") ?: x->l->arch);
	if (r >= 0)
		r = meta_save(x->l, name, x->meta);
	if (r < 0)
		log_warning_errno(r, "lambda: Lambda settings of '%s' not stored: %m, ignoring",
				  name);
	sched_function_changed(x->l->d.sched, name);
	send_config(x, 200, name, 0);
}

/* Publishes the live version into meta (not saved): a new number, or the last one when it is
 * already that version, as Lambda does when nothing changed. */
static int publish(struct ctx *x, const struct fn_record *f, cJSON *meta, const char *description,
		   uint32_t *ret_number)
{
	(void)x;
	if (!f)
		return -ENOENT;
	cJSON *pub = meta_member(meta, "published");
	cJSON *last = cJSON_GetArrayItem(pub, cJSON_GetArraySize(pub) - 1);
	if (last && entry_u32(last, "spore") == f->live) {
		*ret_number = entry_u32(last, "version");
		return 0;
	}
	int64_t next = 1;
	if (!json_int(get(meta, "next_published"), 1, UINT32_MAX - 1, &next))
		next = 1;
	if (last && entry_u32(last, "version") >= next)
		next = entry_u32(last, "version") + 1;
	cJSON *e = cJSON_CreateObject();
	if (!e || !cJSON_AddNumberToObject(e, "version", (double)next) ||
	    !cJSON_AddNumberToObject(e, "spore", f->live) ||
	    (description && !cJSON_AddStringToObject(e, "description", description)) ||
	    !cJSON_AddItemToArray(pub, e)) {
		cJSON_Delete(e);
		return -ENOMEM;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(meta, "next_published");
	if (!cJSON_AddNumberToObject(meta, "next_published", (double)(next + 1)))
		return -ENOMEM;
	*ret_number = (uint32_t)next;
	return 0;
}

static void op_publish_version(struct ctx *x)
{
	_cleanup_json_ cJSON *j = body_object(x->c, &x->rp, x->req);
	if (!j)
		return;
	const struct fn_version *live = live_version(x->f);
	char rev[37];
	revision_id(x->f, live, rev);
	if (!check_revision(x, j, rev))
		return;
	struct checker k = { x->c, &x->rp, false };
	const char *sha = NULL, *desc = NULL;
	if (!opt_string(&k, j, "CodeSha256", 64, &sha) ||
	    !opt_string(&k, j, "Description", DESCRIPTION_MAX, &desc))
		return;
	if (sha) {
		_cleanup_free_ char *cur = code_sha256_b64(live->sha256);
		if (!cur) {
			send_oom(x->c, &x->rp);
			return;
		}
		if (!streq(sha, cur)) {
			send_error(x->c, &x->rp, E_INVALID,
				   "CodeSHA256 (%s) is different from current CodeSHA256 in $LATEST "
				   "(%s). Please try again with the CodeSHA256 in $LATEST.", sha, cur);
			return;
		}
	}
	uint32_t n = 0;
	int r = publish(x, x->f, x->meta, desc, &n);
	if (r >= 0)
		r = meta_save(x->l, x->f->name, x->meta);
	if (r < 0) {
		send_error(x->c, &x->rp, E_SERVICE, "cannot publish: %s", strerror(-r));
		return;
	}
	log_info("lambda: published '%s' version %" PRIu32 " (spore version %" PRIu32 ")",
		 x->f->name, n, x->f->live);
	send_config(x, 201, x->f->name, n);
}

static void op_list_versions(struct ctx *x)
{
	_cleanup_free_ char *marker = NULL;
	size_t max;
	if (!paging(x, &marker, &max))
		return;
	cJSON *pub = meta_member(x->meta, "published");
	size_t npub = (size_t)cJSON_GetArraySize(pub), n = 0;
	cJSON *all = cJSON_CreateArray();
	char **markers = calloc(npub + 1, sizeof(char *));
	bool oom = !all || !markers;
	for (size_t k = 0; !oom && k <= npub; k++) {
		const cJSON *e = k ? cJSON_GetArrayItem(pub, (int)k - 1) : NULL;
		char label[16] = "$LATEST";
		uint32_t sv = x->f->live;
		if (e) {
			snprintf(label, sizeof(label), "%" PRIu32, entry_u32(e, "version"));
			sv = entry_u32(e, "spore");
		}
		const struct fn_version *v = fn_record_version(x->f, sv);
		if (!v)
			continue;
		markers[n] = marker_for("", label);
		cJSON *o = config_json(x->l, x->f, v, label, x->meta, e, true);
		if (!markers[n] || !o || !cJSON_AddItemToArray(all, o)) {
			free(markers[n]);
			cJSON_Delete(o);
			oom = true;
			break;
		}
		n++;
	}
	if (oom) {
		free_markers(markers, n);
		cJSON_Delete(all);
		send_oom(x->c, &x->rp);
		return;
	}
	send_page(x, "Versions", all, marker, max, markers);
	free_markers(markers, n);
}

/* --- handlers: aliases --------------------------------------------------------------------- */

/* Sets o[key] = v (consumed, also on failure; NULL is a failure). */
static bool replace_member(cJSON *o, const char *key, cJSON *v)
{
	if (!v)
		return false;
	cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	if (!cJSON_AddItemToObject(o, key, v)) {
		cJSON_Delete(v);
		return false;
	}
	return true;
}


static cJSON *alias_json(struct lambda *l, const char *fn, const cJSON *a)
{
	char arn[320];
	function_arn(l, fn, meta_str(a, "name"), arn);
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "AliasArn", arn) ||
	    !cJSON_AddStringToObject(o, "Name", meta_str(a, "name") ?: "") ||
	    !cJSON_AddStringToObject(o, "FunctionVersion", meta_str(a, "version") ?: "") ||
	    !cJSON_AddStringToObject(o, "Description", meta_str(a, "description") ?: "") ||
	    !cJSON_AddStringToObject(o, "RevisionId", meta_str(a, "revision_id") ?: "")) {
		cJSON_Delete(o);
		return NULL;
	}
	const cJSON *w = get(a, "weights");
	if (w && w->child) {
		cJSON *rc = cJSON_AddObjectToObject(o, "RoutingConfig");
		cJSON *avw = rc ? cJSON_AddObjectToObject(rc, "AdditionalVersionWeights") : NULL;
		if (!avw || !cJSON_AddItemToObject(avw, w->child->string,
						   cJSON_CreateNumber(w->child->valuedouble))) {
			cJSON_Delete(o);
			return NULL;
		}
	}
	return o;
}

/* Checks FunctionVersion and RoutingConfig of a Create/UpdateAlias body; *ret_weights is a new
 * {"V": w} object or NULL (none given), *ret_clear true when RoutingConfig clears them. */
static bool alias_params(struct ctx *x, const cJSON *j, const char *version, cJSON **ret_weights,
			 bool *ret_clear)
{
	*ret_weights = NULL;
	*ret_clear = false;
	uint32_t sv;
	bool latest;
	const cJSON *e;
	char label[16];
	if (version && resolve_version(x->meta, x->f, version, &sv, &latest, &e, label) < 0) {
		if (streq(version, "$LATEST") || all_digits(version))
			send_fn_not_found(x->l, x->c, &x->rp, x->f->name, version);
		else
			send_error(x->c, &x->rp, E_INVALID,
				   "FunctionVersion: '%.64s' must be $LATEST or a published version",
				   version);
		return false;
	}
	const cJSON *rc = get(j, "RoutingConfig");
	if (!rc || cJSON_IsNull(rc))
		return true;
	const cJSON *avw = get(rc, "AdditionalVersionWeights");
	if (!cJSON_IsObject(rc) || (avw && !cJSON_IsNull(avw) && !cJSON_IsObject(avw))) {
		send_error(x->c, &x->rp, E_INVALID, "RoutingConfig: must be "
			   "{\"AdditionalVersionWeights\": {\"VERSION\": weight}}");
		return false;
	}
	if (!avw || cJSON_IsNull(avw) || !avw->child) {
		*ret_clear = true;
		return true;
	}
	if (cJSON_GetArraySize(avw) > 1) {
		send_error(x->c, &x->rp, E_INVALID,
			   "RoutingConfig: at most one additional version is supported");
		return false;
	}
	const cJSON *w = avw->child;
	if (!cJSON_IsNumber(w) || !(w->valuedouble >= 0.0 && w->valuedouble <= 1.0)) {
		send_error(x->c, &x->rp, E_INVALID,
			   "RoutingConfig: the weight of version %s must be between 0.0 and 1.0",
			   w->string);
		return false;
	}
	if (!all_digits(w->string) ||
	    resolve_version(x->meta, x->f, w->string, &sv, &latest, &e, label) < 0) {
		send_error(x->c, &x->rp, E_INVALID,
			   "RoutingConfig: additional version '%s' must be a published version",
			   w->string);
		return false;
	}
	if (version && streq(version, w->string)) {
		send_error(x->c, &x->rp, E_INVALID,
			   "RoutingConfig: the additional version must differ from FunctionVersion");
		return false;
	}
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddNumberToObject(o, w->string, w->valuedouble)) {
		cJSON_Delete(o);
		send_oom(x->c, &x->rp);
		return false;
	}
	*ret_weights = o;
	return true;
}

static void op_create_alias(struct ctx *x)
{
	_cleanup_json_ cJSON *j = body_object(x->c, &x->rp, x->req);
	if (!j)
		return;
	const char *name = cJSON_GetStringValue(get(j, "Name"));
	const char *version = cJSON_GetStringValue(get(j, "FunctionVersion"));
	const char *desc = cJSON_GetStringValue(get(j, "Description"));
	if (!name || !alias_name_valid(name)) {
		send_error(x->c, &x->rp, E_INVALID,
			   "Name: '%.140s' must match (?!^[0-9]+$)([a-zA-Z0-9-_]+), at most %d "
			   "characters", name ?: "", ALIAS_MAX);
		return;
	}
	if (!version) {
		send_error(x->c, &x->rp, E_INVALID, "FunctionVersion: required");
		return;
	}
	if (desc && strlen(desc) > DESCRIPTION_MAX) {
		send_error(x->c, &x->rp, E_INVALID, "Description: longer than %d characters",
			   DESCRIPTION_MAX);
		return;
	}
	if (meta_alias(x->meta, name)) {
		char arn[320];
		function_arn(x->l, x->f->name, name, arn);
		send_error(x->c, &x->rp, E_CONFLICT, "Alias already exists: %s", arn);
		return;
	}
	cJSON *weights;
	bool clear;
	if (!alias_params(x, j, version, &weights, &clear))
		return;
	char rev[37];
	make_uuid(rev);
	cJSON *a = cJSON_CreateObject();
	if (!a || !cJSON_AddStringToObject(a, "name", name) ||
	    !cJSON_AddStringToObject(a, "version", version) ||
	    !cJSON_AddStringToObject(a, "description", desc ?: "") ||
	    !cJSON_AddStringToObject(a, "revision_id", rev) ||
	    (weights && !replace_member(a, "weights", TAKE_PTR(weights)))) {
		cJSON_Delete(weights);
		cJSON_Delete(a);
		send_oom(x->c, &x->rp);
		return;
	}
	if (!cJSON_AddItemToArray(meta_member(x->meta, "aliases"), a)) {
		cJSON_Delete(a);
		send_oom(x->c, &x->rp);
		return;
	}
	int r = meta_save(x->l, x->f->name, x->meta);
	if (r < 0) {
		send_error(x->c, &x->rp, E_SERVICE, "cannot store the alias: %s", strerror(-r));
		return;
	}
	log_info("lambda: alias '%s' of '%s' -> %s", name, x->f->name, version);
	cJSON *o = alias_json(x->l, x->f->name, a);
	if (!o)
		send_oom(x->c, &x->rp);
	else
		send_json(x->c, &x->rp, 201, o, NULL);
}

static cJSON *find_alias_or_answer(struct ctx *x)
{
	cJSON *a = meta_alias(x->meta, x->alias);
	if (!a) {
		char arn[320];
		function_arn(x->l, x->f->name, x->alias, arn);
		send_error(x->c, &x->rp, E_NOT_FOUND, "Alias not found: %s", arn);
	}
	return a;
}

static void op_get_alias(struct ctx *x)
{
	cJSON *a = find_alias_or_answer(x);
	if (!a)
		return;
	cJSON *o = alias_json(x->l, x->f->name, a);
	if (!o)
		send_oom(x->c, &x->rp);
	else
		send_json(x->c, &x->rp, 200, o, NULL);
}

static void op_update_alias(struct ctx *x)
{
	_cleanup_json_ cJSON *j = body_object(x->c, &x->rp, x->req);
	if (!j)
		return;
	cJSON *a = find_alias_or_answer(x);
	if (!a)
		return;
	if (!check_revision(x, j, meta_str(a, "revision_id") ?: ""))
		return;
	const char *version = cJSON_GetStringValue(get(j, "FunctionVersion"));
	const char *desc = cJSON_GetStringValue(get(j, "Description"));
	if (desc && strlen(desc) > DESCRIPTION_MAX) {
		send_error(x->c, &x->rp, E_INVALID, "Description: longer than %d characters",
			   DESCRIPTION_MAX);
		return;
	}
	cJSON *weights;
	bool clear;
	if (!alias_params(x, j, version ?: meta_str(a, "version"), &weights, &clear))
		return;
	char rev[37];
	make_uuid(rev);
	bool ok = (!version || replace_member(a, "version", cJSON_CreateString(version))) &&
		  (!desc || replace_member(a, "description", cJSON_CreateString(desc))) &&
		  replace_member(a, "revision_id", cJSON_CreateString(rev));
	if (ok && weights)
		ok = replace_member(a, "weights", TAKE_PTR(weights));
	else if (ok && clear)
		cJSON_DeleteItemFromObjectCaseSensitive(a, "weights");
	cJSON_Delete(weights);
	if (!ok) {
		send_oom(x->c, &x->rp);
		return;
	}
	/* A version change keeps old weights only if they still name another version. */
	const cJSON *w = get(a, "weights");
	if (w && w->child && streq(w->child->string, meta_str(a, "version") ?: ""))
		cJSON_DeleteItemFromObjectCaseSensitive(a, "weights");
	int r = meta_save(x->l, x->f->name, x->meta);
	if (r < 0) {
		send_error(x->c, &x->rp, E_SERVICE, "cannot store the alias: %s", strerror(-r));
		return;
	}
	log_info("lambda: alias '%s' of '%s' -> %s", x->alias, x->f->name, meta_str(a, "version"));
	cJSON *o = alias_json(x->l, x->f->name, a);
	if (!o)
		send_oom(x->c, &x->rp);
	else
		send_json(x->c, &x->rp, 200, o, NULL);
}

static void op_delete_alias(struct ctx *x)
{
	cJSON *a = meta_alias(x->meta, x->alias);
	if (a) {
		const cJSON *p = get(x->meta, "provisioned");
		if (streq(meta_str(p, "qualifier"), x->alias)) {
			send_error(x->c, &x->rp, E_CONFLICT,
				   "Alias '%s' has a provisioned concurrency configuration; delete it "
				   "first", x->alias);
			return;
		}
		cJSON_DetachItemViaPointer(meta_member(x->meta, "aliases"), a);
		cJSON_Delete(a);
		int r = meta_save(x->l, x->f->name, x->meta);
		if (r < 0) {
			send_error(x->c, &x->rp, E_SERVICE, "cannot store the change: %s",
				   strerror(-r));
			return;
		}
		log_info("lambda: deleted alias '%s' of '%s'", x->alias, x->f->name);
	}
	/* As Lambda: deleting an alias that is not there succeeds. */
	send_json(x->c, &x->rp, 204, NULL, NULL);
}

static void op_list_aliases(struct ctx *x)
{
	_cleanup_free_ char *marker = NULL, *fv = NULL;
	size_t max;
	if (!paging(x, &marker, &max))
		return;
	int r = http_request_query(x->req, "FunctionVersion", &fv);
	if (r < 0 && r != -ENOENT) {
		send_error(x->c, &x->rp, E_INVALID, "FunctionVersion: malformed query");
		return;
	}
	cJSON *aliases = meta_member(x->meta, "aliases");
	size_t na = (size_t)cJSON_GetArraySize(aliases), n = 0;
	cJSON *all = cJSON_CreateArray();
	char **markers = calloc(na + 1, sizeof(char *));
	bool oom = !all || !markers;
	/* Sorted by name, so that Marker pages steadily. */
	const cJSON **sorted = calloc(na + 1, sizeof(*sorted));
	oom = oom || !sorted;
	size_t ns = 0;
	const cJSON *a;
	cJSON_ArrayForEach(a, aliases)
	{
		if (oom)
			break;
		if (fv && !streq(meta_str(a, "version"), fv))
			continue;
		size_t at = ns;
		while (at > 0 && strcmp(meta_str(sorted[at - 1], "name") ?: "",
					meta_str(a, "name") ?: "") > 0) {
			sorted[at] = sorted[at - 1];
			at--;
		}
		sorted[at] = a;
		ns++;
	}
	for (size_t i = 0; !oom && i < ns; i++) {
		markers[n] = strdup(meta_str(sorted[i], "name") ?: "");
		cJSON *o = alias_json(x->l, x->f->name, sorted[i]);
		if (!markers[n] || !o || !cJSON_AddItemToArray(all, o)) {
			free(markers[n]);
			cJSON_Delete(o);
			oom = true;
			break;
		}
		n++;
	}
	free(sorted);
	if (oom) {
		free_markers(markers, n);
		cJSON_Delete(all);
		send_oom(x->c, &x->rp);
		return;
	}
	send_page(x, "Aliases", all, marker, max, markers);
	free_markers(markers, n);
}

/* --- handlers: concurrency ----------------------------------------------------------------- */

static bool store_scaling(struct ctx *x, const struct fn_scaling *sc)
{
	int r = registry_set_scaling(x->l->d.registry, x->f->name, sc);
	if (r < 0) {
		send_error(x->c, &x->rp, E_SERVICE, "cannot change the scaling of '%s': %s",
			   x->f->name, strerror(-r));
		return false;
	}
	/* x->f stays valid: the registry changes the record in place. */
	sched_function_changed(x->l->d.sched, x->f->name);
	return true;
}

static bool set_throttled(struct ctx *x, const char *name, bool on)
{
	cJSON_DeleteItemFromObjectCaseSensitive(x->meta, "throttled");
	if (on && !cJSON_AddTrueToObject(x->meta, "throttled")) {
		send_oom(x->c, &x->rp);
		return false;
	}
	int r = meta_save(x->l, name, x->meta);
	if (r < 0) {
		send_error(x->c, &x->rp, E_SERVICE, "cannot store the change: %s", strerror(-r));
		return false;
	}
	return true;
}

static void op_put_concurrency(struct ctx *x)
{
	_cleanup_json_ cJSON *j = body_object(x->c, &x->rp, x->req);
	if (!j)
		return;
	int64_t n;
	if (!json_int(get(j, "ReservedConcurrentExecutions"), 0, SCALING_INSTANCES_MAX, &n)) {
		send_error(x->c, &x->rp, E_INVALID,
			   "ReservedConcurrentExecutions: must be an integer between 0 and %d here",
			   SCALING_INSTANCES_MAX);
		return;
	}
	char name[72];
	snprintf(name, sizeof(name), "%s", x->f->name);
	struct fn_scaling sc = x->f->scaling;
	if (n > 0) {
		if (sc.min_instances > (uint32_t)n) {
			send_error(x->c, &x->rp, E_INVALID,
				   "ReservedConcurrentExecutions: %" PRId64 " is below the function's "
				   "provisioned concurrency (%" PRIu32 ")", n, sc.min_instances);
			return;
		}
		sc.max_instances = (uint32_t)n;
		if (!store_scaling(x, &sc))
			return;
	}
	/* 0 stops every invocation, as Lambda does; the instance maximum stays as it was. */
	if (!set_throttled(x, name, n == 0))
		return;
	log_info("lambda: reserved concurrency of '%s' is %" PRId64, name, n);
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddNumberToObject(o, "ReservedConcurrentExecutions", (double)n)) {
		cJSON_Delete(o);
		send_oom(x->c, &x->rp);
		return;
	}
	send_json(x->c, &x->rp, 200, o, NULL);
}

static void op_get_concurrency(struct ctx *x)
{
	cJSON *o = cJSON_CreateObject();
	bool throttled = cJSON_IsTrue(meta_member(x->meta, "throttled"));
	if (o && (throttled || x->f->scaling.max_instances) &&
	    !cJSON_AddNumberToObject(o, "ReservedConcurrentExecutions",
				     throttled ? 0 : x->f->scaling.max_instances)) {
		cJSON_Delete(o);
		o = NULL;
	}
	if (!o)
		send_oom(x->c, &x->rp);
	else
		send_json(x->c, &x->rp, 200, o, NULL);
}

static void op_delete_concurrency(struct ctx *x)
{
	char name[72];
	snprintf(name, sizeof(name), "%s", x->f->name);
	struct fn_scaling sc = x->f->scaling;
	if (sc.max_instances) {
		sc.max_instances = 0;
		if (sc.min_instances > x->l->d.config->max_instances)
			sc.min_instances = x->l->d.config->max_instances;
		if (!store_scaling(x, &sc))
			return;
	}
	if (!set_throttled(x, name, false))
		return;
	send_json(x->c, &x->rp, 204, NULL, NULL);
}

static cJSON *provisioned_json(const cJSON *p)
{
	int64_t n = 0, t = 0;
	(void)json_int(get(p, "count"), 1, SCALING_INSTANCES_MAX, &n);
	(void)json_int(get(p, "last_modified_us"), 0, 9e15, &t);
	char ts[40];
	format_lambda_time(t, ts);
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddNumberToObject(o, "RequestedProvisionedConcurrentExecutions", (double)n) ||
	    !cJSON_AddNumberToObject(o, "AvailableProvisionedConcurrentExecutions", (double)n) ||
	    !cJSON_AddNumberToObject(o, "AllocatedProvisionedConcurrentExecutions", (double)n) ||
	    !cJSON_AddStringToObject(o, "Status", "READY") ||
	    !cJSON_AddStringToObject(o, "LastModified", ts)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* Provisioned concurrency needs a published version or an alias, as Lambda. */
static bool provisioned_qualifier(struct ctx *x)
{
	if (!take_qualifier(x))
		return false;
	const char *q = x->t.qualifier;
	if (!q[0] || streq(q, "$LATEST")) {
		send_error(x->c, &x->rp, E_INVALID,
			   "Provisioned Concurrency Configs cannot be applied to unpublished "
			   "function versions.");
		return false;
	}
	struct resolved rv;
	if (resolve(x->meta, x->f, q, &rv) < 0) {
		send_fn_not_found(x->l, x->c, &x->rp, x->f->name, q);
		return false;
	}
	return true;
}

static void op_put_provisioned(struct ctx *x)
{
	if (!provisioned_qualifier(x))
		return;
	_cleanup_json_ cJSON *j = body_object(x->c, &x->rp, x->req);
	if (!j)
		return;
	int64_t n;
	uint32_t max = x->f->scaling.max_instances ?: x->l->d.config->max_instances;
	if (!json_int(get(j, "ProvisionedConcurrentExecutions"), 1, SCALING_INSTANCES_MAX, &n)) {
		send_error(x->c, &x->rp, E_INVALID,
			   "ProvisionedConcurrentExecutions: must be a positive integer");
		return;
	}
	if ((uint32_t)n > max) {
		send_error(x->c, &x->rp, E_INVALID,
			   "ProvisionedConcurrentExecutions: %" PRId64 " is above the function's "
			   "concurrency limit (%" PRIu32 ")", n, max);
		return;
	}
	const cJSON *p = get(x->meta, "provisioned");
	const char *pq = meta_str(p, "qualifier");
	if (pq && !streq(pq, x->t.qualifier)) {
		send_error(x->c, &x->rp, E_CONFLICT,
			   "spore keeps one provisioned concurrency configuration per function, "
			   "now on '%s'; delete it first", pq);
		return;
	}
	char name[72];
	snprintf(name, sizeof(name), "%s", x->f->name);
	cJSON *np = cJSON_CreateObject();
	if (!np || !cJSON_AddStringToObject(np, "qualifier", x->t.qualifier) ||
	    !cJSON_AddNumberToObject(np, "count", (double)n) ||
	    !cJSON_AddNumberToObject(np, "last_modified_us", (double)realtime_us()) ||
	    !replace_member(x->meta, "provisioned", TAKE_PTR(np))) {
		cJSON_Delete(np);
		send_oom(x->c, &x->rp);
		return;
	}
	struct fn_scaling sc = x->f->scaling;
	sc.min_instances = (uint32_t)n;
	int r = meta_save(x->l, name, x->meta);
	if (r < 0) {
		send_error(x->c, &x->rp, E_SERVICE, "cannot store the change: %s", strerror(-r));
		return;
	}
	if (!store_scaling(x, &sc))
		return;
	log_info("lambda: provisioned concurrency of '%s' (%s) is %" PRId64, name,
		 x->t.qualifier, n);
	cJSON *o = provisioned_json(get(x->meta, "provisioned"));
	if (!o)
		send_oom(x->c, &x->rp);
	else
		send_json(x->c, &x->rp, 202, o, NULL);
}

static void op_get_provisioned(struct ctx *x)
{
	if (!provisioned_qualifier(x))
		return;
	const cJSON *p = get(x->meta, "provisioned");
	if (!p || !streq(meta_str(p, "qualifier"), x->t.qualifier)) {
		send_error(x->c, &x->rp, 404, "ProvisionedConcurrencyConfigNotFoundException",
			   "No Provisioned Concurrency Config found for this function");
		return;
	}
	cJSON *o = provisioned_json(p);
	if (!o)
		send_oom(x->c, &x->rp);
	else
		send_json(x->c, &x->rp, 200, o, NULL);
}

static void op_delete_provisioned(struct ctx *x)
{
	if (!provisioned_qualifier(x))
		return;
	const cJSON *p = get(x->meta, "provisioned");
	if (p && streq(meta_str(p, "qualifier"), x->t.qualifier)) {
		char name[72];
		snprintf(name, sizeof(name), "%s", x->f->name);
		cJSON_DeleteItemFromObjectCaseSensitive(x->meta, "provisioned");
		int r = meta_save(x->l, name, x->meta);
		if (r < 0) {
			send_error(x->c, &x->rp, E_SERVICE, "cannot store the change: %s",
				   strerror(-r));
			return;
		}
		struct fn_scaling sc = x->f->scaling;
		sc.min_instances = 0;
		if (!store_scaling(x, &sc))
			return;
	}
	send_json(x->c, &x->rp, 204, NULL, NULL);
}

/* --- Invoke -------------------------------------------------------------------------------- */

struct captured {
	char instance[48];
	char *message; /* without newline */
	size_t len;
	struct captured *next;
};

struct snap {
	char id[48];
	double invocations;
};

struct pending {
	struct lambda *l;
	struct conn *conn;
	struct invocation *inv;
	char name[72];
	char label[16];      /* X-Amz-Executed-Version */
	uint32_t spore;      /* the version run (0: live) */
	uint32_t filter_version; /* the version expected to run it, for the log tail */
	uint32_t memory_mb;
	double timeout_s;
	bool tail;
	struct log_follower *follower;
	struct captured *head, *tail_line;
	size_t captured_bytes;
	struct snap *snap; /* idle instances of the version when it started */
	size_t n_snap;
	bool started;
};

static void captured_free_all(struct pending *p)
{
	while (p->head) {
		struct captured *c = p->head;
		p->head = c->next;
		free(c->message);
		free(c);
	}
	p->tail_line = NULL;
	p->captured_bytes = 0;
}

static void pending_free(struct pending *p)
{
	log_follower_free(p->follower);
	captured_free_all(p);
	free(p->snap);
	conn_unref(p->conn);
	free(p);
}

static void capture_line(void *ud, const char *line, size_t len)
{
	struct pending *p = ud;
	if (!p->started)
		return;
	_cleanup_json_ cJSON *j = cJSON_ParseWithLength(line, len);
	const char *inst = meta_str(j, "instance"), *msg = meta_str(j, "message");
	if (!inst || !msg)
		return;
	struct captured *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	snprintf(c->instance, sizeof(c->instance), "%s", inst);
	c->len = strlen(msg);
	c->message = strdup(msg);
	if (!c->message) {
		free(c);
		return;
	}
	if (p->tail_line)
		p->tail_line->next = c;
	else
		p->head = c;
	p->tail_line = c;
	p->captured_bytes += c->len + 1;
	while (p->captured_bytes > CAPTURE_MAX && p->head != p->tail_line) {
		struct captured *h = p->head;
		p->head = h->next;
		p->captured_bytes -= h->len + 1;
		free(h->message);
		free(h);
	}
}

/* The instances that were idle with this version when the invocation went out: the one that ran
 * it is among them (the scheduler does not say which, see docs/LAMBDA.md). */
static void snapshot_instances(struct pending *p)
{
	p->started = true;
	if (!p->tail)
		return;
	_cleanup_json_ cJSON *a = sched_instances_json(p->l->d.sched, p->name);
	size_t n = (size_t)cJSON_GetArraySize(a), k = 0;
	p->snap = calloc(n + 1, sizeof(*p->snap));
	if (!p->snap)
		return;
	const cJSON *i;
	cJSON_ArrayForEach(i, a)
	{
		int64_t v;
		if (!streq(meta_str(i, "state"), "idle") ||
		    !json_int(get(i, "version"), 1, UINT32_MAX, &v) ||
		    (uint32_t)v != p->filter_version)
			continue;
		snprintf(p->snap[k].id, sizeof(p->snap[k].id), "%s", meta_str(i, "id") ?: "");
		p->snap[k].invocations = cJSON_GetNumberValue(get(i, "invocations"));
		k++;
	}
	p->n_snap = k;
}

static void on_start(void *ud)
{
	snapshot_instances(ud);
}

/* Whether instance id may have run this invocation: idle at its start, and now either idle with
 * more invocations than then, or gone (it crashed). */
static bool ran_it(const struct pending *p, const cJSON *now, const char *id)
{
	const struct snap *s = NULL;
	for (size_t i = 0; i < p->n_snap; i++)
		if (streq(p->snap[i].id, id))
			s = &p->snap[i];
	if (!s)
		return false;
	const cJSON *i;
	cJSON_ArrayForEach(i, now)
	{
		if (!streq(meta_str(i, "id"), id))
			continue;
		return streq(meta_str(i, "state"), "idle") &&
		       cJSON_GetNumberValue(get(i, "invocations")) > s->invocations;
	}
	return true;
}

/* base64 of the last 4 KB of START, the invocation's lines, END, REPORT. */
static char *log_result(struct pending *p, const struct invoke_result *r)
{
	_cleanup_json_ cJSON *now = sched_instances_json(p->l->d.sched, p->name);
	struct buf b = BUF_INIT;
	int k = buf_printf(&b, "START RequestId: %s Version: %s\n", r->request_id ?: "", p->label);
	for (struct captured *c = p->head; k >= 0 && c; c = c->next)
		if (ran_it(p, now, c->instance))
			k = buf_printf(&b, "%s\n", c->message);
	if (k >= 0)
		k = buf_printf(&b,
			       "END RequestId: %s\nREPORT RequestId: %s\tDuration: %.2f ms\t"
			       "Billed Duration: %llu ms\tMemory Size: %u MB\t\n",
			       r->request_id ?: "", r->request_id ?: "",
			       (double)r->duration_us / 1000.0,
			       (unsigned long long)((r->duration_us + 999) / 1000), p->memory_mb);
	char *out = NULL;
	if (k >= 0) {
		size_t from = b.len > LOG_TAIL_BYTES ? b.len - LOG_TAIL_BYTES : 0;
		out = base64_encode(b.data + from, b.len - from);
	}
	buf_done(&b);
	return out;
}

/* The "error" kind spored's scheduler put in an error body. */
static const char *error_kind(const cJSON *j)
{
	return meta_str(j, "error") ?: "";
}

static void invoke_abort(void *ud)
{
	struct pending *p = ud;
	sched_invocation_cancel(p->l->d.sched, p->inv);
	pending_free(p);
}

static void invoke_done(void *ud, const struct invoke_result *r)
{
	struct pending *p = ud;
	struct reply rp;
	reply_init(&rp);
	if (r->request_id && *r->request_id)
		snprintf(rp.request_id, sizeof(rp.request_id), "%s", r->request_id);
	conn_set_abort(p->conn, NULL, NULL);

	_cleanup_free_ char *logres = p->tail && r->reached ? log_result(p, r) : NULL;
	char extra[8192];
	int n = snprintf(extra, sizeof(extra), "X-Amz-Executed-Version: %s\r\n", p->label);
	if (logres && strlen(logres) + 32 < sizeof(extra) - (size_t)n)
		n += snprintf(extra + n, sizeof(extra) - (size_t)n, "X-Amz-Log-Result: %s\r\n",
			      logres);

	if (r->status == 200) {
		if (r->len > SYNC_PAYLOAD_MAX)
			send_error(p->conn, &rp, 502, "RequestTooLargeException",
				   "Response payload size (%zu bytes) exceeded maximum allowed payload "
				   "size (%u bytes).", r->len, SYNC_PAYLOAD_MAX);
		else {
			char hdrs[8400];
			snprintf(hdrs, sizeof(hdrs), "x-amzn-RequestId: %s\r\n%s", rp.request_id,
				 extra);
			(void)conn_respond(p->conn, 200, "application/json", r->body, r->len, hdrs);
		}
		pending_free(p);
		return;
	}
	_cleanup_json_ cJSON *e = cJSON_ParseWithLength(r->body, r->len);
	const char *kind = error_kind(e), *msg = meta_str(e, "message") ?: "";
	if (streq(kind, "function_error") || streq(kind, "timeout") || streq(kind, "crashed") ||
	    streq(kind, "out_of_memory")) {
		/* The function failed: HTTP 200, X-Amz-Function-Error, Lambda's error document. */
		cJSON *o = cJSON_CreateObject();
		char m[2300];
		const char *type = meta_str(e, "errorType");
		const char *emsg = meta_str(e, "errorMessage");
		if (streq(kind, "timeout")) {
			type = "Sandbox.Timedout";
			snprintf(m, sizeof(m), "RequestId: %s Error: Task timed out after %.2f seconds",
				 rp.request_id, p->timeout_s);
			emsg = m;
		} else if (!streq(kind, "function_error")) {
			type = streq(kind, "out_of_memory") ? "Runtime.OutOfMemory" : "Runtime.ExitError";
			snprintf(m, sizeof(m), "RequestId: %s Error: %s", rp.request_id, msg);
			emsg = m;
		}
		cJSON *st = cJSON_DetachItemFromObjectCaseSensitive(e, "stackTrace");
		if (!o || !cJSON_AddStringToObject(o, "errorMessage", emsg ?: msg) ||
		    !cJSON_AddStringToObject(o, "errorType", type ?: "Error") ||
		    !cJSON_AddStringToObject(o, "requestId", rp.request_id) ||
		    !cJSON_AddItemToObject(o, "stackTrace", st ?: cJSON_CreateArray())) {
			cJSON_Delete(o);
			send_oom(p->conn, &rp);
			pending_free(p);
			return;
		}
		n += snprintf(extra + n, sizeof(extra) - (size_t)n, "X-Amz-Function-Error: Unhandled\r\n");
		(void)n;
		send_json(p->conn, &rp, 200, o, extra);
	} else if (r->status == 429 || streq(kind, "capacity"))
		send_throttled(p->conn, &rp, streq(kind, "capacity") ? "ConcurrentInvocationLimitExceeded"
								     : "ReservedFunctionConcurrentInvocationLimitExceeded",
			       "Rate Exceeded. (%s)", msg);
	else if (r->status == 404)
		send_fn_not_found(p->l, p->conn, &rp, p->name, streq(p->label, "$LATEST") ? NULL
											 : p->label);
	else
		send_error(p->conn, &rp, E_SERVICE, "%s", *msg ? msg : "the invocation failed");
	pending_free(p);
}

/* Picks the version of an alias with a weighted second version. */
static void pick(const struct resolved *rv, uint32_t *ret_spore, bool *ret_latest,
		 const char **ret_label)
{
	*ret_spore = rv->spore;
	*ret_latest = rv->latest;
	*ret_label = rv->label;
	if (rv->alt_weight <= 0.0)
		return;
	uint32_t x;
	random_bytes((unsigned char *)&x, sizeof(x));
	if ((double)x / 4294967296.0 < rv->alt_weight) {
		*ret_spore = rv->alt_spore;
		*ret_latest = rv->alt_latest;
		*ret_label = rv->alt_label;
	}
}

static void op_invoke(struct ctx *x)
{
	if (!take_qualifier(x))
		return;
	struct resolved rv;
	if (resolve(x->meta, x->f, x->t.qualifier, &rv) < 0) {
		send_fn_not_found(x->l, x->c, &x->rp, x->f->name, x->t.qualifier);
		return;
	}
	const char *type = http_request_header(x->req, "X-Amz-Invocation-Type") ?: "RequestResponse";
	const char *log_type = http_request_header(x->req, "X-Amz-Log-Type") ?: "None";
	bool event = streq(type, "Event"), dry = streq(type, "DryRun");
	if (!event && !dry && !streq(type, "RequestResponse")) {
		send_error(x->c, &x->rp, E_INVALID,
			   "X-Amz-Invocation-Type: '%.32s' is not RequestResponse, Event or DryRun",
			   type);
		return;
	}
	if (!streq(log_type, "None") && !streq(log_type, "Tail")) {
		send_error(x->c, &x->rp, E_INVALID, "X-Amz-Log-Type: '%.32s' is not None or Tail",
			   log_type);
		return;
	}
	size_t limit = event ? ASYNC_PAYLOAD_MAX : SYNC_PAYLOAD_MAX;
	if (x->req->body_len > limit) {
		send_error(x->c, &x->rp, 413, "RequestTooLargeException",
			   "Request must be smaller than %zu bytes for the InvokeFunction operation",
			   limit);
		return;
	}
	const char *event_json = "{}";
	size_t len = 2;
	if (x->req->body_len > 0) {
		size_t at = 0;
		if (!json_valid(x->req->body, x->req->body_len, &at)) {
			send_error(x->c, &x->rp, 400, "InvalidRequestContentException",
				   "Could not parse request body into json: invalid JSON near byte "
				   "%zu", at);
			return;
		}
		event_json = x->req->body;
		len = x->req->body_len;
	}
	if (cJSON_IsTrue(meta_member(x->meta, "throttled"))) {
		send_throttled(x->c, &x->rp, "ReservedFunctionConcurrentInvocationLimitExceeded",
			       "Rate Exceeded.");
		return;
	}
	if (dry) {
		send_json(x->c, &x->rp, 204, NULL, NULL);
		return;
	}
	uint32_t spore;
	bool latest;
	const char *label;
	pick(&rv, &spore, &latest, &label);
	if (event) {
		/* Durable and retried: spored's asynchronous queue. $LATEST runs the live version
		 * when the event's turn comes; a qualifier (a published version, an alias's pick)
		 * is pinned to the version it named now. */
		char id[40];
		int r = x->l->d.async ? async_submit_version(x->l->d.async, x->f->name,
							     latest ? 0 : spore, event_json, len, id)
				      : -EOPNOTSUPP;
		if (r == -EAGAIN) {
			send_throttled(x->c, &x->rp, "ConcurrentInvocationLimitExceeded",
				       "Rate Exceeded. (too many asynchronous invocations pending)");
			return;
		}
		if (r < 0) {
			send_error(x->c, &x->rp, E_SERVICE, "cannot accept the event: %s",
				   strerror(-r));
			return;
		}
		(void)label;
		send_json(x->c, &x->rp, 202, NULL, NULL);
		return;
	}
	const struct fn_version *v = fn_record_version(x->f, spore);
	struct pending *p = calloc(1, sizeof(*p));
	if (!p || !v) {
		free(p);
		send_oom(x->c, &x->rp);
		return;
	}
	p->l = x->l;
	p->conn = conn_ref(x->c);
	snprintf(p->name, sizeof(p->name), "%s", x->f->name);
	snprintf(p->label, sizeof(p->label), "%s", label);
	p->spore = latest ? 0 : spore;
	p->filter_version = spore;
	p->memory_mb = v->manifest.memory_mb;
	p->timeout_s = v->manifest.timeout_ms / 1000.0;
	p->tail = streq(log_type, "Tail");
	if (p->tail) {
		int r = log_store_follow(x->l->d.logs, p->name, capture_line, p, &p->follower);
		if (r < 0)
			log_debug("lambda: cannot follow the log of '%s': %s", p->name, strerror(-r));
	}
	conn_set_abort(x->c, invoke_abort, p);
	int r = sched_invoke_ex(x->l->d.sched, p->name, p->spore, event_json, len, invoke_done,
				on_start, p, &p->inv);
	if (r < 0) {
		conn_set_abort(x->c, NULL, NULL);
		pending_free(p);
		if (r == -EAGAIN)
			send_throttled(x->c, &x->rp, "ReservedFunctionConcurrentInvocationLimitExceeded",
				       "Rate Exceeded.");
		else if (r == -ENOENT)
			send_fn_not_found(x->l, x->c, &x->rp, x->f->name, x->t.qualifier);
		else
			send_error(x->c, &x->rp, E_SERVICE, "invoke failed: %s", strerror(-r));
	}
}

/* --- routing ------------------------------------------------------------------------------- */

enum op {
	OP_LIST_FUNCTIONS,
	OP_CREATE_FUNCTION,
	OP_GET_FUNCTION,
	OP_DELETE_FUNCTION,
	OP_GET_CONFIG,
	OP_UPDATE_CONFIG,
	OP_UPDATE_CODE,
	OP_PUBLISH_VERSION,
	OP_LIST_VERSIONS,
	OP_CREATE_ALIAS,
	OP_LIST_ALIASES,
	OP_GET_ALIAS,
	OP_UPDATE_ALIAS,
	OP_DELETE_ALIAS,
	OP_INVOKE,
	OP_PUT_CONCURRENCY,
	OP_GET_CONCURRENCY,
	OP_DELETE_CONCURRENCY,
	OP_PUT_PROVISIONED,
	OP_GET_PROVISIONED,
	OP_DELETE_PROVISIONED,
	_OP_MAX,
	_OP_INVALID = -EINVAL,
};

static const struct {
	const char *date, *sub, *method;
	enum op op;
} routes[] = {
	/* sub: NULL = /functions, "" = /functions/{F}, "aliases/" = aliases/{A} */
	{ "2015-03-31", NULL, "GET", OP_LIST_FUNCTIONS },
	{ "2015-03-31", NULL, "POST", OP_CREATE_FUNCTION },
	{ "2015-03-31", "", "GET", OP_GET_FUNCTION },
	{ "2015-03-31", "", "DELETE", OP_DELETE_FUNCTION },
	{ "2015-03-31", "configuration", "GET", OP_GET_CONFIG },
	{ "2015-03-31", "configuration", "PUT", OP_UPDATE_CONFIG },
	{ "2015-03-31", "code", "PUT", OP_UPDATE_CODE },
	{ "2015-03-31", "versions", "POST", OP_PUBLISH_VERSION },
	{ "2015-03-31", "versions", "GET", OP_LIST_VERSIONS },
	{ "2015-03-31", "aliases", "POST", OP_CREATE_ALIAS },
	{ "2015-03-31", "aliases", "GET", OP_LIST_ALIASES },
	{ "2015-03-31", "aliases/", "GET", OP_GET_ALIAS },
	{ "2015-03-31", "aliases/", "PUT", OP_UPDATE_ALIAS },
	{ "2015-03-31", "aliases/", "DELETE", OP_DELETE_ALIAS },
	{ "2015-03-31", "invocations", "POST", OP_INVOKE },
	{ "2017-10-31", "concurrency", "PUT", OP_PUT_CONCURRENCY },
	{ "2017-10-31", "concurrency", "DELETE", OP_DELETE_CONCURRENCY },
	{ "2019-09-30", "concurrency", "GET", OP_GET_CONCURRENCY },
	{ "2019-09-30", "provisioned-concurrency", "PUT", OP_PUT_PROVISIONED },
	{ "2019-09-30", "provisioned-concurrency", "GET", OP_GET_PROVISIONED },
	{ "2019-09-30", "provisioned-concurrency", "DELETE", OP_DELETE_PROVISIONED },
};

bool lambda_path(const char *path)
{
	return startswith(path, "/2015-03-31/") || startswith(path, "/2017-10-31/") ||
	       startswith(path, "/2019-09-30/");
}

/* Matches method + decoded path. 0 with *ret_op and the alias (aliases/{name}) in x->alias;
 * -ENOENT no such path; -EOPNOTSUPP path known, method not. The function name is taken from the
 * path by path_function_segment(). */
static int match(const char *method, const char *path, enum op *ret_op, struct ctx *x)
{
	if (strlen(path) < 12)
		return -ENOENT;
	char date[11];
	memcpy(date, path + 1, 10);
	date[10] = 0;
	const char *rest = path + 11; /* "/functions..." */
	if (!startswith(rest, "/functions"))
		return -ENOENT;
	rest += 10;
	const char *sub = NULL;
	char fname[256] = "", subbuf[64] = "", alias[256] = "";
	if (*rest == 0 || streq(rest, "/"))
		sub = NULL;
	else if (*rest == '/') {
		rest++;
		size_t nl = strcspn(rest, "/");
		if (nl == 0 || nl >= sizeof(fname))
			return -ENOENT;
		memcpy(fname, rest, nl);
		fname[nl] = 0;
		rest += nl;
		if (*rest == '/')
			rest++;
		size_t sl = strcspn(rest, "/");
		if (sl >= sizeof(subbuf))
			return -ENOENT;
		memcpy(subbuf, rest, sl);
		subbuf[sl] = 0;
		rest += sl;
		if (*rest == '/')
			rest++;
		if (streq(subbuf, "aliases") && *rest) {
			size_t al = strcspn(rest, "/");
			if (al >= sizeof(alias) || (rest[al] && !streq(rest + al, "/")))
				return -ENOENT;
			memcpy(alias, rest, al);
			alias[al] = 0;
			strcpy(subbuf, "aliases/");
		} else if (*rest)
			return -ENOENT;
		sub = subbuf;
	} else
		return -ENOENT;
	bool path_known = false;
	for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
		if (!streq(routes[i].date, date) || (routes[i].sub == NULL) != (sub == NULL) ||
		    (sub && !streq(routes[i].sub, sub)))
			continue;
		path_known = true;
		if (!streq(routes[i].method, method))
			continue;
		*ret_op = routes[i].op;
		size_t alen = strlen(alias);
		if (alen >= sizeof(x->alias))
			return -ENOENT;
		memcpy(x->alias, alias, alen + 1);
		return 0;
	}
	return path_known ? -EOPNOTSUPP : -ENOENT;
}

size_t lambda_body_limit(struct lambda *l, const char *method, const char *path)
{
	struct ctx x = {};
	enum op op;
	int r = match(method, path, &op, &x);
	if (r < 0)
		return 64u * 1024u;
	switch (op) {
	case OP_CREATE_FUNCTION:
	case OP_UPDATE_CODE:
		return (size_t)l->d.config->deploy_body_max;
	case OP_INVOKE:
		/* A little over Lambda's 6 MB so that a larger payload gets Lambda's error. */
		return SYNC_PAYLOAD_MAX + 64u * 1024u;
	default:
		return 64u * 1024u;
	}
}

/* The raw function-name segment of the path (between /functions/ and the next '/'). */
static void path_function_segment(const char *path, char out[256])
{
	out[0] = 0;
	const char *p = strstr(path, "/functions/");
	if (!p)
		return;
	p += 11;
	size_t n = strcspn(p, "/");
	if (n >= 256)
		n = 255;
	memcpy(out, p, n);
	out[n] = 0;
}

static bool authenticate(struct lambda *l, struct conn *c, const struct http_request *req,
			 const struct reply *rp)
{
	if (conn_is_unix(c) || l->d.config->lambda_allow_unsigned)
		return true;
	if (keys_refresh(l))
		log_keys_state(l);
	if (!l->d.config->lambda_access_keys || l->keys_error) {
		send_error(c, rp, 403, "UnrecognizedClientException",
			   "The security token included in the request is invalid. (spored has no "
			   "usable access keys: %s)", l->d.config->lambda_access_keys
				   ? "see its log"
				   : "set lambda_access_keys in its configuration");
		return false;
	}
	struct sigv4_request sr = {
		.method = req->method,
		.target = req->target,
		.headers = req->headers,
		.n_headers = req->n_headers,
		.body = req->body,
		.body_len = req->body_len,
	};
	struct sigv4_params p = {
		.region = l->d.config->lambda_region,
		.service = "lambda",
		.now_s = realtime_us() / 1000000,
		.secret = key_secret,
		.userdata = l,
	};
	_cleanup_free_ char *msg = NULL;
	int r = sigv4_verify(&sr, &p, &msg, NULL);
	if (r == SIGV4_OK)
		return true;
	if (r < 0) {
		send_oom(c, rp);
		return false;
	}
	send_error(c, rp, 403, sigv4_status_error_type(r), "%s", msg ?: "signature refused");
	return false;
}

void lambda_handle(struct lambda *l, struct conn *c, const struct http_request *req)
{
	struct ctx x = { .l = l, .c = c, .req = req };
	reply_init(&x.rp);
	if (!authenticate(l, c, req, &x.rp))
		return;
	enum op op;
	int r = match(req->method, req->path, &op, &x);
	if (r == -EOPNOTSUPP) {
		send_error(c, &x.rp, 405, "MethodNotAllowedException",
			   "method %s is not allowed on %.200s", req->method, req->path);
		return;
	}
	if (r < 0) {
		send_error(c, &x.rp, 404, "UnknownOperationException",
			   "no Lambda operation for %s %.200s", req->method, req->path);
		return;
	}
	if (op == OP_LIST_FUNCTIONS) {
		op_list_functions(&x);
		return;
	}
	if (op == OP_CREATE_FUNCTION) {
		op_create_function(&x);
		return;
	}
	char raw[256];
	path_function_segment(req->path, raw);
	r = split_function_name(l, raw, &x.t);
	if (r == -ENOMEM) {
		send_oom(c, &x.rp);
		return;
	}
	if (r == -EINVAL) {
		send_error(c, &x.rp, E_INVALID,
			   "FunctionName: '%.170s' is not a function name, partial ARN or ARN", raw);
		return;
	}
	if (r == -ENOENT) {
		/* an ARN of another account or region */
		send_error(c, &x.rp, E_NOT_FOUND, "Function not found: %.170s", raw);
		return;
	}
	x.f = r == 0 && function_name_valid(x.t.name) ? registry_find(l->d.registry, x.t.name)
						     : NULL;
	if (!x.f) {
		send_fn_not_found(l, c, &x.rp, x.t.name, x.t.qualifier);
		return;
	}
	if (!live_version(x.f)) {
		send_error(c, &x.rp, E_SERVICE, "function '%s' has no live version", x.t.name);
		return;
	}
	r = meta_load(l, x.f->name, &x.meta);
	if (r < 0) {
		send_error(c, &x.rp, E_SERVICE, "cannot read the Lambda settings of '%s': %s",
			   x.f->name, strerror(-r));
		return;
	}
	switch (op) {
	case OP_GET_FUNCTION:
		op_get_function(&x, false);
		break;
	case OP_GET_CONFIG:
		op_get_function(&x, true);
		break;
	case OP_DELETE_FUNCTION:
		op_delete_function(&x);
		break;
	case OP_UPDATE_CODE:
		op_update_code(&x);
		break;
	case OP_UPDATE_CONFIG:
		op_update_config(&x);
		break;
	case OP_PUBLISH_VERSION:
		op_publish_version(&x);
		break;
	case OP_LIST_VERSIONS:
		op_list_versions(&x);
		break;
	case OP_CREATE_ALIAS:
		op_create_alias(&x);
		break;
	case OP_LIST_ALIASES:
		op_list_aliases(&x);
		break;
	case OP_GET_ALIAS:
		op_get_alias(&x);
		break;
	case OP_UPDATE_ALIAS:
		op_update_alias(&x);
		break;
	case OP_DELETE_ALIAS:
		op_delete_alias(&x);
		break;
	case OP_INVOKE:
		op_invoke(&x);
		break;
	case OP_PUT_CONCURRENCY:
		op_put_concurrency(&x);
		break;
	case OP_GET_CONCURRENCY:
		op_get_concurrency(&x);
		break;
	case OP_DELETE_CONCURRENCY:
		op_delete_concurrency(&x);
		break;
	case OP_PUT_PROVISIONED:
		op_put_provisioned(&x);
		break;
	case OP_GET_PROVISIONED:
		op_get_provisioned(&x);
		break;
	case OP_DELETE_PROVISIONED:
		op_delete_provisioned(&x);
		break;
	default:
		send_error(c, &x.rp, E_SERVICE, "unhandled operation");
	}
	cJSON_Delete(x.meta);
}
