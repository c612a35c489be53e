/* SPDX-License-Identifier: MIT */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "loop.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/log.h"

/* Unparsed pipelined bytes held while a request is active; beyond this we stop reading. */
#define PENDING_PAUSE (1u << 20)
/* Answers not yet sent; beyond this we stop reading and answering until the client catches up. */
#define OUT_PAUSE (1u << 20)
/* A streaming answer (logs?follow=1) whose reader falls this far behind is cut off. */
#define STREAM_BACKLOG_MAX (8u << 20)
/* A request body must keep arriving; a client stuck mid-body this long is closed. */
#define BODY_TIMEOUT_US (60u * 1000000u)
#define ACCEPT_RETRY_US (100u * 1000u)
#define LINGER_MAX 256
#define LINGER_US (2u * 1000u * 1000u)

struct listener {
	struct server *server;
	int fd;
	bool is_unix;
	char *unix_path;
	uint64_t token;
	struct loop_timer retry;
	struct listener *next;
};

struct conn {
	struct server *server;
	int fd;
	bool is_unix;
	unsigned refs;

	uint64_t recv_token;
	uint64_t send_token;
	bool recv_armed;
	bool send_inflight;
	bool peer_eof;
	bool closed;

	struct http_reader *reader;
	struct buf pending; /* received, not yet parsed (pipelined while a request is active) */
	struct buf out;     /* being sent */
	size_t out_off;
	struct buf queued;  /* waiting for the current send to finish */

	bool active;        /* a request is being handled */
	bool head;          /* the active request is a HEAD: no body in the answer */
	bool streaming;
	bool keep_alive;    /* of the active request */
	bool close_after_send;
	uint64_t since_us;  /* start of the current phase, for timeouts */

	void (*abort_fn)(void *);
	void *abort_ud;

	/* Pipelined requests are taken up on the next loop turn, never from inside the answer to
	 * the previous one: that keeps the stack flat and callers' state intact. */
	struct loop_timer kick;

	struct conn *prev, *next;
};

struct server {
	struct loop *loop;
	struct server_limits lim;
	server_request_fn fn;
	http_body_limit_fn body_limit;
	void *userdata;
	struct listener *listeners;
	struct conn *conns;
	size_t n_conns;
	/* Refused connections, closed once the client's request was read (a close with unread
	 * input sends a reset, and the client would never see the 503). */
	struct lingering {
		int fd;
		uint64_t until_us;
	} linger[LINGER_MAX];
	size_t n_linger;
	/* Kept open to be given up when accept() fails with EMFILE: room to refuse the client
	 * with a 503 instead of leaving it in the kernel's queue. */
	int reserve_fd;
	uint64_t accept_warned_us;
	bool draining; /* server_drain(): every answer is the connection's last */
	/* Accepted connections waiting to be set up, ACCEPTS_PER_TURN a loop turn (see
	 * on_accept()): a FIFO of fds in pend[head..len). */
	struct pending_accept {
		int fd;
		bool is_unix;
	} *pend;
	size_t pend_head, pend_len, pend_cap;
	struct loop_timer accept_turn;
};

/* New connections set up per loop turn. A storm of them (1,000 clients connecting at once)
 * otherwise went through the loop ahead of everything else, their requests behind them: the
 * worst /healthz of an established connection during such a burst was 8-138 ms (3 runs),
 * 9-13 ms paced. As nginx's default (one accept per event), connections already served keep
 * their turn. */
#define ACCEPTS_PER_TURN 16u

static void conn_close(struct conn *c);
static void conn_arm_recv(struct conn *c);
static void conn_kick(struct conn *c);
static void conn_feed(struct conn *c, const char *data, size_t len);

static size_t conn_backlog(const struct conn *c)
{
	return c->out.len - c->out_off + c->queued.len;
}

bool conn_is_unix(const struct conn *c)
{
	return c->is_unix;
}

