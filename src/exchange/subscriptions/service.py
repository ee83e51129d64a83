"""Subscriptions: made under a subscribe grant, read (pull) or delivered (webhook) only while it holds."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from exchange.access.exceptions import UnauthorizedField
from exchange.access.policy import Access, Decision
from exchange.audit import service as audit
from exchange.auth.principal import Principal
from exchange.catalog import repository as catalog_repository
from exchange.config import Settings
from exchange.db.session import transaction
from exchange.errors import Conflict, Forbidden, InvalidInput, InvalidParam, NotFound
from exchange.records import service as records
from exchange.records.validation import ResourceRules
from exchange.subscriptions import feed, targets
from exchange.subscriptions.models import Delivery, Subscription
from exchange.subscriptions.schemas import (
    Condition,
    DeliveryOut,
    EventPage,
    Payload,
    SubscriptionCreate,
    SubscriptionOut,
)


class SubscriptionNotFound(NotFound):
    code = "subscription_not_found"
    title = "No such subscription"

    def __init__(self) -> None:
        super().__init__("No subscription with this id belongs to your department.")


class NotPull(Conflict):
    code = "not_a_pull_subscription"
    title = "This subscription is delivered by webhook"


class SubscriptionStopped(Forbidden):
    code = "subscription_stopped"
    title = "The subscription is not active"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def out(subscription: Subscription, secret: str | None = None) -> SubscriptionOut:
    delivery: dict[str, object] = {"mode": subscription.mode}
    if subscription.url is not None:
        delivery["url"] = subscription.url
    return SubscriptionOut(
        id=subscription.id,
        resource=subscription.resource_code,
        elements=subscription.elements,
        purpose=subscription.purpose_code,
        filter=[Condition.model_validate(c) for c in subscription.filter],
        payload=Payload(subscription.payload),
        delivery=delivery,
        status=subscription.status,
        status_reason=subscription.status_reason,
        cursor=feed.Position(subscription.cursor_txid, subscription.cursor_seq).cursor(),
        created_at=subscription.created_at,
        secret=secret,
    )


async def grant_holds(session: AsyncSession, subscription: Subscription, now: datetime) -> Decision:
    """The policy decision for delivering this subscription's elements now."""
    rules = await records.load_rules(session, subscription.resource_code)
    return await records.decide_for(
        session,
        rules,
        subscription.consumer_department,
        subscription.purpose_code,
        subscription.elements,
        Access.subscribe,
        now,
    )


def _event(action: str, principal: Principal, subscription: Subscription, **details: object) -> audit.Event:
    return audit.Event(
        action=action,
        department=principal.department_code,
        client_id=principal.client_id,
        purpose=subscription.purpose_code,
        resource=subscription.resource_code,
        elements=list(subscription.elements),
        details={"subscription": str(subscription.id), **details},
    )


def _values_refused(rules: ResourceRules, conditions: list[Condition]) -> list[InvalidParam]:
    """An ``equals`` must be a value its element could hold, checked as published values are."""
    refused = []
    for i, condition in enumerate(conditions):
        check = rules.checkers.get(condition.element)
        if condition.equals is None or check is None:
            continue
        try:
            check(condition.equals)
        except ValueError as exc:
            refused.append(InvalidParam(name=f"filter.{i}.equals", reason=str(exc)))
    return refused


