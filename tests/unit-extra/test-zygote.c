/* SPDX-License-Identifier: MIT */
/* The zygotes, driven over their real protocol (src/proto.h): each test starts
 * spore-zygote-<runtime> with a socketpair on fd 3, as spored does, spawns instances with a chan
 * socketpair and two pipes, and checks what comes back. Every wait has a timeout, so a hang fails
 * instead of blocking. Run for both runtimes (python3 and native) from one table. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "proto.h"
#include "util/cleanup.h"
#include "util/fileio.h"

/* Generous: a zygote under ASan takes seconds to start Python. */
#define HELLO_TIMEOUT_MS 60000
#define TIMEOUT_MS 20000
#define MAX_INSTANCES 8

extern char **environ;

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

struct runtime_case {
	const char *name;
	const char *zygote;
	char code_dir[256];
	const char *hello; /* returns {"message":"<greeting>,
			      <name>","function_version","request_id"} */
	const char *greeting; /* native: spore_init() takes it from $GREETING */
	const char *echo; /* returns the event */
	const char *fail; /* fails with errorType "ValueError" */
	const char *log; /* {"lines":N}: N lines on stdout and on stderr */
	const char *crash; /* {"how":"exit","code":N} | {"how":"kill"} */
	const char *bad_import;
	const char *bad_import_type;
	const char *no_handler;
	const char *no_handler_type;
	bool stack_trace; /* errors carry a non-empty stackTrace */
};

struct instance {
	pid_t pid;
	int chan;
	int out; /* read ends */
	int err;
};

struct fixture {
	const struct runtime_case *rt;
	pid_t zygote;
	int ctl;
	struct instance inst[MAX_INSTANCES];
	size_t n_inst;
	char tmpdir[64]; /* removed by teardown() when set */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t realtime_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_readable(int fd, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r > 0)
			return 0;
	}
}

/* ---- zygote control socket ----------------------------------------------------------------- */

static int zygote_start(struct fixture *f, const char *const *args)
{
	posix_spawn_file_actions_t fa;
	const char *argv[8] = { f->rt->zygote };
	_cleanup_strv_free_ char **envp = NULL;
	size_t n_env = 0, k = 1;
	int sv[2], child, r;

	for (; args && *args && k < ELEMENTSOF(argv) - 1; args++)
		argv[k++] = *args;
	argv[k] = NULL;

	/* The zygote must not see this variable: instances get only their function's env. */
	while (environ[n_env])
		n_env++;
	envp = calloc(n_env + 2, sizeof(char *));
	if (!envp)
		return -ENOMEM;
	for (size_t i = 0; i < n_env; i++)
		if (!(envp[i] = strdup(environ[i])))
			return -ENOMEM;
	if (!(envp[n_env] = strdup("SPORE_TEST_LEAK=zygote-env")))
		return -ENOMEM;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* Keep the child's end off fd 3 so adddup2() really dups (and clears CLOEXEC). */
	child = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
	(void)close(sv[1]);
	if (child < 0)
		return -errno;
	(void)posix_spawn_file_actions_init(&fa);
	(void)posix_spawn_file_actions_adddup2(&fa, child, 3);
	r = posix_spawn(&f->zygote, f->rt->zygote, &fa, NULL, (char *const *)argv, envp);
	(void)posix_spawn_file_actions_destroy(&fa);
	(void)close(child);
	if (r != 0) {
		(void)close(sv[0]);
		f->zygote = 0;
		return -r;
	}
	f->ctl = sv[0];
	return 0;
}

/* One message of the expected type (anything else fails the test). Returns its size. */
static size_t ctl_recv(struct fixture *f, uint32_t type, void *buf, size_t size, int timeout_ms)
{
	struct zyg_hdr h;
	ssize_t n;

	assert_int_equal(wait_readable(f->ctl, now_ms() + timeout_ms), 0);
	n = recv(f->ctl, buf, size, MSG_DONTWAIT);
	assert_true(n >= (ssize_t)sizeof(h));
	memcpy(&h, buf, sizeof(h));
	if (h.type != type)
		fail_msg("expected control message %u, got %u", type, h.type);
	assert_int_equal(h.version, PROTO_VERSION);
	return (size_t)n;
}

static void zygote_hello(struct fixture *f)
{
	struct zyg_hello h;

	assert_int_equal(ctl_recv(f, ZYG_HELLO, &h, sizeof(h), HELLO_TIMEOUT_MS), sizeof(h));
	assert_int_equal(h.pid, f->zygote);
	assert_string_equal(h.runtime, f->rt->name);
}

