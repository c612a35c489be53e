# SPDX-License-Identifier: MIT
"""Asynchronous invocations: X-Spore-Invocation-Type: event answers 202 with an id once the event
is on disk; it runs later; failures are retried (2 retries, back-off) and then kept as dead
letters; GET /v1/invocations/ID shows each one's state; spored killed with -9 in the middle of
1,000 of them loses none, and runs none twice."""

import json
import re
import threading
import time

import harness
from harness import Spored, SporeTestCase, py_package

MARK = """
import os
def main(event, context):
    print("ran %s" % event["i"], flush=True)
    if event.get("fail"):
        raise RuntimeError("asked to fail")
    return {"i": event["i"], "pid": os.getpid()}
"""


class TestAsync(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = Spored.for_class(cls)

    def submit(self, name, event):
        r = self.spored.invoke(name, event, headers={"X-Spore-Invocation-Type": "Event"})
        self.assertStatus(r, 202)
        j = r.json()
        self.assertEqual(r.header("X-Spore-Invocation-Id"), j["id"])
        self.assertEqual(j["state"], "queued")
        return j["id"]

    def state(self, iid):
        r = self.spored.api("GET", "/v1/invocations/" + iid)
        self.assertStatus(r, 200)
        return r.json()

    def ran_counts(self, name):
        r = self.spored.api("GET", "/v1/functions/%s/logs?tail=10000" % name)
        counts = {}
        for line in r.body.decode().splitlines():
            m = re.match(r"ran (\d+)$", json.loads(line)["message"])
            if m:
                counts[int(m.group(1))] = counts.get(int(m.group(1)), 0) + 1
        return counts

    def test_runs_and_reports(self):
        s = self.spored
        s.deploy_ok("later", py_package(MARK))
        ids = [self.submit("later", {"i": i}) for i in range(20)]
        self.assertEqual(len(set(ids)), 20)
        self.assertEqual(ids, sorted(ids), "ids do not sort by acceptance")
        done = harness.wait_for(
            lambda: all(self.state(i)["state"] == "succeeded" for i in ids), 30, 0.2)
        self.assertTrue(done, [self.state(i) for i in ids][:3])
        st = self.state(ids[7])
        self.assertEqual(st["result"]["i"], 7)
        self.assertEqual(st["attempts"], 1)
        self.assertEqual(st["function"], "later")
        self.assertIn("accepted", st)
        self.assertIn("finished", st)
        self.assertEqual(self.ran_counts("later"), {i: 1 for i in range(20)})
        self.assertError(s.api("GET", "/v1/invocations/ffff"), 404, "not_found")
        self.assertError(s.api("GET", "/v1/invocations/..%2f..%2fx"), 404, "not_found")
        # refused up front: not JSON, not a known type, a version
        r = s.invoke("later", raw=b"{nope", headers={"X-Spore-Invocation-Type": "Event"})
        self.assertError(r, 400, "bad_request")
        r = s.invoke("later", {}, headers={"X-Spore-Invocation-Type": "sometime"})
        self.assertError(r, 400, "bad_request", "X-Spore-Invocation-Type")

    def test_retries_then_dead_letter(self):
        s = self.spored
        s.deploy_ok("flaky", py_package(MARK))
        t0 = time.monotonic()
        iid = self.submit("flaky", {"i": 1, "fail": True})
        done = harness.wait_for(lambda: self.state(iid)["state"] == "failed", 30, 0.1)
        took = time.monotonic() - t0
        self.assertTrue(done, self.state(iid))
        st = self.state(iid)
        self.assertEqual(st["attempts"], 3, st)  # the first attempt and 2 retries
        self.assertEqual(st["status"], 500)
        self.assertEqual(st["error"]["error"], "function_error")
        # back-off: 1 s, then 2 s
        self.assertGreaterEqual(took, 2.9)
        self.assertEqual(self.ran_counts("flaky"), {1: 3})
        dl = self.assertStatus(s.api("GET", "/v1/functions/flaky/dead-letters"), 200).json()
        self.assertEqual([d["id"] for d in dl["dead_letters"]], [iid])
        self.assertIn("asked to fail", json.dumps(dl["dead_letters"][0]["error"]))
        # deleting the function drops its dead letters
        self.assertStatus(s.api("DELETE", "/v1/functions/flaky"), 204)
        self.assertError(s.api("GET", "/v1/invocations/" + iid), 404, "not_found")

    def test_interrupted_is_a_dead_letter(self):
        """An event running when spored dies is not run again: it becomes a dead letter saying
        so (at most once), and a queued one behind it still runs after the restart."""
        s = self.spored
        s.deploy_ok("slowpoke", py_package(MARK.replace(
            'print("ran', 'import time; time.sleep(event.get("sleep", 0)); print("ran')),
            max_instances=1)
        first = self.submit("slowpoke", {"i": 1, "sleep": 30})
        second = self.submit("slowpoke", {"i": 2})
        self.assertTrue(harness.wait_for(lambda: self.state(first)["state"] == "running", 20,
                                         0.05))
        time.sleep(0.5)
        s.kill()
        s.start()
        self.assertTrue(harness.wait_for(
            lambda: self.state(second)["state"] == "succeeded", 30, 0.1), self.state(second))
        st = self.state(first)
        self.assertEqual(st["state"], "failed", st)
        self.assertEqual(st["error"]["error"], "interrupted", st)
        self.assertEqual(self.ran_counts("slowpoke"), {2: 1})

    def test_kill9_loses_nothing(self):
        """1,000 events; spored killed with -9 when about half have run, then restarted: each
        accepted one ran exactly once (succeeded) or is a dead letter (interrupted while it ran,
        at most once); none is lost."""
        s = self.spored
        s.deploy_ok("bulk", py_package(MARK))
        n = 1000
        ids = {}
        for i in range(n):
            ids[i] = self.submit("bulk", {"i": i})
        half = harness.wait_for(lambda: len(self.ran_counts("bulk")) >= n // 2, 120, 0.05)
        self.assertTrue(half, "fewer than half ran")
        s.kill()
        s.start()
        terminal = ("succeeded", "failed")

        def all_done():
            return all(self.state(iid)["state"] in terminal for iid in ids.values())
        self.assertTrue(harness.wait_for(all_done, 180, 0.5), "not all finished after restart")
        counts = self.ran_counts("bulk")
        succeeded = failed = 0
        for i, iid in ids.items():
            st = self.state(iid)
            if st["state"] == "succeeded":
                succeeded += 1
                self.assertEqual(counts.get(i), 1, "event %d ran %r times" % (i, counts.get(i)))
                self.assertEqual(st["result"]["i"], i)
            else:
                failed += 1
                self.assertEqual(st["error"]["error"], "interrupted", st)
                self.assertLessEqual(counts.get(i, 0), 1, "interrupted event %d ran twice" % i)
        print("\nasync: %d accepted, spored killed with -9 after about half: %d succeeded once, "
              "%d interrupted (dead letters), 0 lost" % (n, succeeded, failed))
        self.assertEqual(succeeded + failed, n)
        self.assertLessEqual(failed, 64, "more interrupted than could run at once")
        dl = s.api("GET", "/v1/functions/bulk/dead-letters").json()["dead_letters"]
        self.assertEqual(len(dl), failed)


if __name__ == "__main__":
    harness.main()
