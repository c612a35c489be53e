#!/usr/bin/python3
"""spore benchmark suite (issue 9): spore side by side, in one run on one machine, with what a
user would do without it, and the machine's floors. Run as root (the sandbox, bwrap, crun and
the BPF meter need it), from the repository root:

    /usr/bin/python3 tools/bench/suite.py --build build/gcc

or, from a clean checkout, tools/bench/run-all.sh (builds build/bench first). It prints the
tables and writes them between the suite markers of docs/BENCHMARKS.md (unless --no-write), with
the machine, the kernel and the command line. --quick is a smoke run of every scenario with tiny
counts (writes nothing; exits non-zero on any failure); --save FILE keeps the raw results, and
--report-from FILE renders them again without measuring. A full run takes 8-10 minutes on the
2-core VM. Needs wrk, bwrap (bubblewrap), crun, nginx (nginx-light) and util-linux's unshare;
firejail is optional. SIGINT or SIGTERM ends a run with everything it started removed.

Scenarios (spore: a real spored on loopback, sandbox on, the runtimes python3, native and, when
GET /v1/runtimes lists it, nodejs):
  cold     one invocation with no instance of the function (a new version was just deployed),
           timed by the client over HTTP; the peers run one isolated invocation of the same
           handler the way a user would without spore: bare python3, bwrap + python3, crun +
           python3 (OCI bundle), firejail + python3, a fork of an initialised python3 process,
           and C's fork() + _exit(0) (the physical floor).
  warm     sequential invocations on one keep-alive connection (bench-client): a no-op and a
           1 KB JSON echo.
  wrk      throughput of the no-op with wrk at 1, 16, 64 and 256 connections; nginx's
           `return 200` with the same wrk command as the peer.
  half     an open-loop load (bench-load) at half of each subject's best wrk throughput: p99
           from the scheduled send times.
  burst    200 clients at once on a function with no instance (bench-burst); the peers start 200
           isolated invocations at once (bench-spawn -b).
  density  PSS (/proc/PID/smaps_rollup) per idle warm instance; then, on a spored of its own,
           as many concurrent idle python3 instances as it will start toward 1,000
           (PATCH min_instances), where it stops and why, and /healthz latency there.
  create   instances started per second: PATCH min_instances 0 -> 200, until all are idle.

Every figure is a median over all samples of the rounds, with p99 and the spread (lowest and
highest median of a single round); the rounds interleave the subjects, so slow spells of a shared
host hit them all alike, and ratios are taken between figures of the same run.
"""
import argparse
import base64
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (the Spored wrapper and helpers of run.py)

ROOT = bench.ROOT
BEGIN, END = "<!-- suite:begin -->", "<!-- suite:end -->"
PY = "/usr/bin/python3"
EVENT = '{"name": "bench"}'
EXPECT = "hello, bench"
# A 1 KB JSON event (1024 bytes exactly) for the echo.
ECHO_EVENT = json.dumps({"data": "x" * (1024 - len(json.dumps({"data": ""})))})
assert len(ECHO_EVENT) == 1024

# The peers' invocation: load the example's handler, call it on the event, print the answer.
PEER_PY = """import json, sys
import handler
class Context:
    function_name = "bench"; function_version = "1"; aws_request_id = "peer"
    memory_limit_in_mb = 128
print(json.dumps(handler.hello(json.loads(sys.argv[1]), Context())))
"""

# The floor with a zygote: an initialised python3 (the handler imported) forks one child per
# invocation, which parses the event, calls the handler and writes the answer to a pipe.
PYFORK = r"""
import gc, json, os, sys, time
sys.path.insert(0, sys.argv[1])
import handler
class Context:
    function_name = "bench"; function_version = "1"; aws_request_id = "fork"
    memory_limit_in_mb = 128
n, burst, warmup, event = int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4]), sys.argv[5]
gc.freeze()
def start():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, json.dumps(handler.hello(json.loads(event), Context())).encode())
        os._exit(0)
    os.close(w)
    return pid, r
def finish(pid, r):
    data = b""
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        data += b
    os.close(r)
    _, st = os.waitpid(pid, 0)
    return st == 0 and b"hello, bench" in data
errors = 0
for _ in range(warmup):
    finish(*start())
lat = []
t0 = time.perf_counter()
if burst:
    kids = [start() for _ in range(n)]
    for pid, r in kids:
        if not finish(pid, r):
            errors += 1
        lat.append((time.perf_counter() - t0) * 1e6)
else:
    for _ in range(n):
        s = time.perf_counter()
        if not finish(*start()):
            errors += 1
        lat.append((time.perf_counter() - s) * 1e6)
print(json.dumps({"n": n, "errors": errors, "wall_us": (time.perf_counter() - t0) * 1e6,
                  "lat_us": lat}))
"""

# An idle process of each peer kind, for PSS: initialised, then waiting.
IDLE_PY = """import sys, time
sys.path.insert(0, sys.argv[1])
import json, handler
sys.stdout.write("ready\\n"); sys.stdout.flush()
time.sleep(3600)
"""

# crun needs a cgroup layout it knows: a private mount namespace and cgroup namespace with a
# tmpfs on /sys/fs/cgroup holding only the v1 controllers (this hybrid host's v2 tree, even
# without controllers, makes crun 1.8 refuse to run, whatever --cgroup-manager says).
CRUN_WRAP = ("set -e; mount --make-rprivate /; mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup; "
             "for c in cpu cpuacct cpuset memory devices freezer blkio pids; do "
             "mkdir /sys/fs/cgroup/$c; mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c; done; "
             'exec "$@"')

NGINX_CONF = """worker_processes auto;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000000;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    server {
        listen 127.0.0.1:%(port)d;
        location / { return 200 'null'; }
    }
}
"""


T0 = time.time()
LOADS = []  # (seconds into the run, 1-minute load average) at each progress line


def log(*a):
    LOADS.append((round(time.time() - T0), os.getloadavg()[0]))
    print("[%5.0f s] [load %.2f]" % (time.time() - T0, LOADS[-1][1]), *a, file=sys.stderr, flush=True)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] if xs else float("nan")


class Series:
    """Samples of one figure, by round."""

    def __init__(self):
        self.rounds = []

    def add(self, samples):
        if samples:
            self.rounds.append(list(samples))

    @property
    def all(self):
        return [x for r in self.rounds for x in r]

    def summary(self):
        xs = self.all
        if not xs:
            return None
        meds = [statistics.median(r) for r in self.rounds]
        return {"n": len(xs), "rounds": len(self.rounds), "p50": statistics.median(xs),
                "p99": pct(xs, 99), "min": min(xs), "max": max(xs),
                "spread": [min(meds), max(meds)]}


