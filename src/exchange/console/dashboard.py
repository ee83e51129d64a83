"""The dashboard: the officer's own queue, and for stewards, auditors and admins the hub's statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from exchange.access import sharing
from exchange.audit.usage import usage
from exchange.auth.principal import Role
from exchange.console.dependencies import SignedIn
from exchange.console.routing import ConsoleRoute
from exchange.console.templating import render
from exchange.crosscheck import quality
from exchange.crosscheck.schemas import QualityOut
from exchange.db.session import DbSession

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
OVERSEERS = frozenset({Role.admin, Role.auditor, Role.steward})
DECIDERS = frozenset({Role.approver, Role.steward})
QUEUE = 5
QUALITY_MAX_AGE = timedelta(minutes=1)


async def _quality(request: Request, session: DbSession, now: datetime) -> list[QualityOut]:
    """Quality figures scan every record, so a process measures them at most once a minute for its
    dashboards; each figure shows when it was measured."""
    kept: tuple[datetime, list[QualityOut]] | None = getattr(request.app.state, "console_quality", None)
    if kept is None or now - kept[0] > QUALITY_MAX_AGE:
        kept = (now, await quality.measure_all(session, now))
        request.app.state.console_quality = kept
    return kept[1]


@router.get("")
async def dashboard(
    request: Request,
    session: DbSession,
    active: SignedIn,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> Response:
    principal = active.principal
    inbox = (
        await sharing.page(
            session, principal, role="provider", status="pending", overdue=False, before=None, limit=QUEUE
        )
        if principal.has_any(DECIDERS)
        else []
    )
    outbox = (
        await sharing.page(
            session, principal, role="consumer", status="pending", overdue=False, before=None, limit=QUEUE
        )
        if principal.has_any(frozenset({Role.consumer}))
        else []
    )
    if not principal.has_any(OVERSEERS):
        return render(request, "dashboard.html", days=days, inbox=inbox, outbox=outbox, usage=None)
    now = datetime.now(UTC)
    used = await usage(session, now - timedelta(days=days))
    measured = await _quality(request, session, now)
    return render(
        request,
        "dashboard.html",
        days=days,
        inbox=inbox,
        outbox=outbox,
        usage=used,
        sharing=await sharing.statistics(session),
        quality=measured,
        served_chart=[(f"{s.resource} · {s.purpose or '—'}", s.requests) for s in used.served],
        completeness_chart=[(q.resource, q.completeness) for q in measured if q.completeness is not None],
    )
