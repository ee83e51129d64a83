"""The audit event a data request will produce, built up while the request is handled.

Routes that touch data declare their action with :func:`audited`; the hub's error handlers use the same
context to record refusals (401, 403, 4xx) that happen before or inside the route.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import Request

from exchange.audit.service import Event, Outcome, append_refusal


def begin(request: Request, action: str) -> Event:
    """Open the audit context of a data request (resource from the path, if any)."""
    event = Event(action=action, resource=request.path_params.get("code"))
    request.state.audit = event
    return event


def audited(action: str) -> Any:
    """A dependency that opens the audit context of a data route."""

    async def open_context(request: Request) -> Event:
        return begin(request, action)

    return open_context


def update(request: Request, **changes: Any) -> Event:
    """Add what the request has revealed so far (caller, purpose, subjects, elements) to its audit context."""
    event: Event = replace(request.state.audit, **changes)
    request.state.audit = event
    return event


def event(request: Request) -> Event:
    """The audit context of a request whose route opened one."""
    opened: Event = request.state.audit
    return opened


def current(request: Request) -> Event | None:
    return getattr(request.state, "audit", None)


async def record_refusal(request: Request, status: int, code: str, detail: str) -> None:
    """Keep a refused data request in the audit log: denied (401, 403, missing purpose) or error."""
    event = current(request)
    if event is None:
        return
    principal = getattr(request.state, "principal", None)
    if principal is not None and event.client_id is None:
        event = replace(event, client_id=principal.client_id, department=principal.department_code)
    outcome = Outcome.denied if status in {400, 401, 403, 429} else Outcome.error
    await append_refusal(request.app.state.audit_writer, event.refused(outcome, f"{code}: {detail}"))
