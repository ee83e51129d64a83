"""What the records routes take from a request beyond their parameters: the governed read's caller, body and
policy decision, checked for the lean routes (exchange.lean) in the order every route checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from exchange import lean
from exchange.access.dependencies import lean_read_use, reader
from exchange.access.policy import Access, Decision
from exchange.audit import context
from exchange.auth.dependencies import admit, check_roles, confirmed, token_claims
from exchange.auth.principal import Principal, Role
from exchange.errors import ExchangeError
from exchange.records import service
from exchange.records.repository import GovernedRead
from exchange.records.schemas import QueryBody, VerifyBody

# What the governed reads declare (and document), and check without FastAPI's dependency solving.
consumer_reader = reader(Role.consumer)
CONSUMER = frozenset({Role.consumer})
Body = TypeVar("Body", QueryBody, VerifyBody)


def read_path(request: Request) -> service.ReadPath:
    state = request.app.state
    return service.ReadPath(state.pool, state.audit_writer, state.sessionmaker)


@dataclass(frozen=True, slots=True)
class Governed(Generic[Body]):
    principal: Principal
    body: Body
    asked: service.Asked
    read: GovernedRead
    decision: Decision


async def governed(
    request: Request,
    code: str,
    model: type[Body],
    subjects: Callable[[Body], list[str]],
    elements: Callable[[Body], list[str]],
    id_field: str,
    access: Access,
) -> Governed[Body]:
    """A governed read up to the policy decision, its refusals in the order of every route: the caller's
    own (401, 403), then the request's (400, 422, 404), then the grants' (403 unauthorized_field).

    The caller's client is confirmed in the same round trip as the grants and records are read; only a
    request refused for itself confirms it on its own first, so that the refusal order holds."""
    raw = await lean.read_json(request)
    claims = await token_claims(request, lean.bearer_credentials(request))
    path = read_path(request)
    try:
        use = lean_read_use(request)
        body = lean.validate_body(model, raw)
        context.update(request, subject_ids=subjects(body), elements=elements(body))
        asked = await service.ask(path, code, elements(body), subjects(body), id_field)
    except (ExchangeError, RequestValidationError):
        check_roles(await confirmed(request, claims), CONSUMER)
        raise
    assert use.purpose is not None
    asked, read = await service.fetch(path, asked, claims.client_id, claims.department_code, use.purpose)
    # A refusal from here on names the caller from the request's principal (see audit.context).
    principal = admit(request, claims, read.client)
    check_roles(principal, CONSUMER)
    decision = service.authorize(asked, read, principal, use.purpose, access)
    return Governed(principal, body, asked, read, decision)
