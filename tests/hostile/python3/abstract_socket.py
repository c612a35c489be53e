# SPDX-License-Identifier: MIT
"""Abstract unix sockets across functions. event.action:
  "bind":    bind and listen on "\\0<event.name>" and keep it open (the instance stays warm);
  "check":   connect to our own socket (proves it is still there);
  "connect": connect to "\\0<event.name>", bound by another function: must fail (ECONNREFUSED),
             abstract names are per network namespace."""
import socket

listener = None


def handler(event, context):
    global listener
    event = event or {}
    action = event.get("action", "connect")
    addr = "\0" + event.get("name", "spore-hostile")
    err, msg = 0, ""
    try:
        if action == "bind":
            if listener is None:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.bind(addr)
                s.listen(16)
                listener = s
        else:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(2)
            try:
                c.connect(addr)
            finally:
                c.close()
    except OSError as e:
        err, msg = e.errno or 0, str(e)
    return {"what": action, "ok": err == 0, "errno": err, "error": msg,
            "listening": listener is not None}
