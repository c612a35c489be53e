/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "spore-config.h"
#include "util/buf.h"
#include "util/cleanup.h"

#define MIB (UINT64_C(1024) * 1024)

/* Every key the daemon knows; each must be documented in packaging/spored.conf. */
static const char *const all_keys[] = {
	"state_dir",	     "api_socket",	    "listen",		 "api_token",
	"runtime_dir",	     "log_level",	    "idle_ttl_s",	 "max_instances",
	"queue_max",	     "queue_timeout_ms",    "max_connections",	 "header_timeout_ms",
	"keepalive_timeout_ms", "header_max_bytes", "invoke_body_max_bytes", "deploy_body_max_bytes",
	"package_max_bytes", "package_max_entries", "log_max_bytes",	 "zygote_spares",
	"sandbox", "sandbox_dir", "sandbox_uid_min", "sandbox_uid_count",
	"metering_bpf", "bpf_pin_dir", "max_instances_total", "instance_memory_pct",
	"deps_timeout_s", "shutdown_grace_s", "lambda_account_id", "lambda_region",
	"lambda_access_keys", "lambda_allow_unsigned",
};

/* Numeric keys by name, to check tables against the struct. */
static bool get_num(const struct spore_config *c, const char *key, uint64_t *ret)
{
	static const struct {
		const char *key;
		size_t off;
		bool wide;
	} nums[] = {
		{ "idle_ttl_s", offsetof(struct spore_config, idle_ttl_s), false },
		{ "max_instances", offsetof(struct spore_config, max_instances), false },
		{ "queue_max", offsetof(struct spore_config, queue_max), false },
		{ "queue_timeout_ms", offsetof(struct spore_config, queue_timeout_ms), false },
		{ "max_connections", offsetof(struct spore_config, max_connections), false },
		{ "header_timeout_ms", offsetof(struct spore_config, header_timeout_ms), false },
		{ "keepalive_timeout_ms", offsetof(struct spore_config, keepalive_timeout_ms), false },
		{ "header_max_bytes", offsetof(struct spore_config, header_max), false },
		{ "invoke_body_max_bytes", offsetof(struct spore_config, invoke_body_max), true },
		{ "deploy_body_max_bytes", offsetof(struct spore_config, deploy_body_max), true },
		{ "package_max_bytes", offsetof(struct spore_config, package_max_bytes), true },
		{ "package_max_entries", offsetof(struct spore_config, package_max_entries), false },
		{ "log_max_bytes", offsetof(struct spore_config, log_max_bytes), true },
		{ "zygote_spares", offsetof(struct spore_config, zygote_spares), false },
		{ "deps_timeout_s", offsetof(struct spore_config, deps_timeout_s), false },
		{ "shutdown_grace_s", offsetof(struct spore_config, shutdown_grace_s), false },
		{ "instance_memory_pct", offsetof(struct spore_config, instance_memory_pct), false },
	};
	for (size_t i = 0; i < ELEMENTSOF(nums); i++)
		if (streq(nums[i].key, key)) {
			const char *p = (const char *)c + nums[i].off;
			*ret = nums[i].wide ? *(const uint64_t *)p : *(const uint32_t *)p;
			return true;
		}
	return false;
}

static const char *get_str(const struct spore_config *c, const char *key)
{
	if (streq(key, "state_dir"))
		return c->state_dir;
	if (streq(key, "api_socket"))
		return c->api_socket;
	if (streq(key, "runtime_dir"))
		return c->runtime_dir;
	if (streq(key, "api_token"))
		return c->api_token;
	fail_msg("no string key %s", key);
	return NULL;
}

static void assert_defaults(const struct spore_config *c, bool check_runtime_dir)
{
	assert_string_equal(c->state_dir, SPORE_DEFAULT_STATE_DIR);
	assert_string_equal(c->state_dir, "/var/lib/spore");
	assert_string_equal(c->api_socket, SPORE_DEFAULT_API_SOCKET);
	assert_string_equal(c->api_socket, "/run/spore/spored.sock");
	if (check_runtime_dir)
		assert_string_equal(c->runtime_dir, SPORE_RUNTIME_DIR);
	assert_int_equal(c->n_listen, 1);
	assert_string_equal(c->listen[0], "127.0.0.1:8080");
	assert_null(c->api_token);
	assert_int_equal(c->log_level, LOG_INFO);
	assert_int_equal(c->idle_ttl_s, 300);
	assert_int_equal(c->max_instances, 10);
	assert_int_equal(c->queue_max, 100);
	assert_int_equal(c->queue_timeout_ms, 30000);
	assert_int_equal(c->max_connections, 10000);
	assert_int_equal(c->header_timeout_ms, 10000);
	assert_int_equal(c->keepalive_timeout_ms, 60000);
	assert_int_equal(c->header_max, 16384);
	assert_int_equal(c->invoke_body_max, 6 * MIB);
	assert_int_equal(c->deploy_body_max, 64 * MIB);
	assert_int_equal(c->package_max_bytes, 256 * MIB);
	assert_int_equal(c->package_max_entries, 10000);
	assert_int_equal(c->log_max_bytes, 8 * MIB);
	assert_int_equal(c->zygote_spares, 2);
	assert_true(c->metering_bpf);
	assert_string_equal(c->bpf_pin_dir, "/sys/fs/bpf/spore");
	assert_int_equal(c->max_instances_total, 2000);
	assert_int_equal(c->instance_memory_pct, 80);
}

