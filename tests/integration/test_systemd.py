# SPDX-License-Identifier: MIT
"""spored as a systemd service, without systemd as PID 1: started by systemd-socket-activate with
both listeners named the way spored.socket names them (http, api), READY=1 / STATUS= / STOPPING=1
read from a NOTIFY_SOCKET datagram socket this test binds, sporectl through the API socket as an
unprivileged member of group spore, SIGTERM during a burst of invocations (every one answered,
exit 0, no process, cgroup or BPF pin left) and SIGHUP (live keys applied, the others reported,
connections and instances kept).

SPORED may point at an installed spored (tests/package/run.sh sets it to /usr/sbin/spored)."""

import grp
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import harness
from harness import Spored, SporeTestCase, py_package, wait_for

SOCKET_ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
# The unit whose CapabilityBoundingSet= and NoNewPrivileges= spored runs under here.
UNIT = os.environ.get("SPORE_UNIT", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "packaging", "systemd",
    "spored.service.in"))


CAP_NUMBERS = {  # linux/capability.h, for the CapBnd check
    "CAP_LINUX_IMMUTABLE": 9, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_PACCT": 20,
    "CAP_SYS_BOOT": 22, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37,
}


def unit_dropped_caps():
    with open(UNIT) as f:
        for line in f:
            if line.startswith("CapabilityBoundingSet=~"):
                return line.strip().split("~", 1)[1].split()
    return []


def unit_confinement():
    """setpriv arguments for the unit's CapabilityBoundingSet=~... and NoNewPrivileges=yes."""
    args = []
    caps = unit_dropped_caps()
    if caps:
        args.append("--bounding-set=" + ",".join(
            "-" + c.lower().replace("cap_", "", 1) for c in caps))
    with open(UNIT) as f:
        if any(line.strip() == "NoNewPrivileges=yes" for line in f):
            args.append("--no-new-privs")
    return args


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)

SLOW = """
import time
def main(event, context):
    time.sleep(float(event.get("sleep", 0)))
    return {"n": event.get("n"), "slept": event.get("sleep", 0)}
"""


def fnv1a32(s):
    h = 2166136261
    for b in s.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def own_cgroup_dirs(name):
    """Where spored (started by this process) puts its cgroup subtree `name`, per hierarchy."""
    out = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if ctrls == "":
                base = "/sys/fs/cgroup/unified"
                if not os.path.isdir(base):
                    base = "/sys/fs/cgroup"
            elif ctrls.startswith("name="):
                base = "/sys/fs/cgroup/" + ctrls[5:]
            else:
                base = "/sys/fs/cgroup/" + ctrls
            if os.path.isdir(base):
                out.append(os.path.join(base + path, name))
    return out


class Notify:
    """The NOTIFY_SOCKET end: a datagram socket spored's sd_notify() writes to."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        self.messages = []  # every datagram, split into {key: value}

    def close(self):
        self.sock.close()

    def wait(self, key, value=None, timeout=30.0, after=0):
        """Reads datagrams until one carries key (=value), looking at those already read from
        index `after` on; returns that datagram's dict."""
        for m in self.messages[after:]:
            if key in m and (value is None or m[key] == value):
                return m
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s%s on NOTIFY_SOCKET within %.0f s; got %r" % (
                    key, "" if value is None else "=" + value, timeout, self.messages))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            m = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            self.messages.append(m)
            if key in m and (value is None or m[key] == value):
                return m


