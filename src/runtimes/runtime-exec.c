/* SPDX-License-Identifier: MIT */
/* spore-zygote-exec: any executable of the package is the function (a shell script, a Go or
 * Rust binary, ...). The instance is forked from the zygote and sandboxed as every instance;
 * each invocation then forks it once more and exec()s the handler, a path relative to the
 * package root, with
 *
 *   stdin   the event (JSON; "null" for an empty one), then EOF
 *   stdout  the response: one JSON value (surrounding white space is dropped; nothing at all is
 *           null); anything else is a Runtime.InvalidResponse error naming the handler
 *   stderr  the function's log, line by line; its last lines go into the error of a failure
 *   status  0: success; anything else (or a signal) is a Runtime.ExitError with the status
 *
 * and the environment of the instance, plus SPORE_REQUEST_ID and SPORE_DEADLINE_MS (ms since
 * the epoch). The invocation ends when the handler exits: whatever it left running in the
 * instance is killed then (SIGKILL), so every invocation starts alone. The handler runs in the
 * instance's cgroup, namespaces and seccomp filter, with no_new_privs (setuid bits do
 * nothing): the instance's pids, memory, CPU and timeout limits are its limits. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "zygote.h"

/* As AWS: a synchronous response is at most 6 MB (zygote.c has the same). */
#define RESPONSE_MAX ((size_t)6 * 1024 * 1024)
/* How much of stderr the error of a failed invocation keeps. */
#define TAIL_MAX 4096
#define TAIL_LINES 20

static const struct inst_config *config;
static char *handler_path; /* absolute: code_dir/handler */

static int exec_init_language(void)
{
	return 0;
}

