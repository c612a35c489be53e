/* SPDX-License-Identifier: MIT */
/* The seccomp allow-lists, one per runtime (docs/SANDBOX.md explains how they were derived and
 * why each conditional rule is there).
 *
 * - Anything not on the list fails with EPERM. Killing instead would add nothing (the call is
 *   refused either way) and would turn a library's harmless probe into a crash; EPERM is also
 *   what most of these calls return to an unprivileged caller anyway.
 * - clone3 fails with ENOSYS, so glibc falls back to clone, whose flags a filter can see (those
 *   of clone3 are behind a pointer): clone is allowed only without CLONE_NEW* flags.
 * - A syscall of another ABI (i386 through int 0x80, x32) kills the process: a runtime built for
 *   x86_64 never makes one, and the other tables number syscalls differently.
 *
 * Two filters, because loading one costs the kernel far more than running it (it JITs it and
 * runs it once per syscall number to build its cache: ~150 us for the policy, on our VMs):
 *
 * - the policy, loaded in phase 1 (the spare, off the cold path): the runtime's allow-list plus
 *   the few calls phase 2 itself still makes (mount, pivot_root, the set*id calls, ...);
 * - the lock, loaded last in phase 2: allows everything but those few calls.
 *
 * The kernel applies every filter of a process and keeps the strictest answer, so from then on
 * exactly the allow-list is left. Both are compiled once (libseccomp, binary-tree layout) into
 * BPF programs, in the zygote by sandbox_init() or else on first use. */
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "sandbox-internal.h"
#include "util/cleanup.h"

/* Sanitizer builds only: LeakSanitizer's check at exit stops the world with ptrace, from a
 * helper thread it names as its ptracer after making the process dumpable again. Those builds
 * allow exactly that (ptrace, PR_SET_DUMPABLE, PR_SET_PTRACER), so instances keep their leak
 * checks; release builds never do. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZER_BUILD 1
#endif
#endif
#ifndef SANITIZER_BUILD
#define SANITIZER_BUILD 0
#endif

const bool sandbox_seccomp_sanitizer = SANITIZER_BUILD;

#define PY (1u << SANDBOX_RUNTIME_PYTHON3)
#define NAT (1u << SANDBOX_RUNTIME_NATIVE)
#define NODE (1u << SANDBOX_RUNTIME_NODEJS)
#define EXEC (1u << SANDBOX_RUNTIME_EXEC)
#define PROV (1u << SANDBOX_RUNTIME_PROVIDED)
/* nodejs: node itself (V8, libuv, OpenSSL) and what a function's JavaScript can reach; exec: any
 * program, forked and exec'ed by the instance. Both are the same C library underneath, so they
 * start from the same list as the other two (strace -f of node running fs, net, http, crypto,
 * child_process, worker_threads, zlib, dns, inotify found nothing else but pkey_alloc). */
/* provided: Lambda's custom runtimes, whose bootstrap is any program (node among them): exec's
 * list, and the memory protection keys. */
#define ALL (PY | NAT | NODE | EXEC | PROV)

/* Every CLONE_NEW* flag clone() accepts (CLONE_NEWTIME is clone3/unshare only). */
#define CLONE_NS_FLAGS                                                                             \
	(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |             \
	 CLONE_NEWPID | CLONE_NEWNET)

DEFINE_TRIVIAL_CLEANUP_FUNC(scmp_filter_ctx, seccomp_release);

/* Allowed without conditions. Derived with strace -f over the zygote tests (python3 and native
 * example handlers) and a Python program using json, time, threads, sockets on loopback and
 * files in /tmp, then completed with the rest of each family those use (the *at variants, the
 * vectored reads, ...). Names unknown on the build's architecture are skipped. */
