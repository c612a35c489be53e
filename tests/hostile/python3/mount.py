# SPDX-License-Identifier: MIT
"""Mount: a tmpfs on /tmp/x, /var/task remounted read-write, /var/task unmounted, pivot_root.
seccomp refuses them: EPERM."""
import ctypes
import os
import platform

MS_REMOUNT, MS_BIND, MNT_DETACH = 32, 4096, 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(platform.machine(), 155)
libc = ctypes.CDLL(None, use_errno=True)


def result(what, rc):
    err = ctypes.get_errno() if rc < 0 else 0
    return {"what": what, "ok": err == 0, "errno": err, "error": os.strerror(err) if err else ""}


def handler(event, context):
    os.makedirs("/tmp/x", exist_ok=True)
    out = [result("mount tmpfs /tmp/x", libc.mount(b"tmpfs", b"/tmp/x", b"tmpfs", 0, b"size=1m")),
           result("remount /var/task rw",
                  libc.mount(None, b"/var/task", None, MS_REMOUNT | MS_BIND, None)),
           result("umount2 /var/task", libc.umount2(b"/var/task", MNT_DETACH)),
           result("pivot_root /tmp /tmp/x", libc.syscall(SYS_PIVOT_ROOT, b"/tmp", b"/tmp/x"))]
    try:
        os.rmdir("/tmp/x")
    except OSError:
        pass
    return {"results": out}
