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

import asyncpg
import orjson
from joserfc import jws
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from exchange.audit.chain import CANONICAL_JSON, GENESIS, link_json
from exchange.auth.keys import SIGNING_ALGORITHM, KeyRing
from exchange.db.pool import Db, connection
from exchange.db.session import transaction

logger = logging.getLogger("exchange.audit")

INTEGRATOR_LOCK = 0x6578617564  # "exaud"
BATCH = 10_000

# Take a batch off the queue and read its events in one statement; an event missing from the log (which the
# queue says was written) comes back with no id. The batch size is written into the statement: the driver
# pool's generic plans would take a LIMIT parameter for a tenth of the queue, and with millions queued (a
# backlog, the very time it must be fast) plan a scan of the whole queue and of the log per batch, which
# chained 7,000 events/s instead of 50,000 at 10,000,000 queued.
_TAKE = f"""
WITH taken AS (
    DELETE FROM audit_pending WHERE event_id IN (
        SELECT event_id FROM audit_pending ORDER BY event_id LIMIT %(limit)d FOR UPDATE SKIP LOCKED
    ) RETURNING event_id, occurred_at
)
SELECT t.event_id, t.occurred_at, e.id IS NOT NULL AS present, {CANONICAL_JSON}
FROM taken AS t LEFT JOIN audit_events AS e ON e.id = t.event_id AND e.occurred_at = t.occurred_at
ORDER BY t.event_id
"""  # noqa: S608 (column expressions are constants)
_HEAD = "SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1"
_LINKS = """
INSERT INTO audit_chain (seq, event_id, occurred_at, hash)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::bytea[])
"""
_CHECKPOINT = "INSERT INTO audit_checkpoints (seq, hash, created_at, signature) VALUES ($1, $2, $3, $4)"


async def chain_head(db: Db) -> tuple[int, bytes]:
    row = await db.fetchrow(_HEAD)
    return (row["seq"], row["hash"]) if row else (0, GENESIS)


def sign_checkpoint(key: Any, seq: int, digest: bytes, at: datetime) -> str:
    payload = {"seq": seq, "hash": digest.hex(), "at": at.isoformat()}
    header = {"alg": SIGNING_ALGORITHM, "kid": key.kid, "typ": "exchange-audit-checkpoint"}
    return jws.serialize_compact(header, orjson.dumps(payload), key, algorithms=[SIGNING_ALGORITHM])


async def integrate_once(db: Db, key: Any, limit: int = BATCH) -> int:
    """Chain up to ``limit`` queued events in one transaction, signed with ``key``; the number chained."""
    async with db.transaction():
        taken = await db.fetch(_TAKE.replace("%(limit)d", str(int(limit))))
        if not taken:
            return 0
        seq, previous = await chain_head(db)
        seqs, chained_ids, times, hashes = [], [], [], []
        for event_id, occurred_at, present, event in taken:
            if not present:
                logger.error("a queued audit event is missing from the log", extra={"event_id": event_id})
                continue
            seq += 1
            previous = link_json(previous, event)
            seqs.append(seq)
            chained_ids.append(event_id)
            times.append(occurred_at)
            hashes.append(previous)
        if seqs:
            await db.execute(_LINKS, seqs, chained_ids, times, hashes)
            now = datetime.now(UTC)
            await db.execute(_CHECKPOINT, seq, previous, now, sign_checkpoint(key, seq, previous, now))
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
        pool: asyncpg.Pool,
        keys: KeyRing,
        interval: float = 0.5,
    ) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.pool = pool
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
                key = await self.keys.signing_key(session)
            async with connection(self.pool) as db:
                chained = await integrate_once(db, key)
            if chained < BATCH:
                await asyncio.sleep(self.interval)
                # The guard connection holds the lock; a ping keeps it from idling out unnoticed.
                await guard.execute(select(1))
