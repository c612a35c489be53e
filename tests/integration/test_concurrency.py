# SPDX-License-Identifier: MIT
"""Parallel invocations: more instances up to max_instances, a bounded FIFO queue (429 when
full or after queue_timeout_ms, with Retry-After), idle instances reaped after idle_ttl_s."""

import threading
import time

import harness
from harness import Spored, SporeTestCase, py_package

SLEEPER = """
import os, time
INSTANCE = os.urandom(8).hex()  # one per instance: code is loaded after the fork
def main(event, context):
    time.sleep(event.get("seconds", 0))
    return {"i": event.get("i"), "instance": INSTANCE}
"""


def parallel_invoke(spored, name, events, timeout=60):
    """Invokes name once per event, all at the same moment, each on its own connection.
    Returns the responses (or exceptions) in event order."""
    out = [None] * len(events)
    barrier = threading.Barrier(len(events))

    def one(i):
        try:
            conn = spored.tcp_conn(timeout)
            conn.connect()
            barrier.wait(30)
            out[i] = harness.do_request(conn, "POST", "/v1/functions/%s/invoke" % name, events[i])
            conn.close()
        except Exception as ex:  # reported by the caller
            out[i] = ex
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(events))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 30)
    return out


class TestConcurrency(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = Spored.for_class(cls)

    def test_50_parallel_python(self):
        s = self.spored
        s.deploy_ok("par", py_package(SLEEPER))
        t0 = time.monotonic()
        rs = parallel_invoke(s, "par", [{"i": i, "seconds": 0.2} for i in range(50)])
        took = time.monotonic() - t0
        bad = [(i, r) for i, r in enumerate(rs) if not isinstance(r, harness.Response) or r.status != 200]
        self.assertFalse(bad, "failed invocations: %r\n%s" % (bad[:5], s.log_tail(30)))
        for i, r in enumerate(rs):
            self.assertEqual(r.json()["i"], i)
            self.assertEqual(r.header("X-Spore-Version"), "1")
        used = {r.json()["instance"] for r in rs}
        self.assertLessEqual(len(used), 10, "more instances than max_instances (10)")
        self.assertGreaterEqual(len(used), 2, "50 concurrent invocations ran on one instance")
        # 50 x 0.2 s on at most 10 instances: at least 1 s, and not serialised (10 s)
        self.assertGreaterEqual(took, 0.95)
        self.assertLess(took, 8.0)
        insts = s.info("par")["instances"]
        self.assertLessEqual(len(insts), 10)
        self.assertEqual(sum(i["invocations"] for i in insts), 50)
        cold = sum(1 for r in rs if r.header("X-Spore-Cold-Start") == "true")
        self.assertEqual(cold, len(used), "one cold start per instance")

    def test_50_parallel_native(self):
        s = self.spored
        s.deploy_ok("par-nat", harness.native_hello_package(), runtime="native",
                    handler=harness.native_handler("echo"))
        events = [{"i": i, "pad": "x" * (i * 100)} for i in range(50)]
        rs = parallel_invoke(s, "par-nat", events)
        for i, r in enumerate(rs):
            self.assertIsInstance(r, harness.Response, r)
            self.assertStatus(r, 200)
            self.assertEqual(r.json(), events[i])
        self.assertLessEqual(len(s.info("par-nat")["instances"]), 10)

    def test_parallel_across_functions(self):
        s = self.spored
        for n in ("fa", "fb", "fc"):
            s.deploy_ok(n, py_package(SLEEPER))
        names = ["fa", "fb", "fc"] * 10
        out = [None] * len(names)

        def one(k):
            out[k] = s.invoke(names[k], {"i": k, "seconds": 0.1})
        threads = [threading.Thread(target=one, args=(k,)) for k in range(len(names))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for k, r in enumerate(out):
            self.assertStatus(r, 200)
            self.assertEqual(r.json()["i"], k)


class TestQueueFull(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = Spored.for_class(cls, {"max_instances": 1, "queue_max": 2})

    def test_queue_full_429(self):
        s = self.spored
        s.deploy_ok("q", py_package(SLEEPER))
        s.invoke_ok("q", {})  # one warm instance
        rs = parallel_invoke(s, "q", [{"i": i, "seconds": 1.0} for i in range(8)])
        statuses = sorted(r.status if isinstance(r, harness.Response) else repr(r) for r in rs)
        ok = [r for r in rs if isinstance(r, harness.Response) and r.status == 200]
        full = [r for r in rs if isinstance(r, harness.Response) and r.status == 429]
        self.assertEqual(len(ok) + len(full), 8, statuses)
        # one running + queue_max waiting succeed, the rest are refused at once
        self.assertEqual(len(ok), 3, statuses)
        for r in full:
            self.assertStatus(r, 429, "throttled")
            self.assertEqual(r.headers.get("retry-after"), "1")
        self.assertEqual(len({r.json()["instance"] for r in ok}), 1)
        self.assertEqual(len(s.info("q")["instances"]), 1)
        # served again once the queue drained
        self.assertEqual(s.invoke_ok("q", {"i": 99}).json()["i"], 99)

    def test_fifo_order(self):
        s = self.spored
        s.deploy_ok("fifo", py_package(SLEEPER))
        s.invoke_ok("fifo", {})
        done = []
        lock = threading.Lock()

        def one(i, secs):
            r = s.invoke("fifo", {"i": i, "seconds": secs})
            with lock:
                done.append((i, r.status))
        first = threading.Thread(target=one, args=(0, 0.6))
        first.start()
        time.sleep(0.2)
        second = threading.Thread(target=one, args=(1, 0.2))
        second.start()
        time.sleep(0.1)
        third = threading.Thread(target=one, args=(2, 0.2))
        third.start()
        for t in (first, second, third):
            t.join(30)
        self.assertEqual(done, [(0, 200), (1, 200), (2, 200)])


class TestQueueTimeoutAndIdle(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = Spored.for_class(cls, {"max_instances": 1, "queue_timeout_ms": 500,
                                            "idle_ttl_s": 1})

    def test_queue_timeout_429(self):
        s = self.spored
        s.deploy_ok("qt", py_package(SLEEPER))
        s.invoke_ok("qt", {})
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("r", s.invoke("qt", {"i": 1, "seconds": 2})))
        t.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        r = s.invoke("qt", {"i": 2})
        took = time.monotonic() - t0
        self.assertStatus(r, 429, "throttled")
        self.assertEqual(r.headers.get("retry-after"), "1")
        self.assertGreaterEqual(took, 0.4)
        self.assertLess(took, 1.8)
        t.join(30)
        self.assertStatus(out["r"], 200)
        self.assertEqual(out["r"].json()["i"], 1)

    def test_idle_instance_reaped(self):
        s = self.spored
        # its own queue timeout: the class's 500 ms is for test_queue_timeout_429, and a cold
        # start on a loaded host (ASan) can take longer than that
        s.deploy_ok("idle", py_package(SLEEPER), queue_timeout_ms=10000)
        s.invoke_ok("idle", {})
        insts = s.info("idle")["instances"]
        self.assertEqual(len(insts), 1)
        pid = insts[0]["pid"]
        start = harness.proc_stat(pid)[2]
        gone = harness.wait_for(lambda: not s.info("idle")["instances"], 5, 0.1)
        self.assertTrue(gone, "idle instance not reaped after idle_ttl_s = 1")
        self.assertTrue(harness.wait_for(lambda: not harness.proc_alive(pid, start), 2),
                        "reaped instance %d still running" % pid)
        r = s.invoke_ok("idle", {"i": 5})
        self.assertEqual(r.header("X-Spore-Cold-Start"), "true")
        self.assertEqual(r.json()["i"], 5)


if __name__ == "__main__":
    harness.main()
