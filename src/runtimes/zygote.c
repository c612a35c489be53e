/* SPDX-License-Identifier: MIT */
/* The zygote: one per runtime, started by spored with the control socket on fd 3 (src/proto.h).
 * It initialises its language once, then forks an instance per ZYG_SPAWN. To take fork() and the
 * first copy-on-write faults off the cold start path it keeps a few spares: children forked ahead
 * of time, memory prefaulted, blocked on a socketpair until the zygote hands them the three fds
 * of a ZYG_SPAWN. Spares and instances are all children of the zygote, which reaps them and
 * reports each instance's exit. See docs/RUNTIMES.md. */
#include "zygote.h"
#include "sandbox.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/param.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include "proto.h"
#include "util/cleanup.h"
#include "util/log.h"

#define CTL_FD 3
#define CHAN_FD 3 /* in an instance */
#define SPARES_DEFAULT 2
#define SPARES_MAX 32
#define SPARE_IDLE_MS 50
/* Prefault limits: large writable mappings are reservations (sanitizer shadow, allocator
 * arenas), not memory the instance is about to touch. */
#define PREFAULT_MAP_MAX ((size_t)64 << 20)
#define PREFAULT_TOTAL_MAX ((size_t)512 << 20)
/* As AWS: a synchronous response is at most 6 MB. */
#define RESPONSE_MAX ((size_t)6 * 1024 * 1024)
/* What one message may carry: INST_INIT's code mount and a tasks file per v1 hierarchy (at most
 * 8); the hand-overs carry 3. */
#define MAX_RECV_FDS 9

#define SPARE_READY ZYGOTE_SPARE_READY
#define SPARE_GO ZYGOTE_SPARE_GO

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

/* "zygote-python3": every log message starts with it. */
static char zname[48] = "zygote";
/* The zygote's argv strings, one block: a sandboxed child blanks them, so that its
 * /proc/PID/cmdline (the host's paths of the zygote, the sandbox dir, the cgroup pool) tells a
 * function nothing about the host. */
static char *args_start;
static size_t args_len;
static char sandbox_dir_buf[PATH_MAX], cgroup_pool_buf[PATH_MAX];
/* --sandbox-dir: where spares build their root; NULL = instances are not sandboxed. */
static const char *sandbox_dir;
/* --cgroup-pool: a v2 cgroup directory; every sandboxed child is cloned into a fresh child cgroup
 * of it (CLONE_INTO_CGROUP), which spored takes over with the instance. -EBADF: none. */
static const char *cgroup_pool;
static int pool_fd = -EBADF;
static uint64_t pool_seq;

static void *mfree(void *p)
{
	free(p);
	return NULL;
}

struct spare {
	pid_t pid;
	char cgroup[ZYG_CGROUP_MAX]; /* its cgroup below --cgroup-pool; "" if none */
	int fd; /* the zygote's end of the socketpair; -EBADF once the spare is gone */
	bool ready; /* prefaulted and waiting for SPARE_GO */
};

struct zygote {
	const struct runtime_ops *ops;
	pid_t pid;
	int ctl;
	int sigfd;
	unsigned spares_max;
	bool prefault;
	struct spare spares[SPARES_MAX];
	size_t n_spares; /* every spare not yet reaped, ready or not */
	pid_t *instances;
	size_t n_instances;
	size_t cap_instances;
	int64_t last_activity; /* CLOCK_MONOTONIC ms */
};

int64_t runtime_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *runtime_error_json(const char *type, const char *message, const char *const *stack,
			 size_t n_stack)
{
	_cleanup_(cJSON_Deletep) cJSON *j = cJSON_CreateObject();
	cJSON *trace;

	if (!j || !cJSON_AddStringToObject(j, "errorType", type ? type : "Runtime.Unknown") ||
	    !cJSON_AddStringToObject(j, "errorMessage", message ? message : ""))
		return NULL;
	trace = cJSON_AddArrayToObject(j, "stackTrace");
	if (!trace)
		return NULL;
	for (size_t i = 0; i < n_stack; i++) {
		cJSON *s = cJSON_CreateString(stack[i]);
		if (!s || !cJSON_AddItemToArray(trace, s)) {
			cJSON_Delete(s);
			return NULL;
		}
	}
	return cJSON_PrintUnformatted(j);
}

char *runtime_error_jsonf(const char *type, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0) {
		msg = NULL;
		return NULL;
	}
	return runtime_error_json(type, msg, NULL, 0);
}

/* ---- fd passing ---------------------------------------------------------------------------- */

static int send_fds(int sock, const void *data, size_t len, const int *fds, size_t n_fds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * MAX_RECV_FDS)];
	} control = {};
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	assert(n_fds <= MAX_RECV_FDS);
	if (n_fds > 0) {
		struct cmsghdr *c;

		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n >= 0)
			return (size_t)n == len ? 0 : -EMSGSIZE;
		if (errno != EINTR)
			return -errno;
	}
}

/* Receives one message; fds arrive O_CLOEXEC. Keeps at most max_fds (closes the rest) and sets
 * *ret_n_fds to how many arrived (so a caller expecting 3 sees 4 as wrong). Returns the bytes
 * received (0: EOF) or -errno. */
static ssize_t recv_fds(int sock, void *data, size_t size, int flags, int *fds, size_t max_fds,
			size_t *ret_n_fds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * MAX_RECV_FDS)];
	} control;
	struct iovec iov = { .iov_base = data, .iov_len = size };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	size_t n_fds = 0;
	ssize_t n;

	n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t k;
		int *p;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		p = (int *)CMSG_DATA(c);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, p + i, sizeof(fd));
			if (n_fds < max_fds)
				fds[n_fds] = fd;
			else
				(void)close(fd);
			n_fds++;
		}
	}
	if (mh.msg_flags & MSG_CTRUNC)
		n_fds++; /* some were dropped by the kernel: never the count the caller wants */
	*ret_n_fds = n_fds;
	return n;
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fds[i] = safe_close(fds[i]);
}

