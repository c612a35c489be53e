# SPDX-License-Identifier: MIT
"""HTTP routes: any method on /fn/NAME/PATH invokes NAME with an API Gateway HTTP API payload 2.0
event, and the function's {statusCode, headers, cookies, body, isBase64Encoded} comes back as the
HTTP response (a plain return value: a 200 JSON body)."""

import base64
import http.client
import json

import harness
from harness import Spored, SporeTestCase, py_package

WEB = """
import base64, json
def main(event, context):
    body = event.get("body")
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else (body or "").encode()
    mode = (event.get("queryStringParameters") or {}).get("mode")
    if mode == "plain":
        return {"plain": True, "path": event["rawPath"]}
    if mode == "bad":
        return {"statusCode": 200, "headers": {"X-Evil": "a\\r\\nSet-Cookie: x=1"}}
    seen = {"version": event["version"], "rawPath": event["rawPath"],
            "rawQueryString": event["rawQueryString"],
            "query": event.get("queryStringParameters"),
            "method": event["requestContext"]["http"]["method"],
            "sourceIp": event["requestContext"]["http"]["sourceIp"],
            "header": event["headers"].get("x-custom"),
            "cookies": event.get("cookies"),
            "b64": event["isBase64Encoded"], "len": len(raw)}
    # echo the body back reversed, as binary
    return {"statusCode": 207,
            "headers": {"Content-Type": "application/octet-stream", "X-Seen": json.dumps(seen)},
            "cookies": ["a=1", "b=2; Path=/"],
            "body": base64.b64encode(raw[::-1]).decode(), "isBase64Encoded": True}
"""


class TestRoutes(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = s = Spored.for_class(cls)
        s.deploy_ok("web", py_package(WEB))

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.spored.port, timeout=30)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            c.close()

    def test_round_trip(self):
        body = bytes(range(256)) * 4  # binary: not valid UTF-8
        st, hdrs, data = self.request(
            "PUT", "/fn/web/items/42/x?q=a+b&q=c&z=%2F", body,
            {"X-Custom": "hello", "Content-Type": "application/octet-stream",
             "Cookie": "s=1; t=2"})
        self.assertEqual(st, 207, data)
        self.assertEqual(data, body[::-1])
        h = {}
        for k, v in hdrs:
            h.setdefault(k.lower(), []).append(v)
        self.assertEqual(h["content-type"], ["application/octet-stream"])
        self.assertEqual(h["set-cookie"], ["a=1", "b=2; Path=/"])
        seen = json.loads(h["x-seen"][0])
        self.assertEqual(seen, {
            "version": "2.0", "rawPath": "/items/42/x", "rawQueryString": "q=a+b&q=c&z=%2F",
            "query": {"q": "a b,c", "z": "/"}, "method": "PUT", "sourceIp": "127.0.0.1",
            "header": "hello", "cookies": ["s=1", "t=2"], "b64": True, "len": 1024})

    def test_methods_and_text(self):
        for method in ("GET", "POST", "DELETE", "PATCH", "OPTIONS"):
            st, hdrs, data = self.request(method, "/fn/web?mode=plain")
            self.assertEqual(st, 200, (method, data))
            self.assertEqual(json.loads(data), {"plain": True, "path": "/"})
        st, _, data = self.request("POST", "/fn/web/t", "héllo".encode(),
                                   {"Content-Type": "text/plain; charset=utf-8"})
        self.assertEqual(st, 207)
        self.assertEqual(data, "héllo".encode()[::-1])

    def test_invalid_response_is_502(self):
        st, hdrs, data = self.request("GET", "/fn/web?mode=bad")
        self.assertEqual(st, 502, data)
        j = json.loads(data)
        self.assertEqual(j["error"], "bad_gateway")
        self.assertIn("X-Evil", j["message"])
        self.assertNotIn("x=1", [v for k, v in hdrs if k.lower() == "set-cookie"])

    def test_auth_token(self):
        s = self.spored
        d = s.deploy_ok("private", py_package(WEB), auth="token")
        token = d["route_token"]
        self.assertEqual(len(token), 64)
        self.assertEqual(s.info("private")["scaling"]["auth"], "token")
        self.assertNotIn(token, json.dumps(s.info("private")))
        for hdrs in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            st, h, data = self.request("GET", "/fn/private?mode=plain", headers=hdrs)
            self.assertEqual(st, 401, data)
            self.assertEqual(json.loads(data)["error"], "unauthorized")
            self.assertIn(("WWW-Authenticate", "Bearer"), h)
        st, _, data = self.request("GET", "/fn/private?mode=plain",
                                   headers={"Authorization": "Bearer " + token})
        self.assertEqual(st, 200, data)
        # the same token on a later PATCH; "none" opens the routes
        r = self.assertStatus(s.api("PATCH", "/v1/functions/private", {"auth": "token"}), 200)
        self.assertEqual(r.json()["route_token"], token)
        self.assertStatus(s.api("PATCH", "/v1/functions/private", {"auth": "none"}), 200)
        st, _, _ = self.request("GET", "/fn/private?mode=plain")
        self.assertEqual(st, 200)
        self.assertError(s.api("PATCH", "/v1/functions/private", {"auth": "basic"}), 400,
                         "bad_request", "auth")

    def test_unknown_function_404(self):
        st, _, data = self.request("GET", "/fn/nosuch/x")
        self.assertEqual(st, 404)
        self.assertEqual(json.loads(data)["error"], "not_found")


if __name__ == "__main__":
    harness.main()
