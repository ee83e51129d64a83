"""Webhook delivery: signed per Standard Webhooks, in order per subscription, at least once, nothing lost.

Any number of deliverers (``exchange worker`` processes, and ``exchange serve`` unless told not to) share the
work through the database: each claims one due subscription with an advisory lock it holds while it posts
that subscription's next event, so two never send to one subscription at once and events go out in order.
The position moves only in the transaction that records a 2xx answer: a deliverer killed mid-delivery
loses nothing, and the next one sends the same event again with the same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import httpx
import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from exchange.access.policy import Decision
from exchange.audit import service as audit
from exchange.config import Settings
from exchange.db.locks import advisory_key
from exchange.db.session import transaction
from exchange.subscriptions import feed, service, targets
from exchange.subscriptions.models import Delivery, Subscription

logger = logging.getLogger("exchange.delivery")

IDLE = timedelta(seconds=0.5)  # how soon a subscription with nothing to send is looked at again
REDIRECTS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 3


def retry_after(response: httpx.Response, now: datetime) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None


def _lock_key(subscription_id: uuid.UUID) -> int:
    return advisory_key(f"deliver:{subscription_id}")


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one delivery attempt is about, read in a short transaction before posting."""

    subscription: Subscription
    event: feed.Event
    held: feed.Position
    decision: Decision