static void test_defaults(void **state)
{
	(void)state;
	struct spore_config c;
	assert_int_equal(config_init(&c), 0);
	assert_defaults(&c, true);
	config_done(&c);
	assert_null(c.state_dir);
	assert_null(c.listen);
	assert_int_equal(c.n_listen, 0);
	config_done(&c); /* twice is fine */
	config_done(NULL);
}

/* ---- each key, valid and invalid ---- */

struct key_case {
	const char *key, *value;
	bool ok;
	uint64_t num;	   /* numeric keys: the value after */
	const char *str;   /* string keys: the value after (NULL: unset) */
	const char *error; /* exact message, or NULL to only check the generic shape */
};

static void test_keys(void **state)
{
	(void)state;
	static const struct key_case cases[] = {
		/* Integers and their ranges. */
		{ "idle_ttl_s", "1", true, 1 },
		{ "idle_ttl_s", "86400", true, 86400 },
		{ "idle_ttl_s", "0", false, 0, NULL,
		  "idle_ttl_s: must be an integer between 1 and 86400, got '0'" },
		{ "idle_ttl_s", "86401", false },
		{ "idle_ttl_s", "abc", false, 0, NULL,
		  "idle_ttl_s: must be an integer between 1 and 86400, got 'abc'" },
		{ "idle_ttl_s", "", false },
		{ "idle_ttl_s", "-1", false },
		{ "idle_ttl_s", "+5", false },
		{ "idle_ttl_s", " 5", false },
		{ "idle_ttl_s", "5s", false },
		{ "idle_ttl_s", "1K", false }, /* no suffix on non-size keys */
		{ "idle_ttl_s", "99999999999999999999999", false },
		{ "idle_ttl_s", "18446744073709551617", false }, /* 2^64 + 1 must not wrap to 1 */
		{ "max_instances", "1000", true, 1000 },
		{ "max_instances", "0", false },
		{ "max_instances", "1001", false },
		{ "queue_max", "0", false },
		{ "queue_max", "1", true, 1 },
		{ "queue_max", "100000", true, 100000 },
		{ "queue_max", "100001", false },
		{ "queue_timeout_ms", "1", true, 1 },
		{ "queue_timeout_ms", "3600000", true, 3600000 },
		{ "queue_timeout_ms", "3600001", false },
		{ "queue_timeout_ms", "0", false },
		{ "max_connections", "1000000", true, 1000000 },
		{ "max_connections", "1000001", false },
		{ "max_connections", "0", false },
		{ "header_timeout_ms", "100", true, 100 },
		{ "header_timeout_ms", "600000", true, 600000 },
		{ "header_timeout_ms", "99", false },
		{ "header_timeout_ms", "600001", false },
		{ "keepalive_timeout_ms", "100", true, 100 },
		{ "keepalive_timeout_ms", "3600000", true, 3600000 },
		{ "keepalive_timeout_ms", "99", false },
		{ "keepalive_timeout_ms", "3600001", false },
		{ "instance_memory_pct", "1", true, 1 },
		{ "instance_memory_pct", "400", true, 400 }, /* an explicit overcommit */
		{ "instance_memory_pct", "1000", true, 1000 },
		{ "instance_memory_pct", "1001", false, 0, NULL,
		  "instance_memory_pct: must be an integer between 1 and 1000, got '1001'" },
		{ "instance_memory_pct", "0", false },
		{ "zygote_spares", "0", true, 0 },
		{ "zygote_spares", "64", true, 64 },
		{ "zygote_spares", "65", false },
		{ "package_max_entries", "1", true, 1 },
		{ "package_max_entries", "4294967295", true, 4294967295u },
		{ "package_max_entries", "4294967296", false },
		{ "package_max_entries", "0", false, 0, NULL,
		  "package_max_entries: must be an integer of at least 1, got '0'" },
		{ "package_max_entries", "1K", false },

		/* Sizes with suffixes. */
		{ "header_max_bytes", "1024", true, 1024 },
		{ "header_max_bytes", "1K", true, 1024 },
		{ "header_max_bytes", "1M", true, 1048576 },
		{ "header_max_bytes", "32k", true, 32768 },
		{ "header_max_bytes", "1023", false, 0, NULL,
		  "header_max_bytes: must be a size between 1024 and 1048576 (suffix K, M or G "
		  "allowed), got '1023'" },
		{ "header_max_bytes", "1025K", false },
		{ "header_max_bytes", "2G", false },
		{ "header_max_bytes", "1KB", false },
		{ "header_max_bytes", "K", false },
		{ "header_max_bytes", "1T", false },
		{ "invoke_body_max_bytes", "1", true, 1 },
		{ "invoke_body_max_bytes", "6M", true, 6 * MIB },
		{ "invoke_body_max_bytes", "1G", true, 1024 * MIB },
		{ "invoke_body_max_bytes", "1073741825", false },
		{ "invoke_body_max_bytes", "0", false },
		{ "deploy_body_max_bytes", "4G", true, 4096 * MIB },
		{ "deploy_body_max_bytes", "4294967296", true, 4096 * MIB },
		{ "deploy_body_max_bytes", "4294967297", false },
		{ "deploy_body_max_bytes", "0", false },
		{ "package_max_bytes", "1", true, 1 },
		{ "package_max_bytes", "100G", true, 100 * 1024 * MIB },
		{ "package_max_bytes", "0", false },
		{ "package_max_bytes", "99999999999G", false }, /* overflows */
		{ "log_max_bytes", "4096", true, 4096 },
		{ "log_max_bytes", "4K", true, 4096 },
		{ "log_max_bytes", "4095", false, 0, NULL,
		  "log_max_bytes: must be a size of at least 4096 (suffix K, M or G allowed), got "
		  "'4095'" },
		{ "log_max_bytes", "1", false },

		/* Paths. */
		{ "state_dir", "/srv/spore", true, 0, "/srv/spore" },
		{ "state_dir", "relative/dir", false, 0, NULL,
		  "state_dir: must be an absolute path, got 'relative/dir'" },
		{ "state_dir", "", false },
		{ "runtime_dir", "/opt/spore/libexec", true, 0, "/opt/spore/libexec" },
		{ "runtime_dir", "./x", false },
		{ "api_socket", "/tmp/s.sock", true, 0, "/tmp/s.sock" },
		{ "api_socket", "s.sock", false },
		{ "api_socket",
		  "/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaa.sock",
		  false },

		/* Token: never echoed. */
		{ "api_token", "0123456789abcdef", true, 0, "0123456789abcdef" },
		{ "api_token", "secret-short", false, 0, NULL,
		  "api_token: must be at least 16 characters, got 12" },
		{ "api_token", "0123456789 abcdef", false, 0, NULL,
		  "api_token: must contain only printable ASCII without spaces" },
		{ "api_token", "", true, 0, NULL },

		/* Log level. */
		{ "log_level", "debug", true, LOG_DEBUG },
		{ "log_level", "notice", true, LOG_NOTICE },
		{ "log_level", "warning", true, LOG_WARNING },
		{ "log_level", "error", true, LOG_ERR },
		{ "log_level", "info", true, LOG_INFO },
		{ "log_level", "verbose", false, 0, NULL,
		  "log_level: must be one of debug, info, notice, warning, error, got 'verbose'" },
		{ "log_level", "DEBUG", false },

		/* Unknown keys. */
		{ "idle_ttl", "5", false, 0, NULL, "unknown key 'idle_ttl'" },
		{ "Listen", "127.0.0.1:1", false, 0, NULL, "unknown key 'Listen'" },
		{ "", "x", false, 0, NULL, "unknown key ''" },
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		const struct key_case *k = &cases[i];
		struct spore_config c, def;
		assert_int_equal(config_init(&c), 0);
		assert_int_equal(config_init(&def), 0);
		if (streq(k->key, "api_token")) /* so that clearing it is visible */
			assert_int_equal(config_set(&c, "api_token", "previous-token-value", NULL), 0);
		char *err = NULL;
		int r = config_set(&c, k->key, k->value, &err);
		if (k->ok) {
			if (r != 0)
				fail_msg("%s = '%s': %d %s", k->key, k->value, r, err);
			assert_null(err);
			uint64_t v;
			if (streq(k->key, "log_level"))
				assert_int_equal(c.log_level, (int)k->num);
			else if (get_num(&c, k->key, &v)) {
				if (v != k->num)
					fail_msg("%s = '%s': got %" PRIu64, k->key, k->value, v);
			} else if (k->str)
				assert_string_equal(get_str(&c, k->key), k->str);
			else
				assert_null(get_str(&c, k->key));
		} else {
			if (r != -EINVAL)
				fail_msg("%s = '%s': got %d, want -EINVAL", k->key, k->value, r);
			assert_non_null(err);
			assert_null(strchr(err, '\n'));
			if (k->error)
				assert_string_equal(err, k->error);
			else {
				/* "key: ..., got 'value'" */
				char prefix[128];
				snprintf(prefix, sizeof(prefix), "%s: ", k->key);
				if (!startswith(err, prefix))
					fail_msg("message '%s' does not start with the key", err);
				char got[512];
				snprintf(got, sizeof(got), "'%s'", k->value);
				if (!streq(k->key, "api_token") && !strstr(err, got))
					fail_msg("message '%s' does not quote the value", err);
			}
			if (streq(k->key, "api_token"))
				assert_null(strstr(err, k->value)); /* the secret stays out of logs */
			/* Nothing changed. */
			uint64_t a, b;
			if (get_num(&c, k->key, &a)) {
				assert_true(get_num(&def, k->key, &b));
				assert_int_equal(a, b);
			}
			assert_int_equal(c.log_level, def.log_level);
			assert_string_equal(c.state_dir, def.state_dir);
			assert_string_equal(c.api_socket, def.api_socket);
			assert_string_equal(c.runtime_dir, def.runtime_dir);
			free(err);
		}
		config_done(&c);
		config_done(&def);
	}
}

