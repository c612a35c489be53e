# SPDX-License-Identifier: MIT
"""Faults (issue 7), each against a real spored, asserting what the clients saw and that nothing
was lost:
  - spored killed with -9 under load (invocations, deploys and asynchronous events in flight) and
    started again: every deployed function and acknowledged deploy is there and serves, every
    accepted event is known, the dead spored's cgroups and BPF pins are replaced, no mount is
    left; the clients saw errors for what was in flight, never a wrong answer;
  - the python3 zygote killed: invocations running on its instances end 502 crashed (instances
    are the zygote's children and die with it, PR_SET_PDEATHSIG), without hanging; invocations
    that arrive meanwhile wait for the new zygote and succeed, also those whose spawn request
    the dying zygote had already been sent;
  - an instance killed mid-invocation: 502 crashed for that invocation only;
  - the state dir's disk full (a 2 MiB tmpfs): 507 insufficient_storage, the previous versions
    serve, nothing is corrupt across a restart, deploys work again once space is freed;
  - out of file descriptors (spored started with RLIMIT_NOFILE 1024) and out of memory (a low
    RLIMIT_AS soft limit set on the running spored): new work is refused with 503 (or the
    connection closed), work in progress goes on, and spored recovers when the load goes."""

import http.client
import json
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import harness
from harness import (MiB, Spored, SporeTestCase, cgroup_dirs, fnv1a32, py_package,
                     request_bytes, sha256_hex)

ECHO = """
import time
def main(event, context):
    if isinstance(event, dict) and event.get("sleep"):
        time.sleep(event["sleep"])
    return event
"""

TAGGED = """
TAG = %r
def main(event, context):
    return {"tag": TAG, "event": event}
"""

CONNECTION_ERRORS = (OSError, EOFError, http.client.HTTPException)

_T0 = time.monotonic()


def tearDownModule():
    print("\nfaults: total %.1f s" % (time.monotonic() - _T0))


def cgroup_snapshot(name):
    """{(hierarchy, relative path): inode} of every cgroup below spored's subtree `name`."""
    out = {}
    for label, d in cgroup_dirs().items():
        top = os.path.join(d, name)
        for root, dirs, _ in os.walk(top):
            for x in dirs:
                p = os.path.join(root, x)
                try:
                    out[(label, os.path.relpath(p, top))] = os.stat(p).st_ino
                except OSError:
                    pass
    return out


def dir_inodes(path):
    try:
        return {n: os.stat(os.path.join(path, n)).st_ino for n in os.listdir(path)}
    except OSError:
        return {}


def host_mounts(*markers):
    with open("/proc/self/mountinfo") as f:
        return [ln.strip() for ln in f if any(m in ln for m in markers)]


