#!/usr/bin/python3
"""CPU time per request of a server's process tree under wrk (the throughput profile of
docs/BENCHMARKS.md): utime + stime of every process below ROOTPID (by command name) and of wrk,
and the tree's context switches, before and after one wrk run, divided by the requests served.

    /usr/bin/python3 tools/bench/cpu-per-request.py PORT PATH ROOTPID [CONNS] [SECONDS]

e.g. PATH /v1/functions/noop/invoke with ROOTPID a spored's pid, or / with nginx's master pid.
Processes that exit during the run are not counted (their CPU goes to their parent's reaped
children, which this does not read): run it on warm instances.
"""
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TCK = os.sysconf("SC_CLK_TCK")


def tree(pid):
    out = [pid]
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                for c in f.read().split():
                    out += tree(int(c))
    except OSError:
        pass
    return out


def cpu(pids):
    """pid -> (command, user seconds, system seconds, context switches)"""
    d = {}
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                st = f.read()
            with open("/proc/%d/status" % p) as f:
                sw = sum(int(v) for v in re.findall(r"ctxt_switches:\s+(\d+)", f.read()))
        except OSError:
            continue
        x = st[st.rindex(")") + 2:].split()
        d[p] = (st[st.index("(") + 1:st.rindex(")")], int(x[11]) / TCK, int(x[12]) / TCK, sw)
    return d


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    port, path, root = sys.argv[1], sys.argv[2], int(sys.argv[3])
    conns = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    secs = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    before = cpu(tree(root))
    t0 = time.time()
    w = subprocess.run(["/usr/bin/time", "-f", "WRKCPU %U %S", "wrk", "-t2", "-c%d" % conns,
                        "-d%ds" % secs, "-s", os.path.join(ROOT, "tools/bench/post.lua"),
                        "http://127.0.0.1:%s%s" % (port, path)],
                       capture_output=True, text=True, check=True)
    elapsed = time.time() - t0
    after = cpu(tree(root))
    n = int(re.search(r"(\d+) requests in", w.stdout).group(1))
    wu, ws = map(float, re.search(r"WRKCPU ([\d.]+) ([\d.]+)", w.stderr).groups())
    by, switches = {}, 0
    for p, (comm, u, s, sw) in after.items():
        b = before.get(p, (comm, 0, 0, 0))
        acc = by.setdefault(comm, [0.0, 0.0])
        acc[0] += u - b[1]
        acc[1] += s - b[2]
        switches += sw - b[3]
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print("%d requests in %.1f s = %.0f/s; load %s" % (n, elapsed, n / elapsed, load))
    for comm, (u, s) in sorted(by.items(), key=lambda x: -sum(x[1])):
        if u + s > 0:
            print("  %-20s %6.1f µs/request (user %.1f, system %.1f)" % (
                comm, (u + s) * 1e6 / n, u * 1e6 / n, s * 1e6 / n))
    print("  %-20s %6.1f µs/request (user %.1f, system %.1f)" % (
        "wrk", (wu + ws) * 1e6 / n, wu * 1e6 / n, ws * 1e6 / n))
    print("  context switches of the server's processes per request: %.2f" % (switches / n))


if __name__ == "__main__":
    main()