/* ---- listen ---- */

static void test_listen(void **state)
{
	(void)state;
	static const struct {
		const char *value;
		int ret;
		size_t n;
		const char *first, *last;
		const char *error;
	} cases[] = {
		{ "0.0.0.0:80", 0, 1, "0.0.0.0:80", "0.0.0.0:80" },
		{ "127.0.0.1:65535", 0, 1, "127.0.0.1:65535", NULL },
		{ "[::1]:8080", 0, 1, "[::1]:8080", NULL },
		{ "[::]:1", 0, 1, "[::]:1", NULL },
		{ "[2001:db8::5]:443", 0, 1, "[2001:db8::5]:443", NULL },
		{ "[::ffff:10.0.0.1]:9", 0, 1, "[::ffff:10.0.0.1]:9", NULL },
		{ "127.0.0.1:8080,[::1]:8080", 0, 2, "127.0.0.1:8080", "[::1]:8080" },
		{ " 10.0.0.1:1 ,  10.0.0.2:2,10.0.0.3:3 ", 0, 3, "10.0.0.1:1", "10.0.0.3:3" },
		{ "foo", -EINVAL, 0, NULL, NULL, "listen: invalid address 'foo' (expected ADDR:PORT)" },
		{ "localhost:8080", -EINVAL },
		{ "127.0.0.1", -EINVAL },
		{ "127.0.0.1:", -EINVAL },
		{ "127.0.0.1:0", -EINVAL },
		{ "127.0.0.1:65536", -EINVAL },
		{ "127.0.0.1:080800", -EINVAL },
		{ "127.0.0.1:0000080", -EINVAL },
		{ "127.0.0.1:18446744073709551696", -EINVAL }, /* 2^64 + 80 */
		{ "127.0.0.1:-1", -EINVAL },
		{ "127.0.0.1:+80", -EINVAL },
		{ "127.0.0.1:80x", -EINVAL },
		{ "127.1:80", -EINVAL },
		{ "256.0.0.1:80", -EINVAL },
		{ ":80", -EINVAL },
		{ "::1:80", -EINVAL },
		{ "[::1]", -EINVAL },
		{ "[::1:80", -EINVAL },
		{ "::1]:80", -EINVAL },
		{ "[127.0.0.1]:80", -EINVAL },
		{ "[fe80::1%eth0]:80", -EINVAL },
		{ "", -EINVAL, 0, NULL, NULL, "listen: invalid address '' (expected ADDR:PORT)" },
		{ "127.0.0.1:1,", -EINVAL },
		{ "127.0.0.1:1,,127.0.0.1:2", -EINVAL },
		{ "127.0.0.1:1, nope", -EINVAL, 0, NULL, NULL,
		  "listen: invalid address 'nope' (expected ADDR:PORT)" },
		{ "127.0.0.1:1,127.0.0.1:1", -EINVAL, 0, NULL, NULL,
		  "listen: address '127.0.0.1:1' given twice" },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct spore_config c;
		assert_int_equal(config_init(&c), 0);
		char *err = NULL;
		int r = config_set(&c, "listen", cases[i].value, &err);
		if (r != cases[i].ret)
			fail_msg("listen '%s': got %d (%s)", cases[i].value, r, err ? err : "");
		if (r == 0) {
			assert_int_equal(c.n_listen, cases[i].n);
			assert_string_equal(c.listen[0], cases[i].first);
			if (cases[i].last)
				assert_string_equal(c.listen[c.n_listen - 1], cases[i].last);
		} else {
			assert_non_null(err);
			if (cases[i].error)
				assert_string_equal(err, cases[i].error);
			else
				assert_true(startswith(err, "listen: invalid address '"));
			/* The list is untouched. */
			assert_int_equal(c.n_listen, 1);
			assert_string_equal(c.listen[0], SPORE_DEFAULT_LISTEN);
			free(err);
		}
		config_done(&c);
	}

	/* config_set sets the whole list: a second call replaces the first. */
	struct spore_config c;
	assert_int_equal(config_init(&c), 0);
	assert_int_equal(config_set(&c, "listen", "10.0.0.1:1,10.0.0.2:2", NULL), 0);
	assert_int_equal(config_set(&c, "listen", "10.0.0.3:3", NULL), 0);
	assert_int_equal(c.n_listen, 1);
	assert_string_equal(c.listen[0], "10.0.0.3:3");
	config_done(&c);
}

