/* SPDX-License-Identifier: MIT */
/* The zygote manager: starts one zygote per runtime at boot, forwards spawn requests to it,
 * reports spawned and exited instances, and restarts a zygote that dies (with backoff).
 * Supervisor only. See proto.h for the wire protocol. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct loop;
struct zygotes;

enum zygote_state {
	ZYGOTE_STARTING,
	ZYGOTE_RUNNING,
	ZYGOTE_RESTARTING,
};

struct zygote_info {
	const char *runtime;
	pid_t pid; /* 0 while not running */
	enum zygote_state state;
	unsigned restarts;
	int64_t started_us; /* CLOCK_REALTIME of the last HELLO */
};

struct zygote_callbacks {
	/* An instance was forked (pid > 0) or could not be (error < 0). cgroup: the cgroup
	 * (a path for cgroup.h, "pool-RUNTIME/i-...") it was cloned into, now the caller's to
	 * limit, kill and remove; NULL if none. */
	void (*spawned)(void *userdata, uint64_t token, pid_t pid, int error, const char *cgroup);
	/* A zygote reaped one of its instances. */
	void (*exited)(void *userdata, pid_t pid, int status);
	void *userdata;
};

const char *zygote_state_to_string(enum zygote_state s);

/* sandbox_dir: passed to the zygotes (--sandbox-dir) so they sandbox every instance; NULL runs
 * instances unsandboxed. */
int zygotes_new(struct loop *l, const char *runtime_dir, unsigned spares, const char *sandbox_dir,
		const struct zygote_callbacks *cb, struct zygotes **ret);
/* Stops every zygote (closing its control socket, then SIGKILL after a grace period) and reaps
 * them. */
struct zygotes *zygotes_free(struct zygotes *z);

/* With a sandbox: every sandboxed instance is cloned (CLONE_INTO_CGROUP) into a fresh cgroup
 * below "pool-RUNTIME" in cg's v2 tree (the unified tree of a hybrid host), reported by
 * callbacks.spawned. Call before zygotes_start(); cg must outlive z. */
struct cgroup_manager;
void zygotes_set_cgroups(struct zygotes *z, struct cgroup_manager *cg);

/* Starts the zygotes of all known runtimes. Fails if a zygote binary is missing. */
int zygotes_start(struct zygotes *z);

bool zygotes_has_runtime(const struct zygotes *z, const char *runtime);
size_t zygotes_count(const struct zygotes *z);
void zygotes_info(const struct zygotes *z, size_t i, struct zygote_info *ret);

/* Asks the runtime's zygote for an instance. The fds are duplicated (the caller keeps and closes
 * its own). While the zygote is starting or restarting the request waits; the answer comes
 * through callbacks.spawned either way. -ENOENT for an unknown runtime. */
int zygotes_spawn(struct zygotes *z, const char *runtime, uint64_t token, int chan_fd, int out_fd,
		  int err_fd);

/* For spored's SIGCHLD handler: true if pid was one of our zygotes (it is then restarted). */
bool zygotes_child_exited(struct zygotes *z, pid_t pid, int status);
