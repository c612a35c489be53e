/* SPDX-License-Identifier: MIT */
/* spore-zygote-provided: Lambda's custom runtimes (Lambda's "provided", "provided.al2",
 * "provided.al2023"). The package holds an executable named bootstrap, written against AWS's
 * Runtime API in any language. The instance, forked from this zygote and sandboxed as every
 * instance, serves that API (version 2018-06-01) over HTTP on 127.0.0.1:9001 of its own network
 * namespace, which holds nothing but its loopback: only the instance and its children can reach
 * it. It starts bootstrap once, in /var/task, with the function's environment plus
 * AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001, and bootstrap loops on
 *
 *   GET  /2018-06-01/runtime/invocation/next           blocks until spored sends an invocation:
 *                                                      200, the event as the body, and the
 *                                                      Lambda-Runtime-Aws-Request-Id,
 *                                                      -Deadline-Ms, -Invoked-Function-Arn and
 *                                                      -Trace-Id headers
 *   POST /2018-06-01/runtime/invocation/{id}/response  202: the result (its bytes as they are)
 *   POST /2018-06-01/runtime/invocation/{id}/error     202: a function error (errorType from the
 *                                                      body, else Lambda-Runtime-Function-Error-
 *                                                      Type), as other runtimes report theirs
 *   POST /2018-06-01/runtime/init/error                202: the initialisation failed
 *
 * 400 answers an unknown request id, 403 a call out of turn (init/error after the first next, a
 * second next while an invocation is out), 413 a response over 6 MB (the invocation then fails
 * with Function.ResponseSizeTooLarge), 404 and 405 anything else. Connections are kept alive;
 * up to CONN_MAX at a time, served one request at a time by this single-threaded process.
 *
 * Life cycle, as on Lambda: the initialisation ends at the first GET next (INST_READY), or fails
 * with init/error or when bootstrap exits first (INST_INIT_ERROR). If bootstrap exits during an
 * invocation, that invocation fails with Runtime.ExitError, whatever it left running is killed,
 * and the next invocation starts bootstrap again (its initialisation counts against that
 * invocation; an error there is that invocation's error). Timeouts are spored's: past the
 * function's timeout the instance is killed and the invocation answered 504. bootstrap's
 * stdout and stderr are the instance's, hence the function's log. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "zygote.h"

extern char **environ;

#define API_PORT 9001
#define API_PREFIX "/2018-06-01/runtime/"
/* As AWS: a synchronous response is at most 6 MB (zygote.c has the same). */
#define RESPONSE_MAX ((size_t)6 * 1024 * 1024)
#define HEAD_MAX ((size_t)64 * 1024)
/* Bytes a connection may send past a request it is waiting on (pipelining behind a GET next). */
#define BACKLOG_MAX ((size_t)1024 * 1024)
#define CONN_MAX 8
/* What a refused client may still send (read and dropped) before its connection is closed. */
#define DRAIN_MAX ((size_t)64 * 1024 * 1024)
/* How much of a non-JSON error body becomes the errorMessage. */
#define MESSAGE_MAX 4096

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct http_request *, http_request_free);

enum phase {
	PHASE_INIT,   /* bootstrap started, no GET next yet */
	PHASE_IDLE,   /* between invocations */
	PHASE_INVOKE, /* an invocation is waiting for its response */
};

struct conn {
	int fd; /* -EBADF: a free slot */
	struct http_reader *reader;
	struct buf in; /* received, not yet fed to the reader */
	bool eof;
	bool draining;	 /* answered with an error and shut down: the rest is dropped */
	size_t drained;
	bool waiting;	 /* holds a GET next not answered yet */
	bool keep_alive; /* of that GET next */
	/* Set by the body-limit callback: the request being read is the response of the
	 * invocation that is out (so a 413 fails that invocation). */
	bool current_response;
};

