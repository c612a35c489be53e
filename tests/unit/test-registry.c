/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/sched.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>

#include "registry.h"
#include "util/cleanup.h"
#include "util/codec.h"
#include "util/fileio.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

/* ---- fixtures ---- */

struct pkg {
	void *data;
	size_t len;
};

/* A tar.gz with app.py holding content, lib/util.py and, when fill > 0, "big" with that many
 * bytes (compresses to almost nothing). */
static struct pkg make_pkg(const char *content, size_t fill)
{
	struct archive *a = archive_write_new();
	assert_non_null(a);
	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	size_t cap = 1 << 20, used = 0;
	char *buf = malloc(cap);
	assert_non_null(buf);
	assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);

	const char *paths[] = { "app.py", "lib/util.py", "big" };
	for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
		size_t len = i == 0 ? strlen(content) : i == 1 ? 6 : fill;
		if (i == 2 && fill == 0)
			break;
		char *data = malloc(len + 1);
		assert_non_null(data);
		if (i == 0)
			memcpy(data, content, len);
		else if (i == 1)
			memcpy(data, "u = 1\n", 6);
		else
			memset(data, 'x', len);
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, paths[i]);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)len);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		assert_int_equal(archive_write_data(a, data, len), (la_ssize_t)len);
		archive_entry_free(e);
		free(data);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	return (struct pkg){ buf, used };
}

static struct manifest make_manifest(const char *handler, uint32_t memory_mb)
{
	static char *keys[] = { "GREETING", "LEVEL" };
	static char *values[] = { "hello", "3" };
	struct manifest m = {
		.runtime = "python3",
		.handler = (char *)handler,
		.memory_mb = memory_mb,
		.timeout_ms = 5000,
		.env_keys = keys,
		.env_values = values,
		.n_env = 2,
	};
	return m;
}

struct ctx {
	char *dir; /* the state dir */
	struct registry *r;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	c->dir = strdup("/tmp/test-registry-XXXXXX");
	if (!c->dir || !mkdtemp(c->dir))
		return -1;
	*state = c;
	return 0;
}

/* Runs after every test, failed or not. */
static int teardown(void **state)
{
	struct ctx *c = *state;
	c->r = registry_free(c->r);
	(void)rm_rf_at(AT_FDCWD, c->dir);
	free(c->dir);
	free(c);
	return 0;
}

static void reopen(struct ctx *c)
{
	c->r = registry_free(c->r);
	int k = registry_open(c->dir, &c->r);
	if (k < 0)
		fail_msg("registry_open: %s", strerror(-k));
}

static uint32_t deploy_ok(struct ctx *c, const char *name, const char *content,
			  const struct manifest *m)
{
	struct pkg p = make_pkg(content, 0);
	uint32_t v = 0;
	char *err = NULL;
	int k = registry_deploy(c->r, name, m, p.data, p.len, NULL, &v, &err);
	if (k < 0)
		fail_msg("deploy '%s': %s (%s)", name, strerror(-k), err ?: "");
	assert_null(err);
	free(p.data);
	return v;
}

static char *path_in(struct ctx *c, const char *rel)
{
	char *p;
	assert_true(asprintf(&p, "%s/%s", c->dir, rel) > 0);
	return p;
}

static bool exists(struct ctx *c, const char *rel)
{
	_cleanup_free_ char *p = path_in(c, rel);
	struct stat st;
	return lstat(p, &st) == 0;
}

/* The entries of dir (relative to the state dir), sorted, joined with ',' (e.g. "1,2"). */
static char *dir_list(struct ctx *c, const char *rel)
{
	_cleanup_free_ char *p = path_in(c, rel);
	struct dirent **names = NULL;
	int n = scandir(p, &names, NULL, alphasort);
	if (n < 0)
		fail_msg("scandir '%s': %m", p);
	char *out = calloc(1, 4096);
	assert_non_null(out);
	for (int i = 0; i < n; i++) {
		if (!streq(names[i]->d_name, ".") && !streq(names[i]->d_name, "..")) {
			if (*out)
				strcat(out, ",");
			strncat(out, names[i]->d_name, 4096 - strlen(out) - 2);
		}
		free(names[i]);
	}
	free(names);
	return out;
}

static void assert_dir_list(struct ctx *c, const char *rel, const char *want)
{
	_cleanup_free_ char *got = dir_list(c, rel);
	if (!streq(got, want))
		fail_msg("'%s' holds '%s', want '%s'", rel, got, want);
}