const struct sandbox_seccomp_rule sandbox_seccomp_allow[] = {
	/* file descriptors and I/O */
	{ "read", ALL }, { "write", ALL }, { "readv", ALL }, { "writev", ALL },
	{ "pread64", ALL }, { "pwrite64", ALL }, { "preadv", ALL }, { "pwritev", ALL },
	{ "preadv2", ALL }, { "pwritev2", ALL }, { "lseek", ALL }, { "close", ALL },
	{ "close_range", ALL }, { "dup", ALL }, { "dup2", ALL }, { "dup3", ALL },
	{ "fcntl", ALL }, { "ioctl", ALL }, { "flock", ALL }, { "fsync", ALL },
	{ "fdatasync", ALL }, { "ftruncate", ALL }, { "fallocate", ALL }, { "fadvise64", ALL },
	{ "sendfile", ALL }, { "copy_file_range", ALL }, { "splice", ALL }, { "tee", ALL },
	{ "pipe", ALL }, { "pipe2", ALL }, { "eventfd", ALL }, { "eventfd2", ALL },
	{ "memfd_create", ALL },
	/* files and directories (the kernel's permission checks still apply) */
	{ "open", ALL }, { "openat", ALL }, { "openat2", ALL }, { "creat", ALL },
	{ "stat", ALL }, { "fstat", ALL }, { "lstat", ALL }, { "newfstatat", ALL },
	{ "statx", ALL }, { "access", ALL }, { "faccessat", ALL }, { "faccessat2", ALL },
	{ "readlink", ALL }, { "readlinkat", ALL }, { "getdents", ALL }, { "getdents64", ALL },
	{ "getcwd", ALL }, { "chdir", ALL }, { "fchdir", ALL }, { "mkdir", ALL },
	{ "mkdirat", ALL }, { "rmdir", ALL }, { "unlink", ALL }, { "unlinkat", ALL },
	{ "rename", ALL }, { "renameat", ALL }, { "renameat2", ALL }, { "link", ALL },
	{ "linkat", ALL }, { "symlink", ALL }, { "symlinkat", ALL }, { "chmod", ALL },
	{ "fchmod", ALL }, { "fchmodat", ALL }, { "truncate", ALL }, { "utime", ALL },
	{ "utimes", ALL }, { "utimensat", ALL }, { "futimesat", ALL }, { "statfs", ALL },
	{ "fstatfs", ALL }, { "umask", ALL }, { "getxattr", ALL }, { "lgetxattr", ALL },
	{ "fgetxattr", ALL }, { "listxattr", ALL }, { "llistxattr", ALL }, { "flistxattr", ALL },
	{ "setxattr", ALL }, { "lsetxattr", ALL }, { "fsetxattr", ALL }, { "removexattr", ALL },
	{ "lremovexattr", ALL }, { "fremovexattr", ALL }, { "inotify_init", ALL },
	{ "inotify_init1", ALL }, { "inotify_add_watch", ALL }, { "inotify_rm_watch", ALL },
	/* memory */
	{ "brk", ALL }, { "mmap", ALL }, { "munmap", ALL }, { "mprotect", ALL },
	{ "mremap", ALL }, { "madvise", ALL }, { "msync", ALL }, { "mincore", ALL },
	{ "mlock", ALL }, { "mlock2", ALL }, { "munlock", ALL }, { "membarrier", ALL },
	/* processes and threads (in the instance's own pid namespace) */
	{ "fork", ALL }, { "vfork", ALL }, { "execve", ALL }, { "execveat", ALL },
	{ "exit", ALL }, { "exit_group", ALL }, { "wait4", ALL }, { "waitid", ALL },
	{ "kill", ALL }, { "tkill", ALL }, { "tgkill", ALL }, { "getpid", ALL },
	{ "getppid", ALL }, { "gettid", ALL }, { "getuid", ALL }, { "geteuid", ALL },
	{ "getgid", ALL }, { "getegid", ALL }, { "getresuid", ALL }, { "getresgid", ALL },
	{ "getgroups", ALL }, { "getpgrp", ALL }, { "getpgid", ALL }, { "getsid", ALL },
	{ "setpgid", ALL }, { "setsid", ALL }, { "set_tid_address", ALL },
	{ "set_robust_list", ALL }, { "get_robust_list", ALL }, { "rseq", ALL }, { "futex", ALL },
	{ "sched_yield", ALL }, { "sched_getaffinity", ALL }, { "sched_setaffinity", ALL },
	{ "sched_getparam", ALL }, { "sched_getscheduler", ALL },
	{ "sched_get_priority_max", ALL }, { "sched_get_priority_min", ALL },
	{ "sched_rr_get_interval", ALL }, { "getpriority", ALL }, { "setpriority", ALL },
	{ "getrlimit", ALL }, { "setrlimit", ALL }, { "prlimit64", ALL }, { "getrusage", ALL },
	{ "times", ALL }, { "uname", ALL }, { "sysinfo", ALL }, { "arch_prctl", ALL },
	{ "getcpu", ALL }, { "capget", ALL }, { "restart_syscall", ALL }, { "pidfd_open", ALL },
	{ "pidfd_send_signal", ALL },
	/* signals */
	{ "rt_sigaction", ALL }, { "rt_sigprocmask", ALL }, { "rt_sigreturn", ALL },
	{ "rt_sigpending", ALL }, { "rt_sigtimedwait", ALL }, { "rt_sigsuspend", ALL },
	{ "rt_sigqueueinfo", ALL }, { "rt_tgsigqueueinfo", ALL }, { "sigaltstack", ALL },
	{ "signalfd", ALL }, { "signalfd4", ALL }, { "pause", ALL }, { "alarm", ALL },
	{ "setitimer", ALL }, { "getitimer", ALL },
	/* time */
	{ "nanosleep", ALL }, { "clock_nanosleep", ALL }, { "clock_gettime", ALL },
	{ "clock_getres", ALL }, { "gettimeofday", ALL }, { "time", ALL },
	{ "timer_create", ALL }, { "timer_settime", ALL }, { "timer_gettime", ALL },
	{ "timer_getoverrun", ALL }, { "timer_delete", ALL }, { "timerfd_create", ALL },
	{ "timerfd_settime", ALL }, { "timerfd_gettime", ALL },
	/* waiting */
	{ "poll", ALL }, { "ppoll", ALL }, { "select", ALL }, { "pselect6", ALL },
	{ "epoll_create", ALL }, { "epoll_create1", ALL }, { "epoll_ctl", ALL },
	{ "epoll_wait", ALL }, { "epoll_pwait", ALL }, { "epoll_pwait2", ALL },
	/* sockets (socket() and socketpair() are conditional, below) */
	{ "connect", ALL }, { "accept", ALL }, { "accept4", ALL }, { "bind", ALL },
	{ "listen", ALL }, { "getsockname", ALL }, { "getpeername", ALL }, { "sendto", ALL },
	{ "recvfrom", ALL }, { "sendmsg", ALL }, { "recvmsg", ALL }, { "sendmmsg", ALL },
	{ "recvmmsg", ALL }, { "shutdown", ALL }, { "setsockopt", ALL }, { "getsockopt", ALL },
	{ "getrandom", ALL },
	/* memory protection keys: V8 keeps its JIT code write-protected with them where the CPU
	 * has them (it falls back to mprotect() without); they only restrict the caller's own
	 * access to its own memory */
	{ "pkey_alloc", NODE | PROV }, { "pkey_free", NODE | PROV },
	{ "pkey_mprotect", NODE | PROV },
};
const size_t sandbox_seccomp_n_allow = ELEMENTSOF(sandbox_seccomp_allow);

