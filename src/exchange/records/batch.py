"""Batch publish: NDJSON streamed line by line, applied in chunks that each commit whole.

Memory stays bounded whatever the body's size: lines are read as they arrive and a chunk holds at most
``CHUNK`` checked lines. Each chunk commits with its audit event and, under an Idempotency-Key, the
batch's progress, so after a crash a retry with the same key skips exactly the lines already applied.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import ClientDisconnect

from exchange.access.dependencies import DeclaredUse
from exchange.audit import service as audit
from exchange.auth.principal import Principal
from exchange.bodies import nul_in_json
from exchange.db.locks import advisory_key
from exchange.db.session import transaction
from exchange.errors import BadRequest, Conflict, InvalidParam
from exchange.idempotency import service as idempotency
from exchange.records import service
from exchange.records.schemas import BatchError, BatchResult
from exchange.records.validation import ResourceRules

CHUNK = 2000
IN_FLIGHT = 2
YIELD_EVERY = 50
MAX_LINE_BYTES = 1 << 20
MAX_ERRORS_REPORTED = 1000


class BatchInProgress(Conflict):
    code = "batch_in_progress"
    title = "This batch is being applied by another request"


class BodyInterrupted(BadRequest):
    code = "body_interrupted"
    title = "The request body ended early"


@dataclass(slots=True)
class Tally:
    lines: int = 0
    accepted: int = 0
    rejected: int = 0
    applied_versions: int = 0
    observations: int = 0
    discrepancies: int = 0
    warnings: int = 0
    resumed_after_line: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    errors_truncated: bool = False

    def reject(self, line: int, subject_id: str | None, params: list[InvalidParam]) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS_REPORTED:
            self.errors.append(
                {"line": line, "subject_id": subject_id, "invalid_params": [p.model_dump() for p in params]}
            )
        else:
            self.errors_truncated = True

    def state(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "applied_versions": self.applied_versions,
            "observations": self.observations,
            "discrepancies": self.discrepancies,
            "warnings": self.warnings,
            "errors": list(self.errors),
            "errors_truncated": self.errors_truncated,
        }

    @classmethod
    def resumed(cls, state: dict[str, Any]) -> Tally:
        tally = cls(**state)
        tally.resumed_after_line = tally.lines
        return tally

    def result(self) -> BatchResult:
        return BatchResult(
            accepted=self.accepted,
            rejected=self.rejected,
            applied_versions=self.applied_versions,
            observations=self.observations,
            discrepancies=self.discrepancies,
            lines=self.lines,
            resumed_after_line=self.resumed_after_line,
            errors=[BatchError.model_validate(error) for error in self.errors],
            errors_truncated=self.errors_truncated,
            warnings=self.warnings,
        )


async def lines_of(stream: AsyncIterator[bytes], limit: int = MAX_LINE_BYTES) -> AsyncIterator[bytes | None]:
    """The body's lines without their line ends; None for a line longer than ``limit`` bytes."""
    pending = bytearray()
    oversized = False
    async for chunk in stream:
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            if oversized or len(pending) + end - start > limit:
                yield None
            else:
                pending += chunk[start:end]
                yield bytes(pending)
            pending.clear()
            oversized = False
            start = end + 1
        if not oversized:
            pending += chunk[start:]
            if len(pending) > limit:
                oversized = True
                pending.clear()
    if oversized:
        yield None
    elif pending.strip():
        yield bytes(pending)


def _lock_key(client_id: str, key: str) -> int:
    return advisory_key(f"batch:{client_id}:{key}")


@dataclass(slots=True)
class InFlight:
    """A chunk being applied: its transaction's ordering lock, whether it holds it yet, and the subjects it
    holds back from the chunks after it."""

    task: asyncio.Task[None]
    lock: int
    holding: asyncio.Event
    subjects: set[str]


_TAKE = text("SELECT pg_advisory_xact_lock(:key)")


