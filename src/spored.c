/* SPDX-License-Identifier: MIT */
/* spored: the supervisor. Wires the modules together around one io_uring event loop. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "logs.h"
#include "loop.h"
#include "registry.h"
#include "scheduler.h"
#include "server.h"
#include "spore-config.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/json.h"
#include "zygotes.h"
#include "cgroup.h"
#include "meter.h"
#include "metrics.h"
#include "async.h"
#include "triggers.h"
#include "secrets.h"
#include "systemd.h"
#include "deps.h"
#include <sys/file.h>

#define INIT_TIMEOUT_MS 10000
#define TICK_US 1000000u
/* READY=1 waits this long at most for the zygotes and reserved instances. */
#define BOOT_READY_TIMEOUT_US (60u * 1000000u)
#define BOOT_CHECK_US (20u * 1000u)

struct daemon {
	struct spore_config cfg;
	struct loop *loop;
	struct registry *reg;
	struct log_store *logs;
	struct cgroup_manager *cgroups;
	struct meter *meter;
	struct metrics_codes *codes;
	struct async *async;
	struct triggers *triggers;
	struct secrets *secrets;
	struct deps *deps;
	int lock_fd;
	struct sched *sched;
	struct zygotes *zygotes;
	struct api *api;
	struct server *server;
	int sigfd;
	uint64_t sig_token;
	struct loop_timer tick;
	bool quit;
	/* systemd: READY=1 once the zygotes and reserved instances are up (boot timer); SIGTERM
	 * drains (grace timer) before quit; SIGHUP re-reads the configuration with these args. */
	int argc;
	char **argv;
	struct systemd_listeners sd_listeners;
	struct loop_timer boot;
	uint64_t boot_started_us;
	bool ready;
	bool draining;
	struct loop_timer grace;
	char *status; /* the last STATUS= sent */
};

static struct daemon *tick_daemon;

static void reap_children(struct daemon *d)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return;
		if (!zygotes_child_exited(d->zygotes, pid, status) &&
		    !deps_child_exited(d->deps, pid, status))
			sched_child_exited(d->sched, pid, status);
	}
}

#define DAEMON_OF(ptr, member) ((struct daemon *)((char *)(ptr) - offsetof(struct daemon, member)))

/* The one-line STATUS= summary, sent when it changes. */
static void notify_status(struct daemon *d)
{
	size_t running = 0, n_zyg = d->zygotes ? zygotes_count(d->zygotes) : 0;
	for (size_t i = 0; i < n_zyg; i++) {
		struct zygote_info zi;
		zygotes_info(d->zygotes, i, &zi);
		running += zi.state == ZYGOTE_RUNNING;
	}
	uint32_t instances = 0;
	uint64_t memory_mb = 0;
	if (d->sched)
		sched_totals(d->sched, &instances, &memory_mb);
	_cleanup_free_ char *s = NULL;
	if (asprintf(&s, "%zu function(s), %u instance(s), %zu connection(s), runtimes %zu/%zu "
			 "running",
		     d->reg ? registry_count(d->reg) : 0, instances,
		     d->server ? server_connection_count(d->server) : 0, running, n_zyg) < 0)
		return;
	if (d->status && streq(d->status, s))
		return;
	_cleanup_free_ char *msg = NULL;
	if (asprintf(&msg, "STATUS=%s", s) < 0)
		return;
	(void)systemd_notify(msg);
	free(d->status);
	d->status = TAKE_PTR(s);
}

/* Booted: no zygote still on its first start, no reserved instance still starting. */
static bool boot_settled(struct daemon *d)
{
	for (size_t i = 0; i < zygotes_count(d->zygotes); i++) {
		struct zygote_info zi;
		zygotes_info(d->zygotes, i, &zi);
		if (zi.state == ZYGOTE_STARTING && zi.restarts == 0)
			return false;
	}
	for (size_t i = 0; i < registry_count(d->reg); i++) {
		const struct fn_record *f = registry_at(d->reg, i);
		if (f->scaling.min_instances == 0)
			continue;
		_cleanup_json_ cJSON *list = sched_instances_json(d->sched, f->name);
		const cJSON *it;
		cJSON_ArrayForEach(it, list) {
			const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(it, "state"));
			if (st && streq(st, "starting"))
				return false;
		}
	}
	return true;
}

