# SPDX-License-Identifier: MIT
"""Fork bomb: for event.seconds (1) fork children that fork forever; count our own forks and
their failures and the most processes seen in the namespace; then, PID 1 of the instance's pid
namespace, kill(-1, SIGKILL) everything in it and reap. pids_max must stop it."""
import os
import signal
import time


def _bomb():
    try:
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.001)
    finally:
        os._exit(0)


def _nprocs():
    return sum(1 for d in os.listdir("/proc") if d.isdigit())


def handler(event, context):
    if os.getpid() != 1 or os.getuid() == 0:  # kill(-1) as root on the host would kill everything
        return {"ok": False, "errno": 1, "error": "refused: not sandboxed"}
    seconds = float((event or {}).get("seconds", 1))
    forked = failed = reaped = last_errno = 0
    max_procs = 1
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            pid = os.fork()
        except OSError as e:
            failed += 1
            last_errno = e.errno
            time.sleep(0.002)
        else:
            if pid == 0:
                _bomb()
            forked += 1
        max_procs = max(max_procs, _nprocs())
    for _ in range(1000):
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            break
        try:
            while True:
                os.waitpid(-1, 0)
                reaped += 1
        except ChildProcessError:
            pass
    return {"ok": last_errno == 0, "errno": last_errno,
            "error": os.strerror(last_errno) if last_errno else "",
            "forked": forked, "failed": failed, "max_procs": max_procs, "reaped": reaped,
            "left": _nprocs()}