/* ---- instance ------------------------------------------------------------------------------ */

/* The instance's reads of its channel. It waits in poll(), not in read(): a task blocked in
 * read() on a socket takes any wake-up of that socket's wait queue, and each time spored reads
 * an answer the kernel reports write space on the instance's end (unix_write_space()), which
 * woke the instance for nothing: 1.8 context switches per warm invocation instead of 1. A
 * poll() waiter is only woken for what it asked (POLLIN). Then one read() takes the frame
 * header and a small payload together, through a small buffer (a payload larger than the
 * buffer is read straight into place). */
#define CHAN_RX_SIZE (16u * 1024u)
static struct {
	char buf[CHAN_RX_SIZE];
	size_t off, len;
	/* fds passed with the data (SCM_RIGHTS): INST_INIT's code mount and cgroup tasks files;
	 * lost: more came than fit, or the kernel dropped some (never a count to accept) */
	int fds[MAX_RECV_FDS];
	size_t n_fds;
	bool lost;
} chan_rx;

static void chan_rx_fds_close(void)
{
	close_fds(chan_rx.fds, chan_rx.n_fds);
	chan_rx.n_fds = 0;
	chan_rx.lost = false;
}

/* Waits until fd is readable, then reads; bytes read, 0 on EOF, or -errno. fds passed with the
 * data are kept in chan_rx.fds (beyond its room, closed, and chan_rx.lost set). */
static ssize_t chan_read_some(int fd, void *buf, size_t size)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		size_t room = ELEMENTSOF(chan_rx.fds) - chan_rx.n_fds, got = 0;

		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		ssize_t n = recv_fds(fd, buf, size, 0, chan_rx.fds + chan_rx.n_fds, room, &got);
		if (n == -EINTR || n == -EAGAIN)
			continue;
		if (got > room) {
			chan_rx.lost = true;
			got = room;
		}
		chan_rx.n_fds += got;
		return n;
	}
}

/* 1 once len bytes are in buf, 0 on EOF before any, or -errno (-EPIPE: EOF within them). */
static int read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n;

		if (chan_rx.off < chan_rx.len) {
			size_t k = MIN(len - done, chan_rx.len - chan_rx.off);

			memcpy((char *)buf + done, chan_rx.buf + chan_rx.off, k);
			chan_rx.off += k;
			done += k;
			continue;
		}
		if (len - done >= sizeof(chan_rx.buf)) {
			n = chan_read_some(fd, (char *)buf + done, len - done);
			if (n > 0)
				done += (size_t)n;
		} else {
			chan_rx.off = chan_rx.len = 0;
			n = chan_read_some(fd, chan_rx.buf, sizeof(chan_rx.buf));
			if (n > 0)
				chan_rx.len = (size_t)n;
		}
		if (n < 0)
			return (int)n;
		if (n == 0)
			return done == 0 ? 0 : -EPIPE;
	}
	return 1;
}

/* Returns 1 and a frame (payload NUL-terminated, not counted), 0 on EOF, or -errno. */
static int frame_recv(int fd, uint32_t *ret_type, char **ret_payload, size_t *ret_len)
{
	_cleanup_free_ char *p = NULL;
	struct proto_frame h;
	int r;

	r = read_full(fd, &h, sizeof(h));
	if (r <= 0)
		return r;
	if (h.len > PROTO_MAX_FRAME)
		return -EMSGSIZE;
	p = malloc((size_t)h.len + 1);
	if (!p)
		return -ENOMEM;
	if (h.len > 0) {
		r = read_full(fd, p, h.len);
		if (r <= 0)
			return r < 0 ? r : -EPIPE;
	}
	p[h.len] = 0;
	*ret_type = h.type;
	*ret_len = h.len;
	*ret_payload = TAKE_PTR(p);
	return 1;
}

static int frame_send(int fd, uint32_t type, const void *payload, size_t len)
{
	struct proto_frame h = { .type = type, .len = (uint32_t)len };
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)payload, .iov_len = len },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

	if (len > PROTO_MAX_FRAME)
		return -EMSGSIZE;
	while (mh.msg_iovlen > 0) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n > 0 && mh.msg_iovlen > 0) {
			if ((size_t)n >= mh.msg_iov->iov_len) {
				n -= (ssize_t)mh.msg_iov->iov_len;
				mh.msg_iov++;
				mh.msg_iovlen--;
			} else {
				mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + n;
				mh.msg_iov->iov_len -= (size_t)n;
				n = 0;
			}
		}
		while (mh.msg_iovlen > 0 && mh.msg_iov->iov_len == 0) {
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
	}
	return 0;
}

static int send_error_frame(int chan, uint32_t type, char *json)
{
	static const char oom[] = "{\"errorType\":\"Runtime.OutOfMemory\",\"errorMessage\":"
				  "\"out of memory\",\"stackTrace\":[]}";
	int r;

	if (!json)
		return frame_send(chan, type, oom, sizeof(oom) - 1);
	r = frame_send(chan, type, json, strlen(json));
	free(json);
	return r;
}

static const char *json_string(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int json_u32(const cJSON *j, const char *key, uint32_t def, uint32_t *ret)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	if (!v) {
		*ret = def;
		return 0;
	}
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > UINT32_MAX ||
	    v->valuedouble != (double)(uint32_t)v->valuedouble)
		return -EINVAL;
	*ret = (uint32_t)v->valuedouble;
	return 0;
}

/* The function's environment, as Lambda builds it: defaults, then the user's variables, then
 * the AWS_LAMBDA_* variables (which the user may not override). */
