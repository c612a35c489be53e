# SPDX-License-Identifier: MIT
"""sporectl against a real spored: deploy (dir, archive, .so), invoke (JSON, @file, stdin), ls,
info, versions, rollback, logs, rm; exit codes 1 (server error) and 2 (usage)."""

import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time

import harness
from harness import Spored, SporeTestCase

VERSIONED = """
import sys
VERSION = %d
def main(event, context):
    if isinstance(event, dict) and "say" in event:
        print("said: " + event["say"], flush=True)
    if isinstance(event, dict) and event.get("fail"):
        raise ValueError("asked to fail")
    return {"v": VERSION, "event": event}
"""


class TestSporectl(SporeTestCase):
    TOKEN = "ctl-token-0123456789"

    @classmethod
    def setUpClass(cls):
        if not harness.SPORECTL or not os.access(harness.SPORECTL, os.X_OK):
            raise AssertionError("SPORECTL=%r is not an executable" % harness.SPORECTL)
        cls.spored = Spored.for_class(cls, {"api_token": cls.TOKEN})
        cls.work = tempfile.mkdtemp(prefix="spore-it-ctl-")
        cls.addClassCleanup(shutil.rmtree, cls.work, True)

    def fn_dir(self, tag, version):
        d = os.path.join(self.work, "%s-v%d" % (tag, version))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "fn.py"), "w") as f:
            f.write(VERSIONED % version)
        os.makedirs(os.path.join(d, "lib"), exist_ok=True)
        with open(os.path.join(d, "lib", "data.txt"), "w") as f:
            f.write("packaged\n")
        return d

    def ctl(self, *args, stdin=None, env=None, socket=True, timeout=60):
        cmd = [harness.SPORECTL] + (["--socket", self.spored.api_socket] if socket else []) + \
            [str(a) for a in args]
        e = dict(os.environ)
        e.pop("SPORE_SOCKET", None)
        e.update(env or {})
        p = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, env=e)
        p.out = p.stdout.decode("utf-8", "replace")
        p.err = p.stderr.decode("utf-8", "replace")
        p.cmd = cmd
        return p

    def ctl_ok(self, *args, **kw):
        p = self.ctl(*args, **kw)
        if p.returncode != 0:
            self.fail("%s: exit %d\nstdout: %s\nstderr: %s\n%s" % (
                " ".join(p.cmd), p.returncode, p.out, p.err, self.spored.log_tail(20)))
        return p

    def assert_exit(self, p, code):
        self.assertEqual(p.returncode, code, "%s: exit %d (wanted %d)\nstdout: %s\nstderr: %s" % (
            " ".join(p.cmd), p.returncode, code, p.out, p.err))
        if code:
            self.assertTrue(p.err.strip(), "%s: exit %d without a message" % (" ".join(p.cmd), code))

    def invoke_json(self, *args, **kw):
        p = self.ctl_ok("invoke", *args, **kw)
        try:
            return json.loads(p.out)
        except ValueError:
            self.fail("invoke printed no JSON: %r (stderr %r)" % (p.out, p.err))

    def wait_invoke(self, name, want, timeout=2.0):
        deadline = time.monotonic() + timeout
        while True:
            got = self.invoke_json(name, "{}")
            if got == want or time.monotonic() > deadline:
                self.assertEqual(got, want)
                return got
            time.sleep(0.05)

    # -----------------------------------------------------------------------------------------

    def test_deploy_invoke_versions_rollback(self):
        self.ctl_ok("deploy", "ctlfn", self.fn_dir("a", 1), "--runtime", "python3",
                    "--handler", "fn.main")
        self.assertEqual(self.invoke_json("ctlfn", '{"x": 1}'), {"v": 1, "event": {"x": 1}})
        self.ctl_ok("deploy", "ctlfn", self.fn_dir("a", 2), "--runtime", "python3",
                    "--handler", "fn.main")
        self.wait_invoke("ctlfn", {"v": 2, "event": {}})
        info = self.spored.info("ctlfn")
        self.assertEqual([v["version"] for v in info["versions"]], [1, 2])
        p = self.ctl_ok("versions", "ctlfn")
        self.assertRegex(p.out, r"(?m)^\s*1\b")
        self.assertRegex(p.out, r"(?m)^\s*2\b")
        self.assertIn(info["versions"][0]["sha256"][:12], p.out)
        self.ctl_ok("rollback", "ctlfn")
        self.wait_invoke("ctlfn", {"v": 1, "event": {}})
        self.assertEqual(self.spored.info("ctlfn")["live_version"], 1)
        self.ctl_ok("rollback", "ctlfn", "2")
        self.wait_invoke("ctlfn", {"v": 2, "event": {}})
        # ls and info
        p = self.ctl_ok("ls")
        self.assertRegex(p.out, r"(?m)^ctlfn\b")
        p = self.ctl_ok("info", "ctlfn")
        self.assertIn("ctlfn", p.out)
        self.assertIn("python3", p.out)
        self.assertIn("fn.main", p.out)

    def test_example_dir_and_archives(self):
        self.ctl_ok("deploy", "ctlhello", harness.PY_HELLO_DIR, "--runtime", "python3",
                    "--handler", "handler.hello")
        self.assertEqual(self.invoke_json("ctlhello", '{"name": "ctl"}')["message"], "hello, ctl")
        d = self.fn_dir("arch", 1)
        tgz = os.path.join(self.work, "fn.tar.gz")
        with open(tgz, "wb") as f:
            f.write(harness.tar_gz_dir(d))
        zp = os.path.join(self.work, "fn.zip")
        with open(zp, "wb") as f:
            f.write(harness.zip_dir(d))
        self.ctl_ok("deploy", "ctltgz", tgz, "--runtime", "python3", "--handler", "fn.main")
        self.assertEqual(self.invoke_json("ctltgz", "[]"), {"v": 1, "event": []})
        self.assertEqual(self.spored.info("ctltgz")["versions"][0]["sha256"],
                         harness.sha256_hex(open(tgz, "rb").read()),
                         "an archive is sent as it is")
        self.ctl_ok("deploy", "ctlzip", zp, "--runtime", "python3", "--handler", "fn.main")
        self.assertEqual(self.invoke_json("ctlzip", "3"), {"v": 1, "event": 3})

    def test_deploy_native_so(self):
        self.ctl_ok("deploy", "ctlnat", harness.NATIVE_HELLO_SO, "--runtime", "native",
                    "--handler", "hello")
        self.assertEqual(self.invoke_json("ctlnat", '{"name": "so"}')["message"], "hello, so")
        self.assertEqual(self.spored.info("ctlnat")["runtime"], "native")

    def test_deploy_options(self):
        self.ctl_ok("deploy", "ctlopt", self.fn_dir("opt", 1), "--runtime", "python3",
                    "--handler", "fn.main", "--memory", "256", "--timeout", "5s",
                    "--env", "A=1", "--env", "B=two words", "--env", "C=x=y")
        info = self.spored.info("ctlopt")
        self.assertEqual(info["memory_mb"], 256)
        self.assertEqual(info["timeout_ms"], 5000)
        self.assertEqual(info["env"], {"A": "1", "B": "two words", "C": "x=y"})

    def test_invoke_event_sources(self):
        self.ctl_ok("deploy", "ctlev", self.fn_dir("ev", 1), "--runtime", "python3",
                    "--handler", "fn.main")
        ev = {"nested": {"list": [1, 2, 3]}, "s": "\u00e9"}
        self.assertEqual(self.invoke_json("ctlev", json.dumps(ev))["event"], ev)
        path = os.path.join(self.work, "event.json")
        with open(path, "w") as f:
            json.dump(ev, f)
        self.assertEqual(self.invoke_json("ctlev", "@" + path)["event"], ev)
        self.assertEqual(self.invoke_json("ctlev", "-", stdin=json.dumps(ev).encode())["event"], ev)
        self.assertIsNone(self.invoke_json("ctlev")["event"])

    def test_logs(self):
        self.ctl_ok("deploy", "ctllog", self.fn_dir("log", 1), "--runtime", "python3",
                    "--handler", "fn.main")
        self.invoke_json("ctllog", '{"say": "marker-one"}')
        deadline = time.monotonic() + 3
        while True:
            p = self.ctl_ok("logs", "ctllog")
            if "said: marker-one" in p.out or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertIn("said: marker-one", p.out)
        # -f streams a line printed after it started
        f = subprocess.Popen([harness.SPORECTL, "--socket", self.spored.api_socket, "logs",
                              "ctllog", "-f"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(0.3)
            self.invoke_json("ctllog", '{"say": "marker-two"}')
            buf = b""
            deadline = time.monotonic() + 5
            while b"said: marker-two" not in buf and time.monotonic() < deadline:
                r, _, _ = select.select([f.stdout], [], [], 0.2)
                if r:
                    chunk = os.read(f.stdout.fileno(), 65536)
                    if not chunk:
                        break
                    buf += chunk
            self.assertIn(b"said: marker-two", buf, "logs -f did not stream the new line")
            self.assertIsNone(f.poll(), "logs -f exited")
        finally:
            f.terminate()
            try:
                f.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(f.pid, 9)
                f.wait()
            f.stdout.close()
            f.stderr.close()

    def test_rm(self):
        self.ctl_ok("deploy", "ctlrm", self.fn_dir("rm", 1), "--runtime", "python3",
                    "--handler", "fn.main")
        self.ctl_ok("rm", "ctlrm")
        self.assertError(self.spored.api("GET", "/v1/functions/ctlrm"), 404, "not_found")
        self.assertNotRegex(self.ctl_ok("ls").out, r"(?m)^ctlrm\b")
        self.assert_exit(self.ctl("info", "ctlrm"), 1)
        self.assert_exit(self.ctl("rm", "ctlrm"), 1)

    def test_server_errors_exit_1(self):
        p = self.ctl("invoke", "nosuchfn", "{}")
        self.assert_exit(p, 1)
        self.assertRegex(p.err.lower(), r"not[ _]found|no such|unknown")
        p = self.ctl("deploy", "Bad_Name", self.fn_dir("bad", 1), "--runtime", "python3",
                     "--handler", "fn.main")
        self.assertIn(p.returncode, (1, 2), p.err)  # refused by spored (1) or checked first (2)
        self.assertIn("name", p.err)
        p = self.ctl("deploy", "ctlbadrt", self.fn_dir("bad", 1), "--runtime", "cobol",
                     "--handler", "fn.main")
        self.assertIn(p.returncode, (1, 2), p.err)
        self.assertIn("runtime", p.err)
        self.ctl_ok("deploy", "ctlfail", self.fn_dir("fail", 1), "--runtime", "python3",
                    "--handler", "fn.main")
        p = self.ctl("invoke", "ctlfail", '{"fail": true}')
        self.assert_exit(p, 1)
        self.assertIn("asked to fail", p.out + p.err)
        p = self.ctl("rollback", "ctlfail")  # no earlier version: 409
        self.assert_exit(p, 1)
        p = self.ctl("rollback", "ctlfail", "9")
        self.assert_exit(p, 1)
        p = self.ctl("ls", socket=False, env={"SPORE_SOCKET": os.path.join(self.work, "nope.sock")})
        self.assert_exit(p, 1)

    def test_usage_errors_exit_2(self):
        d = self.fn_dir("usage", 1)
        for args in ([], ["frobnicate"], ["deploy"], ["deploy", "x"], ["invoke"], ["info"],
                     ["versions"], ["rollback"], ["rm"], ["logs"], ["--no-such-flag", "ls"],
                     ["deploy", "x", d, "--runtime", "python3", "--handler", "fn.main",
                      "--memory", "lots"],
                     ["deploy", "x", d, "--runtime", "python3", "--handler", "fn.main",
                      "--env", "NOEQUALS"],
                     ["deploy", "x", d, "--runtime", "python3", "--handler", "fn.main",
                      "--timeout", "soon"],
                     ["ls", "extra", "args"]):
            with self.subTest(args=args):
                self.assert_exit(self.ctl(*args), 2)
        self.assertError(self.spored.api("GET", "/v1/functions/x"), 404, "not_found")

    def test_socket_env_and_url(self):
        self.ctl_ok("deploy", "ctlenv", self.fn_dir("env", 1), "--runtime", "python3",
                    "--handler", "fn.main")
        p = self.ctl_ok("ls", socket=False, env={"SPORE_SOCKET": self.spored.api_socket})
        self.assertRegex(p.out, r"(?m)^ctlenv\b")
        url = "http://127.0.0.1:%d" % self.spored.port
        p = self.ctl_ok("--url", url, "--token", self.TOKEN, "ls", socket=False)
        self.assertRegex(p.out, r"(?m)^ctlenv\b")
        self.assertEqual(json.loads(self.ctl_ok("--url", url, "invoke", "ctlenv", "7",
                                                socket=False).out), {"v": 1, "event": 7})
        p = self.ctl("--url", url, "--token", "wrong", "ls", socket=False)
        self.assert_exit(p, 1)
        self.assertTrue(re.search(r"token|unauthori", p.err, re.I), p.err)


if __name__ == "__main__":
    harness.main()