class Deliverer:
    """Claims due subscriptions with a session-level advisory lock (its connection writes nothing, so it
    holds back no feed) and posts outside any transaction."""

    def __init__(
        self, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.schedule = settings.retry_schedule or [0.0]
        self.allowed = targets.parse_networks(settings.webhook_allowed_networks)
        self.client = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False)

    async def close(self) -> None:
        await self.client.aclose()

    async def run(self, concurrency: int = 2) -> None:
        """Deliver until cancelled."""
        try:
            await asyncio.gather(*(self._loop() for _ in range(concurrency)))
        finally:
            await self.close()

    async def _loop(self) -> None:
        async with self.engine.connect() as connection:
            guard = await connection.execution_options(isolation_level="AUTOCOMMIT")
            while True:
                try:
                    worked = await self.step(guard)
                except Exception:
                    logger.exception("delivery step failed")
                    worked = False
                if not worked:
                    await asyncio.sleep(0.2)

    async def step(self, guard: AsyncConnection) -> bool:
        """Deliver the next event of one due subscription nobody else is serving; False if none was due."""
        async with self.sessionmaker() as session:
            due = list(
                await session.scalars(
                    select(Subscription.id)
                    .where(
                        Subscription.mode == "webhook",
                        Subscription.status == "active",
                        Subscription.next_attempt_at <= datetime.now(UTC),
                    )
                    .order_by(Subscription.next_attempt_at)
                    .limit(20)
                )
            )
        for subscription_id in due:
            key = _lock_key(subscription_id)
            if await guard.scalar(select(func.pg_try_advisory_lock(key))):
                try:
                    await self.deliver(subscription_id)
                finally:
                    await guard.scalar(select(func.pg_advisory_unlock(key)))
                return True
        return False

    async def deliver(self, subscription_id: uuid.UUID) -> None:
        """One attempt for one subscription (the caller holds its lock)."""
        attempt = await self._prepare(subscription_id)
        if attempt is None:
            return
        started = time.perf_counter()
        status, error, response = await self._post(attempt.subscription, attempt.event)
        duration = (time.perf_counter() - started) * 1000
        await self._record(attempt, status, error, response, duration)

    async def _prepare(self, subscription_id: uuid.UUID) -> Attempt | None:
        async with transaction(self.sessionmaker) as session:
            subscription = await session.get(Subscription, subscription_id, with_for_update=True)
            now = datetime.now(UTC)
            if subscription is None or subscription.status != "active" or subscription.next_attempt_at > now:
                return None
            decision = await service.grant_holds(session, subscription, now)
            if not decision.allowed:
                await service.stop_without_grant(session, subscription, decision)
                return None
            held = feed.Position(subscription.cursor_txid, subscription.cursor_seq)
            events, position = await feed.read(session, subscription, held, 1)
            if not events:
                subscription.cursor_txid, subscription.cursor_seq = position.txid, position.seq
                subscription.next_attempt_at = now + IDLE
                return None
            session.expunge(subscription)
            return Attempt(subscription, events[0], held, decision)

    async def _record(
        self,
        attempt: Attempt,
        status: int | None,
        error: str | None,
        response: httpx.Response | None,
        duration: float,
    ) -> None:
        event = attempt.event
        async with transaction(self.sessionmaker) as session:
            subscription = await session.get(Subscription, attempt.subscription.id, with_for_update=True)
            if subscription is None:
                return
            now = datetime.now(UTC)
            number = subscription.attempts + 1
            # A replay while the post was in flight moved the position: leave it where the replay put it.
            unmoved = (subscription.cursor_txid, subscription.cursor_seq) == (
                attempt.held.txid,
                attempt.held.seq,
            )
            if status is not None and 200 <= status < 300:
                outcome = "delivered"
                if unmoved:
                    subscription.cursor_txid, subscription.cursor_seq = (
                        event.position.txid,
                        event.position.seq,
                    )
                subscription.attempts, subscription.dead_in_a_row, subscription.next_attempt_at = 0, 0, now
            elif status == 410:
                outcome = "failed"
                subscription.status = "disabled"
                subscription.status_reason = "the endpoint answered 410 Gone"
            elif number < len(self.schedule):
                outcome = "failed"
                delay = self.schedule[number] * random.uniform(0.9, 1.1)  # noqa: S311 (jitter)
                asked = retry_after(response, now) if response is not None else None
                subscription.attempts = number
                subscription.next_attempt_at = now + timedelta(seconds=max(delay, asked or 0.0))
            else:
                outcome = "dead"
                if unmoved:
                    subscription.cursor_txid, subscription.cursor_seq = (
                        event.position.txid,
                        event.position.seq,
                    )
                subscription.attempts, subscription.next_attempt_at = 0, now
                subscription.dead_in_a_row += 1
                if subscription.dead_in_a_row >= self.settings.webhook_pause_after_dead:
                    subscription.status = "paused"
                    subscription.status_reason = (
                        f"{subscription.dead_in_a_row} events in a row could not be delivered"
                    )
            session.add(
                Delivery(
                    subscription_id=subscription.id,
                    event_seq=event.position.seq,
                    attempt=number,
                    outcome=outcome,
                    status_code=status,
                    error=error,
                    duration_ms=round(duration, 2),
                    attempted_at=now,
                )
            )
            sent = service.delivery_event("subscriptions.deliver", subscription, [event], attempt.decision)
            sent.details.update(attempt=number, outcome=outcome, status=status)
            await audit.append(session, sent)

    async def _post(
        self, subscription: Subscription, event: feed.Event
    ) -> tuple[int | None, str | None, httpx.Response | None]:
        """Post one event; the status code (None if no answer), an error text, the response."""
        assert subscription.url is not None
        assert subscription.secret is not None
        body = orjson.dumps(feed.cloudevent(event, subscription, self.settings.issuer))
        message_id = f"{event.position.txid}-{event.position.seq}"
        sent_at = datetime.now(UTC)
        signature = Webhook(subscription.secret).sign(message_id, sent_at, body.decode())
        headers = {
            "content-type": "application/cloudevents+json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signature,
        }
        url = subscription.url
        for _ in range(MAX_REDIRECTS + 1):
            try:
                await targets.check(url, self.allowed)
            except targets.TargetRefused as exc:
                return None, f"refused target {url}: {exc}", None
            try:
                response = await self.client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                return None, f"{type(exc).__name__}: {exc}"[:500], None
            location = response.headers.get("location")
            if response.status_code in REDIRECTS and location:
                url = urljoin(url, location)
                continue
            error = None if response.is_success else response.text[:500]
            return response.status_code, error, response
        return None, f"more than {MAX_REDIRECTS} redirects", None


async def run_until_cancelled(deliverer: Deliverer, concurrency: int) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await deliverer.run(concurrency)
