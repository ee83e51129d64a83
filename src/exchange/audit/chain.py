"""The audit log's hash chain (pure functions).

Each event's link is SHA-256(previous link || canonical bytes of the event), the first one chained to 32
zero bytes. Changing, removing or inserting an event anywhere changes every later link, so comparing
recomputed links with the stored ones, and the stored ones with signed checkpoints, finds the first bad
sequence number.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
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


# The event's fields as SQL expressions that already give their plain form (what ``plain`` makes of them):
# the integrator and the verifier read events with these, so the bytes they hash are made the same way.
CANONICAL_COLUMNS = ", ".join(
    {
        "occurred_at": """to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""",
        "grant_id": "e.grant_id::text",
    }.get(name, f"e.{name}")
    for name in EVENT_FIELDS
)
# The same, as one JSON array built by the database: one column to send and parse (with orjson) instead of
# sixteen for the driver to decode, which is most of the cost of chaining and verifying. JSON keeps every
# plain value as it is (the details are the jsonb text the driver would parse too), so the bytes hashed
# from it are those hashed from the columns.
CANONICAL_JSON = f"json_build_array({CANONICAL_COLUMNS})::text"


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
    return canonical_values([plain(event[name]) for name in EVENT_FIELDS])


def canonical_values(values: Sequence[Any]) -> bytes:
    """:func:`canonical` of an event given as its plain field values in ``EVENT_FIELDS`` order."""
    return orjson.dumps(values, option=orjson.OPT_SORT_KEYS)


def link(previous: bytes, event: Fields) -> bytes:
    return hashlib.sha256(previous + canonical(event)).digest()


def link_json(previous: bytes, event: str | bytes) -> bytes:
    """:func:`link` of an event read as ``CANONICAL_JSON``."""
    return hashlib.sha256(previous + canonical_values(orjson.loads(event))).digest()
