# SPDX-License-Identifier: MIT
"""Reach spored: TCP to 127.0.0.1:event.port (its listener; the instance's loopback is its own:
ECONNREFUSED), its API socket at event.unix (not in the root: ENOENT), and an address outside
(event.egress, "1.1.1.1": no route, ENETUNREACH)."""
import socket


def try_connect(what, family, addr):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(addr)
    except OSError as e:
        return {"what": what, "ok": False, "errno": e.errno or 0, "error": str(e)}
    finally:
        s.close()
    return {"what": what, "ok": True, "errno": 0, "error": ""}


def handler(event, context):
    event = event or {}
    port = int(event.get("port", 80))
    out = [try_connect("tcp:127.0.0.1:%d" % port, socket.AF_INET, ("127.0.0.1", port))]
    if event.get("unix"):
        out.append(try_connect("unix:" + event["unix"], socket.AF_UNIX, event["unix"]))
    egress = event.get("egress", "1.1.1.1")
    out.append(try_connect("tcp:%s:53" % egress, socket.AF_INET, (egress, 53)))
    return {"results": out}
