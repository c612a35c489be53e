#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Fork bomb from an exec handler (a Python script run as a program: the exec runtime runs any
executable): for event.seconds (1) fork children that fork forever, counting our own forks, their
failures and the most processes seen in the namespace. pids_max must stop it. The handler is not
the instance's pid 1: it exits and leaves the bomb running, and the instance kills whatever is left
(so "left", which the other runtimes' bombs measure themselves, is null here)."""
import json
import os
import sys
import time


def bomb():
    try:
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.001)
    finally:
        os._exit(0)


def nprocs():
    return sum(1 for d in os.listdir("/proc") if d.isdigit())


def main():
    event = json.load(sys.stdin) or {}
    if os.getuid() == 0 or nprocs() > 64:  # not in an instance's own pid namespace
        print(json.dumps({"ok": False, "errno": 1, "error": "refused: not sandboxed"}))
        return
    seconds = float(event.get("seconds", 1))
    forked = failed = last_errno = 0
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
                sys.stdout.close()
                bomb()
            forked += 1
        max_procs = max(max_procs, nprocs())
    print(json.dumps({"ok": last_errno == 0, "errno": last_errno,
                      "error": os.strerror(last_errno) if last_errno else "",
                      "forked": forked, "failed": failed, "max_procs": max_procs, "reaped": 0,
                      "left": None}), flush=True)
    os._exit(0)


main()
