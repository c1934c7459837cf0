#!/usr/bin/env python3
"""The kernel's ceiling for one unix-socket stream between two processes.

Sends SIZE bytes (default 1 GiB) from a forked child to its parent over a unix
stream socket, in CHUNK-byte writes and reads (default 256 KiB) of one reused,
cache-hot buffer on each side: no guest memory, no parsing, only the kernel's two
copies and the hand-overs between the processes. Prints the rate. RUNS (default 3)
repeats it. The figure bounds what any migration over one unix socket can reach on
this machine (scripts/qemu-vs-us.sh).

    python3 scripts/unix-socket-ceiling.py [SIZE_MIB [CHUNK_KIB [RUNS]]]
"""
import os
import socket
import sys
import tempfile
import time


def one_run(size: int, chunk: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ceiling.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        pid = os.fork()
        if pid == 0:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(path)
            buf = memoryview(os.urandom(chunk))
            sent = 0
            while sent < size:
                sent += c.send(buf[: min(chunk, size - sent)])
            c.close()
            os._exit(0)
        conn, _ = srv.accept()
        buf = memoryview(bytearray(chunk))
        got = 0
        t0 = time.perf_counter()
        while True:
            n = conn.recv_into(buf)
            if n == 0:
                break
            got += n
        dt = time.perf_counter() - t0
        os.waitpid(pid, 0)
        if got != size:
            sys.exit(f"received {got} of {size} bytes")
        return got / dt / 2**30


def main() -> None:
    args = [int(a) for a in sys.argv[1:]]
    size = (args[0] if len(args) > 0 else 1024) << 20
    chunk = (args[1] if len(args) > 1 else 256) << 10
    runs = args[2] if len(args) > 2 else 3
    for i in range(runs):
        rate = one_run(size, chunk)
        print(f"run {i + 1}: {rate:.2f} GiB/s ({size >> 20} MiB in {chunk >> 10} KiB writes)")


if __name__ == "__main__":
    main()
