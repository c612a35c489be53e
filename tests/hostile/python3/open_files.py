# SPDX-License-Identifier: MIT
"""Open event.n (100000) files (/dev/null, over and over) and keep them: RLIMIT_NOFILE must stop
it (EMFILE); raising the limit must fail (EPERM). Answers the counts, then closes them."""
import os
import resource


def handler(event, context):
    n = int((event or {}).get("n", 100000))
    fds, failed, first = [], 0, 0
    for _ in range(n):
        try:
            fds.append(os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC))
        except OSError as e:
            failed += 1
            first = first or e.errno
    opened = len(fds)
    for fd in fds:
        os.close(fd)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1 << 20, 1 << 20))
        rl_err = 0
    except (OSError, ValueError) as e:
        rl_err = getattr(e, "errno", None) or 1
    return {"what": "open /dev/null", "ok": first == 0, "errno": first,
            "error": os.strerror(first) if first else "", "opened": opened, "failed": failed,
            "setrlimit_errno": rl_err, "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}
