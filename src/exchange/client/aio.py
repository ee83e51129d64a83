"""The asyncio client: :class:`AsyncExchangeClient`, the same operations as the blocking one."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from exchange.client.api import Api, Call, Decision, Feed
from exchange.client.auth import KeySource, TokenCache, credentials
from exchange.client.files import FileRecords, Progress, Record, andjson_chunks
from exchange.client.models import (
    AuditEventPage,
    BatchResult,
    CallerOut,
    DiscrepancyOut,
    DiscrepancyPage,
    EventPage,
    GrantPage,
    PublishResult,
    QualityOut,
    QueryResult,
    ReportResult,
    SharingRequestOut,
    SharingRequestPage,
    SubscriptionOut,
    VerifyResult,
)

T = TypeVar("T")


class AsyncExchangeClient:
    """A department system's connection to the exchange hub, for asyncio (safe to share between tasks).

    Authenticates with a client secret or, given ``private_key``, with ``private_key_jwt``; keeps the access
    token until shortly before it expires and asks for a new one once if the hub refuses it. Every non-2xx
    answer raises an :class:`~exchange.client.errors.ExchangeError` subclass.
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str | None = None,
        *,
        private_key: KeySource | None = None,
        timeout: float = 30.0,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = Api(url, timeout)
        self._credentials = credentials(client_id, client_secret, private_key)
        self._tokens = TokenCache(clock)
        self._token_lock = asyncio.Lock()
        self._http = http or httpx.AsyncClient()
        self._owns_http = http is None

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- sending -------------------------------------------------------------------------------------

    async def token(self, *, refused: str | None = None) -> str:
        """A current access token; ``refused``: one the hub did not accept, to be replaced."""
        async with self._token_lock:
            if refused is not None:
                self._tokens.discard(refused)
            if (current := self._tokens.current()) is not None:
                return current
            issued = await self._call(self._api.token(self._credentials, time.time()))
            return self._tokens.store(issued.access_token, issued.expires_in)

    async def _call(self, call: Call[T]) -> T:
        if not call.authorized:
            return call.parse(await self._http.send(call.request))
        token = await self.token()
        call.request.headers["Authorization"] = f"Bearer {token}"
        response = await self._http.send(call.request)
        if response.status_code == httpx.codes.UNAUTHORIZED and call.replayable:
            await response.aclose()
            call.request.headers["Authorization"] = f"Bearer {await self.token(refused=token)}"
            response = await self._http.send(call.request)
        return call.parse(response)

    # -- operations ----------------------------------------------------------------------------------

    async def me(self) -> CallerOut:
        """Who the credentials belong to: client, department and roles."""
        return await self._call(self._api.me())

    async def resource(self, code: str) -> dict[str, Any]:
        """A resource of the catalogue with its elements."""
        return await self._call(self._api.resource(code))

    async def publish(
        self,
        resource: str,
        subject_id: str,
        fields: Mapping[str, Any],
        valid_from: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> PublishResult:
        """Publish one subject's values: canonical where your department is the source, else observed."""
        return await self._call(self._api.publish(resource, subject_id, fields, valid_from, idempotency_key))

    async def publish_batch(
        self,
        resource: str,
        records: Iterable[Record] | AsyncIterable[Record],
        idempotency_key: str | None = None,
        progress: Progress | None = None,
    ) -> BatchResult:
        """Stream publish bodies as NDJSON (any number, read lazily); ``progress(records_sent)``."""
        content = andjson_chunks(records, progress)
        return await self._call(self._api.publish_batch(resource, content, idempotency_key))

    async def publish_file(
        self,
        resource: str,
        path: str | Path,
        mapping: Mapping[str, str] | None = None,
        subject_column: str = "subject_id",
        idempotency_key: str | None = None,
        progress: Progress | None = None,
    ) -> BatchResult:
        """Publish a .csv or .ndjson file (see :class:`~exchange.client.files.FileRecords`).

        CSV cells are converted to their element's type from the catalogue. Errors name the file's lines.
        """
        path = Path(path)
        types = await self._element_types(resource) if FileRecords.kind(path) == "csv" else None
        with FileRecords(path, mapping, subject_column, types) as records:
            result = await self.publish_batch(resource, records, idempotency_key, progress)
            return records.with_file_lines(result)

    async def _element_types(self, resource: str) -> dict[str, str]:
        described = await self.resource(resource)
        return {element["name"]: element["type"] for element in described["elements"]}

    async def query(
        self,
        resource: str,
        subject_ids: Sequence[str],
        fields: Sequence[str],
        purpose: str,
        case: str | None = None,
        officer: str | None = None,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
    ) -> QueryResult:
        """Read elements of subjects for a declared purpose (Forbidden ``unauthorized_field`` if no grant)."""
        return await self._call(
            self._api.query(resource, subject_ids, fields, purpose, case, officer, as_of, known_at)
        )

    async def verify(
        self,
        resource: str,
        subject_id: str,
        fields: Mapping[str, Any],
        purpose: str,
        case: str | None = None,
        officer: str | None = None,
    ) -> VerifyResult:
        """Whether the values you hold match the canonical ones (核验), never the values themselves."""
        return await self._call(self._api.verify(resource, subject_id, fields, purpose, case, officer))

    async def request_sharing(
        self,
        resource: str,
        elements: Sequence[str],
        access: str,
        purpose: str,
        legal_basis: str,
        justification: str,
        valid_until: date | datetime,
        case_reference: str | None = None,
    ) -> SharingRequestOut:
        """Ask the source departments for elements (access read, verify or subscribe) for a purpose."""
        return await self._call(
            self._api.request_sharing(
                resource, elements, access, purpose, legal_basis, justification, valid_until, case_reference
            )
        )

    async def sharing_requests(
        self, role: str = "consumer", status: str | None = None, cursor: str | None = None
    ) -> SharingRequestPage:
        """Requests your department made (consumer) or must decide (provider), newest first."""
        return await self._call(self._api.sharing_requests(role, status, cursor))

    async def decide(
        self,
        request_id: str | uuid.UUID,
        decisions: Mapping[str, Decision],
        valid_until: date | datetime | None = None,
    ) -> SharingRequestOut:
        """Decide on your elements of a request: ``{element: True}`` approves, ``{element: why}`` refuses."""
        return await self._call(self._api.decide(request_id, decisions, valid_until))

    async def grants(self, role: str = "consumer", cursor: str | None = None) -> GrantPage:
        """Grants your department holds (consumer) or has given (provider)."""
        return await self._call(self._api.grants(role, cursor))

    async def report_discrepancy(
        self,
        resource: str,
        subject_id: str,
        element: str,
        value: Any,
        note: str,
        observed_at: datetime | None = None,
    ) -> ReportResult:
        """Report the value your department holds for a canonical value you doubt (校核纠错)."""
        return await self._call(
            self._api.report_discrepancy(resource, subject_id, element, value, note, observed_at)
        )

    async def discrepancies(
        self,
        role: str = "source",
        status: str | None = None,
        resource: str | None = None,
        element: str | None = None,
        cursor: str | None = None,
    ) -> DiscrepancyPage:
        """Discrepancies yours to settle (source) or raised by you (reporter), newest first."""
        return await self._call(self._api.discrepancies(role, status, resource, element, cursor))

    async def resolve_discrepancy(
        self, discrepancy_id: str | uuid.UUID, outcome: str, note: str, value: Any = None
    ) -> DiscrepancyOut:
        """Settle a discrepancy: confirmed or corrected (``value``) by the source, withdrawn by a reporter."""
        return await self._call(self._api.resolve_discrepancy(discrepancy_id, outcome, note, value))

    async def quality(self, resource: str) -> QualityOut:
        """Completeness, consistency, freshness and open discrepancies of a resource."""
        return await self._call(self._api.quality(resource))

    async def subscribe(
        self,
        resource: str,
        elements: Sequence[str],
        purpose: str,
        payload: str = "thin",
        delivery: str | Mapping[str, Any] | None = None,
        filter: Sequence[Mapping[str, Any]] | None = None,
    ) -> SubscriptionOut:
        """Subscribe to changes (needs a subscribe grant); ``delivery``: None to pull, or a webhook URL."""
        return await self._call(self._api.subscribe(resource, elements, purpose, payload, delivery, filter))

    async def events(
        self,
        subscription_id: str | uuid.UUID,
        purpose: str,
        after: str | None = None,
        limit: int = 100,
        wait: float = 0,
    ) -> EventPage:
        """The next events of a pull subscription (from the acknowledged cursor unless ``after``)."""
        return await self._call(self._api.events(subscription_id, purpose, after, limit, wait))

    async def ack(self, subscription_id: str | uuid.UUID, cursor: str) -> SubscriptionOut:
        """Acknowledge the events up to ``cursor`` (a page's ``next_cursor``)."""
        return await self._call(self._api.ack(subscription_id, cursor))

    async def follow(
        self,
        subscription_id: str | uuid.UUID,
        purpose: str,
        *,
        wait: float = 25.0,
        limit: int = 100,
        max_events: int | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield a pull subscription's events as they come (long polls), acknowledging each page once
        all of its events were taken; stop after ``max_events``. A page left unfinished is delivered again.
        """
        feed = Feed(subscription_id, purpose, wait, limit, max_events)
        while (page_call := feed.next_page(self._api)) is not None:
            page = await self._call(page_call)
            for event in page.events:
                yield event
            if (ack := feed.handed_out(self._api, page)) is not None:
                await self._call(ack)

    async def audit_search(self, **filters: Any) -> AuditEventPage:
        """Search the audit log (auditors): since, until, department, client_id, officer, action, resource,
        subject_id, element, purpose, case, outcome, cursor, limit."""
        return await self._call(self._api.audit_search(filters))