@dataclass(slots=True)
class Batch:
    sessionmaker: async_sessionmaker[AsyncSession]
    rules: ResourceRules
    principal: Principal
    use: DeclaredUse
    key: str | None
    review_days: int
    tally: Tally
    max_line: int = MAX_LINE_BYTES
    chunk: list[service.Prepared] = field(default_factory=list)
    subjects: set[str] = field(default_factory=set)
    in_flight: list[InFlight] = field(default_factory=list)
    chunks: int = 0
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Lines without valid_from became true when the batch arrived: one instant for the whole batch.
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    async def flush(self) -> None:
        """Hand the pending lines to the database and go on reading.

        Up to ``IN_FLIGHT`` chunks are applied at once, each in its own transaction on its own connection,
        while the next is being checked. They commit one after another, in order, so the progress a chunk
        saves covers every line before it; and a chunk that has a subject in common with one in flight
        waits for it, so the later line wins."""
        chunk, subjects, self.chunk, self.subjects = self.chunk, self.subjects, [], set()
        while len(self.in_flight) >= IN_FLIGHT or any(subjects & f.subjects for f in self.in_flight):
            await self._oldest_committed()
        previous = self.in_flight[-1] if self.in_flight else None
        self.chunks += 1
        lock, holding = advisory_key(f"batch-chunk:{self.batch_id}:{self.chunks}"), asyncio.Event()
        task = asyncio.create_task(self._commit(chunk, self.tally.state(), lock, holding, previous))
        self.in_flight.append(InFlight(task, lock, holding, subjects))

    async def drain(self) -> None:
        while self.in_flight:
            await self._oldest_committed()

    async def _oldest_committed(self) -> None:
        """Wait for the oldest chunk in flight; if it failed, the later ones roll back too: wait for them,
        and raise its error."""
        oldest = self.in_flight.pop(0)
        try:
            await oldest.task
        except BaseException:
            later, self.in_flight = self.in_flight, []
            await asyncio.gather(*(f.task for f in later), return_exceptions=True)
            raise

    async def _commit(
        self,
        chunk: list[service.Prepared],
        state: dict[str, Any],
        lock: int,
        holding: asyncio.Event,
        previous: InFlight | None,
    ) -> None:
        """Apply one chunk, with its audit event and the progress as of its last line, in one transaction,
        committed once the chunk before it has committed (and not at all if that one failed).

        The wait for the chunk before is a wait for the lock its transaction holds until it ends, so that
        PostgreSQL sees it: should another transaction hold what the chunk before needs while waiting for
        what this one holds, the database detects the cycle as the deadlock it is and breaks it."""
        now = datetime.now(UTC)
        versions = observations = discrepancies = 0
        try:
            async with transaction(self.sessionmaker) as session:
                await session.execute(_TAKE, {"key": lock})
                holding.set()
                if chunk:
                    results = await service.apply(
                        session, self.rules, self.principal, chunk, now, self.review_days
                    )
                    versions = sum(1 for r in results if r.changed)
                    observations = sum(len(r.item.observed) for r in results)
                    discrepancies = sum(len(r.discrepancies) for r in results)
                    await audit.append(
                        session,
                        service.publish_event(
                            self.rules,
                            self.principal,
                            self.use,
                            chunk,
                            batch_lines=state["lines"],
                            **({"discrepancies": discrepancies} if discrepancies else {}),
                        ),
                    )
                if previous is not None:
                    await _committed(session, previous)
                # What the chunks before have done is known now: this chunk's progress counts it too.
                state["applied_versions"] = self.tally.applied_versions + versions
                state["observations"] = self.tally.observations + observations
                state["discrepancies"] = self.tally.discrepancies + discrepancies
                if self.key is not None:
                    await idempotency.save_progress(session, self.principal.client_id, self.key, state)
        finally:
            holding.set()
        self.tally.applied_versions += versions
        self.tally.observations += observations
        self.tally.discrepancies += discrepancies

    async def add(self, number: int, line: bytes | None) -> None:
        if line is None:
            self.tally.reject(
                number, None, [InvalidParam(name="line", reason=f"is longer than {self.max_line} bytes")]
            )
            return
        if nul_in_json(line):
            self.tally.reject(
                number, None, [InvalidParam(name="line", reason="holds a NUL character (U+0000)")]
            )
            return
        try:
            body = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.tally.reject(number, None, [InvalidParam(name="line", reason="is not valid JSON")])
            return
        if not isinstance(body, dict):
            self.tally.reject(number, None, [InvalidParam(name="line", reason="must be a JSON object")])
            return
        prepared = service.prepare(self.rules, self.principal.department_code, body, self.received_at)
        if isinstance(prepared, list):
            subject = body.get("subject_id") if isinstance(body.get("subject_id"), str) else None
            self.tally.reject(number, subject, prepared)
            return
        if prepared.subject_id in self.subjects:
            # One subject twice in a chunk would need two versions in one statement: apply the first now.
            await self.flush()
        self.chunk.append(prepared)
        self.subjects.add(prepared.subject_id)
        self.tally.accepted += 1
        self.tally.warnings += len(prepared.warnings)


