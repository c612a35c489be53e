/* SPDX-License-Identifier: MIT */
/* sporectl: the pure helpers (durations, K=V, spore.json, line splitting, formatting), packing
 * read back with libarchive, and the built binary (SPORECTL_BIN) run against a fake spored on a
 * unix socket or TCP that records the request and plays back a canned answer. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <cmocka.h>

#include "sporectl-pack.h"
#include "sporectl-util.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/codec.h"
#include "util/fileio.h"

#ifndef SPORECTL_BIN
#error "SPORECTL_BIN must name the built sporectl"
#endif

extern char **environ;

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete)

static char tmpdir[64];

static void write_text(const char *rel, const char *text, mode_t mode)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, text, strlen(text)), 0);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void make_dir(const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	assert_int_equal(mkdir_p(path, 0755), 0);
}

static char *tmp_path(const char *rel)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", tmpdir, rel) > 0);
	return p;
}

/* ---- pure helpers ---------------------------------------------------------------------- */

static void test_duration(void **state)
{
	static const struct {
		const char *in;
		int ret;
		uint32_t ms;
	} cases[] = {
		{ "30s", 0, 30000 },
		{ "500ms", 0, 500 },
		{ "2m", 0, 120000 },
		{ "1h", 0, 3600000 },
		{ "1500", 0, 1500 },
		{ "1", 0, 1 },
		{ "0", -EINVAL, 0 },
		{ "0s", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
		{ "s", -EINVAL, 0 },
		{ "-5s", -EINVAL, 0 },
		{ "+5s", -EINVAL, 0 },
		{ " 5s", -EINVAL, 0 },
		{ "5 s", -EINVAL, 0 },
		{ "5S", -EINVAL, 0 },
		{ "1.5s", -EINVAL, 0 },
		{ "5sec", -EINVAL, 0 },
		{ "10d", -EINVAL, 0 },
		{ "4294967295", 0, 4294967295u },
		{ "4294967296", -ERANGE, 0 },
		{ "4294967s", 0, 4294967000u },
		{ "4294968s", -ERANGE, 0 },
		{ "71582m", 0, 4294920000u },
		{ "71583m", -ERANGE, 0 }, /* 4294980000 ms */
		{ "1193h", 0, 4294800000u },
		{ "1194h", -ERANGE, 0 },
		{ "99999999999999999999999ms", -ERANGE, 0 },
	};
	(void)state;

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		uint32_t ms = 12345;
		int r = parse_duration_ms(cases[i].in, &ms);

		if (r != cases[i].ret)
			fail_msg("parse_duration_ms('%s') = %d, expected %d", cases[i].in, r,
				 cases[i].ret);
		if (r == 0)
			assert_int_equal(ms, cases[i].ms);
		else
			assert_int_equal(ms, 12345); /* untouched on failure */
	}
	assert_int_equal(parse_duration_ms(NULL, &(uint32_t){ 0 }), -EINVAL);
}

static void test_parse_uint(void **state)
{
	static const struct {
		const char *in;
		uint64_t min, max;
		int ret;
		uint64_t v;
	} cases[] = {
		{ "128", 1, 1000, 0, 128 },       { "0", 0, 10, 0, 0 },
		{ "0", 1, 10, -ERANGE, 0 },       { "11", 0, 10, -ERANGE, 0 },
		{ "", 0, 10, -EINVAL, 0 },        { "1x", 0, 10, -EINVAL, 0 },
		{ "-1", 0, 10, -EINVAL, 0 },      { "+1", 0, 10, -EINVAL, 0 },
		{ "18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX },
		{ "18446744073709551616", 0, UINT64_MAX, -ERANGE, 0 },
	};
	(void)state;

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		uint64_t v = 777;
		int r = parse_uint(cases[i].in, cases[i].min, cases[i].max, &v);

		if (r != cases[i].ret)
			fail_msg("parse_uint('%s') = %d, expected %d", cases[i].in, r, cases[i].ret);
		assert_true(r == 0 ? v == cases[i].v : v == 777);
	}
}

static void test_env(void **state)
{
	static const struct {
		const char *in;
		int ret;
		const char *key, *value;
	} cases[] = {
		{ "KEY=value", 0, "KEY", "value" },
		{ "K=", 0, "K", "" },
		{ "_x1=a=b=c", 0, "_x1", "a=b=c" },
		{ "PATH=/usr/bin:/bin", 0, "PATH", "/usr/bin:/bin" },
		{ "lower_case=1", 0, "lower_case", "1" },
		{ "K= spaced value ", 0, "K", " spaced value " },
		{ "KEY", -EINVAL, NULL, NULL },
		{ "=value", -EINVAL, NULL, NULL },
		{ "1KEY=v", -EINVAL, NULL, NULL },
		{ "K-EY=v", -EINVAL, NULL, NULL },
		{ "K EY=v", -EINVAL, NULL, NULL },
		{ "KÉ=v", -EINVAL, NULL, NULL },
		{ "", -EINVAL, NULL, NULL },
	};
	(void)state;

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_free_ char *key = NULL, *value = NULL;
		int r = parse_env_assignment(cases[i].in, &key, &value);

		if (r != cases[i].ret)
			fail_msg("parse_env_assignment('%s') = %d, expected %d", cases[i].in, r,
				 cases[i].ret);
		if (r == 0) {
			assert_string_equal(key, cases[i].key);
			assert_string_equal(value, cases[i].value);
		} else {
			assert_null(key);
			assert_null(value);
		}
	}
}

static void test_names(void **state)
{
	static const struct {
		const char *name;
		bool valid;
	} cases[] = {
		{ "hello", true },
		{ "a", true },
		{ "0fn", true },
		{ "my-fn_2", true },
		{ "", false },
		{ "-fn", false },
		{ "_fn", false },
		{ "Hello", false },
		{ "a.b", false },
		{ "a/b", false },
		{ "../x", false },
		{ "a b", false },
		{ "a?b", false },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true },  /* 64 */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false }, /* 65 */
	};
	(void)state;

	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		if (fn_name_valid(cases[i].name) != cases[i].valid)
			fail_msg("fn_name_valid('%s') != %d", cases[i].name, cases[i].valid);
	assert_false(fn_name_valid(NULL));
}

static void test_deploy_defaults(void **state)
{
	static const struct {
		const char *json;
		int ret;
		const char *runtime, *handler;
		uint32_t memory_mb, timeout_ms;
		const char *env; /* "K=V,K=V" in order, or NULL for no env */
		const char *error;
	} cases[] = {
		{ "{}", 0, NULL, NULL, 0, 0, NULL, NULL },
		{ "{\"runtime\":\"python3\",\"handler\":\"main.handler\",\"memory_mb\":256,"
		  "\"timeout_ms\":5000,\"env\":{\"A\":\"1\",\"B\":\"\"},\"description\":\"x\"}",
		  0, "python3", "main.handler", 256, 5000, "A=1,B=", NULL },
		{ "{\"timeout_ms\":\"2m\"}", 0, NULL, NULL, 0, 120000, NULL, NULL },
		{ "{\"env\":{}}", 0, NULL, NULL, 0, 0, "", NULL },
		{ "[]", -EINVAL, NULL, NULL, 0, 0, NULL, "must be a JSON object" },
		{ "{", -EINVAL, NULL, NULL, 0, 0, NULL, "not valid JSON" },
		{ "{\"runtime\":3}", -EINVAL, NULL, NULL, 0, 0, NULL, "runtime: " },
		{ "{\"runtime\":\"\"}", -EINVAL, NULL, NULL, 0, 0, NULL, "runtime: " },
		{ "{\"handler\":null}", -EINVAL, NULL, NULL, 0, 0, NULL, "handler: " },
		{ "{\"memory_mb\":0}", -EINVAL, NULL, NULL, 0, 0, NULL, "memory_mb: " },
		{ "{\"memory_mb\":1.5}", -EINVAL, NULL, NULL, 0, 0, NULL, "memory_mb: " },
		{ "{\"memory_mb\":\"128\"}", -EINVAL, NULL, NULL, 0, 0, NULL, "memory_mb: " },
		{ "{\"memory_mb\":4294967296}", -EINVAL, NULL, NULL, 0, 0, NULL, "memory_mb: " },
		{ "{\"timeout_ms\":-1}", -EINVAL, NULL, NULL, 0, 0, NULL, "timeout_ms: " },
		{ "{\"timeout_ms\":\"soon\"}", -EINVAL, NULL, NULL, 0, 0, NULL, "timeout_ms: " },
		{ "{\"env\":[]}", -EINVAL, NULL, NULL, 0, 0, NULL, "env: " },
		{ "{\"env\":{\"A\":1}}", -EINVAL, NULL, NULL, 0, 0, NULL, "env.A: must be a string" },
		{ "{\"env\":{\"1A\":\"x\"}}", -EINVAL, NULL, NULL, 0, 0, NULL,
		  "env: invalid variable name '1A'" },
		/* A later bad field after good ones: nothing leaks (valgrind/asan). */
		{ "{\"runtime\":\"python3\",\"handler\":\"m.h\",\"env\":{\"X\":\"1\"},"
		  "\"memory_mb\":-3}",
		  -EINVAL, NULL, NULL, 0, 0, NULL, "memory_mb: " },
	};
	(void)state;

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct deploy_defaults d = { .memory_mb = 99 };
		_cleanup_free_ char *error = NULL;
		int r = deploy_defaults_parse(cases[i].json, strlen(cases[i].json), &d, &error);

		if (r != cases[i].ret)
			fail_msg("case %zu '%s': %d (%s), expected %d", i, cases[i].json, r,
				 error ?: "-", cases[i].ret);
		if (r < 0) {
			assert_non_null(error);
			if (!strstr(error, cases[i].error))
				fail_msg("case %zu: error '%s' lacks '%s'", i, error, cases[i].error);
			assert_int_equal(d.memory_mb, 99); /* untouched */
			continue;
		}
		assert_null(error);
		if (cases[i].runtime)
			assert_string_equal(d.runtime, cases[i].runtime);
		else
			assert_null(d.runtime);
		if (cases[i].handler)
			assert_string_equal(d.handler, cases[i].handler);
		else
			assert_null(d.handler);
		assert_int_equal(d.memory_mb, cases[i].memory_mb);
		assert_int_equal(d.timeout_ms, cases[i].timeout_ms);
		if (!cases[i].env)
			assert_null(d.env);
		else {
			_cleanup_(buf_done) struct buf got = BUF_INIT;
			const cJSON *e;

			cJSON_ArrayForEach(e, d.env)
				assert_int_equal(buf_printf(&got, "%s%s=%s", got.len ? "," : "",
							    e->string, e->valuestring),
						 0);
			assert_string_equal(buf_cstr(&got), cases[i].env);
		}
		deploy_defaults_done(&d);
		assert_null(d.runtime);
	}
}