void conn_peer_ip(const struct conn *c, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	snprintf(buf, size, "%s", c->is_unix ? "unix" : "");
	if (c->is_unix || c->fd < 0 || getpeername(c->fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET)
		(void)inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf, (socklen_t)size);
	else if (ss.ss_family == AF_INET6)
		(void)inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, buf,
				(socklen_t)size);
}

bool conn_alive(const struct conn *c)
{
	return !c->closed;
}

size_t server_connection_count(const struct server *s)
{
	return s->n_conns + (s->pend_len - s->pend_head);
}

struct conn *conn_ref(struct conn *c)
{
	c->refs++;
	return c;
}

static void conn_destroy(struct conn *c)
{
	http_reader_free(c->reader);
	buf_done(&c->pending);
	buf_done(&c->out);
	buf_done(&c->queued);
	free(c);
}

struct conn *conn_unref(struct conn *c)
{
	if (!c)
		return NULL;
	if (--c->refs == 0)
		conn_destroy(c);
	return NULL;
}

void conn_set_abort(struct conn *c, void (*fn)(void *), void *userdata)
{
	c->abort_fn = fn;
	c->abort_ud = userdata;
}

static void conn_close(struct conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	struct server *s = c->server;
	loop_timer_stop(s->loop, &c->kick);
	loop_op_free(s->loop, c->recv_token, NULL);
	c->recv_token = 0;
	/* The kernel may still read the send buffer: hand it to the loop. */
	loop_op_free(s->loop, c->send_token, c->send_inflight ? TAKE_PTR(c->out.data) : NULL);
	c->send_token = 0;
	buf_done(&c->out);
	c->fd = safe_close(c->fd);

	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;

	if (c->active && c->abort_fn) {
		void (*fn)(void *) = c->abort_fn;
		c->abort_fn = NULL;
		fn(c->abort_ud);
	}
	conn_unref(c);
}

static void conn_send_next(struct conn *c)
{
	if (c->closed || c->send_inflight)
		return;
	if (c->out_off >= c->out.len) {
		buf_reset(&c->out);
		c->out_off = 0;
		if (c->queued.len == 0) {
			if (c->close_after_send && !c->active)
				conn_close(c);
			return;
		}
		struct buf t = c->out;
		c->out = c->queued;
		c->queued = t;
	}
	struct io_uring_sqe *sqe = loop_sqe(c->server->loop, c->send_token);
	if (!sqe) {
		conn_close(c);
		return;
	}
	io_uring_prep_send(sqe, c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
			   MSG_NOSIGNAL);
	c->send_inflight = true;
}

static void on_send(void *ud, int res, uint32_t flags)
{
	struct conn *c = ud;
	(void)flags;
	c->send_inflight = false;
	if (res < 0) {
		conn_close(c);
		return;
	}
	c->out_off += (size_t)res;
	bool was_paused = conn_backlog(c) + (size_t)res >= OUT_PAUSE;
	conn_ref(c); /* conn_send_next() may close it */
	conn_send_next(c);
	if (!c->closed && was_paused && conn_backlog(c) < OUT_PAUSE)
		conn_kick(c);
	conn_unref(c);
}

static int conn_queue(struct conn *c, const void *data, size_t len)
{
	if (c->closed)
		return -EPIPE;
	int r = c->send_inflight ? buf_append(&c->queued, data, len) : buf_append(&c->out, data, len);
	if (r < 0)
		return r;
	return 0;
}

/* Between requests: take up the next pipelined one, close a half-closed connection that has
 * been answered, or read more, as the backlog allows. */
static void conn_resume(struct conn *c)
{
	if (c->closed || c->active || c->close_after_send)
		return;
	if (c->pending.len > 0 && conn_backlog(c) < OUT_PAUSE) {
		struct buf p = c->pending;
		c->pending = (struct buf)BUF_INIT;
		conn_feed(c, p.data, p.len);
		buf_done(&p);
		if (c->closed || c->active || c->close_after_send)
			return;
	}
	if (c->peer_eof && c->pending.len == 0) {
		c->close_after_send = true;
		conn_send_next(c);
		return;
	}
	if (!c->recv_armed && !c->peer_eof && c->pending.len < PENDING_PAUSE &&
	    conn_backlog(c) < OUT_PAUSE)
		conn_arm_recv(c);
}