/* ---- files ---- */

struct tmpfile {
	char path[64];
};

/* Files still there when a test fails half-way; removed by the group teardown. */
static char leftover[4][64];

static void tmp_write(struct tmpfile *t, const char *content)
{
	snprintf(t->path, sizeof(t->path), "/tmp/test-config-XXXXXX");
	int fd = mkstemp(t->path);
	assert_true(fd >= 0);
	for (size_t i = 0; i < ELEMENTSOF(leftover); i++)
		if (!leftover[i][0]) {
			memcpy(leftover[i], t->path, sizeof(t->path));
			break;
		}
	size_t n = strlen(content);
	assert_int_equal(write(fd, content, n), (ssize_t)n);
	assert_int_equal(close(fd), 0);
}

static void tmp_remove(struct tmpfile *t)
{
	for (size_t i = 0; i < ELEMENTSOF(leftover); i++)
		if (streq(leftover[i], t->path))
			leftover[i][0] = 0;
	assert_int_equal(unlink(t->path), 0);
}

static int remove_leftovers(void **state)
{
	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(leftover); i++)
		if (leftover[i][0])
			(void)unlink(leftover[i]);
	return 0;
}

static void test_file(void **state)
{
	(void)state;
	struct tmpfile t;
	tmp_write(&t, "# spored test config\n"
		      "\n"
		      "   # indented comment\n"
		      "state_dir = /srv/state\n"
		      "  idle_ttl_s=60   \n"
		      "\tmax_instances\t=\t3\t\n"
		      "api_socket = \"/run/x y/api.sock\"\n"
		      "api_token = \"abc#def-ghi-jkl-mno\"  # quoted: # kept\n"
		      "queue_max = 7 # trailing comment\n"
		      "invoke_body_max_bytes = 2M\r\n"
		      "log_level = debug\n"
		      "runtime_dir = /opt/rt#x\n"
		      "listen = 10.0.0.1:80\n"
		      "listen = 10.0.0.2:80, [::1]:81\n"
		      "idle_ttl_s = 61\n"
		      "header_max_bytes = \"8K\""); /* no final newline */
	struct spore_config c;
	assert_int_equal(config_init(&c), 0);
	char *err = NULL;
	int r = config_load_file(&c, t.path, &err);
	if (r != 0)
		fail_msg("load: %d %s", r, err);
	assert_string_equal(c.state_dir, "/srv/state");
	assert_int_equal(c.idle_ttl_s, 61); /* the last one wins */
	assert_int_equal(c.max_instances, 3);
	assert_string_equal(c.api_socket, "/run/x y/api.sock");
	assert_string_equal(c.api_token, "abc#def-ghi-jkl-mno");
	assert_int_equal(c.queue_max, 7);
	assert_int_equal(c.invoke_body_max, 2 * MIB);
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_string_equal(c.runtime_dir, "/opt/rt#x"); /* '#' not after a space: kept */
	assert_int_equal(c.header_max, 8192);
	/* The file's first listen replaced the default; the second added. */
	assert_int_equal(c.n_listen, 3);
	assert_string_equal(c.listen[0], "10.0.0.1:80");
	assert_string_equal(c.listen[1], "10.0.0.2:80");
	assert_string_equal(c.listen[2], "[::1]:81");
	/* Untouched keys keep their defaults. */
	assert_int_equal(c.keepalive_timeout_ms, 60000);
	config_done(&c);
	tmp_remove(&t);

	/* A file without listen keeps the default list; an empty file is fine. */
	tmp_write(&t, "");
	assert_int_equal(config_init(&c), 0);
	assert_int_equal(config_load_file(&c, t.path, &err), 0);
	assert_defaults(&c, true);
	config_done(&c);
	tmp_remove(&t);

	/* Bad lines: the message names file, line and key. */
	static const struct {
		const char *content;
		const char *error; /* after "PATH:" */
	} bad[] = {
		{ "# ok\n\nidle_ttl_s = abc\n",
		  "3: idle_ttl_s: must be an integer between 1 and 86400, got 'abc'" },
		{ "idle_ttl_s = 5\nbogus_key = 1\n", "2: unknown key 'bogus_key'" },
		{ "just some words\n", "1: expected 'key = value', got 'just some words'" },
		{ "= 5\n", "1: missing key before '='" },
		{ "state_dir = \"/x\n", "1: state_dir: unterminated quote" },
		{ "state_dir = \"/x\" y\n", "1: state_dir: unexpected text after the closing quote" },
		{ "\n\n\n\nlisten = 1.2.3.4:5\nlisten = oops\n",
		  "6: listen: invalid address 'oops' (expected ADDR:PORT)" },
		{ "listen = 1.2.3.4:5\nlisten = 1.2.3.4:5\n",
		  "2: listen: address '1.2.3.4:5' given twice" },
		{ "state_dir = relative\n", "1: state_dir: must be an absolute path, got 'relative'" },
		{ "idle_ttl_s = \n", "1: idle_ttl_s: must be an integer between 1 and 86400, got ''" },
		{ "max_instances = 5 5\n",
		  "1: max_instances: must be an integer between 1 and 1000, got '5 5'" },
		{ "log_level = \"info\"x\n", "1: log_level: unexpected text after the closing quote" },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		tmp_write(&t, bad[i].content);
		assert_int_equal(config_init(&c), 0);
		err = NULL;
		r = config_load_file(&c, t.path, &err);
		assert_int_equal(r, -EINVAL);
		char want[512];
		snprintf(want, sizeof(want), "%s:%s", t.path, bad[i].error);
		assert_non_null(err);
		assert_string_equal(err, want);
		free(err);
		config_done(&c);
		tmp_remove(&t);
	}

	/* Missing file. */
	assert_int_equal(config_init(&c), 0);
	err = NULL;
	assert_int_equal(config_load_file(&c, "/nonexistent/spored.conf", &err), -ENOENT);
	assert_string_equal(err, "cannot open config file '/nonexistent/spored.conf': No such file "
				 "or directory");
	free(err);
	assert_defaults(&c, true);
	config_done(&c);
}