static int send_spawn(int ctl, uint64_t token, const int *fds, size_t n_fds)
{
	struct zyg_spawn m = { .hdr = { ZYG_SPAWN, PROTO_VERSION }, .token = token };
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} control = {};
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (n_fds > 0) {
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	}
	return sendmsg(ctl, &mh, MSG_NOSIGNAL) == (ssize_t)sizeof(m) ? 0 : -errno;
}

/* ZYG_SPAWN, then ZYG_SPAWNED. Returns the instance's index in f->inst. */
static size_t spawn(struct fixture *f)
{
	static uint64_t token = 1000;
	struct instance *in = &f->inst[f->n_inst];
	int chan[2], out[2], err[2];
	struct zyg_spawned reply;
	uint64_t t = ++token;

	assert_true(f->n_inst < MAX_INSTANCES);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	assert_int_equal(send_spawn(f->ctl, t, (int[]){ chan[1], out[1], err[1] }, 3), 0);
	(void)close(chan[1]);
	(void)close(out[1]);
	(void)close(err[1]);
	*in = (struct instance){ .chan = chan[0], .out = out[0], .err = err[0] };
	f->n_inst++;

	assert_int_equal(ctl_recv(f, ZYG_SPAWNED, &reply, sizeof(reply), TIMEOUT_MS),
			 sizeof(reply));
	assert_true(reply.token == t);
	assert_int_equal(reply.error, 0);
	assert_true(reply.pid > 0);
	in->pid = reply.pid;
	return f->n_inst - 1;
}

static void expect_exited(struct fixture *f, pid_t pid, int *ret_status)
{
	struct zyg_exited e;

	assert_int_equal(ctl_recv(f, ZYG_EXITED, &e, sizeof(e), TIMEOUT_MS), sizeof(e));
	assert_int_equal(e.pid, pid);
	*ret_status = e.status;
}

