#!/usr/bin/python3
"""spore scaling and metering benchmark, against a real spored on loopback (run as root: the
sandbox and the BPF meter need it). Writes its section of docs/BENCHMARKS.md (unless
--no-write).

    /usr/bin/python3 tools/bench/scaling.py --build build/gcc

Scenarios:
  * 0 -> N warm: N clients at once on a function with no instance (max_instances N); the time
    until N instances are ready, and until all N clients are answered.
  * steady vs double load: an open-loop load (requests sent on a fixed schedule, latency taken
    from the scheduled send time, so queueing is not hidden) at R/s, then at 2R/s, on a function
    whose handler waits 50 ms (I/O-like: each instance serves 20/s). p50/p95/p99 of each phase;
    the double phase includes the scale-out it causes.
  * metering overhead: warm latency (bench-client) and throughput (wrk) of a no-op, with the
    BPF programs attached (metering_bpf = yes) and detached (no), alternating A B A B; medians.
"""
import argparse
import base64
import datetime
import http.client
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (the Spored wrapper and helpers of run.py)

ROOT = bench.ROOT
BEGIN, END = "<!-- scaling:begin -->", "<!-- scaling:end -->"

WAIT = """
import time
def main(event, context):
    time.sleep(event.get("s", 0.05))
    return {"ok": True}
"""


def code_of(source):
    import io
    import tarfile
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w:gz") as tar:
        data = source.encode()
        ti = tarfile.TarInfo("fn.py")
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
    return bio.getvalue()


class Sp(bench.Spored):
    def __init__(self, build, extra=""):
        super().__init__(build, True, extra)

    def deploy_fn(self, name, source, **fields):
        body = {"runtime": "python3", "handler": "fn.main", "timeout_ms": 30000,
                "code": base64.b64encode(code_of(source)).decode()}
        body.update(fields)
        st, data, _ = self.api("PUT", "/v1/functions/" + name, json.dumps(body))
        if st != 201:
            raise RuntimeError("deploy %s: %d %s" % (name, st, data))

    def instances(self, name):
        st, data, _ = self.api("GET", "/v1/functions/" + name)
        return json.loads(data)["instances"]