static void on_kick(struct loop_timer *t)
{
	struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, kick));
	conn_ref(c);
	conn_resume(c);
	conn_unref(c);
}

static void conn_kick(struct conn *c)
{
	if (!c->closed && !loop_timer_armed(&c->kick))
		(void)loop_timer_start(c->server->loop, &c->kick, 0);
}

static void conn_finish_request(struct conn *c)
{
	c->active = false;
	c->head = false;
	c->streaming = false;
	c->abort_fn = NULL;
	c->abort_ud = NULL;
	c->since_us = now_us();
	if (!c->keep_alive)
		c->close_after_send = true;
	conn_ref(c);
	conn_send_next(c);
	/* Anything to take up? Else the armed receive (or its absence) stands. */
	if (!c->closed && !c->close_after_send &&
	    (c->pending.len > 0 || c->peer_eof || !c->recv_armed))
		conn_kick(c);
	conn_unref(c);
}

/* The request is being answered: a failure now closes without calling the abort callback. */
static void conn_fail_answer(struct conn *c)
{
	c->abort_fn = NULL;
	c->abort_ud = NULL;
	c->active = false;
	conn_close(c);
}

int conn_respond(struct conn *c, int status, const char *content_type, const void *body,
		 size_t len, const char *extra_headers)
{
	if (c->closed || !c->active)
		return -EPIPE;
	if (c->server->draining)
		c->keep_alive = false;
	struct buf head = BUF_INIT;
	/* After a half-close, the last answer says it closes. */
	bool keep = c->keep_alive && !(c->peer_eof && c->pending.len == 0);
	int r = http_format_head(&head, status, content_type, len, keep, extra_headers);
	if (r >= 0)
		r = conn_queue(c, head.data, head.len);
	if (r >= 0 && len > 0 && !c->head)
		r = conn_queue(c, body, len);
	buf_done(&head);
	if (r < 0) {
		conn_fail_answer(c);
		return r;
	}
	conn_finish_request(c);
	return 0;
}

int conn_stream_begin(struct conn *c, int status, const char *content_type,
		      const char *extra_headers)
{
	if (c->closed || !c->active)
		return -EPIPE;
	struct buf head = BUF_INIT;
	int r = http_format_head_chunked(&head, status, content_type, extra_headers);
	if (r >= 0)
		r = conn_queue(c, head.data, head.len);
	buf_done(&head);
	if (r < 0)
		return r;
	c->streaming = true;
	conn_send_next(c);
	return 0;
}

int conn_stream_write(struct conn *c, const void *data, size_t len)
{
	if (c->closed || !c->streaming)
		return -EPIPE;
	if (len == 0)
		return 0;
	if (conn_backlog(c) > STREAM_BACKLOG_MAX) {
		/* The reader is not keeping up: cut it off rather than buffer without end. */
		conn_fail_answer(c);
		return -ENOBUFS;
	}
	struct buf chunk = BUF_INIT;
	int r = http_format_chunk(&chunk, data, len);
	if (r >= 0)
		r = conn_queue(c, chunk.data, chunk.len);
	buf_done(&chunk);
	if (r < 0)
		return r;
	conn_send_next(c);
	return 0;
}

int conn_stream_end(struct conn *c)
{
	if (c->closed || !c->streaming)
		return -EPIPE;
	struct buf chunk = BUF_INIT;
	int r = http_format_chunk(&chunk, NULL, 0);
	if (r >= 0)
		r = conn_queue(c, chunk.data, chunk.len);
	buf_done(&chunk);
	if (r < 0) {
		conn_fail_answer(c);
		return r;
	}
	conn_finish_request(c);
	return 0;
}

