"""This process's peak resident memory per stretch of work (a build stage), without disturbing anyone else's figure.

Linux keeps the process's resident high-water mark (`VmHWM` in /proc/self/status). A stage that raises it has set
a new peak: that is its exact peak. A stage that stays below an earlier peak is measured by a thread sampling the
resident size (`VmRSS`) every SAMPLE_SECONDS, which can miss a spike shorter than that. The high-water mark is
never reset (/proc/self/clear_refs could, but it would also reset the `ru_maxrss` that benchmarks and callers
read). Without /proc (macOS), only the process's peak so far exists (`ru_maxrss`), reported as such.

Worker processes (dedup's forked workers, Ray's tasks) are not this process: their memory is not counted here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
import sys
import threading
from functools import lru_cache
from pathlib import Path

_STATUS = Path("/proc/self/status")
SAMPLE_SECONDS = 0.02


def _status_bytes(field: str) -> int | None:
    """A size field of /proc/self/status (VmHWM, VmRSS) in bytes, or None where /proc does not give it."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
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

    `exact` is False where only the process's peak so far can be had (no /proc).
    """

    def __init__(self):
        self.exact = _status_bytes("VmHWM") is not None
        self._mark = 0
        self._sampled = 0
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def start(self) -> None:
        if not self.exact:
            return
        self._mark = _status_bytes("VmHWM") or 0
        self._sampled = _status_bytes("VmRSS") or 0
        self._stop.clear()
        self._sampler = threading.Thread(target=self._sample, name="flan-mini peak memory", daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sampled = max(self._sampled, _status_bytes("VmRSS") or 0)

    def peak(self) -> int:
        """The peak since `start()` (see the module docstring), or the process's peak so far (not `exact`)."""
        if not self.exact:
            return _lifetime_peak()
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        mark = _status_bytes("VmHWM") or 0
        if mark > self._mark:  # a new high for the process, set during this stretch: exact
            return mark
        return max(self._sampled, _status_bytes("VmRSS") or 0)


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
