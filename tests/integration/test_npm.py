# SPDX-License-Identifier: MIT
"""npm dependencies installed at deploy (issue 6, src/deps.c), against a real, sandboxed spored
and the real npm registry:

- a nodejs function whose package.json declares a dependency (and ships no node_modules) gets it
  installed at deploy and answers with it; two functions pinned to two versions of one package
  (is-number 6.0.0 and 7.0.0) each see their own, one through `npm ci` (a lock file), the other
  through `npm install --omit=dev`;
- the same package.json again is linked from the cache (no npm run);
- npm runs sandboxed: a postinstall script of the package sees itself as nobody, no /etc/shadow,
  no host directories, and what it leaves in node_modules is owned by root, not writable;
- an install that fails (a package that does not exist) fails the deploy with npm's message
  (422 "dependencies"), and the previous version keeps serving;
- spored killed -9 while npm runs: no npm left, the previous version serves after restart, the
  unfinished build is gone."""

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import Spored, SporeTestCase
from test_runtimes import package

HANDLER = r"""
const fs = require('fs');
exports.version = async (event) => {
  const pkg = require('is-number/package.json');
  const isNumber = require('is-number');
  return { version: pkg.version, five: isNumber(5), word: isNumber('x') };
};
exports.probe = async () => {
  const read = (p) => { try { return fs.readFileSync(p, 'utf8').trim(); } catch (e) { return 'ERR ' + e.code; } };
  let writable = true;
  try { fs.writeFileSync(__dirname + '/node_modules/is-number/x', 'x'); } catch (e) { writable = e.code; }
  return { uid: read(__dirname + '/node_modules/.probe-uid'),
           shadow: read(__dirname + '/node_modules/.probe-shadow'),
           root: read(__dirname + '/node_modules/.probe-root').split('\n'),
           writable };
};
"""


def pkg_json(version, extra=None):
    j = {"name": "spore-npm-test", "version": "1.0.0", "private": True,
         "dependencies": {"is-number": version}}
    j.update(extra or {})
    return json.dumps(j, indent=2)


def lock_for(version):
    """A real package-lock.json for is-number@version, made by npm on the host."""
    d = tempfile.mkdtemp(prefix="spore-npm-lock-")
    try:
        with open(os.path.join(d, "package.json"), "w") as f:
            f.write(pkg_json(version))
        subprocess.run(["npm", "install", "--package-lock-only", "--no-audit", "--no-fund"],
                       cwd=d, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=120)
        with open(os.path.join(d, "package-lock.json")) as f:
            return f.read()
    finally:
        subprocess.run(["rm", "-rf", d], check=False)


