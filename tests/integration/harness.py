# SPDX-License-Identifier: MIT
"""Integration test harness: starts a real spored on a free TCP port with a temporary state dir,
talks to it over TCP and over its API unix socket, builds function packages in memory, and on
stop makes sure that no process spored started (zygotes, instances) is left behind.

Standard library only; run with Debian's /usr/bin/python3 through `meson test --suite
integration`, which sets SPORED, SPORECTL, SPORE_RUNTIME_DIR, EXAMPLES_DIR and NATIVE_HELLO_SO.

SPORE_IT_KEEP=1 keeps the temporary directories (state, logs) for inspection;
SPORE_IT_LOG_LEVEL sets spored's log_level (default info)."""

import base64
import gzip
import hashlib
import http.client
import io
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest
import zipfile

SPORED = os.environ.get("SPORED", "")
SPORECTL = os.environ.get("SPORECTL", "")
RUNTIME_DIR = os.environ.get("SPORE_RUNTIME_DIR", "")
EXAMPLES_DIR = os.environ.get("EXAMPLES_DIR", "")
NATIVE_HELLO_SO = os.environ.get("NATIVE_HELLO_SO", "")

PY_HELLO_DIR = os.path.join(EXAMPLES_DIR, "python3", "hello")
NATIVE_SO_NAME = "hello.so"

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

MiB = 1024 * 1024
RFC3339_US = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def main():
    """Entry point of every test file: skip (77) when not root or not run through meson."""
    if os.geteuid() != 0:
        print("skipped: the integration tests need root (spored forks zygotes and instances)")
        sys.exit(77)
    missing = [v for v in ("SPORED", "SPORE_RUNTIME_DIR", "EXAMPLES_DIR") if not os.environ.get(v)]
    if missing:
        print("skipped: %s not set; run through `meson test --suite integration`" % ", ".join(missing))
        sys.exit(77)
    if not os.access(SPORED, os.X_OK):
        print("SPORED=%s is not an executable" % SPORED)
        sys.exit(1)
    unittest.main(verbosity=2)


# ---------------------------------------------------------------------------------------------
# /proc helpers


