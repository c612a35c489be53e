/* SPDX-License-Identifier: MIT */
/* Credentials and privileges, in the only order that works: the bounding set while we hold
 * CAP_SETPCAP (phase 1), rlimits while we may still raise them, then the ids (which empty the
 * permitted and effective sets, and reset the parent-death signal, which we restore), then
 * every remaining set (inheritable, ambient) explicitly, then no_new_privs and not dumpable. */
#include <grp.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "sandbox-internal.h"
#include "util/cleanup.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cap_t, cap_free);

/* Phase 1: no core file of the zygote's memory, from the spare on. */
int caps_rlimit_core(struct sandbox_ctx *ctx)
{
	const struct rlimit core = { 0, 0 };

	(void)ctx;
	return RET_NERRNO(setrlimit(RLIMIT_CORE, &core));
}

/* Phase 2, before the ids change: raising the hard limit needs CAP_SYS_RESOURCE. */
int caps_rlimit_nofile(struct sandbox_ctx *ctx)
{
	const struct rlimit nofile = { ctx->nofile, ctx->nofile };

	return RET_NERRNO(setrlimit(RLIMIT_NOFILE, &nofile));
}

/* Phase 1: the bounding set only limits what an execve() could give back, so it can go long
 * before the capabilities we still use in phase 2 (it needs CAP_SETPCAP, which we hold). */
int caps_drop_bounding(struct sandbox_ctx *ctx)
{
	cap_value_t n = cap_max_bits();

	(void)ctx;
	for (cap_value_t c = 0; c < n; c++)
		if (cap_drop_bound(c) < 0)
			return -errno;
	return 0;
}

/* First of the id steps: also notes the parent-death signal, which the kernel clears as soon as
 * the effective uid or gid changes (setresgid() already), for caps_setresuid() to restore. */
int caps_setgroups(struct sandbox_ctx *ctx)
{
	if (prctl(PR_GET_PDEATHSIG, &ctx->pdeathsig, 0, 0, 0) < 0)
		return -errno;
	return RET_NERRNO(setgroups(0, NULL));
}

int caps_setresgid(struct sandbox_ctx *ctx)
{
	gid_t g = ctx->config->gid;

	return RET_NERRNO(setresgid(g, g, g));
}

/* Then restores the caller's parent-death signal. If the parent died in between, the signal is
 * not sent: a caller that cares checks its parent after sandbox_enter() (a pidfd). */
int caps_setresuid(struct sandbox_ctx *ctx)
{
	uid_t u = ctx->config->uid;

	if (setresuid(u, u, u) < 0)
		return -errno;
	if (ctx->pdeathsig > 0 && prctl(PR_SET_PDEATHSIG, ctx->pdeathsig, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

int caps_clear(struct sandbox_ctx *ctx)
{
	_cleanup_(cap_freep) cap_t none = NULL;

	(void)ctx;
	none = cap_init(); /* every flag of every capability clear */
	if (!none)
		return -errno;
	if (cap_set_proc(none) < 0)
		return -errno;
	/* One call: libcap's cap_reset_ambient() asks about each capability first (~40 prctl
	 * calls, ~30 us of a cold start). */
	return RET_NERRNO(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
}

int caps_no_new_privs(struct sandbox_ctx *ctx)
{
	(void)ctx;
	return RET_NERRNO(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
}

int caps_not_dumpable(struct sandbox_ctx *ctx)
{
	(void)ctx;
	return RET_NERRNO(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0));
}