static int setup_env(const cJSON *init, const struct inst_config *cfg, char **ret_error)
{
	const cJSON *env = cJSON_GetObjectItemCaseSensitive(init, "env");
	char mem[16];
	const struct {
		const char *key, *value;
	} fixed[] = {
		{ "AWS_LAMBDA_FUNCTION_NAME", cfg->function_name },
		{ "AWS_LAMBDA_FUNCTION_VERSION", cfg->function_version },
		{ "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", mem },
		{ "AWS_LAMBDA_LOG_GROUP_NAME", cfg->log_group_name },
		{ "AWS_LAMBDA_LOG_STREAM_NAME", cfg->log_stream_name },
		{ "_HANDLER", cfg->handler },
		{ "LAMBDA_TASK_ROOT", cfg->code_dir },
	};
	const cJSON *e;

	if (env && !cJSON_IsObject(env)) {
		*ret_error = runtime_error_jsonf("Runtime.InvalidInit", "env: must be an object");
		return -EINVAL;
	}
	(void)snprintf(mem, sizeof(mem), "%" PRIu32, cfg->memory_mb);

	if (clearenv() != 0) {
		*ret_error = runtime_error_jsonf("Runtime.InvalidInit", "clearenv() failed");
		return -ENOMEM;
	}
	if (setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1) < 0 ||
	    setenv("LANG", "C.UTF-8", 1) < 0 || setenv("TZ", ":UTC", 1) < 0)
		goto oom;
	cJSON_ArrayForEach (e, env) {
		if (!e->string || !e->string[0] || strchr(e->string, '=') || !cJSON_IsString(e)) {
			*ret_error = runtime_error_jsonf("Runtime.InvalidInit",
							 "env.%s: must be a string variable",
							 e->string ? e->string : "");
			return -EINVAL;
		}
		if (setenv(e->string, e->valuestring, 1) < 0)
			goto oom;
	}
	for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
		if (setenv(fixed[i].key, fixed[i].value, 1) < 0)
			goto oom;
	tzset();
	return 0;
oom:
	*ret_error = runtime_error_jsonf("Runtime.InvalidInit", "setenv() failed: %m");
	return -ENOMEM;
}

/* Parses INST_INIT, sets environment and cwd, loads the code. Returns 0, or -errno with
 * *ret_error the INST_INIT_ERROR payload. cfg's strings point into *ret_init. */
/* Moves the calling (single-threaded) process into the cgroup whose v1 "tasks" file fd is. */
static int write_cgroup_fd(int fd)
{
	ssize_t n;
	do
		n = write(fd, "0", 1);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : n < 0 ? -errno : -EIO;
}

static int instance_init(const struct runtime_ops *ops, const char *payload, size_t len,
			 cJSON **ret_init, struct inst_config *cfg, char **ret_error)
{
	_cleanup_(cJSON_Deletep) cJSON *j = NULL;
	static char arn[512], group[256], stream[256];
	char date[16];
	struct tm tm;
	time_t now;
	int r;

	j = cJSON_ParseWithLength(payload, len);
	if (!cJSON_IsObject(j)) {
		*ret_error =
			runtime_error_jsonf("Runtime.InvalidInit", "INST_INIT: not a JSON object");
		return -EINVAL;
	}
	*cfg = (struct inst_config){
		.function_name = json_string(j, "function_name"),
		.function_version = json_string(j, "function_version"),
		.handler = json_string(j, "handler"),
		.code_dir = json_string(j, "code_dir"),
		.invoked_function_arn = json_string(j, "invoked_function_arn"),
	};
	if (!cfg->function_version)
		cfg->function_version = "$LATEST";
	if (!cfg->function_name || !cfg->handler || !cfg->code_dir) {
		*ret_error = runtime_error_jsonf("Runtime.InvalidInit",
						 "INST_INIT: %s: must be a string",
						 !cfg->function_name ? "function_name"
						 : !cfg->handler     ? "handler"
								     : "code_dir");
		return -EINVAL;
	}
	if (json_u32(j, "memory_mb", 128, &cfg->memory_mb) < 0 ||
	    json_u32(j, "timeout_ms", 3000, &cfg->timeout_ms) < 0) {
		*ret_error =
			runtime_error_jsonf("Runtime.InvalidInit",
					    "INST_INIT: memory_mb, timeout_ms: must be integers");
		return -EINVAL;
	}
	if (!cfg->invoked_function_arn) {
		(void)snprintf(arn, sizeof(arn), "arn:aws:lambda:local:000000000000:function:%s",
			       cfg->function_name);
		cfg->invoked_function_arn = arn;
	}
	now = time(NULL);
	(void)gmtime_r(&now, &tm);
	(void)strftime(date, sizeof(date), "%Y/%m/%d", &tm);
	(void)snprintf(group, sizeof(group), "/aws/lambda/%s", cfg->function_name);
	(void)snprintf(stream, sizeof(stream), "%s/[%s]%08x", date, cfg->function_version,
		       (unsigned)getpid());
	cfg->log_group_name = group;
	cfg->log_stream_name = stream;

	const cJSON *sb = cJSON_GetObjectItem(j, "sandbox");
	if (sandbox_dir && !cJSON_IsObject(sb)) {
		*ret_error = runtime_error_jsonf("Runtime.InvalidInit",
						 "INST_INIT: sandbox: required by this zygote");
		return -EINVAL;
	}
	if (sandbox_dir) {
		struct sandbox_config sc = {
			.code_dir = cfg->code_dir,
			.code_fd = -EBADF,
			.runtime = ops->name,
			.network = "none",
			.nofile = 1024,
		};
		struct sandbox_error e = { 0 };
		if (json_u32(sb, "uid", 0, &sc.uid) < 0 || json_u32(sb, "gid", 0, &sc.gid) < 0 ||
		    json_u32(sb, "tmp_mb", 64, &sc.tmp_mb) < 0 || sc.uid == 0 || sc.gid == 0) {
			*ret_error = runtime_error_jsonf("Runtime.InvalidInit",
							 "INST_INIT: sandbox: uid, gid, tmp_mb must be "
							 "positive integers");
			return -EINVAL;
		}
		/* First into the instance's cgroup (spored made it with the function's limits):
		 * a single-threaded process moving itself skips the kernel's global lock. spored
		 * sends the code mount and the tasks files, opened, with INST_INIT: the spare
		 * pivot_rooted ahead of demand and cannot reach them by their paths. */
		const cJSON *tasks = cJSON_GetObjectItem(sb, "cgroup_tasks"), *t;
		size_t k = 1;
		if (chan_rx.lost || chan_rx.n_fds != 1 + (size_t)cJSON_GetArraySize(tasks)) {
			*ret_error = runtime_error_jsonf(
				"Runtime.SandboxError",
				"INST_INIT: %zu fds, expected the code mount and %d cgroup tasks files",
				chan_rx.n_fds, cJSON_GetArraySize(tasks));
			return -EBADMSG;
		}
		cJSON_ArrayForEach(t, tasks) {
			r = cJSON_IsString(t) ? write_cgroup_fd(chan_rx.fds[k++]) : -EINVAL;
			if (r < 0) {
				*ret_error = runtime_error_jsonf(
					"Runtime.SandboxError", "cannot enter cgroup '%s': %s",
					cJSON_IsString(t) ? t->valuestring : "?", strerror(-r));
				return r;
			}
		}
		sc.code_fd = TAKE_FD(chan_rx.fds[0]); /* sandbox_enter() closes it */
		r = sandbox_enter(&sc, &e);
		if (r < 0) {
			*ret_error = runtime_error_jsonf("Runtime.SandboxError",
							 "entering the sandbox failed at '%s': %s%s%s",
							 e.step ?: "?", strerror(-r),
							 e.message ? ": " : "", e.message ?: "");
			return r;
		}
		cfg->code_dir = "/var/task";
	}

	r = setup_env(j, cfg, ret_error);
	if (r < 0)
		return r;
	if (chdir(cfg->code_dir) < 0) {
		r = -errno;
		*ret_error = runtime_error_jsonf("Runtime.InvalidInit", "code_dir '%s': %s",
						 cfg->code_dir, strerror(-r));
		return r;
	}
	r = ops->load(cfg, ret_error);
	if (r < 0)
		return r;
	*ret_init = TAKE_PTR(j);
	return 0;
}

