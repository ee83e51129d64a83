"""Reading a subscription's events in order, without ever skipping one that commits late.

Events are ordered by (writing transaction id, sequence). A reader takes only events of transactions older
than the oldest one still running (``pg_snapshot_xmin``): every such transaction has ended, so no event can
later appear before a position already handed out. Filters and element selection are applied while
scanning, and the cursor moves past what was scanned, so a narrow subscription does not rescan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.errors import InvalidInput
from exchange.pagination import decode_cursor, encode_cursor
from exchange.records import repository as records_repository
from exchange.subscriptions.models import Subscription

SCAN = 1000
LAST_SEQ = 2**63 - 1


@dataclass(frozen=True, slots=True, order=True)
class Position:
    txid: int
    seq: int

    def cursor(self) -> str:
        return encode_cursor([self.txid, self.seq])

    @classmethod
    def parse(cls, cursor: str, name: str = "cursor") -> Position:
        key = decode_cursor(cursor, 2)
        assert key is not None
        if not all(isinstance(part, int) and part >= 0 for part in key):
            raise InvalidInput.one(name, "not a cursor this feed returned")
        return cls(key[0], key[1])


_NOW = text("SELECT CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS text) AS bigint)")


async def current_position(session: AsyncSession) -> Position:
    """A position before every event of a transaction that may still commit: where a subscription starts."""
    xmin = int(await session.scalar(_NOW) or 1)
    return Position(xmin - 1, LAST_SEQ)


_SCAN = text(
    """
    SELECT seq, CAST(CAST(txid AS text) AS bigint) AS txid, subject_id, kind, version, elements, valid_from,
           recorded_at, fields, previous
    FROM change_events AS e
    WHERE resource_code = :resource
      AND (e.txid, e.seq) > (CAST(CAST(CAST(:txid AS bigint) AS text) AS xid8), :seq)
      AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY e.txid, e.seq
    LIMIT :scan
    """
)


@dataclass(frozen=True, slots=True)
class Event:
    position: Position
    kind: str
    subject_id: str
    version: int
    elements: list[str]
    valid_from: datetime | None
    recorded_at: datetime
    fields: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Change(Event):
    """One outbox row as a feed scans it, before the subscription's elements and filter are applied: an
    event of every element, with the values before the change (for filters)."""

    previous: dict[str, Any] | None


def matches(
    conditions: Sequence[Mapping[str, Any]], after: Mapping[str, Any], before: Mapping[str, Any]
) -> bool:
    """Whether the record meets every condition after the change, or met them before it (so a subscriber to
    everyone living in 150402 also hears that someone moved away)."""

    def holds(values: Mapping[str, Any]) -> bool:
        for condition in conditions:
            value = values.get(condition["element"])
            if condition.get("prefix") is not None:
                if not (isinstance(value, str) and value.startswith(condition["prefix"])):
                    return False
            elif value != condition.get("equals"):
                return False
        return True

    return holds(after) or (bool(before) and holds({**after, **before}))


def reviewed_subjects(subscription: Subscription, changes: Sequence[Change]) -> list[str]:
    """Subjects whose current record the filter needs: review events carry no values of their own."""
    if not subscription.filter:
        return []
    return sorted({change.subject_id for change in changes if change.fields is None})


def select(
    subscription: Subscription,
    after: Position,
    changes: Sequence[Change],
    current: Mapping[str, records_repository.Current],
    limit: int,
) -> tuple[list[Event], Position]:
    """Up to ``limit`` of the changes scanned after ``after`` that concern the subscription (its elements,
    its filter), and the position of the last change looked at: one skipped is passed for good."""
    wanted = set(subscription.elements)
    events: list[Event] = []
    position = after
    for change in changes:
        if len(events) == limit:
            break
        position = change.position
        elements = [name for name in change.elements if name in wanted]
        if not elements:
            continue
        fields = (
            change.fields
            if change.fields is not None
            else (current[change.subject_id].fields if change.subject_id in current else {})
        )
        if subscription.filter and not matches(subscription.filter, fields, change.previous or {}):
            continue
        events.append(
            Event(
                change.position,
                change.kind,
                change.subject_id,
                change.version,
                elements,
                change.valid_from,
                change.recorded_at,
                change.fields,
            )
        )
    return events, position


async def read(
    session: AsyncSession, subscription: Subscription, after: Position, limit: int
) -> tuple[list[Event], Position]:
    """Up to ``limit`` events for the subscription after ``after``, and the position to continue from."""
    rows = await session.execute(
        _SCAN, {"resource": subscription.resource_code, "txid": after.txid, "seq": after.seq, "scan": SCAN}
    )
    changes = [
        Change(
            Position(row.txid, row.seq),
            row.kind,
            row.subject_id,
            row.version,
            row.elements,
            row.valid_from,
            row.recorded_at,
            row.fields,
            row.previous,
        )
        for row in rows
    ]
    current: dict[str, records_repository.Current] = {}
    if reviewed := reviewed_subjects(subscription, changes):
        current = await records_repository.current_records(session, subscription.resource_code, reviewed)
    return select(subscription, after, changes, current, limit)


def cloudevent(event: Event, subscription: Subscription, source: str) -> dict[str, Any]:
    """A CloudEvents 1.0 structured-mode event carrying only the subscription's granted elements."""
    data: dict[str, Any] = {
        "resource": subscription.resource_code,
        "subject_id": event.subject_id,
        "version": event.version,
        "elements": event.elements,
        "recorded_at": event.recorded_at.isoformat(),
    }
    if event.kind == "record.changed":
        data["valid_from"] = event.valid_from.isoformat() if event.valid_from else None
        if subscription.payload == "full" and event.fields is not None:
            data["values"] = {name: event.fields.get(name) for name in event.elements}
    return {
        "specversion": "1.0",
        "id": f"{event.position.txid}-{event.position.seq}",
        "source": f"{source}/v1/resources/{subscription.resource_code}",
        "type": f"cn.gov.exchange.{event.kind}",
        "time": event.recorded_at.isoformat(),
        "datacontenttype": "application/json",
        "exchangecursor": event.position.cursor(),
        "data": data,
    }
