#!/usr/bin/env python3
"""Put this machine's free memory into a known state before a migration leg.

Usage: memory_state.py MODE BYTES      (MODE: warm, cold or as-is)

Why: on a VM whose balloon reports free pages to its host (virtio-balloon
with free page reporting, as on the CI machines), memory freed more than
about 2 s ago has gone back to the host, and the first touch of it costs a
host page fault as well as the guest kernel's zeroing: 0.5-1.5 GiB/s here,
against about 6 GiB/s for memory freed a moment ago (2026-12-04). A
destination that starts at a random time after the last one freed its
memory gets a random mix of the two; that was the largest noise in
scripts/qemu-vs-us.sh. So:

  warm   touches 1.25 x BYTES of anonymous memory advised for huge pages (as
         both destinations' guest RAM is) and frees it: the next destination
         gets memory the guest kernel holds and only zeroes;
  cold   waits 5 s: the memory freed last has gone back to the host;
  as-is  does nothing.
"""

import ctypes
import mmap
import sys
import time

MODES = ("warm", "cold", "as-is")


def prepare(mode: str, nbytes: int) -> None:
    """Puts free memory into `mode` (one of MODES) for a leg of `nbytes`."""
    if mode == "warm":
        n = nbytes * 5 // 4
        m = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        m.madvise(mmap.MADV_HUGEPAGE)
        buf = (ctypes.c_char * n).from_buffer(m)
        ctypes.memset(ctypes.addressof(buf), 1, n)
        del buf
        m.close()
    elif mode == "cold":
        time.sleep(5)
    elif mode != "as-is":
        raise ValueError(f"memory state must be one of {', '.join(MODES)}, not {mode!r}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    try:
        prepare(sys.argv[1], int(sys.argv[2]))
    except ValueError as e:
        sys.exit(f"memory_state.py: {e}")
