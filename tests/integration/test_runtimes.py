# SPDX-License-Identifier: MIT
"""The nodejs and exec runtimes (issue 6), against a real, sandboxed spored:

nodejs  CommonJS async handlers, ES modules (.mjs and "type": "module"), the callback style, a
        handler that throws (500 function_error with errorType/errorMessage), console output in
        the function's log, the Lambda context, load errors, an unhandled rejection;
exec    a shell script and a program compiled here from C, a non-zero exit (function_error with
        the status and stderr's tail), a response that is not JSON, a timeout (504), stderr in
        the log.

Every instance of both runtimes must show, from the host, uid != 0, Seccomp 2 and NoNewPrivs 1
in /proc/PID/status (and no capabilities)."""

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import unittest

import harness
from harness import Spored, SporeTestCase

NODE_HELLO_DIR = os.path.join(harness.EXAMPLES_DIR, "nodejs", "hello")
EXEC_HELLO_DIR = os.path.join(harness.EXAMPLES_DIR, "exec", "hello")


def package(files):
    """files: {name: (bytes|str, mode)} or {name: bytes|str} (mode 0644) -> .tar.gz bytes."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w:gz") as tf:
        for name, content in files.items():
            mode = 0o644
            if isinstance(content, tuple):
                content, mode = content
            data = content.encode() if isinstance(content, str) else bytes(content)
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), mode, int(time.time())
            tf.addfile(ti, io.BytesIO(data))
    return bio.getvalue()


def dir_package(path):
    files = {}
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if os.path.isfile(full):
            with open(full, "rb") as f:
                files[name] = (f.read(), os.stat(full).st_mode & 0o777)
    return package(files)


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


class RuntimeCase(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = s = Spored()
        cls.addClassCleanup(s.destroy)
        s.config["sandbox_dir"] = os.path.join(s.dir, "sandbox")
        s.write_config()
        s.start()

    def logs(self, name, pred, timeout=5.0):
        """Log lines of name (dicts) once pred(lines) holds."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.spored.api("GET", "/v1/functions/%s/logs?tail=1000" % name)
            self.assertStatus(r, 200)
            lines = [json.loads(x) for x in r.body.decode().splitlines() if x.strip()]
            if pred(lines) or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def assertSandboxed(self, name):
        pids = [i["pid"] for i in self.spored.info(name)["instances"] if i.get("pid")]
        self.assertTrue(pids, "no instance of %s" % name)
        for pid in pids:
            st = proc_status(pid)
            uids = [int(x) for x in st["Uid"].split()]
            self.assertNotIn(0, uids, "instance %d of %s: Uid %r" % (pid, name, st["Uid"]))
            self.assertNotIn(0, [int(x) for x in st["Gid"].split()], st["Gid"])
            self.assertEqual(st["Seccomp"], "2", "instance %d of %s" % (pid, name))
            self.assertEqual(st["NoNewPrivs"], "1", "instance %d of %s" % (pid, name))
            for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
                self.assertEqual(int(st[cap], 16), 0, "instance %d of %s: %s %s" % (
                    pid, name, cap, st[cap]))
            # The host's OOM killer takes instances first (instance_memory_pct > 100
            # overcommits), never spored or a zygote.
            with open("/proc/%d/oom_score_adj" % pid) as f:
                self.assertEqual(f.read().strip(), "800", "instance %d of %s" % (pid, name))
            # SCHED_BATCH: a woken instance does not preempt spored
            self.assertEqual(os.sched_getscheduler(pid), os.SCHED_BATCH, "instance %d" % pid)
        return pids

    def function_error(self, r, error_type, mentions=None):
        j = self.assertError(r, 500, "function_error", mentions)
        self.assertEqual(j["errorType"], error_type, j)
        return j