static void on_boot_check(struct loop_timer *t)
{
	struct daemon *d = DAEMON_OF(t, boot);
	if (d->ready || d->draining)
		return;
	bool settled = boot_settled(d);
	if (!settled && now_us() - d->boot_started_us < BOOT_READY_TIMEOUT_US) {
		(void)loop_timer_start(d->loop, t, now_us() + BOOT_CHECK_US);
		return;
	}
	if (!settled)
		log_warning("spored: zygotes or reserved instances still starting after %u s; "
			    "telling systemd it is ready anyway",
			    BOOT_READY_TIMEOUT_US / 1000000u);
	d->ready = true;
	log_info("spored %s ready (pid %d)", SPORE_VERSION, (int)getpid());
	(void)systemd_notify("READY=1");
	notify_status(d);
}

static void on_grace_expired(struct loop_timer *t)
{
	struct daemon *d = DAEMON_OF(t, grace);
	size_t n = server_connection_count(d->server);
	if (n > 0)
		log_warning("spored: %zu connection(s) still being answered after shutdown_grace_s "
			    "= %u s; closing them",
			    n, d->cfg.shutdown_grace_s);
	d->quit = true;
}

/* SIGTERM: stop accepting, let the requests being answered finish (up to shutdown_grace_s),
 * then quit (the main loop notices when the last connection is gone). */
static void begin_shutdown(struct daemon *d, int sig)
{
	d->draining = true;
	loop_timer_stop(d->loop, &d->boot);
	api_drain(d->api);
	server_drain(d->server);
	size_t n = server_connection_count(d->server);
	log_info("spored: received %s, shutting down (%zu connection(s) being answered, waiting "
		 "up to %u s)",
		 sigabbrev_np(sig), n, d->cfg.shutdown_grace_s);
	(void)systemd_notifyf("STOPPING=1\nSTATUS=Stopping: %zu connection(s) being answered", n);
	if (n == 0 || d->cfg.shutdown_grace_s == 0)
		d->quit = true;
	else
		(void)loop_timer_start(d->loop, &d->grace,
				       now_us() + (uint64_t)d->cfg.shutdown_grace_s * 1000000u);
}

static void reload_changed(const char *key, bool live, void *userdata)
{
	(void)userdata;
	if (live)
		log_info("spored: SIGHUP: '%s' changed, applied", key);
	else
		log_warning("spored: SIGHUP: '%s' changed; it takes effect at the next start, "
			    "ignoring",
			    key);
}

/* SIGHUP: the configuration file again, the command line on top, as at start; what can change
 * live does (config_apply_live()), the rest waits for a restart and says so. Nothing else is
 * touched: connections, instances and zygotes stay. */
static void reload(struct daemon *d)
{
	(void)systemd_notify("RELOADING=1");
	struct spore_config n;
	_cleanup_free_ char *err = NULL;
	int r = config_init(&n);
	if (r >= 0)
		r = config_from_args(&n, d->argc, d->argv, &err);
	if (r < 0)
		log_error("spored: SIGHUP: %s; configuration unchanged",
			  err ?: "out of memory");
	else {
		r = config_apply_live(&d->cfg, &n, reload_changed, NULL);
		if (r < 0)
			log_error_errno(r, "spored: SIGHUP: cannot apply the configuration: %m");
		else
			log_info("spored: SIGHUP: configuration reloaded, %d setting(s) changed", r);
		log_set_max_level(d->cfg.log_level);
		struct server_limits lim = {
			.max_connections = d->cfg.max_connections,
			.header_max = d->cfg.header_max,
			.header_timeout_ms = d->cfg.header_timeout_ms,
			.keepalive_timeout_ms = d->cfg.keepalive_timeout_ms,
		};
		server_set_limits(d->server, &lim);
	}
	config_done(&n);
	if (d->ready && !d->draining) {
		free(d->status);
		d->status = NULL;
		(void)systemd_notify("READY=1");
		notify_status(d);
	}
}

static void on_signal(void *ud, int res, uint32_t flags)
{
	struct daemon *d = ud;
	(void)flags;
	if (res < 0)
		return;
	struct signalfd_siginfo si;
	while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap_children(d);
			break;
		case SIGTERM:
		case SIGINT:
			if (d->draining) {
				log_notice("spored: received %s again, stopping now",
					   sigabbrev_np((int)si.ssi_signo));
				d->quit = true;
			} else
				begin_shutdown(d, (int)si.ssi_signo);
			break;
		case SIGHUP:
			reload(d);
			break;
		default:
			break;
		}
	}
}

