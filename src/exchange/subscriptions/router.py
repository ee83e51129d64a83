"""Subscriptions API: make one under a subscribe grant, read its feed (pull) or watch its deliveries."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from exchange.access.dependencies import ReadUse
from exchange.audit import context
from exchange.auth.dependencies import require_roles
from exchange.auth.principal import Principal, Role
from exchange.db.session import DbSession
from exchange.errors import problem_responses
from exchange.subscriptions import service
from exchange.subscriptions.schemas import (
    AckBody,
    DeliveryPage,
    EventPage,
    ReplayBody,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionPage,
)

router = APIRouter(
    prefix="/v1/subscriptions", tags=["subscriptions"], responses=problem_responses(401, 403, 404, 422)
)

Consumer = Annotated[Principal, Depends(require_roles(Role.consumer))]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionOut,
    dependencies=[Depends(context.audited("subscriptions.create"))],
    summary="Subscribe to changes of a resource (needs a subscribe grant for the purpose)",
    description=(
        "Events start from now. `delivery: {mode: pull}` — read `GET …/events`; `{mode: webhook, url}` — "
        "events are posted signed per Standard Webhooks with the `secret` shown once in this answer. "
        "`payload: thin` carries subject and changed element names; `full` the granted values."
    ),
)
async def create(
    body: SubscriptionCreate, request: Request, session: DbSession, principal: Consumer
) -> SubscriptionOut:
    context.update(request, resource=body.resource, elements=body.elements, purpose=body.purpose)
    return await service.create(session, principal, body, request.app.state.settings)


@router.get("", response_model=SubscriptionPage, summary="Your department's subscriptions")
async def list_subscriptions(session: DbSession, principal: Consumer) -> SubscriptionPage:
    return SubscriptionPage(items=await service.listing(session, principal))


@router.get("/{subscription_id}", response_model=SubscriptionOut, summary="One subscription")
async def get_subscription(
    subscription_id: uuid.UUID, session: DbSession, principal: Consumer
) -> SubscriptionOut:
    return service.out(await service.own(session, principal, subscription_id))


@router.get(
    "/{subscription_id}/events",
    response_model=EventPage,
    dependencies=[Depends(context.audited("subscriptions.events"))],
    responses=problem_responses(400, 409),
    summary="The next events, in order (pull); each page with events is audited",
    description=(
        "From `after` (default: the acknowledged cursor). With `wait`, the answer comes as soon as an event "
        "does, or after that many seconds with none. Acknowledge with `POST …/ack {cursor: next_cursor}`."
    ),
)
async def events(
    subscription_id: uuid.UUID,
    request: Request,
    principal: Consumer,
    use: ReadUse,
    after: Annotated[str | None, Query(max_length=200, description="A cursor from this feed.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    wait: Annotated[float, Query(ge=0, le=30, description="Seconds to wait for an event.")] = 0,
) -> EventPage:
    context.update(request, details={"subscription": str(subscription_id)})
    assert use.purpose is not None
    return await service.pull(
        request.app.state.sessionmaker,
        principal,
        subscription_id,
        after=after,
        limit=limit,
        wait=wait,
        purpose=use.purpose,
        source=request.app.state.settings.issuer,
    )


@router.post(
    "/{subscription_id}/ack",
    response_model=SubscriptionOut,
    responses=problem_responses(409),
    summary="Acknowledge events up to a cursor (pull); the next read starts after it",
)
async def ack(
    subscription_id: uuid.UUID, body: AckBody, session: DbSession, principal: Consumer
) -> SubscriptionOut:
    return await service.move_cursor(session, principal, subscription_id, body.cursor, replay=False)


@router.post(
    "/{subscription_id}:replay",
    response_model=SubscriptionOut,
    summary="Deliver again every event after a cursor",
)
async def replay(
    subscription_id: uuid.UUID, body: ReplayBody, session: DbSession, principal: Consumer
) -> SubscriptionOut:
    return await service.move_cursor(session, principal, subscription_id, body.after, replay=True)


@router.post("/{subscription_id}:pause", response_model=SubscriptionOut, summary="Stop delivering for now")
async def pause(subscription_id: uuid.UUID, session: DbSession, principal: Consumer) -> SubscriptionOut:
    return await service.set_status(session, principal, subscription_id, active=False)


@router.post(
    "/{subscription_id}:resume",
    response_model=SubscriptionOut,
    summary="Deliver again from where it stopped (the grant is checked again)",
)
async def resume(subscription_id: uuid.UUID, session: DbSession, principal: Consumer) -> SubscriptionOut:
    return await service.set_status(session, principal, subscription_id, active=True)


@router.get(
    "/{subscription_id}/deliveries",
    response_model=DeliveryPage,
    summary="Webhook delivery attempts, newest first (dead letters have outcome dead)",
)
async def deliveries(
    subscription_id: uuid.UUID,
    session: DbSession,
    principal: Consumer,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryPage:
    return DeliveryPage(items=await service.deliveries(session, principal, subscription_id, limit))
