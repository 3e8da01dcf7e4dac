"""Memory figures of a process from Linux's /proc, for the benchmarks' samplers (0 where /proc has none)."""

from __future__ import annotations


def proc_kib(path: str, keys: tuple[str, ...]) -> int:
    """The sum of the `keys` fields (kB) of a /proc file such as /proc/PID/status or /proc/PID/smaps_rollup."""
    try:
        with open(path) as handle:
            return sum(int(line.split()[1]) for line in handle if line.split(":")[0] in keys)
    except OSError:  # the process has ended, or no /proc
        return 0


def rss_anon(pid: int) -> int:
    """A process's private resident memory in bytes (RssAnon: RSS less the shared pages several processes map)."""
    return proc_kib(f"/proc/{pid}/status", ("RssAnon",)) * 1024
