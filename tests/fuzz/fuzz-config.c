/* SPDX-License-Identifier: MIT */
/* Fuzzes spored's configuration parsing (src/config.c) through its public API only:
 * config_load_file() on the input as a config file (a memfd, opened by its /proc path),
 * config_set() on its first line, and config_from_args() when the input has an argument part.
 *
 * Input: the config file, optionally followed by a line "%%args" and then one command-line
 * argument per line, given to spored after "--config <the file>". Inputs whose arguments name
 * another config file ("--c...") are skipped, so the fuzzer never reads the host's files.
 *
 * Checks, beyond ASan/UBSan/LSan: the return values and messages of config.h ("FILE:LINE: ..."
 * from a file, one line); whatever was applied (also before a failing line) keeps every bound of
 * packaging/spored.conf: absolute paths, a socket path that fits, 1+ distinct listen addresses,
 * no short or non-printable token, integers in range; a failing config_set() changes nothing. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "fuzz-common.h"
#include "util/buf.h"

#define ARGS_MARK "\n%%args\n"
#define MAX_ARGS 64

static int file_fd = -EBADF;
static char file_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	file_fd = memfd_create("spored.conf", MFD_CLOEXEC);
	FUZZ_CHECK(file_fd >= 0, "memfd_create: %m");
	snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
	/* --help and --version print to stdout; libFuzzer reports on stderr. */
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	FUZZ_CHECK(null >= 0 && dup2(null, STDOUT_FILENO) == STDOUT_FILENO, "stdout: %m");
	close(null);
	return 0;
}

static void set_file(const char *data, size_t len)
{
	FUZZ_CHECK(ftruncate(file_fd, 0) == 0, "ftruncate: %m");
	FUZZ_CHECK(len == 0 || pwrite(file_fd, data, len, 0) == (ssize_t)len, "pwrite: %m");
}

static void check_bound(const char *what, uint64_t v, uint64_t min, uint64_t max)
{
	FUZZ_CHECK(v >= min && v <= max, "%s = %llu outside %llu..%llu", what,
		   (unsigned long long)v, (unsigned long long)min, (unsigned long long)max);
}

static void check_path(const char *what, const char *p)
{
	FUZZ_CHECK(p && p[0] == '/', "%s '%s' not an absolute path", what, p ? p : "(null)");
}

static void check_config(const struct spore_config *c)
{
	check_path("state_dir", c->state_dir);
	check_path("api_socket", c->api_socket);
	FUZZ_CHECK(strlen(c->api_socket) < sizeof(((struct sockaddr_un *)NULL)->sun_path),
		   "api_socket of %zu bytes", strlen(c->api_socket));
	check_path("runtime_dir", c->runtime_dir);
	check_path("sandbox_dir", c->sandbox_dir);
	FUZZ_CHECK(c->n_listen >= 1 && c->listen, "%zu listen addresses", c->n_listen);
	for (size_t i = 0; i < c->n_listen; i++) {
		FUZZ_CHECK(c->listen[i] && strchr(c->listen[i], ':'), "listen[%zu] '%s'", i,
			   c->listen[i] ? c->listen[i] : "(null)");
		FUZZ_CHECK(strpbrk(c->listen[i], " \t,") == NULL, "listen[%zu] '%s'", i,
			   c->listen[i]);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(c->listen[i], c->listen[j]) != 0, "listen '%s' twice",
				   c->listen[i]);
	}
	if (c->api_token) {
		FUZZ_CHECK(strlen(c->api_token) >= 16, "api_token of %zu bytes",
			   strlen(c->api_token));
		for (const char *p = c->api_token; *p; p++)
			FUZZ_CHECK(*p > ' ' && *p < 127, "api_token byte 0x%02x",
				   (unsigned char)*p);
	}
	check_bound("log_level", (uint64_t)c->log_level, LOG_ERR, LOG_DEBUG);
	check_bound("idle_ttl_s", c->idle_ttl_s, 1, 86400);
	check_bound("max_instances", c->max_instances, 1, 1000);
	check_bound("queue_max", c->queue_max, 1, 100000);
	check_bound("queue_timeout_ms", c->queue_timeout_ms, 1, 3600000);
	check_bound("max_connections", c->max_connections, 1, 1000000);
	check_bound("header_timeout_ms", c->header_timeout_ms, 100, 600000);
	check_bound("keepalive_timeout_ms", c->keepalive_timeout_ms, 100, 3600000);
	check_bound("header_max_bytes", c->header_max, 1024, 1048576);
	check_bound("invoke_body_max_bytes", c->invoke_body_max, 1, UINT64_C(1) << 30);
	check_bound("deploy_body_max_bytes", c->deploy_body_max, 1, UINT64_C(4) << 30);
	check_bound("package_max_bytes", c->package_max_bytes, 1, UINT64_MAX);
	check_bound("package_max_entries", c->package_max_entries, 1, UINT32_MAX);
	check_bound("log_max_bytes", c->log_max_bytes, 4096, UINT64_MAX);
	check_bound("zygote_spares", c->zygote_spares, 0, 64);
	check_bound("sandbox_uid_min", c->sandbox_uid_min, 1000, 4000000000u);
	check_bound("sandbox_uid_count", c->sandbox_uid_count, 1, 1000000);
}

