"""sha256 of input files, computed once per process per file (path, size, mtime, inode): the manifest's input
checksums and the parse cache's keys read the same file's hash, not the file twice."""

from __future__ import annotations

import threading
from pathlib import Path

_HASHES: dict[tuple, str] = {}
_LOCKS: dict[tuple, threading.Lock] = {}
_LOCK = threading.Lock()


def remembered_sha256(path: Path) -> str:
    """sha256 of the file's bytes; a second caller (any thread) waits for the first one's result."""
    from .shards import file_sha256

    stat = path.stat()
    identity = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    with _LOCK:
        lock = _LOCKS.setdefault(identity, threading.Lock())
    with lock:
        known = _HASHES.get(identity)
        if known is None:
            known = _HASHES[identity] = file_sha256(path)  # hashlib releases the GIL: other tasks run meanwhile
    return known