class TestNpm(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access("/usr/bin/npm", os.X_OK) or not os.access("/usr/bin/bwrap", os.X_OK):
            raise unittest.SkipTest("npm or bwrap (bubblewrap) missing: tools/install-deps.sh")
        cls.spored = s = Spored()
        cls.addClassCleanup(s.destroy)
        s.config["sandbox_dir"] = os.path.join(s.dir, "sandbox")
        s.config["deps_timeout_s"] = "120"
        s.write_config()
        s.start()

    def deploy_npm(self, name, files, handler="index.version"):
        t0 = time.monotonic()
        r = self.spored.deploy(name, package(files), runtime="nodejs", handler=handler,
                               memory_mb=256)
        return r, time.monotonic() - t0

    def test_two_versions_ci_and_install(self):
        s = self.spored
        lock7 = lock_for("7.0.0")
        r, t_ci = self.deploy_npm("npm-seven", {"index.js": HANDLER,
                                                "package.json": pkg_json("7.0.0"),
                                                "package-lock.json": lock7})
        self.assertStatus(r, 201)
        r, t_install = self.deploy_npm("npm-six", {"index.js": HANDLER,
                                                   "package.json": pkg_json("6.0.0")})
        self.assertStatus(r, 201)
        seven = s.invoke_ok("npm-seven").json()
        six = s.invoke_ok("npm-six").json()
        self.assertEqual(seven, {"version": "7.0.0", "five": True, "word": False})
        self.assertEqual(six, {"version": "6.0.0", "five": True, "word": False})
        log = s.log_tail(200000)
        self.assertIn("npm ci for", log)
        self.assertIn("npm install for", log)
        # The same files again: linked from the cache, no npm
        before = log.count("started (pid")
        r, t_cached = self.deploy_npm("npm-seven-again", {"index.js": HANDLER,
                                                          "package.json": pkg_json("7.0.0"),
                                                          "package-lock.json": lock7})
        self.assertStatus(r, 201)
        self.assertEqual(s.invoke_ok("npm-seven-again").json()["version"], "7.0.0")
        log = s.log_tail(200000)
        self.assertEqual(log.count("started (pid"), before, "npm ran again for a cached key")
        self.assertIn("linked from the cache", log)
        print("npm: deploy with npm ci %.2f s, npm install %.2f s, from the cache %.3f s" % (
            t_ci, t_install, t_cached))
        # A package that ships node_modules is taken as it is (no npm)
        r, _ = self.deploy_npm("npm-shipped", {
            "index.js": "exports.version = async () => require('is-number/package.json').version;",
            "package.json": pkg_json("7.0.0"),
            "node_modules/is-number/package.json": json.dumps({"name": "is-number",
                                                               "version": "0.0.1-shipped"}),
            "node_modules/is-number/index.js": "module.exports = () => true;"})
        self.assertStatus(r, 201)
        self.assertEqual(s.invoke_ok("npm-shipped").json(), "0.0.1-shipped")
        self.assertEqual(s.log_tail(200000).count("started (pid"), before)

    def test_install_runs_sandboxed(self):
        s = self.spored
        script = ("id -u > node_modules/.probe-uid; (cat /etc/shadow > node_modules/.probe-shadow"
                  " 2>&1 || true); ls / > node_modules/.probe-root")
        r, _ = self.deploy_npm("npm-probe", {
            "index.js": HANDLER,
            "package.json": pkg_json("7.0.0", {"scripts": {"postinstall": script}})},
            handler="index.probe")
        self.assertStatus(r, 201)
        j = s.invoke_ok("npm-probe").json()
        self.assertEqual(j["uid"], "65534", j)
        self.assertIn("No such file", j["shadow"], j)
        for host_dir in ("root", "home", "work", "var", "run", "boot"):
            self.assertNotIn(host_dir, j["root"], j)
        self.assertEqual(j["writable"], "EROFS", j)
        # on the host: the installed tree belongs to root and is written by no one else
        code = os.path.join(s.state_dir, "functions", "npm-probe", "versions", "1", "code")
        for dirpath, dirnames, filenames in os.walk(os.path.join(code, "node_modules")):
            for n in dirnames + filenames:
                st = os.lstat(os.path.join(dirpath, n))
                self.assertEqual((st.st_uid, st.st_gid), (0, 0), os.path.join(dirpath, n))
                self.assertEqual(st.st_mode & 0o022, 0, os.path.join(dirpath, n))

    def test_failed_install_keeps_old_version(self):
        s = self.spored
        r, _ = self.deploy_npm("npm-fail", {"index.js": HANDLER,
                                            "package.json": pkg_json("7.0.0")})
        self.assertStatus(r, 201)
        self.assertEqual(s.invoke_ok("npm-fail").json()["version"], "7.0.0")
        bad = json.dumps({"name": "x", "version": "1.0.0", "dependencies": {
            "is-number": "7.0.0", "spore-no-such-package-4f1c9e": "1.0.0"}})
        r, t = self.deploy_npm("npm-fail", {"index.js": HANDLER, "package.json": bad})
        j = self.assertError(r, 422, "dependencies", "npm install failed")
        self.assertIn("spore-no-such-package-4f1c9e", j["message"])
        self.assertIn("404", j["message"])
        print("npm: failed install answered in %.2f s: %s" % (t, j["message"][:300]))
        info = s.info("npm-fail")
        self.assertEqual(info["live_version"], 1)
        self.assertEqual(s.invoke_ok("npm-fail").json()["version"], "7.0.0")
        # bad package.json: refused at once, by name
        r, _ = self.deploy_npm("npm-fail", {"index.js": HANDLER, "package.json": "{nope"})
        self.assertError(r, 422, "dependencies", "package.json")
        r, _ = self.deploy_npm("npm-fail", {"index.js": HANDLER,
                                            "package.json": '{"dependencies": ["x"]}'})
        self.assertError(r, 422, "dependencies", "must be an object")
        self.assertEqual(s.invoke_ok("npm-fail").json()["version"], "7.0.0")

    def test_zz_kill_during_install(self):
        s = self.spored
        r, _ = self.deploy_npm("npm-kill", {"index.js": HANDLER,
                                            "package.json": pkg_json("6.0.0")})
        self.assertStatus(r, 201)
        # a postinstall that takes its time, so spored dies while npm runs
        slow = pkg_json("7.0.0", {"scripts": {"postinstall": "sleep 30"}})
        def deploy_slow():
            try:
                self.deploy_npm("npm-kill", {"index.js": HANDLER, "package.json": slow})
            except OSError:
                pass  # spored is killed before it answers: that is the point
        th = threading.Thread(target=deploy_slow, daemon=True)
        th.start()
        self.assertTrue(harness.wait_for(
            lambda: "npm-kill' waits for its dependencies" in s.log_tail(100000), 30),
            s.log_tail())
        def npm_pids():
            return [p for p in harness.descendants(s.pid)
                    if "npm" in harness.proc_describe(p) or "sleep" in harness.proc_describe(p)]
        # until the postinstall script runs (npm has downloaded the package by then)
        self.assertTrue(harness.wait_for(lambda: any("sleep" in harness.proc_describe(p)
                                                     for p in npm_pids()), 30),
                        "no npm postinstall under spored: %r" % [
                            harness.proc_describe(p) for p in harness.descendants(s.pid)])
        npm_pids = npm_pids()
        s.kill(signal.SIGKILL)  # waits, and checks that no instance or zygote is left
        th.join(10)
        gone = harness.wait_for(lambda: not [p for p in npm_pids if harness.proc_alive(p)], 5)
        self.assertTrue(gone, "npm left after spored died: %r" % [
            harness.proc_describe(p) for p in npm_pids if harness.proc_alive(p)])
        s.start()
        self.assertEqual(s.invoke_ok("npm-kill").json()["version"], "6.0.0")
        self.assertEqual(os.listdir(os.path.join(s.state_dir, "deps", "tmp")), [])


if __name__ == "__main__":
    harness.main()