class ActivatedSpored(Spored):
    """spored started the way spored.socket starts it: systemd-socket-activate holds a TCP
    listener named http and a unix socket named api (0660, group spore), and execs spored on
    the first connection, with NOTIFY_SOCKET pointing at a socket of ours."""

    def __init__(self, config=None, fdnames="http:api"):
        d = tempfile.mkdtemp(prefix="spore-test-", dir="/run")
        os.chmod(d, 0o755)
        super().__init__(config, workdir=d)
        self.api_socket = os.path.join(d, "spored.sock")
        self.notify = None
        self.fdnames = fdnames

    def command(self):
        env = ["-E", "NOTIFY_SOCKET=" + self.notify.path]
        for v in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if os.environ.get(v) is not None:
                env += ["-E", v]
        return [SETPRIV] + unit_confinement() + ["--", SOCKET_ACTIVATE,
                "-l", "127.0.0.1:%d" % self.port, "-l", self.api_socket] + (
                    ["--fdname=" + self.fdnames] if self.fdnames else []) + env + [
                    harness.SPORED, "--config", self.conf_path, "--state-dir", self.state_dir,
                    "--runtime-dir", harness.RUNTIME_DIR]

    def start(self, env=None, wait_runtimes=True, group=None):
        """Starts systemd-socket-activate (spored itself starts on the first connection)."""
        if self.notify is not None:
            self.notify.close()
        path = os.path.join(self.dir, "notify.sock")
        if os.path.exists(path):
            os.unlink(path)
        self.notify = Notify(path)
        e = dict(os.environ)
        asan = e.get("ASAN_OPTIONS", "")
        if "handle_segv" not in asan:
            e["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "handle_segv=0"
        self.starts += 1
        with open(self.log_path, "ab") as logf:
            logf.write(("\n===== start %d: %s\n" % (self.starts, " ".join(self.command()))).encode())
            logf.flush()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=logf, env=e, close_fds=True)
        self.pid = self.proc.pid
        if not wait_for(lambda: os.path.exists(self.api_socket) and
                        harness.server_side_count(self.port, harness.TCP_LISTEN) > 0, 10):
            self.kill_now()
            raise AssertionError("systemd-socket-activate did not listen\n" + self.log_tail())
        # What spored.socket does: SocketMode=0660, SocketGroup=spore.
        os.chmod(self.api_socket, 0o660)
        if group is not None:
            os.chown(self.api_socket, 0, group)
        return self

    def comm(self):
        try:
            with open("/proc/%d/comm" % self.pid) as f:
                return f.read().strip()
        except OSError:
            return None

    def destroy(self):
        try:
            super().destroy()
        finally:
            if self.notify is not None:
                self.notify.close()


