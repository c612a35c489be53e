# SPDX-License-Identifier: MIT
"""Hostile functions (issue 3): every attack of tests/hostile/, for python3 and native, run
against a real spored with its sandbox on. For each one:
  (a) the host is unchanged: spored answers /healthz, its zygotes are the same processes, a
      marker file outside and /etc/shadow are untouched, sleepers of the test (one root, one
      with the function's own uid) are alive;
  (b) an ordinary function (handler.echo of examples/python3/hello), invoked from this thread
      while the attack runs in another, answers 200 with the right body within ECHO_MAX_S;
  (c) the attack's own answer is an error or a harmless result, precise where the sandbox's
      contract makes it so (EPERM from seccomp, ENOENT for hidden paths, EROFS, ECONNREFUSED).
One line per attack is printed ("hostile: RUNTIME ATTACK -> STATUS KIND DETAIL") and the whole
table again at the end. The last test DELETEs every function and checks that no instance
process, cgroup or mount of spore is left.

Needs HOSTILE_DIR (tests/hostile) and HOSTILE_NATIVE_DIR (the built .so files), set by meson.
An instance running as root means the sandbox is not in force: that fails the suite."""

import errno
import hashlib
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import unittest

import harness
from harness import Spored, SporeTestCase, cgroup_dirs, fnv1a32, proc_alive, proc_stat

HOSTILE_DIR = os.environ.get("HOSTILE_DIR", "")
HOSTILE_NATIVE_DIR = os.environ.get("HOSTILE_NATIVE_DIR", "")

RUNTIMES = ("python3", "native")
# runtime-nodejs.c: SPARE_UID_BASE, the first of the uids nodejs spares wait as
NODE_SPARE_UID = 4100000000
ECHO_MAX_S = 3.0  # an ordinary invocation during an attack answers within this
PIDS_MAX_DEFAULT = 64
NOFILE_DEFAULT = 1024
SANDBOX_UID_MIN = 200000  # spored's default sandbox_uid_min
MiB = 1 << 20

# An environment variable of the test runner, and so of spored and its zygotes: the host's
# environment, which no instance may read back.
MARKER_VAR = "SPORE_HOSTILE_HOST_SECRET"
MARKER = "host-secret-" + secrets.token_hex(12)



def errname(e):
    return errno.errorcode.get(e, str(e)) if e else "0"


def describe(resp):
    """(kind, detail) of an attack's answer for the summary line."""
    if resp.status != 200:
        try:
            return resp.json().get("error", "?"), ""
        except ValueError:
            return "?", repr(resp.body[:80])
    j = resp.json()
    items = j.get("results") if isinstance(j, dict) and "results" in j else [j]
    names = []
    for it in items:
        if isinstance(it, dict):
            names.append("ok" if it.get("ok") else errname(it.get("errno", 0)))
    counts = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    kind = ",".join("%s%s" % (n, "" if c == 1 else " x%d" % c) for n, c in counts.items())
    return "ok", kind


def fn_name(runtime, attack, suffix=""):
    return ("hpy-" if runtime == "python3" else "hnat-") + attack.replace("_", "-") + suffix


