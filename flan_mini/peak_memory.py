"""This process's peak resident memory per stretch of work (a build stage): exact on Linux, a lower bound elsewhere.

On Linux the kernel keeps the process's resident high-water mark (`VmHWM` in /proc/self/status) and lets the
process reset it to the current size (writing 5 to /proc/self/clear_refs, Linux >= 4.0), so each stage's own
peak is read without a sampling thread and without missing a short spike. Elsewhere only the lifetime peak
(`ru_maxrss`) exists: a stage's figure is then the peak so far, reported as such (`exact` is False).

Worker processes (dedup's forked workers, Ray's tasks) are not this process: their memory is not counted here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
import sys
from functools import lru_cache
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_RESET_HIGH_WATER_MARK = "5"


def _high_water_mark() -> int | None:
    """VmHWM in bytes, or None where /proc does not give it."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _lifetime_peak() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, kB on Linux


class PeakMemory:
    """Peak resident bytes between `start()` and `peak()`.

        probe = PeakMemory()
        probe.start(); run_stage(); probe.peak()
    """

    def __init__(self):
        self.exact = _high_water_mark() is not None and self._can_reset()

    @staticmethod
    def _can_reset() -> bool:
        try:
            _CLEAR_REFS.write_text(_RESET_HIGH_WATER_MARK)
            return True
        except OSError:  # no /proc (macOS), or a kernel or sandbox that refuses the write
            return False

    def start(self) -> None:
        if self.exact and not self._can_reset():
            self.exact = False

    def peak(self) -> int:
        """The peak since `start()` (exact), or the process's peak so far (not exact)."""
        if self.exact and (mark := _high_water_mark()) is not None:
            return mark
        return _lifetime_peak()


def release_freed_memory() -> None:
    """Hand memory freed by the stage that just ended back to the system.

    A stage that builds many Python strings (rendering a million rows) leaves glibc's heap full of free chunks
    that it keeps for reuse: the process stays as large as at its peak, and the next stage's peak adds to it.
    `malloc_trim(0)` returns them; Arrow's pool returns its cached pages. Both are no-ops when nothing is free."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    import pyarrow as pa  # imported by every stage already

    pa.default_memory_pool().release_unused()


@lru_cache(maxsize=1)
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim  # glibc only (musl has no malloc_trim)
    except (OSError, AttributeError):
        return None
