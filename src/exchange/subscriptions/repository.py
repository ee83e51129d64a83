"""The SQL of webhook delivery, on the driver-level pool (exchange/db/pool.py): each statement is prepared
once per connection and costs one round trip, which matters at thousands of deliveries a second.

The pull feed and the subscription API keep to the ORM session of their request (feed.py, service.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from exchange.access.policy import Access, GrantView
from exchange.audit.service import Event, row_of
from exchange.audit.writer import _APPEND as _APPEND_AUDIT  # the log's one insert shape
from exchange.db.pool import Db
from exchange.subscriptions.feed import Change, Position
from exchange.subscriptions.models import Subscription

# Due webhook subscriptions with events to send, oldest due first, and the lock of each one nobody else holds,
# in one statement. The limit is applied before the locks are tried (a subquery with LIMIT is never
# flattened), so no lock is taken for a subscription that is not returned. The key is SHA-256 of
# "deliver:<id>", its first 8 bytes as a signed bigint, as exchange.db.locks.advisory_key computes it.
_CLAIM = """
SELECT due.id, due.key
FROM (
    SELECT s.id,
           CAST('x' || left(encode(sha256(convert_to('deliver:' || s.id::text, 'UTF8')), 'hex'), 16)
                AS bit(64))::bigint AS key
    FROM subscriptions AS s
    WHERE s.mode = 'webhook' AND s.status = 'active' AND s.next_attempt_at <= $3
      AND s.id <> ALL($1::uuid[])
      AND (
          SELECT e.seq FROM change_events AS e
          WHERE e.resource_code = s.resource_code
            AND (e.txid, e.seq) > (s.cursor_txid::text::xid8, s.cursor_seq)
            AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY e.txid, e.seq LIMIT 1) IS NOT NULL
    ORDER BY s.next_attempt_at
    LIMIT $2
) AS due
WHERE pg_try_advisory_lock(due.key)
"""

_RELEASE = "SELECT pg_advisory_unlock($1)"


@dataclass(frozen=True, slots=True)
class Claim:
    subscription_id: uuid.UUID
    key: int


async def claim(
    db: asyncpg.Connection, serving: Sequence[uuid.UUID], limit: int, now: datetime
) -> list[Claim]:
    """Lock up to ``limit`` subscriptions due at ``now`` with events to send, not among ``serving``, for
    this session (the deliverer's clock decides what is due, as it wrote the retry times)."""
    rows = await db.fetch(_CLAIM, list(serving), limit, now)
    return [Claim(row["id"], row["key"]) for row in rows]


async def release(db: asyncpg.Connection, claimed: Claim) -> None:
    await db.fetchval(_RELEASE, claimed.key)


# A subscription as a delivery page needs it: its row, whether visible events wait after its cursor, the
# resource's catalogue version (the policy rules must match it) and the consumer's grants for the purpose
# in force now (as access.repository.grants_for reads them).
_STATE = """
SELECT s.id, s.consumer_department::text, s.client_id::text, s.resource_code::text, s.elements,
       s.purpose_code::text, s.filter, s.payload::text, s.mode::text, s.url, s.secret, s.status::text,
       s.status_reason, s.cursor_txid, s.cursor_seq, s.attempts, s.dead_in_a_row, s.next_attempt_at,
       s.created_at, s.next_attempt_at <= $2 AS due,
       (SELECT e.seq FROM change_events AS e
        WHERE e.resource_code = s.resource_code
          AND (e.txid, e.seq) > (s.cursor_txid::text::xid8, s.cursor_seq)
          AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY e.txid, e.seq LIMIT 1) IS NOT NULL AS pending,
       (SELECT version FROM resources WHERE code = s.resource_code) AS catalog_version,
       ARRAY(
           SELECT ROW(g.id, g.access::text, array_agg(e.element)::text[], min(e.valid_from),
                      max(e.valid_until))
           FROM grants AS g JOIN grant_elements AS e ON e.grant_id = g.id
           WHERE g.consumer_department = s.consumer_department AND g.resource_code = s.resource_code
             AND g.purpose_code = s.purpose_code AND g.revoked_at IS NULL AND e.revoked_at IS NULL
             AND e.valid_from <= $2 AND e.valid_until > $2
           GROUP BY g.id, g.access
       ) AS grants
FROM subscriptions AS s
WHERE s.id = $1
"""


@dataclass(slots=True)
class State:
    """A subscription read for a page: the row (detached, never flushed), and what the page depends on."""

    subscription: Subscription
    due: bool
    pending: bool
    catalog_version: int | None
    grants: list[GrantView]


async def state(db: Db, subscription_id: uuid.UUID, now: datetime) -> State | None:
    row = await db.fetchrow(_STATE, subscription_id, now)
    if row is None:
        return None
    subscription = Subscription(
        id=row["id"],
        consumer_department=row["consumer_department"],
        client_id=row["client_id"],
        resource_code=row["resource_code"],
        elements=row["elements"],
        purpose_code=row["purpose_code"],
        filter=row["filter"],
        payload=row["payload"],
        mode=row["mode"],
        url=row["url"],
        secret=row["secret"],
        status=row["status"],
        status_reason=row["status_reason"],
        cursor_txid=row["cursor_txid"],
        cursor_seq=row["cursor_seq"],
        attempts=row["attempts"],
        dead_in_a_row=row["dead_in_a_row"],
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
    )
    grants = [
        GrantView(
            id=grant_id,
            purpose=subscription.purpose_code,
            access=Access(access),
            elements=frozenset(elements),
            valid_from=valid_from,
            valid_until=valid_until,
        )
        for grant_id, access, elements, valid_from, valid_until in row["grants"]
    ]
    return State(subscription, row["due"], row["pending"], row["catalog_version"], grants)


# The feed's scan (feed._SCAN, which the ORM session of the pull feed runs), on the driver pool.
_SCAN = """
SELECT seq, txid::text::bigint AS txid, subject_id::text, kind::text, version, elements, valid_from,
       recorded_at, fields, previous
FROM change_events AS e
WHERE resource_code = $1
  AND (e.txid, e.seq) > ($2::bigint::text::xid8, $3)
  AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY e.txid, e.seq
LIMIT $4
"""


async def scan(db: Db, resource: str, after: Position, limit: int) -> list[Change]:
    """The next ``limit`` changes of the resource after ``after`` of transactions that have all ended."""
    return [
        Change(
            Position(row["txid"], row["seq"]),
            row["kind"],
            row["subject_id"],
            row["version"],
            row["elements"],
            row["valid_from"],
            row["recorded_at"],
            row["fields"],
            row["previous"],
        )
        for row in await db.fetch(_SCAN, resource, after.txid, after.seq, limit)
    ]


@dataclass(frozen=True, slots=True)
class Progress:
    """What delivery changes of a subscription: its position and the state of the event at its head."""

    cursor: Position
    attempts: int
    dead_in_a_row: int
    status: str
    status_reason: str | None
    next_attempt_at: datetime


_LOCK_PROGRESS = """
SELECT cursor_txid, cursor_seq, attempts, dead_in_a_row, status::text, status_reason, next_attempt_at
FROM subscriptions WHERE id = $1 FOR UPDATE
"""


async def lock_progress(db: Db, subscription_id: uuid.UUID) -> Progress | None:
    """The subscription's progress, locked until the caller's transaction ends (a replay, a pause or
    another page's record waits, and sees what this one wrote)."""
    row = await db.fetchrow(_LOCK_PROGRESS, subscription_id)
    if row is None:
        return None
    return Progress(
        Position(row["cursor_txid"], row["cursor_seq"]),
        row["attempts"],
        row["dead_in_a_row"],
        row["status"],
        row["status_reason"],
        row["next_attempt_at"],
    )


_SAVE_PROGRESS = """
UPDATE subscriptions
SET cursor_txid = $2, cursor_seq = $3, attempts = $4, dead_in_a_row = $5, status = $6, status_reason = $7,
    next_attempt_at = $8
WHERE id = $1
"""


async def save_progress(db: Db, subscription_id: uuid.UUID, progress: Progress) -> None:
    await db.execute(
        _SAVE_PROGRESS,
        subscription_id,
        progress.cursor.txid,
        progress.cursor.seq,
        progress.attempts,
        progress.dead_in_a_row,
        progress.status,
        progress.status_reason,
        progress.next_attempt_at,
    )


@dataclass(frozen=True, slots=True)
class Attempt:
    """One post of one event: a row of the subscription's attempts log (``dead``: a dead letter)."""

    event_seq: int
    attempt: int
    outcome: str
    status_code: int | None
    error: str | None
    duration_ms: float
    attempted_at: datetime


_ADD_ATTEMPTS = """
INSERT INTO deliveries (subscription_id, event_seq, attempt, outcome, status_code, error, duration_ms,
                        attempted_at)
SELECT $1, u.event_seq, u.attempt, u.outcome, u.status_code, u.error, u.duration_ms, u.attempted_at
FROM unnest($2::bigint[], $3::int[], $4::text[], $5::int[], $6::text[], $7::float8[], $8::timestamptz[])
     AS u(event_seq, attempt, outcome, status_code, error, duration_ms, attempted_at)
"""


async def add_attempts(db: Db, subscription_id: uuid.UUID, attempts: Sequence[Attempt]) -> None:
    """A page's posts in one statement."""
    columns: list[list[Any]] = [[] for _ in range(7)]
    for attempt in attempts:
        for column, value in zip(
            columns,
            (
                attempt.event_seq,
                attempt.attempt,
                attempt.outcome,
                attempt.status_code,
                attempt.error,
                attempt.duration_ms,
                attempt.attempted_at,
            ),
            strict=True,
        ):
            column.append(value)
    await db.execute(_ADD_ATTEMPTS, subscription_id, *columns)


async def append_audit(db: Db, event: Event) -> None:
    """The event in the caller's transaction: it commits with the progress it describes, or not at all."""
    await db.execute(_APPEND_AUDIT, [row_of(event)])