def proc_uids(pid):
    """[real, effective, saved, fs] uids of pid, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Uid:"):
                    return [int(x) for x in line.split()[1:5]]
    except OSError:
        return None
    return None


def subdirs(path):
    try:
        return sorted(e.name for e in os.scandir(path) if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def cgroup_tree(path):
    """Every directory below path (relative names), depth first."""
    out = []
    for d in subdirs(path):
        out.append(d)
        out += [d + "/" + x for x in cgroup_tree(os.path.join(path, d))]
    return out


def sha256_file(path):
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError as e:
        return "unreadable: %s" % e.strerror


class TestHostile(SporeTestCase):
    summary = []

    @classmethod
    def setUpClass(cls):
        if not os.path.isdir(os.path.join(HOSTILE_DIR, "python3")):
            raise AssertionError("HOSTILE_DIR=%r has no python3/: run through meson" % HOSTILE_DIR)
        if not os.path.isfile(os.path.join(HOSTILE_NATIVE_DIR, "spin.so")):
            raise AssertionError("HOSTILE_NATIVE_DIR=%r has no spin.so: build tests/hostile first"
                                 % HOSTILE_NATIVE_DIR)
        os.environ[MARKER_VAR] = MARKER
        cls.addClassCleanup(os.environ.pop, MARKER_VAR, None)
        cls.spored = s = Spored()
        cls.addClassCleanup(s.destroy)
        cls.sandbox_dir = os.path.join(s.dir, "sandbox")
        s.config["sandbox_dir"] = cls.sandbox_dir
        s.write_config()
        s.start()
        cls.cgroup_name = "spore-%08x" % fnv1a32(s.state_dir)
        cls.deployed = set()
        cls.seen = {}  # host pid -> starttime of every instance (and child) seen
        cls.sleepers = []
        cls.addClassCleanup(cls.stop_sleepers)

        # the ordinary function
        s.deploy_ok("echo", harness.py_hello_package(), handler="handler.echo")
        cls.deployed.add("echo")
        s.invoke_ok("echo", {"warm": 1})
        pid = s.info("echo")["instances"][0]["pid"]
        uids = proc_uids(pid)
        if uids is None or 0 in uids:
            raise AssertionError("sandbox not in force: instance %d of 'echo' runs with uids %r"
                                 % (pid, uids))

        # the host, as it must stay
        cls.zygotes = {}
        for rt in s.runtimes():
            cls.zygotes[rt["name"]] = (rt["pid"], proc_stat(rt["pid"])[2])
        cls.marker_path = os.path.join(s.dir, "outside-marker")
        with open(cls.marker_path, "w") as f:
            f.write(MARKER)
        cls.shadow_sha = sha256_file("/etc/shadow")
        cls.host_paths_absent = [p for p in ("/x", "/etc/x", "/usr/x", "/dev/x")
                                 if not os.path.lexists(p)]
        cls.root_sleeper = cls.start_sleeper(None)

    @classmethod
    def start_sleeper(cls, uid):
        """A `sleep` of the host, as root or as uid (and gid uid): kill(-1) in an instance must
        not reach it."""
        def drop():
            if uid is not None:
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
        p = subprocess.Popen(["/bin/sleep", "600"], preexec_fn=drop, stdin=subprocess.DEVNULL)
        cls.sleepers.append(p)
        return p

    @classmethod
    def stop_sleepers(cls):
        for p in cls.sleepers:
            if p.poll() is None:
                p.kill()
            p.wait(5)

    @classmethod
    def tearDownClass(cls):
        if cls.summary:
            print("\nhostile summary (runtime, attack, status, kind, detail):")
            for line in cls.summary:
                print("  " + line)
        super().tearDownClass()

    # -- helpers ---------------------------------------------------------------------------

    def deploy_attack(self, runtime, attack, name=None, **fields):
        name = name or fn_name(runtime, attack)
        if runtime == "python3":
            with open(os.path.join(HOSTILE_DIR, "python3", attack + ".py")) as f:
                source = f.read()
            with open(os.path.join(HOSTILE_DIR, "python3", "hostile_common.py")) as f:
                common = f.read()
            code = harness.py_package(source, module=attack, extra={"hostile_common.py": common})
            handler = attack + ".handler"
        else:
            with open(os.path.join(HOSTILE_NATIVE_DIR, attack + ".so"), "rb") as f:
                code = harness.tar_gz_files({attack + ".so": f.read()})
            handler = attack + ".so:handler"
        self.spored.deploy_ok(name, code, runtime=runtime, handler=handler, **fields)
        self.deployed.add(name)
        return name

    def instance_pids(self, name):
        try:
            return [i["pid"] for i in self.spored.info(name)["instances"] if i.get("pid")]
        except AssertionError:
            return []

    def remember(self, name):
        """Notes the host pids of name's instances and everything below them."""
        seen = {}
        for pid in self.instance_pids(name):
            for p in [pid] + harness.descendants(pid):
                st = proc_stat(p)
                if st is not None:
                    seen[p] = st[2]
        self.seen.update(seen)
        return seen

    def echo_once(self, tag):
        s = self.spored
        probe = {"probe": tag, "n": [1, 2, 3], "s": "x" * 100}
        t0 = time.monotonic()
        try:
            r = s.invoke("echo", probe, timeout=ECHO_MAX_S + 5)
        except OSError as ex:
            self.fail("echo during %s: %r\n%s" % (tag, ex, s.log_tail(30)))
        took = time.monotonic() - t0
        self.assertStatus(r, 200, msg="echo during %s" % tag)
        self.assertEqual(r.json(), probe, "echo during %s answered the wrong body" % tag)
        self.assertLess(took, ECHO_MAX_S, "echo during %s took %.2f s" % (tag, took))
        return took

    def attack(self, name, event, timeout=60, watch=None):
        """Invokes name with event from another thread; meanwhile this thread invokes echo
        (at least twice, and until the attack is answered) and notes the attack's processes.
        Returns (response, [echo latencies], most processes seen below the instance)."""
        box = {}

        def run():
            try:
                box["r"] = self.spored.invoke(name, event, timeout=timeout)
            except BaseException as ex:  # reported below
                box["ex"] = ex
        t = threading.Thread(target=run, daemon=True)
        t.start()
        lat, most = [], 0
        i = 0
        while True:
            time.sleep(0.05)
            seen = self.remember(name)
            most = max(most, len(seen))
            if watch:
                watch()
            lat.append(self.echo_once("%s#%d" % (name, i)))
            i += 1
            if not t.is_alive() and i >= 2:
                break
        t.join(timeout)
        if "ex" in box:
            self.fail("invoke %s: %r\n%s" % (name, box["ex"], self.spored.log_tail(30)))
        return box["r"], lat, most

    def host_check(self, what):
        s = self.spored
        self.assertTrue(s.running(), "spored died during %s\n%s" % (what, s.log_tail()))
        self.assertStatus(s.tcp("GET", "/healthz", timeout=5), 200, msg="healthz after " + what)
        self.assertStatus(s.api("GET", "/healthz", timeout=5), 200, msg="api healthz after " + what)
        for rt in s.runtimes():
            pid, start = self.zygotes[rt["name"]]
            self.assertEqual(rt["pid"], pid, "zygote %s replaced during %s" % (rt["name"], what))
            self.assertTrue(proc_alive(pid, start), "zygote %s died during %s" % (rt["name"], what))
        for p in self.sleepers:
            self.assertIsNone(p.poll(), "host sleeper %d died during %s" % (p.pid, what))
        with open(self.marker_path) as f:
            self.assertEqual(f.read(), MARKER, "marker file changed during " + what)
        self.assertEqual(sha256_file("/etc/shadow"), self.shadow_sha, "/etc/shadow changed")
        for p in self.host_paths_absent:
            self.assertFalse(os.path.lexists(p), "%s appeared on the host during %s" % (p, what))

    def record(self, runtime, attack, resp, lat, extra=""):
        kind, detail = describe(resp)
        line = "%-7s %-16s -> %d %-14s %s%s (echo max %.0f ms)" % (
            runtime, attack, resp.status, kind, detail, (" " + extra) if extra else "",
            max(lat) * 1000 if lat else 0)
        print("hostile: " + line)
        sys.stdout.flush()
        self.summary.append(line)

    def results(self, resp, n=None):
        self.assertStatus(resp, 200)
        j = resp.json()
        self.assertIsInstance(j, dict, resp)
        res = j.get("results")
        self.assertIsInstance(res, list, resp)
        if n is not None:
            self.assertEqual(len(res), n, resp)
        return {r["what"]: r for r in res}

    def assertRefused(self, r, errnos, msg=""):
        if isinstance(errnos, int):
            errnos = (errnos,)
        self.assertFalse(r.get("ok"), "%s%r succeeded" % (msg, r))
        self.assertIn(r.get("errno"), errnos, "%s%r: expected %s" % (
            msg, r, "/".join(errname(e) for e in errnos)))

    # -- attacks (each runs for both runtimes, see the end of the file) ---------------------

    def check_fork_bomb(self, rt):
        s = self.spored
        # a whole core: the limit under test is pids_max, and a bomb throttled to its memory's
        # CPU share on a loaded host can spend its 2 s short of it
        name = self.deploy_attack(rt, "fork_bomb", memory_mb=512, timeout_ms=10000,
                                  cpu_millis=1000)
        s.invoke_ok(name, {"seconds": 0})
        # The kernel's own count, sampled: a walk of /proc is not atomic, and while the bomb
        # refills freed slots one walk can see a process that exited and its successor.
        pids_dir = cgroup_dirs().get("pids")
        inst = s.info(name)["instances"][0]["id"]
        current = os.path.join(pids_dir, self.cgroup_name, "fn-" + name, inst,
                               "pids.current") if pids_dir else None
        peak = [0]

        def sample():
            try:
                with open(current) as f:
                    peak[0] = max(peak[0], int(f.read()))
            except (OSError, TypeError, ValueError):
                pass
        r, lat, most = self.attack(name, {"seconds": 2.0}, watch=sample if current else None)
        j = r.json() if r.status == 200 else {}
        self.record(rt, "fork_bomb", r, lat, "forked %s failed %s, at most %d processes seen "
                    "from the host" % (j.get("forked"), j.get("failed"), most))
        self.assertIn(r.status, (200, 502, 504), r)
        if current:
            self.assertGreater(peak[0], 0, "never read %s" % current)
            self.assertLessEqual(peak[0], PIDS_MAX_DEFAULT,
                                 "pids_max did not hold: pids.current %d" % peak[0])
        # allow for the walk's skew (see above), not for a limit that does not hold
        self.assertLessEqual(most, PIDS_MAX_DEFAULT + 4, "pids_max did not hold: %d processes" % most)
        self.assertGreater(most, 8, "the bomb never got going (%d processes)" % most)
        if r.status == 200:
            j = r.json()
            # the bomb hit the limit: our own forks failed, or (when the throttled parent got
            # little CPU and its children took every slot) the namespace was full
            # (the kernel's pids.current peak counts too: on a loaded 2-core host the bomb's
            # own /proc walk and ours can both miss the moment it was full)
            self.assertTrue(j["failed"] > 0 or
                            max(most, j["max_procs"], peak[0]) >= PIDS_MAX_DEFAULT - 8,
                            "the bomb never reached pids_max: %r, %d seen" % (j, most))
            if j["failed"]:
                self.assertEqual(j["errno"], errno.EAGAIN, j)
            self.assertLessEqual(j["max_procs"], PIDS_MAX_DEFAULT, j)
            self.assertEqual(j["left"], 1, "bomb children left in the instance: %r" % j)
        else:
            self.assertStatus(r, r.status, {502: "crashed", 504: "timeout"}.get(r.status))

        def bomb_left():
            return [p for pid in self.instance_pids(name) for p in harness.descendants(pid)]
        self.assertTrue(harness.wait_for(lambda: not bomb_left(), 3),
                        "processes of the bomb left: %r" % bomb_left())
        s.invoke_ok(name, {"seconds": 0})
        self.host_check("fork_bomb")

    def check_memory(self, rt):
        s = self.spored
        name = self.deploy_attack(rt, "memory", memory_mb=128, timeout_ms=20000)
        s.invoke_ok(name, {"mb": 1})
        old = set(self.instance_pids(name))
        r, lat, _ = self.attack(name, {"mb": 512})
        self.record(rt, "memory", r, lat)
        self.assertError(r, 502, "out_of_memory")
        self.assertIn("ran out of memory", s.log(), "spored's log does not say so")
        r2 = s.invoke_ok(name, {"mb": 1})
        self.assertEqual(r2.json()["allocated_mb"], 1)
        self.assertFalse(set(self.instance_pids(name)) & old, "the OOM-killed instance is listed")
        self.host_check("memory")

    def check_spin(self, rt):
        s = self.spored
        name = self.deploy_attack(rt, "spin", timeout_ms=1000)
        s.invoke_ok(name, {"spin": False})
        old = set(self.instance_pids(name))
        self.assertEqual(len(old), 1)
        procs = {}

        def watch():
            # only the instance that runs the attack and what it forks: the autoscaler may
            # start a replacement once it is killed, which must stay
            for pid in old:
                st = proc_stat(pid)
                if st is not None:
                    procs[pid] = st[2]
                for c in harness.descendants(pid):
                    st = proc_stat(c)
                    if st is not None:
                        procs[c] = st[2]
        t0 = time.monotonic()
        r, lat, _ = self.attack(name, {"spin": True, "child": True}, watch=watch)
        took = time.monotonic() - t0
        self.record(rt, "spin", r, lat, "after %.2f s, %d procs" % (took, len(procs)))
        self.assertError(r, 504, "timeout")
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 5.0)
        self.assertGreaterEqual(len(procs), 2, "the spinning child was never seen: %r" % procs)
        self.assertTrue(harness.wait_for(
            lambda: not any(proc_alive(p, st) for p, st in procs.items()), 3),
            "processes of the timed-out instance left: %r" % [
                harness.proc_describe(p) for p, st in procs.items() if proc_alive(p, st)])
        r2 = s.invoke_ok(name, {"spin": False})
        self.assertEqual(r2.json()["ok"], True)
        new = set(self.instance_pids(name))
        self.assertTrue(new)
        self.assertFalse(new & old, "the timed-out instance is still listed")
        self.host_check("spin")

    def check_fill_tmp(self, rt):
        name = self.deploy_attack(rt, "fill_tmp", tmp_mb=8)
        r, lat, _ = self.attack(name, {"mb": 64})
        self.record(rt, "fill_tmp", r, lat)
        self.assertStatus(r, 200)
        j = r.json()
        self.assertRefused(j, errno.ENOSPC)
        self.assertLessEqual(j["written"], 8 * MiB, j)
        self.assertGreaterEqual(j["written"], 4 * MiB, j)
        self.assertLessEqual(j["tmp_size"], 8 * MiB, j)
        # /tmp is emptied by the handler: the next fill gets as far again
        self.assertEqual(self.spored.invoke_ok(name, {"mb": 1}).json()["errno"], 0)
        self.host_check("fill_tmp")

    def check_read_shadow(self, rt):
        name = self.deploy_attack(rt, "read_shadow")
        r, lat, _ = self.attack(name, None)
        self.record(rt, "read_shadow", r, lat)
        res = self.results(r, 4)
        for p in ("/etc/shadow", "/etc/gshadow", "/etc/sudoers"):
            self.assertRefused(res[p], (errno.ENOENT, errno.EACCES))
        self.assertRefused(res["/root"], errno.ENOENT)
        try:
            with open("/etc/shadow") as f:
                lines = [ln.strip() for ln in f if ln.strip()]
        except OSError:
            lines = []
        body = r.body.decode("utf-8", "replace")
        for ln in lines:
            self.assertNotIn(ln, body, "a line of the host's /etc/shadow came back")
        self.host_check("read_shadow")

    def check_read_state(self, rt):
        s = self.spored
        name = self.deploy_attack(rt, "read_state")
        paths = [s.state_dir, os.path.join(s.state_dir, "functions"), s.function_dir("echo"),
                 os.path.join(s.function_dir("echo"), "versions", "1", "code", "handler.py"),
                 s.conf_path, s.log_path, s.dir, self.sandbox_dir, self.marker_path]
        r, lat, _ = self.attack(name, {"paths": paths})
        self.record(rt, "read_state", r, lat)
        res = self.results(r, len(paths))
        for p in paths:
            self.assertRefused(res[p], (errno.ENOENT, errno.EACCES), "%s: " % p)
        self.assertNotIn(MARKER, r.body.decode("utf-8", "replace"))
        self.host_check("read_state")

    def check_read_other_code(self, rt):
        s = self.spored
        secret = "victim-secret-" + secrets.token_hex(8)
        victim = fn_name(rt, "victim")
        s.deploy_ok(victim, harness.py_package(
            "SECRET = %r\ndef main(event, context):\n    return {'ok': True}\n" % secret,
            extra={"secret.txt": secret}))
        self.deployed.add(victim)
        s.invoke_ok(victim, {})
        vpid = self.instance_pids(victim)[0]
        code = os.path.join(s.function_dir(victim), "versions", "1", "code")
        self.assertTrue(os.path.isfile(os.path.join(code, "secret.txt")), code)
        name = self.deploy_attack(rt, "read_other_code")
        paths = [code, os.path.join(code, "secret.txt"), os.path.join(code, "fn.py"),
                 "/proc/%d/root/var/task/secret.txt" % vpid, "/proc/%d/environ" % vpid,
                 "/proc/%d/cwd/secret.txt" % vpid]
        r, lat, _ = self.attack(name, {"paths": paths})
        self.record(rt, "read_other_code", r, lat)
        res = self.results(r, len(paths))
        for p in paths:
            self.assertRefused(res[p], (errno.ENOENT, errno.EACCES), "%s: " % p)
        self.assertNotIn(secret, r.body.decode("utf-8", "replace"))
        self.host_check("read_other_code")

    def check_proc_environ(self, rt):
        s = self.spored
        name = self.deploy_attack(rt, "proc_environ")
        zpid = self.zygotes[rt][0]
        paths = ["/proc/1/environ", "/proc/self/environ", "/proc/1/cmdline",
                 "/proc/%d/environ" % s.pid, "/proc/%d/environ" % zpid]
        r, lat, _ = self.attack(name, {"paths": paths})
        res = self.results(r, len(paths) + 1)
        own, mem = res["/proc/1/environ"], res["memory:env_start..env_end"]
        self.record(rt, "proc_environ", r, lat, "/proc/1/environ: %s; own initial env: %s" % (
            "read, %d bytes" % len(own.get("data", "")) if own["ok"] else errname(own["errno"]),
            "%d bytes%s" % (len(mem.get("data", "")),
                            ", has the host marker" if MARKER in mem.get("data", "") else "")
            if mem["ok"] else errname(mem["errno"])))
        for p in paths[3:]:
            self.assertRefused(res[p], (errno.ENOENT, errno.EACCES), "%s (a host pid): " % p)
        try:
            with open("/proc/1/environ", "rb") as f:
                host_init = f.read().replace(b"\0", b"\n").decode("utf-8", "replace")
        except OSError:
            host_init = ""
        if own["ok"] and host_init.strip():
            self.assertNotEqual(own["data"], host_init, "the host init's environment came back")
        self.host_check("proc_environ")
        # Last, so that the checks above run whatever this says. An instance is forked from its
        # zygote without an exec: the strings the zygote was exec'd with (spored's environment,
        # unless spored spawns it with a clean one) stay in the instance's memory, at env_start..
        # env_end of its own /proc/self/stat, after clearenv().
        self.assertNotIn(MARKER, r.body.decode("utf-8", "replace"),
                         "the host's environment (%s, set in spored's and so in the zygote's "
                         "exec environment) came back from an instance: %s" % (
                             MARKER_VAR, [w for w, o in res.items() if MARKER in o.get("data", "")]))

    def check_write_outside(self, rt):
        s = self.spored
        name = self.deploy_attack(rt, "write_outside")
        r, lat, _ = self.attack(name, None)
        self.record(rt, "write_outside", r, lat)
        res = self.results(r, 5)
        for p in ("/var/task/x", "/etc/x", "/x", "/usr/x"):
            self.assertRefused(res[p], errno.EROFS, "%s: " % p)
        self.assertRefused(res["/dev/x"], (errno.EROFS, errno.EACCES), "/dev/x: ")
        code = os.path.join(s.function_dir(name), "versions", "1", "code")
        self.assertTrue(os.path.isdir(code), code)
        self.assertFalse(os.path.lexists(os.path.join(code, "x")), "x written into the code dir")
        self.host_check("write_outside")

    def check_connect_spored(self, rt):
        s = self.spored
        name = self.deploy_attack(rt, "connect_spored")
        r, lat, _ = self.attack(name, {"port": s.port, "unix": s.api_socket, "egress": "1.1.1.1"})
        self.record(rt, "connect_spored", r, lat)
        res = self.results(r, 3)
        self.assertRefused(res["tcp:127.0.0.1:%d" % s.port], errno.ECONNREFUSED, "spored's port: ")
        self.assertRefused(res["unix:" + s.api_socket], errno.ENOENT, "spored's API socket: ")
        self.assertRefused(res["tcp:1.1.1.1:53"], (errno.ENETUNREACH, errno.EHOSTUNREACH),
                           "egress: ")
        self.host_check("connect_spored")

    def check_abstract_socket(self, rt):
        s = self.spored
        sock = "spore-hostile-" + secrets.token_hex(6)
        binder = self.deploy_attack(rt, "abstract_socket", name=fn_name(rt, "abs-bind"))
        j = s.invoke_ok(binder, {"action": "bind", "name": sock}).json()
        self.assertTrue(j["ok"] and j["listening"], j)
        # the name works inside the binder's own network namespace...
        j = s.invoke_ok(binder, {"action": "check", "name": sock}).json()
        self.assertTrue(j["ok"], "the binder cannot reach its own socket: %r" % j)
        # ...and not from another function's
        name = self.deploy_attack(rt, "abstract_socket")
        r, lat, _ = self.attack(name, {"action": "connect", "name": sock})
        self.record(rt, "abstract_socket", r, lat)
        self.assertStatus(r, 200)
        self.assertRefused(r.json(), errno.ECONNREFUSED)
        # nor from the host's
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(2)
            with self.assertRaises(ConnectionRefusedError):
                c.connect("\0" + sock)
        j = s.invoke_ok(binder, {"action": "check", "name": sock}).json()
        self.assertTrue(j["ok"] and j["listening"], "the binder's socket went away: %r" % j)
        self.host_check("abstract_socket")

    def check_kill_all(self, rt):
        s = self.spored
        name = self.deploy_attack(rt, "kill_all")
        s.invoke_ok(name, {"dry": True})
        pid = self.instance_pids(name)[0]
        uids = proc_uids(pid)
        self.assertTrue(uids and uids[0] >= SANDBOX_UID_MIN, uids)
        same_uid = self.start_sleeper(uids[0])
        others = {}
        for fn in ("echo", name):
            for p in self.instance_pids(fn):
                others[p] = proc_stat(p)[2]
        time.sleep(0.05)
        self.assertIsNone(same_uid.poll())
        r, lat, _ = self.attack(name, {})
        self.record(rt, "kill_all", r, lat)
        self.assertStatus(r, 200)
        j = r.json()
        self.assertTrue(j["ok"], j)
        self.assertTrue(j["child_killed"], "kill(-1) did not reach the instance's own child: %r" % j)
        self.assertEqual(j["getpid"], 1, j)
        time.sleep(0.1)
        self.assertIsNone(same_uid.poll(), "kill(-1) in an instance killed a host process of "
                          "the function's uid %d" % uids[0])
        for p, st in others.items():
            self.assertTrue(proc_alive(p, st), "kill(-1) killed instance %d" % p)
        self.assertEqual(s.invoke_ok(name, {"dry": True}).json()["ok"], True)
        self.host_check("kill_all")

    def check_eperm(self, rt, attack, n):
        name = self.deploy_attack(rt, attack)
        r, lat, _ = self.attack(name, None)
        self.record(rt, attack, r, lat)
        res = self.results(r, n)
        for what, one in res.items():
            self.assertRefused(one, errno.EPERM, "%s: " % what)
        self.host_check(attack)

    def check_ptrace(self, rt):
        self.check_eperm(rt, "ptrace", 4)

    def check_mount(self, rt):
        self.check_eperm(rt, "mount", 4)

    def check_userns(self, rt):
        self.check_eperm(rt, "userns", 4)

    def check_bpf(self, rt):
        self.check_eperm(rt, "bpf", 3)

    def check_setuid_exec(self, rt):
        name = self.deploy_attack(rt, "setuid_exec")
        r, lat, _ = self.attack(name, None)
        res = self.results(r, 3)
        self.record(rt, "setuid_exec", r, lat, " ".join(
            "%s:%s" % (os.path.basename(w), ("uid " + o["uid"].split()[1] + " exit %d" % o["exit"])
                       if o["ok"] else errname(o["errno"])) for w, o in res.items()))
        j = r.json()
        self.assertNotEqual(j["uid"], 0)
        self.assertNotEqual(j["euid"], 0)
        self.assertFalse(j["tmp_y_mounted"], "a setuid mount mounted something: %r" % j)
        for what, o in res.items():
            if not o["ok"]:
                self.assertIn(o["errno"], (errno.EPERM, errno.EACCES, errno.ENOENT), o)
                continue
            ids = o["uid"].split() + o["gid"].split()
            self.assertEqual(len(ids), 8, "no ids seen for the exec'd %s: %r" % (what, o))
            self.assertNotIn("0", ids, "%s gained root: %r" % (what, o))
        mnt = res["/usr/bin/mount"]
        if mnt["ok"]:
            self.assertNotEqual(mnt["exit"], 0, "mount -t tmpfs succeeded: %r" % mnt)
        self.host_check("setuid_exec")

    def check_open_files(self, rt):
        s = self.spored
        name = self.deploy_attack(rt, "open_files")
        fds_before = harness.fd_count(s.pid)
        r, lat, _ = self.attack(name, {"n": 100000})
        self.record(rt, "open_files", r, lat)
        self.assertStatus(r, 200)
        j = r.json()
        self.assertRefused(j, errno.EMFILE)
        self.assertLessEqual(j["opened"], NOFILE_DEFAULT, j)
        self.assertEqual(j["opened"] + j["failed"], 100000, j)
        self.assertNotEqual(j["setrlimit_errno"], 0, "RLIMIT_NOFILE could be raised: %r" % j)
        self.assertLessEqual(j["nofile"], NOFILE_DEFAULT, j)
        self.assertLess(harness.fd_count(s.pid), fds_before + 64, "spored's fds grew")
        self.host_check("open_files")

    # -- last: nothing left ----------------------------------------------------------------

    def test_instance_cgroups(self):
        """An instance of 'echo' is in its function's cgroup in every v1 hierarchy, and in the
        v2 tree in the cgroup its zygote cloned it into (CLONE_INTO_CGROUP: pool-python3/i-...),
        which no other process shares."""
        s = self.spored
        s.invoke_ok("echo", {"warm": 2})
        pid = s.info("echo")["instances"][0]["pid"]
        with open("/proc/%d/cgroup" % pid) as f:
            lines = dict(l.rstrip("\n").split(":", 2)[1:] for l in f)
        own = {}
        with open("/proc/self/cgroup") as f:
            for l in f:
                _, ctrls, path = l.rstrip("\n").split(":", 2)
                own[ctrls] = path
        base = {k: os.path.join(v, self.cgroup_name) for k, v in own.items()}
        for ctrls in ("memory", "pids"):
            if ctrls in lines:
                self.assertTrue(lines[ctrls].startswith(base[ctrls] + "/fn-echo/i-"),
                                "%s: %r" % (ctrls, lines[ctrls]))
        # its command line names no host path (the zygote's argv is blanked in the child)
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read()
        self.assertEqual(cmdline.rstrip(b"\0"), b"spore-instance", cmdline[:200])
        v2 = lines.get("")
        self.assertTrue(v2 and v2.startswith(base[""] + "/pool-python3/i-"), "v2: %r" % v2)
        unified = cgroup_dirs().get("unified")
        if unified:
            with open(os.path.join(unified, self.cgroup_name, v2[len(base[""]) + 1:],
                                   "cgroup.procs")) as f:
                self.assertEqual(f.read().split(), [str(pid)])

    @staticmethod
    def spare_process(pid, zpids):
        """A spare waiting in a zygote: a child of a zygote running as root (python3, native,
        exec), or a nodejs spare: a node process started ahead of demand as a spare uid of its
        own (runtime-nodejs.c SPARE_UID_BASE..+2^24), with its root helper (spore-node-init,
        uid 0) as its only child."""
        st, uids = proc_stat(pid), proc_uids(pid)
        if st is None or uids is None:
            return False
        if st[1] in zpids:
            return all(u == 0 for u in uids) or all(NODE_SPARE_UID <= u < NODE_SPARE_UID + (1 << 24)
                                                    for u in uids)
        pst, puids = proc_stat(st[1]), proc_uids(st[1])
        return (all(u == 0 for u in uids) and pst is not None and pst[1] in zpids and
                puids is not None and
                all(NODE_SPARE_UID <= u < NODE_SPARE_UID + (1 << 24) for u in puids))

    @staticmethod
    def spare_cgroup(path, rel, zpids):
        """The zygotes clone every spare into a cgroup of their pool (pool-RUNTIME/i-...):
        the pool may stay, and so may a cgroup that holds exactly one spare (with a nodejs
        spare's helper); an empty one or one holding anything else is a leftover."""
        parts = rel.split("/")
        if not parts[0].startswith("pool-"):
            return False
        if len(parts) == 1:
            return True
        try:
            with open(os.path.join(path, "cgroup.procs")) as f:
                pids = [int(x) for x in f.read().split()]
        except OSError:
            return False
        if len(parts) != 2 or not 1 <= len(pids) <= 2:
            return False
        return all(TestHostile.spare_process(p, zpids) for p in pids)

    def test_zz_cleanup(self):
        s = self.spored
        cg = cgroup_dirs()
        self.assertTrue(cg, "no cgroup hierarchy found for the test runner")
        tops = {k: os.path.join(d, self.cgroup_name) for k, d in cg.items()}
        used = {k: t for k, t in tops.items() if os.path.isdir(t)}
        self.assertTrue(any(any(d.startswith("fn-") for d in subdirs(t)) for t in used.values()),
                        "spored's cgroup subtree %s has no function cgroups while functions "
                        "exist: %r" % (self.cgroup_name, {k: subdirs(t) for k, t in used.items()}))
        for name in sorted(self.deployed):
            self.assertStatus(s.api("DELETE", "/v1/functions/" + name), 204, msg="DELETE " + name)
        self.assertEqual(s.api("GET", "/v1/functions").json()["functions"], [])
        zpids = {pid for pid, _ in self.zygotes.values()}

        def leftovers():
            out = []
            for p, st in self.seen.items():
                if proc_alive(p, st):
                    out.append("instance process " + harness.proc_describe(p))
            for z in zpids:
                for c in harness.descendants(z):
                    st = proc_stat(c)
                    if st is None or st[0] in "ZX":
                        continue
                    if self.spare_process(c, zpids):
                        continue
                    if st[1] not in zpids:
                        out.append("grandchild of a zygote " + harness.proc_describe(c))
                    else:
                        out.append("child of a zygote running as %r (an instance, not a spare) %s"
                                   % (proc_uids(c), harness.proc_describe(c)))
            for k, t in used.items():
                for d in cgroup_tree(t):
                    if self.spare_cgroup(os.path.join(t, d), d, zpids):
                        continue
                    out.append("cgroup %s/%s (%s)" % (t, d, k))
            return out
        left = harness.wait_for(lambda: not leftovers(), 5, 0.1)
        self.assertTrue(left, "left after DELETE of every function:\n  " + "\n  ".join(leftovers()))
        # spares (uid 0, children of the zygotes, in no function's cgroup) may stay: count them
        spares = sum(1 for z in zpids for c in harness.descendants(z)
                     if proc_stat(c) is not None and proc_stat(c)[1] in zpids)
        self.assertLessEqual(spares, 2 * len(zpids), "more spares than zygote_spares (2)")
        with open("/proc/self/mountinfo") as f:
            mounts = [ln.strip() for ln in f if self.sandbox_dir in ln or s.state_dir in ln
                      or self.cgroup_name in ln]
        self.assertEqual(mounts, [], "mounts of spore on the host")
        s.stop()  # checks that spored, its zygotes and their spares exit
        after = {k: t for k, t in used.items() if os.path.isdir(t)}
        for k, t in after.items():
            self.assertEqual(cgroup_tree(t), [], "cgroups left below %s after spored stopped" % t)
        print("hostile: cleanup: %d functions deleted, %d instance processes seen (all gone), "
              "%d spares kept while running, cgroup %s in %s; top dir %s after stop" % (
                  len(self.deployed), len(self.seen), spares, self.cgroup_name,
                  ",".join(sorted(used)), "kept (empty)" if after else "removed"))


