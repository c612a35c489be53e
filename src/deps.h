/* SPDX-License-Identifier: MIT */
/* A function's dependencies, installed at deploy time: for nodejs, a package.json with
 * "dependencies" and no node_modules gets `npm ci` (a package-lock.json or npm-shrinkwrap.json is
 * there) or `npm install --omit=dev` (none is), run by spored in a sandbox of its own:
 * bubblewrap, as the unprivileged user nobody, in new user, pid, ipc, uts and mount namespaces
 * holding /usr read-only, the few files of /etc that name resolution and TLS need, a private
 * /tmp and the build directory; the network is the host's (the registry). Nothing of spored's
 * state, no secret, no other function is visible to it.
 *
 * What was built is kept in STATE/deps/npm/<key> (key: SHA-256 of the install mode, node's
 * identity, package.json, the lock file and .npmrc): a deploy whose files hash the same links it
 * into its code at once (hard links, no copy, no npm). Builds run in STATE/deps/tmp (cleared
 * when spored starts); at most max_builds at a time; one running for a key serves every deploy
 * that waits for that key; one running past timeout_s is killed.
 *
 * Single-threaded: every call from the event loop's thread; done callbacks from
 * deps_child_exited() (spored's SIGCHLD) or a timer. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct loop;
struct deps;
struct deps_job;

struct deps_config {
	int state_fd;        /* the state directory (dup'ed) */
	const char *npm;     /* NULL: /usr/bin/npm */
	const char *bwrap;   /* NULL: /usr/bin/bwrap */
	uint32_t timeout_s;  /* 0: 300 */
	uint32_t max_builds; /* 0: 2 */
	uint64_t max_bytes;  /* the installed tree's size limit; 0: 1 GiB */
	bool sandbox;        /* false (spored's sandbox = no): npm runs as spored's own user */
};

int deps_new(struct loop *l, const struct deps_config *cfg, struct deps **ret);
/* Kills running builds (by pid, SIGKILL), waits for them, removes their directories. Jobs still
 * waiting are dropped without their callbacks: their owners cancel them first. */
struct deps *deps_free(struct deps *d);

/* Whether the package in code_fd needs dependencies installed for runtime: 1 yes, 0 no (not
 * nodejs, no package.json, no dependencies, or node_modules shipped in the package), -EINVAL with
 * *ret_error naming the file and cause (package.json is not valid JSON, "dependencies" is not an
 * object), other -errno. */
int deps_needed(int code_fd, const char *runtime, char **ret_error);

/* done(ud, r, message): r 0 (code_fd's node_modules is in place and durable) or -errno with a
 * one-paragraph message naming the cause (npm's own last lines when npm failed). */
typedef void (*deps_done_fn)(void *ud, int r, const char *message);

/* Installs the dependencies of the package in code_fd (a staged code directory; dup'ed).
 * Returns 1 when they came from the cache (done now, the callback is not called), 0 when a build
 * runs or is joined (*ret_job; done is called later, exactly once, unless deps_cancel()), -EBUSY
 * when max_builds run already, -EINVAL with *ret_error for a bad package, other -errno. */
int deps_install(struct deps *d, int code_fd, deps_done_fn done, void *ud,
		 struct deps_job **ret_job, char **ret_error);
/* The job's callback will not be called; the build goes on for whoever else waits, or is killed
 * when no one does. */
void deps_cancel(struct deps *d, struct deps_job *j);

/* From spored's SIGCHLD reaping: true when pid was a build (its waiters are called). */
bool deps_child_exited(struct deps *d, pid_t pid, int status);

/* Builds running now, and cache entries (for /metrics and the logs). */
size_t deps_running(const struct deps *d);
