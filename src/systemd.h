/* SPDX-License-Identifier: MIT */
/* systemd integration through libsystemd: the listening sockets of socket activation
 * (LISTEN_FDS, LISTEN_FDNAMES, sd_listen_fds_with_names(3)) and service notifications
 * (NOTIFY_SOCKET, sd_notify(3)). Built without libsystemd (meson says so), no sockets are ever
 * taken and no notification is sent. Supervisor only.
 *
 * Which socket is which (docs in spored(8)):
 *   name "api"   the management API: must be an AF_UNIX listening stream socket
 *   name "http"  an HTTP listener (invoke routes; management only with api_token)
 *   other names  (systemd-socket-activate without --fdname says "unknown") by address family:
 *                AF_UNIX is the API, AF_INET and AF_INET6 are HTTP listeners */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum systemd_listener_kind {
	SYSTEMD_LISTENER_HTTP,
	SYSTEMD_LISTENER_API,
	_SYSTEMD_LISTENER_MAX,
	_SYSTEMD_LISTENER_INVALID = -22, /* -EINVAL */
};

struct systemd_listener {
	int fd;                          /* owned; CLOEXEC */
	enum systemd_listener_kind kind;
	char *name;                      /* as passed ("unknown" when unnamed) */
	char *address;                   /* for logs: "127.0.0.1:8080", "/run/spore/spored.sock" */
};

struct systemd_listeners {
	struct systemd_listener *items;
	size_t n;
};

/* True when spored was built with libsystemd. */
bool systemd_supported(void);

/* Takes the sockets passed by socket activation (LISTEN_PID must be ours) and unsets LISTEN_*
 * so that no child sees them. 0 with ret->n = 0 when none were passed; -EINVAL with
 * *ret_error (malloc'ed) when a passed fd is not a listening stream socket or an "api" socket
 * is not AF_UNIX (every passed fd is then closed); -ENOMEM. */
int systemd_listeners_take(struct systemd_listeners *ret, char **ret_error);
/* Closes what was not handed on (fd set to -EBADF by the taker) and frees the list. */
void systemd_listeners_done(struct systemd_listeners *l);
/* How many of the given kind. */
size_t systemd_listeners_count(const struct systemd_listeners *l, enum systemd_listener_kind k);

const char *systemd_listener_kind_to_string(enum systemd_listener_kind k);

/* sd_notify(0, state): > 0 sent, 0 when NOTIFY_SOCKET is not set (or no libsystemd), -errno. */
int systemd_notify(const char *state);
int systemd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