static char *read_rel(struct ctx *c, const char *rel)
{
	_cleanup_free_ char *p = path_in(c, rel);
	char *data = NULL;
	int k = read_file(AT_FDCWD, p, 1 << 20, &data, NULL);
	if (k < 0)
		fail_msg("read '%s': %s", p, strerror(-k));
	return data;
}

static void write_rel(struct ctx *c, const char *rel, const char *data)
{
	_cleanup_free_ char *p = path_in(c, rel);
	_cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, data, strlen(data)), 0);
}

static void mkdir_rel(struct ctx *c, const char *rel)
{
	_cleanup_free_ char *p = path_in(c, rel);
	assert_int_equal(mkdir_p(p, 0755), 0);
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- tests ---- */

static void test_deploy_versions_reopen(void **state)
{
	struct ctx *c = *state;
	reopen(c);
	assert_int_equal(registry_count(c->r), 0);
	assert_int_equal(registry_broken_count(c->r), 0);
	assert_true(exists(c, "functions"));
	assert_true(exists(c, "tmp"));
	assert_null(registry_find(c->r, "hello"));

	struct manifest m1 = make_manifest("app.v1", 128), m2 = make_manifest("app.v2", 256);
	struct pkg p1 = make_pkg("v = 1\n", 0);
	int64_t before = now_us();
	uint32_t v = 0;
	assert_int_equal(registry_deploy(c->r, "hello", &m1, p1.data, p1.len, NULL, &v, NULL), 0);
	int64_t after = now_us();
	assert_int_equal(v, 1);
	assert_int_equal(deploy_ok(c, "hello", "v = 2\n", &m2), 2);

	const struct fn_record *f = registry_find(c->r, "hello");
	assert_non_null(f);
	assert_string_equal(f->name, "hello");
	assert_int_equal(f->live, 2);
	assert_int_equal(f->next, 3);
	assert_int_equal(f->n_versions, 2);
	assert_int_equal(f->versions[0].version, 1);
	assert_int_equal(f->versions[1].version, 2);
	char sha[65];
	sha256_hex(p1.data, p1.len, sha);
	assert_string_equal(f->versions[0].sha256, sha);
	assert_true(f->versions[0].created_us >= before && f->versions[0].created_us <= after);
	assert_string_equal(f->versions[0].manifest.handler, "app.v1");
	assert_int_equal(f->versions[1].manifest.memory_mb, 256);
	assert_int_equal(f->versions[1].manifest.n_env, 2);
	assert_string_equal(f->versions[1].manifest.env_values[0], "hello");
	assert_ptr_equal(fn_record_version(f, 2), &f->versions[1]);
	assert_null(fn_record_version(f, 3));
	assert_null(fn_record_version(f, 0));

	/* The code is where registry_code_dir() says, absolute. */
	_cleanup_free_ char *cd = registry_code_dir(c->r, "hello", 1);
	assert_non_null(cd);
	assert_true(cd[0] == '/');
	_cleanup_free_ char *app = NULL;
	_cleanup_free_ char *app_path = NULL;
	assert_true(asprintf(&app_path, "%s/app.py", cd) > 0);
	assert_int_equal(read_file(AT_FDCWD, app_path, 4096, &app, NULL), 0);
	assert_string_equal(app, "v = 1\n");
	assert_dir_list(c, "functions/hello", "function.json,versions");
	assert_dir_list(c, "functions/hello/versions", "1,2");
	assert_dir_list(c, "functions/hello/versions/2/code", "app.py,lib");
	assert_dir_list(c, "tmp", "");

	/* set_live */
	assert_int_equal(registry_set_live(c->r, "hello", 1), 0);
	assert_int_equal(registry_find(c->r, "hello")->live, 1);
	assert_int_equal(registry_set_live(c->r, "hello", 1), 0);
	assert_int_equal(registry_set_live(c->r, "hello", 3), -ENOENT);
	assert_int_equal(registry_set_live(c->r, "nope", 1), -ENOENT);
	assert_int_equal(registry_find(c->r, "hello")->live, 1);

	/* More functions: kept sorted by name. */
	deploy_ok(c, "zeta", "z", &m1);
	deploy_ok(c, "alpha", "a", &m1);
	deploy_ok(c, "mid-1", "m", &m1);
	assert_int_equal(registry_count(c->r), 4);
	static const char *const order[] = { "alpha", "hello", "mid-1", "zeta" };
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(registry_at(c->r, i)->name, order[i]);
	assert_null(registry_at(c->r, 4));

	/* Reopen: the same state from disk. */
	_cleanup_free_ char *json_before = read_rel(c, "functions/hello/function.json");
	reopen(c);
	assert_int_equal(registry_count(c->r), 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(registry_at(c->r, i)->name, order[i]);
	f = registry_find(c->r, "hello");
	assert_non_null(f);
	assert_int_equal(f->live, 1);
	assert_int_equal(f->next, 3);
	assert_int_equal(f->n_versions, 2);
	assert_string_equal(f->versions[0].sha256, sha);
	assert_true(f->versions[0].created_us >= before && f->versions[0].created_us <= after);
	assert_string_equal(f->versions[1].manifest.handler, "app.v2");
	assert_int_equal(f->versions[1].manifest.memory_mb, 256);
	assert_int_equal(f->versions[1].manifest.timeout_ms, 5000);
	assert_string_equal(f->versions[1].manifest.env_keys[1], "LEVEL");
	assert_string_equal(f->versions[1].manifest.env_values[1], "3");
	_cleanup_free_ char *json_after = read_rel(c, "functions/hello/function.json");
	assert_string_equal(json_before, json_after);

	/* Version numbers continue from "next" after a reopen. */
	assert_int_equal(deploy_ok(c, "hello", "v = 3\n", &m1), 3);
	assert_int_equal(registry_find(c->r, "hello")->live, 3);
	free(p1.data);
}

static void test_open_cleans_up(void **state)
{
	struct ctx *c = *state;
	reopen(c);
	struct manifest m = make_manifest("app.h", 128);
	deploy_ok(c, "fn", "x", &m);
	c->r = registry_free(c->r);

	/* Debris of crashed deploys and deletes, and things that are not ours. */
	mkdir_rel(c, "functions/fn/versions/7/code/sub");
	write_rel(c, "functions/fn/versions/7/code/sub/f", "orphan");
	mkdir_rel(c, "functions/fn/versions/junk");
	write_rel(c, "functions/fn/function.json.tmp.123.0", "{half");
	mkdir_rel(c, "functions/ghost/versions/1/code");
	write_rel(c, "functions/ghost/versions/1/code/app.py", "never committed");
	mkdir_rel(c, "tmp/deploy-99-0/code/a/b");
	write_rel(c, "tmp/deploy-99-0/code/a/b/c", "staged");
	write_rel(c, "tmp/stray", "x");
	mkdir_rel(c, "functions/NotAName");
	write_rel(c, "functions/README", "not a function");

	reopen(c);
	assert_int_equal(registry_count(c->r), 1);
	assert_int_equal(registry_broken_count(c->r), 0);
	assert_int_equal(registry_find(c->r, "fn")->live, 1);
	assert_dir_list(c, "functions/fn/versions", "1");
	assert_dir_list(c, "functions/fn", "function.json,versions");
	assert_dir_list(c, "tmp", "");
	/* ghost had no function.json: removed; foreign names are left alone. */
	assert_dir_list(c, "functions", "NotAName,README,fn");
	assert_null(registry_find(c->r, "ghost"));
}

/* Corruptions of a good function.json; each makes the function broken. */
struct corruption {
	const char *name;
	void (*apply)(cJSON *j);
	const char *raw; /* instead of apply: the whole file */
	const char *rm;  /* or: remove this path below the function dir */
};

static void set_num(cJSON *o, const char *key, double v)
{
	cJSON_ReplaceItemInObjectCaseSensitive(o, key, cJSON_CreateNumber(v));
}
static void c_live_missing(cJSON *j)
{
	set_num(j, "live", 9);
}
static void c_next_low(cJSON *j)
{
	set_num(j, "next", 1);
}
static void c_name(cJSON *j)
{
	cJSON_ReplaceItemInObjectCaseSensitive(j, "name", cJSON_CreateString("other"));
}
static void c_sha(cJSON *j)
{
	cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "versions"), 0);
	cJSON_ReplaceItemInObjectCaseSensitive(v, "sha256", cJSON_CreateString("xyz"));
}
static void c_manifest(cJSON *j)
{
	cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "versions"), 0);
	cJSON *m = cJSON_GetObjectItem(v, "manifest");
	set_num(m, "memory_mb", 1);
}
static void c_versions_order(cJSON *j)
{
	cJSON *vs = cJSON_GetObjectItem(j, "versions");
	cJSON *v0 = cJSON_DetachItemFromArray(vs, 0);
	cJSON_AddItemToArray(vs, v0);
}
static void c_fractional(cJSON *j)
{
	set_num(j, "live", 1.5);
}
static void c_no_versions(cJSON *j)
{
	cJSON_ReplaceItemInObjectCaseSensitive(j, "versions", cJSON_CreateArray());
}