static void conn_reject(struct conn *c, int status, const char *message)
{
	/* Malformed input: answer and close. */
	const char *kind = status == 431 ? "header_too_large"
			   : status == 413 ? "payload_too_large"
			   : status == 501 ? "not_implemented"
			   : status == 505 ? "http_version_not_supported"
			   : status == 503 ? "unavailable"
			   : status >= 500 ? "internal"
					   : "bad_request";
	char body[512];
	int n = snprintf(body, sizeof(body), "{\"error\":\"%s\",\"message\":\"%s\"}\n", kind, message);
	c->active = true;
	c->keep_alive = false;
	c->close_after_send = true;
	(void)conn_respond(c, status, "application/json", body, (size_t)n, NULL);
}

/* Feeds bytes to the parser: dispatches at most one request; the rest stays in pending. */
static void conn_feed(struct conn *c, const char *data, size_t len)
{
	while (len > 0 && !c->closed && !c->active && !c->close_after_send) {
		if (http_reader_state(c->reader) == HTTP_READER_IDLE)
			c->since_us = now_us();
		struct http_request *req = NULL;
		bool cont = false;
		int status = 0;
		const char *message = NULL;
		int r = http_reader_feed(c->reader, data, len, &req, &cont, &status, &message);
		if (r < 0) {
			conn_reject(c, status ? status : 400, message ? message : "malformed request");
			return;
		}
		data += r;
		len -= (size_t)r;
		if (cont && !req) {
			static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
			(void)conn_queue(c, msg, sizeof(msg) - 1);
			conn_send_next(c);
		}
		if (req) {
			c->active = true;
			c->head = streq(req->method, "HEAD");
			c->keep_alive = req->keep_alive;
			if (len > 0 && buf_append(&c->pending, data, len) < 0) {
				http_request_free(req);
				conn_close(c);
				return;
			}
			len = 0;
			c->server->fn(c, req, c->server->userdata);
			return;
		}
		if (r == 0)
			break;
	}
	if (len > 0 && !c->closed && buf_append(&c->pending, data, len) < 0)
		conn_close(c);
}

static void on_recv(void *ud, int res, uint32_t flags)
{
	struct conn *c = ud;
	struct loop *l = c->server->loop;
	c->recv_armed = false;
	if (res == -ENOBUFS) {
		conn_arm_recv(c);
		return;
	}
	if (res <= 0) {
		if (flags & IORING_CQE_F_BUFFER)
			loop_buffer_recycle(l, flags);
		if (res == 0 && (c->active || conn_backlog(c) > 0 || c->pending.len > 0)) {
			/* Half-close: answer what was asked, then close. */
			c->peer_eof = true;
			if (!c->active)
				conn_kick(c);
			return;
		}
		conn_close(c);
		return;
	}
	conn_ref(c);
	/* Bytes behind an active or not yet taken up request wait their turn. */
	if (c->active || c->pending.len > 0 || loop_timer_armed(&c->kick)) {
		if (buf_append(&c->pending, loop_buffer(l, flags), (size_t)res) < 0)
			conn_close(c);
	} else
		conn_feed(c, loop_buffer(l, flags), (size_t)res);
	loop_buffer_recycle(l, flags);
	if (!c->closed && !c->recv_armed && c->pending.len < PENDING_PAUSE &&
	    conn_backlog(c) < OUT_PAUSE && !c->close_after_send)
		conn_arm_recv(c);
	conn_unref(c);
}

static void conn_arm_recv(struct conn *c)
{
	if (c->closed || c->recv_armed)
		return;
	struct io_uring_sqe *sqe = loop_sqe(c->server->loop, c->recv_token);
	if (!sqe) {
		conn_close(c);
		return;
	}
	io_uring_prep_recv(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = loop_buffer_group(c->server->loop);
	c->recv_armed = true;
}

static void listener_arm(struct listener *ls);

static void listener_retry(struct loop_timer *t)
{
	struct listener *ls = (struct listener *)((char *)t - offsetof(struct listener, retry));
	listener_arm(ls);
}

/* Reads and drops what the client sent; true when it is done (EOF or an error). */
static bool drain(int fd)
{
	char buf[4096];
	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0)
			continue;
		return !(n < 0 && (errno == EAGAIN || errno == EINTR));
	}
	return false;
}

