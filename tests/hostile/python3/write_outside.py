# SPDX-License-Identifier: MIT
"""Write outside /tmp: /var/task/x, /etc/x, /x, /usr/x, /dev/x (event.paths to change them): every
one must fail (EROFS: the root, /etc, /usr and the code are read-only)."""
import os

DEFAULT_PATHS = ["/var/task/x", "/etc/x", "/x", "/usr/x", "/dev/x"]


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


def handler(event, context):
    paths = (event or {}).get("paths") if isinstance(event, dict) else None
    return {"results": [try_write(p) for p in (paths or DEFAULT_PATHS)]}
