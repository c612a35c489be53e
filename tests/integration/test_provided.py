# SPDX-License-Identifier: MIT
"""The provided runtime (issue 8, Lambda custom runtimes), against a real, sandboxed spored.

A package's executable `bootstrap` is started once per instance with AWS_LAMBDA_RUNTIME_API
pointing at the instance's own Runtime API (127.0.0.1:9001 in its own network namespace) and
loops on GET .../invocation/next. Shown here:

- a bash bootstrap using curl (examples/provided/hello, in the shape of AWS's tutorial) answers
  invocations, keeps running between them, reports an error through the error route (the client
  sees the function error), honours the deadline (a slow invocation is answered 504 at the
  function's timeout, and the next invocation works), and its output is the function's log;
- init errors: init/error, bootstrap exiting before its first next, no bootstrap, one that is not
  executable;
- a bootstrap in Python (/usr/bin/python3, urllib and http.client with keep-alive), which also
  checks the headers, the environment and the API's answers to calls out of turn (400, 403, 404,
  405, 413);
- bootstrap exiting during an invocation (Runtime.ExitError, then started again);
- every instance and its bootstrap: uid != 0, Seccomp 2, NoNewPrivs 1, no capabilities; the API
  is not reachable from the host."""

import json
import os
import socket
import threading
import time
import unittest

import harness
from harness import Spored
from test_runtimes import RuntimeCase, dir_package, package, proc_status

HELLO_DIR = os.path.join(harness.EXAMPLES_DIR, "provided", "hello")

# A bootstrap in Python: one persistent http.client connection (keep-alive, as AWS's own runtime
# clients), each event a small command.
PY_BOOTSTRAP = r'''#!/usr/bin/python3
import http.client, json, os, sys, time, urllib.request

api = os.environ["AWS_LAMBDA_RUNTIME_API"]
base = "/2018-06-01/runtime"
conn = http.client.HTTPConnection(api, timeout=60)
print("python bootstrap: up", flush=True)


def call(method, path, body=None, headers=None, c=None):
    c = c or conn
    c.request(method, path if path.startswith("//") else base + path, body=body,
              headers=headers or {})
    r = c.getresponse()
    data = r.read()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def fresh(method, path, body=None, headers=None):
    c = http.client.HTTPConnection(api, timeout=60)
    try:
        return call(method, path, body, headers, c)
    finally:
        c.close()


invocations = 0
while True:
    before = conn.sock.getsockname() if conn.sock else None
    status, h, body = call("GET", "/invocation/next")
    after = conn.sock.getsockname()
    rid = h["lambda-runtime-aws-request-id"]
    invocations += 1
    event = json.loads(body)
    cmd = event.get("cmd") if isinstance(event, dict) else None
    if cmd == "headers":
        out = {"status": status, "headers": {k: v for k, v in h.items()
                                             if k.startswith("lambda-runtime-")},
               "now_ms": int(time.time() * 1000), "same_connection": before == after or before is None,
               "invocations": invocations, "content_type": h.get("content-type")}
    elif cmd == "env":
        out = {k: os.environ.get(k) for k in event["names"]}
        out["cwd"] = os.getcwd()
        out["pid"] = os.getpid()
        out["uid"] = os.getuid()
    elif cmd == "misuse":
        out = {}
        out["wrong_id"] = fresh("POST", "/invocation/not-%s/response" % rid, b"1")[0]
        st, _, b = fresh("POST", "/invocation/not-%s/error" % rid, b"{}")
        out["wrong_id_error"] = [st, json.loads(b)]
        out["late_init_error"] = fresh("POST", "/init/error", b"{}")[0]
        out["second_next"] = fresh("GET", "/invocation/next")[0]
        out["unknown"] = fresh("GET", "/invocation/xyz")[0]
        out["outside"] = fresh("GET", "//2018-06-01/other")[0]
        out["get_response"] = fresh("GET", "/invocation/%s/response" % rid)[0]
        out["post_next"] = fresh("POST", "/invocation/next", b"")[0]
        # urllib (Connection: close, a new connection per request), as AWS's tutorial in Python
        req = urllib.request.Request("http://%s%s/invocation/%s/response" % (api, base, rid),
                                     data=json.dumps(out).encode(), method="POST")
        with urllib.request.urlopen(req) as r:
            print("python bootstrap: urllib response answered %d %s" % (r.status, r.read().decode()),
                  flush=True)
        # a second answer for the same invocation
        print("python bootstrap: again %d" % fresh("POST", "/invocation/%s/response" % rid, b"2")[0],
              flush=True)
        continue
    elif cmd == "big":
        st, _, b = call("POST", "/invocation/%s/response" % rid, b"x" * (6 * 1024 * 1024 + 1))
        print("python bootstrap: big response answered %d %s" % (st, b.decode()), flush=True)
        conn.close()
        continue
    elif cmd == "raise":
        st, _, _ = call("POST", "/invocation/%s/error" % rid,
                        json.dumps({"errorMessage": event["message"], "errorType": "ValueError",
                                    "stackTrace": ["bootstrap line 1", "bootstrap line 2"]}),
                        {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
        continue
    elif cmd == "header-only-error":
        call("POST", "/invocation/%s/error" % rid, b"not json at all",
             {"Lambda-Runtime-Function-Error-Type": "Runtime.Custom"})
        continue
    elif cmd == "exit":
        print("python bootstrap: exiting with %d" % event["status"], flush=True)
        os._exit(event["status"])
    elif cmd == "text":
        call("POST", "/invocation/%s/response" % rid, b"plain text, not JSON")
        continue
    else:
        out = {"echo": event, "invocations": invocations}
    st, _, b = call("POST", "/invocation/%s/response" % rid, json.dumps(out).encode(),
                    {"Content-Type": "application/json"})
    assert st == 202 and json.loads(b) == {"status": "OK"}, (st, b)
'''


