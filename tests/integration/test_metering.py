# SPDX-License-Identifier: MIT
"""Metering: the per-function figures in the pinned BPF map (read with bpftool, as an operator
would), GET /metrics and GET /v1/functions/NAME/stats agree with what was done to the function;
BPF's CPU time agrees with the cgroup's own accounting; spored removes its pins when it stops."""

import json
import os
import re
import shutil
import subprocess
import threading

import harness
from harness import Spored, SporeTestCase, py_package

BPFTOOL = shutil.which("bpftool") or "/usr/sbin/bpftool"

ECHO = """
def main(event, context):
    return event
"""

# Burns CPU for event["s"] seconds of its own CPU time; reports what it used.
BURN = """
import time
def main(event, context):
    t = time.process_time()
    while time.process_time() - t < event["s"]:
        pass
    return {"cpu": time.process_time() - t}
"""

FAIL = """
def main(event, context):
    raise ValueError("no")
"""


def own_cgroup(controller):
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return path
    return None


def cpuacct_dir():
    for d in ("/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpuacct"):
        if os.path.isdir(d):
            return d
    return None


class TestMetering(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = s = Spored.for_class(cls)
        cls.pin_dir = s.config["bpf_pin_dir"]
        s.deploy_ok("count", py_package(ECHO))
        s.deploy_ok("oops", py_package(FAIL))
        # a full core at 1,769 MB, so that the burn is not throttled by its quota
        s.deploy_ok("burn", py_package(BURN), memory_mb=1769)

    def test_listed_from_deploy(self):
        """A deployed function is in the map (all zero) before its first call."""
        self.spored.deploy_ok("fresh", py_package(ECHO))
        v = self.bpf_stats("fresh")
        self.assertEqual(v["requests"], 0, v)

    def bpf_stats(self, name):
        out = subprocess.run([BPFTOOL, "-j", "map", "dump", "pinned",
                              os.path.join(self.pin_dir, "fn_stats")],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        for e in json.loads(out.stdout):
            v = e.get("formatted", e).get("value", e.get("value"))
            if isinstance(v, dict) and v.get("name") == name:
                return v
        self.fail("no entry named %r in the pinned fn_stats map" % name)

    def prom(self):
        r = self.assertStatus(self.spored.tcp("GET", "/metrics"), 200)
        self.assertTrue(r.header("content-type", "").startswith("text/plain; version=0.0.4"))
        return r.body.decode()

    @staticmethod
    def total(text, metric, function):
        """The sum of every series of metric for function, whatever its other labels."""
        n = 0.0
        for line in text.splitlines():
            m = re.match(r'^(\w+)\{([^}]*)\} (\S+)$', line)
            if m and m.group(1) == metric and ('function="%s"' % function) in m.group(2).split(","):
                n += float(m.group(3))
        return n

    @staticmethod
    def sample(text, metric, **labels):
        want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        for line in text.splitlines():
            m = re.match(r'^(\w+)\{([^}]*)\} (\S+)$', line)
            if m and m.group(1) == metric and \
                    ",".join(sorted(m.group(2).split(","))) == want:
                return float(m.group(3))
        return None

    def test_requests_counted_exactly(self):
        """After exactly N invocations bpftool shows requests N for the function by name, and
        /metrics and the stats route agree."""
        s = self.spored
        n = 25
        for i in range(n):
            s.invoke_ok("count", {"i": i})
        v = self.bpf_stats("count")
        self.assertEqual(v["requests"], n, v)
        self.assertEqual(v["cold_starts"], 1, v)
        self.assertEqual(sum(v["lat_us"]), n, v)
        self.assertEqual(v["instances"], 1, v)
        self.assertEqual(v["inflight"], 0, v)
        prom = self.prom()
        self.assertEqual(self.total(prom, "spore_function_requests_total", "count"), n)
        self.assertEqual(self.sample(prom, "spore_function_requests_total", function="count",
                                     version="1", status="200"), n)
        st = self.assertStatus(s.api("GET", "/v1/functions/count/stats"), 200).json()
        self.assertEqual(st["requests"], n, st)
        self.assertEqual(st["latency_us"]["count"], n, st)

    def test_spored_own_figures(self):
        prom = self.prom()
        for name in ("spore_instances", "spore_instances_memory_bytes", "spore_async_pending",
                     "spore_zygotes_running", "spore_zygote_restarts_total"):
            self.assertRegex(prom, r"(?m)^%s \d+$" % name)
        self.assertRegex(prom, r"(?m)^spore_zygotes_running [1-9]$")

    def test_errors_by_kind(self):
        s = self.spored
        for _ in range(3):
            self.assertStatus(s.invoke("oops", {}), 500, "function_error")
        v = self.bpf_stats("oops")
        self.assertEqual(v["requests"], 3, v)
        self.assertEqual(v["errors"]["function_error"], 3, v)
        self.assertEqual(self.sample(self.prom(), "spore_function_errors_total", function="oops",
                                     kind="function_error"), 3)

    def test_cpu_matches_cgroup(self):
        """A function that burns a known amount of CPU: the BPF figure is within 10% of the
        cgroup's own accounting (cpuacct.usage of the instance's cgroup, read while it lives)."""
        s = self.spored
        s.invoke_ok("burn", {"s": 0.01})
        before = self.bpf_stats("burn")["cpu_ns"]
        inst = s.info("burn")["instances"][0]
        acct = cpuacct_dir()
        path = None
        if acct:
            path = os.path.join(acct, own_cgroup("cpuacct").lstrip("/"),
                                "spore-%08x" % harness_fnv(s.state_dir), "fn-burn",
                                inst["id"], "cpuacct.usage")
        c0 = read_int(path) if path else None
        r = s.invoke_ok("burn", {"s": 0.6}).json()
        self.assertGreaterEqual(r["cpu"], 0.6)
        after = self.bpf_stats("burn")["cpu_ns"]
        bpf = after - before
        if path:
            cg = read_int(path) - c0
            print("\nmetering: burn of %.3f s: BPF %.3f s, cgroup %.3f s (%.1f%%)"
                  % (r["cpu"], bpf / 1e9, cg / 1e9, 100.0 * (bpf - cg) / cg))
            self.assertLess(abs(bpf - cg), 0.10 * cg, "BPF %d ns vs cgroup %d ns" % (bpf, cg))
        else:
            self.assertLess(abs(bpf / 1e9 - r["cpu"]), 0.10 * r["cpu"])
        cpu_s = self.sample(self.prom(), "spore_function_cpu_seconds_total", function="burn")
        self.assertGreaterEqual(cpu_s, after / 1e9 * 0.99)

    def test_concurrency_gauges(self):
        """While two invocations run, in-flight is 2 in the map."""
        s = self.spored
        s.deploy_ok("slow", py_package("""
import time
def main(event, context):
    time.sleep(event["s"])
    return {}
"""))
        ts = [threading.Thread(target=s.invoke_ok, args=("slow", {"s": 3.0})) for _ in range(2)]
        for t in ts:
            t.start()
        seen = harness.wait_for(lambda: self.bpf_stats("slow")["inflight"] == 2, 10, 0.05)
        for t in ts:
            t.join(30)
        self.assertTrue(seen, self.bpf_stats("slow"))
        v = self.bpf_stats("slow")
        self.assertEqual(v["inflight"], 0, v)
        self.assertEqual(v["requests"], 2, v)
        self.assertEqual(v["instances"], 2, v)

    def test_zz_pins_removed_on_stop(self):
        s = self.spored
        self.assertTrue(os.path.exists(os.path.join(self.pin_dir, "fn_stats")))
        s.stop()
        self.assertFalse(os.path.exists(self.pin_dir), os.listdir(self.pin_dir)
                         if os.path.isdir(self.pin_dir) else "")
        s.start()
        self.assertTrue(os.path.exists(os.path.join(self.pin_dir, "fn_stats")))


def read_int(path):
    with open(path) as f:
        return int(f.read())


def harness_fnv(s):
    """spored's cgroup subtree name: spore-<FNV-1a 32 of the state dir>."""
    h = 0x811c9dc5
    for b in s.encode():
        h = ((h ^ b) * 0x01000193) & 0xffffffff
    return h


if __name__ == "__main__":
    harness.main()