/* Answers 503 on a connection spored will not serve, and closes it once the client's request
 * is read (or after LINGER_US), so that the client gets the answer rather than a reset. */
static void reject_fd(struct server *s, int fd, const char *why)
{
	char body[160], msg[400];
	int bl = snprintf(body, sizeof(body), "{\"error\":\"unavailable\",\"message\":\"%s, try again\"}\n",
			  why);
	int ml = snprintf(msg, sizeof(msg),
			  "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
			  "Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
			  bl, body);
	(void)send(fd, msg, (size_t)ml, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)shutdown(fd, SHUT_WR);
	if (drain(fd) || s->n_linger == LINGER_MAX) {
		safe_close(fd);
		return;
	}
	s->linger[s->n_linger++] = (struct lingering){ fd, now_us() + LINGER_US };
}

static void linger_tick(struct server *s, bool all)
{
	uint64_t now = now_us();
	for (size_t i = 0; i < s->n_linger;)
		if (all || drain(s->linger[i].fd) || now >= s->linger[i].until_us) {
			safe_close(s->linger[i].fd);
			s->linger[i] = s->linger[--s->n_linger];
		} else
			i++;
}

/* Out of fds: give up the reserve fd, take the waiting clients off the queue with a 503 each,
 * take the reserve back. */
static void accept_shed(struct server *s, struct listener *ls)
{
	s->reserve_fd = safe_close(s->reserve_fd);
	for (int i = 0; i < 64; i++) {
		int fd = accept4(ls->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			break;
		/* No fd to linger with: answer, drain what is there, close. */
		char body[] = "{\"error\":\"unavailable\",\"message\":\"spored is out of file "
			      "descriptors, try again\"}\n";
		char msg[300];
		int ml = snprintf(msg, sizeof(msg),
				  "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
				  "Content-Length: %zu\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
				  sizeof(body) - 1, body);
		(void)send(fd, msg, (size_t)ml, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)shutdown(fd, SHUT_WR);
		(void)drain(fd);
		safe_close(fd);
	}
	s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void conn_setup(struct server *s, int fd, bool is_unix);
static void on_accept_turn(struct loop_timer *t);

static void on_accept(void *ud, int res, uint32_t flags)
{
	struct listener *ls = ud;
	struct server *s = ls->server;
	if (res < 0) {
		if (res == -ECANCELED)
			return;
		if (res == -EMFILE || res == -ENFILE)
			accept_shed(s, ls);
		uint64_t now = now_us();
		if (now - s->accept_warned_us >= 1000000u) {
			s->accept_warned_us = now;
			log_warning_errno(res, "server: accept failed: %m; refusing new connections "
					  "with 503 and retrying");
		}
		if (!(flags & IORING_CQE_F_MORE))
			(void)loop_timer_start(s->loop, &ls->retry, now + ACCEPT_RETRY_US);
		return;
	}
	if (!(flags & IORING_CQE_F_MORE))
		listener_arm(ls);
	/* Past max_connections, refused at once, as before the pacing: no fd waits for that. */
	if (server_connection_count(s) >= s->lim.max_connections) {
		reject_fd(s, res, "too many connections");
		return;
	}
	if (s->pend_len == s->pend_cap) {
		if (s->pend_head > 0) {
			memmove(s->pend, s->pend + s->pend_head,
				(s->pend_len - s->pend_head) * sizeof(*s->pend));
			s->pend_len -= s->pend_head;
			s->pend_head = 0;
		} else {
			size_t cap = s->pend_cap ? s->pend_cap * 2 : 64;
			struct pending_accept *p = reallocarray(s->pend, cap, sizeof(*p));
			if (!p) {
				safe_close(res);
				return;
			}
			s->pend = p;
			s->pend_cap = cap;
		}
	}
	s->pend[s->pend_len++] = (struct pending_accept){ res, ls->is_unix };
	if (!loop_timer_armed(&s->accept_turn))
		(void)loop_timer_start(s->loop, &s->accept_turn, now_us());
}

/* Sets up ACCEPTS_PER_TURN of the accepted connections; the rest on a later turn. */
static void on_accept_turn(struct loop_timer *t)
{
	struct server *s = (struct server *)((char *)t - offsetof(struct server, accept_turn));
	for (unsigned i = 0; i < ACCEPTS_PER_TURN && s->pend_head < s->pend_len; i++) {
		struct pending_accept a = s->pend[s->pend_head++];
		conn_setup(s, a.fd, a.is_unix);
	}
	if (s->pend_head == s->pend_len)
		s->pend_head = s->pend_len = 0;
	else /* after what the next turn brings: not again within this one */
		(void)loop_timer_start(s->loop, &s->accept_turn, now_us() + 1);
}

static void conn_setup(struct server *s, int fd, bool is_unix)
{
	if (s->n_conns >= s->lim.max_connections) {
		reject_fd(s, fd, "too many connections");
		return;
	}
	if (!is_unix) {
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		safe_close(fd);
		return;
	}
	c->server = s;
	c->fd = fd;
	c->is_unix = is_unix;
	c->refs = 1;
	c->since_us = now_us();
	c->kick.fn = on_kick;
	c->reader = http_reader_new(s->lim.header_max, s->body_limit, s->userdata);
	c->recv_token = loop_op_new(s->loop, on_recv, c);
	c->send_token = loop_op_new(s->loop, on_send, c);
	if (!c->reader || !c->recv_token || !c->send_token) {
		loop_op_free(s->loop, c->recv_token, NULL);
		loop_op_free(s->loop, c->send_token, NULL);
		safe_close(fd);
		conn_destroy(c);
		return;
	}
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	conn_arm_recv(c);
}

static void listener_arm(struct listener *ls)
{
	struct io_uring_sqe *sqe = loop_sqe(ls->server->loop, ls->token);
	if (!sqe) {
		(void)loop_timer_start(ls->server->loop, &ls->retry, now_us() + ACCEPT_RETRY_US);
		return;
	}
	io_uring_prep_multishot_accept(sqe, ls->fd, NULL, NULL, SOCK_CLOEXEC);
}

static int listener_add(struct server *s, int fd, bool is_unix, const char *unix_path)
{
	struct listener *ls = calloc(1, sizeof(*ls));
	if (!ls) {
		safe_close(fd);
		return -ENOMEM;
	}
	ls->server = s;
	ls->fd = fd;
	ls->is_unix = is_unix;
	ls->retry.fn = listener_retry;
	/* accept_shed() calls accept4() on it directly: it must never block. */
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (unix_path && !(ls->unix_path = strdup(unix_path))) {
		safe_close(fd);
		free(ls);
		return -ENOMEM;
	}
	ls->token = loop_op_new(s->loop, on_accept, ls);
	if (!ls->token) {
		safe_close(fd);
		free(ls->unix_path);
		free(ls);
		return -ENOMEM;
	}
	ls->next = s->listeners;
	s->listeners = ls;
	listener_arm(ls);
	return 0;
}

static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	_cleanup_free_ char *host = NULL;
	const char *port;
	if (addr[0] == '[') {
		const char *e = strchr(addr, ']');
		if (!e || e[1] != ':')
			return -EINVAL;
		host = strndup(addr + 1, (size_t)(e - addr - 1));
		port = e + 2;
	} else {
		const char *e = strrchr(addr, ':');
		if (!e)
			return -EINVAL;
		host = strndup(addr, (size_t)(e - addr));
		port = e + 1;
	}
	if (!host)
		return -ENOMEM;
	char *end;
	unsigned long p = strtoul(port, &end, 10);
	if (*port == 0 || *end || p == 0 || p > 65535)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)p);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)p);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

