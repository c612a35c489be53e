/* SPDX-License-Identifier: MIT */
/* What the files of sandbox/ share and nothing else sees: the steps sandbox.c puts in order.
 * Every step has the same shape, int step(struct sandbox_ctx *), returns 0 or -errno and may set
 * ctx->message to a static sentence. Steps run in the spare (child) only, never in the zygote,
 * except ns_pidns_open(), ns_fork_pid1() and sandbox_seccomp_compile(), which run in the zygote. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox.h"

enum sandbox_runtime {
	SANDBOX_RUNTIME_PYTHON3,
	SANDBOX_RUNTIME_NATIVE,
	SANDBOX_RUNTIME_NODEJS,
	SANDBOX_RUNTIME_EXEC,
	SANDBOX_RUNTIME_PROVIDED,
	_SANDBOX_RUNTIME_MAX,
	_SANDBOX_RUNTIME_INVALID = -EINVAL,
};

enum sandbox_runtime sandbox_runtime_from_string(const char *s);
const char *sandbox_runtime_to_string(enum sandbox_runtime r);

struct sandbox_ctx {
	const char *root;                    /* phase 1 and 2: the new root, on the host */
	const struct sandbox_config *config; /* phase 2 */
	enum sandbox_runtime runtime;        /* phase 1 and 2 */
	uint32_t tmp_mb, nofile;             /* phase 2, defaults applied */
	int pdeathsig;                       /* phase 2, kept across the change of ids */
	bool pivoted;                        /* phase 1 pivot_rooted already: root is "" */
	const char *message;                 /* set by a failing step, static */
};

typedef int (*sandbox_step_fn)(struct sandbox_ctx *ctx);

/* Tests only: called after every step with its name and duration when set. */
extern void (*sandbox_step_hook)(const char *step, uint64_t nsec);

/* ns.c */
int ns_pidns_open(void);
/* cgroup_fd >= 0: the child is cloned into that cgroup (an O_PATH fd of a v2 cgroup dir). */
pid_t ns_fork_pid1(int cgroup_fd);
int ns_unshare_mnt(struct sandbox_ctx *ctx);
int ns_unshare_ipc(struct sandbox_ctx *ctx);
int ns_unshare_uts(struct sandbox_ctx *ctx);
int ns_unshare_net(struct sandbox_ctx *ctx);
int ns_unshare_cgroup(struct sandbox_ctx *ctx);
int ns_setsid(struct sandbox_ctx *ctx);
int ns_hostname(struct sandbox_ctx *ctx);

/* mount.c, phase 1 */
int mount_private(struct sandbox_ctx *ctx);
int mount_root_tmpfs(struct sandbox_ctx *ctx);
int mount_system(struct sandbox_ctx *ctx);
int mount_etc(struct sandbox_ctx *ctx);
int mount_dev(struct sandbox_ctx *ctx);
int mount_proc(struct sandbox_ctx *ctx);
int mount_mountpoints(struct sandbox_ctx *ctx);
/* mount.c, phase 2 */
int mount_code(struct sandbox_ctx *ctx);
int mount_tmp(struct sandbox_ctx *ctx);
int mount_passwd(struct sandbox_ctx *ctx);
int mount_pivot(struct sandbox_ctx *ctx);
int mount_root_readonly(struct sandbox_ctx *ctx);
int mount_chdir_task(struct sandbox_ctx *ctx);

/* net.c */
int net_loopback_up(struct sandbox_ctx *ctx);

/* caps.c */
int caps_rlimit_core(struct sandbox_ctx *ctx);
int caps_rlimit_nofile(struct sandbox_ctx *ctx);
int caps_drop_bounding(struct sandbox_ctx *ctx);
int caps_setgroups(struct sandbox_ctx *ctx);
int caps_setresgid(struct sandbox_ctx *ctx);
int caps_setresuid(struct sandbox_ctx *ctx);
int caps_clear(struct sandbox_ctx *ctx);
int caps_no_new_privs(struct sandbox_ctx *ctx);
int caps_not_dumpable(struct sandbox_ctx *ctx);

/* seccomp.c */
int sandbox_seccomp_compile(enum sandbox_runtime r);
int sandbox_seccomp_load_policy(struct sandbox_ctx *ctx); /* phase 1 */
int sandbox_seccomp_load_lock(struct sandbox_ctx *ctx);   /* phase 2 */

/* seccomp.c, for tests and docs: the allow-list (runtimes: a mask of 1 << enum
 * sandbox_runtime), the syscalls allowed only under argument conditions, and those the issue
 * requires refused, which must be in neither. */
struct sandbox_seccomp_rule {
	const char *name;
	unsigned runtimes;
};
extern const struct sandbox_seccomp_rule sandbox_seccomp_allow[];
extern const size_t sandbox_seccomp_n_allow;
extern const char *const sandbox_seccomp_conditional[];
extern const char *const sandbox_seccomp_refused[];
/* True in sanitizer builds, whose policy allows ptrace for LeakSanitizer (seccomp.c). */
extern const bool sandbox_seccomp_sanitizer;