class TestSocketActivation(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(SOCKET_ACTIVATE, os.X_OK):
            raise AssertionError("%s is missing (package systemd)" % SOCKET_ACTIVATE)
        # Group spore: the package's (postinst) if installed, else made here and removed after.
        try:
            cls.gid = grp.getgrnam("spore").gr_gid
        except KeyError:
            subprocess.run(["groupadd", "--system", "spore"], check=True)
            cls.addClassCleanup(subprocess.run, ["groupdel", "spore"], check=False)
            cls.gid = grp.getgrnam("spore").gr_gid
        cls.nobody = pwd.getpwnam("nobody").pw_uid
        cls.spored = s = ActivatedSpored()
        cls.addClassCleanup(s.destroy)
        s.start(group=cls.gid)
        # A copy of sporectl that an unprivileged user can reach whatever the build dir's modes.
        cls.sporectl = os.path.join(s.dir, "sporectl")
        shutil.copy(harness.SPORECTL, cls.sporectl)
        os.chmod(cls.sporectl, 0o755)

    def ctl_as(self, *args, groups, timeout=60):
        """sporectl through the API socket as uid nobody with the given supplementary groups."""
        cmd = [SETPRIV, "--reuid=%d" % self.nobody, "--regid=%d" % self.nobody,
               "--groups=" + ",".join(str(g) for g in groups) if groups else "--clear-groups",
               "--", self.sporectl, "--socket", self.spored.api_socket] + list(args)
        return subprocess.run(cmd, capture_output=True, timeout=timeout, text=True,
                              env={"PATH": "/usr/bin:/bin", "HOME": "/"})

    def test_1_first_connection_starts_it_and_ready_comes(self):
        s = self.spored
        # Nothing but the listeners until someone connects.
        time.sleep(0.3)
        self.assertEqual(s.comm(), "systemd-socket-")  # comm: 15 characters
        self.assertEqual(s.notify.messages, [])
        t0 = time.monotonic()
        r = s.tcp("GET", "/healthz", timeout=30)
        self.assertStatus(r, 200)
        self.assertEqual(s.comm(), "spored")
        ready = s.notify.wait("READY", "1", timeout=60)
        took = time.monotonic() - t0
        # READY=1 only once every zygote is up.
        rts = s.runtimes()
        self.assertTrue(rts and all(rt["state"] == "running" for rt in rts), rts)
        status = s.notify.wait("STATUS")
        self.assertIn("runtimes", status["STATUS"])
        log = s.log()
        self.assertIn("listening on http://127.0.0.1:%d (socket 'http' from systemd)" % s.port,
                      log)
        self.assertIn("API socket %s (socket 'api' from systemd)" % s.api_socket, log)
        # spored bound nothing of its own.
        self.assertNotIn("spored: API socket /run/spore/spored.sock", log)
        self.assertNotIn("listening on http://127.0.0.1:8080", log)
        print("first connection to READY=1: %.2f s (%r)" % (took, ready))
        # Under the unit's confinement (setpriv; systemd does the same from the unit).
        st, mine = proc_status(s.pid), proc_status(os.getpid())
        self.assertEqual(st["NoNewPrivs"], "1")
        dropped = unit_dropped_caps()
        self.assertTrue(dropped)
        mask = sum(1 << CAP_NUMBERS[c] for c in dropped)
        self.assertEqual(int(st["CapBnd"], 16), int(mine["CapBnd"], 16) & ~mask)
        s.snapshot()

    def test_2_invocations_and_sporectl_as_group_member(self):
        s = self.spored
        s.tcp("GET", "/healthz", timeout=30)
        work = tempfile.mkdtemp(prefix="fn-", dir=s.dir)
        os.chmod(work, 0o755)
        with open(os.path.join(work, "fn.py"), "w") as f:
            f.write(SLOW)
        os.chmod(os.path.join(work, "fn.py"), 0o644)
        p = self.ctl_as("deploy", "slow", work, "--runtime", "python3", "--handler", "fn.main",
                        groups=[self.gid])
        self.assertEqual(p.returncode, 0, "sporectl deploy as a member of spore: %s%s" % (
            p.stdout, p.stderr))
        p = self.ctl_as("invoke", "slow", '{"n": 7}', groups=[self.gid])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["n"], 7)
        p = self.ctl_as("ls", groups=[self.gid])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("slow", p.stdout)
        # Not a member: the socket's mode keeps it out.
        p = self.ctl_as("ls", groups=[])
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertRegex(p.stderr.lower(), "permission denied")
        # Invocations over the TCP listener systemd passed.
        r = s.invoke_ok("slow", {"n": 1})
        self.assertEqual(r.json()["n"], 1)
        # Management over TCP needs a token: the http socket is not the API socket.
        self.assertStatus(s.tcp("GET", "/v1/functions"), 401, "unauthorized")

    def test_3_sighup_reloads_live_keys(self):
        s = self.spored
        s.tcp("GET", "/healthz", timeout=30)
        s.deploy_ok("hup", py_package(SLOW))
        s.invoke_ok("hup", {"n": 1})
        pids_before = {i["pid"] for i in s.info("hup").get("instances", [])} or None
        keep = s.tcp_conn()
        keep.connect()
        r = harness.do_request(keep, "GET", "/healthz")
        self.assertStatus(r, 200)
        self.assertStatus(s.tcp("GET", "/v1/functions"), 401, "unauthorized")
        token = "hup-token-0123456789"
        s.config.update({"api_token": token, "idle_ttl_s": "77"})
        s.write_config()
        seen = len(s.notify.messages)
        os.kill(s.pid, signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in s.log(), 10)
        log = s.log()
        self.assertIn("'api_token' changed, applied", log)
        self.assertIn("'idle_ttl_s' changed; it takes effect at the next start", log)
        self.assertNotIn(token, log)
        s.notify.wait("RELOADING", "1", timeout=10, after=seen)
        s.notify.wait("READY", "1", timeout=10, after=seen)
        # The token works at once; the old keep-alive connection is still served.
        r = s.tcp("GET", "/v1/functions", headers={"Authorization": "Bearer " + token})
        self.assertStatus(r, 200)
        r = harness.do_request(keep, "GET", "/healthz")
        self.assertStatus(r, 200)
        keep.close()
        s.invoke_ok("hup", {"n": 2})
        if pids_before:
            after = {i["pid"] for i in s.info("hup").get("instances", [])}
            self.assertTrue(pids_before & after, "instances restarted by SIGHUP")
        # A broken file is refused whole; spored goes on with what it had.
        with open(s.conf_path, "a") as f:
            f.write("no_such_key = 1\n")
        os.kill(s.pid, signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "configuration unchanged" in s.log(), 10), s.log_tail())
        r = s.tcp("GET", "/v1/functions", headers={"Authorization": "Bearer " + token})
        self.assertStatus(r, 200)
        s.write_config()

    def test_4_sigterm_during_a_burst(self):
        s = self.spored
        s.tcp("GET", "/healthz", timeout=30)
        s.deploy_ok("burst", py_package(SLOW), max_instances=8)
        s.invoke_ok("burst", {"n": 0})
        name = "spore-%08x" % fnv1a32(s.state_dir)
        cg_dirs = [d for d in own_cgroup_dirs(name) if os.path.isdir(d)]
        self.assertTrue(cg_dirs, "no cgroup %s found below ours" % name)
        pin_dir = s.config["bpf_pin_dir"]
        had_pins = os.path.isdir(pin_dir)
        n = 12
        results = [None] * n

        def call(i):
            try:
                results[i] = s.invoke("burst", {"n": i, "sleep": 1.5}, timeout=60)
            except Exception as ex:  # noqa: BLE001 - reported below
                results[i] = ex

        threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        # Every call reached spored (8 running, 4 queued) before the SIGTERM.
        self.assertTrue(wait_for(lambda: harness.server_side_count(
            s.port, harness.TCP_ESTABLISHED) >= n, 10), "the burst did not connect")
        time.sleep(0.5)
        # Neither an idle keep-alive connection nor a `logs -f` stream holds the stop up.
        idle = s.raw()
        idle.send(harness.request_bytes("GET", "/healthz"))
        self.assertEqual(idle.read_response().status, 200)
        stream = s.raw(unix=True, timeout=20)
        stream.send(harness.request_bytes("GET", "/v1/functions/burst/logs?follow=1&tail=0"))
        self.assertEqual(stream.read_head()[0], 200)
        s.snapshot()
        t0 = time.monotonic()
        os.kill(s.pid, signal.SIGTERM)
        stopping = s.notify.wait("STOPPING", "1", timeout=10)
        try:
            rc = s.proc.wait(60)
        except subprocess.TimeoutExpired:
            s.kill_now()
            raise AssertionError("spored did not exit after SIGTERM\n" + s.log_tail())
        took = time.monotonic() - t0
        for t in threads:
            t.join(30)
        s.proc = None
        self.assertEqual(rc, 0, s.log_tail())
        self.assertTrue(idle.closed_within(1)[0], "idle connection not closed")
        idle.close()
        while stream.read_chunk():  # the stream was ended: its last chunk came
            pass
        stream.close()
        self.assertLess(took, 15, "the stop waited for idle connections or the log stream")
        for i, r in enumerate(results):
            self.assertIsInstance(r, harness.Response, "call %d: %r\n%s" % (i, r, s.log_tail()))
            self.assertStatus(r, 200, msg="call %d" % i)
            self.assertEqual(r.json()["n"], i)
        problems = s.check_orphans()
        self.assertEqual(problems, [])
        left = [d for d in cg_dirs if os.path.exists(d)]
        self.assertEqual(left, [], "cgroups left after SIGTERM")
        self.assertFalse(os.path.exists(pin_dir), "BPF pins left in %s (had pins: %s)" % (
            pin_dir, had_pins))
        self.assertIn("connections drained", s.log())
        print("SIGTERM with %d in flight: exit %d after %.2f s, %r" % (n, rc, took, stopping))
        # The listeners closed with it: systemd (here systemd-socket-activate) owns them now.
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", s.port), timeout=2).close()

    def test_5_restart_with_reserved_instances(self):
        """READY=1 waits for reserved instances; a function deployed before is served again."""
        s = self.spored
        if s.proc is None:
            s.start(group=self.gid)
        s.tcp("GET", "/healthz", timeout=30)
        s.notify.wait("READY", "1", 60)
        s.deploy_ok("reserved", py_package(SLOW), min_instances=2)
        wait_for(lambda: len([i for i in s.info("reserved").get("instances", [])
                              if i.get("state") == "idle"]) >= 2, 20)
        s.stop()
        s.start(group=self.gid)
        r = s.tcp("GET", "/healthz", timeout=30)
        self.assertStatus(r, 200)
        s.notify.wait("READY", "1", 60)
        states = [i.get("state") for i in s.info("reserved").get("instances", [])]
        self.assertGreaterEqual(states.count("idle"), 2, states)
        s.invoke_ok("reserved", {"n": 5})
        rc = s.stop()
        self.assertEqual(rc, 0)