/* ---- command line ---- */

struct argv {
	int argc;
	char *argv[32];
};

static void argv_make(struct argv *a, const char *const *args)
{
	a->argc = 0;
	a->argv[a->argc++] = strdup("/usr/sbin/spored");
	for (; *args; args++) {
		assert_true(a->argc < 31);
		a->argv[a->argc++] = strdup(*args);
	}
	a->argv[a->argc] = NULL;
}

static void argv_done(struct argv *a)
{
	for (int i = 0; i < a->argc; i++)
		free(a->argv[i]);
}

static int run_args(struct spore_config *c, const char *const *args, char **err)
{
	struct argv a;
	argv_make(&a, args);
	/* --help and --version print to stdout: keep the test output clean. */
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_true(saved >= 0 && null >= 0);
	assert_true(dup2(null, STDOUT_FILENO) >= 0);
	int r = config_from_args(c, a.argc, a.argv, err);
	fflush(stdout);
	assert_true(dup2(saved, STDOUT_FILENO) >= 0);
	close(saved);
	close(null);
	argv_done(&a);
	return r;
}

static void test_args(void **state)
{
	(void)state;
	struct tmpfile t;
	tmp_write(&t, "listen = 10.0.0.1:80, 10.0.0.2:80\n"
		      "state_dir = /from/file\n"
		      "api_socket = /from/file.sock\n"
		      "log_level = error\n"
		      "idle_ttl_s = 42\n");
	struct spore_config c;
	char *err = NULL;

	/* File only. */
	assert_int_equal(config_init(&c), 0);
	const char *a1[] = { "--config", t.path, NULL };
	assert_int_equal(run_args(&c, a1, &err), 0);
	assert_int_equal(c.n_listen, 2);
	assert_string_equal(c.listen[1], "10.0.0.2:80");
	assert_string_equal(c.state_dir, "/from/file");
	assert_int_equal(c.log_level, LOG_ERR);
	assert_int_equal(c.idle_ttl_s, 42);
	config_done(&c);

	/* Flags override the file wherever they stand; the first --listen replaces the file's
	 * list, later ones (and commas) add to it; --config=FILE form. */
	assert_int_equal(config_init(&c), 0);
	const char *a2[] = { "--listen",
			     "127.0.0.1:9000",
			     "--state-dir=/from/flag",
			     "--listen",
			     "[::1]:9001,127.0.0.2:9002",
			     "--config=", NULL };
	char cfg_eq[128];
	snprintf(cfg_eq, sizeof(cfg_eq), "--config=%s", t.path);
	a2[5] = cfg_eq;
	const char *a2b[] = { a2[0], a2[1], a2[2], a2[3], a2[4], a2[5], "--api-socket",
			      "/from/flag.sock", "--log-level", "debug", "--runtime-dir", "/rt",
			      NULL };
	err = NULL;
	int r = run_args(&c, a2b, &err);
	if (r != 0)
		fail_msg("args: %d %s", r, err);
	assert_int_equal(c.n_listen, 3);
	assert_string_equal(c.listen[0], "127.0.0.1:9000");
	assert_string_equal(c.listen[1], "[::1]:9001");
	assert_string_equal(c.listen[2], "127.0.0.2:9002");
	assert_string_equal(c.state_dir, "/from/flag");
	assert_string_equal(c.api_socket, "/from/flag.sock");
	assert_string_equal(c.runtime_dir, "/rt");
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_int_equal(c.idle_ttl_s, 42); /* from the file: no flag for it */
	config_done(&c);

	/* Bad flags and values: -EINVAL and one line naming the flag. */
	char missing[128];
	snprintf(missing, sizeof(missing), "%s.missing", t.path);
	static const struct {
		const char *args[6];
		const char *error; /* exact, or with a leading '~' a prefix */
	} bad[] = {
		{ { "--listen", "foo" }, "--listen: invalid address 'foo' (expected ADDR:PORT)" },
		{ { "--listen=foo" }, "--listen: invalid address 'foo' (expected ADDR:PORT)" },
		{ { "--listen", "127.0.0.1:1", "--listen", "127.0.0.1:1" },
		  "--listen: address '127.0.0.1:1' given twice" },
		{ { "--listen" }, "--listen: missing argument (expected ADDR:PORT)" },
		{ { "--state-dir" }, "--state-dir: missing argument (expected DIR)" },
		{ { "--config" }, "--config: missing argument (expected FILE)" },
		{ { "--log-level", "loud" },
		  "--log-level: must be one of debug, info, notice, warning, error, got 'loud'" },
		{ { "--state-dir", "rel" }, "--state-dir: must be an absolute path, got 'rel'" },
		{ { "--runtime-dir", "" }, "--runtime-dir: must be an absolute path, got ''" },
		{ { "--api-socket", "x.sock" }, "--api-socket: must be an absolute path, got 'x.sock'" },
		{ { "--bogus" }, "unknown option '--bogus' (see --help)" },
		{ { "--bogus=1" }, "unknown option '--bogus' (see --help)" },
		{ { "-x" }, "unknown option '-x' (see --help)" },
		{ { "--help=yes" }, "--help: takes no argument" },
		{ { "extra" }, "unexpected argument 'extra' (see --help)" },
		{ { "--config", "" }, "--config: empty path" },
		{ { "--config", "@MISSING" }, "~cannot open config file '/tmp/test-config-" },
		{ { "--config", "/dev/null/x" }, "~cannot open config file '/dev/null/x'" },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		const char *args[8] = { 0 };
		for (size_t j = 0; j < 6 && bad[i].args[j]; j++)
			args[j] = streq(bad[i].args[j], "@MISSING") ? missing : bad[i].args[j];
		assert_int_equal(config_init(&c), 0);
		err = NULL;
		r = run_args(&c, args, &err);
		if (r != -EINVAL)
			fail_msg("case %zu (%s): got %d %s", i, bad[i].args[0], r, err ? err : "");
		assert_non_null(err);
		assert_null(strchr(err, '\n'));
		if (bad[i].error[0] == '~') {
			if (!startswith(err, bad[i].error + 1))
				fail_msg("case %zu: '%s' does not start with '%s'", i, err,
					 bad[i].error + 1);
		} else
			assert_string_equal(err, bad[i].error);
		free(err);
		config_done(&c);
	}

	/* A bad value in the file named by --config: the file's message. */
	struct tmpfile t2;
	tmp_write(&t2, "max_instances = 0\n");
	assert_int_equal(config_init(&c), 0);
	const char *a3[] = { "--config", t2.path, NULL };
	err = NULL;
	assert_int_equal(run_args(&c, a3, &err), -EINVAL);
	char want[256];
	snprintf(want, sizeof(want), "%s:1: max_instances: must be an integer between 1 and 1000, "
				     "got '0'",
		 t2.path);
	assert_string_equal(err, want);
	free(err);
	config_done(&c);
	tmp_remove(&t2);

	/* --help and --version: 1, nothing set, no error. */
	static const char *const info[][2] = { { "--help" }, { "-h" }, { "--version" }, { "-V" },
					       { "--listen=bad" } };
	for (size_t i = 0; i < ELEMENTSOF(info); i++) {
		const char *args[4] = { info[i][0], NULL, NULL };
		if (i == 4) { /* --help wins over a bad value */
			args[1] = "--help";
		}
		assert_int_equal(config_init(&c), 0);
		err = NULL;
		assert_int_equal(run_args(&c, args, &err), 1);
		assert_null(err);
		config_done(&c);
	}

	/* Called twice in one process (getopt state is reset). */
	for (int k = 0; k < 2; k++) {
		assert_int_equal(config_init(&c), 0);
		const char *a4[] = { "--config", t.path, "--listen", "127.0.0.1:7", NULL };
		assert_int_equal(run_args(&c, a4, &err), 0);
		assert_int_equal(c.n_listen, 1);
		assert_string_equal(c.listen[0], "127.0.0.1:7");
		config_done(&c);
	}
	tmp_remove(&t);

	/* No --config: SPORE_DEFAULT_CONFIG if present, else the defaults. */
	if (access(SPORE_DEFAULT_CONFIG, F_OK) < 0) {
		assert_int_equal(config_init(&c), 0);
		const char *a5[] = { NULL };
		assert_int_equal(run_args(&c, a5, &err), 0);
		assert_defaults(&c, true);
		config_done(&c);
	} else
		print_message("(%s exists: skipping the no-config-file check)\n", SPORE_DEFAULT_CONFIG);
}