/* Parent pid of pid, from /proc/PID/stat ("pid (comm) S ppid ..."). */
static pid_t parent_of(pid_t pid)
{
	_cleanup_free_ char *s = NULL;
	char path[64];
	int ppid = -1;
	char *p;

	(void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(AT_FDCWD, path, 4096, &s, NULL) < 0)
		return -1;
	p = strrchr(s, ')');
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

/* Children of pid, when the kernel lists them (CONFIG_PROC_CHILDREN); -ENOENT if not. */
static int children_of(pid_t pid, pid_t *ret, size_t max, size_t *ret_n)
{
	_cleanup_free_ char *s = NULL;
	char path[64], *p, *end;
	size_t n = 0;
	int r;

	(void)snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	r = read_file(AT_FDCWD, path, 65536, &s, NULL);
	if (r < 0)
		return r;
	for (p = s;; p = end) {
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (n < max)
			ret[n++] = (pid_t)v;
	}
	*ret_n = n;
	return 0;
}

/* Is pid blocked in recvmsg() (a spare waiting for its hand-over)? */
static bool in_recvmsg(pid_t pid)
{
	_cleanup_free_ char *s = NULL;
	char path[64];

	(void)snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	if (read_file(AT_FDCWD, path, 4096, &s, NULL) < 0)
		return false;
	return strtol(s, NULL, 10) == SYS_recvmsg;
}

/* Waits until the zygote has n children all waiting as spares. Returns 0, or -ENOENT when the
 * kernel cannot tell. */
static int wait_spares(struct fixture *f, size_t n, pid_t *ret)
{
	int64_t deadline = now_ms() + TIMEOUT_MS;

	for (;;) {
		size_t m = 0, ready = 0;
		int r;

		r = children_of(f->zygote, ret, n, &m);
		if (r < 0)
			return r;
		for (size_t i = 0; i < m; i++)
			ready += in_recvmsg(ret[i]);
		if (m == n && ready == n)
			return 0;
		if (now_ms() > deadline)
			fail_msg("zygote has %zu children (%zu waiting), expected %zu spares", m,
				 ready, n);
		(void)usleep(10 * 1000);
	}
}

/* Closes the control socket; the zygote must exit 0 by itself. */
static void zygote_stop(struct fixture *f)
{
	int64_t deadline = now_ms() + TIMEOUT_MS;
	int status;
	pid_t r;

	f->ctl = safe_close(f->ctl);
	while ((r = waitpid(f->zygote, &status, WNOHANG)) == 0 && now_ms() < deadline)
		(void)usleep(5 * 1000);
	assert_int_equal(r, f->zygote);
	f->zygote = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- instance chan ------------------------------------------------------------------------- */

static void chan_send(struct instance *in, uint32_t type, const void *a, size_t alen, const void *b,
		      size_t blen)
{
	struct proto_frame h = { .type = type, .len = (uint32_t)(alen + blen) };

	assert_int_equal(write_all(in->chan, &h, sizeof(h)), 0);
	if (alen)
		assert_int_equal(write_all(in->chan, a, alen), 0);
	if (blen)
		assert_int_equal(write_all(in->chan, b, blen), 0);
}

/* Reads one frame; returns its type, or 0 on EOF. *ret_payload NUL-terminated. */
static uint32_t chan_recv(struct instance *in, char **ret_payload, size_t *ret_len)
{
	int64_t deadline = now_ms() + TIMEOUT_MS;
	struct proto_frame h;
	size_t got = 0;
	char *p;

	while (got < sizeof(h)) {
		ssize_t n;

		assert_int_equal(wait_readable(in->chan, deadline), 0);
		n = read(in->chan, (char *)&h + got, sizeof(h) - got);
		assert_true(n >= 0);
		if (n == 0) {
			assert_int_equal(got, 0);
			return 0;
		}
		got += (size_t)n;
	}
	assert_true(h.len <= PROTO_MAX_FRAME);
	p = malloc(h.len + 1);
	assert_non_null(p);
	for (got = 0; got < h.len;) {
		ssize_t n;

		assert_int_equal(wait_readable(in->chan, deadline), 0);
		n = read(in->chan, p + got, h.len - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	p[h.len] = 0;
	if (ret_payload)
		*ret_payload = p;
	else
		free(p);
	if (ret_len)
		*ret_len = h.len;
	return h.type;
}

static const char *init_json(const struct runtime_case *rt, const char *handler)
{
	static char buf[1024];

	(void)snprintf(
		buf, sizeof(buf),
		"{\"function_name\":\"fn-test\",\"function_version\":\"7\",\"handler\":\"%s\","
		"\"code_dir\":\"%s\",\"memory_mb\":256,\"timeout_ms\":3000,"
		"\"env\":{\"GREETING\":\"howdy\",\"FOO\":\"bar\"}}",
		handler, rt->code_dir);
	return buf;
}

/* INST_INIT; returns the reply's type and payload. */
static uint32_t init(struct fixture *f, size_t i, const char *handler, char **ret_payload)
{
	const char *j = init_json(f->rt, handler);

	chan_send(&f->inst[i], INST_INIT, j, strlen(j), NULL, 0);
	return chan_recv(&f->inst[i], ret_payload, NULL);
}

static void init_ready(struct fixture *f, size_t i, const char *handler)
{
	_cleanup_free_ char *p = NULL;
	uint32_t t = init(f, i, handler, &p);

	if (t != INST_READY)
		fail_msg("INST_INIT '%s': got frame %u: %s", handler, t, p ? p : "");
}

/* INST_INVOKE; returns the reply's type and its payload parsed. */
static uint32_t invoke(struct fixture *f, size_t i, const char *event, const char *request_id,
		       cJSON **ret)
{
	struct proto_invoke pi = { .deadline_ms = realtime_ms() + 3000 };
	_cleanup_free_ char *p = NULL;
	size_t len = 0;
	uint32_t t;

	(void)snprintf(pi.request_id, sizeof(pi.request_id), "%s", request_id);
	chan_send(&f->inst[i], INST_INVOKE, &pi, sizeof(pi), event, strlen(event));
	t = chan_recv(&f->inst[i], &p, &len);
	if (t == 0)
		return 0;
	*ret = cJSON_ParseWithLength(p, len);
	if (!*ret)
		fail_msg("invalid JSON from the instance: '%s'", p);
	return t;
}

static const char *jstr(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	if (!cJSON_IsString(v))
		fail_msg("'%s' missing or not a string", key);
	return v->valuestring;
}

/* Reads from fd until needle shows up. */
static void expect_output(int fd, const char *needle)
{
	int64_t deadline = now_ms() + TIMEOUT_MS;
	char buf[8192];
	size_t got = 0;

	for (;;) {
		ssize_t n;

		assert_int_equal(wait_readable(fd, deadline), 0);
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		assert_true(n > 0);
		got += (size_t)n;
		buf[got] = 0;
		if (strstr(buf, needle))
			return;
		assert_true(got < sizeof(buf) - 1);
	}
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->rt = *state;
	f->ctl = -EBADF;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < f->n_inst; i++) {
		safe_close(f->inst[i].chan);
		safe_close(f->inst[i].out);
		safe_close(f->inst[i].err);
	}
	if (f->zygote > 0) {
		/* Its instances die with it (PR_SET_PDEATHSIG). */
		(void)kill(f->zygote, SIGKILL);
		(void)waitpid(f->zygote, NULL, 0);
	}
	safe_close(f->ctl);
	if (f->tmpdir[0])
		(void)rm_rf_at(AT_FDCWD, f->tmpdir);
	free(f);
	return 0;
}

/* ---- tests --------------------------------------------------------------------------------- */

/* Default options: spares. HELLO, a spawn served by a spare that is the zygote's child, INIT,
 * READY, two invocations, EXITED once the chan closes, and exit on EOF of fd 3. */
static void test_hello_from_spare(void **state)
{
	struct fixture *f = *state;
	_cleanup_(cJSON_Deletep) cJSON *r1 = NULL, *r2 = NULL;
	pid_t spares[2] = {};
	char msg[64];
	int status, w;
	size_t i;

	assert_int_equal(zygote_start(f, NULL), 0);
	zygote_hello(f);
	w = wait_spares(f, 2, spares);

	i = spawn(f);
	if (w == 0)
		assert_true(f->inst[i].pid == spares[0] || f->inst[i].pid == spares[1]);
	assert_int_equal(parent_of(f->inst[i].pid), f->zygote);
	init_ready(f, i, f->rt->hello);

	assert_int_equal(invoke(f, i, "{\"name\":\"spore\"}", "req-1", &r1), INST_RESULT);
	assert_true(snprintf(msg, sizeof(msg), "%s, spore", f->rt->greeting) > 0);
	assert_string_equal(jstr(r1, "message"), msg);
	assert_string_equal(jstr(r1, "function_version"), "7");
	assert_string_equal(jstr(r1, "request_id"), "req-1");
	/* Warm: the same instance again; an empty event is null. */
	assert_int_equal(invoke(f, i, "", "req-2", &r2), INST_RESULT);
	assert_true(snprintf(msg, sizeof(msg), "%s, world", f->rt->greeting) > 0);
	assert_string_equal(jstr(r2, "message"), msg);
	assert_string_equal(jstr(r2, "request_id"), "req-2");

	f->inst[i].chan = safe_close(f->inst[i].chan);
	expect_exited(f, f->inst[i].pid, &status);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	zygote_stop(f);
}

/* --spares 0: every instance is a fresh fork; echo returns the event unchanged. */
static void test_echo_without_spares(void **state)
{
	static const char *const args[] = { "--spares", "0", NULL };
	static const char event[] =
		"{\"a\":[1,2.5,{\"b\":null}],\"s\":\"caf\xc3\xa9 \\\"q\\\"\",\"t\":true,\"n\":-3}";
	struct fixture *f = *state;
	_cleanup_(cJSON_Deletep) cJSON *r = NULL, *want = NULL;
	pid_t kids[4];
	size_t i, n = 0;

	assert_int_equal(zygote_start(f, args), 0);
	zygote_hello(f);
	(void)usleep(150 * 1000); /* past the refill delay: still no spares */
	if (children_of(f->zygote, kids, ELEMENTSOF(kids), &n) == 0)
		assert_int_equal(n, 0);

	i = spawn(f);
	assert_int_equal(parent_of(f->inst[i].pid), f->zygote);
	init_ready(f, i, f->rt->echo);
	assert_int_equal(invoke(f, i, event, "req-echo", &r), INST_RESULT);
	want = cJSON_Parse(event);
	assert_non_null(want);
	assert_true(cJSON_Compare(r, want, true));
	zygote_stop(f);
}

/* A failing handler: INST_ERROR with the error type; the instance lives on. Logs: the handler's
 * stdout and stderr lines arrive on the two pipes. */
static void test_fail_and_log(void **state)
{
	struct fixture *f = *state;
	_cleanup_(cJSON_Deletep) cJSON *e1 = NULL, *e2 = NULL, *l = NULL;
	const cJSON *trace;
	size_t i, k;

	assert_int_equal(zygote_start(f, NULL), 0);
	zygote_hello(f);

	i = spawn(f);
	init_ready(f, i, f->rt->fail);
	assert_int_equal(invoke(f, i, "{}", "req-f1", &e1), INST_ERROR);
	assert_string_equal(jstr(e1, "errorType"), "ValueError");
	assert_string_equal(jstr(e1, "errorMessage"), "something went wrong");
	trace = cJSON_GetObjectItemCaseSensitive(e1, "stackTrace");
	assert_true(cJSON_IsArray(trace));
	if (f->rt->stack_trace) {
		assert_true(cJSON_GetArraySize(trace) >= 1);
		assert_non_null(strstr(cJSON_GetArrayItem(trace, 0)->valuestring, "handler.py"));
	}
	assert_int_equal(invoke(f, i, "{}", "req-f2", &e2), INST_ERROR);

	k = spawn(f);
	init_ready(f, k, f->rt->log);
	assert_int_equal(invoke(f, k, "{\"lines\":3}", "req-log", &l), INST_RESULT);
	expect_output(f->inst[k].out, "stdout line 2 of req-log\n");
	expect_output(f->inst[k].err, "stderr line 2 of req-log\n");
	zygote_stop(f);
}

/* Load failures: INST_INIT_ERROR, then the instance exits 1 and the zygote says so. */
static void test_init_errors(void **state)
{
	struct fixture *f = *state;
	const struct {
		const char *handler, *type;
	} cases[] = {
		{ f->rt->bad_import, f->rt->bad_import_type },
		{ f->rt->no_handler, f->rt->no_handler_type },
	};

	assert_int_equal(zygote_start(f, NULL), 0);
	zygote_hello(f);
	for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
		_cleanup_(cJSON_Deletep) cJSON *j = NULL;
		_cleanup_free_ char *p = NULL;
		size_t i = spawn(f);
		int status;

		assert_int_equal(init(f, i, cases[c].handler, &p), INST_INIT_ERROR);
		j = cJSON_Parse(p);
		assert_non_null(j);
		assert_string_equal(jstr(j, "errorType"), cases[c].type);
		assert_true(strlen(jstr(j, "errorMessage")) > 0);
		assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "stackTrace")));
		assert_int_equal(chan_recv(&f->inst[i], NULL, NULL), 0);
		expect_exited(f, f->inst[i].pid, &status);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 1);
	}
	zygote_stop(f);
}