ATTACKS = ["fork_bomb", "memory", "spin", "fill_tmp", "read_shadow", "read_state",
           "read_other_code", "proc_environ", "write_outside", "connect_spored",
           "abstract_socket", "kill_all", "ptrace", "mount", "userns", "bpf", "setuid_exec",
           "open_files"]


def _make_test(attack, runtime):
    def test(self):
        getattr(self, "check_" + attack)(runtime)
    test.__name__ = "test_%s_%s" % (runtime, attack)
    test.__doc__ = "%s: %s" % (runtime, attack)
    return test


for _attack in ATTACKS:
    for _rt in RUNTIMES:
        _t = _make_test(_attack, _rt)
        setattr(TestHostile, _t.__name__, _t)


def main():
    """harness.main(): 77 only when not root or not run through meson."""
    if os.geteuid() != 0:
        print("skipped: the integration tests need root (spored forks zygotes and instances)")
        sys.exit(77)
    missing = [v for v in ("SPORED", "SPORE_RUNTIME_DIR", "EXAMPLES_DIR", "HOSTILE_DIR",
                           "HOSTILE_NATIVE_DIR") if not os.environ.get(v)]
    if missing:
        print("skipped: %s not set; run through `meson test --suite integration`" %
              ", ".join(missing))
        sys.exit(77)
    prog = unittest.main(verbosity=2, exit=False)
    sys.exit(0 if prog.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