int server_listen_tcp(struct server *s, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int r = parse_addr(addr, &ss, &len);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		return -errno;
	if (listen(fd, 4096) < 0)
		return -errno;
	return listener_add(s, TAKE_FD(fd), false, NULL);
}

int server_listen_unix(struct server *s, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		(void)unlink(path);
	}
	mode_t old = umask(0117);
	int r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0)
		return -errno;
	if (listen(fd, 4096) < 0)
		return -errno;
	return listener_add(s, TAKE_FD(fd), true, path);
}

int server_listen_fd(struct server *s, int fd, bool api)
{
	return listener_add(s, fd, api, NULL);
}

int server_new(struct loop *l, const struct server_limits *lim, server_request_fn fn,
	       http_body_limit_fn body_limit, void *userdata, struct server **ret)
{
	struct server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = l;
	s->lim = *lim;
	s->fn = fn;
	s->body_limit = body_limit;
	s->userdata = userdata;
	s->accept_turn.fn = on_accept_turn;
	s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	*ret = s;
	return 0;
}

void server_stop_listening(struct server *s)
{
	while (s->listeners) {
		struct listener *ls = s->listeners;
		s->listeners = ls->next;
		loop_op_free(s->loop, ls->token, NULL);
		loop_timer_stop(s->loop, &ls->retry);
		safe_close(ls->fd);
		if (ls->unix_path)
			(void)unlink(ls->unix_path);
		free(ls->unix_path);
		free(ls);
	}
}