static const struct corruption corruptions[] = {
	{ "not json", .raw = "{\"name\": \"bad\", " },
	{ "empty file", .raw = "" },
	{ "not an object", .raw = "[1,2]" },
	{ "live not a version", c_live_missing },
	{ "next not above versions", c_next_low },
	{ "name mismatch", c_name },
	{ "bad sha256", c_sha },
	{ "invalid manifest", c_manifest },
	{ "versions out of order", c_versions_order },
	{ "fractional live", c_fractional },
	{ "no versions", c_no_versions },
	{ "code dir missing", .rm = "versions/1" },
};

static void test_broken(void **state)
{
	struct ctx *c = *state;
	struct manifest m = make_manifest("app.h", 128);
	for (size_t i = 0; i < ELEMENTSOF(corruptions); i++) {
		const struct corruption *k = &corruptions[i];
		reopen(c);
		if (registry_find(c->r, "bad"))
			assert_int_equal(registry_delete(c->r, "bad"), 0);
		if (registry_broken_count(c->r) > 0) {
			/* Left from the previous case: clear it by hand, as an operator would. */
			_cleanup_free_ char *p = path_in(c, "functions/bad");
			assert_int_equal(rm_rf_at(AT_FDCWD, p), 0);
			reopen(c);
		}
		if (!registry_find(c->r, "good"))
			deploy_ok(c, "good", "g", &m);
		deploy_ok(c, "bad", "b1", &m);
		deploy_ok(c, "bad", "b2", &m);
		c->r = registry_free(c->r);

		if (k->raw)
			write_rel(c, "functions/bad/function.json", k->raw);
		else if (k->rm) {
			_cleanup_free_ char *p = NULL;
			assert_true(asprintf(&p, "%s/functions/bad/%s", c->dir, k->rm) > 0);
			assert_int_equal(rm_rf_at(AT_FDCWD, p), 0);
		} else {
			_cleanup_free_ char *data = read_rel(c, "functions/bad/function.json");
			_cleanup_(cJSON_Deletep) cJSON *j = cJSON_Parse(data);
			assert_non_null(j);
			k->apply(j);
			_cleanup_free_ char *out = cJSON_Print(j);
			write_rel(c, "functions/bad/function.json", out);
		}
		_cleanup_free_ char *json_before = read_rel(c, "functions/bad/function.json");
		_cleanup_free_ char *list_before = dir_list(c, "functions/bad/versions");

		reopen(c);
		if (registry_broken_count(c->r) != 1)
			fail_msg("case '%s': %zu broken, want 1", k->name,
				 registry_broken_count(c->r));
		assert_string_equal(registry_broken_at(c->r, 0), "bad");
		assert_null(registry_broken_at(c->r, 1));
		assert_null(registry_find(c->r, "bad"));
		assert_non_null(registry_find(c->r, "good"));
		assert_int_equal(registry_count(c->r), 1);

		struct pkg p = make_pkg("b3", 0);
		uint32_t v = 77;
		assert_int_equal(registry_deploy(c->r, "bad", &m, p.data, p.len, NULL, &v, NULL),
				 -EBUSY);
		assert_int_equal(v, 77);
		free(p.data);
		assert_int_equal(registry_set_live(c->r, "bad", 1), -EBUSY);
		assert_int_equal(registry_delete(c->r, "bad"), -EBUSY);

		/* Left on disk untouched. */
		_cleanup_free_ char *json_after = read_rel(c, "functions/bad/function.json");
		assert_string_equal(json_before, json_after);
		_cleanup_free_ char *list_after = dir_list(c, "functions/bad/versions");
		assert_string_equal(list_before, list_after);
	}
}

