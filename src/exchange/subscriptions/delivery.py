"""Webhook delivery: signed per Standard Webhooks, in order per subscription, at least once, nothing lost.

Any number of deliverers (``exchange worker`` processes, and ``exchange serve`` unless told not to) share the
work through the database. Each process claims due subscriptions that have events to send with a
session-level advisory lock per subscription, all held by one connection of its own (it writes nothing, so
it holds back no feed; if it is lost, so are the claims, and no further post starts). While it holds a
claim it sends pages: it reads the subscription, checks its grant and reads up to ``PAGE`` events in a
few statements, posts them one after another on a keep-alive connection outside any transaction, and then
records the page in one transaction: the attempts log, the position and one audit event naming every
subject and event the page sent. The position moves only in that transaction, so a deliverer killed
mid-page loses nothing: the next one sends the same events again, with the same ``webhook-id``.

Each claimed subscription is served by a task of its own, so a slow or failing endpoint holds back no other
subscription; a claim is given back when its subscription has nothing left to send, when it must wait for a
retry, or after ``SERVE_SECONDS`` (so the processes share the work). Processes look for work every
``POLL_SECONDS``: a change reaches its subscribers within that and one page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from urllib.parse import urljoin

import aiohttp
import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from exchange.access.policy import Access, Decision, decide
from exchange.audit import service as audit
from exchange.config import Settings
from exchange.db.pool import connection, create_pool, libpq_url
from exchange.db.session import transaction
from exchange.records import repository as records_repository
from exchange.records import service as records
from exchange.records.validation import ResourceRules
from exchange.subscriptions import feed, repository, service, targets
from exchange.subscriptions.models import Subscription
from exchange.subscriptions.retries import Answer, retry_after, settle

logger = logging.getLogger("exchange.delivery")

PAGE = 100  # events per page: one grant check, one scan and one record transaction for up to this many posts
PAGE_SECONDS = 1.0  # no post of a page starts later than this, so a pause or replay soon applies
SERVE_SECONDS = 5.0  # a claim held this long is given back, for the other processes to take their share
POLL_SECONDS = 0.05  # how often a process looks for subscriptions with events to send
DEFAULT_CONCURRENCY = 16  # subscriptions served at once by one process
REDIRECTS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 3
MAX_ERROR_BYTES = 500
RETRY_FAILED_SECONDS = (1.0, 60.0)  # after a page could not be recorded: first and longest wait


@dataclass(frozen=True, slots=True)
class Page:
    """What a page is about, read before posting: the events after ``held`` and the decision that lets
    them leave."""

    subscription: Subscription
    held: feed.Position
    events: list[feed.Event]
    scanned_to: feed.Position
    decision: Decision


class Claims:
    """This process's claims: advisory locks held by one connection that does nothing else."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection
        self.lock = asyncio.Lock()  # one statement at a time on the connection

    @classmethod
    async def connect(cls, url: str) -> Claims:
        return cls(
            await asyncpg.connect(libpq_url(url), server_settings={"application_name": "exchange-claims"})
        )

    @property
    def held(self) -> bool:
        """False once the connection is lost: the database has let go of every claim."""
        return not self.connection.is_closed()

    async def take(self, excluded: list[uuid.UUID], limit: int, now: datetime) -> list[repository.Claim]:
        async with self.lock:
            return await repository.claim(self.connection, excluded, limit, now)

    async def give_back(self, claimed: repository.Claim) -> None:
        if not self.held:
            return
        async with self.lock:
            await repository.release(self.connection, claimed)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.connection.close(timeout=5)