def proc_stat(pid):
    """(state, ppid, starttime) of pid, or None if it does not exist."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    # comm may contain spaces and parentheses: fields start after the last ')'
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[19])


def proc_ppid(pid):
    """PPid from /proc/PID/status, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("PPid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_alive(pid, starttime=None):
    """True if pid exists, is not a zombie and (if given) has that start time."""
    st = proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return starttime is None or st[2] == starttime


def proc_describe(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        cmd = "?"
    return "%d (%s)" % (pid, cmd)


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def descendants(root):
    """Pids of every live descendant of root (not root itself)."""
    children = {}
    for pid in all_pids():
        st = proc_stat(pid)
        if st is not None:
            children.setdefault(st[1], []).append(pid)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


TCP_ESTABLISHED, TCP_CLOSE_WAIT, TCP_LISTEN = 0x01, 0x08, 0x0A


def tcp_sockets(local_port):
    """[(state, tx_queue, rx_queue)] of IPv4 sockets bound to 127.0.0.1:local_port (any owner)
    from /proc/net/tcp. For a LISTEN socket rx_queue is the accept queue length, so this works
    whether spored holds the accepted sockets as fds or as io_uring direct descriptors."""
    out = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            _, lport = p[1].split(":")
            if int(lport, 16) != local_port:
                continue
            tx, rx = p[4].split(":")
            out.append((int(p[3], 16), int(tx, 16), int(rx, 16)))
    return out


def accept_queue(port):
    return sum(rx for st, _, rx in tcp_sockets(port) if st == TCP_LISTEN)


def server_side_count(port, state):
    return sum(1 for st, _, _ in tcp_sockets(port) if st == state)


def fnv1a32(s):
    h = 2166136261
    for b in s.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def cgroup_dirs():
    """{hierarchy label: the test runner's own cgroup directory in it} for every cgroup mount
    (v1 controllers and the v2/unified tree)."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, ctrls, path = line.rstrip("\n").split(":", 2)
            own["unified" if hid == "0" else ctrls] = path
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.rstrip("\n").partition(" - ")
            lf, rf = left.split(), right.split()
            fstype, root, mnt = rf[0], lf[3], lf[4]
            if fstype == "cgroup2":
                key = "unified"
            elif fstype == "cgroup":
                opts = set(rf[2].split(","))
                key = next((k for k in own if k != "unified" and set(k.split(",")) <= opts), None)
            else:
                continue
            if key is None or key not in own:
                continue
            path = own[key]
            if root != "/" and path.startswith(root):
                path = path[len(root):]
            out[key] = os.path.normpath(mnt + "/" + path.lstrip("/"))
    return out


def remove_cgroup_tree(name):
    """Removes spored's cgroup tree `name` (spore-XXXXXXXX below the runner's own cgroup) from
    every hierarchy, bottom up, killing by pid whatever is still in it. For a spored that could
    not clean up (killed, or a stop that failed); one that stopped normally left nothing."""
    for top in (os.path.join(d, name) for d in cgroup_dirs().values()):
        if not os.path.isdir(top):
            continue
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda x: -x[0].count("/")):
            try:
                with open(os.path.join(dirpath, "cgroup.procs")) as f:
                    for pid in f.read().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except OSError:
                            pass
            except OSError:
                pass
            for _ in range(50):
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def wait_for(pred, timeout, interval=0.02):
    """Polls pred() until it returns a true value (returned) or timeout passes (last value)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def raise_nofile(n=16384):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, n)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# HTTP


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over an AF_UNIX stream socket."""

    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # dict, lower-case names -> last value
        self.body = body

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def json(self):
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def __repr__(self):
        b = self.body[:600]
        return "<HTTP %d %s headers=%r body=%r%s>" % (
            self.status, self.reason, self.headers, b, "..." if len(self.body) > 600 else "")


def encode_body(body):
    if body is None:
        return None
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def do_request(conn, method, path, body=None, headers=None):
    hdrs = dict(headers or {})
    data = encode_body(body)
    if data is not None and not any(k.lower() == "content-type" for k in hdrs):
        hdrs["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=hdrs)
    r = conn.getresponse()
    raw = r.read()
    return Response(r.status, r.reason, {k.lower(): v for k, v in r.getheaders()}, raw)


class RawConn:
    """A raw HTTP/1.1 client connection (TCP port or unix socket path) for pipelining, partial
    requests and other things http.client will not do."""

    def __init__(self, addr, timeout=10.0):
        if isinstance(addr, int):
            self.sock = socket.create_connection(("127.0.0.1", addr), timeout=timeout)
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            self.sock.settimeout(timeout)
            self.sock.connect(addr)
        self.buf = b""

    @classmethod
    def from_socket(cls, sock):
        c = cls.__new__(cls)
        c.sock, c.buf = sock, b""
        return c

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(262144)
        if not data:
            raise EOFError("connection closed by spored (buffered: %r)" % self.buf[:200])
        self.buf += data

    def read_until(self, delim):
        while True:
            i = self.buf.find(delim)
            if i >= 0:
                out, self.buf = self.buf[:i + len(delim)], self.buf[i + len(delim):]
                return out
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self):
        head = self.read_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        m = re.match(r"^HTTP/(\d)\.(\d) (\d{3}) ?(.*)$", lines[0])
        if not m:
            raise AssertionError("bad status line from spored: %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            if not line:
                continue
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return int(m.group(3)), m.group(4), headers

    def read_chunk(self):
        """One chunk of a chunked body: bytes, or b"" for the last chunk (trailers consumed)."""
        line = self.read_until(b"\r\n").decode("latin-1")
        size = int(line.split(";")[0].strip(), 16)
        if size == 0:
            while self.read_until(b"\r\n") != b"\r\n":
                pass
            return b""
        data = self.read_exact(size)
        if self.read_exact(2) != b"\r\n":
            raise AssertionError("chunk not followed by CRLF")
        return data

    def read_response(self, head_request=False):
        status, reason, headers = self.read_head()
        if 100 <= status < 200 or status in (204, 304) or head_request:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                c = self.read_chunk()
                if not c:
                    break
                parts.append(c)
            body = b"".join(parts)
        elif "content-length" in headers:
            body = self.read_exact(int(headers["content-length"]))
        else:
            body = self.read_to_eof()
        return Response(status, reason, headers, body)

    def read_to_eof(self):
        try:
            while True:
                self._fill()
        except EOFError:
            pass
        out, self.buf = self.buf, b""
        return out

    def closed_within(self, timeout):
        """Waits up to timeout for spored to close the connection (EOF or reset); returns
        (closed, seconds waited). Data that arrives meanwhile is kept in self.buf."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, time.monotonic() - start
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False, time.monotonic() - start
            except (ConnectionResetError, BrokenPipeError):
                return True, time.monotonic() - start
            if not data:
                return True, time.monotonic() - start
            self.buf += data

    def readable_within(self, timeout):
        if self.buf:
            return True
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)


