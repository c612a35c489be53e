# SPDX-License-Identifier: MIT
"""The management and invoke API against a real spored: runtimes and zygotes, deploy, invoke
(cold and warm), versions, rollback, list, info, delete, env and the Lambda context."""

import os
import re
import signal
import threading
import time

import harness
from harness import Spored, SporeTestCase, py_package, sha256_hex

VERSIONED = """
import time
VERSION = %d
def main(event, context):
    if event and event.get("sleep"):
        time.sleep(event["sleep"])
    return {"v": VERSION}
"""

CONTEXT = """
import os
def main(event, context):
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "env": {k: os.environ.get(k) for k in event["keys"]},
    }
"""


def exe_of(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return ""


def cmdline_of(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


class ApiCase(SporeTestCase):
    def check_invoke_headers(self, r, version, cold):
        self.assertEqual(r.header("X-Spore-Version"), str(version), r)
        self.assertEqual(r.header("X-Spore-Cold-Start"), "true" if cold else "false", r)
        d = r.header("X-Spore-Duration-Us")
        self.assertIsNotNone(d, r)
        self.assertRegex(d, r"^\d+$")
        self.assertTrue(r.header("X-Spore-Request-Id"), r)

    def wait_version(self, name, version, timeout=2.0, **kw):
        """New invocations use a newly live version within a second (API contract)."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.spored.invoke_ok(name, {}, **kw)
            if r.header("X-Spore-Version") == str(version) or time.monotonic() > deadline:
                self.assertEqual(r.header("X-Spore-Version"), str(version), r)
                return r
            time.sleep(0.05)


class TestApi(ApiCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = Spored.for_class(cls)
        cls.runtimes_at_start = cls.spored.runtimes()

    def test_healthz(self):
        for send in (self.spored.tcp, self.spored.api):
            r = self.assertStatus(send("GET", "/healthz"), 200)
            self.assertEqual(r.json(), {"status": "ok"})

    def test_runtimes_before_deploy(self):
        rts = {rt["name"]: rt for rt in self.runtimes_at_start}
        self.assertIn("python3", rts)
        self.assertIn("native", rts)
        for name, rt in rts.items():
            for key in ("name", "pid", "state", "restarts", "started"):
                self.assertIn(key, rt, "runtime %s" % name)
            self.assertGreater(rt["pid"], 0, rt)
            self.assertEqual(rt["state"], "running", rt)
            self.assertEqual(rt["restarts"], 0, rt)
            self.assertRegex(rt["started"], harness.RFC3339_US)
            pid = rt["pid"]
            self.assertTrue(harness.proc_alive(pid), "zygote %d of %s is not running" % (pid, name))
            self.assertEqual(harness.proc_ppid(pid), self.spored.pid,
                             "zygote %d is not a child of spored" % pid)
            exe, cmd = exe_of(pid), cmdline_of(pid)
            self.assertTrue("zygote" in os.path.basename(exe) or "zygote" in cmd,
                            "pid %d is not a zygote: exe %r cmdline %r" % (pid, exe, cmd))
        self.assertNotEqual(rts["python3"]["pid"], rts["native"]["pid"])
        # same answer now (nothing else restarted them meanwhile)
        now = {rt["name"]: rt["pid"] for rt in self.spored.runtimes()}
        self.assertEqual(now, {n: rt["pid"] for n, rt in rts.items()})

    def test_python_deploy_invoke(self):
        code = harness.py_hello_package()
        d = self.spored.deploy_ok("py-hello", code, handler="handler.hello")
        self.assertEqual(d, {"name": "py-hello", "version": 1, "sha256": sha256_hex(code)})
        r = self.spored.invoke_ok("py-hello", {"name": "spore"})
        self.assertEqual(r.json()["message"], "hello, spore")
        self.check_invoke_headers(r, 1, cold=True)
        r2 = self.spored.invoke_ok("py-hello", {})
        self.assertEqual(r2.json()["message"], "hello, world")
        self.check_invoke_headers(r2, 1, cold=False)
        self.assertNotEqual(r.header("X-Spore-Request-Id"), r2.header("X-Spore-Request-Id"))
        # invoke routes are served on the unix socket too
        r3 = self.spored.invoke_ok("py-hello", {"name": "unix"}, unix=True)
        self.assertEqual(r3.json()["message"], "hello, unix")

    def test_python_zip_package(self):
        code = harness.py_hello_package(fmt="zip")
        d = self.spored.deploy_ok("py-zip", code, handler="handler.hello")
        self.assertEqual(d["sha256"], sha256_hex(code))
        r = self.spored.invoke_ok("py-zip", {"name": "zip"})
        self.assertEqual(r.json()["message"], "hello, zip")

    def test_python_dotted_module(self):
        code = harness.tar_gz_files({"pkg/__init__.py": "", "pkg/mod.py": VERSIONED % 7})
        self.spored.deploy_ok("py-dotted", code, handler="pkg.mod.main")
        self.assertEqual(self.spored.invoke_ok("py-dotted", {}).json(), {"v": 7})

    def test_native_deploy_invoke(self):
        code = harness.native_hello_package()
        d = self.spored.deploy_ok("nat-hello", code, runtime="native",
                                  handler=harness.native_handler("hello"))
        self.assertEqual(d, {"name": "nat-hello", "version": 1, "sha256": sha256_hex(code)})
        r = self.spored.invoke_ok("nat-hello", {"name": "native"})
        self.assertEqual(r.json()["message"], "hello, native")
        self.check_invoke_headers(r, 1, cold=True)
        r = self.spored.invoke_ok("nat-hello", {"name": "again"})
        self.assertEqual(r.json()["message"], "hello, again")
        self.check_invoke_headers(r, 1, cold=False)

    def test_echo_roundtrip(self):
        event = {"a": [1, 2.5, {"b": "\u00fc\u6f22\U0001f600"}], "t": True, "n": None, "s": "x" * 10000}
        self.spored.deploy_ok("py-echo", harness.py_hello_package(), handler="handler.echo")
        self.assertEqual(self.spored.invoke_ok("py-echo", event).json(), event)
        # empty body: the event is null
        self.assertIsNone(self.spored.invoke_ok("py-echo", raw=b"").json())
        self.assertEqual(self.spored.invoke_ok("py-echo", raw=b"  [1, \"two\"]\n").json(), [1, "two"])
        self.spored.deploy_ok("nat-echo", harness.native_hello_package(), runtime="native",
                              handler=harness.native_handler("echo"))
        self.assertEqual(self.spored.invoke_ok("nat-echo", event).json(), event)

    def test_versions_and_rollback(self):
        s = self.spored
        c1, c2 = py_package(VERSIONED % 1), py_package(VERSIONED % 2)
        self.assertEqual(s.deploy_ok("ver", c1)["version"], 1)
        r = s.invoke_ok("ver", {})
        self.assertEqual(r.json(), {"v": 1})
        self.assertEqual(s.deploy_ok("ver", c2)["version"], 2)
        r = self.wait_version("ver", 2)
        self.assertEqual(r.json(), {"v": 2})
        # rollback without a body: the version before the live one
        r = self.assertStatus(s.api("POST", "/v1/functions/ver/rollback"), 200)
        self.assertEqual(r.json(), {"name": "ver", "version": 1})
        self.assertEqual(self.wait_version("ver", 1).json(), {"v": 1})
        self.assertEqual(s.info("ver")["live_version"], 1)
        # rollback to a named version ("roll forward")
        r = self.assertStatus(s.api("POST", "/v1/functions/ver/rollback", {"version": 2}), 200)
        self.assertEqual(r.json(), {"name": "ver", "version": 2})
        self.assertEqual(self.wait_version("ver", 2).json(), {"v": 2})
        # a pinned version, whatever is live
        r = s.invoke_ok("ver", {}, version=1)
        self.assertEqual(r.json(), {"v": 1})
        self.assertEqual(r.header("X-Spore-Version"), "1")
        r = s.invoke_ok("ver", {}, version=2)
        self.assertEqual(r.json(), {"v": 2})
        # a third deploy continues the numbering; versions are immutable
        c3 = py_package(VERSIONED % 3)
        self.assertEqual(s.deploy_ok("ver", c3)["version"], 3)
        self.assertEqual(self.wait_version("ver", 3).json(), {"v": 3})
        self.assertEqual(s.invoke_ok("ver", {}, version=1).json(), {"v": 1})
        info = s.info("ver")
        self.assertEqual([v["version"] for v in info["versions"]], [1, 2, 3])
        self.assertEqual([v["sha256"] for v in info["versions"]],
                         [sha256_hex(c1), sha256_hex(c2), sha256_hex(c3)])
        self.assertEqual(s.version_dirs("ver"), ["1", "2", "3"])

    def test_in_flight_finishes_on_old_version(self):
        s = self.spored
        s.deploy_ok("inflight", py_package(VERSIONED % 1))
        s.invoke_ok("inflight", {})  # warm
        out = {}

        def slow():
            out["r"] = s.invoke("inflight", {"sleep": 1.0})
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.3)
        s.deploy_ok("inflight", py_package(VERSIONED % 2))
        self.assertEqual(self.wait_version("inflight", 2).json(), {"v": 2})
        t.join(30)
        self.assertFalse(t.is_alive())
        self.assertStatus(out["r"], 200)
        self.assertEqual(out["r"].json(), {"v": 1})
        self.assertEqual(out["r"].header("X-Spore-Version"), "1")

    def test_list_and_info(self):
        s = self.spored
        code = py_package(VERSIONED % 1)
        s.deploy_ok("listed", code, memory_mb=256, timeout_ms=5000, env={"A": "1", "B": "two"})
        s.invoke_ok("listed", {})
        s.invoke_ok("listed", {})
        r = self.assertStatus(s.api("GET", "/v1/functions"), 200)
        fns = {f["name"]: f for f in r.json()["functions"]}
        self.assertIn("listed", fns)
        self.assertEqual(fns["listed"], {"name": "listed", "live_version": 1, "runtime": "python3",
                                         "handler": "fn.main", "memory_mb": 256,
                                         "timeout_ms": 5000, "versions": 1})
        names = [f["name"] for f in r.json()["functions"]]
        self.assertEqual(names, sorted(names), "list is sorted by name")

        info = s.info("listed")
        for k, v in {"name": "listed", "live_version": 1, "runtime": "python3",
                     "handler": "fn.main", "memory_mb": 256, "timeout_ms": 5000,
                     "env": {"A": "1", "B": "two"}}.items():
            self.assertEqual(info[k], v, k)
        self.assertEqual(len(info["versions"]), 1)
        v = info["versions"][0]
        self.assertEqual(v["version"], 1)
        self.assertEqual(v["sha256"], sha256_hex(code))
        self.assertRegex(v["created"], harness.RFC3339_US)
        self.assertEqual((v["runtime"], v["handler"], v["memory_mb"], v["timeout_ms"]),
                         ("python3", "fn.main", 256, 5000))
        self.assertGreaterEqual(len(info["instances"]), 1, info)
        zyg = s.zygote_pid("python3")
        for inst in info["instances"]:
            for key in ("id", "pid", "version", "state", "invocations"):
                self.assertIn(key, inst)
            self.assertEqual(inst["version"], 1)
            self.assertEqual(harness.proc_ppid(inst["pid"]), zyg,
                             "instance %d is not a child of the python3 zygote %d" % (
                                 inst["pid"], zyg))
        self.assertEqual(sum(i["invocations"] for i in info["instances"]), 2, info)

    def test_instances_are_forked_from_zygotes(self):
        s = self.spored
        s.deploy_ok("fork-py", harness.py_hello_package(), handler="handler.noop")
        s.deploy_ok("fork-nat", harness.native_hello_package(), runtime="native",
                    handler=harness.native_handler("noop"))
        for name, runtime in (("fork-py", "python3"), ("fork-nat", "native")):
            s.invoke_ok(name, {})
            zyg = s.zygote_pid(runtime)
            insts = s.info(name)["instances"]
            self.assertTrue(insts, name)
            for inst in insts:
                pid = inst["pid"]
                self.assertEqual(harness.proc_ppid(pid), zyg, "%s instance %d" % (name, pid))
                # forked, not exec'ed: the instance runs the zygote's executable
                self.assertEqual(exe_of(pid), exe_of(zyg), "%s instance %d" % (name, pid))

    def test_delete(self):
        s = self.spored
        s.deploy_ok("doomed", py_package(VERSIONED % 1))
        s.deploy_ok("doomed", py_package(VERSIONED % 2))
        s.invoke_ok("doomed", {})
        pids = [i["pid"] for i in s.info("doomed")["instances"]]
        self.assertTrue(pids)
        starts = {p: harness.proc_stat(p)[2] for p in pids}
        self.assertTrue(os.path.isdir(s.function_dir("doomed")))
        r = self.assertStatus(s.api("DELETE", "/v1/functions/doomed"), 204)
        self.assertEqual(r.body, b"")
        self.assertError(s.api("GET", "/v1/functions/doomed"), 404, "not_found")
        self.assertError(s.invoke("doomed", {}), 404, "not_found")
        self.assertError(s.api("DELETE", "/v1/functions/doomed"), 404, "not_found")
        self.assertNotIn("doomed", [f["name"] for f in s.api("GET", "/v1/functions").json()["functions"]])
        self.assertFalse(os.path.exists(s.function_dir("doomed")), "files left after delete")
        left = harness.wait_for(
            lambda: not [p for p in pids if harness.proc_alive(p, starts[p])], 3)
        self.assertTrue(left, "instances still running after delete: %r" % pids)
        # the name can be used again, from version 1
        self.assertEqual(s.deploy_ok("doomed", py_package(VERSIONED % 5))["version"], 1)
        self.assertEqual(s.invoke_ok("doomed", {}).json(), {"v": 5})

    def test_env_and_context(self):
        s = self.spored
        s.deploy_ok("ctx", py_package(CONTEXT), memory_mb=256, timeout_ms=5000,
                    env={"GREETING": "hi there", "EMPTY": "", "UNICODE": "\u00e9t\u00e9"})
        r = s.invoke_ok("ctx", {"keys": ["GREETING", "EMPTY", "UNICODE", "NOT_SET_ANYWHERE"]})
        j = r.json()
        self.assertEqual(j["env"], {"GREETING": "hi there", "EMPTY": "", "UNICODE": "\u00e9t\u00e9",
                                    "NOT_SET_ANYWHERE": None})
        self.assertEqual(j["function_name"], "ctx")
        self.assertEqual(str(j["function_version"]), "1")
        self.assertEqual(int(j["memory_limit_in_mb"]), 256)
        self.assertIsInstance(j["aws_request_id"], str)
        self.assertTrue(j["aws_request_id"])
        self.assertGreater(j["remaining_ms"], 0)
        self.assertLessEqual(j["remaining_ms"], 5000)
        j2 = s.invoke_ok("ctx", {"keys": []}).json()
        self.assertNotEqual(j["aws_request_id"], j2["aws_request_id"])
        # a new version sees its own configuration
        s.deploy_ok("ctx", py_package(CONTEXT), memory_mb=512, env={"GREETING": "v2"})
        deadline = time.monotonic() + 2
        while True:
            j = s.invoke_ok("ctx", {"keys": ["GREETING", "EMPTY"]}).json()
            if str(j["function_version"]) == "2" or time.monotonic() > deadline:
                break
        self.assertEqual(str(j["function_version"]), "2")
        self.assertEqual(j["env"], {"GREETING": "v2", "EMPTY": None})
        self.assertEqual(int(j["memory_limit_in_mb"]), 512)
        self.assertLessEqual(j["remaining_ms"], 30000)


class TestZygoteRestart(ApiCase):
    """A crashed zygote is restarted (and logged); functions keep working."""

    def setUp(self):
        self.spored = Spored.for_test(self)

    def test_zygote_killed_is_restarted(self):
        s = self.spored
        s.deploy_ok("zr", harness.py_hello_package(), handler="handler.hello")
        s.deploy_ok("zr-nat", harness.native_hello_package(), runtime="native",
                    handler=harness.native_handler("hello"))
        s.invoke_ok("zr", {"name": "before"})
        before = {rt["name"]: rt for rt in s.runtimes()}
        zyg = before["python3"]["pid"]
        s.snapshot()
        os.kill(zyg, signal.SIGKILL)

        def restarted():
            rts = {rt["name"]: rt for rt in s.runtimes()}
            py = rts["python3"]
            if py["pid"] > 0 and py["pid"] != zyg and py["state"] == "running":
                return rts
            return None
        rts = harness.wait_for(restarted, 10, 0.05)
        self.assertTrue(rts, "python3 zygote not restarted: %r\n%s" % (s.runtimes(), s.log_tail()))
        self.assertGreaterEqual(rts["python3"]["restarts"], 1)
        self.assertEqual(harness.proc_ppid(rts["python3"]["pid"]), s.pid)
        self.assertEqual(rts["native"]["pid"], before["native"]["pid"], "native zygote untouched")
        self.assertTrue(re.search(r"restart", s.log(), re.I),
                        "zygote restart not logged\n" + s.log_tail())
        r = s.invoke_ok("zr", {"name": "after"})
        self.assertEqual(r.json()["message"], "hello, after")
        new_zyg = rts["python3"]["pid"]
        for inst in s.info("zr")["instances"]:
            self.assertNotEqual(harness.proc_ppid(inst["pid"]), zyg)
            self.assertEqual(harness.proc_ppid(inst["pid"]), new_zyg)
        self.assertEqual(s.invoke_ok("zr-nat", {"name": "n"}).json()["message"], "hello, n")


if __name__ == "__main__":
    harness.main()
