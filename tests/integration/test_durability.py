# SPDX-License-Identifier: MIT
"""Restarts and crashes: a restarted spored serves everything that was deployed; a spored killed
in the middle of a deploy comes back with the previous version live and nothing half-written."""

import hashlib
import http.client
import json
import os
import signal
import sys
import threading
import time
import zipfile

import harness
from harness import MiB, Spored, SporeTestCase, b64, py_package, sha256_hex

VERSIONED = """
VERSION = %d
def main(event, context):
    return {"v": VERSION}
"""

BIG = """
import hashlib, os
def main(event, context):
    h = hashlib.sha256()
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "big.bin")
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"v": 2, "sha": h.hexdigest(), "size": os.path.getsize(path)}
"""

CONNECTION_ERRORS = (http.client.HTTPException, OSError)


class DurabilityCase(SporeTestCase):
    def assert_state(self, name, versions, live, codes=None):
        """Function name has exactly these versions (in memory and on disk), live is live, and
        the state dir has no staging leftovers."""
        s = self.spored
        info = s.info(name)
        self.assertEqual(info["live_version"], live, info)
        self.assertEqual([v["version"] for v in info["versions"]], versions, info)
        if codes:
            self.assertEqual([v["sha256"] for v in info["versions"]], [sha256_hex(c) for c in codes])
        self.assertEqual(s.version_dirs(name), [str(v) for v in versions],
                         "version dirs on disk do not match the versions")
        self.assertEqual(s.tmp_entries(), [], "staging leftovers in state/tmp")
        self.assertTrue(os.path.isfile(os.path.join(s.function_dir(name), "function.json")))


class TestRestart(DurabilityCase):
    def test_restart_serves_everything(self):
        self.spored = s = Spored.for_test(self)
        c1, c2 = py_package(VERSIONED % 1), py_package(VERSIONED % 2)
        s.deploy_ok("dur", c1)
        s.deploy_ok("dur", c2)
        self.assertStatus(s.api("POST", "/v1/functions/dur/rollback"), 200)
        s.deploy_ok("other", harness.py_hello_package(), handler="handler.hello",
                    memory_mb=256, timeout_ms=1234, env={"K": "v"})
        s.deploy_ok("nat", harness.native_hello_package(), runtime="native",
                    handler=harness.native_handler("hello"))
        s.deploy_ok("gone", c1)
        self.assertStatus(s.api("DELETE", "/v1/functions/gone"), 204)
        s.invoke_ok("dur", {})
        before = {n: s.info(n) for n in ("dur", "other", "nat")}
        zygotes_before = {rt["name"]: rt["pid"] for rt in s.runtimes()}

        s.restart()

        for n, old in before.items():
            new = s.info(n)
            for k in ("name", "live_version", "runtime", "handler", "memory_mb", "timeout_ms",
                      "env", "versions"):
                self.assertEqual(new[k], old[k], "%s.%s changed across a restart" % (n, k))
        self.assert_state("dur", [1, 2], 1, [c1, c2])
        self.assertEqual(s.invoke_ok("dur", {}).json(), {"v": 1})
        self.assertEqual(s.invoke_ok("other", {"name": "r"}).json()["message"], "hello, r")
        self.assertEqual(s.invoke_ok("nat", {"name": "n"}).json()["message"], "hello, n")
        self.assertError(s.api("GET", "/v1/functions/gone"), 404, "not_found")
        self.assertFalse(os.path.exists(s.function_dir("gone")))
        names = [f["name"] for f in s.api("GET", "/v1/functions").json()["functions"]]
        self.assertEqual(names, ["dur", "nat", "other"])
        zygotes_after = {rt["name"]: rt["pid"] for rt in s.runtimes()}
        for n, pid in zygotes_after.items():
            self.assertNotEqual(pid, zygotes_before[n], "zygote %s survived the restart" % n)
        # numbering continues
        self.assertEqual(s.deploy_ok("dur", py_package(VERSIONED % 3))["version"], 3)
        self.assertStatus(s.api("POST", "/v1/functions/dur/rollback", {"version": 2}), 200)
        # a SIGKILLed spored (not mid-deploy) comes back the same
        s.kill(signal.SIGKILL)
        s.start()
        self.assert_state("dur", [1, 2, 3], 2)
        self.assertEqual(s.invoke_ok("dur", {}).json(), {"v": 2})

    def test_broken_function_on_disk(self):
        self.spored = s = Spored.for_test(self)
        s.deploy_ok("good", py_package(VERSIONED % 1))
        s.deploy_ok("broken", py_package(VERSIONED % 1))
        s.stop()
        fj = os.path.join(s.function_dir("broken"), "function.json")
        with open(fj, "w") as f:
            f.write("{ this is not json")
        s.start()
        self.assertEqual(s.invoke_ok("good", {}).json(), {"v": 1})
        self.assertError(s.deploy("broken", py_package(VERSIONED % 2)), 409, "conflict")
        r = s.api("GET", "/v1/functions/broken")
        self.assertIn(r.status, (404, 409), r)
        with open(fj) as f:
            self.assertEqual(f.read(), "{ this is not json", "a broken function was touched")
        self.assertTrue(os.path.isdir(os.path.join(s.function_dir("broken"), "versions", "1")))