class TestSocketNames(SporeTestCase):
    def test_unnamed_sockets_go_by_family(self):
        """Without names (systemd-socket-activate says "unknown"): unix is the API, TCP is
        HTTP."""
        s = ActivatedSpored(fdnames=None)
        self.addCleanup(s.destroy)
        self.spored = s
        s.start()
        self.assertStatus(s.tcp("GET", "/healthz", timeout=30), 200)
        s.notify.wait("READY", "1", 60)
        self.assertStatus(s.api("GET", "/v1/functions"), 200)
        self.assertStatus(s.tcp("GET", "/v1/functions"), 401, "unauthorized")
        self.assertIn("API socket %s (socket 'unknown' from systemd)" % s.api_socket, s.log())
        self.assertEqual(s.stop(), 0)

    def test_api_name_on_a_tcp_socket_is_refused(self):
        """The management API is never served on a network socket, whatever its name."""
        s = ActivatedSpored(fdnames="api:http")
        self.addCleanup(s.destroy)
        self.spored = s
        s.start()
        try:
            s.tcp("GET", "/healthz", timeout=10)
        except (OSError, http.client.HTTPException):
            pass
        self.assertEqual(s.wait_exit(10), 1)
        self.assertIn("named 'api' (127.0.0.1:%d) is not a unix socket" % s.port, s.log())
        self.assertEqual(s.notify.messages, [])


if __name__ == "__main__":
    harness.main()