def invoke(port, name, event, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", "/v1/functions/%s/invoke" % name, body=json.dumps(event))
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def zero_to_n(sd, n):
    name = "burst%d" % n
    sd.deploy_fn(name, WAIT, max_instances=n, idle_ttl_s=600)
    statuses = []
    lock = threading.Lock()
    t0 = time.perf_counter()

    def one():
        s = invoke(sd.port, name, {"s": 2.0})
        with lock:
            statuses.append(s)
    ts = [threading.Thread(target=one) for _ in range(n)]
    for t in ts:
        t.start()
    ready_at = None
    while ready_at is None and time.perf_counter() - t0 < 60:
        ready = [i for i in sd.instances(name) if i["state"] in ("busy", "idle")]
        if len(ready) >= n:
            ready_at = time.perf_counter() - t0
        else:
            time.sleep(0.01)
    for t in ts:
        t.join(120)
    done = time.perf_counter() - t0
    return {"n": n, "ready_s": ready_at, "all_answered_s": done,
            "ok": statuses.count(200), "statuses": sorted(set(statuses))}


def open_loop(port, name, rate, seconds, workers=128):
    """Sends rate requests/s for seconds on a fixed schedule; latency from the scheduled time."""
    total = int(rate * seconds)
    start = time.perf_counter() + 0.1
    lat, errors = [], 0
    lock = threading.Lock()
    nxt = [0]

    def worker():
        nonlocal errors
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= total:
                break
            due = start + i / rate
            d = due - time.perf_counter()
            if d > 0:
                time.sleep(d)
            try:
                c.request("POST", "/v1/functions/%s/invoke" % name, body='{"s": 0.05}')
                r = c.getresponse()
                r.read()
                ok = r.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            with lock:
                if ok:
                    lat.append((time.perf_counter() - due) * 1e3)
                else:
                    errors += 1
        c.close()
    ts = [threading.Thread(target=worker) for _ in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p / 100))] if lat else float("nan")
    return {"rate": rate, "seconds": seconds, "n": len(lat), "errors": errors,
            "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99)}


def load_phases(sd, rate, seconds):
    name = "load"
    sd.deploy_fn(name, WAIT, max_instances=50, idle_ttl_s=600)
    open_loop(sd.port, name, rate, 3)  # warm-up: reach the steady state's instances
    steady = open_loop(sd.port, name, rate, seconds)
    steady["instances"] = len(sd.instances(name))
    double = open_loop(sd.port, name, 2 * rate, seconds)
    double["instances"] = len(sd.instances(name))
    return steady, double


def meter_overhead(build, rounds, warm_n, wrk_s):
    so = os.path.join(build, "examples/native/hello/hello.so")
    code = bench.pack([("hello.so", so)])
    res = {"yes": {"p50": [], "p99": [], "rps": []}, "no": {"p50": [], "p99": [], "rps": []}}
    for _ in range(rounds):
        for mode in ("yes", "no"):
            sd = Sp(build, "metering_bpf = %s\n" % mode)
            try:
                sd.deploy("noop", "native", "noop", code)
                w = bench.warm(build, sd, "noop", warm_n)
                k = bench.wrk(sd, "noop", 16, wrk_s)
                res[mode]["p50"].append(w["p50_us"])
                res[mode]["p99"].append(w["p99_us"])
                res[mode]["rps"].append(k["rps"] if k else 0.0)
            finally:
                sd.stop()
    return {m: {k: statistics.median(v) for k, v in d.items()} for m, d in res.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build/gcc"))
    ap.add_argument("--instances", type=int, default=50)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    build = os.path.abspath(args.build)

    sd = Sp(build)
    try:
        z = zero_to_n(sd, args.instances)
        print("0 -> %d:" % args.instances, json.dumps(z), flush=True)
        steady, double = load_phases(sd, args.rate, args.seconds)
        print("steady:", json.dumps(steady), flush=True)
        print("double:", json.dumps(double), flush=True)
    finally:
        sd.stop()
    mo = meter_overhead(build, args.rounds, 3000, 5)
    print("metering:", json.dumps(mo), flush=True)

    if args.no_write:
        return
    cmd = ("/usr/bin/python3 tools/bench/scaling.py --build %s --instances %d --rate %g "
           "--seconds %d --rounds %d" % (os.path.relpath(build, ROOT), args.instances, args.rate,
                                         args.seconds, args.rounds))
    ratio = double["p95_ms"] / steady["p95_ms"] if steady["p95_ms"] else float("nan")
    y, n = mo["yes"], mo["no"]
    sec = [BEGIN, "## Scaling and metering", "",
           "Measured by `tools/bench/scaling.py` (sandbox on, default configuration) on %s, %d "
           "cores, kernel %s, %s UTC:" % (platform.machine(), os.cpu_count(), platform.release(),
                                          datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M")),
           "", "    " + cmd, "",
           "**0 to %d warm instances**: %d clients at once on a python3 function with no instance "
           "(max_instances %d, each call waits 2 s): all %d instances ready after **%.2f s**, all "
           "clients answered (%d x 200) after %.2f s." % (
               z["n"], z["n"], z["n"], z["n"], z["ready_s"] or float("nan"), z["ok"],
               z["all_answered_s"]), "",
           "**Steady and double load** (open loop: requests on a fixed schedule, latency from the "
           "scheduled send time; the handler waits 50 ms, so an instance serves 20/s):", "",
           "| phase | rate | requests | errors | p50 | p95 | p99 | instances after |",
           "|---|---|---|---|---|---|---|---|"]
    for label, ph in (("steady", steady), ("double", double)):
        sec.append("| %s | %g/s | %d | %d | %.1f ms | %.1f ms | %.1f ms | %d |" % (
            label, ph["rate"], ph["n"], ph["errors"], ph["p50_ms"], ph["p95_ms"], ph["p99_ms"],
            ph["instances"]))
    sec += ["", "p95 at double load / p95 at steady load: **%.2f** (target: at most 1.5). The "
            "double phase includes the scale-out it causes." % ratio, "",
            "**Metering overhead** (native no-op, warm; medians of %d alternating runs each; "
            "BPF attached = `metering_bpf = yes`, the default):" % args.rounds, "",
            "| metering | warm p50 | warm p99 | wrk 16 conns |", "|---|---|---|---|",
            "| BPF attached | %.0f µs | %.0f µs | %.0f/s |" % (y["p50"], y["p99"], y["rps"]),
            "| BPF detached | %.0f µs | %.0f µs | %.0f/s |" % (n["p50"], n["p99"], n["rps"]),
            "", "Attached / detached: warm p50 x%.2f, throughput x%.2f." % (
                y["p50"] / n["p50"] if n["p50"] else float("nan"),
                y["rps"] / n["rps"] if n["rps"] else float("nan")), END]
    path = os.path.join(ROOT, "docs/BENCHMARKS.md")
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    block = "\n".join(sec)
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)
    print("wrote the scaling section of docs/BENCHMARKS.md")


if __name__ == "__main__":
    main()
