"""HTTP preconditions for catalogue edits: the ETag a resource is served with, and If-Match."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from exchange.catalog.exceptions import PreconditionRequired
from exchange.errors import InvalidInput

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The ETag of the resource as you read it; a stale one is refused with 412.",
    ),
]


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(if_match: str | None, current: int | None = None) -> int:
    """The version an If-Match header stands for. ``*`` means whatever is current."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequired()
    value = if_match.strip()
    if value == "*" and current is not None:
        return current
    value = value.removeprefix("W/").strip('"')
    if not value.isdigit():
        raise InvalidInput.one("If-Match", "not an ETag this hub issued (a quoted version number)")
    return int(value)
