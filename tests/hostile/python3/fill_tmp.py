# SPDX-License-Identifier: MIT
"""Write event.mb (64) MiB to /tmp/fill, past tmp_mb: the write must fail with ENOSPC. Answers
how much was written and the size of /tmp, then removes the file."""
import os

MiB = 1 << 20


def handler(event, context):
    want = int((event or {}).get("mb", 64)) * MiB
    chunk = b"x" * MiB
    written = err = 0
    fd = os.open("/tmp/fill", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        while written < want:
            written += os.write(fd, chunk)
    except OSError as e:
        err = e.errno
    finally:
        os.close(fd)
    sv = os.statvfs("/tmp")
    os.unlink("/tmp/fill")
    return {"what": "/tmp/fill", "ok": err == 0, "errno": err,
            "error": os.strerror(err) if err else "", "written": written,
            "tmp_size": sv.f_blocks * sv.f_frsize}
