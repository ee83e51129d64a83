"""Checking the audit log: recompute the chain, compare it with the signed checkpoints, find strays."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.audit.archive import anchor
from exchange.audit.chain import EVENT_FIELDS, GENESIS, link
from exchange.audit.models import AuditCheckpoint
from exchange.auth.keys import SIGNING_ALGORITHM
from exchange.auth.models import SigningKey

PAGE = 20_000
# A queued event the integrator has not reached yet is normal; one older than this that is neither queued
# nor chained was put into the log past the hub.
STRAY_AFTER = timedelta(minutes=5)

_CHAIN_PAGE = text(
    f"""
    SELECT c.seq, c.hash AS link, c.event_id, e.occurred_at IS NOT NULL AS present,
           {", ".join(f"e.{name}" for name in EVENT_FIELDS)}
    FROM audit_chain c
    LEFT JOIN audit_events e ON e.id = c.event_id AND e.occurred_at = c.occurred_at
    WHERE c.seq > :after ORDER BY c.seq LIMIT :limit
    """  # noqa: S608 (column names are constants)
)
_STRAYS = text(
    """
    SELECT e.id FROM audit_events e
    WHERE e.occurred_at < :before
      AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.event_id = e.id)
      AND NOT EXISTS (SELECT 1 FROM audit_pending p WHERE p.event_id = e.id)
    ORDER BY e.id LIMIT 100
    """
)


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


async def verify_log(session: AsyncSession, from_seq: int | None = None) -> Verification:
    result = Verification()
    seq, previous = await _start(session, from_seq)
    links: dict[int, bytes] = {}
    while True:
        rows = (await session.execute(_CHAIN_PAGE, {"after": seq, "limit": PAGE})).all()
        if not rows:
            break
        for row in rows:
            if row.seq != seq + 1:
                result.bad(seq + 1, f"sequence numbers {seq + 1}..{row.seq - 1} are missing from the chain")
            seq = row.seq
            result.checked += 1
            if not row.present:
                result.bad(seq, f"seq {seq}: event {row.event_id} has been removed from the log")
                previous = row.link
                continue
            expected = link(previous, {name: getattr(row, name) for name in EVENT_FIELDS})
            if expected != row.link:
                result.bad(
                    seq, f"seq {seq}: event {row.event_id} does not match its link (changed or forged)"
                )
            previous = row.link
            links[seq] = row.link
    start = max(from_seq or 1, (await anchor(session)).seq + 1)
    await _check_checkpoints(session, result, links, seq, start)
    strays = await session.scalars(_STRAYS, {"before": datetime.now(UTC) - STRAY_AFTER})
    result.unchained_events = list(strays)
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
