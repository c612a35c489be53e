/* SPDX-License-Identifier: MIT */
/* The order of the steps, and nothing else: each step lives in ns.c, mount.c, net.c, caps.c or
 * seccomp.c. The first step that fails stops its phase and names itself in sandbox_error. */
#include <limits.h>
#include <time.h>

#include "sandbox-internal.h"
#include "util/cleanup.h"

#define UNKNOWN_RUNTIME "unknown runtime: not python3, native, nodejs, exec or provided"

struct step {
	const char *name;
	sandbox_step_fn fn;
};

void (*sandbox_step_hook)(const char *step, uint64_t nsec) = NULL;

static const char *const runtime_names[_SANDBOX_RUNTIME_MAX] = {
	[SANDBOX_RUNTIME_PYTHON3] = "python3",
	[SANDBOX_RUNTIME_NATIVE] = "native",
	[SANDBOX_RUNTIME_NODEJS] = "nodejs",
	[SANDBOX_RUNTIME_EXEC] = "exec",
	[SANDBOX_RUNTIME_PROVIDED] = "provided",
};

enum sandbox_runtime sandbox_runtime_from_string(const char *s)
{
	for (int i = 0; i < _SANDBOX_RUNTIME_MAX; i++)
		if (streq(s, runtime_names[i]))
			return (enum sandbox_runtime)i;
	return _SANDBOX_RUNTIME_INVALID;
}

const char *sandbox_runtime_to_string(enum sandbox_runtime r)
{
	return r >= 0 && r < _SANDBOX_RUNTIME_MAX ? runtime_names[r] : NULL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int fail(struct sandbox_error *ret_err, const char *step, const char *message, int r)
{
	if (ret_err)
		*ret_err = (struct sandbox_error){ .step = step, .message = message, .error = r };
	return r;
}

static int run_steps(const struct step *steps, size_t n, struct sandbox_ctx *ctx,
		     struct sandbox_error *ret_err)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = sandbox_step_hook ? now_ns() : 0;
		int r;

		r = steps[i].fn(ctx);
		if (r < 0)
			return fail(ret_err, steps[i].name, ctx->message, r);
		if (sandbox_step_hook)
			sandbox_step_hook(steps[i].name, now_ns() - t0);
	}
	return 0;
}

int sandbox_init(const char *runtime, struct sandbox_error *ret_err)
{
	enum sandbox_runtime rt = sandbox_runtime_from_string(runtime);
	int r;

	if (rt < 0)
		return fail(ret_err, "runtime", UNKNOWN_RUNTIME, -EINVAL);
	r = sandbox_seccomp_compile(rt);
	if (r < 0)
		return fail(ret_err, "seccomp-compile", NULL, r);
	r = ns_pidns_open();
	if (r < 0)
		return fail(ret_err, "open-pidns", NULL, r);
	return 0;
}

pid_t sandbox_clone_spare(void)
{
	return ns_fork_pid1(-EBADF);
}

pid_t sandbox_clone_spare_into(int cgroup_fd)
{
	return ns_fork_pid1(cgroup_fd);
}

static const struct step prepare_steps[] = {
	{ "unshare-mnt", ns_unshare_mnt },
	{ "unshare-ipc", ns_unshare_ipc },
	{ "unshare-uts", ns_unshare_uts },
	{ "unshare-net", ns_unshare_net },
	{ "setsid", ns_setsid },
	{ "mount-private", mount_private },
	{ "mount-root", mount_root_tmpfs },
	{ "mount-system", mount_system },
	{ "etc", mount_etc },
	{ "dev", mount_dev },
	{ "mount-proc", mount_proc },
	{ "mountpoints", mount_mountpoints },
	{ "hostname", ns_hostname },
	{ "loopback", net_loopback_up },
	{ "rlimit-core", caps_rlimit_core },
	{ "capbset", caps_drop_bounding },
	{ "seccomp-policy", sandbox_seccomp_load_policy },
};

/* Phase 1's root and runtime, for phase 2: the same process, so a copy of our own. After an
 * early pivot the root is "/" itself, and prepared_root stays "" (paths are "/" + rel). */
static bool prepared;
static bool prepared_pivoted;
static char prepared_root[PATH_MAX];
static enum sandbox_runtime prepared_runtime = _SANDBOX_RUNTIME_INVALID;

