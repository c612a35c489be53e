# SPDX-License-Identifier: MIT
"""Autoscaling: per-function scaling settings at deploy and by PATCH (no new version); reserved
instances (min_instances) started at deploy and again right after a restart, never reaped; from
zero to K instances under K concurrent clients, back to min_instances after the idle TTL; the
host's capacity answered with 503 capacity."""

import threading
import time

import harness
from harness import Spored, SporeTestCase, py_package

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


if __name__ == "__main__":
    harness.main()
