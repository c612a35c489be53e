/* SPDX-License-Identifier: MIT */
#include "systemd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "spore-config.h"
#include "util/cleanup.h"
#include "util/log.h"

#if SPORE_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

static const char *const kind_names[_SYSTEMD_LISTENER_MAX] = {
	[SYSTEMD_LISTENER_HTTP] = "http",
	[SYSTEMD_LISTENER_API] = "api",
};

const char *systemd_listener_kind_to_string(enum systemd_listener_kind k)
{
	if (k < 0 || k >= _SYSTEMD_LISTENER_MAX)
		return NULL;
	return kind_names[k];
}

bool systemd_supported(void)
{
	return SPORE_HAVE_LIBSYSTEMD;
}

void systemd_listeners_done(struct systemd_listeners *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		safe_close(l->items[i].fd);
		free(l->items[i].name);
		free(l->items[i].address);
	}
	free(l->items);
	*l = (struct systemd_listeners){};
}

size_t systemd_listeners_count(const struct systemd_listeners *l, enum systemd_listener_kind k)
{
	size_t n = 0;
	for (size_t i = 0; i < l->n; i++)
		n += l->items[i].kind == k;
	return n;
}

#if SPORE_HAVE_LIBSYSTEMD

/* The socket's own address as text, for logs; NULL on OOM. */
static char *sock_address(int fd, int *ret_family)
{
	struct sockaddr_storage ss = {};
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "";
	char *s = NULL;
	*ret_family = AF_UNSPEC;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return strdup("?");
	*ret_family = ss.ss_family;
	switch (ss.ss_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
		(void)inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		if (asprintf(&s, "%s:%u", host, ntohs(in->sin_port)) < 0)
			return NULL;
		return s;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
		(void)inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		if (asprintf(&s, "[%s]:%u", host, ntohs(in6->sin6_port)) < 0)
			return NULL;
		return s;
	}
	case AF_UNIX: {
		const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
		size_t n = len > offsetof(struct sockaddr_un, sun_path)
				   ? len - offsetof(struct sockaddr_un, sun_path)
				   : 0;
		if (n == 0)
			return strdup("(unnamed unix socket)");
		if (un->sun_path[0] == 0) /* abstract */
			return asprintf(&s, "@%.*s", (int)(n - 1), un->sun_path + 1) < 0 ? NULL : s;
		return strndup(un->sun_path, strnlen(un->sun_path, n));
	}
	default:
		if (asprintf(&s, "(address family %d)", ss.ss_family) < 0)
			return NULL;
		return s;
	}
}

static int reason(char **ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int reason(char **ret, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(ret, fmt, ap);
	va_end(ap);
	if (r < 0) {
		*ret = NULL;
		return -ENOMEM;
	}
	return -EINVAL;
}

int systemd_listeners_take(struct systemd_listeners *ret, char **ret_error)
{
	_cleanup_strv_free_ char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);
	if (n < 0)
		return reason(ret_error, "LISTEN_FDS: %s", strerror(-n));
	if (n == 0) {
		*ret = (struct systemd_listeners){};
		return 0;
	}
	struct systemd_listeners l = { .items = calloc((size_t)n, sizeof(*l.items)) };
	if (!l.items) {
		for (int i = 0; i < n; i++)
			(void)close(SD_LISTEN_FDS_START + i);
		return -ENOMEM;
	}
	/* Every fd goes into the list first, so that a failure closes them all. */
	for (int i = 0; i < n; i++)
		l.items[l.n++] = (struct systemd_listener){ .fd = SD_LISTEN_FDS_START + i };
	int r = 0;
	for (size_t i = 0; i < l.n; i++) {
		struct systemd_listener *it = &l.items[i];
		const char *name = names && names[i] ? names[i] : "unknown";
		int family;
		it->name = strdup(name);
		it->address = sock_address(it->fd, &family);
		if (!it->name || !it->address) {
			r = -ENOMEM;
			goto fail;
		}
		if (sd_is_socket(it->fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
			r = reason(ret_error,
				   "socket activation: fd %d (name '%s', %s) is not a listening stream "
				   "socket; use ListenStream= in the socket unit",
				   it->fd, it->name, it->address);
			goto fail;
		}
		if (streq(name, "api"))
			it->kind = SYSTEMD_LISTENER_API;
		else if (streq(name, "http"))
			it->kind = SYSTEMD_LISTENER_HTTP;
		else if (family == AF_UNIX)
			it->kind = SYSTEMD_LISTENER_API;
		else if (family == AF_INET || family == AF_INET6)
			it->kind = SYSTEMD_LISTENER_HTTP;
		else {
			r = reason(ret_error,
				   "socket activation: fd %d (name '%s', %s): cannot tell what it is for; "
				   "name it 'http' or 'api' (FileDescriptorName=)",
				   it->fd, it->name, it->address);
			goto fail;
		}
		/* The API socket is trusted with management: never a network socket. */
		if (it->kind == SYSTEMD_LISTENER_API && family != AF_UNIX) {
			r = reason(ret_error,
				   "socket activation: fd %d named 'api' (%s) is not a unix socket; the "
				   "management API is served on a unix socket only",
				   it->fd, it->address);
			goto fail;
		}
	}
	*ret = l;
	return 0;
fail:
	systemd_listeners_done(&l);
	return r;
}

int systemd_notify(const char *state)
{
	return sd_notify(0, state);
}

int systemd_notifyf(const char *fmt, ...)
{
	_cleanup_free_ char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	return sd_notify(0, s);
}

#else /* !SPORE_HAVE_LIBSYSTEMD */

int systemd_listeners_take(struct systemd_listeners *ret, char **ret_error)
{
	(void)ret_error;
	*ret = (struct systemd_listeners){};
	if (getenv("LISTEN_FDS"))
		log_warning("systemd: LISTEN_FDS is set but spored was built without libsystemd; "
			    "binding its own sockets, ignoring");
	return 0;
}

int systemd_notify(const char *state)
{
	(void)state;
	return 0;
}

int systemd_notifyf(const char *fmt, ...)
{
	(void)fmt;
	return 0;
}

#endif
