#!/usr/bin/env python3
"""Drive one QEMU -> QEMU migration over QMP (standard library only).

Usage: qemu_migrate.py SRC_QMP_SOCK DST_QMP_SOCK MIGRATION_URI DST_PID

Sets max-bandwidth to 1 TiB/s and downtime-limit to 60 s on the source,
starts `migrate uri=MIGRATION_URI`, polls `query-migrate` until the
migration ends, and prints one line:

    total_time_ms=N transferred=N dst_vmhwm=N

(transferred: the source's ram.transferred; dst_vmhwm: the destination
process's peak RSS in bytes from /proc/DST_PID/status). Exits non-zero with
the reason when the migration fails or QMP misbehaves.

With MEMORY=warm|cold and RAM_BYTES=N in the environment, free memory is put
into that state (scripts/memory_state.py) right before `migrate`, once both
QEMUs are up.
"""

import json
import os
import socket
import sys
import time

import memory_state  # beside this script


class Qmp:
    def __init__(self, path):
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rwb")
        greeting = self._read()
        if "QMP" not in greeting:
            raise RuntimeError(f"{path}: no QMP greeting: {greeting}")
        self.cmd("qmp_capabilities")

    def _read(self):
        line = self.file.readline()
        if not line:
            raise RuntimeError("QMP connection closed")
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.file.write(json.dumps(msg).encode() + b"\n")
        self.file.flush()
        while True:
            reply = self._read()
            if "event" in reply:
                continue
            if "error" in reply:
                raise RuntimeError(f"{name}: {reply['error']}")
            return reply["return"]


def vmhwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    src_path, dst_path, uri, dst_pid = sys.argv[1:]
    src = Qmp(src_path)
    dst = Qmp(dst_path)
    src.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 40, "downtime-limit": 60000})
    memory_state.prepare(os.environ.get("MEMORY", "as-is"), int(os.environ.get("RAM_BYTES", "0")))
    src.cmd("migrate", uri=uri)
    deadline = time.monotonic() + 600
    while True:
        info = src.cmd("query-migrate")
        status = info.get("status")
        # QEMU 7.2 sets "completed" a moment before it records total-time
        # (migration_completion, then migration_calculate_complete), so a
        # query in between reads 0: ask again until the time is there.
        if status == "completed" and info.get("total-time", 0) > 0:
            break
        if status in ("failed", "cancelled"):
            sys.exit(f"QEMU migration {status}: {info.get('error-desc', info)}")
        if time.monotonic() > deadline:
            sys.exit(f"QEMU migration still {status} after 600 s")
        time.sleep(0.005)
    # The destination has loaded everything once its status says so.
    deadline = time.monotonic() + 60
    while dst.cmd("query-status").get("status") == "inmigrate":
        if time.monotonic() > deadline:
            sys.exit("QEMU destination still in migration 60 s after the source completed")
        time.sleep(0.01)
    print(
        f"total_time_ms={info['total-time']} transferred={info['ram']['transferred']} "
        f"dst_vmhwm={vmhwm(dst_pid)}"
    )
    for q in (src, dst):
        try:
            q.cmd("quit")
        except (RuntimeError, OSError):
            pass


if __name__ == "__main__":
    main()
