"""The audit writer: events of reads and refusals from concurrent requests, appended together.

A read changes nothing, so its event need not share a transaction with anything; it must only be durable
before the data is returned. Each process therefore gathers the events its requests hand over while the
previous flush is on its way and writes them with one statement (and one commit, one WAL flush), so the
log's cost per event falls as load rises instead of every request paying a commit of its own. A request
waits for its own event to be committed and fails closed if it was not: no event, no data.

Writes that change data keep appending in their own transaction (:func:`exchange.audit.service.append`),
so their events commit with the change or not at all.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

from exchange.audit.service import AuditUnavailable, Event, row_of
from exchange.db.pool import connection
from exchange.errors import is_database_outage

logger = logging.getLogger("exchange.audit")

MAX_BATCH = 500

# One statement per flush: the events, and their places in the integrator's queue.
_APPEND = """
WITH events AS (
    INSERT INTO audit_events (action, outcome, reason, department, client_id, officer, purpose,
                              case_reference, grant_id, resource, subject_ids, elements, request_id, details)
    SELECT action, outcome, reason, department, client_id, officer, purpose, case_reference, grant_id,
           resource, subject_ids, elements, request_id, details
    FROM jsonb_to_recordset($1::jsonb) AS e(action text, outcome text, reason text, department text,
         client_id text, officer text, purpose text, case_reference text, grant_id uuid, resource text,
         subject_ids text[], elements text[], request_id text, details jsonb)
    RETURNING id, occurred_at
)
INSERT INTO audit_pending (event_id, occurred_at) SELECT id, occurred_at FROM events
"""


def _failure(error: Exception, outage: bool) -> Exception:
    """What a waiting request raises: a database outage (503, retry) or the log's refusal (503)."""
    failure: Exception = ConnectionError("the database is out of reach") if outage else AuditUnavailable()
    failure.__cause__ = error
    return failure


class AuditWriter:
    def __init__(self, pool: asyncpg.Pool, max_batch: int = MAX_BATCH) -> None:
        self.pool = pool
        self.max_batch = max_batch
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, event: Event) -> None:
        """Return once the event is committed; raise (503) if the log refused it or is out of reach."""
        # The row is built here, in the request's context: it names the request and the acting officer.
        future = asyncio.get_running_loop().create_future()
        self._pending.append((row_of(event), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # A request given up while waiting leaves its event to be written all the same.
        await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            await self._write(batch)

    async def _write(self, batch: list[tuple[dict[str, Any], asyncio.Future[None]]]) -> None:
        try:
            async with connection(self.pool) as db:
                await db.execute(_APPEND, [row for row, _ in batch])
        except Exception as error:
            outage = is_database_outage(error)
            if len(batch) > 1 and not outage:
                # One event the log refuses must not cost the others their answers: write them one by one.
                for item in batch:
                    await self._write([item])
                return
            if not outage:
                logger.error("the audit log refused an event", exc_info=error)
            for _, future in batch:
                if not future.done():
                    future.set_exception(_failure(error, outage))
            return
        for _, future in batch:
            if not future.done():
                future.set_result(None)

    async def close(self) -> None:
        """Let the last flush finish (the process is stopping)."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
