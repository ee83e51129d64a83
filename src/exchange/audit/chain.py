"""The audit log's hash chain (pure functions).

Each event's link is SHA-256(previous link || canonical bytes of the event), the first one chained to 32
zero bytes. Changing, removing or inserting an event anywhere changes every later link, so comparing
recomputed links with the stored ones, and the stored ones with signed checkpoints, finds the first bad
sequence number.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

GENESIS = bytes(32)
EVENT_FIELDS = (
    "id",
    "occurred_at",
    "action",
    "outcome",
    "reason",
    "department",
    "client_id",
    "officer",
    "purpose",
    "case_reference",
    "grant_id",
    "resource",
    "subject_ids",
    "elements",
    "request_id",
    "details",
)


def plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


class Fields(Protocol):
    """An event's fields by name: a mapping, or a database row."""

    def __getitem__(self, name: str, /) -> Any: ...


def canonical(event: Fields) -> bytes:
    """The bytes an event is hashed as: its fields in a fixed order, JSON with sorted keys, UTF-8."""
    return orjson.dumps([plain(event[name]) for name in EVENT_FIELDS], option=orjson.OPT_SORT_KEYS)


def link(previous: bytes, event: Fields) -> bytes:
    return hashlib.sha256(previous + canonical(event)).digest()
