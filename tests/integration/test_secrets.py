# SPDX-License-Identifier: MIT
"""Secrets: given to the function's instances as environment variables, stored readable by
spored only (mode 0600 under STATE/secrets), never in GET (names only), masked in the function's
log, changed by PATCH (null removes), gone with the function."""

import os
import stat

import harness
from harness import Spored, SporeTestCase, py_package

SHOW = """
import os
def main(event, context):
    print("the token is " + os.environ.get("API_TOKEN", "-"), flush=True)
    return {k: os.environ.get(k) for k in ("API_TOKEN", "DB_URL", "PLAIN")}
"""

TOKEN = "s3cr3t-t0ken-value"


class TestSecrets(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = Spored.for_class(cls)

    def test_secrets(self):
        s = self.spored
        s.deploy_ok("vault", py_package(SHOW), env={"PLAIN": "p", "API_TOKEN": "from-env"},
                    secrets={"API_TOKEN": TOKEN, "DB_URL": "postgres://u:pw@db/x"})
        r = s.invoke_ok("vault", {}).json()
        self.assertEqual(r, {"API_TOKEN": TOKEN, "DB_URL": "postgres://u:pw@db/x", "PLAIN": "p"})
        info = s.api("GET", "/v1/functions/vault")
        self.assertEqual(info.json()["secrets"], ["API_TOKEN", "DB_URL"])
        self.assertNotIn(TOKEN.encode(), info.body)
        self.assertNotIn(b"pw@db", info.body)
        logs = s.api("GET", "/v1/functions/vault/logs?tail=100").body
        self.assertIn(b"the token is ***", logs)
        self.assertNotIn(TOKEN.encode(), logs)
        with open(s.log_path, "rb") as f:
            self.assertNotIn(TOKEN.encode(), f.read(), "a secret in spored's own log")
        path = os.path.join(s.state_dir, "secrets", "vault.json")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode), 0o700)
        for root, _, files in os.walk(os.path.join(s.state_dir, "functions")):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    self.assertNotIn(TOKEN.encode(), f.read(), "secret in " + name)
        # PATCH: change one, remove one; new instances see it
        self.assertStatus(s.api("PATCH", "/v1/functions/vault",
                                {"secrets": {"API_TOKEN": "rotated-value", "DB_URL": None}}), 200)
        s.deploy_ok("vault", py_package(SHOW), env={"PLAIN": "p"})  # new instances
        r = s.invoke_ok("vault", {}).json()
        self.assertEqual(r["API_TOKEN"], "rotated-value")
        self.assertIsNone(r["DB_URL"])
        for bad in ({"secrets": {"AWS_KEY": "x"}}, {"secrets": {"A": 5}}, {"secrets": "x"},
                    {"secrets": {"9X": "x"}}):
            self.assertError(s.api("PATCH", "/v1/functions/vault", bad), 400, "bad_request",
                             "secrets")
        self.assertStatus(s.api("DELETE", "/v1/functions/vault"), 204)
        self.assertFalse(os.path.exists(path))


if __name__ == "__main__":
    harness.main()
