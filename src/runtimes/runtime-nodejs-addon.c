/* SPDX-License-Identifier: MIT */
/* spore-nodejs.node: the native part of the Node.js bootstrap (spore-nodejs-bootstrap.js), a
 * Node-API addon with one function:
 *
 *   handover(fd)  tells the other end of fd (the spare's helper, or the zygote) that node is up
 *                 (ZYGOTE_SPARE_READY), waits for ZYGOTE_SPARE_GO with the instance's fds
 *                 {chan, stdout, stderr}, puts them on 3, 1 and 2 (what every spore instance has,
 *                 so console output and child processes go to the function's log), reaps the
 *                 helper, and returns true; false when the spare was retired (EOF).
 *
 * JavaScript cannot receive fds over a socket nor dup2() them, hence this. It blocks node's
 * main thread while the spare waits, which is all a spare has to do.
 *
 * Node-API (https://nodejs.org/api/n-api.html) is a stable C ABI, exported by every node since
 * 8.x: the few functions used are declared here rather than taken from node's headers, which
 * Debian ships only in libnode-dev (and not with every nodejs package). Built without the
 * sanitizers whatever the build's options: node does not carry their runtimes. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zygote.h"

#define NAPI_VERSION_USED 1

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* an enum in C; napi_ok is 0 */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);

#define NAPI_OK 0
#define NAPI_AUTO_LENGTH SIZE_MAX
#define NAPI_EXPORT __attribute__((visibility("default")))

napi_status napi_create_function(napi_env env, const char *utf8name, size_t length,
				 napi_callback cb, void *data, napi_value *result);
napi_status napi_set_named_property(napi_env env, napi_value object, const char *utf8name,
				    napi_value value);
napi_status napi_get_cb_info(napi_env env, napi_callback_info cbinfo, size_t *argc,
			     napi_value *argv, napi_value *this_arg, void **data);
napi_status napi_get_value_int32(napi_env env, napi_value value, int32_t *result);
napi_status napi_get_boolean(napi_env env, bool value, napi_value *result);
napi_status napi_throw_error(napi_env env, const char *code, const char *msg);

NAPI_EXPORT napi_value napi_register_module_v1(napi_env env, napi_value exports);
NAPI_EXPORT int32_t node_api_module_get_api_version_v1(void);

static napi_value throw_errno(napi_env env, const char *what, int error)
{
	char msg[160];

	(void)snprintf(msg, sizeof(msg), "spore handover: %s: %s", what, strerror(error));
	(void)napi_throw_error(env, NULL, msg);
	return NULL;
}

static napi_value boolean(napi_env env, bool v)
{
	napi_value r = NULL;

	(void)napi_get_boolean(env, v, &r);
	return r;
}

static napi_value handover(napi_env env, napi_callback_info info)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 8)];
	} control;
	const char ready = ZYGOTE_SPARE_READY;
	size_t argc = 1;
	napi_value argv[1];
	int32_t sock;
	int fds[8], high[3] = { -1, -1, -1 }, n_fds = 0, r = 0;
	char c = 0;
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	ssize_t n;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != NAPI_OK || argc < 1 ||
	    napi_get_value_int32(env, argv[0], &sock) != NAPI_OK || sock < 0) {
		(void)napi_throw_error(env, NULL, "spore handover: fd must be an integer");
		return NULL;
	}
	/* EPIPE when a spawn queued its fds before node started and closed its end: fine. */
	(void)send(sock, &ready, 1, MSG_NOSIGNAL);
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return throw_errno(env, "recvmsg", errno);
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (n_fds < 8)
				fds[n_fds++] = fd;
			else
				(void)close(fd);
		}
	}
	if (n == 0 && n_fds == 0)
		return boolean(env, false); /* retired before it was used */
	if (n != 1 || c != ZYGOTE_SPARE_GO || n_fds != 3 || (mh.msg_flags & MSG_CTRUNC)) {
		for (int i = 0; i < n_fds; i++)
			(void)close(fds[i]);
		(void)napi_throw_error(env, NULL, "spore handover: bad hand-over message");
		return NULL;
	}
	/* Out of the way of 1, 2 and 3 first: the received fds may be any of them. */
	for (int i = 0; i < 3 && r == 0; i++) {
		high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10);
		if (high[i] < 0)
			r = errno;
	}
	for (int i = 0; i < 3; i++)
		(void)close(fds[i]);
	/* chan on 3 (replacing sock), close-on-exec; stdout and stderr inherited by children. */
	if (r == 0 && (dup3(high[0], 3, O_CLOEXEC) < 0 || dup3(high[1], STDOUT_FILENO, 0) < 0 ||
		       dup3(high[2], STDERR_FILENO, 0) < 0))
		r = errno;
	for (int i = 0; i < 3; i++)
		if (high[i] >= 0)
			(void)close(high[i]);
	if (r != 0)
		return throw_errno(env, "dup3", r);
	/* The helper exits once it has sent this: reap it (node reaps only what it spawns). No
	 * child at all without a helper (no sandbox): ECHILD at once. */
	while (waitpid(-1, NULL, 0) < 0 && errno == EINTR)
		;
	return boolean(env, true);
}

napi_value napi_register_module_v1(napi_env env, napi_value exports)
{
	napi_value fn;

	if (napi_create_function(env, "handover", NAPI_AUTO_LENGTH, handover, NULL, &fn) !=
		    NAPI_OK ||
	    napi_set_named_property(env, exports, "handover", fn) != NAPI_OK)
		return NULL;
	return exports;
}

int32_t node_api_module_get_api_version_v1(void)
{
	return NAPI_VERSION_USED;
}
