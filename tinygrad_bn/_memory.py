"""Keep freed memory for reuse instead of returning it to the OS (glibc only, opt-in).

Every op allocates a fresh output array. glibc serves large requests (> 128 KiB
by default) with mmap and unmaps them on free, so the next array of that size
page-faults on every 4 KiB page it touches: measured here, a (100, 500) float64
multiply costs ~200 us inside a graph vs ~20 us in a loop that reuses memory,
and a composed BatchNorm step runs ~2x slower. Raising the mmap and trim
thresholds makes freed arrays go back to malloc's free lists, where the next op
finds them already mapped: a caching allocator, the way deep-learning
frameworks keep one. The cost is that the process keeps its peak heap size, so
it is a process-wide choice the application makes: `tinygrad_bn.keep_freed_memory()`.
The CLI, the Trainer and the benchmarks call it; TINYGRAD_BN_KEEP_MEMORY=0 turns
those calls into no-ops. Importing tinygrad_bn never calls it.
"""

from __future__ import annotations

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
        if not os.confstr("CS_GNU_LIBC_VERSION"):  # not glibc (e.g. musl): nothing to tune
            return False
    except (ValueError, OSError):
        return False
    import ctypes  # only here: nothing of this runs unless asked

    mallopt = ctypes.CDLL(None).mallopt  # the process's own libc, no library search
    ok_mmap = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES) == 1
    ok_trim = mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES) == 1
    return ok_mmap and ok_trim
