"""The recipe's `publish:` section and the Hub repo-id rule it shares with `flan-mini push` and `card`.

Kept apart from hub.py so that loading a recipe does not import the publishing code (or huggingface_hub,
which the repo-id check imports only when a repo id is checked).
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from .config_base import StrictModel
from .errors import PublishError

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_repo_id(repo_id: str | None) -> str:
    """``repo_id`` if it names a dataset repo as ORG/NAME the Hub accepts (huggingface_hub's own rules)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id or "")
    except HFValidationError as err:
        raise PublishError(f"repo id {repo_id!r}: expected ORG/NAME ({err})") from None
    if (repo_id or "").count("/") != 1:
        raise PublishError(f"repo id {repo_id!r}: expected ORG/NAME (a namespace, a slash, a name)")
    return repo_id


class PublishConfig(StrictModel):
    """The recipe's optional `publish:` section: `build` pushes the finished folder there."""

    repo_id: str = Field(pattern=REPO_ID.pattern, description="Hub dataset repo, ORG/NAME; created if missing.")
    private: bool = Field(False, description="Create the repo as private (ignored if it exists).")
    revision: str | None = Field(None, description="Branch to commit to; created from main if missing.")
    message: str | None = Field(None, description="Commit message; default names the build.")

    @field_validator("repo_id")
    @classmethod
    def _hub_accepts(cls, value: str) -> str:
        try:
            return check_repo_id(value)
        except PublishError as err:
            raise ValueError(str(err)) from None