/* A relative path that stays inside the package: no "..", no empty or "." components. */
static bool handler_path_valid(const char *p)
{
	if (!p[0] || p[0] == '/')
		return false;
	for (;;) {
		size_t l = strcspn(p, "/");

		if (l == 0 || (l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!p[l])
			return true;
		p += l + 1;
	}
}

static int exec_load(const struct inst_config *cfg, char **ret_error)
{
	struct stat st;

	if (!handler_path_valid(cfg->handler)) {
		*ret_error = runtime_error_jsonf("Runtime.MalformedHandlerName",
						 "Bad handler '%s': must be a relative path inside "
						 "the package",
						 cfg->handler);
		return -EINVAL;
	}
	/* cwd is the code directory */
	if (stat(cfg->handler, &st) < 0) {
		int r = -errno;

		*ret_error = runtime_error_jsonf("Runtime.InvalidEntrypoint", "Handler '%s': %s",
						 cfg->handler, strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode) || access(cfg->handler, X_OK) < 0) {
		*ret_error = runtime_error_jsonf("Runtime.InvalidEntrypoint",
						 "Handler '%s' is not an executable file",
						 cfg->handler);
		return -EACCES;
	}
	if (asprintf(&handler_path, "%s/%s", cfg->code_dir, cfg->handler) < 0) {
		handler_path = NULL;
		return -ENOMEM;
	}
	/* A handler that does not read its stdin: write() fails with EPIPE, nothing dies. */
	(void)signal(SIGPIPE, SIG_IGN);
	config = cfg;
	return 0;
}

/* The last TAIL_MAX bytes of the handler's stderr. */
struct tail {
	char buf[TAIL_MAX];
	size_t len;
};

static void tail_add(struct tail *t, const char *p, size_t n)
{
	if (n >= TAIL_MAX) {
		memcpy(t->buf, p + n - TAIL_MAX, TAIL_MAX);
		t->len = TAIL_MAX;
		return;
	}
	if (t->len + n > TAIL_MAX) {
		size_t drop = t->len + n - TAIL_MAX;

		memmove(t->buf, t->buf + drop, t->len - drop);
		t->len -= drop;
	}
	memcpy(t->buf + t->len, p, n);
	t->len += n;
}

/* The tail's last TAIL_LINES non-empty lines, as a JSON array for stackTrace. */
static cJSON *tail_lines(const struct tail *t)
{
	cJSON *a = cJSON_CreateArray();
	const char *start[TAIL_LINES];
	size_t len[TAIL_LINES], n = 0;
	size_t end = t->len;

	if (!a)
		return NULL;
	while (end > 0 && n < TAIL_LINES) {
		size_t b = end;

		while (b > 0 && t->buf[b - 1] != '\n')
			b--;
		if (end > b) {
			start[n] = t->buf + b;
			len[n++] = end - b;
		}
		end = b > 0 ? b - 1 : 0;
	}
	while (n > 0) {
		n--;
		cJSON *s = cJSON_CreateString("");
		char *copy = strndup(start[n], len[n]);

		if (!s || !copy || !cJSON_AddItemToArray(a, s)) {
			free(copy);
			cJSON_Delete(s);
			cJSON_Delete(a);
			return NULL;
		}
		cJSON_SetValuestring(s, copy);
		free(copy);
	}
	return a;
}

static char *error_json(const char *type, const char *message, cJSON *stack)
{
	cJSON *j = cJSON_CreateObject();
	char *s = NULL;

	if (j && cJSON_AddStringToObject(j, "errorType", type) &&
	    cJSON_AddStringToObject(j, "errorMessage", message)) {
		if (!stack)
			stack = cJSON_CreateArray();
		if (stack && cJSON_AddItemToObject(j, "stackTrace", stack)) {
			stack = NULL;
			s = cJSON_PrintUnformatted(j);
		}
	}
	cJSON_Delete(stack);
	cJSON_Delete(j);
	return s;
}

static _noreturn_ void child_exec(int in, int out, int err, const struct inst_invoke *inv)
{
	char deadline[24];
	sigset_t none;

	(void)setpgid(0, 0);
	if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
	    dup2(err, STDERR_FILENO) < 0)
		_exit(126);
	(void)signal(SIGPIPE, SIG_DFL);
	(void)sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	(void)snprintf(deadline, sizeof(deadline), "%" PRId64, inv->deadline_ms);
	if (setenv("SPORE_REQUEST_ID", inv->request_id, 1) < 0 ||
	    setenv("SPORE_DEADLINE_MS", deadline, 1) < 0)
		_exit(126);
	execl(handler_path, handler_path, (char *)NULL);
	{
		int e = errno;

		dprintf(STDERR_FILENO, "spore: cannot execute '%s': %s\n", config->handler,
			strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
}

/* Whatever the handler left running: killed, and reaped. As pid 1 of the instance's own pid
 * namespace, kill(-1) reaches exactly the instance's other processes; without the sandbox the
 * handler's process group is what we can name. */
static void kill_leftovers(pid_t pgid)
{
	if (getpid() == 1)
		(void)kill(-1, SIGKILL);
	else
		(void)kill(-pgid, SIGKILL);
	for (;;) {
		pid_t p = getpid() == 1 ? waitpid(-1, NULL, 0) : waitpid(-1, NULL, WNOHANG);

		if (p > 0 || (p < 0 && errno == EINTR))
			continue;
		break;
	}
}

struct run {
	int in, out, err, pidfd;
	const char *event;
	size_t event_len, written;
	char *stdout_buf;
	size_t stdout_len;
	bool stdout_overflow;
	struct tail tail;
};

static void run_done(struct run *r)
{
	r->in = safe_close(r->in);
	r->out = safe_close(r->out);
	r->err = safe_close(r->err);
	r->pidfd = safe_close(r->pidfd);
	free(r->stdout_buf);
	r->stdout_buf = NULL;
}

/* Reads what is there; returns -1 at EOF (the fd is closed), 0 otherwise. */
static int run_read(struct run *r, int *fd, bool is_stdout)
{
	char buf[65536];

	for (;;) {
		ssize_t n = read(*fd, buf, sizeof(buf));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			n = 0; /* an error: as EOF */
		}
		if (n == 0) {
			*fd = safe_close(*fd);
			return -1;
		}
		if (!is_stdout) {
			/* the log: ours is the instance's stderr */
			size_t off = 0;

			while (off < (size_t)n) {
				ssize_t w = write(STDERR_FILENO, buf + off, (size_t)n - off);
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					break;
				off += (size_t)w;
			}
			tail_add(&r->tail, buf, (size_t)n);
			continue;
		}
		if (r->stdout_overflow || r->stdout_len + (size_t)n > RESPONSE_MAX) {
			r->stdout_overflow = true;
			r->stdout_len += (size_t)n;
			continue;
		}
		char *p = realloc(r->stdout_buf, r->stdout_len + (size_t)n + 1);
		if (!p)
			return -ENOMEM;
		r->stdout_buf = p;
		memcpy(p + r->stdout_len, buf, (size_t)n);
		r->stdout_len += (size_t)n;
		p[r->stdout_len] = 0;
	}
}

static void run_write(struct run *r)
{
	while (r->in >= 0 && r->written < r->event_len) {
		ssize_t n = write(r->in, r->event + r->written, r->event_len - r->written);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			r->in = safe_close(r->in); /* EPIPE: it does not read its stdin */
			return;
		}
		r->written += (size_t)n;
	}
	r->in = safe_close(r->in);
}

/* Feeds the event, collects stdout and stderr until the handler exits. Returns its wait
 * status, or -errno. */