static void on_tick(struct loop_timer *t)
{
	struct daemon *d = tick_daemon;
	server_tick(d->server);
	sched_tick(d->sched);
	if (d->ready && !d->draining)
		notify_status(d);
	if (d->triggers)
		(void)triggers_tick(d->triggers, realtime_us());
	(void)loop_timer_start(d->loop, t, now_us() + TICK_US);
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* The cgroup subtree of this spored: one per state dir, so several spored can share a parent
 * cgroup and a restarted one finds what a killed one left. */
static int sandbox_setup(struct daemon *d)
{
	const struct spore_config *c = &d->cfg;
	if (geteuid() != 0)
		return log_error_errno(EPERM, "spored: the sandbox needs root (namespaces, cgroups, "
					      "uid changes); run as root, or set 'sandbox = no' for "
					      "development without isolation");
	char name[32];
	uint32_t h = 2166136261u;
	for (const char *p = c->state_dir; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	snprintf(name, sizeof(name), "spore-%08x", h);
	int r = cgroup_manager_new("/sys/fs/cgroup", "/proc/self/cgroup", name, &d->cgroups);
	if (r < 0)
		return log_error_errno(r, "spored: cannot set up cgroups under '/sys/fs/cgroup': %m");
	r = cgroup_cleanup_stale(d->cgroups);
	if (r > 0)
		log_notice("spored: removed %d cgroup(s) left by an earlier spored", r);
	else if (r < 0)
		log_warning_errno(r, "spored: cannot clean up old cgroups: %m, ignoring");
	r = mkdir_p(c->sandbox_dir, 0755);
	if (r < 0)
		return log_error_errno(r, "spored: cannot create sandbox dir '%s': %m",
				       c->sandbox_dir);
	log_info("spored: sandbox on: cgroup subtree '%s', uids %u..%u", name, c->sandbox_uid_min,
		 c->sandbox_uid_min + c->sandbox_uid_count - 1);
	return 0;
}

static int setup(struct daemon *d)
{
	int r;
	const struct spore_config *c = &d->cfg;

	raise_nofile();
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warning_errno(errno, "spored: cannot become a subreaper: %m, ignoring");

	r = mkdir_p(c->state_dir, 0750);
	if (r < 0)
		return log_error_errno(r, "spored: cannot create state dir '%s': %m", c->state_dir);
	_cleanup_free_ char *sockdir = strdup(c->api_socket);
	if (!sockdir)
		return log_oom();
	r = mkdir_p(dirname(sockdir), 0755);
	if (r < 0)
		return log_error_errno(r, "spored: cannot create the directory of '%s': %m",
				       c->api_socket);

	/* One spored per state dir. */
	_cleanup_free_ char *lock = NULL;
	if (asprintf(&lock, "%s/spored.lock", c->state_dir) < 0)
		return log_oom();
	d->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (d->lock_fd < 0)
		return log_error_errno(errno, "spored: cannot open '%s': %m", lock);
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return log_error_errno(errno, "spored: state dir '%s' is in use by another spored (%m)",
				       c->state_dir);

	if (c->sandbox) {
		r = sandbox_setup(d);
		if (r < 0)
			return r;
	}

	r = registry_open(c->state_dir, &d->reg);
	if (r < 0)
		return log_error_errno(r, "spored: cannot open the registry in '%s': %m",
				       c->state_dir);
	for (size_t i = 0; i < registry_broken_count(d->reg); i++)
		log_error("spored: function '%s' has an unreadable function.json and is not served; "
			  "fix or remove %s/functions/%s",
			  registry_broken_at(d->reg, i), c->state_dir, registry_broken_at(d->reg, i));
	log_info("spored: %zu function(s) in '%s'", registry_count(d->reg), c->state_dir);

	_cleanup_free_ char *logdir = NULL;
	if (asprintf(&logdir, "%s/logs", c->state_dir) < 0)
		return log_oom();
	r = log_store_new(logdir, c->log_max_bytes, &d->logs);
	if (r < 0)
		return log_error_errno(r, "spored: cannot open the log dir '%s': %m", logdir);

	r = loop_new(4096, 1024, 16384, &d->loop);
	if (r < 0)
		return log_error_errno(r, "spored: cannot set up io_uring: %m");

	/* The meter: BPF where it loads, else figures from the cgroup files (said once). */
	struct meter_config mc = { .pin_dir = c->bpf_pin_dir, .bpf = c->metering_bpf };
	_cleanup_free_ char *why = NULL;
	r = meter_new(&mc, &d->meter, &why);
	if (r < 0)
		return log_error_errno(r, "spored: cannot set up metering: %m");
	if (meter_bpf_active(d->meter))
		log_info("spored: metering with eBPF (%s), maps pinned in %s",
			 meter_cpu_hook_name(d->meter), meter_pin_dir(d->meter));
	else
		log_notice("spored: metering without eBPF (%s); CPU time comes from the cgroups",
			   why ?: "disabled by metering_bpf = no");

	/* The share of the host's memory instances may take together (instance_memory_pct). */
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	uint64_t host_mb = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize >> 20 : 0;
	d->codes = metrics_codes_new();
	if (!d->codes)
		return log_oom();
	r = secrets_open(c->state_dir, &d->secrets);
	if (r < 0)
		return log_error_errno(r, "spored: cannot open '%s/secrets': %m", c->state_dir);
	struct sched_config sc = {
		.meter = d->meter,
		.codes = d->codes,
		.secrets = d->secrets,
		.egress_name = c->state_dir,
		.max_instances_total = c->max_instances_total,
		.memory_budget_mb = host_mb * c->instance_memory_pct / 100,
		.max_instances = c->max_instances,
		.queue_max = c->queue_max,
		.queue_timeout_ms = c->queue_timeout_ms,
		.idle_ttl_s = c->idle_ttl_s,
		.init_timeout_ms = INIT_TIMEOUT_MS,
		.cgroups = d->cgroups,
		.uid_min = c->sandbox_uid_min,
		.uid_count = c->sandbox_uid_count,
	};
	r = sched_new(d->loop, NULL, d->reg, d->logs, &sc, &d->sched);
	if (r < 0)
		return log_oom();
	struct zygote_callbacks cb;
	r = zygotes_new(d->loop, c->runtime_dir, c->zygote_spares, c->sandbox ? c->sandbox_dir : NULL,
			sched_zygote_callbacks(d->sched, &cb), &d->zygotes);
	if (r < 0)
		return log_oom();
	sched_set_zygotes(d->sched, d->zygotes);
	if (d->cgroups)
		zygotes_set_cgroups(d->zygotes, d->cgroups);

	/* Signals: blocked and read from a signalfd in the loop. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return log_error_errno(errno, "spored: sigprocmask: %m");
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sigfd < 0)
		return log_error_errno(errno, "spored: signalfd: %m");
	r = loop_poll_start(d->loop, d->sigfd, POLLIN, on_signal, d, &d->sig_token);
	if (r < 0)
		return log_oom();

	r = zygotes_start(d->zygotes);
	if (r < 0)
		return r;
	/* Reserved instances (min_instances) come up with the zygotes. */
	sched_start_reserved(d->sched);

	/* Asynchronous invocations left by the last run: on their way again. */
	struct async_config ac = { .retries = 2, .backoff_ms = 1000 };
	r = async_new(d->loop, d->sched, d->reg, c->state_dir, &ac, &d->async);
	if (r < 0)
		return log_error_errno(r, "spored: cannot open the asynchronous invocations in "
				       "'%s/async': %m", c->state_dir);
	async_start(d->async);
	r = triggers_new(d->reg, d->async, &d->triggers);
	if (r < 0)
		return log_oom();

	/* Dependencies installed at deploy (npm, in bubblewrap as nobody when sandboxed). */
	{
		_cleanup_close_ int state_fd =
			open(c->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct deps_config dc = {
			.state_fd = state_fd,
			.timeout_s = c->deps_timeout_s,
			.sandbox = c->sandbox,
		};
		r = state_fd < 0 ? -errno : deps_new(d->loop, &dc, &d->deps);
		if (r < 0)
			return log_error_errno(r, "spored: cannot open '%s/deps': %m", c->state_dir);
	}

	struct api_deps deps = {
		.config = c,
		.registry = d->reg,
		.sched = d->sched,
		.zygotes = d->zygotes,
		.logs = d->logs,
		.meter = d->meter,
		.async = d->async,
		.codes = d->codes,
		.secrets = d->secrets,
		.deps = d->deps,
	};
	r = api_new(&deps, &d->api);
	if (r < 0)
		return log_oom();
	struct server_limits lim = {
		.max_connections = c->max_connections,
		.header_max = c->header_max,
		.header_timeout_ms = c->header_timeout_ms,
		.keepalive_timeout_ms = c->keepalive_timeout_ms,
	};
	r = server_new(d->loop, &lim, api_handle, api_body_limit, d->api, &d->server);
	if (r < 0)
		return log_oom();
	/* Sockets from systemd first; a kind it passed none of is bound from the configuration. */
	struct systemd_listeners *sl = &d->sd_listeners;
	for (size_t i = 0; i < sl->n; i++) {
		struct systemd_listener *it = &sl->items[i];
		bool api = it->kind == SYSTEMD_LISTENER_API;
		r = server_listen_fd(d->server, TAKE_FD(it->fd), api);
		if (r < 0)
			return log_error_errno(r, "spored: cannot serve the socket '%s' from systemd: %m",
					       it->name);
		log_info("spored: %s%s (socket '%s' from systemd)",
			 api ? "API socket " : "listening on http://", it->address, it->name);
	}
	if (systemd_listeners_count(sl, SYSTEMD_LISTENER_HTTP) == 0)
		for (size_t i = 0; i < c->n_listen; i++) {
			r = server_listen_tcp(d->server, c->listen[i]);
			if (r < 0)
				return log_error_errno(r, "spored: cannot listen on '%s': %m",
						       c->listen[i]);
			log_info("spored: listening on http://%s", c->listen[i]);
		}
	if (systemd_listeners_count(sl, SYSTEMD_LISTENER_API) == 0) {
		r = server_listen_unix(d->server, c->api_socket);
		if (r < 0)
			return log_error_errno(r, "spored: cannot listen on '%s': %m",
					       c->api_socket);
		log_info("spored: API socket %s", c->api_socket);
	}

	tick_daemon = d;
	d->tick.fn = on_tick;
	(void)loop_timer_start(d->loop, &d->tick, now_us() + TICK_US);
	d->boot.fn = on_boot_check;
	d->grace.fn = on_grace_expired;
	d->boot_started_us = now_us();
	(void)loop_timer_start(d->loop, &d->boot, now_us());
	return 0;
}

static void teardown(struct daemon *d)
{
	if (d->server)
		server_stop_listening(d->server);
	d->server = server_free(d->server);
	d->api = api_free(d->api);
	d->deps = deps_free(d->deps);
	d->triggers = triggers_free(d->triggers);
	d->async = async_free(d->async);
	d->sched = sched_free(d->sched);
	d->zygotes = zygotes_free(d->zygotes);
	d->meter = meter_free(d->meter);
	d->codes = metrics_codes_free(d->codes);
	d->secrets = secrets_free(d->secrets);
	if (d->loop) {
		loop_timer_stop(d->loop, &d->tick);
		loop_timer_stop(d->loop, &d->boot);
		loop_timer_stop(d->loop, &d->grace);
		loop_op_free(d->loop, d->sig_token, NULL);
	}
	d->sigfd = safe_close(d->sigfd);
	/* Let the cancellations complete before the ring goes. */
	if (d->loop)
		(void)loop_submit(d->loop);
	d->loop = loop_free(d->loop);
	d->logs = log_store_free(d->logs);
	d->reg = registry_free(d->reg);
	if (d->cgroups) {
		int r = cgroup_remove_all(d->cgroups);
		if (r < 0)
			log_warning_errno(r, "spored: cannot remove its cgroups: %m, ignoring");
		d->cgroups = cgroup_manager_free(d->cgroups);
	}
	d->lock_fd = safe_close(d->lock_fd);
	/* Orphaned instances re-parented to us. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	systemd_listeners_done(&d->sd_listeners);
	free(d->status);
	d->status = NULL;
	config_done(&d->cfg);
}

int main(int argc, char **argv)
{
	struct daemon d = { .sigfd = -EBADF, .lock_fd = -EBADF };
	_cleanup_free_ char *err = NULL;

	int r = config_init(&d.cfg);
	if (r < 0) {
		fprintf(stderr, "spored: out of memory\n");
		return 1;
	}
	r = config_from_args(&d.cfg, argc, argv, &err);
	if (r < 0) {
		fprintf(stderr, "spored: %s\n", err ?: "invalid arguments");
		config_done(&d.cfg);
		return 2;
	}
	if (r > 0) {
		config_done(&d.cfg);
		return 0;
	}
	log_set_max_level(d.cfg.log_level);
	setvbuf(stderr, NULL, _IOLBF, 0);
	d.argc = argc;
	d.argv = argv;

	/* Taken (and LISTEN_* unset) before anything forks. */
	_cleanup_free_ char *sd_err = NULL;
	r = systemd_listeners_take(&d.sd_listeners, &sd_err);
	if (r < 0) {
		log_error("spored: %s", sd_err ?: "out of memory");
		config_done(&d.cfg);
		return 1;
	}

	r = setup(&d);
	if (r < 0) {
		teardown(&d);
		return 1;
	}
	log_info("spored %s started (pid %d)", SPORE_VERSION, (int)getpid());
	while (!d.quit) {
		r = loop_run_once(d.loop);
		if (r < 0) {
			log_error_errno(r, "spored: event loop failed: %m");
			break;
		}
		if (d.draining && server_connection_count(d.server) == 0)
			d.quit = true;
	}
	if (d.draining && r >= 0)
		log_info("spored: connections drained, stopping instances and zygotes");
	teardown(&d);
	log_info("spored: stopped");
	return r < 0 ? 1 : 0;
}