static void test_delete(void **state)
{
	struct ctx *c = *state;
	reopen(c);
	struct manifest m = make_manifest("app.h", 128);
	deploy_ok(c, "a", "1", &m);
	deploy_ok(c, "x", "1", &m);
	deploy_ok(c, "x", "2", &m);
	deploy_ok(c, "z", "1", &m);
	assert_int_equal(registry_delete(c->r, "x"), 0);
	assert_int_equal(registry_delete(c->r, "x"), -ENOENT);
	assert_int_equal(registry_delete(c->r, "never"), -ENOENT);
	assert_null(registry_find(c->r, "x"));
	assert_int_equal(registry_count(c->r), 2);
	assert_string_equal(registry_at(c->r, 0)->name, "a");
	assert_string_equal(registry_at(c->r, 1)->name, "z");
	assert_dir_list(c, "functions", "a,z");
	assert_dir_list(c, "tmp", "");

	reopen(c);
	assert_int_equal(registry_count(c->r), 2);
	assert_null(registry_find(c->r, "x"));
	/* A new function of the same name starts again at 1. */
	assert_int_equal(deploy_ok(c, "x", "new", &m), 1);
}

static void test_failed_deploy(void **state)
{
	struct ctx *c = *state;
	reopen(c);
	struct manifest m = make_manifest("app.h", 128);
	static const char garbage[] = "definitely not an archive";

	/* New function: nothing stays. */
	char *err = NULL;
	uint32_t v = 55;
	assert_int_equal(registry_deploy(c->r, "newfn", &m, garbage, sizeof(garbage), NULL, &v,
					 &err),
			 -EINVAL);
	assert_non_null(err);
	assert_non_null(strstr(err, "not a zip or tar"));
	free(err);
	assert_int_equal(v, 55);
	assert_null(registry_find(c->r, "newfn"));
	assert_dir_list(c, "functions", "");
	assert_dir_list(c, "tmp", "");

	/* Existing function: versions, live and next unchanged. */
	deploy_ok(c, "fn", "1", &m);
	_cleanup_free_ char *json_before = read_rel(c, "functions/fn/function.json");
	err = NULL;
	struct package_limits lim = { .max_entries = 1, .max_bytes = 1 << 20 };
	struct pkg p = make_pkg("two entries", 0);
	assert_int_equal(registry_deploy(c->r, "fn", &m, p.data, p.len, &lim, &v, &err), -EINVAL);
	assert_non_null(strstr(err, "more than 1 entries"));
	free(err);
	free(p.data);
	const struct fn_record *f = registry_find(c->r, "fn");
	assert_int_equal(f->n_versions, 1);
	assert_int_equal(f->live, 1);
	assert_int_equal(f->next, 2);
	assert_dir_list(c, "functions/fn/versions", "1");
	assert_dir_list(c, "tmp", "");
	_cleanup_free_ char *json_after = read_rel(c, "functions/fn/function.json");
	assert_string_equal(json_before, json_after);
	assert_int_equal(deploy_ok(c, "fn", "2", &m), 2);

	/* Names are checked. */
	static const char *const bad_names[] = { "", "Upper", "-x", "a/b", "..", "a.b" };
	for (size_t i = 0; i < ELEMENTSOF(bad_names); i++) {
		err = NULL;
		p = make_pkg("x", 0);
		assert_int_equal(registry_deploy(c->r, bad_names[i], &m, p.data, p.len, NULL, &v,
						 &err),
				 -EINVAL);
		assert_non_null(strstr(err, "name:"));
		free(err);
		free(p.data);
	}
	assert_dir_list(c, "functions", "fn");
}

