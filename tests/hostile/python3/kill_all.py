# SPDX-License-Identifier: MIT
"""kill(-1, SIGKILL) after forking a child of our own: inside the instance's pid namespace that
reaches only the instance's processes (our child dies; we, PID 1, do not), never spored, the
zygotes, other instances or host processes of the same uid. event.dry: only answer."""
import os
import signal
import time


def handler(event, context):
    if (event or {}).get("dry"):
        return {"what": "dry", "ok": True, "errno": 0, "error": ""}
    if os.getpid() != 1 or os.getuid() == 0:  # as root on the host this would kill everything
        return {"what": "refused: not sandboxed", "ok": False, "errno": 1, "error": ""}
    child = os.fork()
    if child == 0:
        try:
            while True:
                time.sleep(60)
        finally:
            os._exit(0)
    err = 0
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError as e:
        err = e.errno
        os.kill(child, signal.SIGKILL)
    _, status = os.waitpid(child, 0)
    return {"what": "kill(-1, SIGKILL)", "ok": err == 0, "errno": err,
            "error": os.strerror(err) if err else "",
            "child_killed": err == 0 and os.WIFSIGNALED(status) and
            os.WTERMSIG(status) == signal.SIGKILL,
            "getpid": os.getpid()}