def tool(build, name):
    return os.path.join(build, "tools/bench", name)


def run_json(argv, timeout=600, **kw):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError("%s exited %d: %s" % (" ".join(argv[:3]), out.returncode,
                                                  out.stderr.strip()[-2000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- spore ------------------------------------------------------------------------------------

class Sp(bench.Spored):
    def put(self, name, runtime, handler, code, **fields):
        # cpu_millis 1000: a full core, what memory_mb 1769 would give (as on Lambda), so the
        # figures measure spore, not the CPU quota of the 128 MB default.
        body = {"runtime": runtime, "handler": handler, "timeout_ms": 30000,
                "memory_mb": 128, "cpu_millis": 1000, "code": base64.b64encode(code).decode()}
        body.update(fields)
        st, data, _ = self.api("PUT", "/v1/functions/" + name, json.dumps(body))
        if st != 201:
            raise RuntimeError("deploy %s: %d %s" % (name, st, data))

    def patch(self, name, **fields):
        st, data, _ = self.api("PATCH", "/v1/functions/" + name, json.dumps(fields))
        if st != 200:
            raise RuntimeError("patch %s: %d %s" % (name, st, data))

    def delete(self, name):
        self.api("DELETE", "/v1/functions/" + name)

    def instances(self, name):
        st, data, _ = self.api("GET", "/v1/functions/" + name)
        return json.loads(data)["instances"] if st == 200 else []

    def runtimes(self):
        st, data, _ = self.api("GET", "/v1/runtimes")
        return {r["name"]: r for r in json.loads(data)["runtimes"]}

    def stop(self):
        super().stop()
        # spored unpins its maps when it stops cleanly; a killed one leaves them.
        shutil.rmtree("/sys/fs/bpf/spore-bench-%d" % os.getpid(), ignore_errors=True)

    def log_tail(self, n=4000):
        try:
            with open(os.path.join(self.dir, "spored.log")) as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def count(self):
        """Instances of all functions now (/metrics' spore_instances gauge)."""
        st, data, _ = self.api("GET", "/metrics")
        m = re.search(rb"^spore_instances (\d+)", data, re.M)
        return int(m.group(1)) if st == 200 and m else 0

    def drop(self, names, timeout=30):
        """Deletes the functions names (a name or a list) and waits until spored holds no
        instance (every function of the suite is dropped before the next scenario)."""
        for name in [names] if isinstance(names, str) else names:
            self.delete(name)
        deadline = time.time() + timeout
        while self.count() > 0:
            if time.time() > deadline:
                raise RuntimeError("spored still holds %d instances %d s after a delete" % (
                    self.count(), timeout))
            time.sleep(0.05)


def spore_cold(sd, name, rt, k, sleep_s):
    tcp = http.client.HTTPConnection("127.0.0.1", sd.port, timeout=60)
    lat = []
    for _ in range(k):
        sd.put(name, rt["runtime"], rt["hello"], rt["code"])
        time.sleep(sleep_s)  # the previous version's instance goes; the zygote refills spares
        t0 = time.perf_counter()
        tcp.request("POST", "/v1/functions/%s/invoke" % name, body=EVENT)
        r = tcp.getresponse()
        body = r.read()
        dt = (time.perf_counter() - t0) * 1e6
        if r.status != 200 or r.getheader("X-Spore-Cold-Start") != "true" or EXPECT.encode() not in body:
            raise RuntimeError("cold %s: %d cold=%s %r" % (name, r.status,
                                                          r.getheader("X-Spore-Cold-Start"), body[:200]))
        lat.append(dt)
    tcp.close()
    return lat


def bench_client(build, port, name, body, n):
    return run_json([tool(build, "bench-client"), str(port), "/v1/functions/%s/invoke" % name,
                     body, str(n), "200"])


def wrk(port, path, conns, seconds):
    out = subprocess.run(["wrk", "-t%d" % min(2, conns), "-c%d" % conns, "-d%ds" % seconds,
                          "--latency", "-s", os.path.join(ROOT, "tools/bench/post.lua"),
                          "http://127.0.0.1:%d%s" % (port, path)],
                         check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    p99_us = None
    if p99:
        p99_us = float(p99.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[p99.group(2)]
    return {"rps": float(m.group(1)) if m else 0.0, "non2xx": int(errs.group(1)) if errs else 0,
            "socket_errors": sock.group(1) if sock else "", "p99_us": p99_us}


def pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            txt = f.read()
    except OSError:
        return None
    m = re.search(r"^Pss:\s+(\d+) kB", txt, re.M)
    r = re.search(r"^Rss:\s+(\d+) kB", txt, re.M)
    return (int(m.group(1)), int(r.group(1))) if m and r else None


def mem_available_kib():
    with open("/proc/meminfo") as f:
        return int(re.search(r"MemAvailable:\s+(\d+)", f.read()).group(1))


def wait_idle(sd, name, want, timeout, poll=0.02):
    """Polls until want instances of name are idle; returns (seconds, idle count, timeline)."""
    t0 = time.perf_counter()
    last, last_change, timeline = -1, t0, []
    while True:
        inst = sd.instances(name)
        idle = sum(1 for i in inst if i["state"] == "idle")
        now = time.perf_counter()
        if idle != last:
            timeline.append((round(now - t0, 3), idle, len(inst)))
            last, last_change = idle, now
        if idle >= want:
            return now - t0, idle, timeline
        if now - t0 > timeout or now - last_change > 10:
            return None, idle, timeline
        time.sleep(poll)


def healthz(port, n, until=None):
    """n sequential GET /healthz on one keep-alive connection; with until (an Event), at least
    n and on until it is set."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    lat, errors = [], 0
    while len(lat) < n or (until is not None and not until.is_set()):
        t0 = time.perf_counter()
        try:
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            ok = r.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        lat.append((time.perf_counter() - t0) * 1e6)
        errors += not ok
    c.close()
    return lat, errors


# --- peers ------------------------------------------------------------------------------------

class Peers:
    def __init__(self, build, work, firejail):
        self.build = build
        self.work = work
        self.task = os.path.join(work, "task")
        os.makedirs(self.task)
        shutil.copy(os.path.join(ROOT, "examples/python3/hello/handler.py"), self.task)
        with open(os.path.join(self.task, "peer.py"), "w") as f:
            f.write(PEER_PY)
        self.bundle = os.path.join(work, "bundle")
        self.crun_root = os.path.join(work, "crun-state")
        self._crun_bundle()
        spawn = tool(build, "bench-spawn")
        bw = ["/usr/bin/bwrap", "--unshare-all", "--die-with-parent", "--new-session",
              "--cap-drop", "ALL", "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib",
              "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
              "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
              "--ro-bind", self.task, "/var/task", "--chdir", "/var/task",
              PY, "peer.py", EVENT]
        # name -> (argv prefix before bench-spawn's options, argv after "--")
        self.cmds = {
            "python3": ([], [PY, os.path.join(self.task, "peer.py"), EVENT]),
            "bwrap + python3": ([], bw),
            "crun + python3": (["/usr/bin/unshare", "--mount", "--cgroup", "/bin/sh", "-c",
                                CRUN_WRAP, "sh"],
                               ["/usr/bin/crun", "--root", self.crun_root, "run", "--bundle",
                                self.bundle, "spore-bench-{}"]),
        }
        if firejail:
            self.cmds["firejail + python3"] = ([], [
                "/usr/bin/firejail", "--quiet", "--noprofile", "--net=none",
                "--caps.drop=all", "--nonewprivs", PY, os.path.join(self.task, "peer.py"), EVENT])
        self.spawn = spawn

    def _crun_bundle(self):
        rootfs = os.path.join(self.bundle, "rootfs")
        for d in ("usr", "proc", "dev", "tmp", "var/task", "etc"):
            os.makedirs(os.path.join(rootfs, d))
        for link, target in (("lib", "usr/lib"), ("lib64", "usr/lib64"), ("bin", "usr/bin")):
            os.symlink(target, os.path.join(rootfs, link))
        subprocess.run(["/usr/bin/crun", "spec"], cwd=self.bundle, check=True)
        path = os.path.join(self.bundle, "config.json")
        with open(path) as f:
            spec = json.load(f)
        p = spec["process"]
        p["terminal"] = False
        p["args"] = [PY, "peer.py", EVENT]
        p["cwd"] = "/var/task"
        p["user"] = {"uid": 65534, "gid": 65534}
        for k in ("bounding", "effective", "permitted", "ambient"):
            p["capabilities"][k] = []
        spec["mounts"] = [m for m in spec["mounts"]
                          if m["destination"] not in ("/sys", "/sys/fs/cgroup", "/dev/pts")]
        spec["mounts"] += [
            {"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]},
            {"destination": "/var/task", "type": "bind", "source": self.task,
             "options": ["rbind", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "size=65536k"]}]
        # The limits spore's instances get here: 128 MB, a full core, 64 pids.
        spec["linux"].setdefault("resources", {})
        spec["linux"]["resources"]["memory"] = {"limit": 128 << 20}
        spec["linux"]["resources"]["cpu"] = {"quota": 100000, "period": 100000}
        spec["linux"]["resources"]["pids"] = {"limit": 64}
        with open(path, "w") as f:
            json.dump(spec, f, indent=1)

    def spawn_run(self, name, n, burst=False, warmup=1):
        pre, cmd = self.cmds[name]
        argv = pre + [self.spawn, "-n", str(n), "-w", str(warmup), "-e", EXPECT] + \
            (["-b"] if burst else []) + ["--"] + cmd
        return run_json(argv)

    def fork_floor(self, n, burst=False):
        return run_json([self.spawn, "-f", "-n", str(n), "-w", "5"] + (["-b"] if burst else []))

    def pyfork(self, n, burst=False):
        return run_json([PY, "-c", PYFORK, self.task, str(n), "1" if burst else "0", "3", EVENT])

    def measure(self, name, n, burst=False):
        if name == "fork of initialised python3":
            d = self.pyfork(n, burst)
        elif name == "C fork() + _exit":
            d = self.fork_floor(n, burst)
        else:
            d = self.spawn_run(name, n, burst, warmup=0 if burst else 1)
        if d["errors"]:
            raise RuntimeError("peer %s: %d of %d runs failed" % (name, d["errors"], d["n"]))
        return d

    @property
    def names(self):
        return list(self.cmds) + ["fork of initialised python3", "C fork() + _exit"]

    def idle_pss(self, n):
        """PSS of n idle, initialised python3 processes: started apart, and forked from one."""
        res = {}
        procs = [subprocess.Popen([PY, "-c", IDLE_PY, self.task], stdout=subprocess.PIPE)
                 for _ in range(n)]
        try:
            for p in procs:
                p.stdout.readline()
            vals = [pss_kib(p.pid) for p in procs]
            res["python3 process"] = [v for v in vals if v]
        finally:
            for p in procs:
                p.kill()
                p.wait()
        forker = ("import os, sys, time\nsys.path.insert(0, sys.argv[1])\nimport json, handler\n"
                  "import gc; gc.freeze()\nkids = []\nfor _ in range(int(sys.argv[2])):\n"
                  "    pid = os.fork()\n    if pid == 0:\n        time.sleep(3600); os._exit(0)\n"
                  "    kids.append(pid)\nprint(' '.join(map(str, kids)), flush=True)\n"
                  "time.sleep(3600)\n")
        p = subprocess.Popen([PY, "-c", forker, self.task, str(n)], stdout=subprocess.PIPE,
                             text=True)
        kids = []
        try:
            kids = [int(x) for x in p.stdout.readline().split()]
            time.sleep(0.3)
            vals = [pss_kib(k) for k in kids]
            res["fork of initialised python3"] = [v for v in vals if v]
        finally:
            for k in kids:
                try:
                    os.kill(k, signal.SIGKILL)
                except OSError:
                    pass
            p.kill()
            p.wait()
        return res


class Nginx:
    def __init__(self, work):
        self.dir = os.path.join(work, "nginx")
        os.makedirs(self.dir)
        self.port = bench.free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF % {"dir": self.dir, "port": self.port})
        self.proc = subprocess.Popen(["/usr/sbin/nginx", "-c", conf, "-p", self.dir,
                                      "-g", "daemon off;"], stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("POST", "/", body="{}")
                if c.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- the run ----------------------------------------------------------------------------------

def subjects(build, have_nodejs):
    py = bench.pack([("handler.py", os.path.join(ROOT, "examples/python3/hello/handler.py"))])
    native = bench.pack([("hello.so", os.path.join(build, "examples/native/hello/hello.so"))])
    rts = {"python3": {"runtime": "python3", "hello": "handler.hello", "noop": "handler.noop",
                       "echo": "handler.echo", "code": py},
           "native": {"runtime": "native", "hello": "hello", "noop": "noop", "echo": "echo",
                      "code": native}}
    if have_nodejs:
        d = os.path.join(ROOT, "examples/nodejs/hello")
        rts["nodejs"] = {"runtime": "nodejs", "hello": "index.hello", "noop": "index.noop",
                         "echo": "index.echo",
                         "code": bench.pack([(n, os.path.join(d, n)) for n in ("index.js", "esm.mjs")])}
    return rts


def scenarios(args, build, firejail, work, res):
    """Cold, warm, throughput, half load, burst, creation and PSS: one spored, nginx, peers."""
    sd = nginx = None
    try:
        peers = Peers(build, work, firejail)
        nginx = Nginx(work)
        sd = Sp(build, True)
        have_nodejs = "nodejs" in sd.runtimes()
        rts = subjects(build, have_nodejs)
        log("suite: runtimes %s; peers %s" % (", ".join(rts), ", ".join(peers.names)))

        # 1. cold start, rounds interleaving spore's runtimes and the peers.
        cold = {("spore " + r): Series() for r in rts}
        cold.update({p: Series() for p in peers.names})
        for rnd in range(args.rounds):
            for r, rt in rts.items():
                cold["spore " + r].add(spore_cold(sd, "cold-" + r, rt, args.cold, args.cold_sleep))
            for p in peers.names:
                cold[p].add(peers.measure(p, args.cold)["lat_us"])
            if rnd == args.rounds - 1:
                sd.drop(["cold-" + r for r in rts])
            log("cold round %d: %s" % (rnd + 1, ", ".join(
                "%s %.2f ms" % (k, statistics.median(v.rounds[-1]) / 1e3) for k, v in cold.items())))
        res["cold"] = {k: v.summary() for k, v in cold.items()}

        # 2. warm latency: a no-op and a 1 KB JSON echo.
        warm = {}
        for r, rt in rts.items():
            sd.put("noop-" + r, rt["runtime"], rt["noop"], rt["code"], queue_max=1000)
            sd.put("echo-" + r, rt["runtime"], rt["echo"], rt["code"], queue_max=1000)
            warm[r] = {"noop": {"p50": Series(), "p99": Series()},
                       "echo": {"p50": Series(), "p99": Series()}}
        for rnd in range(args.rounds):
            for r in rts:
                for kind, body in (("noop", EVENT), ("echo", ECHO_EVENT)):
                    d = bench_client(build, sd.port, "%s-%s" % (kind, r), body, args.warm)
                    warm[r][kind]["p50"].add([d["p50_us"]])
                    warm[r][kind]["p99"].add([d["p99_us"]])
        res["warm"] = {r: {k: {m: s.summary() for m, s in d.items()} for k, d in w.items()}
                       for r, w in warm.items()}
        log("warm: " + json.dumps({r: {k: (d["p50"]["p50"], d["p99"]["p50"]) for k, d in w.items()}
                                   for r, w in res["warm"].items()}))

        # 3. throughput: wrk on the no-op, spore's runtimes and nginx, rounds interleaved.
        targets = {("spore " + r): (sd.port, "/v1/functions/noop-%s/invoke" % r) for r in rts}
        targets["nginx return 200"] = (nginx.port, "/")
        conns = (1, 16, 64, 256)
        thr = {t: {c: {"rps": Series(), "p99": Series(), "non2xx": 0} for c in conns} for t in targets}
        # Warm-up, not counted: spored scales each no-op out to its max_instances (10) at the
        # most connections, so the rounds measure serving, not the scale-out (idle_ttl_s 300
        # keeps the instances for the rounds).
        for t, (port, path) in targets.items():
            wrk(port, path, conns[-1], 2)
        for rnd in range(args.wrk_rounds):
            for t, (port, path) in targets.items():
                for c in conns:
                    d = wrk(port, path, c, args.wrk_seconds)
                    thr[t][c]["rps"].add([d["rps"]])
                    if d["p99_us"] is not None:
                        thr[t][c]["p99"].add([d["p99_us"]])
                    thr[t][c]["non2xx"] += d["non2xx"]
            log("wrk round %d: %s" % (rnd + 1, ", ".join(
                "%s %s" % (t, "/".join("%.0f" % thr[t][c]["rps"].rounds[-1][0] for c in conns))
                for t in targets)))
        res["wrk"] = {t: {c: {"rps": d["rps"].summary(), "p99": d["p99"].summary(),
                              "non2xx": d["non2xx"]} for c, d in v.items()} for t, v in thr.items()}

        # 4. open loop at half of each subject's best throughput (nginx: at spore native's rate).
        best = {t: max(res["wrk"][t][c]["rps"]["p50"] for c in conns) for t in targets}
        rate_of = dict(best)
        for t in targets:
            rate_of[t] = best[t] / 2
        rate_of["nginx return 200"] = best.get("spore native", best["nginx return 200"]) / 2
        half = {t: {"p50": Series(), "p99": Series(), "p999": Series(), "late": 0, "errors": 0}
                for t in targets}
        for rnd in range(args.wrk_rounds):
            for t, (port, path) in targets.items():
                d = run_json([tool(build, "bench-load"), str(port), path, EVENT,
                              "%.0f" % rate_of[t], str(args.half_seconds), "64"])
                for m in ("p50", "p99", "p999"):
                    half[t][m].add([d[m + "_us"]])
                half[t]["late"] += d["late"]
                half[t]["errors"] += d["errors"]
        sd.drop([k + "-" + r for r in rts for k in ("noop", "echo")])
        res["half"] = {t: {"rate": rate_of[t], "p50": v["p50"].summary(), "p99": v["p99"].summary(),
                           "p999": v["p999"].summary(), "late": v["late"], "errors": v["errors"]}
                       for t, v in half.items()}
        log("half load: " + json.dumps({t: (v["rate"], v["p99"]["p50"]) for t, v in res["half"].items()}))

        # 5. burst: 200 clients at once on a function with no instance; the peers start 200.
        # memory_mb 64 (+ cpu_millis 1000: still a full core) so 200 instances fit spored's
        # memory budget (instance_memory_pct of the host).
        burst = {("spore " + r): {"wall": Series(), "lat": Series(), "cold": []} for r in rts}
        burst.update({p: {"wall": Series(), "lat": Series()} for p in peers.names})
        for rnd in range(args.burst_rounds):
            for r, rt in rts.items():
                name = "burst-%s-%d" % (r, rnd)
                sd.put(name, rt["runtime"], rt["hello"], rt["code"], memory_mb=64,
                       cpu_millis=1000, max_instances=args.burst, queue_max=10000)
                time.sleep(0.5)
                d = run_json([tool(build, "bench-burst"), str(sd.port),
                              "/v1/functions/%s/invoke" % name, EVENT, str(args.burst)])
                if d["errors"] or d["ok"] != args.burst:
                    raise RuntimeError("burst %s: %s; spored's log ends: %s" % (
                        name, {k: v for k, v in d.items() if k != "lat_us"}, sd.log_tail(1500)))
                burst["spore " + r]["wall"].add([d["wall_us"]])
                burst["spore " + r]["lat"].add(d["lat_us"])
                burst["spore " + r]["cold"].append(d["cold"])
                burst["spore " + r].setdefault("instances", []).append(len(sd.instances(name)))
                sd.drop(name)
            for p in peers.names:
                d = peers.measure(p, args.burst, burst=True)
                burst[p]["wall"].add([d["wall_us"]])
                burst[p]["lat"].add(d["lat_us"])
            log("burst round %d: %s" % (rnd + 1, ", ".join(
                "%s %.0f ms" % (k, v["wall"].rounds[-1][0] / 1e3) for k, v in burst.items())))
        res["burst"] = {k: {"wall": v["wall"].summary(), "lat": v["lat"].summary(),
                            "cold": v.get("cold"), "instances": v.get("instances")}
                        for k, v in burst.items()}

        # 6. creation rate: PATCH min_instances 0 -> N, until all are idle.
        for r, rt in rts.items():
            s = Series()
            tl = None
            for rnd in range(args.burst_rounds):
                name = "create-%s-%d" % (r, rnd)
                sd.put(name, rt["runtime"], rt["noop"], rt["code"], memory_mb=64,
                       cpu_millis=1000, max_instances=args.create)
                time.sleep(0.5)
                t0 = time.perf_counter()
                sd.patch(name, min_instances=args.create)
                secs, idle, tl = wait_idle(sd, name, args.create, 120)
                secs = (time.perf_counter() - t0) if secs is not None else None
                if secs is None:
                    raise RuntimeError("create %s: %d of %d idle; log: %s" % (
                        name, idle, args.create, sd.log_tail(800)))
                s.add([secs])
                sd.drop(name)
            sm = s.summary()
            res["create"][r] = {"n": args.create, "seconds": sm,
                                "per_s": args.create / sm["p50"], "timeline": tl}
            log("create %s: %d in %.2f s" % (r, args.create, sm["p50"]))

        # 7. density: PSS per idle warm instance.
        for r, rt in rts.items():
            name = "pss-" + r
            sd.put(name, rt["runtime"], rt["noop"], rt["code"], memory_mb=64, cpu_millis=1000,
                   max_instances=args.density_pss)
            sd.patch(name, min_instances=args.density_pss)
            secs, idle, _ = wait_idle(sd, name, args.density_pss, 120)
            # each instance answers once, so every one is warm
            run_json([tool(build, "bench-burst"), str(sd.port), "/v1/functions/%s/invoke" % name,
                      EVENT, str(args.density_pss)])
            time.sleep(1.0)
            vals = [pss_kib(i["pid"]) for i in sd.instances(name) if i.get("pid")]
            vals = [v for v in vals if v]
            zyg = sd.runtimes()[rt["runtime"]]["pid"]
            res["pss"]["spore " + r] = {"n": len(vals), "pss_kib": statistics.median(v[0] for v in vals),
                                        "rss_kib": statistics.median(v[1] for v in vals),
                                        "zygote_pss_kib": (pss_kib(zyg) or (None,))[0]}
            sd.drop(name)
        for k, vals in peers.idle_pss(args.density_pss).items():
            res["pss"][k] = {"n": len(vals), "pss_kib": statistics.median(v[0] for v in vals),
                             "rss_kib": statistics.median(v[1] for v in vals)}
        log("pss: " + json.dumps(res["pss"]))
    finally:
        if sd:
            sd.stop()
        if nginx:
            nginx.stop()


def density(args, build, res):
    """As many concurrent python3 instances as one spored will start, toward --density-max.

    spored admits an instance only while the memory_mb of all instances stays within
    instance_memory_pct of the host's memory: at memory_mb 64 (the least) and 100 %, that is
    host MiB / 64 instances. The suite asks for a 400 % overcommit first (the figures are
    limits, and an idle python3 instance uses a few MiB) and falls back to 100 % where spored
    refuses the setting; the report says which it got and where the count stopped."""
    aim = args.density_max
    sd = pct_used = None
    for pct_try in (400, 100):
        try:
            sd = Sp(build, True, "max_instances_total = %d\ninstance_memory_pct = %d\n" % (
                aim * 2, pct_try))
            pct_used = pct_try
            break
        except RuntimeError:
            log("density: spored refused instance_memory_pct = %d" % pct_try)
    if sd is None:
        raise RuntimeError("density: spored did not start")
    try:
        rt = subjects(build, False)["python3"]
        sd.put("many", "python3", rt["noop"], rt["code"], memory_mb=64, cpu_millis=1000,
               max_instances=min(1000, aim), queue_max=100000)
        mem0 = mem_available_kib()
        t0 = time.perf_counter()
        sd.patch("many", min_instances=min(1000, aim))
        secs, idle, tl = wait_idle(sd, "many", aim, 300, poll=0.25)
        time.sleep(2)
        inst = sd.instances("many")
        idle = sum(1 for i in inst if i["state"] == "idle")
        mem1 = mem_available_kib()
        hz, hz_err = healthz(sd.port, 500)
        # Every instance answers at once (as many clients as instances), while /healthz is
        # asked again and again on a connection of its own, from before the burst until all
        # its answers are in.
        busy_hz = {}
        done = threading.Event()

        def probe():
            busy_hz["lat"], busy_hz["errors"] = healthz(sd.port, 20, until=done)
        th = threading.Thread(target=probe)
        th.start()
        try:
            d = run_json([tool(build, "bench-burst"), str(sd.port),
                          "/v1/functions/many/invoke", EVENT, str(max(1, idle))])
        finally:
            done.set()
            th.join(120)
        tail = sd.log_tail(20000)
        reasons = sorted(set(re.findall(r"cannot start [^\n]*?: ([^\n]+)", tail)))
        pssv = [pss_kib(i["pid"]) for i in inst[:100] if i.get("pid")]
        pssv = [v[0] for v in pssv if v]
        bl = busy_hz.get("lat") or [float("nan")]
        res["max"] = {"aim": aim, "instance_memory_pct": pct_used, "reached": idle,
                      "instances": len(inst),
                      # until the count stopped growing, when it stopped short of the aim
                      "seconds": secs if secs is not None else (tl[-1][0] if tl else None),
                      "timeline": tl[-5:], "mem_per_instance_kib": (mem0 - mem1) / max(1, idle),
                      "pss_kib": statistics.median(pssv) if pssv else None,
                      "healthz": {"p50_us": statistics.median(hz), "p99_us": pct(hz, 99),
                                  "max_us": max(hz), "errors": hz_err},
                      "healthz_busy": {"n": len(bl), "p50_us": statistics.median(bl),
                                       "p99_us": pct(bl, 99),
                                       "max_us": max(bl), "errors": busy_hz.get("errors")},
                      "all_answer": {"ok": d["ok"], "errors": d["errors"], "wall_us": d["wall_us"],
                                     "p99_us": pct(d["lat_us"], 99)},
                      "reasons": reasons}
        st, data, _ = sd.api("GET", "/metrics")
        m = re.search(rb"^spore_instances_memory_bytes(?:\{[^}]*\})? (\d+)", data, re.M)
        if m:
            res["max"]["reserved_mb"] = int(m.group(1)) >> 20
        log("max: " + json.dumps(res["max"]))
    finally:
        sd.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build/gcc"))
    ap.add_argument("--rounds", type=int, default=5, help="rounds of every scenario (default 5)")
    ap.add_argument("--cold", type=int, default=12, help="cold starts per subject per round")
    ap.add_argument("--cold-sleep", type=float, default=0.3,
                    help="seconds between a deploy and the timed cold invocation")
    ap.add_argument("--warm", type=int, default=3000, help="warm invocations per round")
    ap.add_argument("--wrk-seconds", type=int, default=2)
    ap.add_argument("--wrk-rounds", type=int, default=3)
    ap.add_argument("--half-seconds", type=int, default=4)
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--burst-rounds", type=int, default=2)
    ap.add_argument("--create", type=int, default=200)
    ap.add_argument("--density-pss", type=int, default=50, help="idle instances sampled for PSS")
    ap.add_argument("--density-max", type=int, default=1000,
                    help="concurrent python3 instances to aim at")
    ap.add_argument("--no-firejail", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: every scenario with tiny counts; writes nothing")
    ap.add_argument("--save", metavar="FILE",
                    help="also write the raw results and the options to FILE (JSON)")
    ap.add_argument("--report-from", metavar="FILE",
                    help="measure nothing: print (and write, unless --no-write) the tables of a "
                         "run saved with --save")
    args = ap.parse_args()
    if args.report_from:
        with open(args.report_from) as f:
            saved = json.load(f)
        # JSON keys are strings: the connection counts of wrk's figures are numbers again.
        saved["results"]["wrk"] = {t: {int(c): d for c, d in v.items()}
                                   for t, v in saved["results"]["wrk"].items()}
        for k, v in saved["options"].items():
            if k not in ("report_from", "save", "no_write"):
                setattr(args, k, v)
        lines = report(saved["results"], args, os.path.abspath(args.build), saved["firejail"])
        print("\n".join(lines))
        if not args.no_write:
            write_section(lines)
            print("wrote the suite section of docs/BENCHMARKS.md")
        return
    # SIGTERM and SIGINT (ignored in a background job unless set here) end the run through the
    # finally blocks: every spored, nginx, peer, cgroup and work directory is removed.
    def interrupted(signo, frame):
        raise KeyboardInterrupt("signal %d" % signo)
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    if args.quick:
        args.rounds, args.cold, args.warm, args.wrk_seconds, args.wrk_rounds = 1, 3, 300, 1, 1
        args.half_seconds, args.burst, args.burst_rounds, args.create = 1, 20, 1, 20
        args.density_pss, args.density_max, args.no_write = 5, 50, True
    build = os.path.abspath(args.build)
    for t in ("bench-client", "bench-spawn", "bench-burst", "bench-load"):
        if not os.access(tool(build, t), os.X_OK):
            sys.exit("suite: %s missing: build with ninja -C %s" % (tool(build, t), build))
    for t in ("/usr/bin/wrk", "/usr/bin/bwrap", "/usr/bin/crun", "/usr/sbin/nginx", "/usr/bin/unshare"):
        if not os.access(t, os.X_OK):
            sys.exit("suite: %s missing (apt-get install wrk bubblewrap crun nginx-light)" % t)
    firejail = not args.no_firejail and os.access("/usr/bin/firejail", os.X_OK)

    started = time.time()
    load_before = os.getloadavg()
    work = tempfile.mkdtemp(prefix="spore-suite-")
    res = {"cold": {}, "warm": {}, "wrk": {}, "half": {}, "burst": {}, "pss": {}, "create": {},
           "max": {}, "started_utc": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M")}
    try:
        scenarios(args, build, firejail, work, res)
        density(args, build, res)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    res["wall_s"] = time.time() - started
    res["load"] = [load_before, os.getloadavg()]
    res["loads"] = LOADS
    if args.save:
        with open(args.save, "w") as f:
            json.dump({"options": vars(args), "firejail": firejail, "results": res}, f)
    lines = report(res, args, build, firejail)
    print("\n".join(lines))
    if not args.no_write:
        write_section(lines)
        print("wrote the suite section of docs/BENCHMARKS.md")


# --- the report -------------------------------------------------------------------------------

def ms(us):
    return "%.2f ms" % (us / 1e3) if us is not None else "n/a"


def fus(us):
    return ("%.0f µs" % us if us < 1000 else "%.2f ms" % (us / 1e3)) if us is not None else "n/a"


def spread_ms(s):
    return "%.2f-%.2f" % (s["spread"][0] / 1e3, s["spread"][1] / 1e3)


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"model name\s*:\s*(.*)", f.read()).group(1).strip()
    except (OSError, AttributeError):
        pass
    with open("/proc/meminfo") as f:
        mem = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1)) / 1024 / 1024
    return "%s, %s, %d cores, %.1f GiB, kernel %s" % (platform.machine(), cpu, os.cpu_count(),
                                                      mem, platform.release())


def report(res, args, build, firejail):
    rel = os.path.relpath(build, ROOT)
    cmd = "/usr/bin/python3 tools/bench/suite.py --build %s" % (build if rel.startswith("..") else rel)
    defaults = {"rounds": 5, "cold": 12, "warm": 3000, "wrk_seconds": 2, "wrk_rounds": 3,
                "half_seconds": 4, "burst": 200, "burst_rounds": 2, "create": 200,
                "density_pss": 50, "density_max": 1000, "cold_sleep": 0.3}
    for k, v in defaults.items():
        if getattr(args, k) != v:
            cmd += " --%s %s" % (k.replace("_", "-"), getattr(args, k))
    if args.no_firejail:
        cmd += " --no-firejail"
    cold = res["cold"]
    py = cold["spore python3"]["p50"]
    L = [BEGIN, "## Suite: spore side by side with the isolation tools (issue 9)", "",
         "Measured by `tools/bench/suite.py` in one run on %s; %s UTC; the run took %.0f s:" % (
             machine(), res.get("started_utc") or datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"),
             res["wall_s"]), "",
         "    " + cmd, "",
         "One command from a clean checkout, as root: `tools/bench/run-all.sh` (with the same "
         "options) installs what it needs (tools/install-deps.sh, then wrk, bubblewrap, crun, "
         "nginx-light and firejail from apt), builds `build/bench` (meson, ninja), runs these "
         "scenarios there and rewrites this section; `tools/bench/suite.py --quick` is a smoke run "
         "(every scenario, tiny counts, writes nothing, exits non-zero on any failure).", "",
         "The VM may be shared with other work (load average %.2f at the "
         "start, %.2f at the end, %.2f-%.2f at the scenarios' ends; a build just before the run, "
         "and the burst, creation and "
         "density scenarios raise it themselves, starting hundreds of processes at once), so "
         "absolute figures move from run to run; the rounds "
         "interleave the subjects and every ratio below is taken between figures of this run. "
         "Figures are medians over all samples of the rounds, with p99 and the spread (the lowest "
         "and the highest median of one round). spore: a real spored on loopback, sandbox on "
         "(namespaces, cgroup with limits, pivot_root, unprivileged uid, no capabilities, "
         "seccomp), functions deployed with memory_mb 128 and cpu_millis 1000 (a full core, "
         "what memory_mb 1769 gives by default; crun gets the same limits), except burst, creation "
         "and density: memory_mb 64 (the least spore takes) with cpu_millis 1000, so that hundreds of "
         "instances fit spored's memory budget." % (res["load"][0][0], res["load"][1][0],
                                             min(x[1] for x in res["loads"]),
                                             max(x[1] for x in res["loads"])), "",
         "### Cold start: one invocation of `hello` with nothing running", "",
         "spore: a new version is deployed, %.1f s later one invocation is timed by the client "
         "over HTTP (keep-alive connection open; every answer checked to be a cold start). Peers: "
         "one isolated invocation of the same Python handler, the way a user would do it without "
         "spore, started and reaped by `bench-spawn` (C): `/usr/bin/python3 peer.py EVENT` bare; "
         "`bwrap --unshare-all --cap-drop ALL` with /usr read-only and the code bound; `crun run` "
         "of an OCI bundle (pid, mount, ipc, uts, network, cgroup namespaces, uid 65534, no "
         "capabilities, the same memory/CPU/pids limits; inside `unshare --mount --cgroup` with "
         "only the v1 controllers mounted, as crun 1.8 refuses this hybrid host)%s; a fork of an "
         "initialised python3 (handler imported, `gc.freeze()`; the child parses the event, calls "
         "the handler, writes the answer to a pipe); C's `fork()` + `_exit(0)` + `waitpid` "
         "from a small process." % (
             args.cold_sleep, "; `firejail --noprofile --net=none --caps.drop=all --nonewprivs` (its own init "
             "sleeps a fixed 20 ms)" if firejail else ""), "",
         "| subject | p50 | p99 | spread | min | n | p50 / spore python3 |", "|---|---|---|---|---|---|---|"]
    for k, s in cold.items():
        L.append("| %s | %s | %s | %s | %s | %d | %.1fx |" % (k, ms(s["p50"]), ms(s["p99"]),
                                                               spread_ms(s), ms(s["min"]), s["n"],
                                                               s["p50"] / py))
    L += ["", "min: the least disturbed sample, closest to what the path costs on an idle host."]

    L += ["", "### Warm invocations (one keep-alive connection, sequential; %d per round after 200 "
          "warm-up; median over %d rounds of each round's p50 and p99)" % (args.warm, args.rounds), "",
          "| runtime | no-op p50 | no-op p99 | 1 KB echo p50 | 1 KB echo p99 |", "|---|---|---|---|---|"]
    for r, w in res["warm"].items():
        L.append("| spore %s | %s | %s | %s | %s |" % (
            r, fus(w["noop"]["p50"]["p50"]), fus(w["noop"]["p99"]["p50"]),
            fus(w["echo"]["p50"]["p50"]), fus(w["echo"]["p99"]["p50"])))

    conns = sorted(next(iter(res["wrk"].values())).keys())
    L += ["", "### Throughput: `wrk -tmin(2,N) -cN -d%ds --latency -s tools/bench/post.lua` on the "
          "no-op (median of %d rounds; wrk's p99 in brackets)" % (args.wrk_seconds, args.wrk_rounds),
          "", "nginx (Debian's nginx-light, `worker_processes auto`, `access_log off`, "
          "`return 200 'null'`) takes the same wrk command. wrk shares the 2 cores with the server.", "",
          "| server | " + " | ".join("%d conn%s" % (c, "s" if c > 1 else "") for c in conns) + " |",
          "|---|" + "---|" * len(conns)]
    for t, v in res["wrk"].items():
        cells = []
        for c in conns:
            d = v[c]
            cell = "%.0f/s (%s)" % (d["rps"]["p50"], fus(d["p99"]["p50"]) if d["p99"] else "?")
            if d["non2xx"]:
                cell += " %d non-2xx" % d["non2xx"]
            cells.append(cell)
        L.append("| %s | %s |" % (t, " | ".join(cells)))
    ng = max(res["wrk"]["nginx return 200"][c]["rps"]["p50"] for c in conns)
    L += ["", "Best throughput / nginx's best: " + ", ".join(
        "%s %.2f" % (t, max(v[c]["rps"]["p50"] for c in conns) / ng)
        for t, v in res["wrk"].items() if t != "nginx return 200") + "."]

    L += ["", "### Latency at half load (open loop: `bench-load`, 64 connections, %d s x %d rounds; "
          "latency from each request's scheduled send time)" % (args.half_seconds, args.wrk_rounds), "",
          "| server | rate | p50 | p99 | p99.9 | late sends |", "|---|---|---|---|---|---|"]
    for t, v in res["half"].items():
        L.append("| %s | %.0f/s | %s | %s | %s | %d |" % (
            t, v["rate"], fus(v["p50"]["p50"]), fus(v["p99"]["p50"]), fus(v["p999"]["p50"]), v["late"]))
    L += ["", "Rate: half of the server's best wrk figure above; nginx at spore native's rate."]

    L += ["", "### Burst: %d clients at once, nothing running (%d rounds)" % (args.burst, args.burst_rounds), "",
          "spore: `bench-burst` opens %d connections at once, each posts one `hello` to a function "
          "just deployed (max_instances %d); latency from the start of the burst. Peers: "
          "`bench-spawn -b` starts %d isolated invocations at once." % (args.burst, args.burst, args.burst), "",
          "| subject | all answered | p50 | p99 | spread (all answered) | vs spore python3 |",
          "|---|---|---|---|---|---|"]
    bpy = res["burst"]["spore python3"]["wall"]["p50"]
    for k, v in res["burst"].items():
        extra = ""
        if v.get("instances"):
            extra = " (%s instances, %s cold answers)" % (
                "/".join(map(str, v["instances"])), "/".join(map(str, v["cold"])))
        L.append("| %s%s | %s | %s | %s | %s | %.1fx |" % (
            k, extra, ms(v["wall"]["p50"]), ms(v["lat"]["p50"]), ms(v["lat"]["p99"]),
            spread_ms(v["wall"]), v["wall"]["p50"] / bpy))

    L += ["", "### Creation rate: `PATCH min_instances` 0 -> %d, until all are idle (%d rounds)" % (
        args.create, args.burst_rounds), "", "| runtime | time to %d idle | instances/s | spread |" % args.create,
          "|---|---|---|---|"]
    for r, v in res["create"].items():
        L.append("| spore %s | %.2f s | %.0f/s | %.2f-%.2f s |" % (
            r, v["seconds"]["p50"], v["per_s"], v["seconds"]["spread"][0], v["seconds"]["spread"][1]))
    for k in ("fork of initialised python3", "C fork() + _exit"):
        b = res["burst"][k]["wall"]["p50"]
        L.append("| peer: %s (burst of %d) | %.2f s | %.0f/s | |" % (k, args.burst, b / 1e6, args.burst / (b / 1e6)))

    L += ["", "### Density", "", "PSS from `/proc/PID/smaps_rollup` of %d idle instances (each "
          "answered once); GiB = 1024 MiB." % args.density_pss, "",
          "| subject | PSS per idle instance | RSS | instances per GiB | zygote PSS |", "|---|---|---|---|---|"]
    for k, v in res["pss"].items():
        L.append("| %s | %.1f MiB | %.1f MiB | %.0f | %s |" % (
            k, v["pss_kib"] / 1024, v["rss_kib"] / 1024, 1024 * 1024 / v["pss_kib"],
            "%.1f MiB" % (v["zygote_pss_kib"] / 1024) if v.get("zygote_pss_kib") else "-"))
    mx = res["max"]
    L += ["", "**Concurrent python3 instances, toward %d** (a spored of its own, "
          "`max_instances_total = %d`, `instance_memory_pct = %d`; a python3 no-op with memory_mb 64, "
          "the least spore takes, and `PATCH min_instances %d`): **%d** idle instances after %.1f s; "
          "host memory (MemAvailable) per instance %.1f MiB, PSS %.1f MiB; /healthz with them all "
          "idle: p50 %s, p99 %s, max %s over 500 sequential requests; %d clients at once then got "
          "%d answers of 200 in %s (p99 %s), and /healthz during that burst (%s sequential requests "
          "on a connection of its own, from just before the burst until its last answer): "
          "p50 %s, p99 %s, max %s. %s" % (
              mx["aim"], mx["aim"] * 2, mx["instance_memory_pct"], min(1000, mx["aim"]), mx["reached"],
              mx["seconds"], mx["mem_per_instance_kib"] / 1024, (mx["pss_kib"] or 0) / 1024,
              fus(mx["healthz"]["p50_us"]), fus(mx["healthz"]["p99_us"]), fus(mx["healthz"]["max_us"]),
              mx["reached"], mx["all_answer"]["ok"], ms(mx["all_answer"]["wall_us"]),
              ms(mx["all_answer"]["p99_us"]), mx["healthz_busy"].get("n", 200),
              fus(mx["healthz_busy"]["p50_us"]),
              fus(mx["healthz_busy"]["p99_us"]), fus(mx["healthz_busy"]["max_us"]),
              ("%s, spored said: `%s`%s." % (
                  "Where it stopped" if mx["reached"] < mx["aim"]
                  else "Along the way (instances it could not start at once, started on a later tick)",
                  "`; `".join(mx["reasons"]),
                  " (the reserved memory_mb of all instances, %d MB, reached the budget: "
                  "instance_memory_pct of the host's memory)" % mx["reserved_mb"]
                  if mx.get("reserved_mb") and any("users" in x.lower() for x in mx["reasons"]) else ""))
              if mx["reasons"] else "")]

    # Targets.
    def row(name, measured, ok):
        return "| %s | %s | %s |" % (name, measured, "met" if ok else "**missed**")
    bw, cr = cold["bwrap + python3"]["p50"], cold["crun + python3"]["p50"]
    nat, floor = cold["spore native"]["p50"], cold["C fork() + _exit"]["p50"]
    wn = max(res["wrk"]["spore native"][c]["rps"]["p50"] for c in conns)
    hn = res["half"]["spore native"]
    L += ["", "### Targets (issue 9)", "", "| target | measured | |", "|---|---|---|",
          row("python3 cold p50 <= 3 ms", ms(py), py <= 3000),
          row("python3 cold >= 10x faster than bwrap + python3", "%.1fx (%s)" % (bw / py, ms(bw)), bw / py >= 10),
          row("python3 cold >= 10x faster than crun + python3", "%.1fx (%s)" % (cr / py, ms(cr)), cr / py >= 10),
          row("native cold p50 <= 2x C fork floor", "%.1fx (%s vs %s)" % (nat / floor, ms(nat), ms(floor)),
              nat <= 2 * floor),
          row("native no-op throughput >= 50% of nginx", "%.0f%% (%.0f/s vs %.0f/s)" % (100 * wn / ng, wn, ng),
              wn >= ng / 2),
          row("native warm p99 < 1 ms at half load", "%s at %.0f/s" % (fus(hn["p99"]["p50"]), hn["rate"]),
              hn["p99"]["p50"] < 1000),
          row("1,000 concurrent python3 instances, /healthz < 10 ms",
              "%d instances, /healthz p99 %s idle, %s with all busy" % (
                  mx["reached"], fus(mx["healthz"]["p99_us"]), fus(mx["healthz_busy"]["p99_us"])),
              mx["reached"] >= 1000 and max(mx["healthz"]["p99_us"], mx["healthz_busy"]["p99_us"]) < 10000)]
    L += ["", "<details><summary>Raw results (JSON, one line per scenario)</summary>", "", "```",
          raw_json(res), "```", "", "</details>", END]
    return L


def raw_json(res):
    """res as a JSON object with one line per scenario."""
    return "{\n" + ",\n".join("%s: %s" % (json.dumps(k), json.dumps(v, default=str, separators=(",", ":")))
                              for k, v in res.items()) + "\n}"


def write_section(lines):
    path = os.path.join(ROOT, "docs/BENCHMARKS.md")
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    block = "\n".join(lines)
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