/* Forks a child that deploys version 2 of name with SPORE_TEST_CRASH_AT=point; the hook must
 * kill it. */
static void crash_deploy(struct ctx *c, const char *name, const char *point)
{
	struct manifest m = make_manifest("app.crash", 128);
	struct pkg p = make_pkg("crash", 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct registry *r = NULL;
		if (setenv("SPORE_TEST_CRASH_AT", point, 1) < 0 || registry_open(c->dir, &r) < 0)
			_exit(2);
		uint32_t v;
		(void)registry_deploy(r, name, &m, p.data, p.len, NULL, &v, NULL);
		_exit(3); /* the hook did not fire */
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("crash at '%s': child status 0x%x, want SIGKILL", point, status);
	free(p.data);
}

static void test_crash_mid_deploy(void **state)
{
	struct ctx *c = *state;
	static const char *const points[] = { "deploy-staged", "deploy-renamed" };
	struct manifest m = make_manifest("app.h", 128);

	for (size_t i = 0; i < ELEMENTSOF(points); i++) {
		reopen(c);
		if (registry_find(c->r, "fn"))
			assert_int_equal(registry_delete(c->r, "fn"), 0);
		deploy_ok(c, "fn", "v1", &m);
		c->r = registry_free(c->r);
		_cleanup_free_ char *json_before = read_rel(c, "functions/fn/function.json");

		crash_deploy(c, "fn", points[i]);
		/* The crash left debris (staging, or the renamed version dir). */
		if (i == 0)
			assert_dir_list(c, "functions/fn/versions", "1");
		else
			assert_dir_list(c, "functions/fn/versions", "1,2");

		reopen(c);
		const struct fn_record *f = registry_find(c->r, "fn");
		assert_non_null(f);
		assert_int_equal(f->live, 1);
		assert_int_equal(f->n_versions, 1);
		assert_int_equal(f->next, 2);
		assert_string_equal(f->versions[0].manifest.handler, "app.h");
		_cleanup_free_ char *json_after = read_rel(c, "functions/fn/function.json");
		assert_string_equal(json_before, json_after);
		assert_dir_list(c, "functions/fn/versions", "1");
		assert_dir_list(c, "functions/fn", "function.json,versions");
		assert_dir_list(c, "tmp", "");
		_cleanup_free_ char *code = read_rel(c, "functions/fn/versions/1/code/app.py");
		assert_string_equal(code, "v1");

		/* And the registry goes on: the next deploy is version 2, with its own code. */
		assert_int_equal(deploy_ok(c, "fn", "v2", &m), 2);
		_cleanup_free_ char *code2 = read_rel(c, "functions/fn/versions/2/code/app.py");
		assert_string_equal(code2, "v2");
	}

	/* A crash during the first deploy of a function leaves no function at all. */
	for (size_t i = 0; i < ELEMENTSOF(points); i++) {
		reopen(c);
		c->r = registry_free(c->r);
		crash_deploy(c, "brand-new", points[i]);
		reopen(c);
		assert_null(registry_find(c->r, "brand-new"));
		assert_int_equal(registry_broken_count(c->r), 0);
		assert_false(exists(c, "functions/brand-new"));
		assert_dir_list(c, "tmp", "");
	}
}

#define CHILD_CHECK(x)                                                                             \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "child check failed at line %d: %s\n", __LINE__, #x);     \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

/* In a child with its own mount namespace, the state dir on a 256 KiB tmpfs: a deploy that does
 * not fit fails with -ENOSPC, unchanged, and leaves nothing behind. */
static void test_disk_full(void **state)
{
	struct ctx *c = *state;
	struct manifest m = make_manifest("app.h", 128);
	struct pkg small = make_pkg("fits", 0);
	struct pkg big = make_pkg("too big", 1 << 20);

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* syscall(): keeps this test independent of <sched.h> and the include path. */
		if (syscall(SYS_unshare, CLONE_NEWNS) < 0 ||
		    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("tmpfs", c->dir, "tmpfs", 0, "size=256k,mode=0755") < 0)
			_exit(77);
		struct registry *r = NULL;
		uint32_t v = 0;
		char *err = NULL;
		CHILD_CHECK(registry_open(c->dir, &r) == 0);
		CHILD_CHECK(registry_deploy(r, "fn", &m, big.data, big.len, NULL, &v, &err) ==
			    -ENOSPC);
		CHILD_CHECK(err == NULL);
		CHILD_CHECK(registry_find(r, "fn") == NULL);
		CHILD_CHECK(!exists(c, "functions/fn"));
		/* Plain free(): _exit() runs no cleanup handlers and valgrind checks the child. */
		char *t1 = dir_list(c, "tmp");
		CHILD_CHECK(streq(t1, ""));
		free(t1);

		CHILD_CHECK(registry_deploy(r, "fn", &m, small.data, small.len, NULL, &v, &err) ==
			    0);
		CHILD_CHECK(v == 1);
		CHILD_CHECK(registry_deploy(r, "fn", &m, big.data, big.len, NULL, &v, &err) ==
			    -ENOSPC);
		CHILD_CHECK(registry_find(r, "fn")->n_versions == 1);
		CHILD_CHECK(registry_find(r, "fn")->live == 1);
		char *vl = dir_list(c, "functions/fn/versions");
		CHILD_CHECK(streq(vl, "1"));
		free(vl);
		char *t2 = dir_list(c, "tmp");
		CHILD_CHECK(streq(t2, ""));
		free(t2);
		r = registry_free(r);

		CHILD_CHECK(registry_open(c->dir, &r) == 0);
		CHILD_CHECK(registry_find(r, "fn") && registry_find(r, "fn")->live == 1);
		r = registry_free(r);
		free(small.data);
		free(big.data);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	free(small.data);
	free(big.data);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip(); /* no mount namespaces or tmpfs here */
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_deploy_versions_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_cleans_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_deploy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_mid_deploy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