def request_bytes(method, path, body=b"", headers=None, host="spore"):
    """Serialises one HTTP/1.1 request with Content-Length (when there is a body)."""
    hdrs = [("Host", host)]
    for k, v in (headers or {}).items():
        hdrs.append((k, v))
    data = encode_body(body) or b""
    if data or method in ("POST", "PUT"):
        hdrs.append(("Content-Length", str(len(data))))
    head = "%s %s HTTP/1.1\r\n" % (method, path) + "".join("%s: %s\r\n" % kv for kv in hdrs) + "\r\n"
    return head.encode("latin-1") + data


# ---------------------------------------------------------------------------------------------
# packages


def _tarinfo(name, size=0, mode=0o644, kind=tarfile.REGTYPE):
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mode = mode
    ti.type = kind
    ti.mtime = int(time.time())
    ti.uname = ti.gname = "root"
    return ti


def tar_gz_files(files, compresslevel=6):
    """files: {name: bytes|str} (or a list of (name, content) to keep order/duplicates).
    Returns a .tar.gz as bytes."""
    items = files.items() if isinstance(files, dict) else files
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w:gz", compresslevel=compresslevel) as tf:
        for name, content in items:
            data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
            mode = 0o755 if name.endswith(".so") else 0o644
            tf.addfile(_tarinfo(name, len(data), mode), io.BytesIO(data))
    return bio.getvalue()


def zip_files(files, compression=zipfile.ZIP_DEFLATED):
    items = files.items() if isinstance(files, dict) else files
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", compression) as zf:
        for name, content in items:
            data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
            zi = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
            zi.compress_type = compression
            zi.external_attr = ((0o755 if name.endswith(".so") else 0o644) | 0o100000) << 16
            zf.writestr(zi, data)
    return bio.getvalue()


def _dir_files(path):
    out = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for n in sorted(names):
            if n.endswith(".pyc"):
                continue
            full = os.path.join(root, n)
            with open(full, "rb") as f:
                out.append((os.path.relpath(full, path), f.read()))
    return out


def tar_gz_dir(path):
    return tar_gz_files(_dir_files(path))


def zip_dir(path):
    return zip_files(_dir_files(path))


def py_package(source, module="fn", extra=None, fmt="tar.gz"):
    """A python3 package with source as MODULE.py (plus extra {name: content})."""
    files = [(module + ".py", source)] + list((extra or {}).items())
    return tar_gz_files(files) if fmt == "tar.gz" else zip_files(files)


def py_hello_package(fmt="tar.gz"):
    if not os.path.isfile(os.path.join(PY_HELLO_DIR, "handler.py")):
        raise unittest.SkipTest("example %s/handler.py is missing" % PY_HELLO_DIR)
    return tar_gz_dir(PY_HELLO_DIR) if fmt == "tar.gz" else zip_dir(PY_HELLO_DIR)


def native_hello_package():
    """The built examples/native/hello .so as hello.so in a .tar.gz; handler 'hello.so:SYMBOL'."""
    if not NATIVE_HELLO_SO or not os.path.isfile(NATIVE_HELLO_SO):
        raise AssertionError("NATIVE_HELLO_SO=%r is not built" % NATIVE_HELLO_SO)
    with open(NATIVE_HELLO_SO, "rb") as f:
        return tar_gz_files({NATIVE_SO_NAME: f.read()})


def native_handler(symbol):
    return "%s:%s" % (NATIVE_SO_NAME, symbol)


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def b64(data):
    return base64.b64encode(data).decode("ascii")


class _ZeroReader(io.RawIOBase):
    """A file of n zero bytes that is never held in memory."""

    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def tar_gz_zeros(name, size, extra=None):
    """A .tar.gz holding one file of size zero bytes, built streaming (a few hundred KiB of
    output, bounded memory)."""
    bio = io.BytesIO()
    with gzip.GzipFile(fileobj=bio, mode="wb", compresslevel=1) as gz:
        with tarfile.open(fileobj=gz, mode="w|") as tf:
            for n, content in (extra or {}).items():
                data = content.encode() if isinstance(content, str) else content
                tf.addfile(_tarinfo(n, len(data)), io.BytesIO(data))
            tf.addfile(_tarinfo(name, size), io.BufferedReader(_ZeroReader(size), 1 << 20))
    return bio.getvalue()


