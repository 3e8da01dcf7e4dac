"""peak_memory.py: a stage's own peak, and freed memory handed back between stages."""

from __future__ import annotations

import sys

import pytest

from flan_mini.peak_memory import PeakMemory, release_freed_memory


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap and /proc are Linux's")
def test_memory_freed_under_a_live_allocation_goes_back_to_the_system():
    # Strings over 512 bytes come from glibc's heap. Freeing most of them while every 100th stays alive leaves free
    # chunks between live ones, which glibc keeps for reuse (its automatic trim only gives back the top of the
    # heap): what a render leaves behind, a million rows of Python strings with a few survivors among them.
    texts = [("x" * 1500) + str(i) for i in range(200_000)]  # ~300 MB
    survivors = texts[::100]
    loaded = _rss()
    del texts
    kept = _rss()
    release_freed_memory()
    released = _rss()
    assert kept - released > 200 << 20, (loaded, kept, released)
    assert len(survivors) == 2_000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_a_block_freed_before_the_end_still_counts_whatever_the_earlier_peak():
    import time

    spike = bytearray(512 << 20)  # an earlier, higher peak: what follows is measured by sampling
    del spike
    probe = PeakMemory()
    probe.start()
    before = _rss()
    block = bytearray(128 << 20)
    time.sleep(0.2)
    del block  # gone by the time the peak is read
    assert probe.peak() >= before + (120 << 20)
