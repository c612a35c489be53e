# SPDX-License-Identifier: MIT
"""Network "egress": an instance of such a function reaches the outside (here: a server in a
network namespace of its own, routed from the host, standing in for the world) through NAT, and
still nothing of the host: neither spored's port on 127.0.0.1 nor the host's own addresses. A
function without it has only its loopback."""

import os
import subprocess
import time

import harness
from harness import Spored, SporeTestCase, py_package

PROBE = """
import json, socket
def reach(host, port):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, port))
        s.sendall(b"hi")
        return {"ok": True, "said": s.recv(100).decode()}
    except OSError as e:
        return {"ok": False, "errno": e.errno, "error": str(e)}
    finally:
        s.close()
def main(event, context):
    ifs = [n for _, n in socket.if_nameindex()]
    return {"ifs": ifs, "out": reach(event["out"], event["out_port"]),
            "spored": reach("127.0.0.1", event["spored_port"]),
            "host": [reach(a, event["host_port"]) for a in event["host_addrs"]]}
"""

# Answers each connection with the peer's address: what the outside sees of the instance.
SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    try:
        c.recv(100)
        c.sendall(peer[0].encode())
    finally:
        c.close()
"""


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


def host_addrs():
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    addrs = []
    for line in out.splitlines():
        parts = line.split()
        if parts[1] == "lo" or parts[1].startswith("sp"):
            continue
        addrs.append(parts[3].split("/")[0])
    return addrs


class TestEgress(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        n = os.getpid() % 200 + 20
        cls.ns = "spore-out-%d" % os.getpid()
        cls.veth = "spo%dh" % (os.getpid() % 100000)
        cls.out_ip, cls.gw_ip = "198.18.%d.2" % n, "198.18.%d.1" % n
        sh("ip", "netns", "add", cls.ns)
        cls.addClassCleanup(lambda: subprocess.run(["ip", "netns", "del", cls.ns]))
        sh("ip", "link", "add", cls.veth, "type", "veth", "peer", "name", "o" + cls.veth)
        cls.addClassCleanup(lambda: subprocess.run(["ip", "link", "del", cls.veth],
                                                   capture_output=True))
        sh("ip", "link", "set", "o" + cls.veth, "netns", cls.ns)
        sh("ip", "addr", "add", cls.gw_ip + "/24", "dev", cls.veth)
        sh("ip", "link", "set", cls.veth, "up")
        nx = ["ip", "netns", "exec", cls.ns]
        sh(*nx, "ip", "addr", "add", cls.out_ip + "/24", "dev", "o" + cls.veth)
        sh(*nx, "ip", "link", "set", "o" + cls.veth, "up")
        sh(*nx, "ip", "link", "set", "lo", "up")
        sh(*nx, "ip", "route", "add", "default", "via", cls.gw_ip)
        cls.out_port = harness.free_port()
        cls.server = subprocess.Popen(nx + ["/usr/bin/python3", "-c", SERVER, cls.out_ip,
                                            str(cls.out_port)],
                                      stdout=subprocess.PIPE, text=True)
        cls.addClassCleanup(lambda: (cls.server.kill(), cls.server.wait()))
        assert cls.server.stdout.readline().strip() == "ready"
        # a host service on all addresses: must stay unreachable from instances
        cls.host_port = harness.free_port()
        cls.host_server = subprocess.Popen(["/usr/bin/python3", "-c", SERVER, "0.0.0.0",
                                            str(cls.host_port)],
                                           stdout=subprocess.PIPE, text=True)
        cls.addClassCleanup(lambda: (cls.host_server.kill(), cls.host_server.wait()))
        assert cls.host_server.stdout.readline().strip() == "ready"
        cls.spored = Spored.for_class(cls)

    def event(self):
        return {"out": self.out_ip, "out_port": self.out_port, "spored_port": self.spored.port,
                "host_port": self.host_port, "host_addrs": host_addrs() + [self.gw_ip]}

    def test_egress_reaches_out_not_the_host(self):
        s = self.spored
        s.deploy_ok("net", py_package(PROBE), network="egress")
        t0 = time.monotonic()
        r = s.invoke_ok("net", self.event()).json()
        print("\negress: first call (cold, with the veth pair) %.1f ms; instance sees %r"
              % ((time.monotonic() - t0) * 1000, r["ifs"]))
        self.assertIn("eth0", r["ifs"])
        self.assertTrue(r["out"]["ok"], r)
        # masqueraded: the outside sees the host's side, not the pool address
        self.assertEqual(r["out"]["said"], self.gw_ip, r)
        self.assertFalse(r["spored"]["ok"], r)
        for h in r["host"]:
            self.assertFalse(h["ok"], r)
        # a second instance: its own pair, still fine
        r2 = s.invoke_ok("net", self.event()).json()
        self.assertTrue(r2["out"]["ok"], r2)
        self.assertEqual(s.info("net")["versions"][0]["version"], 1)

    def test_none_is_loopback_only(self):
        s = self.spored
        s.deploy_ok("nonet", py_package(PROBE))
        r = s.invoke_ok("nonet", self.event()).json()
        self.assertEqual(r["ifs"], ["lo"])
        self.assertFalse(r["out"]["ok"], r)
        self.assertFalse(r["spored"]["ok"], r)

    def test_zz_cleanup(self):
        """Deleting the functions and stopping spored leaves no veth of spore behind."""
        s = self.spored
        for name in ("net", "nonet"):
            s.api("DELETE", "/v1/functions/" + name)
        s.stop()
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        left = [l.split(":")[1].strip() for l in links.splitlines()
                if l.split(":")[1].strip().startswith("sp") and
                not l.split(":")[1].strip().startswith(self.veth)]
        self.assertEqual(left, [])
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        self.assertNotIn("spore_egress", tables)
        s.start()


if __name__ == "__main__":
    harness.main()