# ---------------------------------------------------------------------------------------------
# spored


class Spored:
    """One spored process on a temporary directory:
         DIR/spored.conf  DIR/api.sock  DIR/state/  DIR/spored.log
       The directory survives restart(); destroy() stops spored and removes it."""

    def __init__(self, config=None, workdir=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="spore-it-")
        self.port = free_port()
        self.conf_path = os.path.join(self.dir, "spored.conf")
        self.api_socket = os.path.join(self.dir, "api.sock")
        self.state_dir = os.path.join(self.dir, "state")
        self.log_path = os.path.join(self.dir, "spored.log")
        self.config = {"log_level": os.environ.get("SPORE_IT_LOG_LEVEL", "info"),
                       # one pin dir per spored, removed by spored when it stops
                       "bpf_pin_dir": "/sys/fs/bpf/spore-it-%d-%s" % (
                           os.getpid(), os.path.basename(self.dir))}
        self.config.update(config or {})
        self.proc = None
        self.pid = None
        self.tracked = {}  # pid -> starttime of spored's descendants seen so far
        self.starts = 0
        self.write_config()

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def for_class(cls, klass, config=None, **start_kw):
        """Started spored for setUpClass, destroyed by a class cleanup."""
        s = cls(config)
        klass.addClassCleanup(s.destroy)
        s.start(**start_kw)
        return s

    @classmethod
    def for_test(cls, test, config=None, **start_kw):
        s = cls(config)
        test.addCleanup(s.destroy)
        s.start(**start_kw)
        return s

    def write_config(self):
        with open(self.conf_path, "w") as f:
            f.write("# written by tests/integration/harness.py\n")
            for k, v in self.config.items():
                f.write("%s = %s\n" % (k, v))

    def command(self):
        return [SPORED, "--config", self.conf_path,
                "--listen", "127.0.0.1:%d" % self.port,
                "--api-socket", self.api_socket,
                "--state-dir", self.state_dir,
                "--runtime-dir", RUNTIME_DIR]

    def start(self, env=None, wait_runtimes=True):
        assert self.proc is None, "spored already running"
        e = dict(os.environ)
        e.pop("SPORE_TEST_CRASH_AT", None)
        # In a -Db_sanitize=address build the zygotes and instances carry ASan, whose SIGSEGV
        # handler would turn a function's own segfault into "exit code 1"; let it be a signal.
        asan = e.get("ASAN_OPTIONS", "")
        if "handle_segv" not in asan:
            e["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "handle_segv=0"
        e.update(env or {})
        self.starts += 1
        logf = open(self.log_path, "ab")
        logf.write(("\n===== start %d: %s%s\n" % (
            self.starts, " ".join(self.command()),
            "".join(" %s=%s" % kv for kv in (env or {}).items()))).encode())
        logf.flush()
        try:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=logf, env=e, close_fds=True)
        finally:
            logf.close()
        self.pid = self.proc.pid
        self.wait_ready(START_TIMEOUT, wait_runtimes)
        return self

    def wait_ready(self, timeout, wait_runtimes=True):
        deadline = time.monotonic() + timeout
        last = "nothing tried"
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                raise AssertionError("spored exited with %s during start-up\n%s" % (
                    rc, self.log_tail()))
            try:
                r = self.tcp("GET", "/healthz", timeout=1)
                ok_tcp = r.status == 200
                last = "healthz: %r" % r
            except OSError as ex:
                ok_tcp = False
                last = "healthz: %r" % ex
            ok_unix = False
            if ok_tcp and os.path.exists(self.api_socket):
                try:
                    r = self.api("GET", "/healthz", timeout=1)
                    ok_unix = r.status == 200
                    last = "unix healthz: %r" % r
                except OSError as ex:
                    last = "unix healthz: %r" % ex
            if ok_tcp and ok_unix:
                if not wait_runtimes:
                    break
                try:
                    rts = self.runtimes()
                    if rts and all(rt.get("state") == "running" for rt in rts):
                        break
                    last = "runtimes: %r" % rts
                except (OSError, ValueError) as ex:
                    last = "runtimes: %r" % ex
            if time.monotonic() > deadline:
                self.kill_now()
                raise AssertionError("spored not ready within %.0f s (%s)\n%s" % (
                    timeout, last, self.log_tail()))
            time.sleep(0.02)
        self.snapshot()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def snapshot(self):
        """Remembers spored's current descendants so that they can be checked after it exits."""
        if self.pid is None:
            return
        for p in descendants(self.pid):
            st = proc_stat(p)
            if st is not None:
                self.tracked[p] = st[2]

    def runtimes(self):
        """GET /v1/runtimes (unix socket); remembers the zygote pids."""
        r = self.api("GET", "/v1/runtimes", timeout=5)
        if r.status != 200:
            raise ValueError("GET /v1/runtimes: %r" % r)
        rts = r.json()["runtimes"]
        for rt in rts:
            pid = rt.get("pid") or 0
            if pid > 0:
                st = proc_stat(pid)
                if st is not None:
                    self.tracked[pid] = st[2]
        return rts

    def zygote_pid(self, runtime):
        for rt in self.runtimes():
            if rt["name"] == runtime:
                return rt["pid"]
        raise AssertionError("runtime %s not in /v1/runtimes" % runtime)

    def stop(self, check_exit=True):
        """SIGTERM, wait, SIGKILL if needed; then the orphan check. Raises AssertionError when
        spored needed SIGKILL, exited with an unexpected status, or left processes behind."""
        if self.proc is None:
            return None
        problems = []
        if self.running():
            try:
                self.runtimes()
            except Exception:
                pass
            self.snapshot()
            os.kill(self.pid, signal.SIGTERM)
            try:
                rc = self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.snapshot()
                os.kill(self.pid, signal.SIGKILL)
                rc = self.proc.wait(10)
                problems.append("spored did not exit within %.0f s of SIGTERM" % STOP_TIMEOUT)
            if check_exit and rc not in (0, -signal.SIGTERM):
                problems.append("spored exited with status %s after SIGTERM" % rc)
        else:
            rc = self.proc.returncode
        self.proc = None
        problems += self.check_orphans()
        if problems:
            raise AssertionError("; ".join(problems) + "\n" + self.log_tail())
        return rc

    def kill(self, sig=signal.SIGKILL):
        """Kills spored with sig (by pid), waits, and runs the orphan check. Returns the status."""
        assert self.proc is not None
        self.snapshot()
        if self.proc.poll() is None:
            os.kill(self.pid, sig)
        rc = self.proc.wait(10)
        self.proc = None
        problems = self.check_orphans()
        if problems:
            raise AssertionError("; ".join(problems) + "\n" + self.log_tail())
        return rc

    def wait_exit(self, timeout=10):
        """Waits for spored to exit on its own (e.g. a test hook); returns the status and runs the
        orphan check."""
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.snapshot()
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None
            self.check_orphans()
            raise AssertionError("spored did not exit within %s s\n%s" % (timeout, self.log_tail()))
        self.proc = None
        problems = self.check_orphans()
        if problems:
            raise AssertionError("; ".join(problems) + "\n" + self.log_tail())
        return rc

    def kill_now(self):
        if self.proc is not None and self.proc.poll() is None:
            self.snapshot()
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None
        self.check_orphans()

    def check_orphans(self, grace=3.0):
        """After spored exited: every descendant seen while it ran (zygotes, instances) must be
        gone within grace seconds. Leftovers are SIGKILLed by pid and reported."""
        def leftovers():
            live = {p: t for p, t in self.tracked.items() if proc_alive(p, t)}
            # children those leftovers forked since the last snapshot
            for pid in all_pids():
                st = proc_stat(pid)
                if st is not None and st[1] in live and pid not in live and st[0] not in "ZX":
                    live[pid] = st[2]
            return live
        live = wait_for(lambda: not leftovers(), grace, 0.05)
        left = {} if live else leftovers()
        msgs = []
        if left:
            msgs.append("processes left after spored exited: " +
                        ", ".join(proc_describe(p) for p in sorted(left)))
            for p, t in left.items():
                if proc_alive(p, t):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        self.tracked = {}
        return msgs

    def restart(self, env=None, **kw):
        self.stop()
        return self.start(env=env, **kw)

    def destroy(self):
        try:
            if self.proc is not None:
                self.stop()
        finally:
            # spored removes its pins when it stops; one killed (kill -9, a failed stop) leaves
            # them: this test's own pin directory goes with the test
            pin_dir = self.config.get("bpf_pin_dir")
            if pin_dir and pin_dir.startswith("/sys/fs/bpf/spore-it-"):
                shutil.rmtree(pin_dir, ignore_errors=True)
            # and its cgroups (spored.c names them after its state dir)
            if os.geteuid() == 0:
                remove_cgroup_tree("spore-%08x" % fnv1a32(self.state_dir))
            if os.environ.get("SPORE_IT_KEEP"):
                sys.stderr.write("kept %s\n" % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=60):
        lines = self.log().splitlines()[-n:]
        return "----- spored log (%s, last %d lines) -----\n%s\n-----" % (
            self.log_path, len(lines), "\n".join(lines))

    # -- HTTP --------------------------------------------------------------------------------

    def tcp_conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def unix_conn(self, timeout=30):
        return UnixHTTPConnection(self.api_socket, timeout=timeout)

    def tcp(self, method, path, body=None, headers=None, timeout=30):
        conn = self.tcp_conn(timeout)
        try:
            return do_request(conn, method, path, body, headers)
        finally:
            conn.close()

    def api(self, method, path, body=None, headers=None, timeout=30):
        conn = self.unix_conn(timeout)
        try:
            return do_request(conn, method, path, body, headers)
        finally:
            conn.close()

    def raw(self, unix=False, timeout=10.0):
        return RawConn(self.api_socket if unix else self.port, timeout)

    # -- API helpers --------------------------------------------------------------------------

    def deploy(self, name, code, runtime="python3", handler="fn.main", via_tcp=False,
               headers=None, **fields):
        body = {"runtime": runtime, "handler": handler, "code": b64(code)}
        for k, v in fields.items():
            body[k] = v
        send = self.tcp if via_tcp else self.api
        return send("PUT", "/v1/functions/" + name, body, headers=headers, timeout=120)

    def deploy_ok(self, name, code, runtime="python3", handler="fn.main", **fields):
        r = self.deploy(name, code, runtime, handler, **fields)
        if r.status != 201:
            raise AssertionError("deploy %s: expected 201, got %r\n%s" % (name, r, self.log_tail()))
        return r.json()

    def invoke(self, name, event=None, raw=None, version=None, unix=False, timeout=60,
               headers=None):
        path = "/v1/functions/%s/invoke" % name
        if version is not None:
            path += "?version=%s" % version
        body = raw if raw is not None else (b"" if event is None else json.dumps(event).encode())
        send = self.api if unix else self.tcp
        return send("POST", path, body, headers=headers, timeout=timeout)

    def invoke_ok(self, name, event=None, **kw):
        r = self.invoke(name, event, **kw)
        if r.status != 200:
            raise AssertionError("invoke %s: expected 200, got %r\n%s" % (name, r, self.log_tail()))
        return r

    def info(self, name):
        r = self.api("GET", "/v1/functions/" + name)
        if r.status != 200:
            raise AssertionError("GET /v1/functions/%s: %r" % (name, r))
        return r.json()

    def function_dir(self, name):
        return os.path.join(self.state_dir, "functions", name)

    def tmp_entries(self):
        try:
            return os.listdir(os.path.join(self.state_dir, "tmp"))
        except FileNotFoundError:
            return []

    def version_dirs(self, name):
        try:
            return sorted(os.listdir(os.path.join(self.function_dir(name), "versions")))
        except FileNotFoundError:
            return []


