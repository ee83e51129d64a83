"""Records API: publish (one or a batch), governed query, verification, and the public open-data query."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response

from exchange import lean
from exchange.access.dependencies import Use
from exchange.access.policy import Access
from exchange.audit import context
from exchange.auth.dependencies import require_roles
from exchange.auth.principal import Principal, Role
from exchange.db.session import DbSession, transaction
from exchange.errors import problem_responses
from exchange.idempotency import service as idempotency
from exchange.records import batch, opendata, service
from exchange.records.dependencies import consumer_reader, governed, read_path
from exchange.records.schemas import (
    BatchResult,
    PublishBody,
    PublishResult,
    QueryBody,
    QueryResult,
    VerifyBody,
    VerifyResult,
)

router = APIRouter(
    prefix="/v1/resources/{code}", tags=["records"], responses=problem_responses(400, 401, 403, 404, 422)
)
open_router = APIRouter(
    prefix="/open/v1/resources/{code}", tags=["open data"], responses=problem_responses(403, 404, 422, 429)
)

Publisher = Annotated[Principal, Depends(require_roles(Role.publisher))]


IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Retrying with the same key has the effect of one request."),
]


@router.post(
    "/records",
    response_model=PublishResult,
    dependencies=[Depends(context.audited("records.publish"))],
    responses=problem_responses(409),
    summary="Publish one subject's values",
    description=(
        "Elements whose source department is the caller's become canonical (a new version if a value "
        "changed); elements of other sources are kept as observations for cross-checking."
    ),
)
async def publish(
    code: str,
    body: PublishBody,
    request: Request,
    response: Response,
    session: DbSession,
    principal: Publisher,
    use: Use,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    payload = body.model_dump(exclude_none=True)
    context.update(request, subject_ids=[body.subject_id], elements=sorted(body.fields))
    if idempotency_key is not None:
        key = idempotency.check_key(idempotency_key)
        digest = idempotency.request_hash(f"publish {code}", payload | {"valid_from": str(body.valid_from)})
        stored = await idempotency.claim(session, principal.client_id, key, f"records {code}", digest)
        if stored is not None:
            response.headers["Idempotent-Replayed"] = "true"
            return stored.response
    rules = await service.load_rules(session, code)
    review_days = request.app.state.settings.discrepancy_working_days
    result = await service.publish_one(session, rules, principal, use, payload, review_days)
    if idempotency_key is not None:
        await idempotency.remember(
            session, principal.client_id, idempotency_key, 200, result.model_dump(mode="json")
        )
    return result


@router.post(
    "/records:batch",
    response_model=BatchResult,
    dependencies=[Depends(context.audited("records.publish"))],
    responses=problem_responses(409),
    summary="Publish many subjects: NDJSON, one publish body per line",
    description=(
        "Streamed: any size. Valid lines are applied, bad ones reported with their 1-based line number. "
        "Lines are applied in chunks that commit whole; a retry with the same Idempotency-Key resumes "
        "after the last committed chunk and changes nothing already applied."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {"schema": {"type": "string", "description": "PublishBody per line"}}
            },
        }
    },
)
async def publish_batch(
    code: str,
    request: Request,
    principal: Publisher,
    use: Use,
    idempotency_key: IdempotencyKey = None,
) -> BatchResult:
    key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
    state = request.app.state
    # A batch runs for as long as its body streams: it holds no transaction open meanwhile, only its chunks'.
    async with transaction(state.sessionmaker) as session:
        rules = await service.load_rules(session, code)
    return await batch.run(
        state.engine,
        state.sessionmaker,
        rules,
        principal,
        use,
        key,
        request.stream(),
        state.settings.discrepancy_working_days,
        state.settings.max_line_bytes,
    )


# The governed reads are lean routes (exchange.lean): see records/dependencies.py.
@router.post(
    "/records:query",
    response_model=QueryResult,
    summary="Read records: only the requested elements, only under a grant for the declared purpose",
    openapi_extra=lean.declared_openapi(consumer_reader, QueryBody),
)
async def query(code: str, request: Request) -> QueryResult:
    context.begin(request, "records.query")
    g = await governed(
        request, code, QueryBody, lambda b: b.subject_ids, lambda b: b.fields, "subject_ids", Access.read
    )
    event = context.event(request)
    return await service.query(read_path(request), g.principal, g.asked, g.read, g.decision, g.body, event)


@router.post(
    "/records:verify",
    response_model=VerifyResult,
    summary="Verify (核验) values against the canonical record without revealing it",
    openapi_extra=lean.declared_openapi(consumer_reader, VerifyBody),
)
async def verify(code: str, request: Request) -> VerifyResult:
    context.begin(request, "records.verify")
    g = await governed(
        request, code, VerifyBody, lambda b: [b.subject_id], lambda b: sorted(b.fields), "subject_id",
        Access.verify,
    )  # fmt: skip
    event = context.event(request)
    return await service.verify(read_path(request), g.principal, g.asked, g.read, g.decision, g.body, event)


@open_router.post(
    "/records:query",
    response_model=QueryResult,
    dependencies=[Depends(context.audited("records.open_query"))],
    summary="Public open data: elements marked open, no token, rate limited per client address",
)
async def open_query(
    code: str, body: QueryBody, request: Request, session: DbSession, use: Use
) -> QueryResult:
    event = context.update(request, subject_ids=body.subject_ids, elements=body.fields)
    rules = await service.load_rules(session, code)
    return await opendata.query(session, rules, request, use, body, event)