static struct {
	const struct inst_config *cfg;
	int listen_fd;
	int sig_fd;
	char address[32];      /* AWS_LAMBDA_RUNTIME_API */
	char bootstrap[4096];  /* code_dir/bootstrap */
	pid_t bootstrap_pid;   /* > 0 while it runs */
	enum phase phase;
	struct conn conns[CONN_MAX];
	struct conn *waiter;   /* the connection holding GET next, or NULL */
	/* The invocation out, in PHASE_INVOKE. */
	const char *event;
	size_t event_len;
	const struct inst_invoke *inv;
	bool delivered;
	/* How the phase ended: in PHASE_INIT, 0 (ready) or -1 with out the error JSON; in
	 * PHASE_INVOKE, INVOKE_RESULT or INVOKE_ERROR with out and out_len. */
	bool done;
	int outcome;
	char *out;
	size_t out_len;
} rt = { .listen_fd = -EBADF, .sig_fd = -EBADF };

static int provided_init_language(void)
{
	return 0;
}

/* ---- outcomes ------------------------------------------------------------------------------ */

/* Ends the phase with outcome and out (taken; NULL out: out of memory, -ENOMEM from serve()).
 * The first ending wins. */
static void finish(int outcome, char *out, size_t len)
{
	if (rt.done) {
		free(out);
		return;
	}
	rt.done = true;
	rt.outcome = outcome;
	rt.out = out;
	rt.out_len = out ? len : 0;
}

static void finish_error(int outcome, char *json)
{
	finish(outcome, json, json ? strlen(json) : 0);
}

/* An error JSON from a POST .../error or init/error: errorType from the body, else from the
 * Lambda-Runtime-Function-Error-Type header, else "Unhandled"; errorMessage from the body (a
 * body that is not a JSON object is the message itself, cut at MESSAGE_MAX); stackTrace's
 * strings. NULL on OOM. */
static char *error_from_request(const struct http_request *req)
{
	_cleanup_(cJSON_Deletep) cJSON *j = NULL;
	_cleanup_free_ const char **stack = NULL;
	_cleanup_free_ char *raw = NULL;
	const char *type = http_request_header(req, "Lambda-Runtime-Function-Error-Type");
	const char *message = NULL;
	const cJSON *trace, *e;
	size_t n = 0;

	if (req->body_len > 0)
		j = cJSON_ParseWithLength(req->body, req->body_len);
	if (cJSON_IsObject(j)) {
		const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "errorType"));

		if (t && t[0])
			type = t;
		message = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "errorMessage"));
		trace = cJSON_GetObjectItemCaseSensitive(j, "stackTrace");
		if (cJSON_IsArray(trace) && cJSON_GetArraySize(trace) > 0) {
			stack = calloc((size_t)cJSON_GetArraySize(trace), sizeof(*stack));
			if (!stack)
				return NULL;
			cJSON_ArrayForEach (e, trace)
				if (cJSON_IsString(e))
					stack[n++] = e->valuestring;
		}
	} else if (req->body_len > 0) {
		raw = strndup(req->body, MIN(req->body_len, (size_t)MESSAGE_MAX));
		if (!raw)
			return NULL;
		message = raw;
	}
	if (!type || !type[0])
		type = "Unhandled";
	return runtime_error_json(type, message ?: "", stack, n);
}

/* "Runtime exited with error: exit status 1", as Lambda words it. */
static void describe_exit(int status, char *buf, size_t size)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		(void)snprintf(buf, size, "Runtime exited without providing a reason");
	else if (WIFEXITED(status))
		(void)snprintf(buf, size, "Runtime exited with error: exit status %d",
			       WEXITSTATUS(status));
	else
		(void)snprintf(buf, size, "Runtime exited with error: signal: %s (SIG%s)",
			       strsignal(WTERMSIG(status)), sigabbrev_np(WTERMSIG(status)) ?: "?");
}

/* ---- connections --------------------------------------------------------------------------- */

static void conn_close(struct conn *c)
{
	if (rt.waiter == c)
		rt.waiter = NULL;
	c->fd = safe_close(c->fd);
	c->reader = http_reader_free(c->reader);
	buf_done(&c->in);
	c->eof = c->draining = c->waiting = c->keep_alive = c->current_response = false;
	c->drained = 0;
}

static void conns_close_all(void)
{
	for (size_t i = 0; i < CONN_MAX; i++)
		conn_close(&rt.conns[i]);
}