const char *const sandbox_seccomp_conditional[] = {
	"clone", "clone3", "socket", "socketpair", "prctl", "personality", NULL,
};

/* Issue 3's list and their relatives: on no allow-list (the unit test checks it). */
const char *const sandbox_seccomp_refused[] = {
	"mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "ptrace",
	"process_vm_readv", "process_vm_writev", "bpf", "perf_event_open", "keyctl", "add_key",
	"request_key", "kexec_load", "kexec_file_load", "init_module", "finit_module",
	"delete_module", "reboot", "swapon", "swapoff", "userfaultfd", "open_by_handle_at",
	"name_to_handle_at", "io_uring_setup", "io_uring_enter", "io_uring_register", "fsopen",
	"fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr", "setuid",
	"setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid",
	"setgroups", "capset", "mknod", "mknodat", "acct", "quotactl", "settimeofday",
	"clock_settime", "clock_adjtime", "adjtimex", "sethostname", "setdomainname", "iopl",
	"ioperm", "syslog", "vhangup", "pidfd_getfd", "kcmp", "fanotify_init", "seccomp",
	"lookup_dcookie", "process_madvise", "memfd_secret", "modify_ldt", "chown", "fchown",
	"lchown", "fchownat", NULL,
};

/* prctl() options an ordinary program uses; the others (PR_SET_DUMPABLE above all, which
 * would let a process make itself traceable again) are refused. */
