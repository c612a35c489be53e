# SPDX-License-Identifier: MIT
"""Every error of docs/API.md answered with its status and kind, refused deploys leave nothing on
disk, and spored keeps serving afterwards."""

import gzip
import io
import json
import os
import tarfile
import time
import zipfile

import harness
from harness import MiB, Spored, SporeTestCase, b64, py_package, request_bytes

OK_SRC = "def main(event, context):\n    return {'ok': True}\n"

CRASH_SRC = """
import os
INSTANCE = os.urandom(8).hex()  # one per instance: code is loaded after the fork
def main(event, context):
    if "segv" in event:
        import ctypes
        ctypes.string_at(0)  # a real fault: signals PID 1 sends itself are ignored
    if "exit" in event:
        os._exit(event["exit"])
    return {"instance": INSTANCE}
"""


def tar_with(entries):
    """entries: list of TarInfo-building tuples (name, kind, linkname_or_content)."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w:gz") as tf:
        data = OK_SRC.encode()
        tf.addfile(harness._tarinfo("fn.py", len(data)), io.BytesIO(data))
        for name, kind, arg in entries:
            if kind == tarfile.REGTYPE:
                d = arg.encode() if isinstance(arg, str) else arg
                tf.addfile(harness._tarinfo(name, len(d)), io.BytesIO(d))
            else:
                ti = harness._tarinfo(name, 0, kind=kind)
                if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                    ti.linkname = arg
                if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                    ti.devmajor, ti.devminor = arg
                tf.addfile(ti)
    return bio.getvalue()


def zip_with(entries):
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("fn.py", OK_SRC)
        for name, mode, content in entries:
            zi = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            zi.create_system = 3  # unix, so external_attr carries the mode
            zi.external_attr = mode << 16
            zf.writestr(zi, content)
    return bio.getvalue()


def send_oversized(conn, head, total, chunked=False, piece=MiB):
    """Sends a request head announcing a big body, then (only if spored has not answered yet)
    the body piece by piece, stopping as soon as an answer is readable. Returns the response."""
    conn.send(head)
    sent = 0
    while sent < total and not conn.readable_within(2.0 if sent == 0 else 0):
        n = min(piece, total - sent)
        data = b"a" * n
        if chunked:
            data = b"%x\r\n" % n + data + b"\r\n"
        try:
            conn.sock.settimeout(10)
            conn.send(data)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            break
        sent += n
    if chunked and sent >= total and not conn.readable_within(0):
        try:
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
    conn.sock.settimeout(20)
    return conn.read_response()


class ErrorCase(SporeTestCase):
    def assert_nothing_left(self, name):
        s = self.spored
        self.assertFalse(os.path.exists(s.function_dir(name)),
                         "refused deploy of %s left %s" % (name, s.function_dir(name)))
        self.assertEqual(s.tmp_entries(), [], "refused deploy left files in state/tmp")
        self.assertError(s.api("GET", "/v1/functions/" + name), 404, "not_found")

    def assert_refused_archive(self, name, code, mentions=None):
        r = self.spored.deploy(name, code)
        self.assertError(r, 400, "bad_request", mentions, msg="deploy %s" % name)
        self.assert_nothing_left(name)


class TestErrors(ErrorCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = s = Spored.for_class(cls)
        hello = harness.py_hello_package()
        s.deploy_ok("hello", hello, handler="handler.hello")
        s.deploy_ok("echo", hello, handler="handler.echo")

    # -- routing ---------------------------------------------------------------------------

    def test_404_unknown_route(self):
        s = self.spored
        for send in (s.tcp, s.api):
            for method, path in (("GET", "/"), ("GET", "/nope"), ("GET", "/v2/functions"),
                                 ("GET", "/v1/functions/hello/nope"), ("POST", "/v1/nope"),
                                 ("GET", "/v1/functions/hello/invoke/extra")):
                self.assertError(send(method, path), 404, "not_found", msg="%s %s" % (method, path))

    def test_404_unknown_function(self):
        s = self.spored
        self.assertError(s.invoke("nosuch", {}), 404, "not_found")
        self.assertError(s.invoke("nosuch", {}, unix=True), 404, "not_found")
        self.assertError(s.api("GET", "/v1/functions/nosuch"), 404, "not_found")
        self.assertError(s.api("DELETE", "/v1/functions/nosuch"), 404, "not_found")
        self.assertError(s.api("POST", "/v1/functions/nosuch/rollback"), 404, "not_found")
        self.assertError(s.api("GET", "/v1/functions/nosuch/logs"), 404, "not_found")

    def test_404_unknown_version(self):
        s = self.spored
        self.assertError(s.invoke("hello", {}, version=99), 404, "not_found")
        self.assertError(s.api("POST", "/v1/functions/hello/rollback", {"version": 99}),
                         404, "not_found")
        self.assertEqual(s.info("hello")["live_version"], 1)

    def test_405_wrong_method(self):
        s = self.spored
        for send, method, path in ((s.tcp, "DELETE", "/healthz"), (s.tcp, "POST", "/healthz"),
                                   (s.api, "POST", "/v1/functions"),
                                   (s.api, "POST", "/v1/functions/hello"),
                                   (s.api, "PUT", "/v1/runtimes"),
                                   (s.tcp, "GET", "/v1/functions/hello/invoke"),
                                   (s.tcp, "PUT", "/v1/functions/hello/invoke"),
                                   (s.api, "GET", "/v1/functions/hello/rollback"),
                                   (s.api, "POST", "/v1/functions/hello/logs")):
            self.assertError(send(method, path), 405, "method_not_allowed",
                             msg="%s %s" % (method, path))

    # -- invoke input ----------------------------------------------------------------------

    def test_400_invalid_json_invoke(self):
        s = self.spored
        for raw in (b"{bad", b"{\"a\":1", b"nul", b"[1,]", b"\xff\xfe", b"{} {}", b"'single'",
                    b"\"unterminated", b"1 2"):
            with self.subTest(raw=raw):
                self.assertError(s.invoke("echo", raw=raw), 400, "bad_request")

    def test_400_bad_version_query(self):
        s = self.spored
        for q in ("abc", "-1", "1x", "1.5"):
            r = s.tcp("POST", "/v1/functions/hello/invoke?version=" + q, b"{}")
            self.assertError(r, 400, "bad_request", "version", msg="version=%r" % q)

    # -- deploy validation -----------------------------------------------------------------

    def test_400_bad_deploy_fields(self):
        s = self.spored
        good = {"runtime": "python3", "handler": "fn.main", "code": b64(py_package(OK_SRC))}
        cases = [
            ("runtime", {"runtime": None}),
            ("runtime", {"runtime": "cobol"}),
            ("runtime", {"runtime": 3}),
            ("runtime", {"runtime": ""}),
            ("handler", {"handler": None}),
            ("handler", {"handler": ""}),
            ("handler", {"handler": 7}),
            ("handler", {"handler": ["fn.main"]}),
            ("memory_mb", {"memory_mb": 1}),
            ("memory_mb", {"memory_mb": 63}),
            ("memory_mb", {"memory_mb": 10241}),
            ("memory_mb", {"memory_mb": "128"}),
            ("memory_mb", {"memory_mb": 128.5}),
            ("memory_mb", {"memory_mb": -128}),
            ("timeout_ms", {"timeout_ms": 0}),
            ("timeout_ms", {"timeout_ms": -1}),
            ("timeout_ms", {"timeout_ms": 900001}),
            ("timeout_ms", {"timeout_ms": "30s"}),
            ("timeout_ms", {"timeout_ms": 1e12}),
            ("env", {"env": "A=1"}),
            ("env", {"env": ["A", "1"]}),
            ("env", {"env": {"A": 1}}),
            ("env", {"env": {"A": None}}),
            ("env", {"env": {"1BAD": "x"}}),
            ("env", {"env": {"BAD-KEY": "x"}}),
            ("env", {"env": {"": "x"}}),
            ("env", {"env": {"AWS_REGION": "x"}}),
            ("env", {"env": {"SPORE_X": "x"}}),
            ("env", {"env": {"BIG": "x" * 5000}}),
            ("code", {"code": None}),
            ("code", {"code": ""}),
            ("code", {"code": "!!! not base64 !!!"}),
            ("code", {"code": 12}),
            ("code", {"code": b64(b"this is not an archive, just text\n" * 10)}),
            ("code", {"code": b64(b"\x1f\x8b\x08\x00garbage after a gzip magic")}),
            ("colour", {"colour": "blue"}),
        ]
        for i, (field, change) in enumerate(cases):
            body = dict(good)
            for k, v in change.items():
                if v is None:
                    body.pop(k, None)
                else:
                    body[k] = v
            name = "bad-field-%d" % i
            with self.subTest(field=field, change=str(change)[:80]):
                r = s.api("PUT", "/v1/functions/" + name, body)
                self.assertError(r, 400, "bad_request", field)
                self.assert_nothing_left(name)

    def test_400_bad_name(self):
        s = self.spored
        code = py_package(OK_SRC)
        for name in ("Bad", "-lead", "_lead", "a.b", "a" * 65, "caf%C3%A9", "a%20b", "UPPER"):
            with self.subTest(name=name):
                r = s.deploy(name, code)
                self.assertError(r, 400, "bad_request", "name")
        self.assertEqual(s.tmp_entries(), [])
        # the longest valid name works
        longest = "a" + "0_-z" * 15 + "abc"
        self.assertEqual(len(longest), 64)
        s.deploy_ok(longest, code)
        self.assertEqual(s.invoke_ok(longest, {}).json(), {"ok": True})

    def test_400_bad_deploy_body(self):
        s = self.spored
        for raw in (b"", b"{", b"[]", b"\"str\"", b"null", b"42", b"{\"runtime\": \"python3\",}"):
            r = s.api("PUT", "/v1/functions/badbody", raw)
            self.assertError(r, 400, "bad_request", msg=repr(raw))
        self.assert_nothing_left("badbody")

    # -- refused archives ------------------------------------------------------------------

    def test_archive_dotdot(self):
        self.assert_refused_archive("dotdot-tar", tar_with([("../evil.txt", tarfile.REGTYPE, "x")]),
                                    "evil")
        self.assert_refused_archive("dotdot-tar2",
                                    tar_with([("sub/../../evil2.txt", tarfile.REGTYPE, "x")]), "evil2")
        self.assert_refused_archive("dotdot-zip", zip_with([("../evil3.txt", 0o100644, "x")]), "evil3")
        for p in ("evil.txt", "evil2.txt", "evil3.txt"):
            self.assertFalse(os.path.exists(os.path.join(self.spored.state_dir, "functions", p)))
            self.assertFalse(os.path.exists(os.path.join(self.spored.state_dir, p)))

    def test_archive_absolute_path(self):
        target = os.path.join(self.spored.dir, "abs-evil.txt")
        self.assert_refused_archive("abs-tar", tar_with([(target, tarfile.REGTYPE, "x")]), "abs-evil")
        self.assert_refused_archive("abs-zip", zip_with([(target, 0o100644, "x")]), "abs-evil")
        self.assertFalse(os.path.exists(target), "an absolute entry was written outside")

    def test_archive_links_outside(self):
        outside = os.path.join(self.spored.dir, "outside")
        os.makedirs(outside, exist_ok=True)
        self.assert_refused_archive("sym-abs", tar_with([("link", tarfile.SYMTYPE, "/etc/passwd")]),
                                    "link")
        self.assert_refused_archive("sym-rel", tar_with([("sub/link", tarfile.SYMTYPE,
                                                          "../../../../etc/passwd")]), "link")
        # a symlink to a directory outside, then a file written through it
        self.assert_refused_archive("sym-dir", tar_with([("d", tarfile.SYMTYPE, outside),
                                                         ("d/planted.txt", tarfile.REGTYPE, "x")]))
        self.assert_refused_archive("hard-out", tar_with([("hard", tarfile.LNKTYPE, "/etc/passwd")]),
                                    "hard")
        self.assert_refused_archive("zip-sym", zip_with([("zlink", 0o120777, "/etc/passwd")]), "zlink")
        self.assertEqual(os.listdir(outside), [], "a file was written through a symlink")

    def test_archive_device_and_special_files(self):
        self.assert_refused_archive("dev-chr", tar_with([("dev0", tarfile.CHRTYPE, (1, 3))]), "dev0")
        self.assert_refused_archive("dev-blk", tar_with([("blk0", tarfile.BLKTYPE, (7, 0))]), "blk0")
        self.assert_refused_archive("fifo", tar_with([("fifo0", tarfile.FIFOTYPE, None)]), "fifo0")

    def test_archive_too_many_entries(self):
        entries = [("f/%05d" % i, tarfile.REGTYPE, b"") for i in range(10001)]
        self.assert_refused_archive("many", tar_with(entries))

    def test_archive_too_big_unpacked(self):
        code = harness.tar_gz_zeros("big.bin", 257 * MiB, extra={"fn.py": OK_SRC})
        self.assertLess(len(code), 4 * MiB)
        self.assert_refused_archive("toobig", code)
        # the sum counts, not only each file
        bio = io.BytesIO()
        with gzip.GzipFile(fileobj=bio, mode="wb", compresslevel=1) as gz:
            with tarfile.open(fileobj=gz, mode="w|") as tf:
                for i in range(3):
                    tf.addfile(harness._tarinfo("part%d.bin" % i, 90 * MiB),
                               io.BufferedReader(harness._ZeroReader(90 * MiB), MiB))
        self.assert_refused_archive("toobig-sum", bio.getvalue())

    def test_refused_deploy_keeps_existing_version(self):
        s = self.spored
        s.deploy_ok("keeper", py_package(OK_SRC))
        for code in (tar_with([("../x", tarfile.REGTYPE, "x")]), b"not an archive"):
            self.assertError(s.deploy("keeper", code), 400, "bad_request")
        r = s.api("PUT", "/v1/functions/keeper", {"runtime": "python3", "handler": "fn.main",
                                                  "code": b64(py_package(OK_SRC)), "memory_mb": 1})
        self.assertError(r, 400, "bad_request", "memory_mb")
        info = s.info("keeper")
        self.assertEqual(info["live_version"], 1)
        self.assertEqual([v["version"] for v in info["versions"]], [1])
        self.assertEqual(s.version_dirs("keeper"), ["1"])
        self.assertEqual(s.tmp_entries(), [])
        self.assertEqual(s.invoke_ok("keeper", {}).json(), {"ok": True})
        # refused deploys do not use up version numbers
        self.assertEqual(s.deploy_ok("keeper", py_package(OK_SRC))["version"], 2)

    # -- rollback --------------------------------------------------------------------------

    def test_rollback_errors(self):
        s = self.spored
        s.deploy_ok("rb", py_package(OK_SRC))
        self.assertError(s.api("POST", "/v1/functions/rb/rollback"), 409, "conflict")
        self.assertError(s.api("POST", "/v1/functions/rb/rollback", {"version": 7}), 404, "not_found")
        for body in ({"version": "1"}, {"version": -1}, {"version": 1.5}, {"vers": 1}, b"{bad", b"[]"):
            self.assertError(s.api("POST", "/v1/functions/rb/rollback", body), 400, "bad_request",
                             msg=repr(body))
        self.assertEqual(s.info("rb")["live_version"], 1)

    # -- size limits -----------------------------------------------------------------------

    def test_413_invoke_body(self):
        s = self.spored
        head = ("POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: spore\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (6 * MiB + 1))
        with s.raw() as c:
            r = send_oversized(c, head.encode(), 6 * MiB + 1)
        self.assertStatus(r, 413, "payload_too_large")

    def test_413_invoke_body_chunked(self):
        s = self.spored
        head = (b"POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: spore\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        with s.raw() as c:
            r = send_oversized(c, head, 7 * MiB, chunked=True)
        self.assertStatus(r, 413, "payload_too_large")

    def test_invoke_body_at_limit(self):
        s = self.spored
        s.deploy_ok("noop", harness.py_hello_package(), handler="handler.noop")
        body = b"\"" + b"a" * (6 * MiB - 2) + b"\""
        self.assertEqual(len(body), 6 * MiB)
        s.invoke_ok("noop", raw=body)

    def test_413_deploy_body(self):
        s = self.spored
        head = ("PUT /v1/functions/huge HTTP/1.1\r\nHost: spore\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (64 * MiB + 1))
        with s.raw(unix=True) as c:
            r = send_oversized(c, head.encode(), 64 * MiB + 1, piece=4 * MiB)
        self.assertStatus(r, 413, "payload_too_large")
        self.assert_nothing_left("huge")

    def test_431_header_too_large(self):
        s = self.spored
        with s.raw() as c:
            c.send(request_bytes("GET", "/healthz", headers={"X-Big": "a" * (17 * 1024)}))
            r = c.read_response()
        self.assertStatus(r, 431, "header_too_large")
        # many headers adding up over the limit
        hdrs = {"X-H%03d" % i: "b" * 100 for i in range(200)}
        with s.raw() as c:
            c.send(request_bytes("GET", "/healthz", headers=hdrs))
            r = c.read_response()
        self.assertStatus(r, 431, "header_too_large")
        # just under the limit is fine
        with s.raw() as c:
            c.send(request_bytes("GET", "/healthz", headers={"X-Big": "a" * (15 * 1024)}))
            self.assertStatus(c.read_response(), 200)

    # -- protocol --------------------------------------------------------------------------

    def test_505_http_version(self):
        with self.spored.raw() as c:
            c.send(b"GET /healthz HTTP/2.0\r\nHost: spore\r\n\r\n")
            r = c.read_response()
        self.assertStatus(r, 505, "http_version_not_supported")

    def test_unsupported_transfer_coding(self):
        with self.spored.raw() as c:
            c.send(b"POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: spore\r\n"
                   b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
            r = c.read_response()
        self.assertIn(r.status, (400, 501), r)
        self.assertStatus(r, r.status, "not_implemented" if r.status == 501 else "bad_request")

    # -- function failures -----------------------------------------------------------------

    def test_500_function_error(self):
        s = self.spored
        s.deploy_ok("fail", harness.py_hello_package(), handler="handler.fail")
        r = s.invoke("fail", {})
        j = self.assertError(r, 500, "function_error")
        self.assertEqual(j["errorType"], "ValueError", j)
        self.assertIsInstance(j["errorMessage"], str)
        self.assertIsInstance(j["stackTrace"], list, j)
        self.assertTrue(j["stackTrace"], j)
        self.assertTrue(any("handler.py" in str(f) for f in j["stackTrace"]), j)
        self.assertEqual(r.header("X-Spore-Version"), "1")
        # the instance survives a raised exception: the next call is warm
        r = s.invoke("fail", {})
        self.assertError(r, 500, "function_error")
        self.assertEqual(r.header("X-Spore-Cold-Start"), "false", r)
        s.deploy_ok("nat-fail", harness.native_hello_package(), runtime="native",
                    handler=harness.native_handler("fail"))
        j = self.assertError(s.invoke("nat-fail", {}), 500, "function_error")
        self.assertIsInstance(j.get("errorType"), str, j)
        self.assertIn("errorMessage", j)

    def test_500_init_errors(self):
        s = self.spored
        s.deploy_ok("imperr", py_package("import nonexistent_module_xyz\n" + OK_SRC))
        for _ in range(2):
            j = self.assertError(s.invoke("imperr", {}), 500, "function_error")
            self.assertIn("nonexistent_module_xyz", json.dumps(j))
        s.deploy_ok("noattr", py_package(OK_SRC), handler="fn.nosuchfunction")
        j = self.assertError(s.invoke("noattr", {}), 500, "function_error")
        self.assertIn("nosuchfunction", json.dumps(j))
        s.deploy_ok("nomod", py_package(OK_SRC), handler="missingmodule.main")
        j = self.assertError(s.invoke("nomod", {}), 500, "function_error")
        self.assertIn("missingmodule", json.dumps(j))
        s.deploy_ok("syntax", py_package("def main(event, context)\n    return 1\n"))
        j = self.assertError(s.invoke("syntax", {}), 500, "function_error")
        self.assertIn("SyntaxError", json.dumps(j))
        s.deploy_ok("initraise", py_package("raise RuntimeError('boom at init')\n" + OK_SRC))
        j = self.assertError(s.invoke("initraise", {}), 500, "function_error")
        self.assertIn("boom at init", json.dumps(j))
        # fixing the function with a new version works
        s.deploy_ok("imperr", py_package(OK_SRC))
        deadline = time.monotonic() + 2
        while True:
            r = s.invoke("imperr", {})
            if r.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertStatus(r, 200)

    def test_504_timeout(self):
        s = self.spored
        s.deploy_ok("sleepy", harness.py_hello_package(), handler="handler.sleep", timeout_ms=500)
        s.invoke_ok("sleepy", {"seconds": 0})
        old = {i["pid"]: harness.proc_stat(i["pid"])[2] for i in s.info("sleepy")["instances"]}
        self.assertEqual(len(old), 1)
        t0 = time.monotonic()
        r = s.invoke("sleepy", {"seconds": 5})
        took = time.monotonic() - t0
        self.assertError(r, 504, "timeout")
        self.assertGreaterEqual(took, 0.45)
        self.assertLess(took, 3.0)
        self.assertTrue(harness.wait_for(
            lambda: not any(harness.proc_alive(p, t) for p, t in old.items()), 2),
            "timed out instance not killed: %r" % old)
        r = s.invoke_ok("sleepy", {"seconds": 0})
        new = [i["pid"] for i in s.info("sleepy")["instances"]]
        self.assertTrue(new)
        self.assertFalse(set(new) & set(old), "the killed instance is still listed")
        self.assertEqual(r.header("X-Spore-Version"), "1")

    def test_502_crashed(self):
        s = self.spored
        s.deploy_ok("crashy", harness.py_hello_package(), handler="handler.crash")
        s.deploy_ok("nat-crash", harness.native_hello_package(), runtime="native",
                    handler=harness.native_handler("crash"))
        for name in ("crashy", "nat-crash"):
            with self.subTest(name=name):
                j = self.assertError(s.invoke(name, {"how": "segv"}), 502, "crashed")
                self.assertIn("SIGSEGV", j["message"])
                j = self.assertError(s.invoke(name, {"how": "exit", "code": 3}), 502, "crashed")
                self.assertIn("3", j["message"])
                self.assertIn("exit", j["message"].lower())

    def test_502_crashed_instance_replaced(self):
        s = self.spored
        s.deploy_ok("crash2", py_package(CRASH_SRC))
        inst1 = s.invoke_ok("crash2", {}).json()["instance"]
        self.assertEqual(s.invoke_ok("crash2", {}).json()["instance"], inst1)  # warm, same one
        pids1 = [i["pid"] for i in s.info("crash2")["instances"]]
        self.assertEqual(len(pids1), 1)
        self.assertError(s.invoke("crash2", {"segv": 1}), 502, "crashed", "SIGSEGV")
        r = s.invoke_ok("crash2", {})
        self.assertNotEqual(r.json()["instance"], inst1)
        self.assertEqual(r.header("X-Spore-Cold-Start"), "true", r)
        self.assertNotIn(pids1[0], [i["pid"] for i in s.info("crash2")["instances"]])
        self.assertError(s.invoke("crash2", {"exit": 0}), 502, "crashed", "0")
        self.assertEqual(s.invoke_ok("crash2", {}).status, 200)

    # -- auth ------------------------------------------------------------------------------

    def test_401_management_on_tcp(self):
        s = self.spored
        code = b64(py_package(OK_SRC))
        for method, path, body in (("GET", "/v1/functions", None),
                                   ("GET", "/v1/functions/hello", None),
                                   ("GET", "/v1/runtimes", None),
                                   ("PUT", "/v1/functions/viatcp",
                                    {"runtime": "python3", "handler": "fn.main", "code": code}),
                                   ("DELETE", "/v1/functions/hello", None),
                                   ("POST", "/v1/functions/hello/rollback", None),
                                   ("GET", "/v1/functions/hello/logs", None)):
            for hdrs in ({}, {"Authorization": "Bearer anything"}):
                self.assertError(s.tcp(method, path, body, headers=hdrs), 401, "unauthorized",
                                 "token", msg="%s %s %r" % (method, path, hdrs))
        self.assert_nothing_left("viatcp")
        self.assertEqual(s.info("hello")["live_version"], 1)
        # invoke and healthz do not need it
        self.assertEqual(s.invoke_ok("hello", {"name": "tcp"}).json()["message"], "hello, tcp")

    # -- last ------------------------------------------------------------------------------

    def test_zz_still_serving(self):
        s = self.spored
        self.assertTrue(s.running(), "spored died\n" + s.log_tail())
        self.assertStatus(s.tcp("GET", "/healthz"), 200)
        self.assertStatus(s.api("GET", "/healthz"), 200)
        self.assertEqual(s.invoke_ok("hello", {"name": "end"}).json()["message"], "hello, end")
        self.assertEqual(s.invoke_ok("echo", [1, 2]).json(), [1, 2])
        self.assertEqual(s.tmp_entries(), [])


class TestApiToken(ErrorCase):
    TOKEN = "s3cret-T0ken_value"

    @classmethod
    def setUpClass(cls):
        cls.spored = Spored.for_class(cls, {"api_token": cls.TOKEN})

    def test_token(self):
        s = self.spored
        for hdrs in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer " + self.TOKEN[:-1]},
                     {"Authorization": "Bearer " + self.TOKEN + "x"},
                     {"Authorization": "Basic " + self.TOKEN}, {"Authorization": self.TOKEN}):
            self.assertError(s.tcp("GET", "/v1/functions", headers=hdrs), 401, "unauthorized",
                             msg=repr(hdrs))
        ok = {"Authorization": "Bearer " + self.TOKEN}
        r = self.assertStatus(s.tcp("GET", "/v1/functions", headers=ok), 200)
        self.assertEqual(r.json(), {"functions": []})
        self.assertStatus(s.tcp("GET", "/v1/runtimes", headers=ok), 200)
        r = s.deploy("tok", py_package(OK_SRC), via_tcp=True, headers=ok)
        self.assertStatus(r, 201)
        # invoke needs no token; the unix socket needs none either
        self.assertEqual(s.invoke_ok("tok", {}).json(), {"ok": True})
        self.assertEqual(s.info("tok")["live_version"], 1)
        self.assertError(s.deploy("tok2", py_package(OK_SRC), via_tcp=True,
                                  headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
        self.assert_nothing_left("tok2")
        self.assertStatus(s.tcp("DELETE", "/v1/functions/tok", headers=ok), 204)


if __name__ == "__main__":
    harness.main()