/* A crashing instance: the chan hits EOF and ZYG_EXITED carries the wait status. */
static void test_crash(void **state)
{
	struct fixture *f = *state;
	const struct {
		const char *event;
		int sig, code;
	} cases[] = {
		{ "{\"how\":\"exit\",\"code\":7}", 0, 7 },
		{ "{\"how\":\"segv\"}", SIGSEGV, 0 }, /* a real fault */
	};

	assert_int_equal(zygote_start(f, NULL), 0);
	zygote_hello(f);
	for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
		cJSON *j = NULL;
		size_t i = spawn(f);
		int status;

		init_ready(f, i, f->rt->crash);
		assert_int_equal(invoke(f, i, cases[c].event, "req-crash", &j), 0);
		expect_exited(f, f->inst[i].pid, &status);
		if (cases[c].sig) {
			assert_true(WIFSIGNALED(status));
			assert_int_equal(WTERMSIG(status), cases[c].sig);
		} else {
			assert_true(WIFEXITED(status));
			assert_int_equal(WEXITSTATUS(status), cases[c].code);
		}
	}
	zygote_stop(f);
}

/* A ZYG_SPAWN without its three fds fails with the token echoed; the zygote carries on. */
static void test_bad_spawn(void **state)
{
	struct fixture *f = *state;
	_cleanup_(cJSON_Deletep) cJSON *r = NULL;
	struct zyg_spawned reply;
	int p[2];
	size_t i;

	assert_int_equal(zygote_start(f, NULL), 0);
	zygote_hello(f);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(send_spawn(f->ctl, 77, (int[]){ p[1] }, 1), 0);
	assert_int_equal(send_spawn(f->ctl, 78, NULL, 0), 0);
	(void)close(p[1]);
	for (uint64_t t = 77; t <= 78; t++) {
		assert_int_equal(ctl_recv(f, ZYG_SPAWN_FAILED, &reply, sizeof(reply), TIMEOUT_MS),
				 sizeof(reply));
		assert_true(reply.token == t);
		assert_int_equal(reply.pid, 0);
		assert_int_equal(reply.error, -EBADMSG);
	}
	/* The zygote dropped its copy of the pipe's write end: EOF here. */
	assert_int_equal(wait_readable(p[0], now_ms() + TIMEOUT_MS), 0);
	assert_int_equal(read(p[0], &reply, 1), 0);
	(void)close(p[0]);

	i = spawn(f);
	init_ready(f, i, f->rt->echo);
	assert_int_equal(invoke(f, i, "[1]", "req-after", &r), INST_RESULT);
	zygote_stop(f);
}