/* ---- the example config documents every key with its default ---- */

static void test_example_config(void **state)
{
	(void)state;
	const char *path = TEST_SRCDIR "/packaging/spored.conf";
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	char line[1024];
	struct buf uncommented = BUF_INIT;
	bool documented[ELEMENTSOF(all_keys)] = { false };
	unsigned n_settings = 0;
	while (fgets(line, sizeof(line), f)) {
		/* "#key = value" lines are settings; "# prose" lines are prose. */
		if (line[0] != '#' || !(line[1] >= 'a' && line[1] <= 'z'))
			continue;
		/* No live settings in the example: everything is commented out. */
		n_settings++;
		for (size_t i = 0; i < ELEMENTSOF(all_keys); i++) {
			size_t n = strlen(all_keys[i]);
			if (strncmp(line + 1, all_keys[i], n) == 0 &&
			    (line[1 + n] == ' ' || line[1 + n] == '='))
				documented[i] = true;
		}
		assert_int_equal(buf_append_str(&uncommented, line + 1), 0);
	}
	fclose(f);
	for (size_t i = 0; i < ELEMENTSOF(all_keys); i++)
		if (!documented[i])
			fail_msg("key %s is not in packaging/spored.conf", all_keys[i]);
	assert_int_equal(n_settings, ELEMENTSOF(all_keys));

	/* As shipped (all commented out) it changes nothing. */
	struct spore_config c;
	char *err = NULL;
	assert_int_equal(config_init(&c), 0);
	assert_int_equal(config_load_file(&c, path, &err), 0);
	assert_defaults(&c, true);
	config_done(&c);

	/* Uncommented, every shown value is valid and is the default. */
	struct tmpfile t;
	tmp_write(&t, buf_cstr(&uncommented));
	assert_int_equal(config_init(&c), 0);
	int r = config_load_file(&c, t.path, &err);
	if (r != 0)
		fail_msg("uncommented example: %s", err);
	assert_defaults(&c, false); /* runtime_dir depends on the install prefix */
	assert_true(c.runtime_dir[0] == '/');
	config_done(&c);
	tmp_remove(&t);
	buf_done(&uncommented);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_example_config),
	};
	return cmocka_run_group_tests(tests, NULL, remove_leftovers);
}
