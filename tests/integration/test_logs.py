# SPDX-License-Identifier: MIT
"""Function logs: stdout and stderr lines with time, version, instance and stream; tail=N;
follow=1 streams new lines."""

import json
import threading
import time

import harness
from harness import Spored, SporeTestCase, py_package

LOGGER = """
import sys
print("init-line from module level", flush=True)
VERSION = %d
def main(event, context):
    for i in range(event.get("n", 1)):
        print("%%s-out-%%d" %% (event["tag"], i), flush=True)
        print("%%s-err-%%d" %% (event["tag"], i), file=sys.stderr, flush=True)
    return {"v": VERSION}
"""

# what an unmodified Lambda handler does: print() without flush
PLAIN_PRINT = """
import sys
def main(event, context):
    print("plain-" + event["tag"])
    sys.stderr.write("plain-err-" + event["tag"] + "\\n")
    return None
"""


class TestLogs(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = s = Spored.for_class(cls)
        s.deploy_ok("logger", py_package(LOGGER % 1))

    def get_logs(self, name, query="tail=100"):
        r = self.assertStatus(self.spored.api("GET", "/v1/functions/%s/logs?%s" % (name, query)), 200)
        self.assertTrue(r.header("Content-Type", "").startswith("application/x-ndjson"), r)
        lines = []
        for raw in r.body.decode("utf-8").split("\n"):
            if raw.strip():
                lines.append(json.loads(raw))
        return lines

    def wait_logs(self, name, pred, query="tail=1000", timeout=3.0):
        deadline = time.monotonic() + timeout
        while True:
            lines = self.get_logs(name, query)
            if pred(lines) or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def test_fields(self):
        s = self.spored
        s.invoke_ok("logger", {"tag": "fld", "n": 2})
        want = {"fld-out-0", "fld-out-1", "fld-err-0", "fld-err-1"}
        lines = self.wait_logs("logger", lambda ls: want <= {l["message"] for l in ls})
        mine = [l for l in lines if l["message"] in want]
        self.assertEqual(len(mine), 4, lines)
        info = s.info("logger")
        ids = {str(i["id"]) for i in info["instances"]}
        for l in mine:
            self.assertLessEqual({"time", "version", "instance", "stream", "message"}, set(l), l)
            self.assertRegex(l["time"], harness.RFC3339_US)
            self.assertEqual(str(l["version"]), "1")
            self.assertIn(str(l["instance"]), ids, "log line instance not among %r" % ids)
            self.assertEqual(l["stream"], "stdout" if "-out-" in l["message"] else "stderr", l)
        outs = [l["message"] for l in mine if l["stream"] == "stdout"]
        self.assertEqual(outs, ["fld-out-0", "fld-out-1"])
        times = [l["time"] for l in lines]
        self.assertEqual(times, sorted(times), "lines are in time order")
        # the module-level print at init is a log line too
        self.assertIn("init-line from module level", [l["message"] for l in lines])

    def test_tail(self):
        s = self.spored
        s.invoke_ok("logger", {"tag": "tl", "n": 10})
        self.wait_logs("logger", lambda ls: any(l["message"] == "tl-err-9" for l in ls))
        self.wait_logs("logger", lambda ls: any(l["message"] == "tl-out-9" for l in ls))
        everything = self.get_logs("logger", "tail=10000")
        last3 = self.get_logs("logger", "tail=3")
        self.assertEqual(len(last3), 3)
        self.assertEqual(last3, everything[-3:])
        self.assertEqual(self.get_logs("logger", "tail=1"), everything[-1:])
        default = self.get_logs("logger", "")
        self.assertEqual(default, everything[-100:])
        # more than 100 lines: the default tail is 100
        s.invoke_ok("logger", {"tag": "many", "n": 80})
        self.wait_logs("logger", lambda ls: sum(1 for l in ls if l["message"].startswith("many-")) == 160)
        self.assertEqual(len(self.get_logs("logger", "")), 100)
        self.assertGreaterEqual(len(self.get_logs("logger", "tail=10000")), 160 + 20)

    def test_bad_tail(self):
        for q in ("tail=abc", "tail=-1", "tail=10001", "tail=1x"):
            r = self.spored.api("GET", "/v1/functions/logger/logs?" + q)
            self.assertError(r, 400, "bad_request", "tail", msg=q)

    def test_versions_in_logs(self):
        s = self.spored
        s.deploy_ok("logver", py_package(LOGGER % 1))
        s.invoke_ok("logver", {"tag": "one"})
        s.deploy_ok("logver", py_package(LOGGER % 2))
        deadline = time.monotonic() + 2
        while s.invoke_ok("logver", {"tag": "two"}).header("X-Spore-Version") != "2":
            self.assertLess(time.monotonic(), deadline)
        lines = self.wait_logs("logver", lambda ls: any(l["message"] == "two-out-0" and
                                                        str(l["version"]) == "2" for l in ls))
        by_msg = {}
        for l in lines:
            by_msg.setdefault(l["message"], set()).add(str(l["version"]))
        self.assertEqual(by_msg.get("one-out-0"), {"1"}, lines)
        self.assertIn("2", by_msg.get("two-out-0", set()), lines)

    def test_unflushed_print(self):
        """print() without flush, as Lambda handlers do, reaches the log promptly."""
        s = self.spored
        s.deploy_ok("plain", py_package(PLAIN_PRINT))
        s.invoke_ok("plain", {"tag": "x1"})
        lines = self.wait_logs("plain", lambda ls: {"plain-x1", "plain-err-x1"} <=
                               {l["message"] for l in ls})
        self.assertIn("plain-x1", [l["message"] for l in lines],
                      "unflushed stdout not in the log within 3 s")
        self.assertIn("plain-err-x1", [l["message"] for l in lines])

    def test_example_log_handler(self):
        s = self.spored
        s.deploy_ok("exlog", harness.py_hello_package(), handler="handler.log")
        s.invoke_ok("exlog", {})
        lines = self.wait_logs("exlog", lambda ls: {"stdout", "stderr"} <= {l["stream"] for l in ls})
        self.assertEqual({l["stream"] for l in lines}, {"stdout", "stderr"}, lines)

    def test_follow(self):
        s = self.spored
        s.invoke_ok("logger", {"tag": "before-follow"})
        with s.raw(unix=True, timeout=10) as c:
            c.send(harness.request_bytes("GET", "/v1/functions/logger/logs?follow=1&tail=1"))
            status, _, headers = c.read_head()
            self.assertEqual(status, 200)
            self.assertIn("chunked", headers.get("transfer-encoding", ""), headers)
            self.assertTrue(headers.get("content-type", "").startswith("application/x-ndjson"))
            pending = b""

            def read_until(message, timeout=5.0):
                nonlocal pending
                seen = []
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    while b"\n" in pending:
                        line, pending = pending.split(b"\n", 1)
                        if line.strip():
                            j = json.loads(line)
                            seen.append(j)
                            if j["message"] == message:
                                return j, seen
                    c.settimeout(max(0.05, deadline - time.monotonic()))
                    try:
                        chunk = c.read_chunk()
                    except OSError:
                        break
                    self.assertNotEqual(chunk, b"", "follow stream ended")
                    pending += chunk
                self.fail("%r not streamed within %.0f s; saw %r" % (message, timeout, seen))

            # printed after the follow started
            threading.Timer(0.3, lambda: s.invoke("logger", {"tag": "followed"})).start()
            j, _ = read_until("followed-err-0")
            self.assertEqual(j["stream"], "stderr")
            self.assertRegex(j["time"], harness.RFC3339_US)
            s.invoke_ok("logger", {"tag": "again"})
            read_until("again-out-0")
        # the client went away; spored goes on
        s.invoke_ok("logger", {"tag": "after-follow"})
        self.wait_logs("logger", lambda ls: any(l["message"] == "after-follow-out-0" for l in ls))
        # several followers that go away without reading
        conns = [s.raw(unix=True) for _ in range(5)]
        for c in conns:
            c.send(harness.request_bytes("GET", "/v1/functions/logger/logs?follow=1"))
        s.invoke_ok("logger", {"tag": "burst", "n": 50})
        for c in conns:
            c.close()
        self.assertStatus(s.tcp("GET", "/healthz"), 200)
        self.assertStatus(s.api("GET", "/v1/functions/logger/logs?tail=5"), 200)


if __name__ == "__main__":
    harness.main()