struct lines {
	char *got[16];
	size_t n;
	int fail_at; /* callback returns -EPIPE at this line index; -1 never */
};

static int collect_line(const char *line, size_t len, void *userdata)
{
	struct lines *l = userdata;

	assert_true(l->n < ELEMENTSOF(l->got));
	if ((int)l->n == l->fail_at)
		return -EPIPE;
	l->got[l->n] = strndup(line, len);
	assert_non_null(l->got[l->n]);
	l->n++;
	return 0;
}

static void lines_done(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->got[i]);
	l->n = 0;
}

static void test_line_split(void **state)
{
	static const struct {
		const char *in;
		const char *out[6];
	} cases[] = {
		{ "", { NULL } },
		{ "a\n", { "a", NULL } },
		{ "a\nbb\nccc\n", { "a", "bb", "ccc", NULL } },
		{ "a\r\nb\r\n", { "a", "b", NULL } },
		{ "\n\n", { "", "", NULL } },
		{ "{\"message\":\"x\"}\nhalf", { "{\"message\":\"x\"}", "half", NULL } },
		{ "no newline at all", { "no newline at all", NULL } },
		{ "cr at end\r", { "cr at end", NULL } },
	};
	(void)state;

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		size_t len = strlen(cases[i].in);

		/* Every chunk size from 1 byte to the whole input: lines must come out the same. */
		for (size_t chunk = 1; chunk <= (len ? len : 1); chunk++) {
			_cleanup_(buf_done) struct buf pending = BUF_INIT;
			struct lines l = { .fail_at = -1 };
			size_t n = 0;

			for (size_t off = 0; off < len; off += chunk) {
				size_t c = len - off < chunk ? len - off : chunk;
				assert_int_equal(line_split_feed(&pending, cases[i].in + off, c,
								 collect_line, &l),
						 0);
			}
			assert_int_equal(line_split_finish(&pending, collect_line, &l), 0);
			assert_int_equal(pending.len, 0);
			while (cases[i].out[n])
				n++;
			if (l.n != n)
				fail_msg("case %zu chunk %zu: %zu lines, expected %zu", i, chunk, l.n, n);
			for (size_t k = 0; k < n; k++)
				assert_string_equal(l.got[k], cases[i].out[k]);
			lines_done(&l);
		}
	}

	/* A callback error stops the split and comes back. */
	{
		_cleanup_(buf_done) struct buf pending = BUF_INIT;
		struct lines l = { .fail_at = 1 };

		assert_int_equal(line_split_feed(&pending, "a\nb\nc\n", 6, collect_line, &l), -EPIPE);
		assert_int_equal(l.n, 1);
		lines_done(&l);
	}

	/* An endless line is refused rather than buffered forever. */
	{
		_cleanup_(buf_done) struct buf pending = BUF_INIT;
		_cleanup_free_ char *big = malloc(LINE_SPLIT_MAX / 2 + 1);
		struct lines l = { .fail_at = -1 };

		assert_non_null(big);
		memset(big, 'x', LINE_SPLIT_MAX / 2 + 1);
		assert_int_equal(line_split_feed(&pending, big, LINE_SPLIT_MAX / 2 + 1, collect_line, &l), 0);
		assert_int_equal(line_split_feed(&pending, big, LINE_SPLIT_MAX / 2 + 1, collect_line, &l),
				 -ENOBUFS);
		assert_int_equal(l.n, 0);
	}
}

static void test_format(void **state)
{
	static const struct {
		uint64_t ms;
		const char *out;
	} durations[] = {
		{ 0, "0ms" },     { 1, "1ms" },      { 500, "500ms" }, { 1500, "1500ms" },
		{ 1000, "1s" },   { 30000, "30s" },  { 60000, "1m" },  { 90000, "90s" },
		{ 120000, "2m" }, { 3600000, "1h" }, { 5400000, "90m" },
	};
	static const struct {
		const char *json;
		const char *cell;
	} cells[] = {
		{ "\"text\"", "text" }, { "3", "3" },         { "-7", "-7" },     { "1.5", "1.5" },
		{ "true", "true" },     { "false", "false" }, { "null", "-" },    { "{}", "-" },
		{ "[1]", "-" },         { "12345678901", "12345678901" },
	};
	static const struct {
		const char *json;
		const char *line;
	} records[] = {
		{ "{\"time\":\"2026-11-23T19:38:17.123456Z\",\"version\":2,\"instance\":\"i-7\","
		  "\"stream\":\"stdout\",\"message\":\"hello world\"}",
		  "2026-11-23T19:38:17.123456Z v2 i-7 stdout: hello world" },
		{ "{\"time\":\"T\",\"version\":3,\"instance\":12,\"stream\":\"stderr\",\"message\":\"\"}",
		  "T v3 12 stderr: " },
		{ "{\"message\":\"only\"}", "- v- - -: only" },
	};
	(void)state;

	for (size_t i = 0; i < ELEMENTSOF(durations); i++) {
		char b[32];
		format_duration_ms(durations[i].ms, b);
		assert_string_equal(b, durations[i].out);
	}
	{
		_cleanup_free_ char *s = json_cell(NULL);
		assert_string_equal(s, "-");
	}
	for (size_t i = 0; i < ELEMENTSOF(cells); i++) {
		_cleanup_(cJSON_Deletep) cJSON *j = cJSON_Parse(cells[i].json);
		_cleanup_free_ char *s = NULL;

		assert_non_null(j);
		s = json_cell(j);
		assert_string_equal(s, cells[i].cell);
	}
	for (size_t i = 0; i < ELEMENTSOF(records); i++) {
		_cleanup_(cJSON_Deletep) cJSON *j = cJSON_Parse(records[i].json);
		_cleanup_free_ char *s = NULL;

		assert_non_null(j);
		s = format_log_record(j);
		assert_string_equal(s, records[i].line);
	}
}

static void test_table(void **state)
{
	static const char *const headers[] = { "NAME", "LIVE", "RUNTIME" };
	_cleanup_table_ struct table *t = NULL;
	_cleanup_free_ char *out = NULL;
	size_t len = 0;
	FILE *f;
	(void)state;

	t = table_new(ELEMENTSOF(headers), headers);
	assert_non_null(t);
	assert_int_equal(table_add(t, "hello"), 0);
	assert_int_equal(table_add(t, "12"), 0);
	assert_int_equal(table_add(t, "python3"), 0);
	assert_int_equal(table_add(t, "a-much-longer-name"), 0);
	assert_int_equal(table_add(t, NULL), 0);
	assert_int_equal(table_add(t, "native"), 0);

	f = open_memstream(&out, &len);
	assert_non_null(f);
	assert_int_equal(table_print(t, f), 0);
	fclose(f);
	assert_string_equal(out, "NAME                LIVE  RUNTIME\n"
				 "hello               12    python3\n"
				 "a-much-longer-name  -     native\n");
}