static int run_handler(struct run *r, pid_t pid)
{
	bool exited = false;
	siginfo_t si = {};

	run_write(r);
	while (!exited) {
		struct pollfd p[4] = {
			{ .fd = r->pidfd, .events = POLLIN },
			{ .fd = r->out, .events = POLLIN },
			{ .fd = r->err, .events = POLLIN },
			{ .fd = r->in, .events = POLLOUT },
		};

		if (poll(p, ELEMENTSOF(p), -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[1].revents && run_read(r, &r->out, true) == -ENOMEM)
			return -ENOMEM;
		if (p[2].revents && run_read(r, &r->err, false) == -ENOMEM)
			return -ENOMEM;
		if (p[3].revents)
			run_write(r);
		if (p[0].revents) {
			if (waitid(P_PID, (id_t)pid, &si, WEXITED) < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			exited = true;
		}
	}
	/* What it wrote before it exited (not what something it left behind writes later). */
	if (r->out >= 0 && run_read(r, &r->out, true) == -ENOMEM)
		return -ENOMEM;
	if (r->err >= 0)
		(void)run_read(r, &r->err, false);
	kill_leftovers(pid);
	if (si.si_code == CLD_EXITED)
		return W_EXITCODE(si.si_status, 0);
	return si.si_status & 0x7f; /* killed or dumped: the signal */
}

static bool json_one_value(const char *buf, size_t len)
{
	cJSON *j;

	if (strlen(buf) != len)
		return false; /* a NUL inside */
	j = cJSON_ParseWithLengthOpts(buf, len + 1, NULL, true);
	cJSON_Delete(j);
	return j != NULL;
}

static int exec_invoke(const char *event, size_t event_len, const struct inst_invoke *inv,
		       char **ret_out, size_t *ret_len)
{
	_cleanup_(run_done) struct run r = { .in = -EBADF, .out = -EBADF, .err = -EBADF,
					     .pidfd = -EBADF, .event = event,
					     .event_len = event_len };
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	char msg[512], *res;
	const char *p;
	size_t n;
	pid_t pid;
	int status;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		int e = -errno;

		for (int i = 0; i < 2; i++) {
			if (in[i] >= 0)
				(void)close(in[i]);
			if (out[i] >= 0)
				(void)close(out[i]);
			if (err[i] >= 0)
				(void)close(err[i]);
		}
		return e;
	}
	r.in = in[1];
	r.out = out[0];
	r.err = err[0];
	(void)fflush(stdout);
	(void)fflush(stderr);
	pid = fork();
	if (pid == 0)
		child_exec(in[0], out[1], err[1], inv);
	(void)close(in[0]);
	(void)close(out[1]);
	(void)close(err[1]);
	if (pid < 0) {
		int e = errno;

		(void)snprintf(msg, sizeof(msg), "cannot start '%s': fork(): %s", config->handler,
			       strerror(e));
		*ret_out = error_json("Runtime.ExitError", msg, NULL);
		if (!*ret_out)
			return -ENOMEM;
		*ret_len = strlen(*ret_out);
		return INVOKE_ERROR;
	}
	(void)fcntl(r.in, F_SETFL, O_NONBLOCK);
	(void)fcntl(r.out, F_SETFL, O_NONBLOCK);
	(void)fcntl(r.err, F_SETFL, O_NONBLOCK);
	r.pidfd = pidfd_open(pid, 0);
	if (r.pidfd < 0) {
		int e = -errno;

		(void)kill(pid, SIGKILL);
		(void)waitpid(pid, NULL, 0);
		return e;
	}

	status = run_handler(&r, pid);
	if (status < 0)
		return status;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFEXITED(status))
			(void)snprintf(msg, sizeof(msg), "'%s' exited with status %d",
				       config->handler, WEXITSTATUS(status));
		else
			(void)snprintf(msg, sizeof(msg), "'%s' was killed by signal %d (SIG%s)",
				       config->handler, WTERMSIG(status),
				       sigabbrev_np(WTERMSIG(status)) ?: "?");
		*ret_out = error_json("Runtime.ExitError", msg, tail_lines(&r.tail));
		if (!*ret_out)
			return -ENOMEM;
		*ret_len = strlen(*ret_out);
		return INVOKE_ERROR;
	}
	if (r.stdout_overflow) {
		(void)snprintf(msg, sizeof(msg),
			       "Response payload size (%zu bytes) exceeded maximum allowed payload "
			       "size (%zu bytes).",
			       r.stdout_len, RESPONSE_MAX);
		*ret_out = error_json("Function.ResponseSizeTooLarge", msg, NULL);
		if (!*ret_out)
			return -ENOMEM;
		*ret_len = strlen(*ret_out);
		return INVOKE_ERROR;
	}
	/* White space around the value is not part of it (echo ends with a newline). */
	p = r.stdout_buf ?: "";
	n = r.stdout_len;
	while (n > 0 && strchr(" \t\r\n", *p)) {
		p++;
		n--;
	}
	while (n > 0 && strchr(" \t\r\n", p[n - 1]))
		n--;
	if (n == 0) {
		p = "null";
		n = 4;
	}
	res = strndup(p, n);
	if (!res)
		return -ENOMEM;
	if (!json_one_value(res, n) || strlen(res) != n) {
		free(res);
		(void)snprintf(msg, sizeof(msg),
			       "'%s' wrote a response that is not JSON (%zu bytes on stdout)",
			       config->handler, r.stdout_len);
		*ret_out = error_json("Runtime.InvalidResponse", msg, tail_lines(&r.tail));
		if (!*ret_out)
			return -ENOMEM;
		*ret_len = strlen(*ret_out);
		return INVOKE_ERROR;
	}
	*ret_out = res;
	*ret_len = n;
	return INVOKE_RESULT;
}

static const struct runtime_ops exec_ops = {
	.name = "exec",
	.init_language = exec_init_language,
	.load = exec_load,
	.invoke = exec_invoke,
};

int main(int argc, char *argv[])
{
	return zygote_main(&exec_ops, argc, argv);
}