class TestNodejs(RuntimeCase):
    @classmethod
    def setUpClass(cls):
        if not any(os.access(p, os.X_OK) for p in ("/usr/bin/node", "/usr/bin/nodejs",
                                                    "/usr/local/bin/node")):
            raise unittest.SkipTest("no node binary on this host")
        super().setUpClass()
        cls.spored.deploy_ok("njs", dir_package(NODE_HELLO_DIR), runtime="nodejs",
                             handler="index.hello", memory_mb=256, timeout_ms=5000,
                             env={"GREETING": "hi"})

    def test_commonjs_async(self):
        r = self.spored.invoke_ok("njs", {"name": "node"})
        j = r.json()
        self.assertEqual(j["message"], "hello, node")
        self.assertEqual(j["function_version"], "1")
        self.assertEqual(j["request_id"], r.header("x-spore-request-id"))
        self.assertSandboxed("njs")

    def test_cold_then_warm(self):
        s = self.spored
        s.deploy_ok("njs-cold", dir_package(NODE_HELLO_DIR), runtime="nodejs",
                    handler="index.echo")
        r = s.invoke_ok("njs-cold", {"n": 1})
        self.assertEqual(r.header("x-spore-cold-start"), "true")
        self.assertEqual(r.json(), {"n": 1})
        r = s.invoke_ok("njs-cold", [1, "two", None])
        self.assertEqual(r.header("x-spore-cold-start"), "false")
        self.assertEqual(r.json(), [1, "two", None])
        self.assertEqual(s.invoke_ok("njs-cold").json(), None)  # an empty event is null

    def test_esm(self):
        s = self.spored
        s.deploy_ok("njs-mjs", dir_package(NODE_HELLO_DIR), runtime="nodejs",
                    handler="esm.hello")
        j = s.invoke_ok("njs-mjs", {"name": "esm"}).json()
        self.assertEqual((j["message"], j["module"], j["hostname"]), ("hello, esm", "esm", "spore"))
        # "type": "module": a .js file in a directory is an ES module too
        code = package({"package.json": '{"type": "module"}',
                        "src/app.js": "import { sep } from 'node:path';\n"
                                      "export const nested = { handler: async (e) => "
                                      "({ esm: typeof require === 'undefined', sep, e }) };\n"})
        s.deploy_ok("njs-type", code, runtime="nodejs", handler="src/app.nested.handler")
        self.assertEqual(s.invoke_ok("njs-type", 5).json(), {"esm": True, "sep": "/", "e": 5})
        self.assertSandboxed("njs-type")

    def test_callback(self):
        s = self.spored
        s.deploy_ok("njs-cb", dir_package(NODE_HELLO_DIR), runtime="nodejs",
                    handler="index.callback")
        j = s.invoke_ok("njs-cb", {"x": 1}).json()
        self.assertEqual(j, {"message": "called back", "event": {"x": 1}})
        code = package({"cb.js": "exports.h = (event, context, callback) => "
                                 "callback(new TypeError('bad ' + event.n));\n"})
        s.deploy_ok("njs-cberr", code, runtime="nodejs", handler="cb.h")
        j = self.function_error(s.invoke("njs-cberr", {"n": 7}), "TypeError", "bad 7")
        self.assertEqual(j["errorMessage"], "bad 7")

    def test_throw(self):
        s = self.spored
        s.deploy_ok("njs-fail", dir_package(NODE_HELLO_DIR), runtime="nodejs",
                    handler="index.fail")
        j = self.function_error(s.invoke("njs-fail", {}), "Error", "something went wrong")
        self.assertEqual(j["errorMessage"], "something went wrong")
        self.assertTrue(any("index.js" in line for line in j["stackTrace"]), j)
        self.assertFalse(any("spore-nodejs-bootstrap" in line for line in j["stackTrace"]), j)
        # the instance survives a thrown error
        pids = [i["pid"] for i in s.info("njs-fail")["instances"]]
        self.function_error(s.invoke("njs-fail", {}), "Error")
        self.assertEqual([i["pid"] for i in s.info("njs-fail")["instances"]], pids)

    def test_console_log(self):
        s = self.spored
        s.deploy_ok("njs-log", dir_package(NODE_HELLO_DIR), runtime="nodejs", handler="index.log")
        r = s.invoke_ok("njs-log", {"lines": 3})
        rid = r.header("x-spore-request-id")
        want = {("stdout", "stdout line %d of %s" % (i, rid)) for i in range(3)} | \
               {("stderr", "stderr line %d of %s" % (i, rid)) for i in range(3)}
        lines = self.logs("njs-log", lambda ls: want <= {(l["stream"], l["message"]) for l in ls})
        self.assertLessEqual(want, {(l["stream"], l["message"]) for l in lines}, lines)

    def test_context(self):
        s = self.spored
        s.deploy_ok("njs-ctx", dir_package(NODE_HELLO_DIR), runtime="nodejs",
                    handler="index.context", memory_mb=256, timeout_ms=4000,
                    env={"GREETING": "hi", "TZ": ":UTC"})
        r = s.invoke_ok("njs-ctx", {"env": ["GREETING", "AWS_LAMBDA_FUNCTION_NAME",
                                            "LAMBDA_TASK_ROOT", "_HANDLER", "HOME",
                                            "SPORE_NODEJS_SANDBOX"]})
        j = r.json()
        self.assertEqual(j["functionName"], "njs-ctx")
        self.assertEqual(j["functionVersion"], "1")
        self.assertEqual(j["invokedFunctionArn"], "arn:aws:lambda:local:000000000000:function:njs-ctx")
        self.assertEqual(j["memoryLimitInMB"], "256")
        self.assertEqual(j["awsRequestId"], r.header("x-spore-request-id"))
        self.assertEqual(j["logGroupName"], "/aws/lambda/njs-ctx")
        self.assertRegex(j["logStreamName"], r"^\d{4}/\d\d/\d\d/\[1\][0-9a-f]{8}$")
        self.assertTrue(0 < j["remainingMs"] <= 4000, j)
        self.assertEqual(j["cwd"], "/var/task")
        self.assertEqual(j["env"], {"GREETING": "hi", "AWS_LAMBDA_FUNCTION_NAME": "njs-ctx",
                                    "LAMBDA_TASK_ROOT": "/var/task", "_HANDLER": "index.context",
                                    "HOME": None, "SPORE_NODEJS_SANDBOX": None})
        self.assertEqual(j["pid"], 1)  # pid 1 of its own pid namespace
        self.assertNotEqual(j["uid"], 0)
        self.assertTrue(j["node"].startswith("v"), j)

    def test_load_errors(self):
        s = self.spored
        cases = [
            ("njs-nomod", {"index.js": "exports.h = async () => 1;\n"}, "missing.h",
             "Runtime.ImportModuleError", "missing"),
            ("njs-noexp", {"index.js": "exports.h = async () => 1;\n"}, "index.nope",
             "Runtime.HandlerNotFound", "index.nope"),
            ("njs-syntax", {"index.js": "exports.h = async () => {\n"}, "index.h",
             "Runtime.UserCodeSyntaxError", "SyntaxError"),
            ("njs-throws", {"index.js": "throw new RangeError('at load');\n"}, "index.h",
             "RangeError", "at load"),
            ("njs-dep", {"index.js": "require('left-pad');\n"}, "index.h",
             "Runtime.ImportModuleError", "left-pad"),
        ]
        for name, files, handler, etype, mention in cases:
            with self.subTest(name=name):
                s.deploy_ok(name, package(files), runtime="nodejs", handler=handler)
                r = s.invoke(name, {})
                j = self.function_error(r, etype, mention)
                self.assertIn("initialisation failed", j["message"])

    def test_unhandled_rejection(self):
        s = self.spored
        code = package({"index.js": "exports.h = async (e) => {\n"
                                    "  if (e.reject) Promise.reject(new Error('nobody'));\n"
                                    "  if (e.reject) await new Promise(r => setTimeout(r, 1000));\n"
                                    "  return 'ok';\n};\n"})
        s.deploy_ok("njs-rej", code, runtime="nodejs", handler="index.h")
        self.assertEqual(s.invoke_ok("njs-rej", {}).json(), "ok")
        # the instance ends (exit status 1), its invocation with it; the error is in the log
        self.assertError(s.invoke("njs-rej", {"reject": True}), 502, "crashed", "code 1")
        lines = self.logs("njs-rej", lambda ls: any("nobody" in l["message"] for l in ls))
        self.assertTrue(any(l["message"].startswith("Unhandled promise rejection: Error: nobody")
                            for l in lines), lines)
        # the next invocation gets a new one
        self.assertEqual(s.invoke_ok("njs-rej", {}).json(), "ok")
        # at load, it is the initialisation's error
        code = package({"index.js": "Promise.reject(new Error('at init'));\n"
                                    "exports.h = async () => 1;\n"})
        s.deploy_ok("njs-rej-init", code, runtime="nodejs", handler="index.h")
        self.function_error(s.invoke("njs-rej-init", {}), "Runtime.UnhandledPromiseRejection",
                            "at init")

    def test_bad_handlers_refused(self):
        for h in ("index", "/abs.h", "../up.h", "index.", "a/./b.h", "index.1x", "in dex.h"):
            with self.subTest(handler=h):
                r = self.spored.deploy("njs-bad", package({"index.js": ""}), runtime="nodejs",
                                       handler=h)
                self.assertError(r, 400, "bad_request", "handler")

    def test_code_is_read_only(self):
        s = self.spored
        code = package({"index.js": "const fs = require('fs');\n"
                                    "exports.h = async () => {\n"
                                    "  const out = {};\n"
                                    "  for (const p of ['/var/task/x', '/tmp/x', '/x']) {\n"
                                    "    try { fs.writeFileSync(p, 'x'); out[p] = 'ok'; }\n"
                                    "    catch (e) { out[p] = e.code; }\n"
                                    "  }\n"
                                    "  out.shadow = fs.existsSync('/etc/shadow');\n"
                                    "  return out;\n};\n"})
        s.deploy_ok("njs-ro", code, runtime="nodejs", handler="index.h")
        self.assertEqual(s.invoke_ok("njs-ro").json(), {"/var/task/x": "EROFS", "/tmp/x": "ok",
                                                         "/x": "EROFS", "shadow": False})
        self.assertSandboxed("njs-ro")


