"""A Hub that accepts connections but never answers: the push times out, retries, and fails with one error."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from flan_mini.errors import PublishError
from flan_mini.hub import push_folder

from .conftest import SECRET


@pytest.fixture
def silent_server():
    """A loopback server that accepts every connection and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_a_hub_that_never_answers_fails_the_push_in_bounded_time(built, silent_server, monkeypatch):
    monkeypatch.setenv("FLAN_MINI_HUB_TIMEOUT", "0.5")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    started = time.monotonic()
    with pytest.raises(PublishError) as error:
        push_folder(built, "flan-mini/sample", token=SECRET, endpoint=silent_server, retries=1, backoff=0.01)
    assert time.monotonic() - started < 30
    assert "Timeout" in str(error.value) or "timed out" in str(error.value)
    assert SECRET not in str(error.value)