async def _committed(session: AsyncSession, previous: InFlight) -> None:
    """Wait, in the database, until the chunk before has ended; raise if it did not commit."""
    holding = asyncio.ensure_future(previous.holding.wait())
    await asyncio.wait({holding, previous.task}, return_when=asyncio.FIRST_COMPLETED)
    holding.cancel()
    if not previous.task.done():
        await session.execute(_TAKE, {"key": previous.lock})
    await asyncio.shield(previous.task)


async def run(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    rules: ResourceRules,
    principal: Principal,
    use: DeclaredUse,
    key: str | None,
    body: AsyncIterator[bytes],
    review_days: int,
    max_line: int = MAX_LINE_BYTES,
) -> BatchResult:
    operation = f"records:batch {rules.spec.code}"
    async with engine.connect() as guard:
        lock = _lock_key(principal.client_id, key) if key is not None else None
        # A session-level lock held for the whole batch: a concurrent retry of the same batch is refused.
        if lock is not None and not await guard.scalar(select(func.pg_try_advisory_lock(lock))):
            raise BatchInProgress(f"The batch with Idempotency-Key {key!r} is still being applied.")
        try:
            return await _run(
                sessionmaker, rules, principal, use, key, operation, body, review_days, max_line
            )
        finally:
            if lock is not None:
                await guard.scalar(select(func.pg_advisory_unlock(lock)))


async def _run(
    sessionmaker: async_sessionmaker[AsyncSession],
    rules: ResourceRules,
    principal: Principal,
    use: DeclaredUse,
    key: str | None,
    operation: str,
    body: AsyncIterator[bytes],
    review_days: int,
    max_line: int,
) -> BatchResult:
    tally = Tally()
    if key is not None:
        async with transaction(sessionmaker) as session:
            stored = await idempotency.claim(session, principal.client_id, key, operation, None)
            state = await idempotency.progress(session, principal.client_id, key)
        if stored is not None:
            return BatchResult.model_validate(stored.response)
        if state is not None:
            tally = Tally.resumed(state)
    batch = Batch(sessionmaker, rules, principal, use, key, review_days, tally, max_line)
    number = 0
    try:
        async for line in lines_of(body, max_line):
            number += 1
            if number <= tally.resumed_after_line or (line is not None and not line.strip()):
                continue
            await batch.add(number, line)
            # Counted only once the line is in the chunk or the errors, so saved progress never skips it.
            tally.lines = number
            if len(batch.chunk) >= CHUNK:
                await batch.flush()
            elif number % YIELD_EVERY == 0:
                # Checking lines never waits, so without this the chunk being applied would get the event
                # loop only when the next part of the body arrives: its statements would wait for the
                # checking instead of running beside it.
                await asyncio.sleep(0)
    except (ClientDisconnect, OSError):
        await batch.drain()
        applied = tally.lines - len(batch.chunk)
        raise BodyInterrupted(
            f"The body broke off after line {number}; lines up to {applied} are applied. "
            "Send the whole batch again with the same Idempotency-Key to finish it."
        ) from None
    tally.lines = max(tally.lines, number)
    await batch.flush()
    await batch.drain()
    result = tally.result()
    if key is not None:
        async with transaction(sessionmaker) as session:
            await idempotency.remember(session, principal.client_id, key, 200, result.model_dump(mode="json"))
    return result
