# SPDX-License-Identifier: MIT
"""The 3-minute check of a rate(1 minute) schedule (issue 6): it fires within 2 s of each minute.
Run by hand as root (too long for every CI run), with the same environment as the integration
suite, e.g.:

    cd tests/integration && SPORED=../../build/gcc/src/spored \\
      SPORE_RUNTIME_DIR=../../build/gcc/src/runtimes EXAMPLES_DIR=../../examples \\
      /usr/bin/python3 check_schedule_minute.py
"""

import time

import harness
from harness import Spored, SporeTestCase, py_package
import test_schedule


class TestScheduleMinute(SporeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = Spored.for_class(cls)

    ticks = test_schedule.TestSchedule.ticks

    def test_rate_one_minute_three_minutes(self):
        s = self.spored
        s.deploy_ok("minutely", py_package(test_schedule.TICK), schedule="rate(1 minute)")
        time.sleep(3 * 60 + 5)
        t = self.ticks("minutely")
        self.assertGreaterEqual(len(t), 3, t)
        for due, ran in t:
            self.assertEqual(int(due) % 60, 0)
            print("rate(1 minute): due %s, ran %+.3f s" % (
                time.strftime("%H:%M:%S", time.gmtime(due)), ran - due))
            self.assertLess(abs(ran - due), 2.0)


if __name__ == "__main__":
    harness.main()