/* EOF on fd 3: the zygote exits and takes its live instances with it. */
static void test_zygote_exit_kills_instances(void **state)
{
	struct fixture *f = *state;
	size_t i, k;

	assert_int_equal(zygote_start(f, NULL), 0);
	zygote_hello(f);
	i = spawn(f);
	init_ready(f, i, f->rt->echo);
	k = spawn(f); /* not even initialised */
	zygote_stop(f);
	assert_int_equal(chan_recv(&f->inst[i], NULL, NULL), 0);
	assert_int_equal(chan_recv(&f->inst[k], NULL, NULL), 0);
}

/* The context and the environment an unmodified Lambda handler sees (python3). */
static void test_python_context(void **state)
{
	struct fixture *f = *state;
	_cleanup_(cJSON_Deletep) cJSON *r = NULL;
	const cJSON *env, *v;
	size_t i;

	assert_int_equal(zygote_start(f, NULL), 0);
	zygote_hello(f);
	i = spawn(f);
	init_ready(f, i, "handler.context");
	assert_int_equal(
		invoke(f, i,
		       "{\"env\":[\"FOO\",\"AWS_LAMBDA_FUNCTION_NAME\","
		       "\"AWS_LAMBDA_FUNCTION_VERSION\",\"AWS_LAMBDA_FUNCTION_MEMORY_SIZE\","
		       "\"_HANDLER\",\"LAMBDA_TASK_ROOT\",\"SPORE_TEST_LEAK\"]}",
		       "0f0e0d0c-0b0a-4909-8807-060504030201", &r),
		INST_RESULT);
	assert_string_equal(jstr(r, "function_name"), "fn-test");
	assert_string_equal(jstr(r, "function_version"), "7");
	assert_string_equal(jstr(r, "aws_request_id"), "0f0e0d0c-0b0a-4909-8807-060504030201");
	assert_non_null(strstr(jstr(r, "invoked_function_arn"), ":function:fn-test"));
	assert_string_equal(jstr(r, "log_group_name"), "/aws/lambda/fn-test");
	assert_string_equal(jstr(r, "cwd"), f->rt->code_dir);
	v = cJSON_GetObjectItemCaseSensitive(r, "memory_limit_in_mb");
	assert_true(cJSON_IsNumber(v) && v->valueint == 256);
	v = cJSON_GetObjectItemCaseSensitive(r, "remaining_ms");
	assert_true(cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble <= 3000);
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "identity")));
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "client_context")));
	v = cJSON_GetObjectItemCaseSensitive(r, "ppid");
	assert_true(cJSON_IsNumber(v) && v->valueint == f->zygote);

	env = cJSON_GetObjectItemCaseSensitive(r, "env");
	assert_string_equal(jstr(env, "FOO"), "bar");
	assert_string_equal(jstr(env, "AWS_LAMBDA_FUNCTION_NAME"), "fn-test");
	assert_string_equal(jstr(env, "AWS_LAMBDA_FUNCTION_VERSION"), "7");
	assert_string_equal(jstr(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "256");
	assert_string_equal(jstr(env, "_HANDLER"), "handler.context");
	assert_string_equal(jstr(env, "LAMBDA_TASK_ROOT"), f->rt->code_dir);
	/* The zygote's own environment does not leak into instances. */
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(env, "SPORE_TEST_LEAK")));
	zygote_stop(f);
}