/* ---- packing --------------------------------------------------------------------------- */

struct entry {
	char path[128];
	mode_t type;
	mode_t perm;
	int64_t size;
	char data[128];
	char link[128];
	int64_t mtime;
	int64_t uid;
};

static size_t read_archive(const void *data, size_t len, struct entry *out, size_t max)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	size_t n = 0;

	assert_non_null(a);
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	assert_int_equal(archive_read_open_memory(a, data, len), ARCHIVE_OK);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		struct entry *x = &out[n];

		assert_true(n < max);
		memset(x, 0, sizeof(*x));
		snprintf(x->path, sizeof(x->path), "%s", archive_entry_pathname(e));
		x->type = archive_entry_filetype(e);
		x->perm = archive_entry_perm(e);
		x->size = archive_entry_size(e);
		x->mtime = archive_entry_mtime(e);
		x->uid = archive_entry_uid(e);
		if (archive_entry_symlink(e))
			snprintf(x->link, sizeof(x->link), "%s", archive_entry_symlink(e));
		if (x->type == AE_IFREG)
			assert_true(archive_read_data(a, x->data, sizeof(x->data) - 1) == x->size);
		n++;
	}
	assert_int_equal(archive_read_free(a), ARCHIVE_OK);
	return n;
}

static void make_tree(void)
{
	char path[512];

	make_dir("fn/lib/__pycache__");
	make_dir("fn/__pycache__");
	make_dir("fn/.git/objects");
	make_dir("fn/empty");
	make_dir("fn/deep/er/est");
	write_text("fn/main.py", "def handler(e, c):\n    return e\n", 0644);
	write_text("fn/run.sh", "#!/bin/sh\necho hi\n", 0755);
	write_text("fn/setuid", "x", 04755);
	write_text("fn/lib/util.py", "X = 1\n", 0600);
	write_text("fn/lib/__pycache__/util.cpython-311.pyc", "junk", 0644);
	write_text("fn/__pycache__/main.cpython-311.pyc", "junk", 0644);
	write_text("fn/.git/config", "[core]\n", 0644);
	write_text("fn/.gitignore", "*.pyc\n", 0644);
	write_text("fn/deep/er/est/leaf.txt", "leaf", 0644);
	snprintf(path, sizeof(path), "%s/fn/link", tmpdir);
	assert_int_equal(symlink("main.py", path), 0);
	snprintf(path, sizeof(path), "%s/fn/lib/up", tmpdir);
	assert_int_equal(symlink("../run.sh", path), 0);
	snprintf(path, sizeof(path), "%s/fn/fifo", tmpdir);
	assert_int_equal(mkfifo(path, 0644), 0);
}

static void test_pack_directory(void **state)
{
	static const struct {
		const char *path;
		mode_t type;
		mode_t perm;
		const char *data; /* file content or link target */
	} expect[] = {
		/* strcmp order, depth first; no __pycache__, .git, fifo */
		{ ".gitignore", AE_IFREG, 0644, "*.pyc\n" },
		{ "deep/", AE_IFDIR, 0755, NULL }, /* tar writes directories with a '/' */
		{ "deep/er/", AE_IFDIR, 0755, NULL },
		{ "deep/er/est/", AE_IFDIR, 0755, NULL },
		{ "deep/er/est/leaf.txt", AE_IFREG, 0644, "leaf" },
		{ "empty/", AE_IFDIR, 0755, NULL },
		{ "lib/", AE_IFDIR, 0755, NULL },
		{ "lib/up", AE_IFLNK, 0777, "../run.sh" },
		{ "lib/util.py", AE_IFREG, 0600, "X = 1\n" },
		{ "link", AE_IFLNK, 0777, "main.py" },
		{ "main.py", AE_IFREG, 0644, "def handler(e, c):\n    return e\n" },
		{ "run.sh", AE_IFREG, 0755, "#!/bin/sh\necho hi\n" },
		{ "setuid", AE_IFREG, 0755, "x" }, /* setuid bit dropped, exec bits kept */
	};
	_cleanup_(buf_done) struct buf a = BUF_INIT, b = BUF_INIT;
	_cleanup_free_ char *error = NULL, *dir = NULL, *main_py = NULL;
	_cleanup_close_ int fd = -EBADF;
	struct entry got[32];
	struct timespec ts[2] = { { 1000000, 0 }, { 1000000, 0 } };
	size_t n;
	(void)state;

	make_tree();
	dir = tmp_path("fn");
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);

	assert_int_equal(pack_directory(fd, &a, &error), 0);
	assert_null(error);
	assert_true(a.len > 2);
	assert_int_equal((unsigned char)a.data[0], 0x1f);
	assert_int_equal((unsigned char)a.data[1], 0x8b);

	n = read_archive(a.data, a.len, got, ELEMENTSOF(got));
	for (size_t i = 0; i < n; i++)
		if (i >= ELEMENTSOF(expect) || !streq(got[i].path, expect[i].path))
			fail_msg("entry %zu is '%s', expected '%s'", i, got[i].path,
				 i < ELEMENTSOF(expect) ? expect[i].path : "(none)");
	assert_int_equal(n, ELEMENTSOF(expect));
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(got[i].type, expect[i].type);
		if (got[i].perm != expect[i].perm)
			fail_msg("'%s': perm %o, expected %o", got[i].path, got[i].perm, expect[i].perm);
		assert_int_equal(got[i].mtime, 0);
		assert_int_equal(got[i].uid, 0);
		if (expect[i].type == AE_IFREG) {
			assert_int_equal(got[i].size, (int64_t)strlen(expect[i].data));
			assert_string_equal(got[i].data, expect[i].data);
		} else if (expect[i].type == AE_IFLNK)
			assert_string_equal(got[i].link, expect[i].data);
	}

	/* Reproducible: other mtimes, same bytes. */
	main_py = tmp_path("fn/main.py");
	assert_int_equal(utimensat(AT_FDCWD, main_py, ts, 0), 0);
	assert_int_equal(pack_directory(fd, &b, &error), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);

	/* An unreadable file fails with its path named (root reads everything: skip that part). */
	if (geteuid() != 0) {
		_cleanup_free_ char *err2 = NULL;
		_cleanup_(buf_done) struct buf c = BUF_INIT;

		assert_int_equal(chmod(main_py, 0), 0);
		assert_int_equal(pack_directory(fd, &c, &err2), -EACCES);
		assert_non_null(strstr(err2, "main.py"));
		assert_int_equal(c.len, 0); /* untouched on failure */
		assert_int_equal(chmod(main_py, 0644), 0);
	}
}

static void test_pack_single_file(void **state)
{
	_cleanup_(buf_done) struct buf out = BUF_INIT;
	_cleanup_free_ char *error = NULL, *so = NULL, *link = NULL;
	struct entry got[4];
	size_t n;
	(void)state;

	write_text("handler.so", "\x7f" "ELF fake", 0755);
	so = tmp_path("handler.so");
	link = tmp_path("alias.so");
	assert_int_equal(symlink(so, link), 0);

	/* Through a symlink: the file itself is packed, under the name given. */
	assert_int_equal(pack_single_file(link, "alias.so", &out, &error), 0);
	n = read_archive(out.data, out.len, got, ELEMENTSOF(got));
	assert_int_equal(n, 1);
	assert_string_equal(got[0].path, "alias.so");
	assert_int_equal(got[0].type, AE_IFREG);
	assert_int_equal(got[0].perm, 0755);
	assert_string_equal(got[0].data, "\x7f" "ELF fake");

	assert_int_equal(pack_single_file(so, "a/b.so", &out, &error), -EINVAL);
	assert_non_null(error);
}

