"""Keep freed memory for reuse instead of returning it to the OS (glibc only).

Every op allocates a fresh output array. glibc serves large requests (> 128 KiB
by default) with mmap and unmaps them on free, so the next array of that size
page-faults on every 4 KiB page it touches: measured here, a (100, 500) float64
multiply costs ~200 us inside a graph vs ~20 us in a loop that reuses memory,
and a composed BatchNorm step runs ~2x slower. Raising the mmap and trim
thresholds makes freed arrays go back to malloc's free lists, where the next op
finds them already mapped: a caching allocator, the way deep-learning
frameworks keep one. The cost is that the process keeps its peak heap size.

Set TINYGRAD_BN_KEEP_MEMORY=0 before importing tinygrad_bn to leave malloc alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's upper limit for this setting on 64-bit
_TRIM_THRESHOLD_BYTES = 1024 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Ask glibc to reuse freed large blocks; returns True when the setting took effect."""
    if os.environ.get("TINYGRAD_BN_KEEP_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False
    ok_mmap = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES) == 1
    ok_trim = mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES) == 1
    return ok_mmap and ok_trim


MEMORY_KEPT = keep_freed_memory()
