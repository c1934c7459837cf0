#!/usr/bin/env python3
"""The floor under a 1 GiB RAM migration over a unix socket, as two processes.

Moves the bytes of a guest-RAM file from one process to another over a unix
stream socket the fastest way the kernel offers, with none of a migration's
work (no records, no parsing, no dirty tracking):

  receive SOCKET SIZE   maps SIZE bytes of fresh anonymous memory (advised for
                        transparent huge pages, as QEMU and our destination
                        advise guest RAM), starts a helper thread that faults
                        it in from its end down (as our destination's prefault
                        does) from the moment it is mapped, prints
                        "listening on SOCKET", accepts one connection and reads
                        straight into the memory in 4 MiB reads; then prints
                        "floor RATE GiB/s (BYTES bytes in SECS s) vmhwm BYTES":
                        the time runs from the accept to the last byte.
  send SOCKET FILE      connects (4 MiB send buffer, as our migration socket)
                        and sends FILE with sendfile(2): the kernel hands the
                        file's pages to the socket, no copy on this side, as
                        our source's zero-copy send does.

The receiver's kernel copies every byte once out of the socket into fresh memory
and zeroes every page on first touch: that work any destination on this machine
does, and nothing else. scripts/qemu-vs-us.sh runs it beside QEMU and us.
"""
import ctypes
import mmap
import os
import socket
import sys
import threading
import time

CHUNK = 4 << 20
PREFAULT_CHUNK = 2 << 20
MADV_POPULATE_WRITE = 23  # Linux 5.14; the mmap module does not name it (3.11)


def vmhwm() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def prefault(mem: mmap.mmap, size: int, done: threading.Event) -> None:
    # ctypes drops the GIL around the call, so the reads go on beside it
    # (mmap.madvise holds it).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    base = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    end = size
    while end > 0 and not done.is_set():
        start = max(0, end - PREFAULT_CHUNK)
        if libc.madvise(base + start, end - start, MADV_POPULATE_WRITE) != 0:
            return  # an older kernel: the reads take the faults
        end = start


def receive(path: str, size: int) -> None:
    mem = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    mem.madvise(mmap.MADV_HUGEPAGE)
    done = threading.Event()
    helper = threading.Thread(target=prefault, args=(mem, size, done))
    helper.start()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    # A sender that never comes or stalls ends the run with an error, not a hang.
    srv.settimeout(120)
    print(f"listening on {path}", flush=True)
    conn, _ = srv.accept()
    conn.settimeout(60)
    t0 = time.perf_counter()
    view = memoryview(mem)
    got = 0
    while got < size:
        n = conn.recv_into(view[got : min(size, got + CHUNK)])
        if n == 0:
            break
        got += n
    secs = time.perf_counter() - t0
    done.set()
    helper.join()
    view.release()
    if got != size:
        sys.exit(f"unix-socket-floor: received {got} of {size} bytes")
    print(f"floor {got / secs / 2**30:.3f} GiB/s ({got} bytes in {secs:.3f} s) vmhwm {vmhwm()}")


def send(path: str, file: str) -> None:
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    c.connect(path)
    with open(file, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        sent = 0
        while sent < size:
            n = os.sendfile(c.fileno(), f.fileno(), sent, size - sent)
            if n == 0:
                sys.exit(f"unix-socket-floor: sendfile stopped at {sent} of {size} bytes")
            sent += n
    c.close()


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "receive":
        receive(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
