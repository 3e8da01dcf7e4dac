"""An input file as this machine can read it: where the driver found it, or fetched into this machine's cache.

The driver resolves every input (files.py) and pins remote ones: a Hub file to the commit it saw, a file behind
an fsspec URL (s3://, gs://, ...) to its size and version. Tasks may run on other machines (executor_ray.py):
each task calls `local_file` first, so a remote input is read from this machine's own copy (fetched once per
machine: Hub files into the Hugging Face cache, URL files into flan-mini's cache folder) and nothing assumes the
driver's disk. Local inputs must be at the same path on every machine (a shared disk); a missing one is an error
that says so.
"""

from __future__ import annotations

import os
import posixpath
import socket
import threading
import uuid
from dataclasses import replace
from pathlib import Path

import xxhash

from ..cache_dir import cache_folder
from ..errors import SourceError
from .files import HubOrigin, InputFile, UrlOrigin


def local_file(file: InputFile) -> InputFile:
    """`file` with a path readable here, of the size the driver saw; fetches a remote input if it is not here."""
    size = _size(file.path)
    if size == file.bytes:
        return file
    if size is not None:
        raise SourceError(f"{file.display}: changed while the build was reading it ({size:,} bytes now, "
                          f"{file.bytes:,} when the build resolved it)")
    if file.origin is None:
        raise SourceError(
            f"{file.display}: not found at {file.path} on {socket.gethostname()}; on a cluster, local inputs must be "
            "on a disk every node mounts at the same path (see the README's \"More than one machine\")"
        )
    path = _hub_download(file) if isinstance(file.origin, HubOrigin) else fetch_url(file.origin, file.bytes)
    if _size(path) != file.bytes:
        raise SourceError(f"{file.display}: fetched on {socket.gethostname()}, but it is not the {file.bytes:,}-byte "
                          "file the driver resolved")
    return replace(file, path=path)


def fetch_url(origin: UrlOrigin, size: int) -> Path:
    """This machine's copy of the object behind `origin` (fetched once: the copy is named by URL, version and
    size; written under a temporary name and renamed, so a copy cut short is never taken for the file)."""
    key = xxhash.xxh3_64_hexdigest(f"{origin.url}\0{origin.version}\0{size}".encode())
    path = cache_folder("inputs") / f"{key}-{posixpath.basename(origin.url.rstrip('/')) or 'file'}"
    with _FETCHING.setdefault(key, threading.Lock()):  # tasks of this process wait for one fetch, not start several
        return path if _size(path) == size else _fetch(origin, size, path)


# One lock per object being fetched (setdefault is atomic under the GIL; the few entries live as long as the process).
_FETCHING: dict[str, threading.Lock] = {}


def _fetch(origin: UrlOrigin, size: int, path: Path) -> Path:
    import fsspec

    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")  # processes on one machine may fetch it at once
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with fsspec.open(origin.url, "rb") as remote, open(partial, "wb") as local:
            while chunk := remote.read(8 << 20):
                local.write(chunk)
        fetched = partial.stat().st_size
        if fetched != size:
            raise SourceError(f"{origin.url}: {fetched:,} bytes fetched on {socket.gethostname()}, but the build "
                              f"resolved it at {size:,}: it changed since")
        os.replace(partial, path)
    except SourceError:
        partial.unlink(missing_ok=True)
        raise
    except Exception as exc:  # fsspec back ends raise their own errors
        partial.unlink(missing_ok=True)
        raise SourceError(f"{origin.url}: cannot fetch it on {socket.gethostname()}: {type(exc).__name__}: {exc}") from None
    return path


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _hub_download(file: InputFile) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    from ..hub_timeouts import install

    install()  # a Hub that stops answering fails the task instead of hanging it
    origin = file.origin
    try:
        return Path(hf_hub_download(origin.repo_id, origin.filename, repo_type="dataset", revision=origin.revision))
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise SourceError(f"{file.display}: cannot fetch it on {socket.gethostname()} at commit {origin.revision}: "
                          f"{exc}") from None