def bootstrap_package(script, **extra):
    files = {"bootstrap": (script, 0o755)}
    files.update(extra)
    return package(files)


class ProvidedCase(RuntimeCase):
    """A sandboxed spored per class and logs() come from test_runtimes.RuntimeCase."""
    def deploy(self, name, code, **fields):
        """A provided function with a whole core: a shell bootstrap forks and execs curl twice
        per invocation (~50 ms of CPU here), which the default 7% of a core of a 128 MB
        function turns into a second or more."""
        fields.setdefault("cpu_millis", 1000)
        return self.spored.deploy_ok(name, code, runtime="provided", **fields)

    def instance_pids(self, name):
        return [i["pid"] for i in self.spored.info(name)["instances"] if i.get("pid")]

    def assertSandboxed(self, name):
        """The instances of name and everything they run (bootstrap, curl)."""
        pids = self.instance_pids(name)
        self.assertTrue(pids, "no instance of %s" % name)
        everything = []
        for pid in pids:
            everything += [pid] + harness.descendants(pid)
        for pid in everything:
            try:
                st = proc_status(pid)
            except FileNotFoundError:
                continue
            what = "%s (%s)" % (harness.proc_describe(pid), name)
            self.assertNotIn(0, [int(x) for x in st["Uid"].split()], what)
            self.assertNotIn(0, [int(x) for x in st["Gid"].split()], what)
            self.assertEqual((st["Seccomp"], st["NoNewPrivs"]), ("2", "1"), what)
            for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
                self.assertEqual(int(st[cap], 16), 0, "%s: %s" % (what, cap))
        return pids

    def function_error(self, r, error_type, mentions=None):
        j = self.assertError(r, 500, "function_error", mentions)
        self.assertEqual(j["errorType"], error_type, j)
        return j