/* python3 load errors and result edge cases, from modules written to a temp dir. */
static void test_python_edge_cases(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *file, *source;
	} files[] = {
		{ "syn.py", "def f(:\n  pass\n" },
		{ "boom.py", "raise RuntimeError('boom at import')\n" },
		{ "edge.py",
		  "import decimal, sys\n"
		  "def dec(e, c): return {'d': decimal.Decimal('1.5'), 'i': decimal.Decimal(3)}\n"
		  "def aset(e, c): return {1, 2}\n"
		  "def nan(e, c): return float('nan')\n"
		  "def exit5(e, c): sys.exit(5)\n"
		  "def ev(e, c): return [e, type(e).__name__]\n" },
		/* A module loaded straight from its file (not through importlib's finders) must look
		 * the same as an imported one; a package of the same name wins, as with importlib. */
		{ "attrs.py",
		  "import sib, inspect, sys\n"
		  "def f(e, c): return [__name__, __file__ == __spec__.origin, __file__.endswith("
		  "'/attrs.py'), type(__loader__).__name__, sib.X, 'def f' in inspect.getsource(f), "
		  "sys.modules['attrs'] is sys.modules[__name__]]\n" },
		{ "sib.py", "X = 42\n" },
		{ "both.py", "def f(e, c): return 'module'\n" },
		{ "both/__init__.py", "def f(e, c): return 'package'\n" },
	};
	static const struct {
		const char *handler, *type, *message;
	} init_errors[] = {
		{ "syn.f", "Runtime.UserCodeSyntaxError", "Syntax error in module 'syn'" },
		{ "boom.f", "RuntimeError", "boom at import" },
		{ "edge", "Runtime.MalformedHandlerName", "Bad handler 'edge'" },
		{ "sys.path", "Runtime.BuiltInModuleConflict", "built-in module sys" },
		{ "edge.missing", "Runtime.HandlerNotFound",
		  "Handler 'missing' missing on module 'edge'" },
		{ "nosuch.f", "Runtime.ImportModuleError",
		  "Unable to import module 'nosuch': No module named 'nosuch'" },
	};
	static const struct {
		const char *handler, *event;
		uint32_t type;
		const char *result; /* INST_RESULT: the JSON; INST_ERROR: the errorType */
	} invokes[] = {
		{ "edge.dec", "{}", INST_RESULT, "{\"d\":1.5,\"i\":3}" },
		{ "edge.aset", "{}", INST_ERROR, "Runtime.MarshalError" },
		{ "edge.nan", "{}", INST_ERROR, "Runtime.MarshalError" },
		{ "edge.ev", "", INST_RESULT, "[null,\"NoneType\"]" },
		{ "edge.ev", "[1,\"x\"]", INST_RESULT, "[[1,\"x\"],\"list\"]" },
		{ "edge.ev", "{\"bad json", INST_ERROR, "Runtime.UnmarshalError" },
		{ "attrs.f", "{}", INST_RESULT, "[\"attrs\",true,true,\"SourceFileLoader\",42,true,true]" },
		{ "both.f", "{}", INST_RESULT, "\"package\"" },
	};
	struct runtime_case rt = *f->rt;
	char *dir = f->tmpdir;
	int status;

	(void)snprintf(f->tmpdir, sizeof(f->tmpdir), "/tmp/test-zygote-py-XXXXXX");
	assert_non_null(mkdtemp(dir));
	for (size_t k = 0; k < ELEMENTSOF(files); k++) {
		char path[512];

		(void)snprintf(path, sizeof(path), "%s/%s", dir, files[k].file);
		if (strchr(files[k].file, '/')) {
			char sub[512];

			(void)snprintf(sub, sizeof(sub), "%s/%.*s", dir,
				       (int)(strchr(files[k].file, '/') - files[k].file),
				       files[k].file);
			assert_true(mkdir(sub, 0755) == 0 || errno == EEXIST);
		}
		assert_int_equal(write_file_atomic(AT_FDCWD, path, files[k].source,
						   strlen(files[k].source), 0644),
				 0);
	}
	(void)snprintf(rt.code_dir, sizeof(rt.code_dir), "%s", dir);
	f->rt = &rt;

	assert_int_equal(zygote_start(f, NULL), 0);
	zygote_hello(f);
	for (size_t c = 0; c < ELEMENTSOF(init_errors); c++) {
		_cleanup_(cJSON_Deletep) cJSON *j = NULL;
		_cleanup_free_ char *p = NULL;
		size_t i = spawn(f);

		assert_int_equal(init(f, i, init_errors[c].handler, &p), INST_INIT_ERROR);
		j = cJSON_Parse(p);
		assert_non_null(j);
		assert_string_equal(jstr(j, "errorType"), init_errors[c].type);
		if (!strstr(jstr(j, "errorMessage"), init_errors[c].message))
			fail_msg("%s: errorMessage '%s'", init_errors[c].handler,
				 jstr(j, "errorMessage"));
		expect_exited(f, f->inst[i].pid, &status);
		f->n_inst--;
		safe_close(f->inst[i].chan);
		safe_close(f->inst[i].out);
		safe_close(f->inst[i].err);
	}
	for (size_t c = 0; c < ELEMENTSOF(invokes); c++) {
		_cleanup_(cJSON_Deletep) cJSON *r = NULL, *want = NULL;
		size_t i = spawn(f);

		init_ready(f, i, invokes[c].handler);
		assert_int_equal(invoke(f, i, invokes[c].event, "req-edge", &r), invokes[c].type);
		if (invokes[c].type == INST_ERROR)
			assert_string_equal(jstr(r, "errorType"), invokes[c].result);
		else {
			want = cJSON_Parse(invokes[c].result);
			assert_true(cJSON_Compare(r, want, true));
		}
		f->inst[i].chan = safe_close(f->inst[i].chan);
		expect_exited(f, f->inst[i].pid, &status);
		f->n_inst--;
		safe_close(f->inst[i].out);
		safe_close(f->inst[i].err);
	}
	/* sys.exit(5) in a handler ends the instance with status 5. */
	{
		cJSON *r = NULL;
		size_t i = spawn(f);

		init_ready(f, i, "edge.exit5");
		assert_int_equal(invoke(f, i, "{}", "req-exit", &r), 0);
		expect_exited(f, f->inst[i].pid, &status);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 5);
	}
	zygote_stop(f);
	f->rt = NULL;
}