class Deliverer:
    """Delivers webhooks until cancelled (:meth:`run`); posts happen outside any transaction."""

    def __init__(
        self, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        self.url = engine.url.render_as_string(hide_password=False)
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.schedule = settings.retry_schedule or [0.0]
        self.allowed = targets.parse_networks(settings.webhook_allowed_networks)
        # Subscriptions whose last page could not be recorded (the audit log refused it, say): when this
        # process may try them again, and how often it failed. Only pacing: any process may serve them.
        self.resting: dict[uuid.UUID, tuple[float, int]] = {}

    async def run(self, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        pool = await create_pool(self.url, self.settings.db_hot_pool_size)
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=targets.PinnedResolver(self.allowed)),
            timeout=aiohttp.ClientTimeout(total=self.settings.webhook_timeout_seconds),
            headers={"user-agent": "exchange-hub"},
        )
        try:
            while True:
                # Returns when the claims' connection is lost; every claim went with it, so all start over.
                try:
                    claims = await Claims.connect(self.url)
                    try:
                        await self._schedule(pool, http, claims, concurrency)
                    finally:
                        await claims.close()
                except Exception:
                    logger.exception("delivery stopped; starting again")
                    await asyncio.sleep(1.0)
        finally:
            await http.close()
            await pool.close()

    async def _schedule(
        self, pool: asyncpg.Pool, http: aiohttp.ClientSession, claims: Claims, concurrency: int
    ) -> None:
        """Claim due subscriptions while there is room, and serve each in a task of its own."""
        serving: dict[uuid.UUID, asyncio.Task[None]] = {}
        freed = asyncio.Event()

        def finished(subscription_id: uuid.UUID, _: asyncio.Task[None]) -> None:
            serving.pop(subscription_id, None)
            freed.set()

        try:
            while claims.held:
                if len(serving) < concurrency:
                    now = time.monotonic()
                    resting = [key for key, (until, _) in self.resting.items() if until > now]
                    taken = await claims.take(
                        [*serving, *resting], concurrency - len(serving), datetime.now(UTC)
                    )
                    for claimed in taken:
                        task = asyncio.create_task(self._serve(pool, http, claims, claimed))
                        serving[claimed.subscription_id] = task
                        task.add_done_callback(partial(finished, claimed.subscription_id))
                # One claim statement a poll, whatever it found: a subscription claimed in vain (its last
                # event went out meanwhile) costs a statement, not a busy loop.
                freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(freed.wait(), POLL_SECONDS)
        finally:
            for task in serving.values():
                task.cancel()
            await asyncio.gather(*serving.values(), return_exceptions=True)

    async def _serve(
        self, pool: asyncpg.Pool, http: aiohttp.ClientSession, claims: Claims, claimed: repository.Claim
    ) -> None:
        """Send pages of one claimed subscription until it has nothing to send now, then give it back."""
        subscription_id = claimed.subscription_id
        started = time.monotonic()
        try:
            while claims.held and time.monotonic() - started < SERVE_SECONDS:
                page = await self._prepare(pool, subscription_id)
                if page is None:
                    break
                answers = await self._post_page(http, claims, page)
                if not await self._record(pool, page, answers):
                    break
            self.resting.pop(subscription_id, None)
        except Exception:
            logger.exception("delivery failed", extra={"subscription": str(subscription_id)})
            _, failures = self.resting.get(subscription_id, (0.0, 0))
            first, longest = RETRY_FAILED_SECONDS
            wait = min(longest, first * 2**failures)
            self.resting[subscription_id] = (time.monotonic() + wait, failures + 1)
        finally:
            with contextlib.suppress(Exception):
                await claims.give_back(claimed)

    async def _rules(self, code: str, version: int | None) -> ResourceRules:
        """The resource's policy rules at the catalogue version the page read (reloaded when it moved)."""
        rules = records.cached_rules(code, version)
        if rules is None:
            async with transaction(self.sessionmaker) as session:
                rules = await records.load_rules(session, code)
        return rules

    async def _prepare(self, pool: asyncpg.Pool, subscription_id: uuid.UUID) -> Page | None:
        """The next page of a subscription that is active and due; None if there is nothing to send now."""
        now = datetime.now(UTC)
        async with connection(pool) as db:
            state = await repository.state(db, subscription_id, now)
            if state is None or state.subscription.status != "active" or not state.due or not state.pending:
                return None
            subscription = state.subscription
            rules = await self._rules(subscription.resource_code, state.catalog_version)
            decision = decide(
                department=subscription.consumer_department,
                rules=rules.policy_rules,
                requested=subscription.elements,
                access=Access.subscribe,
                purpose=subscription.purpose_code,
                grants=state.grants,
                now=now,
            )
            if not decision.allowed:
                async with transaction(self.sessionmaker) as session:
                    await service.stop_without_grant(session, subscription, decision)
                return None
            held = feed.Position(subscription.cursor_txid, subscription.cursor_seq)
            changes = await repository.scan(db, subscription.resource_code, held, PAGE)
        current: dict[str, records_repository.Current] = {}
        if reviewed := feed.reviewed_subjects(subscription, changes):
            async with self.sessionmaker() as session:
                current = await records_repository.current_records(
                    session, subscription.resource_code, reviewed
                )
        events, scanned_to = feed.select(subscription, held, changes, current, PAGE)
        return Page(subscription, held, events, scanned_to, decision)

    async def _post_page(self, http: aiohttp.ClientSession, claims: Claims, page: Page) -> list[Answer]:
        """Post the page's events in order until one is not delivered, the claim is lost, or the page has
        taken ``PAGE_SECONDS``."""
        if not page.events:
            return []
        assert page.subscription.secret is not None
        webhook = Webhook(page.subscription.secret)
        answers: list[Answer] = []
        started = time.monotonic()
        for event in page.events:
            if not claims.held or (answers and time.monotonic() - started >= PAGE_SECONDS):
                break
            answer = await self._post(http, webhook, page.subscription, event)
            answers.append(answer)
            if not answer.delivered:
                break
        return answers

    async def _post(
        self, http: aiohttp.ClientSession, webhook: Webhook, subscription: Subscription, event: feed.Event
    ) -> Answer:
        """Post one event, following redirects to targets that pass the check."""
        assert subscription.url is not None
        body = orjson.dumps(feed.cloudevent(event, subscription, self.settings.issuer))
        message_id = f"{event.position.txid}-{event.position.seq}"
        sent_at = datetime.now(UTC)
        headers = {
            "content-type": "application/cloudevents+json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": webhook.sign(message_id, sent_at, body.decode()),
        }
        started = time.perf_counter()

        def answer(status: int | None, error: str | None, wait: float | None = None) -> Answer:
            duration = (time.perf_counter() - started) * 1000
            return Answer(event.position, status, error, wait, duration, sent_at)

        url = subscription.url
        for _ in range(MAX_REDIRECTS + 1):
            try:
                await targets.check(url, self.allowed)
            except targets.TargetRefused as exc:
                return answer(None, f"refused target {url}: {exc}")
            try:
                async with http.post(url, data=body, headers=headers, allow_redirects=False) as response:
                    location = response.headers.get("location")
                    if response.status in REDIRECTS and location:
                        url = urljoin(url, location)
                        continue
                    # Reading what little the answer carries lets its connection serve the next post.
                    text = (await response.content.read(MAX_ERROR_BYTES)).decode(errors="replace")
                    if 200 <= response.status < 300:
                        return answer(response.status, None)
                    wait = retry_after(response.headers.get("retry-after"), datetime.now(UTC))
                    return answer(response.status, text, wait)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return answer(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_BYTES])
        return answer(None, f"more than {MAX_REDIRECTS} redirects")

    async def _record(self, pool: asyncpg.Pool, page: Page, answers: list[Answer]) -> bool:
        """Record the page in one transaction; whether the subscription may go on with its next page now."""
        now = datetime.now(UTC)
        complete = len(answers) == len(page.events) and all(a.delivered for a in answers)
        subscription = page.subscription
        async with connection(pool) as db, db.transaction():
            progress = await repository.lock_progress(db, subscription.id)
            if progress is None:
                # Deleted while the page was out: what left is still accounted for.
                if answers:
                    await repository.append_audit(db, _audit_event(page, answers))
                return False
            settled, attempts = settle(
                progress,
                page.held,
                answers,
                page.scanned_to if complete else None,
                schedule=self.schedule,
                pause_after=self.settings.webhook_pause_after_dead,
                now=now,
                jitter=random.uniform(0.9, 1.1),  # noqa: S311 (spreads retries, not a secret)
            )
            if settled != progress:
                await repository.save_progress(db, subscription.id, settled)
            if attempts:
                await repository.add_attempts(db, subscription.id, attempts)
                await repository.append_audit(db, _audit_event(page, answers, attempts[-1]))
        return settled.status == "active" and settled.next_attempt_at <= now


def _audit_event(page: Page, answers: list[Answer], last: repository.Attempt | None = None) -> audit.Event:
    """One event for the page: every subject and event it sent (all delivered but perhaps the last), and
    how the last post went."""
    event = service.delivery_event(
        "subscriptions.deliver", page.subscription, page.events[: len(answers)], page.decision
    )
    event.details.update(
        delivered=sum(answer.delivered for answer in answers),
        status=answers[-1].status,
        outcome=last.outcome if last else None,
        attempt=last.attempt if last else None,
    )
    return event