class TestCrashMidDeploy(DurabilityCase):
    def crash_at(self, point):
        self.spored = s = Spored.for_test(self)
        c1 = py_package(VERSIONED % 1)
        s.deploy_ok("dur", c1)
        s.stop()
        s.start(env={"SPORE_TEST_CRASH_AT": point})
        self.assertEqual(s.invoke_ok("dur", {}).json(), {"v": 1})
        try:
            r = s.deploy("dur", py_package(VERSIONED % 2))
        except CONNECTION_ERRORS:
            r = None
        self.assertIsNone(r, "deploy answered although spored should have died at %s" % point)
        rc = s.wait_exit(10)
        self.assertEqual(rc, -signal.SIGKILL, "spored status %s\n%s" % (rc, s.log_tail()))
        # the hook fired where it says
        if point == "deploy-staged":
            self.assertNotEqual(s.tmp_entries(), [], "nothing staged in state/tmp at deploy-staged")
            self.assertEqual(s.version_dirs("dur"), ["1"])
        else:
            self.assertEqual(s.version_dirs("dur"), ["1", "2"],
                             "versions/2 not in place at deploy-renamed")
        s.start()
        self.assert_state("dur", [1], 1, [c1])
        self.assertEqual(s.invoke_ok("dur", {}).json(), {"v": 1})
        # and deploys work again, with the next number
        self.assertEqual(s.deploy_ok("dur", py_package(VERSIONED % 2))["version"], 2)
        deadline = time.monotonic() + 2
        while s.invoke_ok("dur", {}).json() != {"v": 2}:
            self.assertLess(time.monotonic(), deadline, "v2 not live")
        self.assert_state("dur", [1, 2], 2)

    def test_crash_at_deploy_staged(self):
        self.crash_at("deploy-staged")

    def test_crash_at_deploy_renamed(self):
        self.crash_at("deploy-renamed")

    def test_crash_at_first_deploy(self):
        """A crash during the very first deploy of a name leaves no function at all."""
        self.spored = s = Spored.for_test(self, env={"SPORE_TEST_CRASH_AT": "deploy-renamed"})
        try:
            s.deploy("fresh", py_package(VERSIONED % 1))
        except CONNECTION_ERRORS:
            pass
        s.wait_exit(10)
        s.start()
        self.assertError(s.api("GET", "/v1/functions/fresh"), 404, "not_found")
        self.assertFalse(os.path.exists(s.function_dir("fresh")), "orphan function dir kept")
        self.assertEqual(s.tmp_entries(), [])
        self.assertEqual(s.deploy_ok("fresh", py_package(VERSIONED % 1))["version"], 1)


class TestKill9LargeDeploy(DurabilityCase):
    def test_kill9_during_large_deploy(self):
        self.spored = s = Spored.for_test(self)
        c1 = py_package(VERSIONED % 1)
        big = os.urandom(30 * MiB)
        big_sha = hashlib.sha256(big).hexdigest()
        code2 = harness.zip_files({"fn.py": BIG, "big.bin": big}, compression=zipfile.ZIP_STORED)
        body = json.dumps({"runtime": "python3", "handler": "fn.main", "code": b64(code2)}).encode()
        triggers = {
            "staging": lambda name: s.tmp_entries() != [],
            "renamed": lambda name: "2" in s.version_dirs(name),
            "uploaded": None,
        }
        outcomes = {}
        for name in ("big-staging", "big-renamed", "big-uploaded"):
            s.deploy_ok(name, c1)
        for name in ("big-staging", "big-renamed", "big-uploaded"):
            trigger = triggers[name.split("-")[1]]
            uploaded = threading.Event()
            answer = {}

            def put(name=name, uploaded=uploaded, answer=answer):
                try:
                    with harness.RawConn(s.api_socket, timeout=60) as c:
                        c.send(harness.request_bytes("PUT", "/v1/functions/" + name, body,
                                                     {"Content-Type": "application/json"}))
                        uploaded.set()
                        answer["r"] = c.read_response()
                except (OSError, EOFError, AssertionError) as ex:
                    answer["ex"] = ex
                finally:
                    uploaded.set()
            t = threading.Thread(target=put)
            t.start()
            if trigger is None:
                uploaded.wait(60)
            else:
                deadline = time.monotonic() + 60
                while not trigger(name) and "r" not in answer and time.monotonic() < deadline:
                    time.sleep(0.0005)
            s.kill(signal.SIGKILL)
            t.join(60)
            s.start()
            info = s.info(name)
            if info["live_version"] == 1:
                outcome = "old"
                self.assert_state(name, [1], 1, [c1])
                self.assertEqual(s.invoke_ok(name, {}).json(), {"v": 1})
            else:
                outcome = "new"
                self.assert_state(name, [1, 2], 2, [c1, code2])
                self.assertEqual(s.invoke_ok(name, {}).json(),
                                 {"v": 2, "sha": big_sha, "size": 30 * MiB})
            if "r" in answer and answer["r"].status == 201:
                self.assertEqual(outcome, "new", "a deploy answered 201 was lost")
            outcomes[name] = outcome
        sys.stderr.write("kill -9 mid-deploy outcomes: %r\n" % outcomes)


if __name__ == "__main__":
    harness.main()
