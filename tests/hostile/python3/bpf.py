# SPDX-License-Identifier: MIT
"""bpf(): create an array map and load a socket filter; perf_event_open() too. seccomp refuses
them: EPERM."""
import ctypes
import os
import platform
import struct

SYS_BPF, SYS_PERF_EVENT_OPEN = {"x86_64": (321, 298), "aarch64": (280, 241)}.get(
    platform.machine(), (321, 298))
BPF_MAP_CREATE, BPF_PROG_LOAD = 0, 5
BPF_MAP_TYPE_ARRAY, BPF_PROG_TYPE_SOCKET_FILTER = 2, 1
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def result(what, rc):
    err = ctypes.get_errno() if rc < 0 else 0
    if rc >= 0:
        os.close(rc)
    return {"what": what, "ok": err == 0, "errno": err, "error": os.strerror(err) if err else ""}


def handler(event, context):
    attr = ctypes.create_string_buffer(struct.pack("<IIII", BPF_MAP_TYPE_ARRAY, 4, 4, 1), 128)
    out = [result("bpf(BPF_MAP_CREATE)", libc.syscall(SYS_BPF, BPF_MAP_CREATE, attr, 128))]
    # r0 = 0; exit
    insns = ctypes.create_string_buffer(struct.pack("<BBhi", 0xb7, 0, 0, 0) +
                                        struct.pack("<BBhi", 0x95, 0, 0, 0), 16)
    lic = ctypes.create_string_buffer(b"GPL")
    attr = ctypes.create_string_buffer(struct.pack(
        "<IIQQ", BPF_PROG_TYPE_SOCKET_FILTER, 2, ctypes.addressof(insns), ctypes.addressof(lic)), 128)
    out.append(result("bpf(BPF_PROG_LOAD)", libc.syscall(SYS_BPF, BPF_PROG_LOAD, attr, 128)))
    pe = ctypes.create_string_buffer(struct.pack("<IIQ", 1, 128, 0), 128)  # software, cpu-clock
    out.append(result("perf_event_open",
                      libc.syscall(SYS_PERF_EVENT_OPEN, pe, 0, -1, -1, ctypes.c_ulong(0))))
    return {"results": out}
