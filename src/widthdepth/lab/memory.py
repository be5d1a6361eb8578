"""Keep freed memory in the process instead of handing it back to the OS.

The reasoner allocates and frees tensors of a few MB at every iteration. glibc serves blocks that
large with mmap and returns them with munmap, so every iteration pays the page faults of touching
fresh pages again — on the 2-core machine, with another job running, that tripled the cost of the
activation (18 ms against 5.7 ms per call); on an idle machine it changes little. Raising malloc's
mmap and trim thresholds (the ``mallopt`` call, as GLIBC_TUNABLES would at start-up) makes freed
blocks reusable. Does nothing where the C library is not glibc.

    keep_freed_memory()
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_THRESHOLD = 1 << 30
_done = False


def keep_freed_memory() -> bool:
    """Returns True when the thresholds were set (Linux with glibc), False otherwise."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    _done = bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _THRESHOLD))
    return _done
