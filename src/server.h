/* SPDX-License-Identifier: MIT */
/* The HTTP/1.1 front end on io_uring: listeners, connections, keep-alive, pipelining (one active
 * request per connection, answered in order), limits and timeouts. Supervisor only.
 *
 * The server hands each complete request to the request callback, which owns it and must end it
 * exactly once with conn_respond*() or conn_stream_end(), now or later. A callback that answers
 * later keeps a reference (conn_ref) and may register an abort callback, called if the connection
 * dies first; responding on a dead connection is a no-op. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

struct loop;
struct server;
struct conn;

struct server_limits {
	uint32_t max_connections;
	uint32_t header_max;
	uint32_t header_timeout_ms;
	uint32_t keepalive_timeout_ms;
};

typedef void (*server_request_fn)(struct conn *c, struct http_request *req, void *userdata);

int server_new(struct loop *l, const struct server_limits *lim, server_request_fn fn,
	       http_body_limit_fn body_limit, void *userdata, struct server **ret);
/* Closes listeners and every connection (abort callbacks run). */
struct server *server_free(struct server *s);

/* "A.B.C.D:PORT" or "[v6]:PORT". */
int server_listen_tcp(struct server *s, const char *addr);
/* Creates the socket file (mode 0660), replacing a stale one. */
int server_listen_unix(struct server *s, const char *path);
/* Takes over a listening stream socket passed by systemd (fd is closed on failure, and at
 * stop; a unix socket's file is left to whoever made it). api: connections on it are API socket
 * connections (conn_is_unix() true: management routes without a token); only ever a unix
 * socket. */
int server_listen_fd(struct server *s, int fd, bool api);
/* Stops accepting (connections stay). */
void server_stop_listening(struct server *s);
/* For a graceful stop: stops accepting, closes every connection that has no request being
 * answered (an answer being sent is sent first), ends log streams, and makes every answer still
 * to come the connection's last (Connection: close). server_connection_count() reaches 0 when
 * the requests being answered are answered. */
void server_drain(struct server *s);
/* New limits (SIGHUP): timeouts and max_connections apply at once, header_max to new
 * connections. */
void server_set_limits(struct server *s, const struct server_limits *lim);
/* Closes connections past their header or keep-alive deadline. Call about once a second. */
void server_tick(struct server *s);
size_t server_connection_count(const struct server *s);

bool conn_is_unix(const struct conn *c);
/* The peer's IP address as text ("unix" on the API socket, "" if unknown). */
void conn_peer_ip(const struct conn *c, char *buf, size_t size);
bool conn_alive(const struct conn *c);
struct conn *conn_ref(struct conn *c);
struct conn *conn_unref(struct conn *c);
void conn_set_abort(struct conn *c, void (*fn)(void *userdata), void *userdata);

/* Ends the active request with a whole response. extra_headers: "Name: value\r\n" lines or NULL. */
int conn_respond(struct conn *c, int status, const char *content_type, const void *body,
		 size_t len, const char *extra_headers);
/* Chunked streaming response; ends the active request at conn_stream_end(). */
int conn_stream_begin(struct conn *c, int status, const char *content_type,
		      const char *extra_headers);
int conn_stream_write(struct conn *c, const void *data, size_t len);
int conn_stream_end(struct conn *c);
