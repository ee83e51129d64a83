"""The integrator: gives queued audit events their place in the hash chain, in batches, and signs a
checkpoint per batch.

Every serving process runs one; the one holding the database lock works, the others wait to take over.
Requests never wait for it: they only insert (event and queue entry) in their own transaction, so the log
scales with the database's insert rate, not with a lock on the chain's head.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from joserfc import jws
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from exchange.audit.chain import GENESIS, link
from exchange.audit.models import AuditCheckpoint, AuditEvent, AuditLink
from exchange.auth.keys import SIGNING_ALGORITHM, KeyRing
from exchange.db.session import transaction

logger = logging.getLogger("exchange.audit")

INTEGRATOR_LOCK = 0x6578617564  # "exaud"
BATCH = 10_000

_TAKE = text(
    """
    DELETE FROM audit_pending WHERE event_id IN (
        SELECT event_id FROM audit_pending ORDER BY event_id LIMIT :limit FOR UPDATE SKIP LOCKED
    ) RETURNING event_id, occurred_at
    """
)
_LINKS = text(
    """
    INSERT INTO audit_chain (seq, event_id, occurred_at, hash)
    SELECT * FROM unnest(CAST(:seqs AS bigint[]), CAST(:ids AS bigint[]), CAST(:times AS timestamptz[]),
                         CAST(:hashes AS bytea[]))
    """
)


async def chain_head(session: AsyncSession) -> tuple[int, bytes]:
    row = (
        await session.execute(select(AuditLink.seq, AuditLink.hash).order_by(AuditLink.seq.desc()).limit(1))
    ).first()
    return (row.seq, row.hash) if row else (0, GENESIS)


def sign_checkpoint(key: Any, seq: int, digest: bytes, at: datetime) -> str:
    payload = {"seq": seq, "hash": digest.hex(), "at": at.isoformat()}
    header = {"alg": SIGNING_ALGORITHM, "kid": key.kid, "typ": "exchange-audit-checkpoint"}
    return jws.serialize_compact(header, orjson.dumps(payload), key, algorithms=[SIGNING_ALGORITHM])


async def integrate_once(session: AsyncSession, keys: KeyRing, limit: int = BATCH) -> int:
    """Chain up to ``limit`` queued events in this transaction; the number chained."""
    taken = (await session.execute(_TAKE, {"limit": limit})).all()
    if not taken:
        return 0
    ids = sorted(row.event_id for row in taken)
    events = {
        row.id: dict(row._mapping)
        for row in await session.execute(
            select(AuditEvent.__table__).where(
                AuditEvent.id.in_(ids),
                AuditEvent.occurred_at >= min(row.occurred_at for row in taken),
                AuditEvent.occurred_at <= max(row.occurred_at for row in taken),
            )
        )
    }
    seq, previous = await chain_head(session)
    seqs, chained_ids, times, hashes = [], [], [], []
    for event_id in ids:
        event = events.get(event_id)
        if event is None:
            logger.error("a queued audit event is missing from the log", extra={"event_id": event_id})
            continue
        seq += 1
        previous = link(previous, event)
        seqs.append(seq)
        chained_ids.append(event_id)
        times.append(event["occurred_at"])
        hashes.append(previous)
    if seqs:
        await session.execute(_LINKS, {"seqs": seqs, "ids": chained_ids, "times": times, "hashes": hashes})
        now = datetime.now(UTC)
        signature = sign_checkpoint(await keys.signing_key(session), seq, previous, now)
        session.add(AuditCheckpoint(seq=seq, hash=previous, created_at=now, signature=signature))
        await session.flush()
    return len(seqs)


async def ensure_partitions(session: AsyncSession, now: datetime) -> None:
    """Partitions for this month and the next, unless the default partition already holds rows there."""
    for offset in (0, 1):
        year, month = divmod(now.year * 12 + now.month - 1 + offset, 12)
        start = datetime(year, month + 1, 1, tzinfo=UTC)
        end_year, end_month = divmod(year * 12 + month + 1, 12)
        end = datetime(end_year, end_month + 1, 1, tzinfo=UTC)
        name = f"audit_events_{start:%Y_%m}"
        exists = await session.scalar(select(func.to_regclass(name)))
        if exists is not None:
            continue
        try:
            async with session.begin_nested():
                await session.execute(
                    text(
                        f"CREATE TABLE {name} PARTITION OF audit_events "
                        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                    )
                )
        except Exception:
            logger.warning("could not add an audit partition", extra={"partition": name}, exc_info=True)


class Integrator:
    def __init__(
        self,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession],
        keys: KeyRing,
        interval: float = 0.5,
    ) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.keys = keys
        self.interval = interval
        self.holds_role = False

    async def run(self) -> None:
        """Take the integrator role when it is free and keep chaining until cancelled."""
        while True:
            try:
                async with self.engine.connect() as guard:
                    if not await guard.scalar(select(func.pg_try_advisory_lock(INTEGRATOR_LOCK))):
                        await guard.rollback()
                        await asyncio.sleep(2.0)
                        continue
                    await guard.commit()
                    self.holds_role = True
                    try:
                        await self._work(guard)
                    finally:
                        self.holds_role = False
                        # The connection goes back to the pool: it must not keep the role with it.
                        with contextlib.suppress(Exception):
                            await guard.execute(select(func.pg_advisory_unlock(INTEGRATOR_LOCK)))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("the audit integrator failed; retrying")
                await asyncio.sleep(2.0)

    async def _work(self, guard: Any) -> None:
        partitions_checked = 0.0
        loop = asyncio.get_running_loop()
        while True:
            if loop.time() - partitions_checked > 3600:
                async with transaction(self.sessionmaker) as session:
                    await ensure_partitions(session, datetime.now(UTC))
                partitions_checked = loop.time()
            async with transaction(self.sessionmaker) as session:
                chained = await integrate_once(session, self.keys)
            if chained < BATCH:
                await asyncio.sleep(self.interval)
                # The guard connection holds the lock; a ping keeps it from idling out unnoticed.
                await guard.execute(select(1))