static void test_pack_classify(void **state)
{
	static const struct {
		const char *name;
		int kind; /* or -errno */
	} cases[] = {
		{ "fn", PACK_DIRECTORY },
		{ "pkg.zip", PACK_ARCHIVE_ZIP },
		{ "pkg.ZIP", PACK_ARCHIVE_ZIP },
		{ "pkg.tar.gz", PACK_ARCHIVE_TARGZ },
		{ "pkg.tgz", PACK_ARCHIVE_TARGZ },
		{ "handler.so", PACK_SHARED_OBJECT },
		{ "alias.so", PACK_SHARED_OBJECT }, /* symlink to a file */
		{ "main.py", -EINVAL },
		{ "pkg.tar", -EINVAL },
		{ ".so", -EINVAL },
		{ "fn/fifo", -EINVAL },
		{ "missing.zip", -ENOENT },
	};
	(void)state;

	make_dir("fn");
	write_text("pkg.zip", "PK\3\4rest", 0644);
	write_text("pkg.ZIP", "PK\3\4rest", 0644);
	write_text("pkg.tar.gz", "\x1f\x8b rest", 0644);
	write_text("pkg.tgz", "not gzip", 0644);
	write_text("pkg.tar", "x", 0644);
	write_text("main.py", "x", 0644);
	write_text(".so", "x", 0644);
	write_text("handler.so", "x", 0755);
	{
		_cleanup_free_ char *fifo = tmp_path("fn/fifo"), *alias = tmp_path("alias.so"),
				    *target = tmp_path("handler.so");
		(void)unlink(fifo);
		(void)unlink(alias);
		assert_int_equal(mkfifo(fifo, 0644), 0);
		assert_int_equal(symlink(target, alias), 0);
	}

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_free_ char *p = tmp_path(cases[i].name);
		enum pack_kind kind = 99;
		int r = pack_classify(p, &kind);

		if (cases[i].kind < 0) {
			if (r != cases[i].kind)
				fail_msg("'%s': %d, expected %d", cases[i].name, r, cases[i].kind);
			assert_int_equal(kind, 99);
		} else {
			assert_int_equal(r, 0);
			if ((int)kind != cases[i].kind)
				fail_msg("'%s': kind %d, expected %d", cases[i].name, kind, cases[i].kind);
		}
	}

	/* Archives are sent as they are, once their magic matches the suffix. */
	{
		_cleanup_free_ char *zip = tmp_path("pkg.zip"), *tgz = tmp_path("pkg.tgz"),
				    *targz = tmp_path("pkg.tar.gz"), *error = NULL;
		_cleanup_(buf_done) struct buf out = BUF_INIT;

		assert_int_equal(pack_read_archive(zip, PACK_ARCHIVE_ZIP, &out, &error), 0);
		assert_int_equal(out.len, 8);
		assert_memory_equal(out.data, "PK\3\4rest", 8);
		buf_reset(&out);
		assert_int_equal(pack_read_archive(targz, PACK_ARCHIVE_TARGZ, &out, &error), 0);
		assert_int_equal(out.len, 7);
		buf_reset(&out);
		assert_int_equal(pack_read_archive(tgz, PACK_ARCHIVE_TARGZ, &out, &error),
				 -EMEDIUMTYPE);
		assert_non_null(strstr(error, "not a gzip"));
		assert_int_equal(out.len, 0);
		free(error);
		error = NULL;
		assert_int_equal(pack_read_archive(targz, PACK_ARCHIVE_ZIP, &out, &error), -EMEDIUMTYPE);
		assert_non_null(strstr(error, "not a zip"));
	}
}

/* ---- the binary against a fake spored ---------------------------------------------------- */

struct fake {
	int fd; /* listening */
	char sock_path[100];
	int port;                /* TCP when > 0 */
	char *pieces[8];         /* the answer, written piece by piece with a pause between */
	bool got;                /* a request arrived */
	char method[16];
	char target[256];
	struct buf head; /* request head */
	struct buf body;
	pthread_t thread;
};

