/* SPDX-License-Identifier: MIT */
/* Namespaces. The pid namespace is made by the zygote around a plain fork() (the child must be
 * PID 1 and the zygote must stay its parent); the others are unshared by the child itself, so
 * their cost (the network namespace: about 0.7 ms on our VMs) is paid by the spare on its own
 * core rather than by the zygote's loop. docs/SANDBOX.md has the figures. */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox-internal.h"
#include "util/cleanup.h"

#define SANDBOX_HOSTNAME "spore"

/* clone3()'s argument (linux/sched.h, which clashes with glibc's sched.h), up to .cgroup. */
struct ns_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	uint64_t set_tid, set_tid_size, cgroup;
};
#define NS_CLONE_INTO_CGROUP 0x200000000ULL

/* The zygote's own pid namespace, to return to after each fork. */
static int pidns_fd = -EBADF;

int ns_pidns_open(void)
{
	if (pidns_fd >= 0)
		return 0;
	pidns_fd = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	return pidns_fd < 0 ? -errno : 0;
}

/* unshare(CLONE_NEWPID) only changes where the caller's next child goes: fork() then makes the
 * child PID 1 of a fresh namespace, and setns() puts the zygote's children back in its own. A
 * raw clone(CLONE_NEWPID) would do it in one call but skip glibc's fork bookkeeping (the cached
 * tid, the robust list, atfork handlers), so fork() is used unless the child must be cloned
 * into a cgroup, which only clone3() can do. There atfork handlers do not run: the zygote
 * calls its runtime's own before/after-fork hooks itself, and OpenSSL 3 (the one library in
 * our zygotes that registers any) detects a fork by its pid. */
pid_t ns_fork_pid1(int cgroup_fd)
{
	pid_t pid;
	int r, saved;

	r = ns_pidns_open();
	if (r < 0)
		return r;
	if (unshare(CLONE_NEWPID) < 0)
		return -errno;
	if (cgroup_fd >= 0) {
		/* CLONE_INTO_CGROUP (Linux 5.7): the child starts life in its cgroup, with no
		 * migration (which would wait for an RCU grace period). The cost is a raw clone3():
		 * glibc's fork bookkeeping is skipped. For a single-threaded zygote that means only
		 * that the tid cached in the child's thread descriptor is the zygote's; glibc itself
		 * asks the kernel for the tid where it matters (raise(), pthread_kill() of itself),
		 * and the runtimes' own after-fork hooks still run (the zygote calls them). */
		struct ns_clone_args a = {
			.flags = NS_CLONE_INTO_CGROUP,
			.exit_signal = SIGCHLD,
			.cgroup = (uint64_t)cgroup_fd,
		};
		pid = (pid_t)syscall(SYS_clone3, &a, sizeof(a));
	} else
		pid = fork();
	if (pid == 0) {
		/* The zygote's fd: the child has no use for it, and must not return to it. */
		pidns_fd = safe_close(pidns_fd);
		return 0;
	}
	saved = errno;
	if (setns(pidns_fd, CLONE_NEWPID) < 0) {
		/* Cannot happen with CAP_SYS_ADMIN and our own namespace; if it did, the next
		 * unshare() replaces the namespace anyway, so only this child is lost. */
		r = -errno;
		if (pid > 0) {
			(void)kill(pid, SIGKILL);
			(void)waitpid(pid, NULL, 0);
		}
		return r;
	}
	return pid < 0 ? -saved : pid;
}

int ns_unshare_mnt(struct sandbox_ctx *ctx)
{
	(void)ctx;
	return RET_NERRNO(unshare(CLONE_NEWNS));
}

int ns_unshare_ipc(struct sandbox_ctx *ctx)
{
	(void)ctx;
	return RET_NERRNO(unshare(CLONE_NEWIPC));
}

int ns_unshare_uts(struct sandbox_ctx *ctx)
{
	(void)ctx;
	return RET_NERRNO(unshare(CLONE_NEWUTS));
}

int ns_unshare_net(struct sandbox_ctx *ctx)
{
	(void)ctx;
	return RET_NERRNO(unshare(CLONE_NEWNET));
}

/* Phase 2: the caller has moved us into the instance's cgroup, which becomes our root. */
int ns_unshare_cgroup(struct sandbox_ctx *ctx)
{
	(void)ctx;
	return RET_NERRNO(unshare(CLONE_NEWCGROUP));
}

/* A session of our own: no controlling terminal, so the tty ioctls that inject input (TIOCSTI)
 * need CAP_SYS_ADMIN, and kill(0, ...) stays within the instance. */
int ns_setsid(struct sandbox_ctx *ctx)
{
	(void)ctx;
	if (setsid() < 0 && getsid(0) != getpid())
		return -errno;
	return 0;
}

int ns_hostname(struct sandbox_ctx *ctx)
{
	(void)ctx;
	return RET_NERRNO(sethostname(SANDBOX_HOSTNAME, strlen(SANDBOX_HOSTNAME)));
}