/* Writes all of iov (n entries, modified) to c, waiting for room when the socket is full. */
static int conn_writev(struct conn *c, struct iovec *iov, size_t n)
{
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = n };

	while (mh.msg_iovlen > 0) {
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);

		if (w < 0) {
			struct pollfd p = { .fd = c->fd, .events = POLLOUT };

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			if (poll(&p, 1, -1) < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		while (w > 0 || (mh.msg_iovlen > 0 && mh.msg_iov->iov_len == 0)) {
			if ((size_t)w >= mh.msg_iov->iov_len) {
				w -= (ssize_t)mh.msg_iov->iov_len;
				mh.msg_iov++;
				mh.msg_iovlen--;
			} else {
				mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + w;
				mh.msg_iov->iov_len -= (size_t)w;
				w = 0;
			}
		}
	}
	return 0;
}

/* Writes one response. Returns 0, -ENOMEM, or another -errno (the connection is broken). */
static int conn_write_response(struct conn *c, int status, const char *body, size_t len,
			       bool keep_alive, const char *extra_headers)
{
	_cleanup_(buf_done) struct buf head = BUF_INIT;
	struct iovec iov[2];
	int r;

	r = http_format_head(&head, status, "application/json", len, keep_alive, extra_headers);
	if (r < 0)
		return r;
	iov[0] = (struct iovec){ .iov_base = head.data, .iov_len = head.len };
	iov[1] = (struct iovec){ .iov_base = (void *)body, .iov_len = len };
	return conn_writev(c, iov, 2);
}

/* Sends one response; closes c when it fails or when the connection is not kept alive.
 * Returns 0 or -ENOMEM (anything else only closes c). */
static int conn_send(struct conn *c, int status, const char *body, size_t len, bool keep_alive,
		     const char *extra_headers)
{
	int r = conn_write_response(c, status, body, len, keep_alive, extra_headers);

	if (r < 0 || !keep_alive)
		conn_close(c);
	return r == -ENOMEM ? r : 0;
}

/* {"errorMessage":message,"errorType":type}; NULL on OOM. */
static char *api_error_json(const char *type, const char *message)
{
	_cleanup_(cJSON_Deletep) cJSON *j = cJSON_CreateObject();

	if (!j || !cJSON_AddStringToObject(j, "errorMessage", message) ||
	    !cJSON_AddStringToObject(j, "errorType", type))
		return NULL;
	return cJSON_PrintUnformatted(j);
}

static int conn_send_error(struct conn *c, int status, const char *type, const char *message,
			   bool keep_alive)
{
	_cleanup_free_ char *s = api_error_json(type, message);

	if (!s)
		return -ENOMEM;
	return conn_send(c, status, s, strlen(s), keep_alive, NULL);
}

/* A request we cannot read on: the answer, then no more requests; what the client still sends
 * is read and dropped until it closes, so that it sees the answer rather than a reset. */
static int conn_reject(struct conn *c, int status, const char *type, const char *message)
{
	_cleanup_free_ char *s = api_error_json(type, message);

	if (!s)
		return -ENOMEM;
	if (conn_write_response(c, status, s, strlen(s), false, NULL) < 0 ||
	    shutdown(c->fd, SHUT_WR) < 0) {
		conn_close(c);
		return 0;
	}
	c->draining = true;
	buf_done(&c->in);
	return 0;
}

static int conn_send_accepted(struct conn *c, bool keep_alive)
{
	static const char ok[] = "{\"status\":\"OK\"}";

	return conn_send(c, 202, ok, sizeof(ok) - 1, keep_alive, NULL);
}

/* The request id in "invocation/{id}/{what}" (rest: the path after API_PREFIX), or NULL. */
static const char *invocation_route(const char *rest, char id[static 64], const char **ret_what)
{
	const char *p, *slash;
	size_t n;

	if (!startswith(rest, "invocation/"))
		return NULL;
	p = rest + strlen("invocation/");
	slash = strchr(p, '/');
	if (!slash)
		return NULL;
	n = (size_t)(slash - p);
	if (n == 0 || n >= 64 || strchr(slash + 1, '/'))
		return NULL;
	memcpy(id, p, n);
	id[n] = 0;
	*ret_what = slash + 1;
	return id;
}