static void *fake_serve(void *userdata)
{
	struct fake *f = userdata;
	struct pollfd p = { .fd = f->fd, .events = POLLIN };
	_cleanup_close_ int c = -EBADF;
	struct buf in = BUF_INIT;
	size_t head_len = 0, content_length = 0;
	char *hdr_end;

	if (poll(&p, 1, 15000) <= 0)
		return NULL;
	c = accept4(f->fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return NULL;

	for (;;) {
		char chunk[4096];
		ssize_t n = read(c, chunk, sizeof(chunk));

		if (n <= 0)
			break;
		buf_append(&in, chunk, (size_t)n);
		hdr_end = memmem(in.data, in.len, "\r\n\r\n", 4);
		if (hdr_end && !head_len) {
			const char *cl;

			head_len = (size_t)(hdr_end - in.data) + 4;
			buf_append(&f->head, in.data, head_len);
			cl = strcasestr(buf_cstr(&f->head), "\r\ncontent-length:");
			if (cl)
				content_length = strtoul(cl + 17, NULL, 10);
		}
		if (head_len && in.len >= head_len + content_length)
			break;
	}
	if (head_len) {
		f->got = true;
		sscanf(buf_cstr(&in), "%15s %255s", f->method, f->target);
		buf_append(&f->body, in.data + head_len, in.len - head_len);
		buf_cstr(&f->body);
		for (size_t i = 0; i < ELEMENTSOF(f->pieces) && f->pieces[i]; i++) {
			if (i > 0)
				usleep(50 * 1000);
			(void)write_all(c, f->pieces[i], strlen(f->pieces[i]));
		}
	}
	buf_done(&in);
	return NULL;
}

/* Starts a fake answering one request with the pieces (taken over, NULL-terminated). */
static void fake_start(struct fake *f, int tcp, ...)
{
	va_list ap;
	size_t n = 0;
	char *piece;

	memset(f, 0, sizeof(*f));
	va_start(ap, tcp);
	while ((piece = va_arg(ap, char *))) {
		assert_true(n < ELEMENTSOF(f->pieces) - 1);
		f->pieces[n++] = piece;
	}
	va_end(ap);

	if (tcp) {
		struct sockaddr_in sin = { .sin_family = AF_INET,
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t l = sizeof(sin);

		f->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(f->fd >= 0);
		assert_int_equal(bind(f->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
		assert_int_equal(getsockname(f->fd, (struct sockaddr *)&sin, &l), 0);
		f->port = ntohs(sin.sin_port);
	} else {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };

		snprintf(f->sock_path, sizeof(f->sock_path), "%s/api.sock", tmpdir);
		(void)unlink(f->sock_path);
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->sock_path);
		f->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(f->fd >= 0);
		assert_int_equal(bind(f->fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	}
	assert_int_equal(listen(f->fd, 4), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_serve, f), 0);
}

static void *mfree_(void *p)
{
	free(p);
	return NULL;
}

static void fake_stop(struct fake *f)
{
	assert_int_equal(pthread_join(f->thread, NULL), 0);
	close(f->fd);
	if (f->sock_path[0])
		(void)unlink(f->sock_path);
	for (size_t i = 0; i < ELEMENTSOF(f->pieces); i++)
		f->pieces[i] = mfree_(f->pieces[i]);
}

/* After fake_stop(): the recorded request goes. */
static void fake_done(struct fake *f)
{
	buf_done(&f->head);
	buf_done(&f->body);
}

/* The value of request header name (case-insensitive), malloc'ed, or NULL. */
static char *fake_header(struct fake *f, const char *name)
{
	const char *h = buf_cstr(&f->head);
	size_t nl = strlen(name);

	for (const char *line = strstr(h, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
		const char *s = line + 2;
		if (strncasecmp(s, name, nl) == 0 && s[nl] == ':') {
			s += nl + 1;
			while (*s == ' ')
				s++;
			return strndup(s, strcspn(s, "\r\n"));
		}
	}
	return NULL;
}

static char *http_answer(const char *status, const char *headers, const char *body)
{
	char *s = NULL;

	assert_true(asprintf(&s,
			     "HTTP/1.1 %s\r\nContent-Type: application/json\r\n%sContent-Length: "
			     "%zu\r\nConnection: close\r\n\r\n%s",
			     status, headers ?: "", strlen(body), body) > 0);
	return s;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	assert_non_null(d);
	return d;
}

static char *chunk(const char *data)
{
	char *s = NULL;

	assert_true(asprintf(&s, "%zx\r\n%s\r\n", strlen(data), data) > 0);
	return s;
}

struct run {
	int status;
	char *out;
	char *err;
};

static void run_done(struct run *r)
{
	free(r->out);
	free(r->err);
}

static char *read_memfd(int fd)
{
	_cleanup_(buf_done) struct buf b = BUF_INIT;
	char chunk_[4096];
	ssize_t n;

	assert_true(lseek(fd, 0, SEEK_SET) == 0);
	while ((n = read(fd, chunk_, sizeof(chunk_))) > 0)
		assert_int_equal(buf_append(&b, chunk_, (size_t)n), 0);
	return buf_steal(&b, NULL);
}

/* Runs sporectl with args (NULL-terminated) and stdin data; extra_env ("K=V", NULL-terminated)
 * added to an environment without any SPORE_* of the caller's. */
static struct run run_ctl(const char *const *args, const char *in, const char *const *extra_env)
{
	_cleanup_close_ int fd_in = memfd_create("in", MFD_CLOEXEC);
	_cleanup_close_ int fd_out = memfd_create("out", MFD_CLOEXEC);
	_cleanup_close_ int fd_err = memfd_create("err", MFD_CLOEXEC);
	char *argv[40], *envp[256];
	size_t na = 0, ne = 0;
	posix_spawn_file_actions_t fa;
	struct run r = {};
	pid_t pid;
	int status = 0;

	assert_true(fd_in >= 0 && fd_out >= 0 && fd_err >= 0);
	if (in)
		assert_int_equal(write_all(fd_in, in, strlen(in)), 0);
	assert_true(lseek(fd_in, 0, SEEK_SET) == 0);

	/* SPORECTL_TEST_VALGRIND=1 runs every sporectl under valgrind: a leak or error in it
	 * becomes exit status 99, which no case expects. */
	if (getenv("SPORECTL_TEST_VALGRIND")) {
		argv[na++] = (char *)"valgrind";
		argv[na++] = (char *)"-q";
		argv[na++] = (char *)"--leak-check=full";
		argv[na++] = (char *)"--error-exitcode=99";
		argv[na++] = (char *)SPORECTL_BIN;
	} else
		argv[na++] = (char *)"sporectl";
	for (; *args; args++) {
		assert_true(na < ELEMENTSOF(argv) - 1);
		argv[na++] = (char *)*args;
	}
	argv[na] = NULL;
	for (char **e = environ; *e && ne < ELEMENTSOF(envp) - 8; e++)
		if (!startswith(*e, "SPORE_"))
			envp[ne++] = *e;
	for (; extra_env && *extra_env; extra_env++)
		envp[ne++] = (char *)*extra_env;
	envp[ne] = NULL;

	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	assert_int_equal(posix_spawn_file_actions_adddup2(&fa, fd_in, 0), 0);
	assert_int_equal(posix_spawn_file_actions_adddup2(&fa, fd_out, 1), 0);
	assert_int_equal(posix_spawn_file_actions_adddup2(&fa, fd_err, 2), 0);
	if (getenv("SPORECTL_TEST_VALGRIND"))
		assert_int_equal(posix_spawnp(&pid, "valgrind", &fa, NULL, argv, envp), 0);
	else
		assert_int_equal(posix_spawn(&pid, SPORECTL_BIN, &fa, NULL, argv, envp), 0);
	posix_spawn_file_actions_destroy(&fa);

	/* 30 s at most, then it is killed and the test fails. */
	for (int i = 0;; i++) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		assert_true(w >= 0);
		if (w == pid)
			break;
		if (i == 3000) {
			kill(pid, SIGKILL);
			assert_int_equal(waitpid(pid, &status, 0), pid);
			fail_msg("sporectl did not finish within 30 s");
		}
		usleep(10 * 1000);
	}
	assert_true(WIFEXITED(status));
	r.status = WEXITSTATUS(status);
	r.out = read_memfd(fd_out);
	r.err = read_memfd(fd_err);
	return r;
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void expect_run(struct run *r, int status, const char *out, const char *err_sub)
{
	if (r->status != status)
		fail_msg("exit %d, expected %d\nstdout: %s\nstderr: %s", r->status, status, r->out,
			 r->err);
	if (out && !streq(r->out, out))
		fail_msg("stdout:\n%s\nexpected:\n%s\nstderr: %s", r->out, out, r->err);
	if (err_sub && !strstr(r->err, err_sub))
		fail_msg("stderr '%s' lacks '%s'", r->err, err_sub);
}

/* Usage errors and local failures: no server needed. "@D" in an argument is the temp dir. */
static void test_cli_errors(void **state)
{
	static const struct {
		const char *args[12];
		int status;
		const char *out;     /* exact stdout, or NULL */
		const char *err_sub; /* in stderr, or NULL */
	} cases[] = {
		{ { NULL }, 2, "", "missing command" },
		{ { "frob" }, 2, "", "unknown command 'frob'" },
		{ { "--help" }, 0, NULL, NULL },
		{ { "-h", "deploy" }, 0, NULL, NULL },
		{ { "--version" }, 0, "sporectl 0.1.0\n", NULL },
		{ { "--bogus", "ls" }, 2, "", "unknown option '--bogus'" },
		{ { "-x", "ls" }, 2, "", "unknown option '-x'" },
		{ { "--json=1", "ls" }, 2, "", "takes no argument" },
		{ { "ls", "--socket" }, 2, "", "needs an argument" },
		{ { "ls", "extra" }, 2, "", "too many arguments for 'ls'" },
		{ { "ls", "-f" }, 2, "", "'--follow' does not apply to 'ls'" },
		{ { "invoke", "f", "--runtime", "python3" }, 2, "", "'--runtime' does not apply" },
		{ { "info" }, 2, "", "'info' needs NAME" },
		{ { "deploy", "f" }, 2, "", "needs NAME and PATH" },
		{ { "deploy", "Bad", "@D/fn" }, 2, "", "invalid function name 'Bad'" },
		{ { "deploy", "f", "@D/fn" }, 2, "", "deploy needs --runtime" },
		{ { "deploy", "f", "@D/fn", "--runtime", "python3" }, 2, "", "deploy needs --handler" },
		{ { "deploy", "f", "@D/main.py", "--runtime", "python3", "--handler", "m.h" },
		  2, "", "is not a directory" },
		{ { "deploy", "f", "@D/nothing-here", "--runtime", "r", "--handler", "h" },
		  1, "", "cannot access" },
		{ { "deploy", "f", "@D/bad", "--runtime", "r", "--handler", "h" },
		  1, "", "spore.json: memory_mb: must be a positive integer" },
		{ { "deploy", "f", "@D/pkg.tgz", "--runtime", "r", "--handler", "h" },
		  1, "", "not a gzip-compressed tar archive" },
		{ { "deploy", "f", "@D/fn", "--timeout", "10x" }, 2, "", "invalid --timeout '10x'" },
		{ { "deploy", "f", "@D/fn", "--memory", "0" }, 2, "", "invalid --memory '0'" },
		{ { "deploy", "f", "@D/fn", "--memory", "12MB" }, 2, "", "invalid --memory" },
		{ { "deploy", "f", "@D/fn", "--env", "=x" }, 2, "", "invalid --env '=x'" },
		{ { "deploy", "f", "@D/fn", "--env", "NOEQUALS" }, 2, "", "invalid --env" },
		{ { "invoke", "f", "{bad" }, 2, "", "not valid JSON" },
		{ { "invoke", "f", "{\"a\":1} trailing" }, 2, "", "not valid JSON" },
		{ { "invoke", "f", "@" }, 2, "", "missing file name after '@'" },
		{ { "invoke", "f", "@@D/not.json" }, 2, "", "event (@D/not.json) is not valid JSON" },
		{ { "invoke", "f", "@/nonexistent/event.json" }, 1, "", "cannot read" },
		{ { "invoke", "f", "-" }, 2, "", "event (stdin) is not valid JSON" },
		{ { "invoke", "f", "{}", "extra" }, 2, "", "too many arguments" },
		{ { "logs", "f", "--tail", "x" }, 2, "", "invalid --tail 'x'" },
		{ { "logs", "f", "-n", "10001" }, 2, "", "invalid --tail" },
		{ { "rollback", "f", "0" }, 2, "", "invalid version '0'" },
		{ { "rollback", "f", "v2" }, 2, "", "invalid version 'v2'" },
		{ { "rm", "../etc" }, 2, "", "invalid function name" },
		{ { "--socket", "/s", "--url", "http://x", "ls" }, 2, "", "exclude each other" },
		{ { "--url", "ftp://x", "ls" }, 2, "", "invalid --url 'ftp://x'" },
		{ { "--socket", "@D/no.sock", "ls" }, 1, "", "unix socket '@D/no.sock'" },
		{ { "--socket", "@D/no.sock", "info", "f" }, 1, "", "is spored running?" },
		{ { "--url", "http://127.0.0.1:1", "ls" }, 1, "", "'http://127.0.0.1:1'" },
	};
	(void)state;

	make_dir("fn");
	make_dir("bad");
	write_text("bad/spore.json", "{\"memory_mb\":0}", 0644);
	write_text("main.py", "x", 0644);
	write_text("not.json", "nope", 0644);
	write_text("pkg.tgz", "not gzip", 0644);

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char *args[13] = {};
		_cleanup_free_ char *err_sub = NULL;
		struct run r;
		size_t n = 0;

		for (; n < 12 && cases[i].args[n]; n++) {
			const char *a = cases[i].args[n];
			const char *at = strstr(a, "@D");

			if (at)
				assert_true(asprintf(&args[n], "%.*s%s%s", (int)(at - a), a, tmpdir,
						     at + 2) > 0);
			else
				args[n] = xstrdup(a);
		}
		if (cases[i].err_sub) {
			const char *at = strstr(cases[i].err_sub, "@D");
			if (at)
				assert_true(asprintf(&err_sub, "%.*s%s%s", (int)(at - cases[i].err_sub),
						     cases[i].err_sub, tmpdir, at + 2) > 0);
			else
				err_sub = xstrdup(cases[i].err_sub);
		}

		r = run_ctl((const char *const *)args, "not json", NULL);
		if (r.status != cases[i].status ||
		    (cases[i].out && !streq(r.out, cases[i].out)) ||
		    (err_sub && !strstr(r.err, err_sub)))
			fail_msg("case %zu (%s ...): exit %d (expected %d)\nstdout: %s\nstderr: %s\n"
				 "expected in stderr: %s",
				 i, args[0] ?: "", r.status, cases[i].status, r.out, r.err,
				 err_sub ?: "-");
		if (cases[i].status == 2)
			assert_non_null(strstr(r.err, "Try 'sporectl --help'"));
		if (cases[i].status == 0 && !cases[i].out)
			assert_non_null(strstr(r.out, "Usage: sporectl"));
		run_done(&r);
		for (size_t k = 0; k < n; k++)
			free(args[k]);
	}
}

/* Request/answer pairs with a fixed expectation each. */
static void test_cli_requests(void **state)
{
	static const char fn_json[] =
		"{\"name\":\"hello\",\"live_version\":2,\"runtime\":\"python3\",\"handler\":"
		"\"main.handler\",\"memory_mb\":128,\"timeout_ms\":30000,\"env\":{\"GREETING\":\"hi\"},"
		"\"versions\":[{\"version\":1,\"sha256\":"
		"\"1111111111111111111111111111111111111111111111111111111111111111\",\"created\":"
		"\"2026-11-23T19:38:17.123456Z\",\"runtime\":\"python3\",\"handler\":\"main.handler\","
		"\"memory_mb\":128,\"timeout_ms\":30000},{\"version\":2,\"sha256\":"
		"\"2222222222222222222222222222222222222222222222222222222222222222\",\"created\":"
		"\"2026-11-24T08:00:00.000001Z\",\"runtime\":\"python3\",\"handler\":\"main.handler\","
		"\"memory_mb\":256,\"timeout_ms\":1500}],\"instances\":[{\"id\":\"i-1\",\"pid\":4242,"
		"\"version\":2,\"state\":\"idle\",\"invocations\":7}]}";
	static const struct {
		const char *args[8];
		const char *in;
		const char *status, *headers, *body; /* the fake's answer */
		int exit;
		const char *method, *target, *req_body; /* what it must have received */
		const char *out;                         /* exact stdout */
		const char *err;                         /* exact stderr, or NULL for "" */
	} cases[] = {
		{ { "invoke", "hello", "{\"n\": 1}" }, NULL, "200 OK", NULL, "{\"ok\":true}",
		  0, "POST", "/v1/functions/hello/invoke", "{\"n\": 1}", "{\"ok\":true}\n", NULL },
		{ { "-v", "invoke", "hello", "[1,2]" }, NULL, "200 OK",
		  "X-Spore-Version: 2\r\nX-Spore-Cold-Start: true\r\nX-Spore-Duration-Us: 812\r\n"
		  "X-Spore-Request-Id: r-9\r\nServer: fake\r\n",
		  "3\n", 0, "POST", "/v1/functions/hello/invoke", "[1,2]", "3\n",
		  "X-Spore-Version: 2\nX-Spore-Cold-Start: true\nX-Spore-Duration-Us: 812\n"
		  "X-Spore-Request-Id: r-9\n" },
		{ { "invoke", "hello", "-" }, " {\"from\":\"stdin\"}\n", "200 OK", NULL, "null",
		  0, "POST", "/v1/functions/hello/invoke", " {\"from\":\"stdin\"}\n", "null\n", NULL },
		{ { "invoke", "hello", "@@D/event.json" }, NULL, "200 OK", NULL, "\"x\"",
		  0, "POST", "/v1/functions/hello/invoke", "{\"file\": true}\n", "\"x\"\n", NULL },
		{ { "invoke", "hello" }, NULL, "200 OK", NULL, "null", 0, "POST",
		  "/v1/functions/hello/invoke", "", "null\n", NULL },
		{ { "invoke", "hello", "   " }, NULL, "200 OK", NULL, "null", 0, "POST",
		  "/v1/functions/hello/invoke", "", "null\n", NULL },
		{ { "invoke", "hello", "{}" }, NULL, "500 Internal Server Error",
		  "X-Spore-Version: 1\r\n",
		  "{\"error\":\"function_error\",\"message\":\"ZeroDivisionError: division by zero\","
		  "\"errorType\":\"ZeroDivisionError\",\"errorMessage\":\"division by zero\","
		  "\"stackTrace\":[\"  File \\\"main.py\\\", line 2, in handler\\n\",\"    1/0\\n\"]}",
		  1, "POST", "/v1/functions/hello/invoke", "{}", "",
		  "sporectl: 500 function_error: ZeroDivisionError: division by zero\n"
		  "  File \"main.py\", line 2, in handler\n    1/0\n" },
		{ { "--json", "invoke", "hello", "{}" }, NULL, "504 Gateway Timeout", NULL,
		  "{\"error\":\"timeout\",\"message\":\"ran past 3000 ms\"}", 1, "POST",
		  "/v1/functions/hello/invoke", "{}",
		  "{\"error\":\"timeout\",\"message\":\"ran past 3000 ms\"}\n",
		  "sporectl: 504 timeout: ran past 3000 ms\n" },
		{ { "rm", "ghost" }, NULL, "404 Not Found", NULL,
		  "{\"error\":\"not_found\",\"message\":\"no function 'ghost'\"}", 1, "DELETE",
		  "/v1/functions/ghost", "", "", "sporectl: 404 not_found: no function 'ghost'\n" },
		{ { "rm", "hello" }, NULL, "204 No Content", NULL, "", 0, "DELETE",
		  "/v1/functions/hello", "", "Removed hello\n", NULL },
		{ { "rollback", "hello" }, NULL, "200 OK", NULL, "{\"name\":\"hello\",\"version\":1}",
		  0, "POST", "/v1/functions/hello/rollback", "", "Rolled back hello to version 1\n",
		  NULL },
		{ { "rollback", "hello", "3" }, NULL, "200 OK", NULL,
		  "{\"name\":\"hello\",\"version\":3}", 0, "POST", "/v1/functions/hello/rollback",
		  "{\"version\":3}", "Rolled back hello to version 3\n", NULL },
		{ { "rollback", "hello" }, NULL, "409 Conflict", NULL,
		  "{\"error\":\"conflict\",\"message\":\"no version below 1\"}", 1, "POST",
		  "/v1/functions/hello/rollback", "", "",
		  "sporectl: 409 conflict: no version below 1\n" },
		{ { "ls" }, NULL, "200 OK", NULL,
		  "{\"functions\":[{\"name\":\"hello\",\"live_version\":2,\"runtime\":\"python3\","
		  "\"handler\":\"main.handler\",\"memory_mb\":128,\"timeout_ms\":30000,\"versions\":2},"
		  "{\"name\":\"noop\",\"live_version\":11,\"runtime\":\"native\",\"handler\":\"noop\","
		  "\"memory_mb\":64,\"timeout_ms\":500,\"versions\":11}]}",
		  0, "GET", "/v1/functions", "",
		  "NAME   LIVE  RUNTIME  HANDLER       MEMORY  TIMEOUT  VERSIONS\n"
		  "hello  2     python3  main.handler  128MB   30s      2\n"
		  "noop   11    native   noop          64MB    500ms    11\n",
		  NULL },
		{ { "ls" }, NULL, "200 OK", NULL, "{\"functions\":[]}", 0, "GET", "/v1/functions", "",
		  "NAME  LIVE  RUNTIME  HANDLER  MEMORY  TIMEOUT  VERSIONS\n", NULL },
		{ { "ls", "--json" }, NULL, "200 OK", NULL, "{\"functions\":[]}", 0, "GET",
		  "/v1/functions", "", "{\"functions\":[]}\n", NULL },
		{ { "versions", "hello" }, NULL, "200 OK", NULL, fn_json, 0, "GET",
		  "/v1/functions/hello", "",
		  "VERSION  LIVE  CREATED                      SHA256                              "
		  "                              RUNTIME  HANDLER       MEMORY  TIMEOUT\n"
		  "1              2026-11-23T19:38:17.123456Z  11111111111111111111111111111111111"
		  "11111111111111111111111111111  python3  main.handler  128MB   30s\n"
		  "2        *     2026-11-24T08:00:00.000001Z  22222222222222222222222222222222222"
		  "22222222222222222222222222222  python3  main.handler  256MB   1500ms\n",
		  NULL },
		{ { "info", "hello" }, NULL, "200 OK", NULL, fn_json, 0, "GET", "/v1/functions/hello",
		  "",
		  "Name:         hello\n"
		  "Live version: 2\n"
		  "Runtime:      python3\n"
		  "Handler:      main.handler\n"
		  "Memory:       128MB\n"
		  "Timeout:      30s\n"
		  "Env:          GREETING=hi\n"
		  "Instances:    1\n"
		  "\n"
		  "VERSION  LIVE  CREATED                      SHA256        RUNTIME  HANDLER       "
		  "MEMORY  TIMEOUT\n"
		  "1              2026-11-23T19:38:17.123456Z  111111111111  python3  main.handler  "
		  "128MB   30s\n"
		  "2        *     2026-11-24T08:00:00.000001Z  222222222222  python3  main.handler  "
		  "256MB   1500ms\n"
		  "\n"
		  "INSTANCE  PID   VERSION  STATE  INVOCATIONS\n"
		  "i-1       4242  2        idle   7\n",
		  NULL },
		{ { "runtimes" }, NULL, "200 OK", NULL,
		  "{\"runtimes\":[{\"name\":\"python3\",\"pid\":100,\"state\":\"running\","
		  "\"restarts\":0,\"started\":\"2026-11-23T19:00:00.000000Z\"},{\"name\":\"native\","
		  "\"pid\":101,\"state\":\"restarting\",\"restarts\":2,\"started\":"
		  "\"2026-11-23T19:00:01.000000Z\"}]}",
		  0, "GET", "/v1/runtimes", "",
		  "NAME     PID  STATE       RESTARTS  STARTED\n"
		  "python3  100  running     0         2026-11-23T19:00:00.000000Z\n"
		  "native   101  restarting  2         2026-11-23T19:00:01.000000Z\n",
		  NULL },
		{ { "logs", "hello", "--tail", "2" }, NULL, "200 OK", NULL,
		  "{\"time\":\"2026-11-23T19:38:17.123456Z\",\"version\":2,\"instance\":\"i-1\","
		  "\"stream\":\"stdout\",\"message\":\"hello\"}\n"
		  "{\"time\":\"2026-11-23T19:38:18.000000Z\",\"version\":2,\"instance\":\"i-1\","
		  "\"stream\":\"stderr\",\"message\":\"oops: a: b\"}\n",
		  0, "GET", "/v1/functions/hello/logs?tail=2", "",
		  "2026-11-23T19:38:17.123456Z v2 i-1 stdout: hello\n"
		  "2026-11-23T19:38:18.000000Z v2 i-1 stderr: oops: a: b\n",
		  NULL },
		{ { "logs", "hello", "--json" }, NULL, "200 OK", NULL, "{\"message\":\"m\"}\n", 0,
		  "GET", "/v1/functions/hello/logs", "", "{\"message\":\"m\"}\n", NULL },
		{ { "logs", "ghost" }, NULL, "404 Not Found", NULL,
		  "{\"error\":\"not_found\",\"message\":\"no function 'ghost'\"}", 1, "GET",
		  "/v1/functions/ghost/logs", "", "", "sporectl: 404 not_found: no function 'ghost'\n" },
		{ { "ls" }, NULL, "502 Bad Gateway", NULL, "upstream went away\nmore", 1, "GET",
		  "/v1/functions", "", "", "sporectl: 502: upstream went away\n" },
		{ { "ls" }, NULL, "503 Service Unavailable", NULL, "", 1, "GET", "/v1/functions", "",
		  "", "sporectl: 503 (empty answer)\n" },
		{ { "ls" }, NULL, "200 OK", NULL, "not json", 1, "GET", "/v1/functions", "", "",
		  "sporectl: spored's answer is not valid JSON\n" },
	};
	(void)state;

	write_text("event.json", "{\"file\": true}\n", 0644);

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_free_ char *auth = NULL, *ctype = NULL;
		const char *args[16];
		char *owned[8] = {};
		_cleanup_(fake_done) struct fake f = {};
		struct run r;
		size_t n = 0;

		fake_start(&f, false, http_answer(cases[i].status, cases[i].headers, cases[i].body),
			   NULL);
		args[n++] = "--socket";
		args[n++] = f.sock_path;
		for (size_t k = 0; cases[i].args[k]; k++) {
			const char *a = cases[i].args[k], *at = strstr(a, "@D");

			if (at) {
				assert_true(asprintf(&owned[k], "%.*s%s%s", (int)(at - a), a, tmpdir,
						     at + 2) > 0);
				a = owned[k];
			}
			args[n++] = a;
		}
		args[n] = NULL;

		r = run_ctl(args, cases[i].in, NULL);
		fake_stop(&f);
		if (!f.got)
			fail_msg("case %zu: no request arrived; stderr: %s", i, r.err);
		if (!streq(f.method, cases[i].method) || !streq(f.target, cases[i].target))
			fail_msg("case %zu: request %s %s, expected %s %s", i, f.method, f.target,
				 cases[i].method, cases[i].target);
		if (!streq(buf_cstr(&f.body), cases[i].req_body))
			fail_msg("case %zu: request body '%s', expected '%s'", i, buf_cstr(&f.body),
				 cases[i].req_body);
		auth = fake_header(&f, "Authorization");
		assert_null(auth);
		ctype = fake_header(&f, "Content-Type");
		if (*cases[i].req_body)
			assert_string_equal(ctype, "application/json");
		assert_null(strcasestr(buf_cstr(&f.head), "\r\nExpect:"));
		if (r.status != cases[i].exit || !streq(r.out, cases[i].out) ||
		    !streq(r.err, cases[i].err ?: ""))
			fail_msg("case %zu (%s): exit %d (expected %d)\nstdout:\n%s\nexpected:\n%s\n"
				 "stderr:\n%s\nexpected:\n%s",
				 i, cases[i].args[0], r.status, cases[i].exit, r.out, cases[i].out,
				 r.err, cases[i].err ?: "");
		run_done(&r);
		for (size_t k = 0; k < ELEMENTSOF(owned); k++)
			free(owned[k]);
	}
}

static cJSON *deploy_body(struct fake *f)
{
	cJSON *j = cJSON_Parse(buf_cstr(&f->body));

	if (!j)
		fail_msg("deploy body is not JSON: %.200s", buf_cstr(&f->body));
	return j;
}

static void decode_code(const cJSON *body, struct buf *ret)
{
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(body, "code");
	_cleanup_free_ unsigned char *data = NULL;
	size_t len;

	assert_true(cJSON_IsString(code));
	assert_int_equal(base64_decode(code->valuestring, strlen(code->valuestring), &data, &len), 0);
	assert_int_equal(buf_append(ret, data, len), 0);
}

static void check_keys(const cJSON *j, const char *const *keys)
{
	const cJSON *e;
	size_t n = 0, want = 0;

	while (keys[want])
		want++;
	cJSON_ArrayForEach(e, j) {
		bool known = false;

		for (size_t k = 0; keys[k]; k++)
			known = known || streq(e->string, keys[k]);
		if (!known)
			fail_msg("unexpected key '%s'", e->string);
		n++;
	}
	assert_int_equal(n, want);
}

static void test_cli_deploy(void **state)
{
	const char *answer = "{\"name\":\"hello\",\"version\":3,\"sha256\":\"abc123\"}";
	(void)state;

	make_dir("app/lib");
	make_dir("app/__pycache__");
	make_dir("plain");
	write_text("app/main.py", "def handler(event, context):\n    return event\n", 0644);
	write_text("app/lib/x.py", "", 0644);
	write_text("app/tool", "#!/bin/sh\n", 0755);
	write_text("app/__pycache__/main.pyc", "junk", 0644);
	write_text("app/spore.json",
		   "{\"runtime\":\"python3\",\"handler\":\"main.handler\",\"memory_mb\":256,"
		   "\"timeout_ms\":10000,\"env\":{\"A\":\"from-file\",\"B\":\"kept\"}}",
		   0644);
	write_text("plain/f.py", "", 0644);
	write_text("native.so", "\x7f" "ELF", 0755);
	write_text("given.zip", "PK\3\4 a zip as is", 0644);

	/* A directory: spore.json gives defaults, flags override them key by key. */
	{
		_cleanup_free_ char *dir = tmp_path("app");
		_cleanup_(cJSON_Deletep) cJSON *body = NULL;
		_cleanup_(buf_done) struct buf code = BUF_INIT;
		static const char *const want[] = { "lib/", "lib/x.py", "main.py", "spore.json",
						    "tool" };
		struct entry got[16];
		_cleanup_(fake_done) struct fake f = {};
		struct run r;
		size_t n;

		fake_start(&f, false, http_answer("201 Created", NULL, answer), NULL);
		r = run_ctl(ARGS("deploy", "hello", dir, "--socket", f.sock_path, "--timeout", "2s",
				 "--env", "A=flag", "--env", "C=x=y", "--env", "C=last"),
			    NULL, NULL);
		fake_stop(&f);
		expect_run(&r, 0, "Deployed hello version 3 (sha256 abc123)\n", NULL);
		assert_string_equal(r.err, "");
		run_done(&r);
		assert_string_equal(f.method, "PUT");
		assert_string_equal(f.target, "/v1/functions/hello");

		body = deploy_body(&f);
		check_keys(body, (const char *const[]){ "runtime", "handler", "memory_mb",
							"timeout_ms", "env", "code", NULL });
		assert_string_equal(cJSON_GetObjectItem(body, "runtime")->valuestring, "python3");
		assert_string_equal(cJSON_GetObjectItem(body, "handler")->valuestring, "main.handler");
		assert_int_equal(cJSON_GetObjectItem(body, "memory_mb")->valueint, 256);
		assert_int_equal(cJSON_GetObjectItem(body, "timeout_ms")->valueint, 2000);
		{
			_cleanup_free_ char *env = cJSON_PrintUnformatted(cJSON_GetObjectItem(body, "env"));
			assert_string_equal(env, "{\"A\":\"flag\",\"B\":\"kept\",\"C\":\"last\"}");
		}

		decode_code(body, &code);
		n = read_archive(code.data, code.len, got, ELEMENTSOF(got));
		assert_int_equal(n, ELEMENTSOF(want));
		for (size_t i = 0; i < n; i++)
			assert_string_equal(got[i].path, want[i]);
		assert_int_equal(got[4].perm, 0755);
		assert_int_equal(got[2].perm, 0644);
	}

	/* Flags only: no memory/timeout/env keys unless given. */
	{
		_cleanup_free_ char *dir = tmp_path("plain");
		_cleanup_(cJSON_Deletep) cJSON *body = NULL;
		_cleanup_(fake_done) struct fake f = {};
		struct run r;

		fake_start(&f, false, http_answer("201 Created", NULL, answer), NULL);
		r = run_ctl(ARGS("--socket", f.sock_path, "deploy", "hello", dir, "--runtime", "python3",
				 "--handler", "f.h", "--memory", "512"),
			    NULL, NULL);
		fake_stop(&f);
		expect_run(&r, 0, NULL, NULL);
		run_done(&r);
		body = deploy_body(&f);
		check_keys(body, (const char *const[]){ "runtime", "handler", "memory_mb", "code", NULL });
		assert_int_equal(cJSON_GetObjectItem(body, "memory_mb")->valueint, 512);
		assert_string_equal(cJSON_GetObjectItem(body, "handler")->valuestring, "f.h");
	}

	/* A .so alone becomes a one-entry tar.gz, exec bit kept. */
	{
		_cleanup_free_ char *so = tmp_path("native.so");
		_cleanup_(cJSON_Deletep) cJSON *body = NULL;
		_cleanup_(buf_done) struct buf code = BUF_INIT;
		struct entry got[4];
		_cleanup_(fake_done) struct fake f = {};
		struct run r;

		fake_start(&f, false, http_answer("201 Created", NULL, answer), NULL);
		r = run_ctl(ARGS("--socket", f.sock_path, "deploy", "noop", so, "--runtime", "native",
				 "--handler", "noop"),
			    NULL, NULL);
		fake_stop(&f);
		expect_run(&r, 0, NULL, NULL);
		run_done(&r);
		assert_string_equal(f.target, "/v1/functions/noop");
		body = deploy_body(&f);
		decode_code(body, &code);
		assert_int_equal(read_archive(code.data, code.len, got, ELEMENTSOF(got)), 1);
		assert_string_equal(got[0].path, "native.so");
		assert_int_equal(got[0].perm, 0755);
		assert_string_equal(got[0].data, "\x7f" "ELF");
	}

	/* An archive is sent byte for byte; --url and --token over TCP; --json prints the
	 * answer as is. */
	{
		_cleanup_free_ char *zip = tmp_path("given.zip"), *url = NULL, *auth = NULL;
		_cleanup_(cJSON_Deletep) cJSON *body = NULL;
		_cleanup_(buf_done) struct buf code = BUF_INIT;
		_cleanup_(fake_done) struct fake f = {};
		struct run r;

		fake_start(&f, true, http_answer("201 Created", NULL, answer), NULL);
		assert_true(asprintf(&url, "http://127.0.0.1:%d/", f.port) > 0);
		r = run_ctl(ARGS("--url", url, "--token", "sekrit", "--json", "deploy", "hello", zip,
				 "--runtime", "python3", "--handler", "m.h"),
			    NULL, (const char *const[]){ "SPORE_TOKEN=ignored", NULL });
		fake_stop(&f);
		expect_run(&r, 0, NULL, NULL);
		assert_string_equal(r.out, "{\"name\":\"hello\",\"version\":3,\"sha256\":\"abc123\"}\n");
		run_done(&r);
		assert_string_equal(f.target, "/v1/functions/hello");
		auth = fake_header(&f, "Authorization");
		assert_non_null(auth);
		assert_string_equal(auth, "Bearer sekrit");
		body = deploy_body(&f);
		decode_code(body, &code);
		assert_int_equal(code.len, strlen("PK\3\4 a zip as is"));
		assert_memory_equal(code.data, "PK\3\4 a zip as is", code.len);
	}
}

/* $SPORE_SOCKET and $SPORE_TOKEN stand in for --socket and --token. */
static void test_cli_environment(void **state)
{
	_cleanup_free_ char *sock_env = NULL, *auth = NULL;
	_cleanup_(fake_done) struct fake f = {};
	struct run r;
	(void)state;

	fake_start(&f, false, http_answer("200 OK", NULL, "{\"runtimes\":[]}"), NULL);
	assert_true(asprintf(&sock_env, "SPORE_SOCKET=%s", f.sock_path) > 0);
	r = run_ctl(ARGS("runtimes"), NULL,
		    (const char *const[]){ sock_env, "SPORE_TOKEN=envtok", NULL });
	fake_stop(&f);
	expect_run(&r, 0, "NAME  PID  STATE  RESTARTS  STARTED\n", NULL);
	run_done(&r);
	assert_true(f.got);
	auth = fake_header(&f, "Authorization");
	assert_non_null(auth);
	assert_string_equal(auth, "Bearer envtok");
}

/* logs -f: a chunked stream whose lines are cut across chunks (with pauses, so they arrive in
 * separate reads) comes out line by line. */
static void test_cli_follow(void **state)
{
	static const char *const lines[] = {
		"{\"time\":\"T1\",\"version\":1,\"instance\":\"i-1\",\"stream\":\"stdout\",\"message\":\"first\"}\n",
		"{\"time\":\"T2\",\"version\":1,\"instance\":\"i-2\",\"stream\":\"stderr\",\"message\":\"second\"}\n",
		"{\"time\":\"T3\",\"version\":2,\"instance\":\"i-3\",\"stream\":\"stdout\",\"message\":\"third\"}\n",
	};
	_cleanup_free_ char *all = NULL;
	char *p1, *p2, *p3;
	_cleanup_(fake_done) struct fake f = {};
	struct run r;
	size_t l0 = strlen(lines[0]), cut = 20;
	(void)state;

	/* piece 1: line 1 and the start of line 2; piece 2: the rest of line 2 and a bit of 3;
	 * piece 3: the rest of line 3 and the end of the stream. */
	assert_true(asprintf(&all, "%s%s%s", lines[0], lines[1], lines[2]) > 0);
	p1 = strndup(all, l0 + cut);
	p2 = strndup(all + l0 + cut, strlen(lines[1]) - cut + 5);
	p3 = strdup(all + l0 + strlen(lines[1]) + 5);
	assert_true(p1 && p2 && p3);

	fake_start(&f, false,
		   xstrdup("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
			   "Transfer-Encoding: chunked\r\n\r\n"),
		   chunk(p1), chunk(p2), chunk(p3), xstrdup("0\r\n\r\n"), NULL);
	free(p1);
	free(p2);
	free(p3);
	r = run_ctl(ARGS("--socket", f.sock_path, "logs", "-f", "hello", "-n", "0"), NULL, NULL);
	fake_stop(&f);
	assert_string_equal(f.target, "/v1/functions/hello/logs?tail=0&follow=1");
	expect_run(&r, 0,
		   "T1 v1 i-1 stdout: first\n"
		   "T2 v1 i-2 stderr: second\n"
		   "T3 v2 i-3 stdout: third\n",
		   NULL);
	assert_string_equal(r.err, "");
	run_done(&r);
}

/* A spored that reads the request and hangs up without answering. */
static void test_cli_hangup(void **state)
{
	_cleanup_(fake_done) struct fake f = {};
	struct run r;
	(void)state;

	fake_start(&f, false, NULL);
	r = run_ctl(ARGS("--socket", f.sock_path, "ls"), NULL, NULL);
	fake_stop(&f);
	expect_run(&r, 1, "", "broke");
	assert_non_null(strstr(r.err, f.sock_path));
	run_done(&r);
}

static int group_setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/test-sporectl-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return rm_rf_at(AT_FDCWD, tmpdir) < 0 ? -1 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_parse_uint),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_deploy_defaults),
		cmocka_unit_test(test_line_split),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_pack_directory),
		cmocka_unit_test(test_pack_single_file),
		cmocka_unit_test(test_pack_classify),
		cmocka_unit_test(test_cli_errors),
		cmocka_unit_test(test_cli_requests),
		cmocka_unit_test(test_cli_deploy),
		cmocka_unit_test(test_cli_environment),
		cmocka_unit_test(test_cli_follow),
		cmocka_unit_test(test_cli_hangup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
