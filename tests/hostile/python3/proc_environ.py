# SPDX-License-Identifier: MIT
"""Read /proc/1/environ (PID 1 of the namespace is the instance itself) and the environment of host
pids (event.paths): nothing of the host's environment may come back."""

from hostile_common import event_paths, try_read

DEFAULT_PATHS = ["/proc/1/environ", "/proc/self/environ", "/proc/1/cmdline"]


def own_initial_environ():
    """The environment this process was exec'd with (the zygote's), read from our own memory
    between env_start and env_end of /proc/self/stat: PID 1 is ourselves, so this is what
    /proc/1/environ would show if it were readable."""
    what = "memory:env_start..env_end"
    try:
        import ctypes
        with open("/proc/self/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        start, end = int(rest[47]), int(rest[48])  # fields 50 and 51
        if not start or end <= start:
            return {"what": what, "ok": False, "errno": 13, "error": "env_start hidden"}
        data = ctypes.string_at(start, min(end - start, 65536))
    except (OSError, ValueError, IndexError) as e:
        return {"what": what, "ok": False, "errno": getattr(e, "errno", 0) or 0, "error": str(e)}
    return {"what": what, "ok": True, "errno": 0, "error": "",
            "data": data.replace(b"\0", b"\n").decode("utf-8", "replace")}


def handler(event, context):
    paths = event_paths(event, DEFAULT_PATHS)
    return {"results": [try_read(p) for p in paths] + [own_initial_environ()]}