/* The body limit of every request (http_body_limit_fn): also notes whether it is the response
 * of the invocation that is out. */
static size_t body_limit(const char *method, const char *path, void *userdata)
{
	struct conn *c = userdata;
	const char *what = NULL;
	char id[64];

	c->current_response = false;
	if (streq(method, "POST") && startswith(path, API_PREFIX) &&
	    invocation_route(path + strlen(API_PREFIX), id, &what) && streq(what, "response") &&
	    rt.phase == PHASE_INVOKE && rt.delivered && streq(id, rt.inv->request_id))
		c->current_response = true;
	return RESPONSE_MAX;
}

static int handle_next(struct conn *c, const struct http_request *req)
{
	if (rt.waiter)
		return conn_send_error(c, 403, "Runtime.InvalidStateTransition",
				       "another connection is already waiting for the next "
				       "invocation",
				       req->keep_alive);
	if (rt.phase == PHASE_INVOKE && rt.delivered && !rt.done)
		return conn_send_error(c, 403, "Runtime.InvalidStateTransition",
				       "the invocation that is out has no response or error yet",
				       req->keep_alive);
	c->waiting = true;
	c->keep_alive = req->keep_alive;
	rt.waiter = c;
	if (rt.phase == PHASE_INIT)
		finish(0, NULL, 0); /* initialised */
	return 0;
}

static int handle_result(struct conn *c, struct http_request *req, const char *id,
			 bool is_error)
{
	char *out;

	if (rt.phase != PHASE_INVOKE || !rt.delivered || rt.done || !streq(id, rt.inv->request_id))
		return conn_send_error(c, 400, "InvalidRequestID", "Invalid request ID",
				       req->keep_alive);
	if (is_error) {
		out = error_from_request(req);
		if (!out)
			return -ENOMEM;
		finish_error(INVOKE_ERROR, out);
	} else {
		out = req->body ? TAKE_PTR(req->body) : strdup("");
		if (!out)
			return -ENOMEM;
		finish(INVOKE_RESULT, out, req->body_len);
	}
	return conn_send_accepted(c, req->keep_alive);
}

static int handle_init_error(struct conn *c, const struct http_request *req)
{
	char *out;

	if (rt.phase != PHASE_INIT || rt.done)
		return conn_send_error(c, 403, "Runtime.InvalidStateTransition",
				       "init/error after the initialisation ended",
				       req->keep_alive);
	out = error_from_request(req);
	if (!out)
		return -ENOMEM;
	finish_error(-1, out);
	return conn_send_accepted(c, req->keep_alive);
}

/* One whole request. Returns 0, or -ENOMEM. */
static int handle_request(struct conn *c, struct http_request *req)
{
	const char *rest, *what = NULL;
	bool get = streq(req->method, "GET"), post = streq(req->method, "POST");
	char id[64];

	if (!startswith(req->path, API_PREFIX))
		return conn_send_error(c, 404, "InvalidRequest", "Unknown path", req->keep_alive);
	rest = req->path + strlen(API_PREFIX);
	if (streq(rest, "invocation/next")) {
		if (!get)
			return conn_send_error(c, 405, "InvalidRequest", "Method not allowed",
					       req->keep_alive);
		return handle_next(c, req);
	}
	if (streq(rest, "init/error")) {
		if (!post)
			return conn_send_error(c, 405, "InvalidRequest", "Method not allowed",
					       req->keep_alive);
		return handle_init_error(c, req);
	}
	if (invocation_route(rest, id, &what) && (streq(what, "response") || streq(what, "error"))) {
		if (!post)
			return conn_send_error(c, 405, "InvalidRequest", "Method not allowed",
					       req->keep_alive);
		return handle_result(c, req, id, streq(what, "error"));
	}
	return conn_send_error(c, 404, "InvalidRequest", "Unknown path", req->keep_alive);
}

