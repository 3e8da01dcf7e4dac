"""An input file as this machine can read it: where the driver found it, or fetched from the Hub into this
machine's Hugging Face cache.

The driver resolves every input (files.py) and pins Hub inputs to the commit it saw. Tasks may run on other
machines (executor_ray.py): each task calls `local_file` first, so a Hub input is read from this machine's own
cache (downloaded once per machine, at that commit) and nothing assumes the driver's disk. Local inputs must be
at the same path on every machine (a shared disk); a missing one is an error that says so.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

from ..errors import SourceError
from .files import InputFile


def local_file(file: InputFile) -> InputFile:
    """`file` with a path readable here, of the size the driver saw; fetches a Hub input if it is not here."""
    size = _size(file.path)
    if size == file.bytes:
        return file
    if size is not None:
        raise SourceError(f"{file.display}: changed while the build was reading it ({size:,} bytes now, "
                          f"{file.bytes:,} when the build resolved it)")
    if file.hub is None:
        raise SourceError(
            f"{file.display}: not found at {file.path} on {socket.gethostname()}; on a cluster, local inputs must be "
            "on a disk every node mounts at the same path (see the README's \"More than one machine\")"
        )
    path = _download(file)
    if _size(path) != file.bytes:
        raise SourceError(f"{file.display}: fetched at commit {file.hub.revision}, but it is not the "
                          f"{file.bytes:,}-byte file the driver resolved")
    return replace(file, path=path)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _download(file: InputFile) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    from ..hub_timeouts import install

    install()  # a Hub that stops answering fails the task instead of hanging it
    origin = file.hub
    try:
        return Path(hf_hub_download(origin.repo_id, origin.filename, repo_type="dataset", revision=origin.revision))
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise SourceError(f"{file.display}: cannot fetch it on {socket.gethostname()} at commit {origin.revision}: "
                          f"{exc}") from None