class TestExec(RuntimeCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="spore-it-exec-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)

    def test_shell(self):
        s = self.spored
        s.deploy_ok("ex-sh", dir_package(EXEC_HELLO_DIR), runtime="exec", handler="handler.sh")
        r = s.invoke_ok("ex-sh", {"name": "shell"})
        self.assertEqual(r.json(), {"message": "hello, shell", "function": "ex-sh",
                                    "request_id": r.header("x-spore-request-id")})
        self.assertSandboxed("ex-sh")
        lines = self.logs("ex-sh", lambda ls: any(l["stream"] == "stderr" for l in ls))
        self.assertIn("handler.sh: request " + r.header("x-spore-request-id"),
                      [l["message"] for l in lines if l["stream"] == "stderr"])

    def test_compiled_c(self):
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if not cc:
            self.skipTest("no C compiler")
        exe = os.path.join(self.tmp, "hello")
        subprocess.run([cc, "-O2", "-o", exe, os.path.join(EXEC_HELLO_DIR, "hello.c")],
                       check=True)
        with open(exe, "rb") as f:
            code = package({"bin/hello": (f.read(), 0o755)})
        s = self.spored
        s.deploy_ok("ex-c", code, runtime="exec", handler="bin/hello")
        event = {"name": "c", "pad": "x" * 100}
        r = s.invoke_ok("ex-c", event)
        self.assertEqual(r.json(), {"message": "hello, c", "bytes": len(json.dumps(event)),
                                    "request_id": r.header("x-spore-request-id")})
        # a bigger event than a pipe holds
        big = {"name": "big", "pad": "y" * 300000}
        self.assertEqual(s.invoke_ok("ex-c", big).json()["bytes"], 65535)
        self.assertSandboxed("ex-c")

    def test_exit_status(self):
        s = self.spored
        s.deploy_ok("ex-fail", dir_package(EXEC_HELLO_DIR), runtime="exec", handler="handler.sh")
        j = self.function_error(s.invoke("ex-fail", {"fail": 3}), "Runtime.ExitError",
                                "status 3")
        self.assertIn("'handler.sh' exited with status 3", j["errorMessage"])
        self.assertIn("handler.sh: failing with status 3 as asked", j["stackTrace"])
        # the instance stays; the next invocation succeeds
        self.assertEqual(s.invoke_ok("ex-fail", {"name": "again"}).json()["message"],
                         "hello, again")

    def test_not_json(self):
        s = self.spored
        code = package({"h.sh": ("#!/bin/sh\ncat >/dev/null\necho 'this is not JSON'\n", 0o755),
                        "empty.sh": ("#!/bin/sh\nexit 0\n", 0o755)})
        s.deploy_ok("ex-text", code, runtime="exec", handler="h.sh")
        j = self.function_error(s.invoke("ex-text", {}), "Runtime.InvalidResponse", "h.sh")
        self.assertIn("not JSON", j["errorMessage"])
        s.deploy_ok("ex-empty", code, runtime="exec", handler="empty.sh")
        self.assertIsNone(s.invoke_ok("ex-empty", {"a": 1}).json())

    def test_timeout(self):
        s = self.spored
        code = package({"slow.sh": ("#!/bin/sh\nsleep 30\necho 1\n", 0o755)})
        s.deploy_ok("ex-slow", code, runtime="exec", handler="slow.sh", timeout_ms=1000)
        t0 = time.monotonic()
        r = s.invoke("ex-slow", {})
        self.assertError(r, 504, "timeout")
        self.assertLess(time.monotonic() - t0, 10)

    def test_child_is_sandboxed_and_left_overs_killed(self):
        s = self.spored
        code = package({"h.sh": ("#!/bin/sh\n"
                                 "read -r line\n"
                                 "sleep 100 >/dev/null 2>&1 &\n"
                                 "echo \"{\\\"pid\\\": $$, \\\"uid\\\": $(id -u)}\"\n", 0o755),
                        "slow.sh": ("#!/bin/sh\nsleep 2\necho '\"done\"'\n", 0o755)})
        s.deploy_ok("ex-kids", code, runtime="exec", handler="h.sh")
        j = s.invoke_ok("ex-kids", {}).json()
        self.assertNotEqual(j["uid"], 0)
        self.assertGreater(j["pid"], 1)  # the instance is pid 1; the handler its child
        pid = self.assertSandboxed("ex-kids")[0]
        # the background sleep did not outlive its invocation
        self.assertTrue(harness.wait_for(lambda: not harness.descendants(pid), 3),
                        [harness.proc_describe(p) for p in harness.descendants(pid)])
        # a handler while it runs: sandboxed as its instance
        s.deploy_ok("ex-slow2", code, runtime="exec", handler="slow.sh")
        import threading
        box = {}
        t = threading.Thread(target=lambda: box.update(r=s.invoke("ex-slow2", {})))
        t.start()
        seen = []
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            for i in s.info("ex-slow2")["instances"]:
                if i.get("pid"):
                    seen = harness.descendants(i["pid"])
            time.sleep(0.05)
        t.join(10)
        self.assertStatus(box["r"], 200)
        self.assertTrue(seen, "never saw the handler process")
        for p in seen:
            try:
                st = proc_status(p)
            except FileNotFoundError:
                continue
            self.assertNotIn(0, [int(x) for x in st["Uid"].split()])
            self.assertEqual((st["Seccomp"], st["NoNewPrivs"]), ("2", "1"))
            self.assertEqual(int(st["CapEff"], 16), 0)

    def test_bad_handlers(self):
        s = self.spored
        for h in ("/bin/sh", "../x", "a//b", "./x", ""):
            with self.subTest(handler=h):
                r = s.deploy("ex-bad", package({"x": ("#!/bin/sh\n", 0o755)}), runtime="exec",
                             handler=h)
                self.assertError(r, 400, "bad_request", "handler")
        code = package({"data.txt": "not a program\n", "dir/x": ("#!/bin/sh\n", 0o755)})
        for name, h in (("ex-noexec", "data.txt"), ("ex-missing", "nope"), ("ex-dir", "dir")):
            with self.subTest(handler=h):
                s.deploy_ok(name, code, runtime="exec", handler=h)
                self.function_error(s.invoke(name, {}), "Runtime.InvalidEntrypoint", h)


if __name__ == "__main__":
    harness.main()