void server_drain(struct server *s)
{
	server_stop_listening(s);
	s->draining = true;
	struct conn *next;
	for (struct conn *c = s->conns; c; c = next) {
		next = c->next;
		if (c->streaming) {
			/* A log stream has no end of its own: the API lets go of it, we end it. */
			void (*fn)(void *) = c->abort_fn;
			void *ud = c->abort_ud;
			c->abort_fn = NULL;
			c->abort_ud = NULL;
			conn_ref(c);
			if (fn)
				fn(ud);
			c->keep_alive = false;
			(void)conn_stream_end(c);
			conn_unref(c);
		} else if (c->active)
			continue; /* answered in its time, then closed (keep_alive off) */
		else if (conn_backlog(c) > 0) {
			c->close_after_send = true;
			conn_send_next(c);
		} else
			conn_close(c);
	}
}

void server_set_limits(struct server *s, const struct server_limits *lim)
{
	s->lim = *lim;
}

struct server *server_free(struct server *s)
{
	if (!s)
		return NULL;
	server_stop_listening(s);
	loop_timer_stop(s->loop, &s->accept_turn);
	for (size_t i = s->pend_head; i < s->pend_len; i++)
		safe_close(s->pend[i].fd);
	free(s->pend);
	while (s->conns)
		conn_close(s->conns);
	linger_tick(s, true);
	safe_close(s->reserve_fd);
	free(s);
	return NULL;
}

void server_tick(struct server *s)
{
	linger_tick(s, false);
	uint64_t now = now_us();
	uint64_t header_to = (uint64_t)s->lim.header_timeout_ms * 1000u;
	uint64_t keep_to = (uint64_t)s->lim.keepalive_timeout_ms * 1000u;
	struct conn *next;
	for (struct conn *c = s->conns; c; c = next) {
		next = c->next;
		if (c->active)
			continue;
		uint64_t age = now - c->since_us;
		switch (http_reader_state(c->reader)) {
		case HTTP_READER_IDLE:
			if (age > keep_to && c->out.len == 0)
				conn_close(c);
			break;
		case HTTP_READER_HEADERS:
			if (age > header_to)
				conn_close(c);
			break;
		case HTTP_READER_BODY:
			if (age > BODY_TIMEOUT_US)
				conn_close(c);
			break;
		}
	}
}
