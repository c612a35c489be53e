# SPDX-License-Identifier: MIT
"""Scheduled triggers: a function with "schedule": "rate(...)" or "cron(...)" is invoked on time
with {"source": "spore.schedule", "time", "schedule"}; PATCH changes or removes it; times missed
while spored was down are not replayed. (check_schedule_minute.py is the 3-minute check of
rate(1 minute), run by hand: it takes too long for every CI run.)"""

import json
import os
import time

import harness
from harness import Spored, SporeTestCase, py_package

TICK = """
import time
def main(event, context):
    print("tick %s %s %.3f" % (event["source"], event["time"], time.time()), flush=True)
    return {}
"""


def parse_rfc3339(s):
    # 2026-11-23T19:38:17.000000Z
    return time.mktime(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone


class TestSchedule(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = Spored.for_class(cls)

    def ticks(self, name):
        r = self.spored.api("GET", "/v1/functions/%s/logs?tail=10000" % name)
        out = []
        for line in r.body.decode().splitlines():
            parts = json.loads(line)["message"].split()
            if len(parts) == 4 and parts[0] == "tick":
                self.assertEqual(parts[1], "spore.schedule")
                out.append((parse_rfc3339(parts[2]), float(parts[3])))
        return out

    def test_rate_fires_on_time(self):
        s = self.spored
        s.deploy_ok("ticker", py_package(TICK), schedule="rate(2 seconds)")
        self.assertEqual(s.info("ticker")["scaling"]["schedule"], "rate(2 seconds)")
        time.sleep(7.5)
        t = self.ticks("ticker")
        self.assertGreaterEqual(len(t), 3, t)
        for due, ran in t:
            self.assertEqual(int(due) % 2, 0, "rate(2 seconds) is aligned to even seconds")
            self.assertLess(abs(ran - due), 2.0, "fired %.2f s from its time" % (ran - due))
        dues = [d for d, _ in t]
        self.assertEqual(len(dues), len(set(dues)), "a time fired twice: %r" % dues)
        # PATCH it away: no more
        self.assertStatus(s.api("PATCH", "/v1/functions/ticker", {"schedule": None}), 200)
        time.sleep(1.2)
        n = len(self.ticks("ticker"))
        time.sleep(3)
        self.assertEqual(len(self.ticks("ticker")), n)
        self.assertIsNone(s.info("ticker")["scaling"]["schedule"])

    def test_invalid_schedules(self):
        s = self.spored
        for expr, words in (("rate(0 minutes)", "rate"), ("cron(61 * * * *)", "minute"),
                            ("every minute", "schedule"), (5, "schedule")):
            r = s.deploy("bad", py_package(TICK), schedule=expr)
            self.assertError(r, 400, "bad_request", "schedule")
        s.deploy_ok("patched", py_package(TICK))
        r = s.api("PATCH", "/v1/functions/patched", {"schedule": "cron(* * *)"})
        self.assertError(r, 400, "bad_request", "3 field")

    def test_missed_times_not_replayed(self):
        s = self.spored
        s.deploy_ok("sleepy", py_package(TICK), schedule="rate(1 second)")
        self.assertTrue(harness.wait_for(lambda: len(self.ticks("sleepy")) >= 1, 10, 0.2))
        s.stop()
        down = time.time()
        time.sleep(4)
        s.start()
        up = time.time()
        time.sleep(2.5)
        during = [d for d, _ in self.ticks("sleepy") if down + 1 < d < up - 1]
        self.assertEqual(during, [], "times missed while down were replayed")
        self.assertTrue([d for d, _ in self.ticks("sleepy") if d >= up - 1], "no tick after start")
        self.assertStatus(s.api("PATCH", "/v1/functions/sleepy", {"schedule": None}), 200)


if __name__ == "__main__":
    harness.main()
