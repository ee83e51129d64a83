"""Checking the audit log: recompute the chain, compare it with the signed checkpoints, find strays."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.audit.archive import anchor
from exchange.audit.chain import CANONICAL_JSON, GENESIS, link_json
from exchange.audit.models import AuditCheckpoint
from exchange.auth.keys import SIGNING_ALGORITHM
from exchange.auth.models import SigningKey
from exchange.db.session import driver

PAGE = 5_000
YIELD_EVERY = 1_000
# A queued event the integrator has not reached yet is normal; one older than this that is neither queued
# nor chained was put into the log past the hub.
STRAY_AFTER = timedelta(minutes=5)

# A page of the chain, then its events by the range of their ids (two range scans; the integrator chains
# events in the order of their ids, so the range holds little else). Probing the events link by link cost
# more than everything else verification does.
_CHAIN_PAGE = "SELECT seq, hash, event_id, occurred_at FROM audit_chain WHERE seq > $1 ORDER BY seq LIMIT $2"
_EVENTS = f"""
SELECT e.id, e.occurred_at, {CANONICAL_JSON} FROM audit_events AS e WHERE e.id BETWEEN $1 AND $2
"""  # noqa: S608 (column expressions are constants)
# Strays are counted first (events, links and queue entries older than the cut-off: scans of an index and
# of narrow tables) and looked for event by event only when the counts disagree.
_COUNTS = """
SELECT (SELECT count(*) FROM audit_events WHERE occurred_at < $1),
       (SELECT count(*) FROM audit_chain WHERE occurred_at < $1),
       (SELECT count(*) FROM audit_pending WHERE occurred_at < $1)
"""
_STRAYS = """
SELECT e.id FROM audit_events e
WHERE e.occurred_at < $1
  AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.event_id = e.id AND c.occurred_at = e.occurred_at)
  AND NOT EXISTS (SELECT 1 FROM audit_pending p WHERE p.event_id = e.id AND p.occurred_at = e.occurred_at)
ORDER BY e.id LIMIT 100
"""


@dataclass
class Verification:
    ok: bool = True
    checked: int = 0
    first_bad: int | None = None
    problems: list[str] = field(default_factory=list)
    checkpoints: int = 0
    unchained_events: list[int] = field(default_factory=list)

    def bad(self, seq: int | None, problem: str) -> None:
        self.ok = False
        if seq is not None and (self.first_bad is None or seq < self.first_bad):
            self.first_bad = seq
        if len(self.problems) < 100:
            self.problems.append(problem)


async def _start(session: AsyncSession, from_seq: int | None) -> tuple[int, bytes]:
    archived = await anchor(session)
    if not from_seq or from_seq <= archived.seq + 1:
        return archived.seq, archived.hash
    stored = await session.scalar(
        text("SELECT hash FROM audit_chain WHERE seq = :seq"), {"seq": from_seq - 1}
    )
    return from_seq - 1, stored if stored is not None else GENESIS


async def _page(db: asyncpg.Connection, after: int) -> tuple[list[asyncpg.Record], dict[Any, str]]:
    """The links after ``after`` and their events, keyed by (id, occurred_at)."""
    chain = await db.fetch(_CHAIN_PAGE, after, PAGE)
    if not chain:
        return [], {}
    ids = [row[2] for row in chain]
    return chain, {(row[0], row[1]): row[2] for row in await db.fetch(_EVENTS, min(ids), max(ids))}


async def verify_log(session: AsyncSession, from_seq: int | None = None) -> Verification:
    """Recompute every link from the stored event and the stored link before it, compare them with the
    signed checkpoints, and look for events the chain never took in.

    Each link is checked against the link stored before it, so a bad link is found wherever it is; the
    checkpoints then vouch for the stored links themselves. Only the links checkpoints name are kept in
    memory, so a log of any length verifies in bounded memory."""
    result = Verification()
    seq, previous = await _start(session, from_seq)
    start = max(from_seq or 1, (await anchor(session)).seq + 1)
    checkpoint_seqs = set(
        await session.scalars(select(AuditCheckpoint.seq).where(AuditCheckpoint.seq >= start))
    )
    links: dict[int, bytes] = {}
    db = await driver(session)
    # The next page is asked for before this one is checked: the database reads and serialises it while
    # this process hashes (the check yields now and then, so the answer is taken in as it arrives).
    upcoming = asyncio.ensure_future(_page(db, seq))
    try:
        while True:
            chain, events = await upcoming
            if not chain:
                break
            upcoming = asyncio.ensure_future(_page(db, chain[-1][0]))
            for index, (row_seq, stored, event_id, occurred_at) in enumerate(chain):
                if row_seq != seq + 1:
                    result.bad(
                        seq + 1, f"sequence numbers {seq + 1}..{row_seq - 1} are missing from the chain"
                    )
                seq = row_seq
                result.checked += 1
                event = events.get((event_id, occurred_at))
                if event is None:
                    result.bad(seq, f"seq {seq}: event {event_id} has been removed from the log")
                elif link_json(previous, event) != stored:
                    result.bad(
                        seq, f"seq {seq}: event {event_id} does not match its link (changed or forged)"
                    )
                previous = stored
                if seq in checkpoint_seqs:
                    links[seq] = stored
                if index % YIELD_EVERY == YIELD_EVERY - 1:
                    await asyncio.sleep(0)
    finally:
        upcoming.cancel()
    await _check_checkpoints(session, result, links, seq, start)
    before = datetime.now(UTC) - STRAY_AFTER
    counts = await db.fetchrow(_COUNTS, before)
    assert counts is not None
    events, chained, queued = counts
    # With the chain whole, every older event is chained or queued exactly when the counts add up; with
    # anything wrong already, look for strays one by one.
    if not result.ok or events > chained + queued:
        result.unchained_events = [row[0] for row in await db.fetch(_STRAYS, before)]
    if result.unchained_events:
        result.bad(None, f"events {result.unchained_events[:10]} are in the log but were never chained")
    return result


async def _check_checkpoints(
    session: AsyncSession, result: Verification, links: dict[int, bytes], last_seq: int, from_seq: int
) -> None:
    keys = {row.kid: ECKey.import_key(row.public_jwk) for row in await session.scalars(select(SigningKey))}
    checkpoints = list(
        await session.scalars(
            select(AuditCheckpoint).where(AuditCheckpoint.seq >= from_seq).order_by(AuditCheckpoint.seq)
        )
    )
    result.checkpoints = len(checkpoints)
    for checkpoint in checkpoints:
        if checkpoint.seq > last_seq:
            result.bad(
                last_seq + 1, f"the chain ends at {last_seq} but checkpoint {checkpoint.seq} vouches for more"
            )
            continue
        if links.get(checkpoint.seq, checkpoint.hash) != checkpoint.hash:
            result.bad(checkpoint.seq, f"checkpoint {checkpoint.seq} disagrees with the chain")
        try:
            compact = jws.extract_compact(checkpoint.signature.encode())
            key = keys[str(compact.protected.get("kid"))]
            jws.deserialize_compact(checkpoint.signature, key, algorithms=[SIGNING_ALGORITHM])
            payload = orjson.loads(compact.payload)
        except (JoseError, KeyError, ValueError):
            result.bad(checkpoint.seq, f"checkpoint {checkpoint.seq} has no valid signature of the hub")
            continue
        if payload.get("seq") != checkpoint.seq or payload.get("hash") != checkpoint.hash.hex():
            result.bad(checkpoint.seq, f"checkpoint {checkpoint.seq} was altered after it was signed")