class TestShellBootstrap(ProvidedCase):
    """examples/provided/hello: bash and curl, as AWS's custom runtime tutorial."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.spored.deploy_ok("sh-hello", dir_package(HELLO_DIR), runtime="provided",
                             handler="function.handler", timeout_ms=2000, cpu_millis=1000,
                             max_instances=1)

    def test_answers_invocations(self):
        s = self.spored
        r = s.invoke_ok("sh-hello", {"name": "curl"})
        j = r.json()
        self.assertEqual(j["message"], "hello, curl")
        self.assertEqual(j["request_id"], r.header("x-spore-request-id"))
        n = j["invocations"]
        pids = self.assertSandboxed("sh-hello")
        # bootstrap is long-lived: the same process counts the next ones
        for i in range(1, 4):
            r = s.invoke_ok("sh-hello", {"name": "again"})
            self.assertEqual(r.header("x-spore-cold-start"), "false")
            self.assertEqual(r.json()["invocations"], n + i)
            self.assertEqual(r.json()["request_id"], r.header("x-spore-request-id"))
        self.assertEqual(self.instance_pids("sh-hello"), pids)
        # the deadline it was given: about now + the function's timeout
        now_ms = time.time() * 1000
        deadline = s.invoke_ok("sh-hello", {}).json()["deadline_ms"]
        self.assertTrue(now_ms + 1000 < deadline < now_ms + 2000 + 1000, (now_ms, deadline))

    def test_error_route(self):
        s = self.spored
        j = self.function_error(s.invoke("sh-hello", {"fail": "no such user"}), "HandlerError",
                                "no such user")
        self.assertEqual(j["errorMessage"], "no such user")
        # the instance and its bootstrap carry on
        self.assertEqual(s.invoke_ok("sh-hello", {"name": "after"}).json()["message"],
                         "hello, after")

    def test_deadline(self):
        s = self.spored
        self.deploy("sh-slow", dir_package(HELLO_DIR), handler="function.handler",
                    timeout_ms=1000, max_instances=1)
        self.assertEqual(s.invoke_ok("sh-slow", {"name": "first"}).json()["message"],
                         "hello, first")
        pids = self.instance_pids("sh-slow")
        t0 = time.monotonic()
        r = s.invoke("sh-slow", {"sleep": "30"})
        took = time.monotonic() - t0
        self.assertError(r, 504, "timeout", "1000 ms")
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 5)
        # the instance was killed with its bootstrap and the sleep; the next invocation works
        for pid in pids:
            self.assertTrue(harness.wait_for(lambda: not harness.proc_alive(pid), 5), pid)
        r = s.invoke_ok("sh-slow", {"name": "next"})
        self.assertEqual(r.json()["message"], "hello, next")
        self.assertEqual(r.header("x-spore-cold-start"), "true")

    def test_large_event_and_response(self):
        """curl sends a body over 1 MB with Expect: 100-continue; events of MBs go the other
        way."""
        s = self.spored
        script = ("#!/bin/sh\n"
                  "api=\"http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime\"\n"
                  "while :; do\n"
                  "  curl -sS -D /tmp/h -o /tmp/event \"$api/invocation/next\"\n"
                  "  id=$(sed -n 's/^[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *//p' /tmp/h"
                  " | tr -d '\\r')\n"
                  "  size=$(wc -c </tmp/event)\n"
                  "  { printf '{\"event_bytes\": %d, \"pad\": \"' $size; head -c 3000000 /dev/zero"
                  " | tr '\\000' x; printf '\"}'; } >/tmp/out\n"
                  "  curl -sS -o /dev/null --data-binary @/tmp/out"
                  " \"$api/invocation/$id/response\"\n"
                  "done\n")
        self.deploy("sh-big", bootstrap_package(script), timeout_ms=10000)
        event = {"pad": "y" * (4 * 1024 * 1024)}
        r = s.invoke_ok("sh-big", event, timeout=60)
        j = r.json()
        self.assertEqual(j["event_bytes"], len(json.dumps(event)))
        self.assertEqual(len(j["pad"]), 3000000)

    def test_log(self):
        s = self.spored
        self.deploy("sh-log", dir_package(HELLO_DIR), handler="function.handler")
        rid = s.invoke_ok("sh-log", {"name": "log"}).header("x-spore-request-id")
        want = ("stderr", "handler: request " + rid)
        lines = self.logs("sh-log", lambda ls: want in [(l["stream"], l["message"]) for l in ls])
        got = [(l["stream"], l["message"]) for l in lines]
        self.assertIn(want, got)
        self.assertIn(("stdout", "bootstrap: initialised, handler function.handler"), got)

    def test_not_reachable_from_host(self):
        s = self.spored
        s.invoke_ok("sh-hello", {})
        with socket.socket() as c:
            c.settimeout(2)
            try:
                c.connect(("127.0.0.1", 9001))
            except OSError:
                return
        # something of the host's own listens there: it must not be a spore instance
        for pid in self.instance_pids("sh-hello"):
            self.assertNotEqual(os.readlink("/proc/%d/ns/net" % pid),
                                os.readlink("/proc/self/ns/net"))

    def test_two_functions_side_by_side(self):
        """Each instance has its own 127.0.0.1:9001: two at once do not collide."""
        s = self.spored
        self.deploy("sh-other", dir_package(HELLO_DIR),
                    handler="function.handler")
        self.assertEqual(s.invoke_ok("sh-other", {"name": "b"}).json()["message"], "hello, b")
        self.assertEqual(s.invoke_ok("sh-hello", {"name": "a"}).json()["message"], "hello, a")
        self.assertTrue(self.instance_pids("sh-other") and self.instance_pids("sh-hello"))


class TestInitErrors(ProvidedCase):
    def test_init_error_route(self):
        s = self.spored
        script = ("#!/bin/sh\n"
                  "echo 'bootstrap: cannot find my config' >&2\n"
                  "curl -sS -o /dev/null -X POST "
                  "\"http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/init/error\" "
                  "-H 'Lambda-Runtime-Function-Error-Type: Runtime.ConfigError' "
                  "-d '{\"errorMessage\": \"config.json is missing\", "
                  "\"errorType\": \"ConfigError\", \"stackTrace\": [\"init line 3\"]}'\n"
                  "sleep 30\n")
        self.deploy("init-err", bootstrap_package(script))
        t0 = time.monotonic()
        j = self.function_error(s.invoke("init-err", {}), "ConfigError", "config.json is missing")
        self.assertLess(time.monotonic() - t0, 5)  # not the init timeout, nor the sleep
        self.assertIn("initialisation failed", j["message"])
        self.assertEqual(j["stackTrace"], ["init line 3"])
        lines = self.logs("init-err", lambda ls: any("cannot find" in l["message"] for l in ls))
        self.assertIn("bootstrap: cannot find my config", [l["message"] for l in lines])
        # the header names the type when the body does not
        script = ("#!/bin/sh\ncurl -sS -X POST -H 'Lambda-Runtime-Function-Error-Type: "
                  "Runtime.NoConfig' \"http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/"
                  "init/error\" -d ''\nexit 1\n")
        self.deploy("init-err2", bootstrap_package(script))
        self.function_error(s.invoke("init-err2", {}), "Runtime.NoConfig")

    def test_exit_before_next(self):
        s = self.spored
        self.deploy("init-exit", bootstrap_package("#!/bin/sh\necho dying >&2\nexit 3\n"))
        j = self.function_error(s.invoke("init-exit", {}), "Runtime.ExitError", "exit status 3")
        self.assertIn("initialisation failed", j["message"])

    def test_no_bootstrap(self):
        s = self.spored
        self.deploy("init-none", package({"main.sh": ("#!/bin/sh\n", 0o755)}))
        self.function_error(s.invoke("init-none", {}), "Runtime.InvalidEntrypoint",
                            "/var/task/bootstrap")
        self.deploy("init-noexec", package({"bootstrap": ("#!/bin/sh\n", 0o644)}))
        self.function_error(s.invoke("init-noexec", {}), "Runtime.InvalidEntrypoint",
                            "ermission denied")

    def test_bad_handlers_refused(self):
        for h in ("a b", "tab\there", "nl\n"):
            with self.subTest(handler=h):
                r = self.spored.deploy("prov-bad", bootstrap_package("#!/bin/sh\n"),
                                       runtime="provided", handler=h)
                self.assertError(r, 400, "bad_request", "handler")


class TestPythonBootstrap(ProvidedCase):
    """A bootstrap in another language: Debian's python3 with http.client and urllib."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.spored.deploy_ok("py-rt", bootstrap_package(PY_BOOTSTRAP), runtime="provided",
                             handler="anything.goes", cpu_millis=1000, max_instances=1,
                             memory_mb=192, timeout_ms=5000,
                             env={"GREETING": "hi"}, secrets={"API_TOKEN": "s3cr3t-t0ken"})

    def test_echo(self):
        s = self.spored
        for event in ({"a": 1}, [1, "two", None], "text", 5):
            self.assertEqual(s.invoke_ok("py-rt", event).json()["echo"], event)
        self.assertEqual(s.invoke_ok("py-rt").json()["echo"], None)  # an empty event is null
        self.assertSandboxed("py-rt")

    def test_headers(self):
        s = self.spored
        now_ms = time.time() * 1000
        r = s.invoke_ok("py-rt", {"cmd": "headers"})
        j = r.json()
        h = j["headers"]
        self.assertEqual(j["status"], 200)
        self.assertEqual(j["content_type"], "application/json")
        self.assertEqual(h["lambda-runtime-aws-request-id"], r.header("x-spore-request-id"))
        self.assertEqual(h["lambda-runtime-invoked-function-arn"],
                         "arn:aws:lambda:local:000000000000:function:py-rt")
        self.assertRegex(h["lambda-runtime-trace-id"],
                         r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$")
        deadline = int(h["lambda-runtime-deadline-ms"])
        self.assertTrue(now_ms + 4000 < deadline < now_ms + 6000, (now_ms, deadline))
        # keep-alive: the next ones come over the same connection
        for _ in range(3):
            j2 = s.invoke_ok("py-rt", {"cmd": "headers"}).json()
            self.assertTrue(j2["same_connection"], j2)
            self.assertGreater(j2["invocations"], j["invocations"])

    def test_environment(self):
        names = ["AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "_HANDLER",
                 "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
                 "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "GREETING", "API_TOKEN", "HOME", "SPORED"]
        j = self.spored.invoke_ok("py-rt", {"cmd": "env", "names": names}).json()
        self.assertEqual({k: j[k] for k in names}, {
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "LAMBDA_TASK_ROOT": "/var/task",
            "_HANDLER": "anything.goes", "AWS_LAMBDA_FUNCTION_NAME": "py-rt",
            "AWS_LAMBDA_FUNCTION_VERSION": "1", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "192",
            "GREETING": "hi", "API_TOKEN": "s3cr3t-t0ken", "HOME": None, "SPORED": None})
        self.assertEqual(j["cwd"], "/var/task")
        self.assertGreater(j["pid"], 1)  # the instance is pid 1; bootstrap its child
        self.assertNotEqual(j["uid"], 0)

    def test_error_route(self):
        s = self.spored
        j = self.function_error(s.invoke("py-rt", {"cmd": "raise", "message": "bad input"}),
                                "ValueError", "bad input")
        self.assertEqual(j["errorMessage"], "bad input")
        self.assertEqual(j["stackTrace"], ["bootstrap line 1", "bootstrap line 2"])
        # no JSON body: the header's type, the body as the message
        j = self.function_error(s.invoke("py-rt", {"cmd": "header-only-error"}), "Runtime.Custom")
        self.assertEqual(j["errorMessage"], "not json at all")
        self.assertEqual(s.invoke_ok("py-rt", {"x": 1}).json()["echo"], {"x": 1})

    def test_calls_out_of_turn(self):
        s = self.spored
        j = s.invoke_ok("py-rt", {"cmd": "misuse"}).json()
        self.assertEqual(j["wrong_id"], 400)
        self.assertEqual(j["wrong_id_error"], [400, {"errorMessage": "Invalid request ID",
                                                     "errorType": "InvalidRequestID"}])
        self.assertEqual(j["late_init_error"], 403)
        self.assertEqual(j["second_next"], 403)
        self.assertEqual((j["unknown"], j["outside"]), (404, 404))
        self.assertEqual((j["get_response"], j["post_next"]), (405, 405))
        # its second answer to that invocation is refused; between invocations the API is not
        # served, so that call is answered when the next invocation comes
        self.assertEqual(s.invoke_ok("py-rt", 7).json()["echo"], 7)
        lines = self.logs("py-rt", lambda ls: any("again" in l["message"] for l in ls))
        msgs = [l["message"] for l in lines]
        self.assertIn('python bootstrap: urllib response answered 202 {"status":"OK"}', msgs)
        self.assertIn("python bootstrap: again 400", msgs)

    def test_response_not_json_passes_through(self):
        r = self.spored.invoke_ok("py-rt", {"cmd": "text"})
        self.assertEqual(r.body, b"plain text, not JSON")

    def test_response_too_large(self):
        s = self.spored
        self.function_error(s.invoke("py-rt", {"cmd": "big"}), "Function.ResponseSizeTooLarge",
                            "maximum allowed payload size")
        # the same bootstrap goes on (it reads its 413 once the next invocation is served)
        self.assertEqual(s.invoke_ok("py-rt", {"after": "big"}).json()["echo"], {"after": "big"})
        lines = self.logs("py-rt", lambda ls: any("big response" in l["message"] for l in ls))
        self.assertTrue(any(l["message"].startswith("python bootstrap: big response answered 413")
                            for l in lines), [l["message"] for l in lines][-5:])

    def test_exit_during_invocation(self):
        s = self.spored
        self.deploy("py-exit", bootstrap_package(PY_BOOTSTRAP), max_instances=1)
        first = s.invoke_ok("py-exit", {"n": 1}).json()["invocations"]
        pids = self.instance_pids("py-exit")
        j = self.function_error(s.invoke("py-exit", {"cmd": "exit", "status": 7}),
                                "Runtime.ExitError", "exit status 7")
        self.assertIn("Runtime exited with error", j["errorMessage"])
        # started again in the same instance: a new bootstrap counts from 1
        r = s.invoke_ok("py-exit", {"n": 2})
        self.assertEqual(r.json(), {"echo": {"n": 2}, "invocations": 1})
        self.assertEqual(first, 1)
        self.assertEqual(self.instance_pids("py-exit"), pids)
        self.assertSandboxed("py-exit")

    def test_concurrent(self):
        s = self.spored
        self.deploy("py-many", bootstrap_package(PY_BOOTSTRAP), max_instances=4)
        out = {}

        def call(i):
            out[i] = s.invoke("py-many", {"i": i})

        threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for i in range(8):
            self.assertStatus(out[i], 200)
            self.assertEqual(out[i].json()["echo"], {"i": i})


class TestUnsandboxed(ProvidedCase):
    """"sandbox": false (development): instances share the host's network namespace, so each
    serves the API on a port of its own; bootstrap goes with its instance."""

    @classmethod
    def setUpClass(cls):
        cls.spored = s = Spored({"sandbox": "no"})
        cls.addClassCleanup(s.destroy)
        s.start()

    def test_ports_and_processes(self):
        s = self.spored
        self.deploy("un-a", bootstrap_package(PY_BOOTSTRAP), max_instances=1)
        self.deploy("un-b", bootstrap_package(PY_BOOTSTRAP), max_instances=1)
        names = ["AWS_LAMBDA_RUNTIME_API"]
        a = s.invoke_ok("un-a", {"cmd": "env", "names": names}).json()
        b = s.invoke_ok("un-b", {"cmd": "env", "names": names}).json()
        self.assertRegex(a["AWS_LAMBDA_RUNTIME_API"], r"^127\.0\.0\.1:\d+$")
        self.assertNotEqual(a["AWS_LAMBDA_RUNTIME_API"], b["AWS_LAMBDA_RUNTIME_API"])
        self.assertEqual(s.invoke_ok("un-a", {"k": 1}).json()["echo"], {"k": 1})
        # an exit mid-invocation: the error, then a new bootstrap
        self.function_error(s.invoke("un-b", {"cmd": "exit", "status": 2}), "Runtime.ExitError",
                            "exit status 2")
        self.assertEqual(s.invoke_ok("un-b", {"k": 2}).json(), {"echo": {"k": 2},
                                                                 "invocations": 1})
        pids = self.instance_pids("un-a") + self.instance_pids("un-b")
        kids = [k for p in pids for k in harness.descendants(p)]
        self.assertEqual(len(kids), 2, [harness.proc_describe(k) for k in kids])
        # deleting the functions ends their instances and the bootstraps with them
        for name in ("un-a", "un-b"):
            self.assertStatus(s.api("DELETE", "/v1/functions/" + name), 204)
        for k in kids + pids:
            self.assertTrue(harness.wait_for(lambda: not harness.proc_alive(k), 5),
                            harness.proc_describe(k))


if __name__ == "__main__":
    harness.main()