int sandbox_prepare(const struct sandbox_prepare_opts *opts, struct sandbox_error *ret_err)
{
	struct sandbox_ctx ctx = {};
	int r;

	if (!opts || !opts->root_dir || opts->root_dir[0] != '/' ||
	    strlen(opts->root_dir) >= sizeof(prepared_root))
		return fail(ret_err, "root_dir", "root_dir must be an absolute path", -EINVAL);
	ctx.root = opts->root_dir;
	ctx.runtime = sandbox_runtime_from_string(opts->runtime);
	if (ctx.runtime < 0)
		return fail(ret_err, "runtime", UNKNOWN_RUNTIME, -EINVAL);
	r = run_steps(prepare_steps, ELEMENTSOF(prepare_steps), &ctx, ret_err);
	if (r < 0)
		return r;
	if (opts->pivot) {
		/* After the seccomp policy, which allows what phase 2 does until its lock. */
		static const struct step pivot[] = { { "pivot_root", mount_pivot } };

		r = run_steps(pivot, ELEMENTSOF(pivot), &ctx, ret_err);
		if (r < 0)
			return r;
		prepared_root[0] = '\0';
		prepared_pivoted = true;
	} else
		strcpy(prepared_root, ctx.root);
	prepared_runtime = ctx.runtime;
	prepared = true;
	return 0;
}

static const struct step enter_steps[] = {
	{ "mount-code", mount_code },
	{ "mount-tmp", mount_tmp },
	{ "passwd", mount_passwd },
	{ "pivot_root", mount_pivot },
	{ "remount-root-ro", mount_root_readonly },
	{ "unshare-cgroup", ns_unshare_cgroup },
	{ "chdir", mount_chdir_task },
	{ "rlimit-nofile", caps_rlimit_nofile },
	{ "setgroups", caps_setgroups },
	{ "setresgid", caps_setresgid },
	{ "setresuid", caps_setresuid },
	{ "caps", caps_clear },
	{ "no_new_privs", caps_no_new_privs },
	{ "dumpable", caps_not_dumpable },
	{ "seccomp", sandbox_seccomp_load_lock },
};

/* What can be refused before anything is changed. */
static int check_config(const struct sandbox_config *c, struct sandbox_ctx *ctx,
			struct sandbox_error *ret_err)
{
	if (!c)
		return fail(ret_err, "config", "no configuration", -EINVAL);
	if (c->network && streq(c->network, "egress"))
		return fail(ret_err, "network",
			    "network 'egress' is not supported yet: only 'none' (loopback only)",
			    -EOPNOTSUPP);
	if (c->network && !streq(c->network, "none"))
		return fail(ret_err, "network", "unknown network: not 'none' or 'egress'",
			    -EINVAL);
	ctx->runtime = c->runtime ? sandbox_runtime_from_string(c->runtime) : prepared_runtime;
	if (ctx->runtime < 0)
		return fail(ret_err, "runtime", UNKNOWN_RUNTIME, -EINVAL);
	if (ctx->runtime != prepared_runtime)
		return fail(ret_err, "runtime",
			    "runtime differs from the one the spare was prepared for", -EINVAL);
	if (c->uid == 0 || c->gid == 0 || c->uid == (uid_t)-1 || c->gid == (gid_t)-1)
		return fail(ret_err, "ids", "uid and gid must be unprivileged (not 0, not -1)",
			    -EINVAL);
	ctx->tmp_mb = c->tmp_mb ? c->tmp_mb : SANDBOX_TMP_MB_DEFAULT;
	ctx->nofile = c->nofile ? c->nofile : SANDBOX_NOFILE_DEFAULT;
	return 0;
}

int sandbox_enter(const struct sandbox_config *c, struct sandbox_error *ret_err)
{
	struct sandbox_ctx ctx = { .config = c, .root = prepared_root, .pivoted = prepared_pivoted };
	int r;

	if (!prepared)
		return fail(ret_err, "prepared", "sandbox_prepare() has not succeeded", -EINVAL);
	r = check_config(c, &ctx, ret_err);
	if (r < 0)
		return r;
	return run_steps(enter_steps, ELEMENTSOF(enter_steps), &ctx, ret_err);
}