async def create(
    session: AsyncSession, principal: Principal, body: SubscriptionCreate, settings: Settings
) -> SubscriptionOut:
    now = datetime.now(UTC)
    rules = await records.load_rules(session, body.resource)
    records.check_elements(rules, body.elements, "elements")
    errors: list[InvalidParam] = []
    if len(set(body.elements)) != len(body.elements):
        errors.append(InvalidParam(name="elements", reason="lists an element twice"))
    if await catalog_repository.get_purpose(session, body.purpose) is None:
        errors.append(InvalidParam(name="purpose", reason=f"{body.purpose} is not a registered purpose"))
    errors += [
        InvalidParam(name=f"filter.{i}.element", reason="must be one of the subscription's elements")
        for i, condition in enumerate(body.filter)
        if condition.element not in body.elements
    ]
    errors += _values_refused(rules, body.filter)
    url = getattr(body.delivery, "url", None)
    if url is not None:
        try:
            await targets.check(url, targets.parse_networks(settings.webhook_allowed_networks))
        except targets.TargetRefused as exc:
            errors.append(InvalidParam(name="delivery.url", reason=str(exc)))
    if errors:
        raise InvalidInput("; ".join(f"{e.name}: {e.reason}" for e in errors), errors)
    decision = await records.decide_for(
        session, rules, principal.department_code, body.purpose, body.elements, Access.subscribe, now
    )
    if not decision.allowed:
        raise UnauthorizedField(body.resource, decision.missing, decision.reason)
    start = await feed.current_position(session)
    secret = new_secret() if url is not None else None
    subscription = Subscription(
        id=uuid.uuid4(),
        consumer_department=principal.department_code,
        client_id=principal.client_id,
        resource_code=body.resource,
        elements=list(body.elements),
        purpose_code=body.purpose,
        filter=[c.model_dump(exclude_none=True) for c in body.filter],
        payload=body.payload.value,
        mode=body.delivery.mode,
        url=url,
        secret=secret,
        status="active",
        cursor_txid=start.txid,
        cursor_seq=start.seq,
        attempts=0,
        dead_in_a_row=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(subscription)
    await session.flush()
    event = _event("subscriptions.create", principal, subscription, mode=subscription.mode)
    await audit.append(
        session, replace(event, grant_id=decision.grant_ids[0] if decision.grant_ids else None)
    )
    return out(subscription, secret)


async def own(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID, *, lock: bool = False
) -> Subscription:
    statement = select(Subscription).where(
        Subscription.id == subscription_id, Subscription.consumer_department == principal.department_code
    )
    if lock:
        statement = statement.with_for_update()
    subscription = await session.scalar(statement)
    if subscription is None:
        raise SubscriptionNotFound()
    return subscription


async def listing(session: AsyncSession, principal: Principal) -> list[SubscriptionOut]:
    rows = await session.scalars(
        select(Subscription)
        .where(Subscription.consumer_department == principal.department_code)
        .order_by(Subscription.created_at.desc())
    )
    return [out(row) for row in rows]


async def set_status(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID, *, active: bool
) -> SubscriptionOut:
    """Pause, or resume (which asks the policy again: a suspended subscription resumes once a grant holds)."""
    subscription = await own(session, principal, subscription_id, lock=True)
    if subscription.status == "disabled" and not active:
        raise SubscriptionStopped("The endpoint answered 410 Gone: the subscription is disabled for good.")
    now = datetime.now(UTC)
    if active:
        decision = await grant_holds(session, subscription, now)
        if not decision.allowed:
            raise UnauthorizedField(subscription.resource_code, decision.missing, decision.reason)
        subscription.status, subscription.status_reason = "active", None
        subscription.attempts, subscription.dead_in_a_row, subscription.next_attempt_at = 0, 0, now
    else:
        subscription.status, subscription.status_reason = "paused", f"paused by {principal.client_id}"
    await audit.append(
        session, _event("subscriptions.resume" if active else "subscriptions.pause", principal, subscription)
    )
    return out(subscription)


async def move_cursor(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID, cursor: str, *, replay: bool
) -> SubscriptionOut:
    """Acknowledge up to ``cursor`` (forward only), or replay everything after it (any position)."""
    subscription = await own(session, principal, subscription_id, lock=True)
    position = feed.Position.parse(cursor, "after" if replay else "cursor")
    held = feed.Position(subscription.cursor_txid, subscription.cursor_seq)
    if not replay:
        if subscription.mode != "pull":
            raise NotPull("Webhook deliveries are acknowledged by the endpoint's 2xx answer.")
        if position < held:
            raise InvalidInput.one("cursor", "is before the acknowledged position (replay to go back)")
    subscription.cursor_txid, subscription.cursor_seq = position.txid, position.seq
    if replay:
        subscription.attempts, subscription.next_attempt_at = 0, datetime.now(UTC)
        await audit.append(session, _event("subscriptions.replay", principal, subscription, after=cursor))
    return out(subscription)


async def deliveries(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID, limit: int
) -> list[DeliveryOut]:
    subscription = await own(session, principal, subscription_id)
    rows = await session.scalars(
        select(Delivery)
        .where(Delivery.subscription_id == subscription.id)
        .order_by(Delivery.id.desc())
        .limit(limit)
    )
    return [DeliveryOut.model_validate(row) for row in rows]


async def stop_without_grant(session: AsyncSession, subscription: Subscription, decision: Decision) -> None:
    await session.execute(
        update(Subscription)
        .where(Subscription.id == subscription.id)
        .values(status="suspended", status_reason=decision.reason)
    )
    await audit.append(
        session,
        audit.Event(
            action="subscriptions.suspend",
            department=subscription.consumer_department,
            client_id=subscription.client_id,
            purpose=subscription.purpose_code,
            resource=subscription.resource_code,
            elements=list(decision.missing),
            details={"subscription": str(subscription.id), "reason": decision.reason},
        ),
    )


def delivery_event(
    action: str, subscription: Subscription, events: list[feed.Event], decision: Decision
) -> audit.Event:
    """One audit event for a page or a delivery: whose records left, which elements, under which grant."""
    return audit.Event(
        action=action,
        department=subscription.consumer_department,
        client_id=subscription.client_id,
        purpose=subscription.purpose_code,
        grant_id=decision.grant_ids[0] if decision.grant_ids else None,
        resource=subscription.resource_code,
        subject_ids=sorted({e.subject_id for e in events}),
        elements=sorted({name for e in events for name in e.elements}),
        details={
            "subscription": str(subscription.id),
            "payload": subscription.payload,
            "events": [f"{e.position.txid}-{e.position.seq}" for e in events],
        },
    )


class PurposeMismatch(Forbidden):
    code = "purpose_mismatch"
    title = "The declared purpose is not the subscription's"


POLL_SECONDS = 0.25


async def pull(
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal,
    subscription_id: uuid.UUID,
    *,
    after: str | None,
    limit: int,
    wait: float,
    purpose: str,
    source: str,
) -> EventPage:
    """Events after ``after`` (default: the acknowledged position), waiting up to ``wait`` seconds for one.

    Each poll is a short transaction of its own, so a waiting reader holds no connection; a page that carries
    events is audited in the transaction that read it.
    """
    deadline = time.monotonic() + wait
    while True:
        stopped: Decision | None = None
        async with transaction(sessionmaker) as session:
            subscription = await own(session, principal, subscription_id)
            if subscription.mode != "pull":
                raise NotPull("Its events are delivered to its webhook; see its deliveries.")
            if purpose != subscription.purpose_code:
                raise PurposeMismatch(f"This subscription's purpose is {subscription.purpose_code}.")
            if subscription.status != "active":
                raise SubscriptionStopped(
                    f"The subscription is {subscription.status}: {subscription.status_reason}"
                )
            decision = await grant_holds(session, subscription, datetime.now(UTC))
            if not decision.allowed:
                await stop_without_grant(session, subscription, decision)
                stopped = decision
            else:
                held = feed.Position(subscription.cursor_txid, subscription.cursor_seq)
                start = feed.Position.parse(after, "after") if after else held
                events, position = await feed.read(session, subscription, start, limit)
                if events:
                    await audit.append(
                        session, delivery_event("subscriptions.events", subscription, events, decision)
                    )
                if events or time.monotonic() >= deadline:
                    return EventPage(
                        events=[feed.cloudevent(e, subscription, source) for e in events],
                        next_cursor=position.cursor(),
                    )
        if stopped is not None:
            raise UnauthorizedField(subscription.resource_code, stopped.missing, stopped.reason)
        await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