/* Returns the instance's exit code. */
static int instance_loop(const struct runtime_ops *ops, int chan)
{
	_cleanup_(cJSON_Deletep) cJSON *init = NULL;
	_cleanup_free_ char *payload = NULL;
	struct inst_config cfg;
	char *error = NULL;
	uint32_t type;
	size_t len;
	int r;

	r = frame_recv(chan, &type, &payload, &len);
	if (r <= 0)
		return r < 0 ? 2 : 0;
	if (type != INST_INIT) {
		fprintf(stderr, "spore: expected INST_INIT, got frame type %" PRIu32 "\n", type);
		return 2;
	}
	r = instance_init(ops, payload, len, &init, &cfg, &error);
	chan_rx_fds_close(); /* used, or nobody asked for them */
	payload = mfree(payload);
	if (r < 0) {
		if (ops->flush)
			ops->flush();
		(void)send_error_frame(chan, INST_INIT_ERROR, error);
		return 1;
	}
	if (frame_send(chan, INST_READY, NULL, 0) < 0)
		return 0;

	for (;;) {
		_cleanup_free_ char *out = NULL;
		struct proto_invoke pi;
		struct inst_invoke inv;
		const char *event;
		size_t event_len, out_len = 0;

		payload = mfree(payload);
		r = frame_recv(chan, &type, &payload, &len);
		if (r <= 0)
			return r < 0 ? 2 : 0;
		if (type != INST_INVOKE || len < sizeof(pi)) {
			fprintf(stderr, "spore: bad frame (type %" PRIu32 ", %zu bytes)\n", type,
				len);
			return 2;
		}
		memcpy(&pi, payload, sizeof(pi));
		pi.request_id[sizeof(pi.request_id) - 1] = 0;
		event = payload + sizeof(pi);
		event_len = len - sizeof(pi);
		if (event_len == 0) {
			event = "null";
			event_len = 4;
		}
		inv = (struct inst_invoke){ .request_id = pi.request_id,
					    .deadline_ms = pi.deadline_ms };

		r = ops->invoke(event, event_len, &inv, &out, &out_len);
		if (ops->flush)
			ops->flush();
		(void)fflush(stdout);
		if (r < 0) {
			fprintf(stderr, "spore: runtime failure: %s\n", strerror(-r));
			return 2;
		}
		if (out_len > RESPONSE_MAX) {
			out = mfree(out);
			r = send_error_frame(
				chan, INST_ERROR,
				runtime_error_jsonf(
					"Function.ResponseSizeTooLarge",
					"Response payload size (%zu bytes) exceeded maximum "
					"allowed payload size (%zu bytes).",
					out_len, RESPONSE_MAX));
		} else
			r = frame_send(chan, r == INVOKE_RESULT ? INST_RESULT : INST_ERROR, out,
				       out_len);
		if (r < 0)
			return 0; /* spored went away */
	}
}

/* Puts chan on fd 3, out and err on 1 and 2, /dev/null on 0, and closes everything else. */
static int instance_fds(int chan, int out, int err)
{
	int c, o, e, null;

	c = fcntl(chan, F_DUPFD_CLOEXEC, 10);
	o = fcntl(out, F_DUPFD_CLOEXEC, 10);
	e = fcntl(err, F_DUPFD_CLOEXEC, 10);
	if (c < 0 || o < 0 || e < 0)
		return -errno;
	if (dup2(o, STDOUT_FILENO) < 0 || dup2(e, STDERR_FILENO) < 0 ||
	    dup3(c, CHAN_FD, O_CLOEXEC) < 0)
		return -errno;
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null >= 0 && null != STDIN_FILENO) {
		(void)dup2(null, STDIN_FILENO);
		(void)close(null);
	}
	/* close_range(): Linux 5.9 */
	if (close_range(CHAN_FD + 1, ~0U, 0) < 0)
		return -errno;
	return 0;
}

