#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Derives the expected values of tests/unit/test-sigv4.c, independently of src/sigv4.c.

The requests are those of AWS's SigV4 test suite (aws-sig-v4-test-suite: region us-east-1,
service "service", key AKIDEXAMPLE, 2015-08-30T12:36:00Z), written as the raw request a server
receives, plus Lambda-shaped requests. For each one this prints the canonical request and the
signature computed two ways: by the SigV4 algorithm written out here from AWS's description
(hashlib/hmac), and, where it applies, by botocore's own SigV4Auth (python3-botocore). The run
fails if the two disagree. `--c` prints the table pasted into test-sigv4.c.

    /usr/bin/python3 tests/unit/sigv4-vectors.py [--c]
"""

import hashlib
import hmac
import sys
from urllib.parse import quote, unquote_to_bytes

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
DATE = "20150830T123600Z"
REGION, SERVICE = "us-east-1", "service"
HOST = "example.amazonaws.com"
LAMBDA_HOST = "127.0.0.1:8080"
EMPTY = hashlib.sha256(b"").hexdigest()

# name, method, raw target, [(header, value)] besides Host and X-Amz-Date, body, signed headers,
# region, service, host
CASES = [
    ("get-vanilla", "GET", "/", [], b"", "host;x-amz-date"),
    ("get-vanilla-query", "GET", "/", [], b"", "host;x-amz-date"),
    ("get-vanilla-empty-query-key", "GET", "/?Param1=value1", [], b"", "host;x-amz-date"),
    ("get-vanilla-query-order-key-case", "GET", "/?Param2=value2&Param1=value1", [], b"",
     "host;x-amz-date"),
    ("get-vanilla-query-order-value", "GET", "/?Param1=value2&Param1=value1", [], b"",
     "host;x-amz-date"),
    ("get-vanilla-query-unreserved", "GET",
     "/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
     "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", [], b"",
     "host;x-amz-date"),
    ("get-vanilla-utf8-query", "GET", "/?\u1234=bar", [], b"", "host;x-amz-date"),
    ("get-utf8", "GET", "/\u1234", [], b"", "host;x-amz-date"),
    ("get-unreserved", "GET",
     "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", [], b"",
     "host;x-amz-date"),
    ("get-space", "GET", "/example space/", [], b"", "host;x-amz-date"),
    ("get-slash", "GET", "//", [], b"", "host;x-amz-date"),
    ("get-slashes", "GET", "//example//", [], b"", "host;x-amz-date"),
    ("get-slash-dot-slash", "GET", "/./", [], b"", "host;x-amz-date"),
    ("get-slash-pointless-dot", "GET", "/./example", [], b"", "host;x-amz-date"),
    ("get-relative", "GET", "/example/..", [], b"", "host;x-amz-date"),
    ("get-relative-relative", "GET", "/example1/example2/../..", [], b"", "host;x-amz-date"),
    ("get-header-key-duplicate", "GET", "/",
     [("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")], b"",
     "host;my-header1;x-amz-date"),
    ("get-header-value-order", "GET", "/",
     [("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"),
      ("My-Header1", "value2")], b"", "host;my-header1;x-amz-date"),
    ("get-header-value-trim", "GET", "/",
     [("My-Header1", " value1"), ("My-Header2", ' "a   b   c"')], b"",
     "host;my-header1;my-header2;x-amz-date"),
    ("post-vanilla", "POST", "/", [], b"", "host;x-amz-date"),
    ("post-vanilla-query", "POST", "/?Param1=value1", [], b"", "host;x-amz-date"),
    ("post-header-key-sort", "POST", "/", [("My-Header1", "value1")], b"",
     "host;my-header1;x-amz-date"),
    ("post-header-value-case", "POST", "/", [("My-Header1", "VALUE1")], b"",
     "host;my-header1;x-amz-date"),
    ("post-x-www-form-urlencoded", "POST", "/",
     [("Content-Type", "application/x-www-form-urlencoded")], b"Param1=value1",
     "content-type;host;x-amz-date"),
    ("post-sts-header-after", "POST", "/",
     [("X-Amz-Security-Token", "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZT"
       "wdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmU"
       "pp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT3"
       "8xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/o"
       "LxBA==")], b"", "host;x-amz-date"),
    # Lambda-shaped: the CLI's Invoke of an alias, its function name percent-encoded once in the
    # URL and once more in the canonical request; a JSON body; query with '$'.
    ("lambda-invoke-alias", "POST", "/2015-03-31/functions/my-fn%3Aprod/invocations",
     [("X-Amz-Invocation-Type", "RequestResponse"), ("X-Amz-Log-Type", "Tail")],
     b'{"k": "v"}', "host;x-amz-date;x-amz-invocation-type;x-amz-log-type", "lambda",
     LAMBDA_HOST),
    ("lambda-get-qualifier", "GET",
     "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af"
     "?Qualifier=%24LATEST", [], b"", "host;x-amz-date", "lambda", LAMBDA_HOST),
    ("lambda-list-paged", "GET", "/2015-03-31/functions/?MaxItems=2&Marker=b%2Bc", [], b"",
     "host;x-amz-date", "lambda", LAMBDA_HOST),
    ("lambda-content-sha256", "PUT", "/2015-03-31/functions/f/code",
     [("X-Amz-Content-SHA256", hashlib.sha256(b'{"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}').hexdigest())],
     b'{"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}', "host;x-amz-content-sha256;x-amz-date",
     "lambda", LAMBDA_HOST),
]

UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"


def enc(data, keep_slash):
    out = []
    for b in data:
        if b in UNRESERVED or (keep_slash and b == ord("/")):
            out.append(chr(b))
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def canonical_uri(raw):
    """AWS: normalise (RFC 3986 dot segments, empty segments dropped), then URI-encode every
    byte but the unreserved ones and '/'. raw is what the server received, still encoded."""
    segs = []
    for s in raw.split(b"/"):
        if s in (b"", b"."):
            continue
        if s == b"..":
            if segs:
                segs.pop()
            continue
        segs.append(s)
    path = b"/" + b"/".join(segs)
    if segs and raw.endswith(b"/"):
        path += b"/"
    return enc(path, True)


def canonical_query(raw):
    if not raw:
        return ""
    pairs = []
    for part in raw.split(b"&"):
        if not part:
            continue
        k, _, v = part.partition(b"=")
        pairs.append((enc(unquote_to_bytes(k), False), enc(unquote_to_bytes(v), False)))
    pairs.sort()
    return "&".join("%s=%s" % kv for kv in pairs)


def trimall(v):
    return " ".join(v.split())


def derive(case):
    name, method, target, headers, body, signed = case[:6]
    service = case[6] if len(case) > 6 else SERVICE
    host = case[7] if len(case) > 7 else HOST
    hdrs = [("Host", host)] + list(headers) + [("X-Amz-Date", DATE)]
    raw = target.encode("utf-8")
    path, _, query = raw.partition(b"?")
    lines = []
    for h in signed.split(";"):
        vals = [trimall(v) for k, v in hdrs if k.lower() == h]
        lines.append("%s:%s" % (h, ",".join(vals)))
    sent = [v for k, v in hdrs if k.lower() == "x-amz-content-sha256"]
    payload = sent[0] if sent else hashlib.sha256(body).hexdigest()
    creq = "\n".join([method, canonical_uri(path), canonical_query(query)] + lines +
                     ["", signed, payload])
    scope = "%s/%s/%s/aws4_request" % (DATE[:8], REGION, service)
    sts = "\n".join(["AWS4-HMAC-SHA256", DATE, scope,
                     hashlib.sha256(creq.encode("utf-8")).hexdigest()])
    k = ("AWS4" + SECRET).encode()
    for part in (DATE[:8], REGION, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    return hdrs, creq, sig, service


def botocore_sig(case, hdrs, service):
    """botocore's SigV4Auth over the same request; None where botocore signs a URL differently
    from a server's view of the raw bytes (a raw non-ASCII or space in the target: botocore
    would have encoded it before sending, so it is not a request botocore makes)."""
    try:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
    except ImportError:
        return None
    name, method, target, headers, body, signed = case[:6]
    if any(ord(c) > 127 or c == " " for c in target) or target.startswith("//") or \
       "/." in target:
        return None

    class Fixed(SigV4Auth):
        def headers_to_sign(self, request):
            hm = super().headers_to_sign(request)
            for k in list(hm.keys()):
                if k not in signed.split(";"):
                    del hm[k]
            return hm

    host = dict((k.lower(), v) for k, v in hdrs)["host"]
    req = AWSRequest(method=method, url="http://%s%s" % (host, target), data=body)
    for k, v in hdrs:
        req.headers[k] = v
    req.context["timestamp"] = DATE
    s = Fixed(Credentials(KEY_ID, SECRET), service, REGION)
    creq = s.canonical_request(req)
    sts = s.string_to_sign(req, creq)
    return s.signature(sts, req)


def c_str(s):
    out = []
    for ch in s.encode("utf-8"):
        c = chr(ch)
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif 32 <= ch < 127:
            out.append(c)
        else:
            out.append("\\x%02x\" \"" % ch)
    return '"' + "".join(out) + '"'


def main():
    as_c = "--c" in sys.argv
    bad = 0
    for case in CASES:
        hdrs, creq, sig, service = derive(case)
        other = botocore_sig(case, hdrs, service)
        if other is not None and other != sig:
            bad += 1
            print("MISMATCH %s: spec %s botocore %s" % (case[0], sig, other), file=sys.stderr)
        if as_c:
            print("\t{ %s, %s, %s," % (c_str(case[0]), c_str(case[1]), c_str(case[2])))
            print("\t  { %s }," % ", ".join(
                "{ %s, %s }" % (c_str(k), c_str(v)) for k, v in hdrs))
            print("\t  %d, %s, %s, %s," % (len(hdrs), c_str(case[4].decode()), c_str(case[5]),
                                            c_str(service)))
            print("\t  %s," % c_str(creq))
            print("\t  %s }," % c_str(sig))
        else:
            print("%-34s %s %s" % (case[0], sig,
                                   "(botocore n/a)" if other is None else
                                   "botocore agrees" if other == sig else "BOTOCORE DIFFERS"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
