"""A timeout on every request the Hub client makes, so a server that stops answering fails the command.

huggingface_hub's own HTTP client waits for ever (`timeout=None` on every call). `install()` swaps in a client
factory that builds the same client plus a request hook giving each request a timeout per connect / read /
write / pool wait. A request that times out raises
the HTTP stack's TimeoutException, a transport error, which the push retries (hub.py) and then reports as
one error line. The seconds come from FLAN_MINI_HUB_TIMEOUT (limits.py; default 60): a per-operation bound,
so a large upload that keeps moving is never cut off.
"""

from __future__ import annotations

from . import limits

_INSTALLED: dict = {}


def install() -> float:
    """Give the Hub client's shared session the current timeout (idempotent); returns the seconds."""
    seconds = limits.current().hub_seconds
    if _INSTALLED.get("seconds") == seconds:
        return seconds
    from huggingface_hub.utils import _http

    default = _INSTALLED.setdefault("default", _http.default_client_factory)

    def bound(request) -> None:
        # The Hub client passes `timeout=None` on each call, which overrides a client-wide default; the
        # request's own timeout extension is what the transport obeys, so it is filled in here.
        timeouts = dict(request.extensions.get("timeout") or {})
        for kind in ("connect", "read", "write", "pool"):
            if timeouts.get(kind) is None:
                timeouts[kind] = seconds
        request.extensions["timeout"] = timeouts

    def factory():
        client = default()
        client.event_hooks = {**client.event_hooks, "request": [*client.event_hooks.get("request", []), bound]}
        return client

    _http.set_client_factory(factory)  # (closes the current session, so the next request uses the factory)
    _INSTALLED["seconds"] = seconds
    return seconds