/* Native specifics: the remaining time from the context, a response that is not JSON, a plain
 * error message, and the "file.so:symbol" handler form. */
static void test_native_abi(void **state)
{
	struct fixture *f = *state;
	_cleanup_(cJSON_Deletep) cJSON *r = NULL, *e = NULL;
	const cJSON *v;
	size_t i, k;

	assert_int_equal(zygote_start(f, NULL), 0);
	zygote_hello(f);
	i = spawn(f);
	init_ready(f, i, "hello.so:hello");
	assert_int_equal(invoke(f, i, "{\"name\":\"abi\"}", "req-abi", &r), INST_RESULT);
	assert_string_equal(jstr(r, "message"), "howdy, abi");
	v = cJSON_GetObjectItemCaseSensitive(r, "remaining_ms");
	assert_true(cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble <= 3000);

	/* echo of a non-JSON event returns it verbatim: not JSON, refused by the runtime. */
	k = spawn(f);
	init_ready(f, k, "echo");
	assert_int_equal(invoke(f, k, "{\"unterminated\":", "req-bad", &e), INST_ERROR);
	assert_string_equal(jstr(e, "errorType"), "Runtime.InvalidResponse");
	zygote_stop(f);
}

/* ---- main ---------------------------------------------------------------------------------- */

