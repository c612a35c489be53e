/* SPDX-License-Identifier: MIT */
#include "zygotes.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "loop.h"
#include "proto.h"
#include "util/cleanup.h"
#include "util/log.h"

#define RESTART_MIN_US (100u * 1000u)
#define RESTART_MAX_US (5u * 1000000u)
#define STABLE_US (30u * 1000000u)

/* The zygotes get a minimal environment, not spored's: instances are forked without an exec,
 * so whatever the zygote's environment held stays readable in their memory (clearenv() only
 * drops the pointers), and spored's environment is none of a function's business. */
static const char *const zygote_env_keep[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS" };

static char **zygote_environment(void)
{
	size_t n = 0;
	char **env = calloc(ELEMENTSOF(zygote_env_keep) + 3, sizeof(char *));
	if (!env)
		return NULL;
	env[n++] = strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	env[n++] = strdup("LANG=C.UTF-8");
	for (size_t i = 0; i < ELEMENTSOF(zygote_env_keep); i++) {
		const char *v = getenv(zygote_env_keep[i]);
		if (v && asprintf(&env[n], "%s=%s", zygote_env_keep[i], v) >= 0)
			n++;
	}
	for (size_t i = 0; i < n; i++)
		if (!env[i])
			return strv_free(env);
	return env;
}

static const char *const runtimes[] = { "python3", "native", "nodejs", "exec", "provided" };

struct pending_spawn {
	uint64_t token;
	int fds[3];
	struct pending_spawn *next;
};

struct zygote {
	struct zygotes *z;
	const char *runtime;
	char *path;
	pid_t pid;
	int ctrl;
	uint64_t token;
	enum zygote_state state;
	unsigned restarts;
	int64_t started_us;
	uint64_t spawned_at_us;
	uint64_t backoff_us;
	struct loop_timer restart;
	char *cgroup_pool; /* absolute path of its pool in the v2 tree; NULL: none */
	struct pending_spawn *waiting;   /* not sent yet (zygote not running), oldest first */
	/* Sent, not answered yet, oldest first; their fds are kept: if the zygote dies before it
	 * answers, they go back to waiting and to its successor. */
	struct pending_spawn *sent;
};

struct zygotes {
	struct loop *loop;
	struct zygote_callbacks cb;
	unsigned spares;
	char *sandbox_dir; /* NULL: no sandbox */
	struct cgroup_manager *cgroups; /* NULL: no cgroup pools */
	struct zygote zy[ELEMENTSOF(runtimes)];
};

const char *zygote_state_to_string(enum zygote_state s)
{
	switch (s) {
	case ZYGOTE_STARTING:
		return "starting";
	case ZYGOTE_RUNNING:
		return "running";
	case ZYGOTE_RESTARTING:
		return "restarting";
	}
	return "unknown";
}

static void pending_free(struct pending_spawn *p)
{
	for (int i = 0; i < 3; i++)
		safe_close(p->fds[i]);
	free(p);
}

static int zygote_launch(struct zygote *zy);

/* Requests the dead zygote never answered wait for its successor, ahead of the newer ones. (An
 * instance it made of one just before it died died with it, before it was told its function.) */
static void zygote_requeue_sent(struct zygote *zy)
{
	struct pending_spawn **tail = &zy->sent;
	while (*tail)
		tail = &(*tail)->next;
	*tail = zy->waiting;
	zy->waiting = TAKE_PTR(zy->sent);
}

static void zygote_down_full(struct zygote *zy, const char *why, bool reaped)
{
	if (zy->state == ZYGOTE_RESTARTING)
		return;
	struct zygotes *z = zy->z;
	loop_op_free(z->loop, zy->token, NULL);
	zy->token = 0;
	zy->ctrl = safe_close(zy->ctrl);
	if (zy->pid > 0 && !reaped)
		(void)kill(zy->pid, SIGKILL); /* reaped by spored's SIGCHLD handler */
	zy->state = ZYGOTE_RESTARTING;

	uint64_t now = now_us();
	if (now - zy->spawned_at_us > STABLE_US)
		zy->backoff_us = RESTART_MIN_US;
	else
		zy->backoff_us = zy->backoff_us ? zy->backoff_us * 2 : RESTART_MIN_US;
	if (zy->backoff_us > RESTART_MAX_US)
		zy->backoff_us = RESTART_MAX_US;
	log_error("zygotes: zygote of runtime '%s' (pid %d) %s; restarting in %llu ms",
		  zy->runtime, (int)zy->pid, why, (unsigned long long)(zy->backoff_us / 1000));
	zy->pid = 0;
	zygote_requeue_sent(zy);
	(void)loop_timer_start(z->loop, &zy->restart, now + zy->backoff_us);
}

static void zygote_down(struct zygote *zy, const char *why)
{
	zygote_down_full(zy, why, false);
}

/* Sends p; on success p (with its fds) moves to the sent list. */
static int zygote_send_spawn(struct zygote *zy, struct pending_spawn *p)
{
	const int *fds = p->fds;
	struct zyg_spawn msg = { .hdr = { ZYG_SPAWN, PROTO_VERSION }, .token = p->token };
	struct iovec iov = { &msg, sizeof(msg) };
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(3 * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, 3 * sizeof(int));
	ssize_t n;
	do
		n = sendmsg(zy->ctrl, &mh, MSG_NOSIGNAL | MSG_DONTWAIT); /* never block on a stuck zygote */
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	struct pending_spawn **tail = &zy->sent;
	while (*tail)
		tail = &(*tail)->next;
	p->next = NULL;
	*tail = p;
	return 0;
}

static void zygote_forget_sent(struct zygote *zy, uint64_t token)
{
	for (struct pending_spawn **pp = &zy->sent; *pp; pp = &(*pp)->next)
		if ((*pp)->token == token) {
			struct pending_spawn *p = *pp;
			*pp = p->next;
			pending_free(p);
			return;
		}
}

static void zygote_flush_waiting(struct zygote *zy)
{
	/* Oldest first: the list is kept in arrival order. */
	while (zy->waiting && zy->state == ZYGOTE_RUNNING) {
		struct pending_spawn *p = zy->waiting;
		zy->waiting = p->next;
		int r = zygote_send_spawn(zy, p);
		if (r < 0) {
			uint64_t token = p->token;
			pending_free(p);
			zy->z->cb.spawned(zy->z->cb.userdata, token, 0, r, NULL);
		}
	}
}

static void on_ctrl(void *ud, int res, uint32_t flags)
{
	struct zygote *zy = ud;
	struct zygotes *z = zy->z;
	(void)flags;
	if (res < 0) {
		zygote_down(zy, "control socket failed");
		return;
	}
	for (;;) {
		union {
			struct zyg_hdr hdr;
			struct zyg_hello hello;
			struct zyg_spawned spawned;
			struct zyg_exited exited;
			char raw[256];
		} m;
		ssize_t n = recv(zy->ctrl, &m, sizeof(m), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			zygote_down(zy, "control socket failed");
			return;
		}
		if (n == 0) {
			zygote_down(zy, "closed its control socket");
			return;
		}
		if ((size_t)n < sizeof(m.hdr) || m.hdr.version != PROTO_VERSION) {
			zygote_down(zy, "sent a malformed message");
			return;
		}
		switch (m.hdr.type) {
		case ZYG_HELLO:
			if ((size_t)n < sizeof(m.hello))
				goto bad;
			zy->state = ZYGOTE_RUNNING;
			zy->started_us = realtime_us();
			log_info("zygotes: runtime '%s' ready (zygote pid %d, %.1f ms)", zy->runtime,
				 (int)zy->pid, (double)(now_us() - zy->spawned_at_us) / 1000.0);
			zygote_flush_waiting(zy);
			break;
		case ZYG_SPAWNED:
		case ZYG_SPAWN_FAILED: {
			if ((size_t)n < sizeof(m.spawned))
				goto bad;
			zygote_forget_sent(zy, m.spawned.token);
			/* The child cgroup the instance was cloned into, as a path for cgroup.h. */
			char cg[sizeof("pool-") + 32 + ZYG_CGROUP_MAX];
			const char *cgp = NULL;
			size_t cl = strnlen(m.spawned.cgroup, sizeof(m.spawned.cgroup));
			if (m.hdr.type == ZYG_SPAWNED && zy->cgroup_pool && cl > 0 &&
			    cl < sizeof(m.spawned.cgroup) && !memchr(m.spawned.cgroup, '/', cl) &&
			    startswith(m.spawned.cgroup, "i-")) {
				(void)snprintf(cg, sizeof(cg), "pool-%s/%s", zy->runtime,
					       m.spawned.cgroup);
				cgp = cg;
			}
			z->cb.spawned(z->cb.userdata, m.spawned.token,
				      m.hdr.type == ZYG_SPAWNED ? m.spawned.pid : 0,
				      m.hdr.type == ZYG_SPAWNED ? 0
				      : m.spawned.error < 0	? m.spawned.error
								: -EIO,
				      cgp);
			break;
		}
		case ZYG_EXITED:
			if ((size_t)n < sizeof(m.exited))
				goto bad;
			z->cb.exited(z->cb.userdata, m.exited.pid, m.exited.status);
			break;
		default:
			goto bad;
		}
		if (zy->state == ZYGOTE_RESTARTING)
			return;
	}
bad:
	zygote_down(zy, "sent a malformed message");
}

static void on_restart(struct loop_timer *t)
{
	struct zygote *zy = (struct zygote *)((char *)t - offsetof(struct zygote, restart));
	zy->restarts++;
	int r = zygote_launch(zy);
	if (r < 0) {
		log_error_errno(r, "zygotes: failed to restart runtime '%s': %m", zy->runtime);
		zy->state = ZYGOTE_STARTING;
		zygote_down(zy, "could not be started");
	}
}

static int zygote_launch(struct zygote *zy)
{
	struct zygotes *z = zy->z;
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	_cleanup_close_ int ours = sp[0];
	/* Keep the child's end off fd 3 so dup2() to 3 really clears O_CLOEXEC. */
	_cleanup_close_ int theirs = fcntl(sp[1], F_DUPFD_CLOEXEC, 10);
	safe_close(sp[1]);
	if (theirs < 0)
		return -errno;

	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int r = posix_spawn_file_actions_init(&fa);
	if (r)
		return -r;
	r = posix_spawnattr_init(&attr);
	if (r) {
		posix_spawn_file_actions_destroy(&fa);
		return -r;
	}
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	(void)posix_spawnattr_setsigmask(&attr, &none);
	(void)posix_spawnattr_setsigdefault(&attr, &all);
	(void)posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	(void)posix_spawn_file_actions_adddup2(&fa, theirs, 3);

	char spares[16];
	snprintf(spares, sizeof(spares), "%u", z->spares);
	char *argv[] = { zy->path, (char *)"--spares", spares, NULL, NULL, NULL, NULL, NULL };
	if (z->sandbox_dir) {
		argv[3] = (char *)"--sandbox-dir";
		argv[4] = z->sandbox_dir;
		if (z->cgroups && !zy->cgroup_pool) {
			/* Made once; a restarted zygote clears out what its predecessor left. */
			char name[64];
			(void)snprintf(name, sizeof(name), "pool-%s", zy->runtime);
			int k = cgroup_create_pool(z->cgroups, name, &zy->cgroup_pool);
			if (k < 0 && k != -EOPNOTSUPP)
				log_warning_errno(k, "zygotes: cannot create cgroup pool '%s', spored "
						  "will move instances into their cgroups: %m", name);
		}
		if (zy->cgroup_pool) {
			argv[5] = (char *)"--cgroup-pool";
			argv[6] = zy->cgroup_pool;
		}
	}
	pid_t pid;
	_cleanup_strv_free_ char **env = zygote_environment();
	r = env ? posix_spawn(&pid, zy->path, &fa, &attr, argv, env) : ENOMEM;
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (r)
		return -r;

	zy->pid = pid;
	zy->ctrl = TAKE_FD(ours);
	zy->state = ZYGOTE_STARTING;
	zy->spawned_at_us = now_us();
	r = loop_poll_start(z->loop, zy->ctrl, POLLIN, on_ctrl, zy, &zy->token);
	if (r < 0) {
		(void)kill(pid, SIGKILL);
		zy->ctrl = safe_close(zy->ctrl);
		return r;
	}
	log_debug("zygotes: started '%s' as pid %d", zy->path, (int)pid);
	return 0;
}

int zygotes_new(struct loop *l, const char *runtime_dir, unsigned spares, const char *sandbox_dir,
		const struct zygote_callbacks *cb, struct zygotes **ret)
{
	struct zygotes *z = calloc(1, sizeof(*z));
	if (!z)
		return -ENOMEM;
	if (sandbox_dir && !(z->sandbox_dir = strdup(sandbox_dir))) {
		free(z);
		return -ENOMEM;
	}
	z->loop = l;
	z->cb = *cb;
	z->spares = spares;
	for (size_t i = 0; i < ELEMENTSOF(runtimes); i++) {
		struct zygote *zy = &z->zy[i];
		zy->z = z;
		zy->runtime = runtimes[i];
		zy->ctrl = -EBADF;
		zy->restart.fn = on_restart;
		if (asprintf(&zy->path, "%s/spore-zygote-%s", runtime_dir, runtimes[i]) < 0) {
			zy->path = NULL;
			zygotes_free(z);
			return -ENOMEM;
		}
	}
	*ret = z;
	return 0;
}

int zygotes_start(struct zygotes *z)
{
	for (size_t i = 0; i < ELEMENTSOF(runtimes); i++) {
		struct zygote *zy = &z->zy[i];
		if (access(zy->path, X_OK) < 0)
			return log_error_errno(errno, "zygotes: runtime '%s': cannot execute '%s': %m",
					       zy->runtime, zy->path);
		int r = zygote_launch(zy);
		if (r < 0)
			return log_error_errno(r, "zygotes: failed to start '%s': %m", zy->path);
	}
	return 0;
}

struct zygotes *zygotes_free(struct zygotes *z)
{
	if (!z)
		return NULL;
	/* EOF on the control sockets makes the zygotes exit (and kill their instances): close all
	 * first, then give them a moment together, then insist. */
	for (size_t i = 0; i < ELEMENTSOF(runtimes); i++) {
		struct zygote *zy = &z->zy[i];
		loop_timer_stop(z->loop, &zy->restart);
		loop_op_free(z->loop, zy->token, NULL);
		zy->ctrl = safe_close(zy->ctrl);
		while (zy->waiting) {
			struct pending_spawn *p = zy->waiting;
			zy->waiting = p->next;
			pending_free(p);
		}
		while (zy->sent) {
			struct pending_spawn *p = zy->sent;
			zy->sent = p->next;
			pending_free(p);
		}
	}
	/* The ring holds a reference to each socket until its poll is cancelled: submit now. */
	(void)loop_submit(z->loop);
	for (int k = 0; k < 200; k++) {
		bool left = false;
		for (size_t i = 0; i < ELEMENTSOF(runtimes); i++) {
			struct zygote *zy = &z->zy[i];
			if (zy->pid > 0 && waitpid(zy->pid, NULL, WNOHANG) == zy->pid)
				zy->pid = 0;
			left = left || zy->pid > 0;
		}
		if (!left)
			break;
		usleep(10000);
	}
	for (size_t i = 0; i < ELEMENTSOF(runtimes); i++) {
		struct zygote *zy = &z->zy[i];
		if (zy->pid > 0) {
			log_warning("zygotes: zygote '%s' (pid %d) did not exit; killing it",
				    zy->runtime, (int)zy->pid);
			(void)kill(zy->pid, SIGKILL);
			(void)waitpid(zy->pid, NULL, 0);
		}
		free(zy->path);
		free(zy->cgroup_pool);
	}
	free(z->sandbox_dir);
	free(z);
	return NULL;
}

void zygotes_set_cgroups(struct zygotes *z, struct cgroup_manager *cg)
{
	z->cgroups = cg;
}

bool zygotes_has_runtime(const struct zygotes *z, const char *runtime)
{
	(void)z;
	for (size_t i = 0; i < ELEMENTSOF(runtimes); i++)
		if (streq(runtimes[i], runtime))
			return true;
	return false;
}

size_t zygotes_count(const struct zygotes *z)
{
	(void)z;
	return ELEMENTSOF(runtimes);
}

void zygotes_info(const struct zygotes *z, size_t i, struct zygote_info *ret)
{
	const struct zygote *zy = &z->zy[i];
	*ret = (struct zygote_info){
		.runtime = zy->runtime,
		.pid = zy->state == ZYGOTE_RESTARTING ? 0 : zy->pid,
		.state = zy->state,
		.restarts = zy->restarts,
		.started_us = zy->started_us,
	};
}

int zygotes_spawn(struct zygotes *z, const char *runtime, uint64_t token, int chan_fd, int out_fd,
		  int err_fd)
{
	struct zygote *zy = NULL;
	for (size_t i = 0; i < ELEMENTSOF(runtimes); i++)
		if (streq(runtimes[i], runtime))
			zy = &z->zy[i];
	if (!zy)
		return -ENOENT;
	int fds[3] = { chan_fd, out_fd, err_fd };
	struct pending_spawn *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->token = token;
	for (int i = 0; i < 3; i++)
		p->fds[i] = -EBADF;
	for (int i = 0; i < 3; i++) {
		p->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
		if (p->fds[i] < 0) {
			int r = -errno;
			pending_free(p);
			return r;
		}
	}
	if (zy->state == ZYGOTE_RUNNING) {
		int r = zygote_send_spawn(zy, p);
		if (r >= 0)
			return 0;
		if (r != -EPIPE && r != -ECONNRESET) {
			pending_free(p);
			return r;
		}
		zygote_down(zy, "stopped reading its control socket");
	}
	struct pending_spawn **tail = &zy->waiting;
	while (*tail)
		tail = &(*tail)->next;
	*tail = p;
	return 0;
}

bool zygotes_child_exited(struct zygotes *z, pid_t pid, int status)
{
	for (size_t i = 0; i < ELEMENTSOF(runtimes); i++) {
		struct zygote *zy = &z->zy[i];
		if (zy->pid != pid || pid <= 0)
			continue;
		char why[96];
		if (WIFSIGNALED(status))
			snprintf(why, sizeof(why), "was killed by signal %d (%s)", WTERMSIG(status),
				 sigabbrev_np(WTERMSIG(status)) ?: "?");
		else
			snprintf(why, sizeof(why), "exited with code %d", WEXITSTATUS(status));
		if (zy->state != ZYGOTE_RESTARTING)
			zygote_down_full(zy, why, true);
		zy->pid = 0;
		return true;
	}
	return false;
}
