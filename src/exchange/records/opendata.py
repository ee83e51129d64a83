"""Public open data (数据开放): elements marked ``open``, for anyone, without a token, rate limited."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.access.dependencies import DeclaredUse
from exchange.access.exceptions import UnauthorizedField
from exchange.audit import service as audit
from exchange.crosscheck import repository as crosscheck_repository
from exchange.errors import ExchangeError
from exchange.records import repository
from exchange.records.schemas import QueryBody, QueryResult, RecordOut
from exchange.records.service import canonical_subject_ids, check_elements
from exchange.records.validation import ResourceRules


class TooManyRequests(ExchangeError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"


_COUNT = text(
    """
    INSERT INTO rate_windows (key, window_start, count) VALUES (:key, date_trunc('minute', now()), 1)
    ON CONFLICT (key, window_start) DO UPDATE SET count = rate_windows.count + 1
    RETURNING count
    """
)
_FORGET = text("DELETE FROM rate_windows WHERE window_start < now() - interval '10 minutes'")


async def within_rate(session: AsyncSession, key: str, per_minute: int) -> None:
    """Count the request in this minute's window, shared by every hub process; refuse past the limit."""
    count = int(await session.scalar(_COUNT, {"key": key}) or 0)
    if count == 1:
        await session.execute(_FORGET)
    if count > per_minute:
        seconds = 60 - datetime.now(UTC).second
        raise TooManyRequests(
            f"At most {per_minute} open-data queries a minute from one address; try again in {seconds} s.",
            headers={"Retry-After": str(seconds)},
        )


async def query(
    session: AsyncSession,
    rules: ResourceRules,
    request: Request,
    use: DeclaredUse,
    body: QueryBody,
    event: audit.Event,
) -> QueryResult:
    address = request.client.host if request.client else "unknown"
    event = replace(event, details={"address": address})
    request.state.audit = event
    await within_rate(session, f"open:{address}", request.app.state.settings.open_data_rate_per_minute)
    check_elements(rules, body.fields, "fields")
    closed = [name for name in body.fields if not rules.elements[name].open]
    if closed:
        raise UnauthorizedField(
            rules.spec.code, closed, "only elements marked open are served without a grant"
        )
    subject_ids = list(dict.fromkeys(canonical_subject_ids(rules, body.subject_ids, "subject_ids")))
    found = await repository.current_records(session, rules.spec.code, subject_ids)
    flagged = await crosscheck_repository.under_review(session, rules.spec.code, list(found))
    records = [
        RecordOut(
            subject_id=subject_id,
            version=record.version,
            valid_from=None,
            fields={name: record.fields.get(name) for name in body.fields},
            under_review=[name for name in body.fields if name in flagged.get(subject_id, set())],
        )
        for subject_id in subject_ids
        if (record := found.get(subject_id)) is not None
    ]
    not_found = [s for s in subject_ids if s not in found]
    await audit.append(
        session,
        replace(event, subject_ids=subject_ids, elements=list(body.fields), details={"address": address}),
    )
    return QueryResult(records=records, not_found=not_found)