/* Everything in c, to see whether a call changed it. */
static void snapshot(const struct spore_config *c, struct buf *out)
{
	(void)buf_printf(out, "%s|%s|%s|%s|%s|%d|", c->state_dir, c->api_socket,
			 c->api_token ? c->api_token : "-", c->runtime_dir, c->sandbox_dir,
			 c->log_level);
	for (size_t i = 0; i < c->n_listen; i++)
		(void)buf_printf(out, "%s,", c->listen[i]);
	(void)buf_printf(out, "|%u %u %u %u %u %u %u %u %llu %llu %llu %u %llu %u %d %u %u",
			 c->idle_ttl_s, c->max_instances, c->queue_max, c->queue_timeout_ms,
			 c->max_connections, c->header_timeout_ms, c->keepalive_timeout_ms,
			 c->header_max, (unsigned long long)c->invoke_body_max,
			 (unsigned long long)c->deploy_body_max,
			 (unsigned long long)c->package_max_bytes, c->package_max_entries,
			 (unsigned long long)c->log_max_bytes, c->zygote_spares, c->sandbox,
			 c->sandbox_uid_min, c->sandbox_uid_count);
}

static void check_message(const char *err, int r)
{
	FUZZ_CHECK(err && *err, "no message for %d", r);
	FUZZ_CHECK(!strchr(err, '\n'), "message of more than one line: '%s'", err);
}

static void fuzz_file(const char *text, size_t len)
{
	set_file(text, len);
	struct spore_config c;
	FUZZ_CHECK(config_init(&c) == 0, "config_init");
	char *err = NULL;
	int r = config_load_file(&c, file_path, &err);
	FUZZ_LOG("config_load_file: %d %s", r, err ? err : "");
	if (r == 0)
		FUZZ_CHECK(err == NULL, "message on success: '%s'", err);
	else {
		FUZZ_CHECK(r == -EINVAL, "config_load_file: %d (%s)", r, err ? err : "-");
		check_message(err, r);
		size_t pl = strlen(file_path);
		FUZZ_CHECK(strncmp(err, file_path, pl) == 0 && err[pl] == ':' &&
				   strspn(err + pl + 1, "0123456789") > 0 &&
				   err[pl + 1 + strspn(err + pl + 1, "0123456789")] == ':',
			   "message does not start with FILE:LINE: '%s'", err);
	}
	free(err);
	check_config(&c);

	/* The first line as one config_set(): on failure nothing changes. */
	size_t n = strcspn(text, "\n");
	char *line = strndup(text, n);
	FUZZ_CHECK(line != NULL, "oom");
	char *eq = strchr(line, '=');
	if (eq) {
		*eq = 0;
		struct buf before = BUF_INIT, after = BUF_INIT;
		snapshot(&c, &before);
		err = NULL;
		r = config_set(&c, line, eq + 1, &err);
		snapshot(&c, &after);
		if (r < 0) {
			FUZZ_CHECK(r == -EINVAL, "config_set: %d", r);
			check_message(err, r);
			FUZZ_CHECK(before.len == after.len &&
					   memcmp(before.data, after.data, before.len) == 0,
				   "failed config_set('%s') changed the config", line);
		} else
			FUZZ_CHECK(err == NULL, "message on success: '%s'", err);
		free(err);
		buf_done(&before);
		buf_done(&after);
		check_config(&c);
	}
	free(line);
	config_done(&c);
}

static void fuzz_args(const char *text, size_t len, char *args)
{
	char *argv[MAX_ARGS + 4];
	int argc = 0;
	argv[argc++] = (char *)"spored";
	argv[argc++] = (char *)"--config";
	argv[argc++] = file_path;
	/* One argument per line; the newline ending the last one does not start another. */
	size_t n = strlen(args);
	if (n > 0 && args[n - 1] == '\n')
		args[n - 1] = 0;
	for (char *tok; argc < MAX_ARGS + 3 && (tok = strsep(&args, "\n"));) {
		/* Any abbreviation of --config would open a path of the input's choosing. */
		if (strncmp(tok, "--c", 3) == 0)
			return;
		argv[argc++] = tok;
	}
	argv[argc] = NULL;

	set_file(text, len);
	struct spore_config c;
	FUZZ_CHECK(config_init(&c) == 0, "config_init");
	char *err = NULL;
	int r = config_from_args(&c, argc, argv, &err);
	FUZZ_LOG("config_from_args (%d args): %d %s", argc, r, err ? err : "");
	if (r >= 0) {
		FUZZ_CHECK(r == 0 || r == 1, "config_from_args: %d", r);
		FUZZ_CHECK(err == NULL, "message on success: '%s'", err);
	} else {
		FUZZ_CHECK(r == -EINVAL, "config_from_args: %d (%s)", r, err ? err : "-");
		check_message(err, r);
	}
	free(err);
	check_config(&c);
	config_done(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size);
	char *mark = memmem(text, size, ARGS_MARK, strlen(ARGS_MARK));
	if (!mark) {
		fuzz_file(text, size);
		free(text);
		return 0;
	}
	size_t len = (size_t)(mark - text);
	/* The argument part is cut at a NUL: argv strings cannot hold one. */
	fuzz_file(text, len);
	fuzz_args(text, len, mark + strlen(ARGS_MARK));
	free(text);
	return 0;
}