static const unsigned long prctl_allowed[] = {
	PR_SET_NAME,	     PR_GET_NAME,	  PR_SET_PDEATHSIG,  PR_GET_PDEATHSIG,
	PR_GET_DUMPABLE,     PR_GET_KEEPCAPS,	  PR_CAPBSET_READ,   PR_GET_SECCOMP,
	PR_GET_NO_NEW_PRIVS, PR_SET_NO_NEW_PRIVS, PR_GET_TIMERSLACK, PR_SET_TIMERSLACK,
	PR_GET_THP_DISABLE,  PR_SET_VMA,	  PR_GET_TID_ADDRESS,
};

/* Socket families: local, IPv4/6 (only the loopback exists in the instance's namespace) and
 * routing netlink (glibc's getaddrinfo and if_nameindex use it; changing anything needs
 * CAP_NET_ADMIN). Not AF_VSOCK (it reaches the hypervisor, namespaces notwithstanding),
 * AF_PACKET, AF_ALG or other netlink families (uevents, audit). */
static const int socket_families[] = { AF_UNIX, AF_INET, AF_INET6 };

/* What phase 2 calls after the policy is loaded, and the lock refuses: on the policy, not on
 * the allow-list. unshare() only for the cgroup namespace. */
static const char *const phase2_calls[] = {
	"mount", "umount2", "pivot_root", "mount_setattr", "move_mount", "setgroups", "setresgid",
	"setresuid", "capset", "seccomp",
};
static const unsigned long phase2_prctls[] = { PR_CAP_AMBIENT, PR_SET_DUMPABLE };

struct compiled {
	struct sock_filter *insns;
	unsigned short len;
};

static struct compiled policies[_SANDBOX_RUNTIME_MAX];
static struct compiled lock;

static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n_args,
		    const struct scmp_arg_cmp *args)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR)
		return 0; /* not a syscall on this architecture */
	return seccomp_rule_add_array(ctx, action, nr, n_args, args);
}

static int add_conditional(scmp_filter_ctx ctx)
{
	const struct scmp_arg_cmp no_ns = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NS_FLAGS, 0);
	const struct scmp_arg_cmp unix_only = SCMP_A0(SCMP_CMP_EQ, AF_UNIX);
	const struct scmp_arg_cmp netlink[2] = {
		SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
		SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE),
	};
	const struct scmp_arg_cmp query = SCMP_A0(SCMP_CMP_EQ, 0xffffffffu);
	int r;

	r = add_rule(ctx, SCMP_ACT_ALLOW, "clone", 1, &no_ns);
	if (r < 0)
		return r;
	r = add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(socket_families); i++) {
		const struct scmp_arg_cmp fam = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)socket_families[i]);

		r = add_rule(ctx, SCMP_ACT_ALLOW, "socket", 1, &fam);
		if (r < 0)
			return r;
	}
	r = add_rule(ctx, SCMP_ACT_ALLOW, "socket", 2, netlink);
	if (r < 0)
		return r;
	r = add_rule(ctx, SCMP_ACT_ALLOW, "socketpair", 1, &unix_only);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(prctl_allowed); i++) {
		const struct scmp_arg_cmp opt = SCMP_A0(SCMP_CMP_EQ, prctl_allowed[i]);

		r = add_rule(ctx, SCMP_ACT_ALLOW, "prctl", 1, &opt);
		if (r < 0)
			return r;
	}
	/* personality(0xffffffff) only reads the persona (sanitizer runtimes do). */
	return add_rule(ctx, SCMP_ACT_ALLOW, "personality", 1, &query);
}

static int add_phase2(scmp_filter_ctx ctx)
{
	const struct scmp_arg_cmp cgroup_ns = SCMP_A0(SCMP_CMP_EQ, CLONE_NEWCGROUP);
	int r;

	for (size_t i = 0; i < ELEMENTSOF(phase2_calls); i++) {
		r = add_rule(ctx, SCMP_ACT_ALLOW, phase2_calls[i], 0, NULL);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < ELEMENTSOF(phase2_prctls); i++) {
		const struct scmp_arg_cmp opt = SCMP_A0(SCMP_CMP_EQ, phase2_prctls[i]);

		r = add_rule(ctx, SCMP_ACT_ALLOW, "prctl", 1, &opt);
		if (r < 0)
			return r;
	}
	return add_rule(ctx, SCMP_ACT_ALLOW, "unshare", 1, &cgroup_ns);
}

/* libseccomp 2.5 can only export to an fd (seccomp_export_bpf_mem() is 2.6): a memfd, read
 * back. */
