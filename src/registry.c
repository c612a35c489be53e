/* SPDX-License-Identifier: MIT */
#include "registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/codec.h"
#include "util/fileio.h"
#include "util/log.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct registry *, registry_free);

#define FUNCTION_JSON "function.json"
#define FUNCTION_JSON_MAX (16U << 20)
/* created_us must survive a round trip through a JSON double. */
#define CREATED_US_MAX 9007199254740992.0 /* 2^53 */

struct registry {
	char *state_dir; /* absolute */
	int state_fd;
	int functions_fd;
	int tmp_fd;
	struct fn_record *fns; /* sorted by name */
	size_t n_fns, cap_fns;
	char **broken; /* sorted */
	size_t n_broken;
	unsigned counter;
};

static void fn_record_done(struct fn_record *f)
{
	if (!f)
		return;
	free(f->name);
	for (size_t i = 0; i < f->n_versions; i++)
		manifest_done(&f->versions[i].manifest);
	free(f->versions);
	*f = (struct fn_record){};
}

static void crash_point(const char *where)
{
	/* Test hook, see registry.h. */
	if (streq(getenv("SPORE_TEST_CRASH_AT"), where))
		(void)raise(SIGKILL);
}

static int64_t now_us(void)
{
	struct timespec ts;
	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int open_dir_at(int fd, const char *name)
{
	return RET_NERRNO(openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

/* mkdirat that tolerates an existing directory; *ret_created says whether it made one. */
static int mkdir_at(int fd, const char *name, mode_t mode, bool *ret_created)
{
	bool created = true;
	if (mkdirat(fd, name, mode) < 0) {
		if (errno != EEXIST)
			return -errno;
		created = false;
	}
	if (ret_created)
		*ret_created = created;
	return 0;
}

static int fsync_fd(int fd)
{
	return RET_NERRNO(fsync(fd));
}

/* Lists the names in directory fd (without "." and ".."); NULL-terminated strv. */
static int list_dir(int fd, char ***ret)
{
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	_cleanup_closedir_ DIR *d = fdopendir(dfd);
	if (!d) {
		safe_close(dfd);
		return -errno;
	}
	_cleanup_strv_free_ char **v = calloc(1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	size_t n = 0;
	struct dirent *de;
	while ((errno = 0, de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		char **nv = realloc(v, (n + 2) * sizeof(char *));
		if (!nv)
			return -ENOMEM;
		v = nv;
		v[n] = strdup(de->d_name);
		v[n + 1] = NULL;
		if (!v[n])
			return -ENOMEM;
		n++;
	}
	if (errno != 0)
		return -errno;
	*ret = TAKE_PTR(v);
	return 0;
}

/* Removes everything inside directory fd. */
static int clear_dir(int fd)
{
	_cleanup_strv_free_ char **names = NULL;
	int r = list_dir(fd, &names);
	if (r < 0)
		return r;
	int ret = 0;
	for (char **n = names; *n; n++) {
		r = rm_rf_at(fd, *n);
		if (r < 0 && ret == 0)
			ret = r;
	}
	return ret;
}

static int cmp_record(const void *a, const void *b)
{
	return strcmp(((const struct fn_record *)a)->name, ((const struct fn_record *)b)->name);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Index of name in r->fns, or where it would go (with *found false). */
static size_t find_index(const struct registry *r, const char *name, bool *found)
{
	size_t lo = 0, hi = r->n_fns;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->fns[mid].name, name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static bool is_broken(const struct registry *r, const char *name)
{
	return r->n_broken > 0 &&
	       bsearch(&name, r->broken, r->n_broken, sizeof(char *), cmp_str) != NULL;
}

static int reserve_fns(struct registry *r, size_t extra)
{
	if (r->n_fns + extra <= r->cap_fns)
		return 0;
	size_t cap = r->cap_fns ? r->cap_fns * 2 : 8;
	while (cap < r->n_fns + extra)
		cap *= 2;
	struct fn_record *n = realloc(r->fns, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	r->fns = n;
	r->cap_fns = cap;
	return 0;
}

/* ---- function.json ---- */

static char *record_to_json(const struct fn_record *f)
{
	_cleanup_(cJSON_Deletep) cJSON *j = cJSON_CreateObject();
	if (!j)
		return NULL;
	if (!cJSON_AddStringToObject(j, "name", f->name) ||
	    !cJSON_AddNumberToObject(j, "live", f->live) ||
	    !cJSON_AddNumberToObject(j, "next", f->next))
		return NULL;
	cJSON *sc = scaling_to_json(&f->scaling);
	if (!sc)
		return NULL;
	cJSON_AddItemToObject(j, "scaling", sc);
	cJSON *vs = cJSON_AddArrayToObject(j, "versions");
	if (!vs)
		return NULL;
	for (size_t i = 0; i < f->n_versions; i++) {
		const struct fn_version *v = &f->versions[i];
		cJSON *o = cJSON_CreateObject();
		if (!o)
			return NULL;
		cJSON_AddItemToArray(vs, o);
		if (!cJSON_AddNumberToObject(o, "version", v->version) ||
		    !cJSON_AddStringToObject(o, "sha256", v->sha256) ||
		    !cJSON_AddNumberToObject(o, "created_us", (double)v->created_us))
			return NULL;
		cJSON *m = manifest_to_json(&v->manifest);
		if (!m)
			return NULL;
		cJSON_AddItemToObject(o, "manifest", m);
	}
	return cJSON_Print(j);
}

static bool json_whole(const cJSON *o, const char *key, double min, double max, double *ret)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(v))
		return false;
	double d = v->valuedouble;
	if (!(d >= min && d <= max) || (double)(int64_t)d != d)
		return false;
	*ret = d;
	return true;
}

static bool sha256_valid(const char *s)
{
	if (!s || strlen(s) != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Parses and checks function.json of name, and that every version's code dir exists below
 * fn_fd. -EINVAL (with a reason for the debug log) when corrupt or inconsistent. */
static int record_from_json(int fn_fd, const char *name, const char *data, struct fn_record *ret,
			    const char **ret_why)
{
	_cleanup_(cJSON_Deletep) cJSON *j = cJSON_Parse(data);
	_cleanup_(fn_record_done) struct fn_record f = {};
	double d;

#define BAD(why)                                                                                   \
	do {                                                                                       \
		*ret_why = why;                                                                    \
		return -EINVAL;                                                                    \
	} while (0)

	if (!cJSON_IsObject(j))
		BAD("not a JSON object");
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "name");
	if (!cJSON_IsString(n) || !streq(n->valuestring, name))
		BAD("name does not match its directory");
	f.name = strdup(name);
	if (!f.name)
		return -ENOMEM;
	if (!json_whole(j, "live", 1, UINT32_MAX, &d))
		BAD("live is not a version number");
	f.live = (uint32_t)d;
	if (!json_whole(j, "next", 2, UINT32_MAX, &d))
		BAD("next is not a version number");
	f.next = (uint32_t)d;
	const cJSON *sc = cJSON_GetObjectItemCaseSensitive(j, "scaling");
	if (sc) {
		_cleanup_free_ char *serr = NULL;
		if (scaling_apply_json(sc, true, SCALING_INSTANCES_MAX, &f.scaling, &serr) < 0)
			BAD("scaling is invalid");
	}

	const cJSON *vs = cJSON_GetObjectItemCaseSensitive(j, "versions");
	if (!cJSON_IsArray(vs))
		BAD("versions is not an array");
	size_t count = (size_t)cJSON_GetArraySize(vs);
	if (count == 0)
		BAD("no versions");
	f.versions = calloc(count, sizeof(struct fn_version));
	if (!f.versions)
		return -ENOMEM;

	bool live_found = false;
	const cJSON *o;
	cJSON_ArrayForEach(o, vs) {
		struct fn_version *v = &f.versions[f.n_versions];
		if (!json_whole(o, "version", 1, UINT32_MAX, &d))
			BAD("a version has no valid number");
		v->version = (uint32_t)d;
		if (f.n_versions > 0 && v->version <= f.versions[f.n_versions - 1].version)
			BAD("versions are not ascending");
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "sha256");
		if (!cJSON_IsString(s) || !sha256_valid(s->valuestring))
			BAD("a version has no valid sha256");
		memcpy(v->sha256, s->valuestring, 65);
		if (!json_whole(o, "created_us", 0, CREATED_US_MAX, &d))
			BAD("a version has no valid created_us");
		v->created_us = (int64_t)d;
		_cleanup_free_ char *merr = NULL;
		int k = manifest_from_json(cJSON_GetObjectItemCaseSensitive(o, "manifest"),
					   &v->manifest, &merr);
		if (k == -ENOMEM)
			return k;
		if (k < 0)
			BAD("a version has an invalid manifest");
		f.n_versions++;
		if (v->version == f.live)
			live_found = true;

		char path[64];
		struct stat st;
		(void)snprintf(path, sizeof(path), "versions/%" PRIu32 "/code", v->version);
		if (fstatat(fn_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
			BAD("a version's code directory is missing");
	}
	if (!live_found)
		BAD("live is not one of the versions");
	if (f.next <= f.versions[f.n_versions - 1].version)
		BAD("next is not above every version");
#undef BAD

	*ret = f;
	f = (struct fn_record){};
	return 0;
}

/* Replaces function.json of name (the commit point of every change). */
static int json_write(struct registry *r, const char *name, const char *json)
{
	_cleanup_close_ int fn_fd = -EBADF;
	int k = fn_fd = open_dir_at(r->functions_fd, name);
	if (k < 0)
		return k;
	return write_file_atomic(fn_fd, FUNCTION_JSON, json, strlen(json), 0644);
}

static int record_write(struct registry *r, const struct fn_record *f)
{
	_cleanup_free_ char *json = record_to_json(f);
	if (!json)
		return -ENOMEM;
	return json_write(r, f->name, json);
}

/* After a failed json_write(): is json what function.json holds now? write_file_atomic() can
 * fail after its rename (fsync of the directory), and then the new file is in place. */
static bool json_on_disk_is(struct registry *r, const char *name, const char *json)
{
	_cleanup_close_ int fn_fd = open_dir_at(r->functions_fd, name);
	if (fn_fd < 0)
		return false;
	_cleanup_free_ char *data = NULL;
	if (read_file(fn_fd, FUNCTION_JSON, FUNCTION_JSON_MAX, &data, NULL) < 0)
		return false;
	return streq(data, json);
}

/* ---- open ---- */

static bool referenced_version(const struct fn_record *f, const char *dname)
{
	for (size_t i = 0; i < f->n_versions; i++) {
		char buf[16];
		(void)snprintf(buf, sizeof(buf), "%" PRIu32, f->versions[i].version);
		if (streq(buf, dname))
			return true;
	}
	return false;
}

/* Removes what a loaded function's function.json does not reference: leftover temp files of
 * write_file_atomic() next to it, and version dirs of deploys that never committed. */
static int clean_function_dir(int fn_fd, const struct fn_record *f)
{
	_cleanup_strv_free_ char **names = NULL;
	int r = list_dir(fn_fd, &names);
	if (r < 0)
		return r;
	for (char **n = names; *n; n++)
		if (!streq(*n, FUNCTION_JSON) && !streq(*n, "versions") &&
		    !streq(*n, REGISTRY_LAMBDA_JSON)) {
			log_debug("registry: removing stray '%s' of function '%s'", *n, f->name);
			r = rm_rf_at(fn_fd, *n);
			if (r < 0)
				return r;
		}

	_cleanup_close_ int vfd = -EBADF;
	r = vfd = open_dir_at(fn_fd, "versions");
	if (r < 0)
		return r;
	names = strv_free(names);
	r = list_dir(vfd, &names);
	if (r < 0)
		return r;
	for (char **n = names; *n; n++)
		if (!referenced_version(f, *n)) {
			log_debug("registry: removing unreferenced version '%s' of function '%s'",
				  *n, f->name);
			r = rm_rf_at(vfd, *n);
			if (r < 0)
				return r;
		}
	return 0;
}

static int add_broken(struct registry *r, const char *name, const char *why)
{
	log_debug("registry: function '%s' is broken on disk: %s", name, why);
	char **n = realloc(r->broken, (r->n_broken + 1) * sizeof(char *));
	if (!n)
		return -ENOMEM;
	r->broken = n;
	r->broken[r->n_broken] = strdup(name);
	if (!r->broken[r->n_broken])
		return -ENOMEM;
	r->n_broken++;
	return 0;
}

static int load_function(struct registry *r, const char *name)
{
	struct stat st;
	if (fstatat(r->functions_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || !function_name_valid(name)) {
		/* Not ours to judge or remove; it cannot be addressed through the API. */
		log_debug("registry: ignoring 'functions/%s'", name);
		return 0;
	}

	_cleanup_close_ int fn_fd = -EBADF;
	int k = fn_fd = open_dir_at(r->functions_fd, name);
	if (k < 0)
		return k;

	_cleanup_free_ char *data = NULL;
	k = read_file(fn_fd, FUNCTION_JSON, FUNCTION_JSON_MAX, &data, NULL);
	if (k == -ENOENT) {
		/* A first deploy that never reached its commit point. */
		log_debug("registry: removing 'functions/%s' without " FUNCTION_JSON, name);
		return rm_rf_at(r->functions_fd, name);
	}
	if (k == -ENOMEM)
		return k;
	if (k < 0)
		return add_broken(r, name, "function.json cannot be read");

	struct fn_record f;
	const char *why = NULL;
	k = record_from_json(fn_fd, name, data, &f, &why);
	if (k == -ENOMEM)
		return k;
	if (k < 0)
		return add_broken(r, name, why);

	k = reserve_fns(r, 1);
	if (k < 0) {
		fn_record_done(&f);
		return k;
	}
	r->fns[r->n_fns++] = f;
	return clean_function_dir(fn_fd, &f);
}

int registry_open(const char *state_dir, struct registry **ret)
{
	int k;

	k = mkdir_p(state_dir, 0755);
	if (k < 0)
		return k;

	_cleanup_(registry_freep) struct registry *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->state_fd = r->functions_fd = r->tmp_fd = -EBADF;

	r->state_dir = realpath(state_dir, NULL);
	if (!r->state_dir)
		return -errno;
	k = r->state_fd = RET_NERRNO(open(r->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (k < 0)
		return k;

	bool c1 = false, c2 = false;
	k = mkdir_at(r->state_fd, "functions", 0755, &c1);
	if (k < 0)
		return k;
	k = mkdir_at(r->state_fd, "tmp", 0700, &c2);
	if (k < 0)
		return k;
	if (c1 || c2) {
		k = fsync_fd(r->state_fd);
		if (k < 0)
			return k;
	}
	k = r->functions_fd = open_dir_at(r->state_fd, "functions");
	if (k < 0)
		return k;
	k = r->tmp_fd = open_dir_at(r->state_fd, "tmp");
	if (k < 0)
		return k;

	k = clear_dir(r->tmp_fd);
	if (k < 0)
		return k;

	_cleanup_strv_free_ char **names = NULL;
	k = list_dir(r->functions_fd, &names);
	if (k < 0)
		return k;
	for (char **n = names; *n; n++) {
		k = load_function(r, *n);
		if (k < 0)
			return k;
	}
	if (r->n_fns > 0)
		qsort(r->fns, r->n_fns, sizeof(*r->fns), cmp_record);
	if (r->n_broken > 0)
		qsort(r->broken, r->n_broken, sizeof(char *), cmp_str);

	*ret = TAKE_PTR(r);
	return 0;
}

struct registry *registry_free(struct registry *r)
{
	if (!r)
		return NULL;
	for (size_t i = 0; i < r->n_fns; i++)
		fn_record_done(&r->fns[i]);
	free(r->fns);
	for (size_t i = 0; i < r->n_broken; i++)
		free(r->broken[i]);
	free(r->broken);
	safe_close(r->state_fd);
	safe_close(r->functions_fd);
	safe_close(r->tmp_fd);
	free(r->state_dir);
	free(r);
	return NULL;
}

/* ---- queries ---- */

size_t registry_count(const struct registry *r)
{
	return r->n_fns;
}

const struct fn_record *registry_at(const struct registry *r, size_t i)
{
	return i < r->n_fns ? &r->fns[i] : NULL;
}

const struct fn_record *registry_find(const struct registry *r, const char *name)
{
	bool found;
	size_t i = find_index(r, name, &found);
	return found ? &r->fns[i] : NULL;
}

const struct fn_version *fn_record_version(const struct fn_record *f, uint32_t version)
{
	size_t lo = 0, hi = f->n_versions;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->versions[mid].version == version)
			return &f->versions[mid];
		if (f->versions[mid].version < version)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

size_t registry_broken_count(const struct registry *r)
{
	return r->n_broken;
}

const char *registry_broken_at(const struct registry *r, size_t i)
{
	return i < r->n_broken ? r->broken[i] : NULL;
}

char *registry_code_dir(const struct registry *r, const char *name, uint32_t version)
{
	char *p;
	if (asprintf(&p, "%s/functions/%s/versions/%" PRIu32 "/code", r->state_dir, name,
		     version) < 0)
		return NULL;
	return p;
}

/* ---- changes ---- */

static void unique_name(struct registry *r, const char *what, char buf[static 64])
{
	(void)snprintf(buf, 64, "%s-%d-%u", what, (int)getpid(), r->counter++);
}

/* Unpacks code into STATE/tmp/<stage>/code and makes it durable. */
static int stage_code(struct registry *r, const char *stage, const void *code, size_t code_len,
		      const struct package_limits *lim, char **ret_error)
{
	int k = RET_NERRNO(mkdirat(r->tmp_fd, stage, 0755));
	if (k < 0)
		return k;
	_cleanup_close_ int sfd = -EBADF;
	k = sfd = open_dir_at(r->tmp_fd, stage);
	if (k < 0)
		return k;
	k = RET_NERRNO(mkdirat(sfd, "code", 0755));
	if (k < 0)
		return k;
	_cleanup_close_ int cfd = -EBADF;
	k = cfd = open_dir_at(sfd, "code");
	if (k < 0)
		return k;
	/* package_extract() fsyncs what it writes, code/ included. */
	k = package_extract(cfd, code, code_len, lim, ret_error);
	if (k < 0)
		return k;
	return fsync_fd(sfd);
}

int registry_deploy(struct registry *r, const char *name, const struct manifest *m,
		    const void *code, size_t code_len, const struct package_limits *lim,
		    uint32_t *ret_version, char **ret_error)
{
	return registry_deploy_scaled(r, name, m, NULL, code, code_len, lim, ret_version,
				      ret_error);
}

int registry_set_scaling(struct registry *r, const char *name, const struct fn_scaling *sc)
{
	if (is_broken(r, name))
		return -EBUSY;
	bool found;
	size_t idx = find_index(r, name, &found);
	if (!found)
		return -ENOENT;
	struct fn_record *f = &r->fns[idx];
	struct fn_scaling old = f->scaling;
	f->scaling = *sc;
	int k = record_write(r, f);
	if (k < 0)
		f->scaling = old;
	return k;
}

int registry_stage(struct registry *r, const void *code, size_t code_len,
		   const struct package_limits *lim, struct registry_stage *ret, char **ret_error)
{
	*ret = (struct registry_stage){ .code_fd = -EBADF };
	unique_name(r, "deploy", ret->name);
	sha256_hex(code, code_len, ret->sha256);
	int k = stage_code(r, ret->name, code, code_len, lim, ret_error);
	if (k >= 0)
		k = ret->code_fd = open_dir_at(r->tmp_fd, ret->name);
	if (k >= 0) {
		int cfd = openat(ret->code_fd, "code", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		k = cfd < 0 ? -errno : 0;
		safe_close(ret->code_fd);
		ret->code_fd = cfd;
	}
	if (k < 0) {
		registry_stage_discard(r, ret);
		return k;
	}
	crash_point("deploy-staged");
	return 0;
}

void registry_stage_discard(struct registry *r, struct registry_stage *s)
{
	if (!s || !s->name[0])
		return;
	s->code_fd = safe_close(s->code_fd);
	(void)rm_rf_at(r->tmp_fd, s->name);
	s->name[0] = '\0';
}

static int copy_file(int src_fd, int dst_fd, const char *name, mode_t mode)
{
	_cleanup_close_ int in = -EBADF, out = -EBADF;
	int k = in = RET_NERRNO(openat(src_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
	if (k >= 0)
		k = out = RET_NERRNO(openat(dst_fd, name,
					    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
					    mode & 0755));
	char buf[65536];
	while (k >= 0) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			k = n < 0 ? -errno : 0;
			break;
		}
		k = write_all(out, buf, (size_t)n);
	}
	if (k >= 0)
		k = fsync_fd(out);
	return k;
}

/* Copies the tree below src_fd into the empty directory dst_fd: directories made, regular files
 * hard-linked (a version's files are never written again; copied where a link is refused),
 * symlinks made again. What is made is fsynced. */
static int copy_tree(int src_fd, int dst_fd, unsigned depth)
{
	if (depth > 128)
		return -ELOOP;
	_cleanup_strv_free_ char **names = NULL;
	int k = list_dir(src_fd, &names);
	for (char **n = names; k >= 0 && *n; n++) {
		struct stat st;
		if (fstatat(src_fd, *n, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int s = -EBADF, d = -EBADF;
			k = RET_NERRNO(mkdirat(dst_fd, *n, 0755));
			if (k >= 0)
				k = s = open_dir_at(src_fd, *n);
			if (k >= 0)
				k = d = open_dir_at(dst_fd, *n);
			if (k >= 0)
				k = copy_tree(s, d, depth + 1);
			if (k >= 0)
				k = fsync_fd(d);
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t l = readlinkat(src_fd, *n, target, sizeof(target) - 1);
			if (l < 0)
				return -errno;
			target[l] = 0;
			k = RET_NERRNO(symlinkat(target, dst_fd, *n));
		} else if (S_ISREG(st.st_mode)) {
			k = RET_NERRNO(linkat(src_fd, *n, dst_fd, *n, 0));
			if (k == -EPERM || k == -EXDEV || k == -EMLINK)
				k = copy_file(src_fd, dst_fd, *n, st.st_mode);
		} else
			k = -EINVAL; /* package_extract() makes nothing else */
	}
	return k;
}

int registry_stage_copy(struct registry *r, const char *name, uint32_t version,
			struct registry_stage *ret)
{
	*ret = (struct registry_stage){ .code_fd = -EBADF };
	const struct fn_record *f = registry_find(r, name);
	const struct fn_version *v = f ? fn_record_version(f, version) : NULL;
	if (!v)
		return -ENOENT;
	char src[128];
	(void)snprintf(src, sizeof(src), "%s/versions/%" PRIu32 "/code", name, version);
	unique_name(r, "deploy", ret->name);
	memcpy(ret->sha256, v->sha256, sizeof(ret->sha256));
	_cleanup_close_ int sfd = -EBADF, stfd = -EBADF;
	int k = RET_NERRNO(mkdirat(r->tmp_fd, ret->name, 0755));
	if (k >= 0)
		k = stfd = open_dir_at(r->tmp_fd, ret->name);
	if (k >= 0)
		k = RET_NERRNO(mkdirat(stfd, "code", 0755));
	if (k >= 0)
		k = ret->code_fd = open_dir_at(stfd, "code");
	if (k >= 0)
		k = sfd = RET_NERRNO(
			openat(r->functions_fd, src, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (k >= 0)
		k = copy_tree(sfd, ret->code_fd, 0);
	if (k >= 0)
		k = fsync_fd(ret->code_fd);
	if (k >= 0)
		k = fsync_fd(stfd);
	if (k < 0) {
		registry_stage_discard(r, ret);
		return k;
	}
	return 0;
}

int registry_function_dir_fd(const struct registry *r, const char *name)
{
	if (!function_name_valid(name))
		return -EINVAL;
	return open_dir_at(r->functions_fd, name);
}

int registry_deploy_scaled(struct registry *r, const char *name, const struct manifest *m,
			   const struct fn_scaling *sc, const void *code, size_t code_len,
			   const struct package_limits *lim, uint32_t *ret_version,
			   char **ret_error)
{
	struct registry_stage st;

	if (!function_name_valid(name)) {
		if (ret_error &&
		    !(*ret_error = strdup("name: must match [a-z0-9][a-z0-9_-]{0,63}")))
			return -ENOMEM;
		return -EINVAL;
	}
	if (is_broken(r, name))
		return -EBUSY;
	int k = registry_stage(r, code, code_len, lim, &st, ret_error);
	if (k < 0)
		return k;
	return registry_deploy_stage(r, name, m, sc, &st, ret_version, ret_error);
}

int registry_deploy_stage(struct registry *r, const char *name, const struct manifest *m,
			  const struct fn_scaling *sc, struct registry_stage *st,
			  uint32_t *ret_version, char **ret_error)
{
	_cleanup_close_ int fn_fd = -EBADF, vfd = -EBADF;
	bool fn_created = false, v_created = false;
	char stage[64], vname[16];
	int k;

	/* The stage is this call's from here on: removed on failure, renamed on success. */
	memcpy(stage, st->name, sizeof(stage));
	st->code_fd = safe_close(st->code_fd);
	st->name[0] = '\0';
	if (!function_name_valid(name)) {
		(void)rm_rf_at(r->tmp_fd, stage);
		if (ret_error &&
		    !(*ret_error = strdup("name: must match [a-z0-9][a-z0-9_-]{0,63}")))
			return -ENOMEM;
		return -EINVAL;
	}
	if (is_broken(r, name)) {
		(void)rm_rf_at(r->tmp_fd, stage);
		return -EBUSY;
	}

	bool found;
	size_t idx = find_index(r, name, &found);
	struct fn_record *f = found ? &r->fns[idx] : NULL;
	uint32_t version = f ? f->next : 1;
	if (version == UINT32_MAX) {
		(void)rm_rf_at(r->tmp_fd, stage);
		return -EOVERFLOW;
	}
	(void)snprintf(vname, sizeof(vname), "%" PRIu32, version);

	/* Everything that can fail for want of memory happens before the commit point, so
	 * memory and disk never disagree. */
	struct fn_version nv = {
		.version = version,
		.created_us = now_us(),
	};
	memcpy(nv.sha256, st->sha256, sizeof(nv.sha256));
	k = manifest_copy(m, &nv.manifest);
	if (k < 0) {
		(void)rm_rf_at(r->tmp_fd, stage);
		return k;
	}
	struct fn_record nf = {};
	_cleanup_free_ char *old_json = NULL;
	if (f) {
		old_json = record_to_json(f);
		if (!old_json) {
			k = -ENOMEM;
			goto fail_stage;
		}
		struct fn_version *vs = realloc(f->versions, (f->n_versions + 1) * sizeof(*vs));
		if (!vs) {
			k = -ENOMEM;
			goto fail_stage;
		}
		f->versions = vs;
	} else {
		k = reserve_fns(r, 1);
		if (k >= 0) {
			nf.name = strdup(name);
			nf.versions = malloc(sizeof(struct fn_version));
			if (!nf.name || !nf.versions)
				k = -ENOMEM;
		}
		if (k < 0)
			goto fail_stage;
	}

	if (!f) {
		/* Not referenced by anything (registry_open() removes such dirs, a failed deploy
		 * too); clear whatever is left so the new function starts empty. */
		k = rm_rf_at(r->functions_fd, name);
		if (k < 0)
			goto fail_stage;
	}
	k = mkdir_at(r->functions_fd, name, 0755, &fn_created);
	if (k >= 0 && fn_created)
		k = fsync_fd(r->functions_fd);
	if (k >= 0)
		k = fn_fd = open_dir_at(r->functions_fd, name);
	if (k >= 0)
		k = mkdir_at(fn_fd, "versions", 0755, &v_created);
	if (k >= 0 && v_created)
		k = fsync_fd(fn_fd);
	if (k >= 0)
		k = vfd = open_dir_at(fn_fd, "versions");
	/* An unreferenced leftover with this number would make the rename fail. */
	if (k >= 0)
		k = rm_rf_at(vfd, vname);
	if (k >= 0)
		k = RET_NERRNO(renameat(r->tmp_fd, stage, vfd, vname));
	if (k >= 0)
		k = fsync_fd(vfd);
	if (k >= 0)
		(void)fsync_fd(r->tmp_fd);
	if (k < 0)
		goto fail_fn;
	crash_point("deploy-renamed");

	if (f) {
		uint32_t old_live = f->live, old_next = f->next;
		struct fn_scaling old_scaling = f->scaling;
		f->versions[f->n_versions++] = nv;
		f->live = version;
		f->next = version + 1;
		if (sc)
			f->scaling = *sc;
		_cleanup_free_ char *json = record_to_json(f);
		k = json ? json_write(r, name, json) : -ENOMEM;
		if (k < 0) {
			f->n_versions--;
			f->live = old_live;
			f->next = old_next;
			f->scaling = old_scaling;
			/* If the new function.json got in place after all, put the old one back
			 * before removing the version it references; should that fail too, keep
			 * the version dir so the disk stays consistent whichever file is there
			 * (the next registry_open() loads that one). */
			if (json && json_on_disk_is(r, name, json) &&
			    json_write(r, name, old_json) < 0) {
				safe_close(vfd);
				vfd = -EBADF;
			}
			goto fail_fn;
		}
	} else {
		nf.versions[0] = nv;
		nf.n_versions = 1;
		nf.live = version;
		nf.next = version + 1;
		if (sc)
			nf.scaling = *sc;
		k = record_write(r, &nf);
		if (k < 0) {
			nf.n_versions = 0;
			goto fail_fn;
		}
		memmove(&r->fns[idx + 1], &r->fns[idx], (r->n_fns - idx) * sizeof(*r->fns));
		r->fns[idx] = nf;
		r->n_fns++;
	}

	*ret_version = version;
	return 0;

fail_fn:
	/* Nothing of this deploy is referenced: remove it. */
	if (vfd >= 0)
		(void)rm_rf_at(vfd, vname);
	if (fn_created)
		(void)rm_rf_at(r->functions_fd, name);
fail_stage:
	(void)rm_rf_at(r->tmp_fd, stage);
	manifest_done(&nv.manifest);
	fn_record_done(&nf);
	return k;
}

int registry_set_live(struct registry *r, const char *name, uint32_t version)
{
	if (is_broken(r, name))
		return -EBUSY;
	bool found;
	size_t idx = find_index(r, name, &found);
	if (!found)
		return -ENOENT;
	struct fn_record *f = &r->fns[idx];
	if (!fn_record_version(f, version))
		return -ENOENT;
	if (f->live == version)
		return 0;

	uint32_t old = f->live;
	f->live = version;
	int k = record_write(r, f);
	if (k < 0)
		f->live = old;
	return k;
}

int registry_delete(struct registry *r, const char *name)
{
	if (is_broken(r, name))
		return -EBUSY;
	bool found;
	size_t idx = find_index(r, name, &found);
	if (!found)
		return -ENOENT;

	/* One rename takes the function away atomically; the slow removal happens out of sight
	 * and, if interrupted, is finished by the next registry_open(). */
	char trash[64];
	(void)unique_name(r, "delete", trash);
	int k = RET_NERRNO(renameat(r->functions_fd, name, r->tmp_fd, trash));
	if (k < 0)
		return k;
	k = fsync_fd(r->functions_fd);
	if (k < 0)
		log_debug("registry: fsync of functions/ after deleting '%s' failed: %s", name,
			  strerror(-k));
	(void)rm_rf_at(r->tmp_fd, trash);

	fn_record_done(&r->fns[idx]);
	memmove(&r->fns[idx], &r->fns[idx + 1], (r->n_fns - idx - 1) * sizeof(*r->fns));
	r->n_fns--;
	return 0;
}