static _noreturn_ void instance_run(const struct runtime_ops *ops, int chan, int out, int err)
{
	int r;

	r = instance_fds(chan, out, err);
	if (r < 0) {
		fprintf(stderr, "spore: instance setup failed: %s\n", strerror(-r));
		_exit(2);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	r = instance_loop(ops, CHAN_FD);
	if (ops->flush)
		ops->flush();
	(void)fflush(stdout);
	(void)fflush(stderr);
	exit(r);
}

/* ---- spares -------------------------------------------------------------------------------- */

/* Fault in every private mapping now, so the instance does not take a fault per page on its
 * cold start path: writable ones are copied (MADV_POPULATE_WRITE: no copy-on-write faults later),
 * read-only and executable ones (library text, read-only data) just get their page table entries,
 * which fork() does not copy for file mappings (MADV_POPULATE_READ). Linux 5.14; errors (EINVAL
 * on older kernels, EFAULT past the end of a file) are fine: this only saves time. */
static void prefault_memory(void)
{
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *line = NULL;
	size_t n = 0, total = 0;

	f = fopen("/proc/self/maps", "re");
	if (!f)
		return;
	while (getline(&line, &n, f) > 0) {
		unsigned long start, end;
		char perms[5];

		if (sscanf(line, "%lx-%lx %4s", &start, &end, perms) != 3 || end <= start)
			continue;
		if (perms[0] != 'r' || perms[3] != 'p')
			continue;
		if (end - start > PREFAULT_MAP_MAX || total + (end - start) > PREFAULT_TOTAL_MAX)
			continue;
		total += end - start;
		(void)madvise((void *)start, end - start,
			      perms[1] == 'w' ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
	}
}

static _noreturn_ void spare_run(struct zygote *z, int sock)
{
	int fds[MAX_RECV_FDS];
	size_t n_fds = 0;
	char c = SPARE_READY;
	ssize_t n;

	/* Keep only 0, 1, 2 and our end of the socketpair (close_range(): Linux 5.9). */
	if (sock > 3)
		(void)close_range(3, (unsigned)sock - 1, 0);
	(void)close_range((unsigned)sock + 1, ~0U, 0);
	if (z->prefault)
		prefault_memory();
	if (send(sock, &c, 1, MSG_NOSIGNAL) < 0)
		_exit(0);
	do
		n = recv_fds(sock, &c, 1, 0, fds, ELEMENTSOF(fds), &n_fds);
	while (n == -EINTR);
	if (n <= 0)
		_exit(0); /* the zygote retired us */
	if (c != SPARE_GO || n_fds != 3) {
		fprintf(stderr, "spore: spare got a bad hand-over\n");
		_exit(2);
	}
	(void)close(sock);
	instance_run(z->ops, fds[0], fds[1], fds[2]);
}

/* ---- zygote -------------------------------------------------------------------------------- */

/* Every spare and instance: the host's OOM killer takes instances before spored or a zygote
 * (what instance_memory_pct above 100, an overcommit, relies on). Raising one's own score needs
 * no privilege; an error only leaves the default. */
static void oom_score_raise(void)
{
	_cleanup_close_ int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

	if (fd >= 0)
		(void)!write(fd, "800", 3);
}

/* Every spare and instance runs SCHED_BATCH: a woken instance does not preempt the task that
 * woke it. spored hands an invocation over with a send() that wakes the instance, and under
 * SCHED_OTHER the instance preempted spored right there (11 % of spored's samples under wrk in
 * schedule() on the way out of that send()), one switch more per request and no batching of
 * the next ones. Side by side on an idle host, wrk -c16 on the native no-op: 50-51k -> 56-59k
 * requests/s. Any thread may choose SCHED_BATCH; an error only leaves SCHED_OTHER. */
static void sched_batch(void)
{
	const struct sched_param none = { .sched_priority = 0 };

	(void)sched_setscheduler(0, SCHED_BATCH, &none);
}

/* In every child right after fork(): default signal mask, die with the zygote. */
static void child_setup(struct zygote *z)
{
	sigset_t none;

	(void)sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	/* In a new pid namespace the parent is outside it: getppid() is 0 there. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
	    (getppid() != z->pid && !(sandbox_dir && getppid() == 0)))
		_exit(0);
}

/* A fresh child cgroup of the pool: its O_PATH fd, its name in name[]. */
static int pool_cgroup_new(char name[ZYG_CGROUP_MAX])
{
	int fd, r;

	(void)snprintf(name, ZYG_CGROUP_MAX, "i-%d-%" PRIu64, (int)getpid(), ++pool_seq);
	if (mkdirat(pool_fd, name, 0755) < 0)
		return -errno;
	fd = openat(pool_fd, name, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		r = -errno;
		(void)unlinkat(pool_fd, name, AT_REMOVEDIR);
		return r;
	}
	return fd;
}

/* rmdir of a child cgroup the zygote made and never handed over (a spare that died). Its
 * processes may still be on their way out: then the next zygote, or spored, removes it. */
static void pool_cgroup_remove(char name[ZYG_CGROUP_MAX])
{
	if (pool_fd >= 0 && name[0])
		(void)unlinkat(pool_fd, name, AT_REMOVEDIR);
	name[0] = '\0';
}

/* At start: the empty child cgroups a dead zygote of this runtime left behind. */
static void pool_cleanup(void)
{
	_cleanup_close_ int fd = -EBADF;
	DIR *d;
	struct dirent *de;

	fd = openat(pool_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d)
		return;
	TAKE_FD(fd);
	while ((de = readdir(d)))
		if (de->d_type == DT_DIR && startswith(de->d_name, "i-"))
			(void)unlinkat(pool_fd, de->d_name, AT_REMOVEDIR); /* EBUSY: in use */
	(void)closedir(d);
}

/* In a new child: phase 1 of the sandbox, when there is one. */
static void child_prepare(struct zygote *z)
{
	struct sandbox_error e = { 0 };
	/* pivot_root now, off the cold path: INST_INIT brings the code as a mount (code_fd). */
	struct sandbox_prepare_opts o = { .root_dir = sandbox_dir, .runtime = z->ops->name,
					  .pivot = true };

	if (!sandbox_dir)
		return;
	if (sandbox_prepare(&o, &e) < 0) {
		fprintf(stderr, "%s: sandbox: %s: %s%s%s\n", zname, e.step ?: "prepare",
			strerror(e.error < 0 ? -e.error : e.error), e.message ? ": " : "",
			e.message ?: "");
		_exit(3);
	}
}

/* In a new child of a runtime with spare_main(): the hook, and if it returns, the usual
 * phase 1 before the child goes on as a C spare (sock) or instance (fds). */
static void child_spare_main(struct zygote *z, int sock, const int fds[3])
{
	if (!z->ops->spare_main)
		return;
	z->ops->spare_main(sandbox_dir, sock, fds);
	child_prepare(z);
}

/* Returns the child's pid (0 in the child), or -errno. cg[] gets the child cgroup it was
 * cloned into ("" if none). */
static pid_t zygote_fork(struct zygote *z, char cg[ZYG_CGROUP_MAX])
{
	pid_t pid;
	int saved;

	if (z->ops->before_fork)
		z->ops->before_fork();
	/* Sandboxed children are PID 1 of their own pid, mount, IPC, UTS and network namespaces;
	 * they build their root now, ahead of demand (sandbox/sandbox.h). */
	cg[0] = '\0';
	if (sandbox_dir && pool_fd >= 0) {
		_cleanup_close_ int fd = pool_cgroup_new(cg);

		if (fd < 0) {
			pid = fd;
			cg[0] = '\0';
		} else {
			pid = sandbox_clone_spare_into(fd);
			if (pid == -ENOSYS || pid == -EINVAL || pid == -E2BIG) {
				/* No CLONE_INTO_CGROUP here: spored moves instances itself. */
				log_warning_errno(pid, "%s: clone3(CLONE_INTO_CGROUP) failed, "
					       "cloning without it: %m", zname);
				pool_cgroup_remove(cg);
				pool_fd = safe_close(pool_fd);
				pid = sandbox_clone_spare();
			} else if (pid < 0)
				pool_cgroup_remove(cg);
		}
	} else
		pid = sandbox_dir ? sandbox_clone_spare() : fork();
	if (pid == 0) {
		pool_fd = safe_close(pool_fd);
		oom_score_raise();
		sched_batch();
		if (sandbox_dir && args_start && args_len > sizeof("spore-instance")) {
			memset(args_start, 0, args_len);
			memcpy(args_start, "spore-instance", sizeof("spore-instance"));
		}
		if (z->ops->after_fork_child)
			z->ops->after_fork_child();
		child_setup(z);
		/* With spare_main(), the caller runs the hook first: it prepares its own sandbox. */
		if (!z->ops->spare_main)
			child_prepare(z);
		return 0;
	}
	if (sandbox_dir && pid < 0) {
		errno = -pid;
		pid = -1;
	}
	if (pid < 0)
		cg[0] = '\0';
	saved = errno;
	if (z->ops->after_fork_parent)
		z->ops->after_fork_parent();
	return pid < 0 ? -saved : pid;
}

static int spare_add(struct zygote *z)
{
	int sv[2];
	pid_t pid;

	if (z->n_spares >= SPARES_MAX)
		return -ENOSPC;
	char cg[ZYG_CGROUP_MAX];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid = zygote_fork(z, cg);
	if (pid < 0) {
		(void)close(sv[0]);
		(void)close(sv[1]);
		return pid;
	}
	if (pid == 0) {
		child_spare_main(z, sv[1], NULL);
		spare_run(z, sv[1]);
	}
	(void)close(sv[1]);
	z->spares[z->n_spares] = (struct spare){ .pid = pid, .fd = sv[0] };
	memcpy(z->spares[z->n_spares++].cgroup, cg, sizeof(cg));
	return 0;
}

static void spare_remove(struct zygote *z, size_t i)
{
	safe_close(z->spares[i].fd);
	z->spares[i] = z->spares[--z->n_spares];
}

static int instance_add(struct zygote *z, pid_t pid)
{
	if (z->n_instances == z->cap_instances) {
		size_t cap = z->cap_instances ? z->cap_instances * 2 : 16;
		pid_t *p = reallocarray(z->instances, cap, sizeof(pid_t));
		if (!p)
			return -ENOMEM;
		z->instances = p;
		z->cap_instances = cap;
	}
	z->instances[z->n_instances++] = pid;
	return 0;
}

static bool instance_remove(struct zygote *z, pid_t pid)
{
	for (size_t i = 0; i < z->n_instances; i++)
		if (z->instances[i] == pid) {
			z->instances[i] = z->instances[--z->n_instances];
			return true;
		}
	return false;
}

/* Returns the pid of the instance now holding fds (the caller still closes its copies), or
 * -errno; cg[] gets the name of its cgroup below --cgroup-pool ("" if none), which is spored's
 * from now on. A ready spare is used if there is one, else a fresh fork. */
static pid_t spawn_instance(struct zygote *z, const int fds[3], char cg[ZYG_CGROUP_MAX])
{
	const char go = SPARE_GO;
	pid_t pid = 0;
	int r;

	for (size_t i = 0; i < z->n_spares; i++) {
		struct spare *s = &z->spares[i];

		if (!s->ready || s->fd < 0)
			continue;
		r = send_fds(s->fd, &go, 1, fds, 3);
		s->fd = safe_close(s->fd);
		s->ready = false;
		if (r < 0)
			continue; /* it died; reaped later and never reported */
		pid = s->pid;
		memcpy(cg, s->cgroup, ZYG_CGROUP_MAX);
		s->cgroup[0] = '\0';
		spare_remove(z, i);
		break;
	}
	if (pid == 0) {
		pid = zygote_fork(z, cg);
		if (pid < 0)
			return pid;
		if (pid == 0) {
			child_spare_main(z, -1, fds);
			instance_run(z->ops, fds[0], fds[1], fds[2]);
		}
	}
	r = instance_add(z, pid);
	if (r < 0) {
		(void)kill(pid, SIGKILL);
		return r;
	}
	return pid;
}

static int ctl_send(struct zygote *z, const void *msg, size_t len)
{
	if (send(z->ctl, msg, len, MSG_NOSIGNAL) < 0)
		return log_debug_errno(errno, "%s: Failed to send on the control socket: %m",
				       zname);
	return 0;
}

static void reap(struct zygote *z)
{
	struct signalfd_siginfo si;

	while (read(z->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		;
	for (;;) {
		struct zyg_exited msg = { .hdr = { ZYG_EXITED, PROTO_VERSION } };
		bool spare = false;
		int status;
		pid_t pid;

		pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			break;
		for (size_t i = 0; i < z->n_spares; i++)
			if (z->spares[i].pid == pid) {
				pool_cgroup_remove(z->spares[i].cgroup);
				spare_remove(z, i);
				spare = true;
				break;
			}
		if (spare || !instance_remove(z, pid))
			continue;
		msg.pid = pid;
		msg.status = status;
		(void)ctl_send(z, &msg, sizeof(msg));
	}
}

/* One message from spored. Returns 0, or 1 when the zygote should exit. */
static int handle_ctl(struct zygote *z)
{
	union {
		struct zyg_hdr hdr;
		struct zyg_spawn spawn;
		char raw[256];
	} m = {};
	struct zyg_spawned reply = { .hdr = { ZYG_SPAWN_FAILED, PROTO_VERSION } };
	int fds[MAX_RECV_FDS];
	size_t n_fds = 0;
	ssize_t n;
	pid_t pid;

	n = recv_fds(z->ctl, &m, sizeof(m), MSG_DONTWAIT, fds, ELEMENTSOF(fds), &n_fds);
	if (n == -EINTR || n == -EAGAIN)
		return 0;
	/* EOF, or a reset when spored closed with our messages unread: spored is gone. */
	if (n == 0 || n == -ECONNRESET)
		return 1;
	if (n < 0) {
		log_error_errno((int)n, "%s: Failed to receive on the control socket: %m", zname);
		return 1;
	}
	z->last_activity = mono_ms();
	if ((size_t)n < sizeof(struct zyg_spawn) || m.hdr.type != ZYG_SPAWN) {
		log_warning("%s: Unexpected control message (type %" PRIu32
			    ", %zd bytes), ignoring",
			    zname, (size_t)n >= sizeof(m.hdr) ? m.hdr.type : 0, n);
		close_fds(fds, MIN(n_fds, ELEMENTSOF(fds)));
		return 0;
	}
	reply.token = m.spawn.token;
	if (m.hdr.version != PROTO_VERSION)
		reply.error = -EPROTO;
	else if (n_fds != 3)
		reply.error = -EBADMSG;
	else {
		pid = spawn_instance(z, fds, reply.cgroup);
		if (pid < 0)
			reply.error = pid;
		else {
			reply.hdr.type = ZYG_SPAWNED;
			reply.pid = pid;
		}
	}
	close_fds(fds, MIN(n_fds, ELEMENTSOF(fds)));
	(void)ctl_send(z, &reply, sizeof(reply));
	return 0;
}

static int zygote_loop(struct zygote *z)
{
	for (;;) {
		struct pollfd p[2 + SPARES_MAX];
		size_t idx[SPARES_MAX], n = 2;
		int timeout = -1, r;

		p[0] = (struct pollfd){ .fd = z->ctl, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = z->sigfd, .events = POLLIN };
		for (size_t i = 0; i < z->n_spares; i++)
			if (!z->spares[i].ready && z->spares[i].fd >= 0) {
				idx[n - 2] = i;
				p[n++] = (struct pollfd){ .fd = z->spares[i].fd, .events = POLLIN };
			}
		if (z->n_spares < z->spares_max) {
			int64_t idle = mono_ms() - z->last_activity;
			timeout = idle >= SPARE_IDLE_MS ? 0 : (int)(SPARE_IDLE_MS - idle);
		}

		r = poll(p, n, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return log_error_errno(errno, "%s: poll() failed: %m", zname);
		}
		if (r == 0) {
			r = spare_add(z);
			if (r < 0) {
				log_warning_errno(r, "%s: Failed to fork a spare, ignoring: %m",
						  zname);
				z->last_activity = mono_ms(); /* back off */
			}
			continue;
		}
		/* A spare is ready, or gone. Before reap(), which reorders the array. */
		for (size_t k = 2; k < n; k++) {
			struct spare *s = &z->spares[idx[k - 2]];
			ssize_t m;
			char c;

			if (!p[k].revents)
				continue;
			m = recv(s->fd, &c, 1, MSG_DONTWAIT);
			if (m == 1 && c == SPARE_READY)
				s->ready = true;
			else if (m >= 0 || (errno != EAGAIN && errno != EINTR))
				s->fd = safe_close(s->fd);
		}
		if (p[1].revents)
			reap(z);
		if (p[0].revents && handle_ctl(z) > 0)
			return 0;
	}
}

static void zygote_done(struct zygote *z)
{
	for (size_t i = 0; i < z->n_instances; i++)
		(void)kill(z->instances[i], SIGKILL);
	for (size_t i = 0; i < z->n_spares; i++) {
		(void)kill(z->spares[i].pid, SIGKILL);
		z->spares[i].fd = safe_close(z->spares[i].fd);
	}
	z->instances = mfree(z->instances);
	z->n_instances = z->cap_instances = z->n_spares = 0;
	z->sigfd = safe_close(z->sigfd);
	z->ctl = safe_close(z->ctl);
	pool_fd = safe_close(pool_fd);
}

static int check_ctl(int fd)
{
	int type = 0;
	socklen_t l = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0)
		return -errno;
	if (type != SOCK_SEQPACKET)
		return -ENOTSOCK;
	return RET_NERRNO(fcntl(fd, F_SETFD, FD_CLOEXEC));
}

static void help(const char *name)
{
	printf("%s [OPTIONS]\n\n"
	       "spore zygote; started by spored with its control socket on fd 3.\n\n"
	       "  -h --help            show this help\n"
	       "     --spares N        pre-forked spare instances to keep (0-%d, default %d)\n"
	       "     --no-prefault     do not prefault spare memory\n"
	       "     --sandbox-dir DIR where sandboxed spares build their root\n"
	       "     --cgroup-pool DIR clone each sandboxed child into a new v2 cgroup below DIR\n"
	       "     --log-level LVL   debug, info, notice, warning, error (default info)\n",
	       name, SPARES_MAX, SPARES_DEFAULT);
}

static int parse_argv(struct zygote *z, int argc, char *argv[])
{
	enum { ARG_SPARES = 0x100, ARG_NO_PREFAULT, ARG_LOG_LEVEL, ARG_SANDBOX_DIR, ARG_CGROUP_POOL };
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "sandbox-dir", required_argument, NULL, ARG_SANDBOX_DIR },
		{ "cgroup-pool", required_argument, NULL, ARG_CGROUP_POOL },
		{ "spares", required_argument, NULL, ARG_SPARES },
		{ "no-prefault", no_argument, NULL, ARG_NO_PREFAULT },
		{ "log-level", required_argument, NULL, ARG_LOG_LEVEL },
		{}
	};
	int c, r;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
		switch (c) {
		case 'h':
			help(argv[0]);
			return 0;
		case ARG_SPARES: {
			char *end;
			unsigned long v;

			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || v > SPARES_MAX) {
				log_error("%s: --spares: must be an integer between 0 and %d: '%s'",
					  zname, SPARES_MAX, optarg);
				return -EINVAL;
			}
			z->spares_max = (unsigned)v;
			break;
		}
		case ARG_NO_PREFAULT:
			z->prefault = false;
			break;
		case ARG_SANDBOX_DIR:
			if (optarg[0] != '/') {
				log_error("%s: --sandbox-dir: must be an absolute path: '%s'", zname,
					  optarg);
				return -EINVAL;
			}
			/* Copied: a sandboxed child blanks the argv strings. */
			if (strlen(optarg) >= sizeof(sandbox_dir_buf)) {
				log_error("%s: --sandbox-dir: too long", zname);
				return -EINVAL;
			}
			strcpy(sandbox_dir_buf, optarg);
			sandbox_dir = sandbox_dir_buf;
			break;
		case ARG_CGROUP_POOL:
			if (optarg[0] != '/') {
				log_error("%s: --cgroup-pool: must be an absolute path: '%s'", zname,
					  optarg);
				return -EINVAL;
			}
			if (strlen(optarg) >= sizeof(cgroup_pool_buf)) {
				log_error("%s: --cgroup-pool: too long", zname);
				return -EINVAL;
			}
			strcpy(cgroup_pool_buf, optarg);
			cgroup_pool = cgroup_pool_buf;
			break;
		case ARG_LOG_LEVEL:
			r = log_level_from_string(optarg);
			if (r < 0) {
				log_error("%s: --log-level: unknown level '%s'", zname, optarg);
				return -EINVAL;
			}
			log_set_max_level(r);
			break;
		default:
			return -EINVAL;
		}
	if (optind < argc) {
		log_error("%s: Unexpected argument '%s'", zname, argv[optind]);
		return -EINVAL;
	}
	return 1;
}

int zygote_main(const struct runtime_ops *ops, int argc, char *argv[])
{
	struct zygote z = {
		.ops = ops,
		.pid = getpid(),
		.ctl = -EBADF,
		.sigfd = -EBADF,
		.spares_max = SPARES_DEFAULT,
		.prefault = true,
	};
	struct zyg_hello hello = { .hdr = { ZYG_HELLO, PROTO_VERSION }, .pid = z.pid };
	sigset_t mask;
	int r;

	(void)snprintf(zname, sizeof(zname), "zygote-%s", ops->name);
	if (argc > 0 && argv[0]) {
		args_start = argv[0];
		args_len = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - argv[0]);
	}
	r = parse_argv(&z, argc, argv);
	if (r <= 0)
		return r < 0 ? 2 : 0;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return log_error_errno(errno, "%s: prctl(PR_SET_PDEATHSIG) failed: %m", zname), 1;
	r = check_ctl(CTL_FD);
	if (r < 0)
		return log_error_errno(r,
				       "%s: fd %d is not the control socket (SOCK_SEQPACKET): %m",
				       zname, CTL_FD),
		       2;
	z.ctl = CTL_FD;

	(void)sigemptyset(&mask);
	(void)sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return log_error_errno(errno, "%s: sigprocmask() failed: %m", zname), 1;
	z.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (z.sigfd < 0)
		return log_error_errno(errno, "%s: signalfd() failed: %m", zname), 1;

	r = ops->init_language();
	if (r < 0) {
		log_error_errno(r, "%s: Failed to initialise the %s runtime: %m", zname, ops->name);
		zygote_done(&z);
		return 1;
	}
	if (sandbox_dir && cgroup_pool) {
		pool_fd = open(cgroup_pool, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (pool_fd < 0)
			log_warning_errno(errno, "%s: cannot open --cgroup-pool %s, ignoring: %m",
					  zname, cgroup_pool);
		else
			pool_cleanup();
	}
	if (sandbox_dir) {
		struct sandbox_error e = { 0 };
		r = sandbox_init(ops->name, &e);
		if (r < 0) {
			log_error_errno(r, "%s: sandbox: %s: %m%s%s", zname, e.step ?: "init",
					e.message ? ": " : "", e.message ?: "");
			zygote_done(&z);
			return 1;
		}
	}
	(void)snprintf(hello.runtime, sizeof(hello.runtime), "%s", ops->name);
	if (ctl_send(&z, &hello, sizeof(hello)) < 0) {
		zygote_done(&z);
		return 1;
	}
	log_debug("%s: ready, pid %d, %u spares", zname, (int)z.pid, z.spares_max);
	z.last_activity = mono_ms();

	r = zygote_loop(&z);
	zygote_done(&z);
	return r < 0 ? 1 : 0;
}
