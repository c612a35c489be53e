# SPDX-License-Identifier: MIT
"""New namespaces: unshare(CLONE_NEWUSER) (the usual first step to regain capabilities),
unshare(CLONE_NEWNET), clone(CLONE_NEWUSER), setns() into our own network namespace. seccomp
refuses them: EPERM."""
import ctypes
import os
import platform
import signal

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(platform.machine(), 56)
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def result(what, rc):
    err = ctypes.get_errno() if rc < 0 else 0
    return {"what": what, "ok": err == 0, "errno": err, "error": os.strerror(err) if err else ""}


def handler(event, context):
    out = [result("unshare(CLONE_NEWUSER)", libc.unshare(CLONE_NEWUSER)),
           result("unshare(CLONE_NEWNET)", libc.unshare(CLONE_NEWNET))]
    pid = libc.syscall(SYS_CLONE, ctypes.c_ulong(CLONE_NEWUSER | signal.SIGCHLD), None, None,
                       None, None)
    if pid == 0:
        os._exit(0)
    out.append(result("clone(CLONE_NEWUSER)", pid))
    if pid > 0:
        os.waitpid(pid, 0)
    try:
        fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        out.append({"what": "setns(net)", "ok": False, "errno": e.errno, "error": e.strerror})
    else:
        try:
            out.append(result("setns(net)", libc.setns(fd, CLONE_NEWNET)))
        finally:
            os.close(fd)
    return {"results": out}
