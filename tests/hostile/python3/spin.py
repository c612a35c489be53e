# SPDX-License-Identifier: MIT
"""Spin past timeout_ms when event.spin is true, with a spinning child too (event.child): the
timeout must kill the whole instance. Otherwise answers {"ok": true} at once."""
import os


def handler(event, context):
    event = event or {}
    if not event.get("spin"):
        return {"ok": True, "errno": 0, "error": ""}
    if event.get("child"):
        os.fork()  # both spin
    n = 0
    while True:
        n += 1
