"""Public open data (数据开放): elements marked ``open``, for anyone, without a token, rate limited."""

from __future__ import annotations

from dataclasses import replace

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.access.dependencies import DeclaredUse
from exchange.access.exceptions import UnauthorizedField
from exchange.audit import service as audit
from exchange.crosscheck import repository as crosscheck_repository
from exchange.ratelimit import within_rate
from exchange.records import repository
from exchange.records.schemas import QueryBody, QueryResult, RecordOut
from exchange.records.service import canonical_subject_ids, check_elements
from exchange.records.validation import ResourceRules


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
    per_minute = request.app.state.settings.open_data_rate_per_minute
    await within_rate(session, f"open:{address}", per_minute, "open-data queries")
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