static struct runtime_case python3_case = {
	.name = "python3",
	.zygote = ZYGOTE_PYTHON3,
	.code_dir = PYTHON_HELLO_DIR,
	.hello = "handler.hello",
	.greeting = "hello",
	.echo = "handler.echo",
	.fail = "handler.fail",
	.log = "handler.log",
	.crash = "handler.crash",
	.bad_import = "nosuchmodule.handler",
	.bad_import_type = "Runtime.ImportModuleError",
	.no_handler = "handler.nosuchfunction",
	.no_handler_type = "Runtime.HandlerNotFound",
	.stack_trace = true,
};

static struct runtime_case native_case = {
	.name = "native",
	.zygote = ZYGOTE_NATIVE,
	.hello = "hello",
	.greeting = "howdy",
	.echo = "hello.so:echo",
	.fail = "fail",
	.log = "log",
	.crash = "crash",
	.bad_import = "missing.so:hello",
	.bad_import_type = "Runtime.ImportModuleError",
	.no_handler = "nosuchsymbol",
	.no_handler_type = "Runtime.HandlerNotFound",
};

#define RT_TESTS(c)                                                                                \
	cmocka_unit_test_prestate_setup_teardown(test_hello_from_spare, setup, teardown, &(c)),    \
		cmocka_unit_test_prestate_setup_teardown(test_echo_without_spares, setup,          \
							 teardown, &(c)),                          \
		cmocka_unit_test_prestate_setup_teardown(test_fail_and_log, setup, teardown,       \
							 &(c)),                                    \
		cmocka_unit_test_prestate_setup_teardown(test_init_errors, setup, teardown, &(c)), \
		cmocka_unit_test_prestate_setup_teardown(test_crash, setup, teardown, &(c)),       \
		cmocka_unit_test_prestate_setup_teardown(test_bad_spawn, setup, teardown, &(c)),   \
		cmocka_unit_test_prestate_setup_teardown(test_zygote_exit_kills_instances, setup,  \
							 teardown, &(c))

int main(void)
{
	/* Under ASan the instances' own SIGSEGV handler would turn the crash case's real fault into
	 * "exit 1": let the fault through to the kernel (the zygotes inherit this). */
	const char *asan = getenv("ASAN_OPTIONS");
	char opts[1024];
	(void)snprintf(opts, sizeof(opts), "%s%shandle_segv=0", asan ? asan : "",
		       asan && *asan ? ":" : "");
	(void)setenv("ASAN_OPTIONS", opts, 1);

	const struct CMUnitTest tests[] = {
		RT_TESTS(python3_case),
		cmocka_unit_test_prestate_setup_teardown(test_python_context, setup, teardown,
							 &python3_case),
		cmocka_unit_test_prestate_setup_teardown(test_python_edge_cases, setup, teardown,
							 &python3_case),
		RT_TESTS(native_case),
		cmocka_unit_test_prestate_setup_teardown(test_native_abi, setup, teardown,
							 &native_case),
	};
	char tmpl[] = "/tmp/test-zygote-XXXXXX";
	char so[512];
	int r;

	/* The native package: a directory whose only *.so is the example. */
	if (!mkdtemp(tmpl))
		return 1;
	(void)snprintf(native_case.code_dir, sizeof(native_case.code_dir), "%s", tmpl);
	(void)snprintf(so, sizeof(so), "%s/hello.so", tmpl);
	if (symlink(NATIVE_HELLO_SO, so) < 0) {
		perror("symlink");
		return 1;
	}
	r = cmocka_run_group_tests(tests, NULL, NULL);
	(void)rm_rf_at(AT_FDCWD, tmpl);
	return r;
}
