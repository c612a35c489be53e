# SPDX-License-Identifier: MIT
"""Allocate and touch event.mb (512) MiB, 1 MiB at a time, past memory_mb: the cgroup's OOM
killer must end the instance (502 out_of_memory). Answers only if it got away with it."""

MiB = 1 << 20


def handler(event, context):
    mb = int((event or {}).get("mb", 512))
    chunks = []
    try:
        for _ in range(mb):
            chunks.append(b"\x01" * MiB)  # a memset: every page touched
    except MemoryError:
        return {"ok": False, "errno": 12, "error": "MemoryError", "allocated_mb": len(chunks)}
    return {"ok": True, "errno": 0, "error": "", "allocated_mb": len(chunks)}
