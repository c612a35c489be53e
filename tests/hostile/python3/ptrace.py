# SPDX-License-Identifier: MIT
"""Trace a sibling: PTRACE_ATTACH and PTRACE_SEIZE of a child of ours and of PID 1 (ourselves),
process_vm_readv of the child. seccomp refuses all of them: EPERM."""
import ctypes
import os
import signal
import time

PTRACE_ATTACH, PTRACE_DETACH, PTRACE_SEIZE = 16, 17, 0x4206
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long


class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def result(what, rc):
    err = ctypes.get_errno() if rc < 0 else 0
    return {"what": what, "ok": err == 0, "errno": err, "error": os.strerror(err) if err else ""}


def try_ptrace(what, req, pid):
    rc = libc.ptrace(req, pid, None, None)
    r = result(what, rc)
    if rc >= 0:
        libc.ptrace(PTRACE_DETACH, pid, None, None)
    return r


def handler(event, context):
    child = os.fork()
    if child == 0:
        try:
            while True:
                time.sleep(60)
        finally:
            os._exit(0)
    buf = ctypes.create_string_buffer(64)
    local = iovec(ctypes.cast(buf, ctypes.c_void_p), 64)
    remote = iovec(ctypes.cast(buf, ctypes.c_void_p), 64)  # same address in the child (a fork)
    out = [try_ptrace("PTRACE_ATTACH child %d" % child, PTRACE_ATTACH, child),
           try_ptrace("PTRACE_SEIZE child %d" % child, PTRACE_SEIZE, child),
           try_ptrace("PTRACE_ATTACH 1", PTRACE_ATTACH, 1),
           result("process_vm_readv child",
                  libc.process_vm_readv(child, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0))]
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    return {"results": out}