def linger0(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def close_all(socks):
    for s in socks:
        try:
            linger0(s)
        except OSError:
            pass
        s.close()


def cgroup_procs(path):
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def remove_leftovers(s):
    """After s is destroyed: what a spored killed by a test that then failed may have left, its
    cgroups (any process still in one is killed by pid) and its BPF pins."""
    name = "spore-%08x" % fnv1a32(s.state_dir)
    for d in cgroup_dirs().values():
        top = os.path.join(d, name)
        for root, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            for pid in cgroup_procs(root):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            harness.wait_for(lambda: not cgroup_procs(root), 2, 0.05)
            try:
                os.rmdir(root)
            except OSError:
                pass
    pin_dir = s.config.get("bpf_pin_dir")
    if pin_dir and os.path.isdir(pin_dir):
        for n in os.listdir(pin_dir):
            try:
                os.unlink(os.path.join(pin_dir, n))
            except OSError:
                pass
        try:
            os.rmdir(pin_dir)
        except OSError:
            pass


def start_spored(test, config=None, cls=Spored, workdir=None, **start_kw):
    """A spored for one test with its sandbox dir inside its own directory (so that a mount of
    it would show); destroyed (stopped, orphans checked, directory removed) by a cleanup, after
    which whatever a killed spored left is removed."""
    s = cls(config, workdir=workdir)
    s.config["sandbox_dir"] = os.path.join(s.dir, "sandbox")
    s.write_config()
    test.addCleanup(remove_leftovers, s)
    test.addCleanup(s.destroy)
    s.start(**start_kw)
    return s


def wait_busy(s, name, n, timeout=10):
    """The instances of name once n of them are busy."""
    def busy():
        insts = s.info(name)["instances"]
        return insts if sum(1 for i in insts if i["state"] == "busy") >= n else None
    got = harness.wait_for(busy, timeout, 0.02)
    if not got:
        raise AssertionError("%d instances of %s not busy within %s s: %r" % (
            n, name, timeout, s.info(name)["instances"]))
    return got


class Invoker(threading.Thread):
    """Invokes name with event (on a new connection), keeping the answer or the exception and
    the time it took."""

    def __init__(self, s, name, event, timeout=30):
        super().__init__(daemon=True)
        self.s, self.name, self.event, self.timeout = s, name, event, timeout
        self.resp = self.exc = None
        self.start()

    def run(self):
        t0 = time.monotonic()
        try:
            self.resp = self.s.invoke(self.name, self.event, timeout=self.timeout)
        except CONNECTION_ERRORS as ex:
            self.exc = ex
        self.ended = time.monotonic()
        self.took = self.ended - t0

    def outcome(self):
        self.join(self.timeout + 10)
        if self.is_alive():
            return "hung"
        if self.exc is not None:
            return repr(self.exc)
        return self.resp


class FaultCase(SporeTestCase):
    def stats(self, name):
        r = self.spored.api("GET", "/v1/functions/%s/stats" % name)
        self.assertStatus(r, 200)
        return r.json()


# -------------------------------------------------------------------------------------------


class TestKill9UnderLoad(FaultCase):
    def test_kill9_under_load(self):
        self.spored = s = start_spored(self)
        cg_name = "spore-%08x" % fnv1a32(s.state_dir)
        pin_dir = s.config["bpf_pin_dir"]
        s.deploy_ok("echo", py_package(ECHO))
        s.deploy_ok("nat", harness.native_hello_package(), runtime="native",
                    handler=harness.native_handler("hello"))
        sent_codes = {}  # sha256 -> tag of every package sent for 'dep'
        code = py_package(TAGGED % "dep-0")
        sent_codes[sha256_hex(code)] = "dep-0"
        s.deploy_ok("dep", code)
        s.deploy_ok("later", py_package(ECHO))
        s.invoke_ok("echo", {"warm": 1})
        s.invoke_ok("nat", {"name": "warm"})

        stop = threading.Event()
        lock = threading.Lock()
        tally = {"ok": 0, "wrong": [], "errors": {}, "answers": {}}
        acked = []     # (version, sha256) of deploys answered 201
        accepted = []  # ids of events answered 202

        def note_error(ex):
            k = type(ex).__name__
            with lock:
                tally["errors"][k] = tally["errors"].get(k, 0) + 1

        def check(r, ok):
            with lock:
                if r.status == 200:
                    if ok(r):
                        tally["ok"] += 1
                    else:
                        tally["wrong"].append(r)
                else:
                    k = "%d %s" % (r.status, (r.json() or {}).get("error"))
                    tally["answers"][k] = tally["answers"].get(k, 0) + 1

        def invoker(t):
            n = 0
            while not stop.is_set():
                n += 1
                ev = {"t": t, "n": n, "r": os.urandom(6).hex(), "sleep": 0.05 if n % 3 else 0}
                try:
                    r = s.invoke("echo", ev, timeout=10)
                    check(r, lambda r: r.json() == ev)
                except CONNECTION_ERRORS as ex:
                    note_error(ex)
                    time.sleep(0.02)

        def native_invoker():
            n = 0
            while not stop.is_set():
                n += 1
                who = "n%d" % n
                try:
                    r = s.invoke("nat", {"name": who}, timeout=10)
                    check(r, lambda r: r.json().get("message") == "hello, " + who)
                except CONNECTION_ERRORS as ex:
                    note_error(ex)
                    time.sleep(0.02)

        def deployer(t):
            k = 0
            while not stop.is_set():
                k += 1
                tag = "dep-%d-%d" % (t, k)
                code = py_package(TAGGED % tag, extra={"pad.bin": os.urandom(64 * 1024)})
                sha = sha256_hex(code)
                with lock:
                    sent_codes[sha] = tag
                try:
                    r = s.deploy("dep", code)
                except CONNECTION_ERRORS as ex:
                    note_error(ex)
                    time.sleep(0.02)
                    continue
                if r.status == 201:
                    with lock:
                        acked.append((r.json()["version"], r.json()["sha256"], sha))
                else:
                    check(r, lambda r: False)

        def submitter():
            k = 0
            while not stop.is_set():
                k += 1
                try:
                    r = s.invoke("later", {"k": k}, headers={"X-Spore-Invocation-Type": "Event"},
                                 timeout=10)
                    if r.status == 202:
                        with lock:
                            accepted.append(r.json()["id"])
                    else:
                        check(r, lambda r: False)
                except CONNECTION_ERRORS as ex:
                    note_error(ex)
                time.sleep(0.05)

        threads = [threading.Thread(target=invoker, args=(t,)) for t in range(4)]
        threads += [threading.Thread(target=native_invoker)]
        threads += [threading.Thread(target=deployer, args=(t,)) for t in range(2)]
        threads += [threading.Thread(target=submitter)]
        self.addCleanup(stop.set)
        for t in threads:
            t.daemon = True
            t.start()
        time.sleep(2.0)
        with lock:
            before_kill = (tally["ok"], len(acked), len(accepted))
        cg_before = cgroup_snapshot(cg_name)
        pins_before = dir_inodes(pin_dir)
        bpf = "metering with eBPF" in s.log()
        s.kill(signal.SIGKILL)  # and: zygotes and instances are gone (orphan check)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(30)
        self.assertFalse(any(t.is_alive() for t in threads), "a load thread hung")
        print("\nfaults: kill -9 under load: before the kill %d good answers, %d deploys "
              "acknowledged, %d events accepted; in all %d good answers, other answers %r, "
              "client errors %r, wrong answers %d" % (
                  before_kill + (tally["ok"], tally["answers"], tally["errors"],
                                 len(tally["wrong"]))))
        self.assertEqual(tally["wrong"], [], "wrong answers (a body not matching its request)")
        self.assertGreater(before_kill[0], 20, "hardly any load before the kill")
        self.assertGreater(before_kill[1], 0, "no deploy acknowledged before the kill")
        self.assertGreater(before_kill[2], 0, "no event accepted before the kill")
        # nothing but connection errors after the kill, and no error answers before it
        self.assertEqual(tally["answers"], {}, "error answers under load")
        stale = {k for k in cg_before if k[1].count("/") >= 1 or k[1].startswith("fn-")}
        self.assertTrue(stale, "no instance cgroup below %s before the kill: %r" % (
            cg_name, cg_before))
        self.assertEqual(host_mounts(s.dir, cg_name), [], "host mounts of the killed spored")

        s.start()

        # the dead spored's cgroups are gone (a cgroup made again has a new inode)
        cg_after = cgroup_snapshot(cg_name)
        survivors = sorted("%s:%s" % k for k, ino in cg_before.items() if cg_after.get(k) == ino)
        self.assertEqual(survivors, [], "cgroups of the killed spored still there")
        self.assertRegex(s.log(), r"removed \d+ cgroup\(s\) left by an earlier spored")
        if bpf and pins_before:
            pins_after = dir_inodes(pin_dir)
            self.assertEqual(sorted(pins_after), sorted(pins_before), "pinned maps")
            same = [n for n, ino in pins_before.items() if pins_after.get(n) == ino]
            self.assertEqual(same, [], "BPF pins of the killed spored reused")
        self.assertEqual(host_mounts(s.dir, cg_name), [], "host mounts after the restart")
        self.assertEqual(s.tmp_entries(), [], "staging leftovers in state/tmp")

        # every function is there and serves
        names = sorted(f["name"] for f in s.api("GET", "/v1/functions").json()["functions"])
        self.assertEqual(names, ["dep", "echo", "later", "nat"])
        self.assertEqual(s.invoke_ok("echo", {"after": 1}).json(), {"after": 1})
        self.assertEqual(s.invoke_ok("nat", {"name": "after"}).json()["message"], "hello, after")
        # every acknowledged deploy is there, every version is one that was sent, whole
        info = s.info("dep")
        versions = {v["version"]: v["sha256"] for v in info["versions"]}
        for version, sha, sent_sha in acked:
            self.assertEqual(sha, sent_sha, "201 answered a different sha256")
            self.assertEqual(versions.get(version), sha, "acknowledged deploy v%d lost" % version)
        for v, sha in versions.items():
            self.assertIn(sha, sent_codes, "version %d is no package that was sent" % v)
        self.assertEqual(sorted(versions), list(range(1, len(versions) + 1)))
        self.assertEqual(sorted(s.version_dirs("dep"), key=int),
                         [str(v) for v in sorted(versions)])
        self.assertEqual(info["live_version"], max(versions))
        r = s.invoke_ok("dep", {"x": 1})
        self.assertEqual(r.json(), {"tag": sent_codes[versions[max(versions)]], "event": {"x": 1}})
        for v in (1, max(versions) // 2 or 1):
            r = s.invoke_ok("dep", {"v": v}, version=v)
            self.assertEqual(r.json()["tag"], sent_codes[versions[v]], "version %d" % v)
        # every accepted event is known, and ends (run after the restart, or a dead letter
        # 'interrupted' if it was running at the kill)
        states = {}

        def all_done():
            states.clear()
            for iid in accepted:
                r = s.api("GET", "/v1/invocations/" + iid)
                if r.status != 200:
                    states[iid] = "HTTP %d" % r.status
                    continue
                j = r.json()
                states[iid] = j["state"] if j["state"] != "failed" else "failed: %s" % (
                    (j.get("error") or {}).get("error") if isinstance(j.get("error"), dict)
                    else j.get("error"))
            return all(v == "succeeded" or v.startswith("failed") for v in states.values())
        done = harness.wait_for(all_done, 20, 0.2)
        counts = {}
        for v in states.values():
            counts[v] = counts.get(v, 0) + 1
        print("faults: kill -9 under load: after the restart: %d versions of 'dep' (%d "
              "acknowledged), events %r, stale cgroups replaced %d, pins %s" % (
                  len(versions), len(acked), counts, len(cg_before),
                  "re-pinned" if bpf and pins_before else "not in use"))
        self.assertTrue(done, "accepted events not finished 20 s after the restart: %r" % counts)
        lost = [i for i, v in states.items() if v.startswith("HTTP")]
        self.assertEqual(lost, [], "accepted events lost")


class TestZygoteKilled(FaultCase):
    def test_zygote_killed(self):
        self.spored = s = start_spored(self)
        s.deploy_ok("slow", py_package(ECHO))
        s.deploy_ok("nat", harness.native_hello_package(), runtime="native",
                    handler=harness.native_handler("hello"))
        s.invoke_ok("slow", {"warm": 1})
        s.invoke_ok("nat", {"name": "warm"})
        native_before = s.zygote_pid("native")

        # two invocations running on two instances of the python3 zygote
        running = [Invoker(s, "slow", {"sleep": 3, "i": i}) for i in range(2)]
        wait_busy(s, "slow", 2)
        zpid = s.zygote_pid("python3")
        os.kill(zpid, signal.SIGKILL)
        t_kill = time.monotonic()
        # and new ones, right away, while the zygote is down or restarting
        new = [Invoker(s, "slow", {"i": 10 + i}) for i in range(3)]
        outcomes = [(inv.outcome(), inv) for inv in running + new]
        for o, inv in outcomes[:2]:
            desc = o if isinstance(o, str) else "%d %s %.2f s after the kill" % (
                o.status, (o.json() or {}).get("error"), inv.ended - t_kill)
            print("\nfaults: zygote killed: an invocation running on its instance -> %s" % desc)
            self.assertIsInstance(o, harness.Response, "running invocation: %s" % o)
            if o.status == 200:  # unaffected, as issue 7 would have it
                self.assertEqual(o.json(), inv.event)
            else:  # its instance died with the zygote: the honest answer
                self.assertError(o, 502, "crashed", ["SIGKILL", "signal 9"])
                self.assertLess(inv.ended - t_kill, 2.5, "the crash was not noticed at once")
        for o, inv in outcomes[2:]:
            self.assertIsInstance(o, harness.Response, "new invocation: %s" % o)
            self.assertStatus(o, 200, msg="an invocation arriving while the zygote restarts")
            self.assertEqual(o.json(), inv.event)
        print("faults: zygote killed: new invocations waited %s s and succeeded" % ", ".join(
            "%.2f" % inv.took for _, inv in outcomes[2:]))
        rts = {rt["name"]: rt for rt in s.runtimes()}
        self.assertNotEqual(rts["python3"]["pid"], zpid)
        self.assertEqual(rts["python3"]["state"], "running")
        self.assertEqual(rts["python3"]["restarts"], 1)
        self.assertEqual(rts["native"]["pid"], native_before, "the native zygote was disturbed")
        self.assertEqual(s.invoke_ok("nat", {"name": "z"}).json()["message"], "hello, z")
        self.assertEqual(s.invoke_ok("slow", {"after": 1}).json(), {"after": 1})

    def test_zygote_killed_with_spawns_sent(self):
        """Spawn requests the zygote was sent but never answered (it is stopped, then killed):
        their invocations wait for the new zygote, as those that arrive later do."""
        self.spored = s = start_spored(self)
        s.deploy_ok("fresh", py_package(ECHO))  # no instance yet: invoking needs a spawn
        zpid = s.zygote_pid("python3")
        os.kill(zpid, signal.SIGSTOP)
        self.addCleanup(lambda: harness.proc_alive(zpid) and os.kill(zpid, signal.SIGKILL))
        invs = [Invoker(s, "fresh", {"i": i}) for i in range(2)]
        time.sleep(0.3)  # spored has written its spawn requests to the zygote's socket
        os.kill(zpid, signal.SIGKILL)
        seen = []
        for inv in invs:
            o = inv.outcome()
            seen.append(o if isinstance(o, str) else "%d %s" % (o.status, o.body[:160]))
        print("\nfaults: zygote killed with spawn requests in flight: %r" % seen)
        for inv in invs:
            o = inv.outcome()
            self.assertIsInstance(o, harness.Response, o)
            self.assertStatus(o, 200, msg="an invocation whose spawn request the killed zygote "
                              "had been sent")
            self.assertEqual(o.json(), inv.event)
        self.assertEqual(s.invoke_ok("fresh", {"after": 1}).json(), {"after": 1})


class TestInstanceKilled(FaultCase):
    def test_instance_killed(self):
        self.spored = s = start_spored(self)
        s.deploy_ok("slow", py_package(ECHO))
        s.invoke_ok("slow", {"warm": 1})
        a = Invoker(s, "slow", {"sleep": 3, "i": "A"})
        pid_a = [i for i in wait_busy(s, "slow", 1) if i["state"] == "busy"][0]["pid"]
        b = Invoker(s, "slow", {"sleep": 1, "i": "B"})
        wait_busy(s, "slow", 2)
        os.kill(pid_a, signal.SIGKILL)
        t_kill = time.monotonic()
        ra, rb = a.outcome(), b.outcome()
        self.assertIsInstance(ra, harness.Response, ra)
        self.assertIsInstance(rb, harness.Response, rb)
        msg = self.assertError(ra, 502, "crashed", ["SIGKILL", "signal 9"])["message"]
        self.assertIn(str(pid_a), msg)
        self.assertLess(a.ended - t_kill, 1.5, "the crash was not answered at once")
        self.assertEqual(self.assertStatus(rb, 200).json(), {"sleep": 1, "i": "B"},
                         "the other instance's invocation was disturbed")
        self.assertEqual(s.invoke_ok("slow", {"i": "C"}).json(), {"i": "C"})
        pids = [i["pid"] for i in s.info("slow")["instances"]]
        self.assertNotIn(pid_a, pids)
        st = self.stats("slow")
        self.assertEqual(st["errors"]["crashed"], 1, st)
        print("\nfaults: instance killed: that invocation 502 crashed %.2f s after the kill "
              "(%s); the other 200; the next 200" % (a.ended - t_kill, msg))


class TestStateDiskFull(FaultCase):
    def test_state_disk_full(self):
        work = tempfile.mkdtemp(prefix="spore-it-full-")
        self.addCleanup(shutil.rmtree, work, True)
        state = os.path.join(work, "state")
        os.mkdir(state)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0750", "tmpfs", state],
                       check=True)

        def umount():
            if subprocess.run(["umount", state]).returncode != 0:
                subprocess.run(["umount", "-l", state])
        self.addCleanup(umount)
        self.spored = s = start_spored(self, workdir=work)
        self.assertEqual(s.state_dir, state)

        def tagged(tag, pad):
            return py_package(TAGGED % tag, extra={"pad.bin": os.urandom(pad)})

        keep1 = tagged("keep-1", 1000)
        s.deploy_ok("keep", keep1)
        s.invoke_ok("keep", {})
        fill_codes, full = [], None
        for k in range(1, 30):
            code = tagged("fill-%d" % k, 192 * 1024)
            r = s.deploy("filler", code)
            if r.status == 201:
                fill_codes.append(code)
                continue
            full = r
            break
        self.assertIsNotNone(full, "2 MiB never filled up")
        self.assertGreater(len(fill_codes), 0, "not even one deploy fit")
        self.assertError(full, 507, "insufficient_storage")
        print("\nfaults: disk full after %d versions of 192 KiB: %s" % (
            len(fill_codes), full.json()["message"]))
        self.assertEqual(s.tmp_entries(), [], "a failed deploy left its staging behind")
        # the previous versions serve
        n = len(fill_codes)
        self.assertEqual(s.invoke_ok("filler", {}).json()["tag"], "fill-%d" % n)
        self.assertEqual(s.invoke_ok("keep", {}).json()["tag"], "keep-1")
        # another deploy of the same size fails the same way, and harms nothing
        keep2 = tagged("keep-2", 192 * 1024)
        self.assertError(s.deploy("keep", keep2), 507, "insufficient_storage")
        before = {name: s.info(name) for name in ("keep", "filler")}
        self.assertEqual([v["sha256"] for v in before["filler"]["versions"]],
                         [sha256_hex(c) for c in fill_codes])
        self.assertEqual(sorted(s.version_dirs("filler"), key=int),
                         [str(v) for v in range(1, n + 1)])
        self.assertEqual(s.version_dirs("keep"), ["1"])

        s.restart()  # nothing corrupt on disk
        for name, old in before.items():
            new = s.info(name)
            for k in ("live_version", "versions", "runtime", "handler"):
                self.assertEqual(new[k], old[k], "%s.%s changed across the restart" % (name, k))
        for v in range(1, n + 1):
            self.assertEqual(s.invoke_ok("filler", {}, version=v).json()["tag"], "fill-%d" % v)
        self.assertEqual(s.invoke_ok("keep", {}).json()["tag"], "keep-1")

        # space returns: deploys work again
        self.assertStatus(s.api("DELETE", "/v1/functions/filler"), 204)
        self.assertEqual(s.deploy_ok("keep", keep2)["version"], 2)
        self.assertEqual(s.invoke_ok("keep", {}).json()["tag"], "keep-2")
        self.assertEqual(s.tmp_entries(), [])
        s.stop()


class LimitedSpored(Spored):
    """spored started under prlimit(1) (which execs it: the pid stays spored's) with
    RLIMIT_NOFILE soft = hard = NOFILE, so that spored's own raise to the hard limit ends
    there. 1024 and not less: instances get RLIMIT_NOFILE 1024 from the sandbox, which cannot
    go above the hard limit it inherits."""
    NOFILE = 1024

    def command(self):
        return ["prlimit", "--nofile=%d:%d" % (self.NOFILE, self.NOFILE), "--"] + super().command()


class TestOutOfFds(FaultCase):
    def test_out_of_fds(self):
        if not shutil.which("prlimit"):
            self.skipTest("prlimit (util-linux) is not installed")
        harness.raise_nofile(LimitedSpored.NOFILE + 1024)  # the test's own flood of clients
        self.spored = s = start_spored(self, cls=LimitedSpored)
        with open("/proc/%d/limits" % s.pid) as f:
            self.assertRegex(f.read(), r"Max open files\s+%d\s+%d" % (
                LimitedSpored.NOFILE, LimitedSpored.NOFILE))
        s.deploy_ok("warm", py_package(ECHO))
        s.deploy_ok("cold", py_package(ECHO))
        s.invoke_ok("warm", {})
        keep = s.raw(timeout=10)          # connections made while there are fds
        self.addCleanup(keep.close)
        keep_api = s.raw(unix=True, timeout=10)
        self.addCleanup(keep_api.close)
        for c, path in ((keep, "/healthz"), (keep_api, "/healthz")):
            c.send(request_bytes("GET", path))
            self.assertStatus(c.read_response(), 200)
        base_fds = harness.fd_count(s.pid)

        flood = []
        self.addCleanup(close_all, flood)
        for _ in range(LimitedSpored.NOFILE + 100):
            flood.append(socket.create_connection(("127.0.0.1", s.port), timeout=10))
        full = harness.wait_for(lambda: harness.accept_queue(s.port) > 0, 10, 0.05)
        self.assertTrue(full, "spored never ran out of fds (%d open)" % harness.fd_count(s.pid))
        spored_fds = harness.fd_count(s.pid)
        problems = []

        # a new client: refused, not left waiting
        t0 = time.monotonic()
        try:
            r = s.tcp("GET", "/healthz", timeout=3)
            fresh = "%d %s" % (r.status, (r.json() or {}).get("error"))
            if r.status != 503:
                problems.append("a new client was answered %s" % fresh)
        except (ConnectionResetError, BrokenPipeError, EOFError,
                http.client.RemoteDisconnected) as ex:
            fresh = "closed (%s)" % type(ex).__name__
        except OSError as ex:
            fresh = "%s after %.1f s" % (type(ex).__name__, time.monotonic() - t0)
            problems.append("a new client was neither answered nor closed: %s (it waits in "
                            "the accept queue, %d deep)" % (fresh, harness.accept_queue(s.port)))
        # work on a connection spored already has goes on ...
        keep.send(request_bytes("POST", "/v1/functions/warm/invoke", b'{"still": 1}'))
        self.assertEqual(self.assertStatus(keep.read_response(), 200).json(), {"still": 1})
        # ... new work that needs fds is refused with 503
        keep.send(request_bytes("POST", "/v1/functions/cold/invoke", b'{"cold": 1}'))
        r = keep.read_response()
        cold = "%d %s" % (r.status, (r.json() or {}).get("error"))
        if r.status != 503:
            problems.append("an invocation needing a new instance: %r (want 503)" % r)
        keep_api.send(request_bytes("PUT", "/v1/functions/newfn", json.dumps({
            "runtime": "python3", "handler": "fn.main",
            "code": harness.b64(py_package(ECHO))}).encode()))
        r = keep_api.read_response()
        deploy = "%d %s" % (r.status, (r.json() or {}).get("error"))
        if r.status != 503:
            problems.append("a deploy: %r (want 503)" % r)
        warnings = s.log().count("accept failed")
        print("\nfaults: out of fds (%d open of %d): new client -> %s; invoke on a warm "
              "instance -> 200; cold invoke -> %s; deploy -> %s; %d 'accept failed' warnings "
              "logged so far" % (spored_fds, LimitedSpored.NOFILE, fresh, cold, deploy, warnings))

        # the load goes: spored recovers
        close_all(flood)
        back = harness.wait_for(lambda: harness.fd_count(s.pid) <= base_fds + 2, 10, 0.05)
        self.assertTrue(back, "spored still holds %d fds (%d before the flood)" % (
            harness.fd_count(s.pid), base_fds))
        t0 = time.monotonic()
        self.assertStatus(s.tcp("GET", "/healthz", timeout=5), 200)
        self.assertEqual(s.invoke_ok("cold", {"cold": 2}).json(), {"cold": 2})
        s.deploy_ok("newfn", py_package(ECHO))
        self.assertEqual(s.invoke_ok("newfn", {"n": 1}).json(), {"n": 1})
        print("faults: out of fds: recovered %.2f s after the load went" % (
            time.monotonic() - t0))
        self.assertTrue(s.running())
        self.assertEqual(problems, [], "\n".join(problems))


class TestOutOfMemory(FaultCase):
    """spored's own memory: an RLIMIT_AS soft limit a few MiB above what it maps, set on the
    running process (the hard limit stays, so the test can lift it again)."""

    def test_out_of_memory(self):
        self.spored = s = start_spored(self)
        s.deploy_ok("echo", py_package(ECHO))
        s.invoke_ok("echo", {"warm": 1})
        with open("/proc/%d/status" % s.pid) as f:
            vmsize = int(f.read().split("VmSize:")[1].split()[0]) * 1024
        if vmsize > (1 << 40):
            self.skipTest("an ASan build reserves terabytes of address space")
        soft, hard = resource.prlimit(s.pid, resource.RLIMIT_AS)
        self.addCleanup(lambda: s.running() and resource.prlimit(
            s.pid, resource.RLIMIT_AS, (hard, hard)))
        resource.prlimit(s.pid, resource.RLIMIT_AS, (vmsize + 4 * MiB, hard))
        problems = []
        # small work goes on
        self.assertEqual(s.invoke_ok("echo", {"small": 1}).json(), {"small": 1})
        # a 5 MiB event cannot be held: refused with 503, or the connection closed. spored
        # answers while the body is still coming and closes: a reader that waits for the end
        # of its upload would lose the answer to the reset, so one reads all along.
        big = {"blob": "m" * (5 * MiB)}
        raw = request_bytes("POST", "/v1/functions/echo/invoke", json.dumps(big).encode(),
                            {"Content-Type": "application/json"})
        got = {"data": b"", "end": None}
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=20)
        self.addCleanup(sock.close)

        def reader():
            try:
                while True:
                    d = sock.recv(65536)
                    if not d:
                        got["end"] = "EOF"
                        return
                    got["data"] += d
            except OSError as ex:
                got["end"] = type(ex).__name__
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        try:
            sock.sendall(raw)
        except OSError:
            pass
        t.join(20)
        head = got["data"].split(b"\r\n", 1)[0].decode("latin-1")
        body = got["data"].partition(b"\r\n\r\n")[2][:200].decode("latin-1")
        seen = "%s %s, then %s" % (head or "no answer", body.strip(), got["end"])
        if head and not head.startswith("HTTP/1.1 503 "):
            problems.append("a 5 MiB invocation without the memory for it: %s (want 503 or the "
                            "connection closed)" % seen)
        self.assertTrue(s.running(), "spored died out of memory\n" + s.log_tail())
        self.assertStatus(s.tcp("GET", "/healthz"), 200)
        print("\nfaults: out of memory (RLIMIT_AS %d MiB): small invoke 200; 5 MiB invoke -> %s" % (
            (vmsize + 4 * MiB) // MiB, seen))
        resource.prlimit(s.pid, resource.RLIMIT_AS, (hard, hard))
        self.assertEqual(s.invoke_ok("echo", big).json(), big)
        self.assertEqual(problems, [], "\n".join(problems))


if __name__ == "__main__":
    harness.main()
