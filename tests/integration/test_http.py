# SPDX-License-Identifier: MIT
"""The HTTP/1.1 front end: keep-alive, pipelining, chunked bodies, Expect: 100-continue,
malformed requests, slow and idle clients, thousands of idle connections."""

import json
import socket
import time

import harness
from harness import MiB, Spored, SporeTestCase, py_package, request_bytes

SLEEP_ECHO = """
import time
def main(event, context):
    if isinstance(event, dict) and event.get("sleep"):
        time.sleep(event["sleep"])
    return event
"""


def invoke_bytes(name, event, extra_headers=None):
    return request_bytes("POST", "/v1/functions/%s/invoke" % name, json.dumps(event).encode(),
                         dict({"Content-Type": "application/json"}, **(extra_headers or {})))


class TestHttp(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = s = Spored.for_class(cls)
        s.deploy_ok("echo", py_package(SLEEP_ECHO))
        s.invoke_ok("echo", {})  # warm

    def test_keep_alive(self):
        with self.spored.raw() as c:
            for i in range(6):
                if i % 2:
                    c.send(request_bytes("GET", "/healthz"))
                    r = self.assertStatus(c.read_response(), 200)
                    self.assertEqual(r.json(), {"status": "ok"})
                else:
                    c.send(invoke_bytes("echo", {"i": i}))
                    r = self.assertStatus(c.read_response(), 200)
                    self.assertEqual(r.json(), {"i": i})
                self.assertNotEqual(r.header("Connection", "").lower(), "close", r)
            closed, _ = c.closed_within(0.3)
            self.assertFalse(closed, "keep-alive connection closed after a response")
        # http.client reuses its connection too
        conn = self.spored.tcp_conn()
        try:
            harness.do_request(conn, "GET", "/healthz")
            sock = conn.sock
            self.assertIsNotNone(sock)
            for i in range(3):
                r = harness.do_request(conn, "POST", "/v1/functions/echo/invoke", {"n": i})
                self.assertEqual(r.json(), {"n": i})
            self.assertIs(conn.sock, sock, "the connection was not kept alive")
        finally:
            conn.close()

    def test_connection_close_and_http10(self):
        with self.spored.raw() as c:
            c.send(request_bytes("GET", "/healthz", headers={"Connection": "close"}))
            self.assertStatus(c.read_response(), 200)
            closed, _ = c.closed_within(2)
            self.assertTrue(closed, "Connection: close not honoured")
        with self.spored.raw() as c:
            c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
            r = self.assertStatus(c.read_response(), 200)
            self.assertEqual(r.json(), {"status": "ok"})
            closed, _ = c.closed_within(2)
            self.assertTrue(closed, "HTTP/1.0 without keep-alive not closed")

    def test_pipelining(self):
        reqs = [invoke_bytes("echo", {"i": 1, "sleep": 0.3}),  # slow first: order must hold
                request_bytes("GET", "/healthz"),
                invoke_bytes("echo", {"i": 3}),
                request_bytes("GET", "/no/such/route"),
                invoke_bytes("echo", {"i": 5})]
        with self.spored.raw() as c:
            c.send(b"".join(reqs[:3]))  # 3 requests in one send
            c.send(b"".join(reqs[3:]))
            rs = [c.read_response() for _ in reqs]
            self.assertEqual([r.status for r in rs], [200, 200, 200, 404, 200], rs)
            self.assertEqual(rs[0].json(), {"i": 1, "sleep": 0.3})
            self.assertEqual(rs[1].json(), {"status": "ok"})
            self.assertEqual(rs[2].json(), {"i": 3})
            self.assertEqual(rs[3].json()["error"], "not_found")
            self.assertEqual(rs[4].json(), {"i": 5})
            # 20 at once, split at awkward places
            blob = b"".join(invoke_bytes("echo", {"k": k}) for k in range(20))
            for off in range(0, len(blob), 37):
                c.send(blob[off:off + 37])
            for k in range(20):
                r = self.assertStatus(c.read_response(), 200)
                self.assertEqual(r.json(), {"k": k})

    def test_request_sent_byte_by_byte(self):
        with self.spored.raw() as c:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for b in invoke_bytes("echo", {"slow": "ly"}):
                c.send(bytes([b]))
                time.sleep(0.002)
            self.assertEqual(self.assertStatus(c.read_response(), 200).json(), {"slow": "ly"})

    def test_chunked_request_body(self):
        with self.spored.raw() as c:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.send(b"POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: spore\r\n"
                   b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            for part in (b"4\r\n{\"a\"\r\n", b"5;ext=1\r\n:[1,2\r\n", b"4\r\n,3]}\r\n", b"0\r\n",
                         b"X-Trailer: yes\r\n\r\n"):
                time.sleep(0.05)
                c.send(part)
            r = self.assertStatus(c.read_response(), 200)
            self.assertEqual(r.json(), {"a": [1, 2, 3]})
            # a big chunked body, then the connection is still usable
            big = json.dumps({"s": "z" * (2 * MiB)}).encode()
            c.send(b"POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: spore\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n")
            for off in range(0, len(big), 100000):
                piece = big[off:off + 100000]
                c.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
            c.send(b"0\r\n\r\n")
            r = self.assertStatus(c.read_response(), 200)
            self.assertEqual(len(r.json()["s"]), 2 * MiB)
            c.send(request_bytes("GET", "/healthz"))
            self.assertStatus(c.read_response(), 200)
            # an empty chunked body is the null event
            c.send(b"POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: spore\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            self.assertIsNone(self.assertStatus(c.read_response(), 200).json())

    def test_large_response(self):
        event = {"blob": "y" * (5 * MiB)}
        r = self.spored.invoke_ok("echo", event)
        self.assertEqual(r.json(), event)
        # a reader slower than spored's writes: the answer is more than the socket buffers hold
        with self.spored.raw() as c:
            c.send(invoke_bytes("echo", event))
            time.sleep(0.5)
            self.assertEqual(c.read_response().json(), event)

    def test_expect_100_continue(self):
        body = json.dumps({"expect": "continue"}).encode()
        with self.spored.raw() as c:
            c.send(b"POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: spore\r\n"
                   b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body))
            self.assertTrue(c.readable_within(2.0), "no 100 Continue within 2 s")
            r = c.read_response()
            self.assertEqual(r.status, 100, r)
            c.send(body)
            r = self.assertStatus(c.read_response(), 200)
            self.assertEqual(r.json(), {"expect": "continue"})
            # an oversized body announced with Expect gets its 413 without the body being sent
            c.send(b"POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: spore\r\n"
                   b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (7 * MiB))
            self.assertTrue(c.readable_within(2.0), "no answer to an oversized Expect request")
            self.assertStatus(c.read_response(), 413, "payload_too_large")

    def test_malformed_request_closes_connection(self):
        bad = [b"GARBAGE\r\n\r\n",
               b"GET /healthz HTTP/1.1\r\nHost: spore\r\nNo colon here\r\n\r\n",
               b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",
               b"POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: s\r\nContent-Length: abc\r\n\r\n",
               b"POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: s\r\nContent-Length: 2\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
               b"POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: s\r\nContent-Length: 2\r\n"
               b"Content-Length: 3\r\n\r\n{}",
               b"POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: s\r\n"
               b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"]
        for raw in bad:
            with self.subTest(raw=raw[:60]), self.spored.raw() as c:
                c.send(raw)
                r = c.read_response()
                self.assertStatus(r, 400, "bad_request")
                closed, _ = c.closed_within(2)
                self.assertTrue(closed, "connection not closed after a malformed request")
        # a good request, then garbage on the same connection
        with self.spored.raw() as c:
            c.send(request_bytes("GET", "/healthz") + b"BOGUS STUFF\r\n\r\n")
            self.assertStatus(c.read_response(), 200)
            self.assertStatus(c.read_response(), 400, "bad_request")
            self.assertTrue(c.closed_within(2)[0])
        self.assertStatus(self.spored.tcp("GET", "/healthz"), 200)

    def test_zz_many_idle_connections(self):
        s = self.spored
        harness.raise_nofile(8192)
        conns = []
        try:
            for i in range(2000):
                conns.append(socket.create_connection(("127.0.0.1", s.port), timeout=10))
            # spored accepts them all: the listen socket's accept queue drains
            self.assertTrue(harness.wait_for(lambda: harness.accept_queue(s.port) == 0, 10, 0.1),
                            "spored stopped accepting: accept queue %d" % harness.accept_queue(s.port))
            self.assertTrue(s.running())
            # a new connection is still answered, and old ones still work
            t0 = time.monotonic()
            r = s.tcp("GET", "/healthz", timeout=10)
            self.assertStatus(r, 200)
            self.assertLess(time.monotonic() - t0, 2.0)
            self.assertEqual(s.invoke_ok("echo", {"busy": True}).json(), {"busy": True})
            for sock in (conns[0], conns[999], conns[-1]):
                c = harness.RawConn.from_socket(sock)
                c.send(request_bytes("GET", "/healthz"))
                self.assertStatus(c.read_response(), 200)
        finally:
            for sock in conns:
                sock.close()
        # and spored closes its side of every one of them
        left = harness.wait_for(
            lambda: harness.server_side_count(s.port, harness.TCP_CLOSE_WAIT) == 0, 10, 0.1)
        self.assertTrue(left, "%d connections left in CLOSE_WAIT: spored did not close them" %
                        harness.server_side_count(s.port, harness.TCP_CLOSE_WAIT))
        self.assertStatus(s.tcp("GET", "/healthz"), 200)


class TestHttpTimeouts(SporeTestCase):
    """header_timeout_ms and keepalive_timeout_ms, shortened to 1 s (closing may come up to a
    timer tick later: allow up to 2.6 s)."""

    @classmethod
    def setUpClass(cls):
        cls.spored = Spored.for_class(cls, {"header_timeout_ms": 1000,
                                            "keepalive_timeout_ms": 1000})

    def assert_closed_in(self, c, low, high):
        closed, took = c.closed_within(high + 1.5)
        self.assertTrue(closed, "connection not closed within %.1f s" % (high + 1.5))
        self.assertGreaterEqual(took, low, "closed too early (%.2f s)" % took)
        self.assertLessEqual(took, high, "closed too late (%.2f s)" % took)
        return took

    def test_incomplete_header_closed(self):
        with self.spored.raw() as c:
            c.send(b"GET /healthz HTTP/1.1\r\nHost: spore\r\n")
            self.assert_closed_in(c, 0.9, 2.6)

    def test_nothing_sent_closed(self):
        with self.spored.raw() as c:
            self.assert_closed_in(c, 0.9, 2.6)

    def test_trickling_header_closed(self):
        """Sending a byte now and then does not extend the header deadline."""
        with self.spored.raw() as c:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t0 = time.monotonic()
            closed = False
            for b in b"GET /healthz HTTP/1.1\r\nHost: spore\r\nX-Slow: " + b"a" * 100:
                try:
                    c.send(bytes([b]))
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                closed, _ = c.closed_within(0.2)
                if closed or time.monotonic() - t0 > 4:
                    break
            took = time.monotonic() - t0
            self.assertTrue(closed, "trickling client kept open for %.1f s" % took)
            self.assertLessEqual(took, 2.8)

    def test_idle_keepalive_closed(self):
        with self.spored.raw() as c:
            c.send(request_bytes("GET", "/healthz"))
            self.assertStatus(c.read_response(), 200)
            self.assert_closed_in(c, 0.9, 2.6)

    def test_active_connection_kept(self):
        with self.spored.raw() as c:
            for _ in range(6):
                c.send(request_bytes("GET", "/healthz"))
                self.assertStatus(c.read_response(), 200)
                time.sleep(0.5)

    def test_zz_still_serving(self):
        self.assertStatus(self.spored.tcp("GET", "/healthz"), 200)


if __name__ == "__main__":
    harness.main()
