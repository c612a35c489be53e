# SPDX-License-Identifier: MIT
"""Read another function's code (event.paths: its code dir and a file in it, from the state dir,
and through /proc/PID/root of its instance): not reachable."""
import os

DEFAULT_PATHS = []


def try_read(path):
    """{"what", "ok", "errno", "error"} plus "data" (up to 64 KiB as text, NULs as newlines; a
    directory: its names) when it could be read."""
    try:
        if os.path.isdir(path):
            data = "\n".join(sorted(os.listdir(path))[:64])
        else:
            with open(path, "rb") as f:
                data = f.read(65536).replace(b"\0", b"\n").decode("utf-8", "replace")
    except OSError as e:
        return {"what": path, "ok": False, "errno": e.errno, "error": e.strerror or ""}
    return {"what": path, "ok": True, "errno": 0, "error": "", "data": data}


def handler(event, context):
    paths = (event or {}).get("paths") if isinstance(event, dict) else None
    return {"results": [try_read(p) for p in (paths or DEFAULT_PATHS)]}
