# SPDX-License-Identifier: MIT
"""Autoscaling: per-function scaling settings at deploy and by PATCH (no new version); reserved
instances (min_instances) started at deploy and again right after a restart, never reaped; from
zero to K instances under K concurrent clients, back to min_instances after the idle TTL; the
host's capacity answered with 503 capacity."""

import os
import threading
import time
import unittest

import harness
from harness import Spored, SporeTestCase, cgroup_dirs, fnv1a32, py_package

SLEEPER = """
import time
def main(event, context):
    time.sleep(event.get("seconds", 0))
    return {"i": event.get("i")}
"""


def running(s, name):
    return [i for i in s.info(name)["instances"] if i["state"] in ("idle", "busy", "starting")]


class TestScaling(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = Spored.for_class(cls, {"max_instances": 10, "idle_ttl_s": 1})

    def test_settings_deploy_patch_and_errors(self):
        s = self.spored
        s.deploy_ok("conf", py_package(SLEEPER), max_instances=4, queue_max=7)
        sc = s.info("conf")["scaling"]
        self.assertEqual(sc["max_instances"], 4)
        self.assertEqual(sc["queue_max"], 7)
        self.assertEqual(sc["min_instances"], 0)
        self.assertEqual(sc["idle_ttl_s"], 1)  # spored's default
        r = self.assertStatus(s.api("PATCH", "/v1/functions/conf",
                                    {"target_concurrency": 0.5, "queue_max": None}), 200)
        self.assertEqual(r.json()["target_concurrency"], 0.5)
        self.assertEqual(r.json()["queue_max"], 100)  # back to the default
        info = s.info("conf")
        self.assertEqual([v["version"] for v in info["versions"]], [1], "PATCH made a version")
        # a redeploy without scaling keys keeps them
        s.deploy_ok("conf", py_package(SLEEPER))
        self.assertEqual(s.info("conf")["scaling"]["max_instances"], 4)
        for body, field in (({"max_instances": 0}, "max_instances"),
                            ({"min_instances": 5}, "min_instances"),
                            ({"target_concurrency": 2}, "target_concurrency"),
                            ({"memory_mb": 256}, "memory_mb"),
                            ({"queue_timeout_ms": "x"}, "queue_timeout_ms")):
            r = s.api("PATCH", "/v1/functions/conf", body)
            self.assertError(r, 400, "bad_request")
            self.assertIn(field, r.json()["message"])
        self.assertError(s.api("PATCH", "/v1/functions/nosuch", {"max_instances": 1}), 404,
                         "not_found")
        self.assertError(s.deploy("bad", py_package(SLEEPER), min_instances=11), 400,
                         "bad_request")

    def test_zero_to_k_and_back(self):
        """K concurrent clients on a function at zero: K instances (at most max), all answered;
        after the TTL it is back at zero."""
        s = self.spored
        k = 5
        s.deploy_ok("burst", py_package(SLEEPER), max_instances=k)
        self.assertEqual(running(s, "burst"), [])
        out = []
        lock = threading.Lock()

        def one(i):
            r = s.invoke("burst", {"i": i, "seconds": 1.0})
            with lock:
                out.append(r.status)
        ts = [threading.Thread(target=one, args=(i,)) for i in range(k)]
        t0 = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        took = time.monotonic() - t0
        self.assertEqual(sorted(out), [200] * k)
        self.assertEqual(len(running(s, "burst")), k)
        print("\nscaling: 0 -> %d instances, all %d answered in %.2f s" % (k, k, took))
        self.assertLess(took, 4.0, "the clients were served one after another")
        gone = harness.wait_for(lambda: not running(s, "burst"), 10, 0.2)
        self.assertTrue(gone, "not back to zero after idle_ttl_s: %r" % running(s, "burst"))

    def test_reserved_instances(self):
        s = self.spored
        s.deploy_ok("warm", py_package(SLEEPER), min_instances=2)
        self.assertTrue(harness.wait_for(lambda: len(running(s, "warm")) == 2, 10, 0.1),
                        running(s, "warm"))
        time.sleep(2.5)  # past idle_ttl_s = 1: reserved ones stay
        self.assertEqual(len(running(s, "warm")), 2)
        r = s.invoke_ok("warm", {"i": 1})
        self.assertEqual(r.header("X-Spore-Cold-Start"), "false")
        # more on demand, back to the reserved two after the TTL
        rs = []
        ts = [threading.Thread(target=lambda i=i: rs.append(
            s.invoke("warm", {"i": i, "seconds": 0.8}).status)) for i in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(sorted(rs), [200] * 4)
        self.assertGreaterEqual(len(running(s, "warm")), 4)
        self.assertTrue(harness.wait_for(lambda: len(running(s, "warm")) == 2, 15, 0.2),
                        running(s, "warm"))
        # PATCH up and down
        self.assertStatus(s.api("PATCH", "/v1/functions/warm", {"min_instances": 3}), 200)
        self.assertTrue(harness.wait_for(lambda: len(running(s, "warm")) == 3, 10, 0.1))
        # right after a restart the reserved instances are there
        s.stop()
        t0 = time.monotonic()
        s.start()
        idle = lambda: [i for i in s.info("warm")["instances"] if i["state"] == "idle"]
        self.assertTrue(harness.wait_for(lambda: len(idle()) == 3, 10, 0.02),
                        running(s, "warm"))
        print("\nscaling: 3 reserved instances idle %.2f s after the restart began"
              % (time.monotonic() - t0))
        self.assertEqual(s.invoke_ok("warm", {}).header("X-Spore-Cold-Start"), "false")
        self.assertStatus(s.api("PATCH", "/v1/functions/warm", {"min_instances": 0}), 200)
        self.assertTrue(harness.wait_for(lambda: not running(s, "warm"), 15, 0.2),
                        running(s, "warm"))


BURN = """
import time
def main(event, context):
    t = time.process_time()
    while time.process_time() - t < event["cpu"]:
        pass
    return {}
"""


class TestCpuScaleOut(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = Spored.for_class(cls)

    def test_cpu_bound_scales_out_before_the_queue_grows(self):
        """One client at a time, so the queue never grows: an instance that burns its whole
        CPU quota (128 MB: 7% of a core) makes the autoscaler start a second one."""
        s = self.spored
        s.deploy_ok("hot", py_package(BURN), memory_mb=128, timeout_ms=60000)
        self.assertEqual(s.info("hot")["scaling"]["max_instances"], 10)
        s.invoke_ok("hot", {"cpu": 0.001})
        self.assertEqual(len(running(s, "hot")), 1)
        t0 = time.monotonic()
        s.invoke_ok("hot", {"cpu": 0.25}, timeout=60)  # ~3.5 s of wall time at 7%
        took = time.monotonic() - t0
        n = len(running(s, "hot"))
        print("\nscaling: a CPU-bound call of %.1f s left %d instances (one client)" % (took, n))
        self.assertGreaterEqual(n, 2, "no scale-out for a function at its CPU quota")
        stats = s.api("GET", "/v1/functions/hot/stats").json()
        self.assertEqual(stats["throttled"], 0)


class TestCapacity(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = Spored.for_class(cls, {"max_instances_total": 2})

    def test_capacity_503(self):
        s = self.spored
        s.deploy_ok("a", py_package(SLEEPER), min_instances=2)
        self.assertTrue(harness.wait_for(lambda: len(running(s, "a")) == 2, 10, 0.1))
        s.deploy_ok("b", py_package(SLEEPER))
        r = s.invoke("b", {})
        self.assertError(r, 503, "capacity")
        self.assertIn("capacity", r.json()["message"])
        # "a" still serves, and "b" once "a" gives its reserved instances back
        s.invoke_ok("a", {})
        self.assertStatus(s.api("PATCH", "/v1/functions/a", {"min_instances": 0}), 200)
        self.assertTrue(harness.wait_for(lambda: s.invoke("b", {}).status == 200, 15, 0.3))


class TestCgroupAhead(SporeTestCase):
    """Hybrid host (v1 controllers): a deploy makes the cgroup of the function's next instance
    ahead of demand, with the live version's limits; the cold start uses it (the instance's id
    is its name), the next one is made on a later tick, a deploy with other limits replaces
    it, and DELETE removes it."""

    @classmethod
    def setUpClass(cls):
        cls.spored = Spored.for_class(cls)

    def fn_dir(self, name):
        mem = cgroup_dirs().get("memory")
        if not mem:
            raise unittest.SkipTest("no cgroup v1 memory hierarchy: instances' cgroups come "
                                    "with them (cgroup v2), none is made ahead")
        return os.path.join(mem, "spore-%08x" % fnv1a32(self.spored.state_dir), "fn-" + name)

    def children(self, name):
        d = self.fn_dir(name)
        out = {}
        for c in (os.listdir(d) if os.path.isdir(d) else []):
            p = os.path.join(d, c)
            if not c.startswith("i-") or not os.path.isdir(p):
                continue
            with open(os.path.join(p, "memory.limit_in_bytes")) as f:
                limit = int(f.read())
            with open(os.path.join(p, "cgroup.procs")) as f:
                procs = [int(x) for x in f.read().split()]
            out[c] = (limit, procs)
        return out

    def test_cgroup_made_ahead_of_the_cold_start(self):
        s = self.spored
        s.deploy_ok("ahead", py_package(SLEEPER), memory_mb=128)
        kids = self.children("ahead")
        self.assertEqual(len(kids), 1, kids)
        (pre, (limit, procs)), = kids.items()
        self.assertEqual((limit, procs), (128 << 20, []))
        r = s.invoke_ok("ahead", {})
        self.assertEqual(r.header("X-Spore-Cold-Start"), "true")
        inst = s.info("ahead")["instances"]
        self.assertEqual([i["id"] for i in inst], [pre], "the cold start made its own cgroup")
        self.assertEqual(self.children("ahead")[pre][1], [inst[0]["pid"]])
        # the next one, on a later tick
        self.assertTrue(harness.wait_for(lambda: len(self.children("ahead")) == 2, 5, 0.1),
                        self.children("ahead"))
        # a version with other limits: the one made ahead is replaced
        s.deploy_ok("ahead", py_package(SLEEPER), memory_mb=256)
        empty = {k: v for k, v in self.children("ahead").items() if not v[1]}
        self.assertEqual([v[0] for v in empty.values()], [256 << 20], self.children("ahead"))
        self.assertStatus(s.api("DELETE", "/v1/functions/ahead"), 204)
        self.assertTrue(harness.wait_for(lambda: not os.path.isdir(self.fn_dir("ahead")), 5,
                                         0.1), self.children("ahead"))


if __name__ == "__main__":
    harness.main()