static int export_bpf(scmp_filter_ctx ctx, struct compiled *ret)
{
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ struct sock_filter *insns = NULL;
	struct stat st;
	size_t done = 0;
	int r;

	fd = memfd_create("spore-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = seccomp_export_bpf(ctx, fd);
	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) != 0 ||
	    st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS)
		return -E2BIG;
	insns = malloc((size_t)st.st_size);
	if (!insns)
		return -ENOMEM;
	while (done < (size_t)st.st_size) {
		ssize_t n = pread(fd, (char *)insns + done, (size_t)st.st_size - done, (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	ret->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
	ret->insns = TAKE_PTR(insns);
	return 0;
}

static int new_filter(uint32_t def, scmp_filter_ctx *ret)
{
	_cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
	int r;

	ctx = seccomp_init(def);
	if (!ctx)
		return -ENOMEM;
	/* Only the native architecture (x32 syscalls are a different ABI to libseccomp): any
	 * other kills the whole process. */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (r < 0)
		return r;
	/* A binary tree: half the load time of the linear layout, for this many syscalls. */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(ctx);
	return 0;
}

static int compile_policy(enum sandbox_runtime rt)
{
	_cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
	int r;

	r = new_filter(SCMP_ACT_ERRNO(EPERM), &ctx);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(sandbox_seccomp_allow); i++) {
		if (!(sandbox_seccomp_allow[i].runtimes & (1u << rt)))
			continue;
		r = add_rule(ctx, SCMP_ACT_ALLOW, sandbox_seccomp_allow[i].name, 0, NULL);
		if (r < 0)
			return r;
	}
	r = add_conditional(ctx);
	if (r < 0)
		return r;
	r = add_phase2(ctx);
	if (r < 0)
		return r;
	if (SANITIZER_BUILD) {
		const struct scmp_arg_cmp ptracer = SCMP_A0(SCMP_CMP_EQ, PR_SET_PTRACER);

		r = add_rule(ctx, SCMP_ACT_ALLOW, "ptrace", 0, NULL);
		if (r < 0)
			return r;
		r = add_rule(ctx, SCMP_ACT_ALLOW, "prctl", 1, &ptracer);
		if (r < 0)
			return r;
	}
	return export_bpf(ctx, &policies[rt]);
}

static int compile_lock(void)
{
	_cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
	int r;

	r = new_filter(SCMP_ACT_ALLOW, &ctx);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(phase2_calls); i++) {
		r = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), phase2_calls[i], 0, NULL);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < ELEMENTSOF(phase2_prctls); i++) {
		const struct scmp_arg_cmp opt = SCMP_A0(SCMP_CMP_EQ, phase2_prctls[i]);

		if (SANITIZER_BUILD && phase2_prctls[i] == PR_SET_DUMPABLE)
			continue;
		r = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), "prctl", 1, &opt);
		if (r < 0)
			return r;
	}
	r = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), "unshare", 0, NULL);
	if (r < 0)
		return r;
	return export_bpf(ctx, &lock);
}

int sandbox_seccomp_compile(enum sandbox_runtime rt)
{
	int r;

	if (rt < 0 || rt >= _SANDBOX_RUNTIME_MAX)
		return -EINVAL;
	if (!policies[rt].insns) {
		r = compile_policy(rt);
		if (r < 0)
			return r;
	}
	if (!lock.insns) {
		r = compile_lock();
		if (r < 0)
			return r;
	}
	return 0;
}

static int load(const struct compiled *c)
{
	struct sock_fprog prog = { .len = c->len, .filter = c->insns };

	return RET_NERRNO((int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
}

/* Phase 1: we still hold CAP_SYS_ADMIN, which is what lets us load it without no_new_privs. */
int sandbox_seccomp_load_policy(struct sandbox_ctx *ctx)
{
	int r;

	r = sandbox_seccomp_compile(ctx->runtime);
	if (r < 0)
		return r;
	return load(&policies[ctx->runtime]);
}

/* Phase 2, last: no_new_privs is set by now (caps.c), which is what lets us load it. */
int sandbox_seccomp_load_lock(struct sandbox_ctx *ctx)
{
	(void)ctx;
	if (!lock.insns)
		return -EINVAL; /* the policy compiled it: no policy was loaded */
	return load(&lock);
}