# ---------------------------------------------------------------------------------------------


class SporeTestCase(unittest.TestCase):
    """Assertions that show the response and spored's log when they fail."""

    spored = None  # set by subclasses (class-wide) or per test

    def srv(self):
        return self.spored

    def assertStatus(self, resp, status, kind=None, msg=None):
        where = "" if msg is None else msg + ": "
        if resp.status != status:
            s = self.srv()
            self.fail("%sexpected HTTP %d, got %r%s" % (
                where, status, resp, "\n" + s.log_tail(30) if s else ""))
        if kind is not None:
            try:
                j = resp.json()
            except ValueError:
                self.fail("%serror body is not JSON: %r" % (where, resp))
            self.assertIsInstance(j, dict, "%serror body: %r" % (where, resp))
            self.assertEqual(j.get("error"), kind, "%serror kind: %r" % (where, resp))
            self.assertIsInstance(j.get("message"), str, "%serror message: %r" % (where, resp))
            self.assertTrue(j["message"], "%sempty error message: %r" % (where, resp))
        return resp

    def assertError(self, resp, status, kind, mentions=None, msg=None):
        self.assertStatus(resp, status, kind, msg)
        if mentions is not None:
            m = resp.json()["message"]
            words = mentions if isinstance(mentions, (list, tuple)) else [mentions]
            self.assertTrue(any(w.lower() in m.lower() for w in words),
                            "%serror message %r does not name %r" % (
                                "" if msg is None else msg + ": ", m, words))
        return resp.json()