/* Feeds what c has received to its reader and handles each whole request, until c waits on a
 * GET next, is closed, or has no more bytes. Returns 0, or -ENOMEM. */
static int conn_process(struct conn *c)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	int r;

	while (c->fd >= 0 && !c->waiting && !c->draining && c->in.len > 0) {
		_cleanup_(http_request_freep) struct http_request *req = NULL;
		const char *message = NULL;
		bool expect = false;
		int status = 0;
		ssize_t n;

		n = http_reader_feed(c->reader, c->in.data, c->in.len, &req, &expect, &status,
				     &message);
		if (n < 0) {
			bool big = status == 413 && c->current_response;

			r = conn_reject(c, status ?: 400,
					status == 413 ? "RequestEntityTooLarge" : "InvalidRequest",
					message ?: "Bad request");
			if (big) {
				char *e = runtime_error_jsonf(
					"Function.ResponseSizeTooLarge",
					"Response payload size exceeded maximum allowed payload size "
					"(%zu bytes).",
					RESPONSE_MAX);
				if (!e)
					return -ENOMEM;
				finish_error(INVOKE_ERROR, e);
			}
			return n == -ENOMEM ? -ENOMEM : r;
		}
		buf_consume(&c->in, (size_t)n);
		if (expect) {
			struct iovec iov = { .iov_base = (void *)cont, .iov_len = sizeof(cont) - 1 };

			if (conn_writev(c, &iov, 1) < 0) {
				conn_close(c);
				return 0;
			}
		}
		if (req) {
			r = handle_request(c, req);
			if (r < 0)
				return r;
		} else if (n == 0)
			break;
	}
	if (c->fd >= 0 && c->eof && !c->waiting && !c->draining)
		conn_close(c); /* its last request is answered, or half-sent and never will be */
	return 0;
}

/* Reads and drops what a rejected client still sends; closes c at its EOF. */
static void conn_drain(struct conn *c)
{
	char scratch[65536];

	for (;;) {
		ssize_t n = recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0 || (c->drained += (size_t)n) > DRAIN_MAX) {
			conn_close(c);
			return;
		}
	}
}

/* Reads what c has (its fd polled readable). Returns 0, or -ENOMEM. */
static int conn_read(struct conn *c)
{
	if (c->draining) {
		conn_drain(c);
		return 0;
	}
	for (;;) {
		ssize_t n;

		if (c->in.len > HEAD_MAX + RESPONSE_MAX + BACKLOG_MAX) {
			conn_close(c); /* far past any request we take */
			return 0;
		}
		if (buf_reserve(&c->in, 65536) < 0)
			return -ENOMEM;
		n = recv(c->fd, c->in.data + c->in.len, 65536, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			conn_close(c); /* reset */
			return 0;
		}
		if (n == 0) {
			c->eof = true;
			break;
		}
		c->in.len += (size_t)n;
		if (c->waiting && c->in.len > BACKLOG_MAX) {
			conn_close(c);
			return 0;
		}
	}
	if (c->eof && c->waiting) {
		conn_close(c); /* gave up waiting for the next invocation */
		return 0;
	}
	return conn_process(c);
}

