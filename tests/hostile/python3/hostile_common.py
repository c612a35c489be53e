# SPDX-License-Identifier: MIT
"""What the python3 path attacks share (the python twin of native/hostile.h); packed next to each
attack by test_hostile.py's deploy_attack()."""
import os


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


def try_write(path):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, b"hostile\n")
        finally:
            os.close(fd)
    except OSError as e:
        return {"what": path, "ok": False, "errno": e.errno, "error": e.strerror or ""}
    return {"what": path, "ok": True, "errno": 0, "error": ""}


def event_paths(event, defaults):
    """event["paths"] when given, else defaults."""
    paths = (event or {}).get("paths") if isinstance(event, dict) else None
    return paths or defaults


def each_path(event, defaults, fn):
    """{"results": [fn(path) for every path of event.paths or defaults]}."""
    return {"results": [fn(p) for p in event_paths(event, defaults)]}
