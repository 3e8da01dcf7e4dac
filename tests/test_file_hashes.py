"""Input files are hashed once per process: threads asking together wait for one read; a changed file is read again."""

from __future__ import annotations

import hashlib
import os
import threading
import time

from flan_mini import file_hashes, shards


def test_threads_asking_for_one_file_hash_it_once_and_a_changed_file_again(tmp_path, monkeypatch):
    path = tmp_path / "input.json"
    path.write_bytes(b"[1, 2, 3]")
    reads = []
    real = shards.file_sha256

    def slow_sha256(p):
        reads.append(p)
        time.sleep(0.2)  # long enough for the other threads to arrive while it reads
        return real(p)

    monkeypatch.setattr(shards, "file_sha256", slow_sha256)
    results = []
    threads = [threading.Thread(target=lambda: results.append(file_hashes.remembered_sha256(path))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [hashlib.sha256(b"[1, 2, 3]").hexdigest()] * 4
    assert len(reads) == 1

    path.write_bytes(b"[1, 2, 3, 4]")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert file_hashes.remembered_sha256(path) == hashlib.sha256(b"[1, 2, 3, 4]").hexdigest()
    assert len(reads) == 2