static int conn_accept(void)
{
	struct conn *c = NULL;
	int fd, one = 1;

	for (size_t i = 0; i < CONN_MAX && !c; i++)
		if (rt.conns[i].fd < 0)
			c = &rt.conns[i];
	if (!c)
		return 0;
	fd = accept4(rt.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return errno == ENOMEM || errno == ENOBUFS ? -ENOMEM : 0;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->reader = http_reader_new(HEAD_MAX, body_limit, c);
	if (!c->reader) {
		(void)close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	return 0;
}

/* ---- bootstrap ----------------------------------------------------------------------------- */

/* Kills whatever bootstrap left running (and bootstrap), reaps it, drops every connection. As
 * PID 1 of the instance's own pid namespace, kill(-1) reaches exactly the instance's other
 * processes; without the sandbox, bootstrap's process group is what we can name. */
static void reset_processes(void)
{
	bool pid1 = getpid() == 1;

	if (pid1)
		(void)kill(-1, SIGKILL);
	else if (rt.bootstrap_pid > 0)
		(void)kill(-rt.bootstrap_pid, SIGKILL);
	for (;;) {
		pid_t p = waitpid(-1, NULL, pid1 ? 0 : WNOHANG);

		if (p > 0 || (p < 0 && errno == EINTR))
			continue;
		break;
	}
	rt.bootstrap_pid = 0;
	conns_close_all();
}

/* Reaps exited children; returns the wait status of bootstrap if it was one of them, else -1. */
static int reap(void)
{
	struct signalfd_siginfo si;
	int status, found = -1;
	pid_t p;

	while (read(rt.sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		;
	while ((p = waitpid(-1, &status, WNOHANG)) > 0 || (p < 0 && errno == EINTR))
		if (p > 0 && p == rt.bootstrap_pid) {
			rt.bootstrap_pid = 0;
			found = status;
		}
	return found;
}

static void on_bootstrap_exit(int status)
{
	char why[128];

	describe_exit(status, why, sizeof(why));
	fprintf(stderr, "spore: bootstrap: %s\n", why);
	if (rt.phase == PHASE_INIT)
		finish_error(-1, runtime_error_jsonf("Runtime.ExitError", "Error: %s", why));
	else if (rt.phase == PHASE_INVOKE)
		finish_error(INVOKE_ERROR,
			     runtime_error_jsonf("Runtime.ExitError", "RequestId: %s Error: %s",
						 rt.inv->request_id, why));
}

/* Starts bootstrap: posix_spawn(), which glibc does with CLONE_VM | CLONE_VFORK, so the
 * instance's memory (prefaulted in the spare) is not copied only to be dropped by the exec. It
 * gets its own process group, an empty signal mask and SIGPIPE back to its default. Returns 0,
 * or -errno with *ret_error set (NULL on OOM). */
static int bootstrap_start(char **ret_error)
{
	char *const argv[] = { rt.bootstrap, NULL };
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	pid_t pid;
	int r;

	(void)sigemptyset(&none);
	(void)sigemptyset(&dfl);
	(void)sigaddset(&dfl, SIGPIPE);
	r = posix_spawnattr_init(&attr);
	if (r == 0)
		r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
							    POSIX_SPAWN_SETSIGDEF);
	if (r == 0)
		r = posix_spawnattr_setpgroup(&attr, 0);
	if (r == 0)
		r = posix_spawnattr_setsigmask(&attr, &none);
	if (r == 0)
		r = posix_spawnattr_setsigdefault(&attr, &dfl);
	(void)fflush(stdout);
	(void)fflush(stderr);
	if (r == 0)
		r = posix_spawn(&pid, rt.bootstrap, NULL, &attr, argv, environ);
	(void)posix_spawnattr_destroy(&attr);
	if (r == ENOENT)
		*ret_error = runtime_error_jsonf("Runtime.InvalidEntrypoint",
						 "Couldn't find valid bootstrap(s): [%s]",
						 rt.bootstrap);
	else if (r != 0)
		*ret_error = runtime_error_jsonf("Runtime.InvalidEntrypoint", "fork/exec %s: %s",
						 rt.bootstrap, strerror(r));
	if (r != 0)
		return -r;
	rt.bootstrap_pid = pid;
	return 0;
}

/* ---- the loop ------------------------------------------------------------------------------ */

/* Hands the invocation to the connection waiting on GET next, if both are there. */
static int deliver(void)
{
	char extra[1024], trace[96];
	unsigned char rnd[20] = { 0 };
	const char *arn = rt.cfg->invoked_function_arn;
	struct conn *c = rt.waiter;
	int n;

	if (rt.phase != PHASE_INVOKE || rt.delivered || rt.done || !c)
		return 0;
	rt.waiter = NULL;
	c->waiting = false;
	rt.delivered = true;
	/* An X-Ray trace header of the documented shape (nothing samples it). */
	(void)!getrandom(rnd, sizeof(rnd), GRND_NONBLOCK);
	n = snprintf(trace, sizeof(trace), "Root=1-%08" PRIx64 "-", (uint64_t)(time(NULL)));
	for (size_t i = 0; i < 12; i++)
		n += snprintf(trace + n, sizeof(trace) - (size_t)n, "%02x", rnd[i]);
	n += snprintf(trace + n, sizeof(trace) - (size_t)n, ";Parent=");
	for (size_t i = 12; i < 20; i++)
		n += snprintf(trace + n, sizeof(trace) - (size_t)n, "%02x", rnd[i]);
	(void)snprintf(trace + n, sizeof(trace) - (size_t)n, ";Sampled=0");
	if (!arn || strpbrk(arn, "\r\n"))
		arn = "";
	n = snprintf(extra, sizeof(extra),
		     "Lambda-Runtime-Aws-Request-Id: %s\r\n"
		     "Lambda-Runtime-Deadline-Ms: %" PRId64 "\r\n"
		     "Lambda-Runtime-Invoked-Function-Arn: %s\r\n"
		     "Lambda-Runtime-Trace-Id: %s\r\n",
		     rt.inv->request_id, rt.inv->deadline_ms, arn, trace);
	if (n < 0 || (size_t)n >= sizeof(extra))
		n = snprintf(extra, sizeof(extra),
			     "Lambda-Runtime-Aws-Request-Id: %s\r\n"
			     "Lambda-Runtime-Deadline-Ms: %" PRId64 "\r\n",
			     rt.inv->request_id, rt.inv->deadline_ms);
	n = conn_send(c, 200, rt.event, rt.event_len, c->keep_alive, extra);
	if (n < 0)
		return n;
	/* Bytes it pipelined behind its GET next. */
	return c->fd >= 0 ? conn_process(c) : 0;
}

/* Serves the Runtime API until the phase is done (rt.done). Returns 0, or -ENOMEM. */
static int serve(void)
{
	while (!rt.done) {
		struct pollfd p[2 + CONN_MAX];
		size_t idx[CONN_MAX], n = 2;
		bool room = false;
		int r, status;

		r = deliver();
		if (r < 0)
			return r;
		if (rt.done)
			break;
		for (size_t i = 0; i < CONN_MAX; i++) {
			if (rt.conns[i].fd < 0) {
				room = true;
				continue;
			}
			idx[n - 2] = i;
			p[n++] = (struct pollfd){ .fd = rt.conns[i].fd, .events = POLLIN };
		}
		p[0] = (struct pollfd){ .fd = rt.sig_fd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = room ? rt.listen_fd : -1, .events = POLLIN };
		if (poll(p, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* Requests first: what bootstrap sent before it exited still counts. */
		for (size_t k = 2; k < n; k++)
			if (p[k].revents && rt.conns[idx[k - 2]].fd >= 0) {
				r = conn_read(&rt.conns[idx[k - 2]]);
				if (r < 0)
					return r;
			}
		if (p[1].revents) {
			r = conn_accept();
			if (r < 0)
				return r;
		}
		if (p[0].revents) {
			status = reap();
			if (status >= 0)
				on_bootstrap_exit(status);
		}
	}
	return rt.out || rt.outcome == 0 ? 0 : -ENOMEM;
}

/* Starts bootstrap and serves until it asks for its first invocation. Returns 0, or -errno
 * with *ret_error the init error (NULL on OOM). */
static int init_run(char **ret_error)
{
	int r;

	reset_processes();
	rt.phase = PHASE_INIT;
	rt.done = false;
	rt.out = NULL;
	rt.outcome = 0;
	r = bootstrap_start(ret_error);
	if (r < 0) {
		rt.phase = PHASE_IDLE;
		return r;
	}
	r = serve();
	rt.phase = PHASE_IDLE;
	if (r < 0) {
		*ret_error = NULL;
		return r;
	}
	if (rt.outcome < 0) {
		*ret_error = TAKE_PTR(rt.out);
		reset_processes(); /* as Lambda: a runtime that reported init/error should exit */
		return -EINVAL;
	}
	return 0;
}

/* Without the sandbox, at the instance's exit: nothing else ends bootstrap's process group (in
 * the sandbox, the kernel kills what is left in the pid namespace when its PID 1 exits). */
static void bootstrap_kill_at_exit(void)
{
	if (rt.bootstrap_pid > 0)
		(void)kill(-rt.bootstrap_pid, SIGKILL);
}

/* The listening socket: 127.0.0.1:9001 in the instance's own network namespace; without the
 * sandbox (the host's), a free port, so that instances do not collide. */
static int api_listen(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(getpid() == 1 ? API_PORT : 0) };
	socklen_t len = sizeof(a);
	_cleanup_close_ int fd = -EBADF;
	int one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, CONN_MAX) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		return -errno;
	(void)snprintf(rt.address, sizeof(rt.address), "127.0.0.1:%u", ntohs(a.sin_port));
	return TAKE_FD(fd);
}

static int provided_load(const struct inst_config *cfg, char **ret_error)
{
	sigset_t mask;
	int r;

	rt.cfg = cfg;
	for (size_t i = 0; i < CONN_MAX; i++)
		rt.conns[i] = (struct conn){ .fd = -EBADF, .in = BUF_INIT };
	if ((size_t)snprintf(rt.bootstrap, sizeof(rt.bootstrap), "%s/bootstrap", cfg->code_dir) >=
	    sizeof(rt.bootstrap)) {
		*ret_error = runtime_error_jsonf("Runtime.InvalidEntrypoint", "code_dir too long");
		return -ENAMETOOLONG;
	}
	/* A client that hangs up: write() fails with EPIPE, nothing dies. */
	(void)signal(SIGPIPE, SIG_IGN);
	(void)sigemptyset(&mask);
	(void)sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
	    (rt.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		r = -errno;
		*ret_error = runtime_error_jsonf("Runtime.Unknown", "signalfd(): %s", strerror(-r));
		return r;
	}
	rt.listen_fd = api_listen();
	if (rt.listen_fd < 0) {
		r = rt.listen_fd;
		*ret_error = runtime_error_jsonf("Runtime.Unknown",
						 "cannot serve the Runtime API on "
						 "127.0.0.1:%d: %s",
						 API_PORT, strerror(-r));
		return r;
	}
	if (getpid() != 1 && atexit(bootstrap_kill_at_exit) != 0) {
		*ret_error = NULL;
		return -ENOMEM;
	}
	if (setenv("AWS_LAMBDA_RUNTIME_API", rt.address, 1) < 0) {
		*ret_error = NULL;
		return -ENOMEM;
	}
	return init_run(ret_error);
}

static int provided_invoke(const char *event, size_t event_len, const struct inst_invoke *inv,
			   char **ret_out, size_t *ret_len)
{
	int r, status;

	/* bootstrap exited since the last invocation (or during it): start it again. */
	status = reap();
	if (status >= 0) {
		char why[128];

		describe_exit(status, why, sizeof(why));
		fprintf(stderr, "spore: bootstrap: %s; starting it again\n", why);
	}
	if (rt.bootstrap_pid <= 0) {
		char *error = NULL;

		r = init_run(&error);
		if (r < 0) {
			if (!error)
				return -ENOMEM;
			*ret_out = error;
			*ret_len = strlen(error);
			return INVOKE_ERROR;
		}
	}

	rt.phase = PHASE_INVOKE;
	rt.event = event;
	rt.event_len = event_len;
	rt.inv = inv;
	rt.delivered = false;
	rt.done = false;
	rt.out = NULL;
	rt.outcome = 0;
	r = serve();
	rt.phase = PHASE_IDLE;
	rt.event = NULL;
	rt.inv = NULL;
	if (r < 0) {
		free(rt.out);
		rt.out = NULL;
		return r;
	}
	if (rt.bootstrap_pid <= 0)
		reset_processes(); /* it exited: what it left goes too, before the next init */
	*ret_out = TAKE_PTR(rt.out);
	*ret_len = rt.out_len;
	return rt.outcome;
}

static const struct runtime_ops provided_ops = {
	.name = "provided",
	.init_language = provided_init_language,
	.load = provided_load,
	.invoke = provided_invoke,
};

int main(int argc, char *argv[])
{
	return zygote_main(&provided_ops, argc, argv);
}
