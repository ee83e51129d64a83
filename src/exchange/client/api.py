"""The hub's routes as ready-made requests and parsers of their answers, shared by both clients.

Nothing here does I/O: :class:`Api` builds an ``httpx.Request`` for each operation and pairs it with the
function that reads the answer (or raises the problem as an exception). :class:`ExchangeClient` and
:class:`AsyncExchangeClient` add the access token and send it, each in its own way.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlencode

import httpx
from pydantic import BaseModel
from pydantic_core import to_json

from exchange import __version__
from exchange.client.auth import JWT_BEARER_ASSERTION, ClientSecret, Credentials
from exchange.client.errors import raise_for_problem
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
    TokenResponse,
    VerifyResult,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# The hub's jurisdiction keeps China Standard Time: a date given alone means the end of that day there.
CHINA_STANDARD_TIME = timezone(timedelta(hours=8))
# Header values are visible ASCII; anything else (spaces, which HTTP may trim, and "%" itself included)
# travels percent-encoded as UTF-8.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")
# Seconds a long poll may take beyond the wait it asked for.
POLL_GRACE_SECONDS = 15.0
# A refusal's reason in ``decide``: a string; approval: True.
Decision = bool | str


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request to the hub and how to read its answer."""

    request: httpx.Request
    parse: Callable[[httpx.Response], T]
    authorized: bool = True  # carries the access token (every route but the token endpoint)
    replayable: bool = True  # the body can be sent again (not a stream), e.g. after renewing the token


def header_value(text: str) -> str:
    """A header value for the hub, which percent-decodes it: non-ASCII as UTF-8 %XX, and "%" as %25."""
    return quote(text, safe=_HEADER_SAFE)


def use_headers(purpose: str | None, case: str | None = None, officer: str | None = None) -> dict[str, str]:
    """The declared use of a request (谁使用、谁负责): purpose, case and the officer acted for."""
    values = {"Exchange-Purpose": purpose, "Exchange-Case": case, "Exchange-On-Behalf-Of": officer}
    return {name: header_value(value) for name, value in values.items() if value is not None}


def until(moment: date | datetime) -> datetime:
    """A period's end: a datetime as given, a date as the end of that day in China Standard Time."""
    if isinstance(moment, datetime):
        return moment
    return datetime.combine(moment, time(23, 59, 59), tzinfo=CHINA_STANDARD_TIME)


def decisions_body(decisions: Mapping[str, Decision]) -> list[dict[str, Any]]:
    """``{element: True}`` approves, ``{element: "reason"}`` refuses with that reason."""
    return [
        {"element": element, "approve": choice is True}
        | ({"reason": choice} if isinstance(choice, str) else {})
        for element, choice in decisions.items()
    ]


def expect(model: type[M]) -> Callable[[httpx.Response], M]:
    def parse(response: httpx.Response) -> M:
        raise_for_problem(response)
        return model.model_validate_json(response.content)

    return parse


def _object(response: httpx.Response) -> dict[str, Any]:
    raise_for_problem(response)
    body = response.json()
    if not isinstance(body, dict):
        raise ValueError(f"the hub answered {response.request.url.path} with {type(body).__name__}")
    return body


def _segment(value: str | uuid.UUID) -> str:
    return quote(str(value), safe="")


def _query(params: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in params.items() if value is not None}


class Api:
    """Builders of the hub's requests under one base URL, each with the parser of its answer."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    @property
    def token_endpoint(self) -> str:
        """The token endpoint's URL: the audience of client assertions."""
        return f"{self.base_url}/oauth/token"

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: Iterable[bytes] | AsyncIterable[bytes] | bytes | None = None,
        content_type: str = "application/json",
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Request:
        merged = {"Accept": "application/json", "User-Agent": f"exchange-client/{__version__}"}
        if body is not None:
            content = to_json(body)
        if content is not None:
            merged["Content-Type"] = content_type
        merged.update(headers or {})
        return httpx.Request(
            method,
            self.base_url + path,
            params=_query(params or {}),
            headers=merged,
            content=content,
            extensions={"timeout": (timeout or httpx.Timeout(self.timeout)).as_dict()},
        )

    # -- authentication ------------------------------------------------------------------------------

    def token(self, credentials: Credentials, now: float) -> Call[TokenResponse]:
        """POST /oauth/token: client credentials, by HTTP Basic or a client assertion (private_key_jwt)."""
        form = {"grant_type": "client_credentials"}
        headers = {}
        if isinstance(credentials, ClientSecret):
            # RFC 6749 section 2.3.1: both parts are form-urlencoded before base64.
            pair = f"{quote(credentials.client_id, safe='')}:{quote(credentials.secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form |= {
                "client_id": credentials.client_id,
                "client_assertion_type": JWT_BEARER_ASSERTION,
                "client_assertion": credentials.assertion(self.token_endpoint, now),
            }
        request = self._request(
            "POST",
            "/oauth/token",
            content=urlencode(form).encode(),
            content_type="application/x-www-form-urlencoded",
            headers=headers,
        )
        return Call(request, expect(TokenResponse), authorized=False)

    def me(self) -> Call[CallerOut]:
        return Call(self._request("GET", "/v1/me"), expect(CallerOut))

    def resource(self, code: str) -> Call[dict[str, Any]]:
        return Call(self._request("GET", f"/v1/catalog/resources/{_segment(code)}"), _object)

    # -- records -------------------------------------------------------------------------------------

    def publish(
        self,
        resource: str,
        subject_id: str,
        fields: Mapping[str, Any],
        valid_from: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> Call[PublishResult]:
        body: dict[str, Any] = {"subject_id": subject_id, "fields": dict(fields)}
        if valid_from is not None:
            body["valid_from"] = valid_from
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        path = f"/v1/resources/{_segment(resource)}/records"
        return Call(self._request("POST", path, body=body, headers=headers), expect(PublishResult))

    def publish_batch(
        self,
        resource: str,
        content: Iterable[bytes] | AsyncIterable[bytes],
        idempotency_key: str | None = None,
    ) -> Call[BatchResult]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        request = self._request(
            "POST",
            f"/v1/resources/{_segment(resource)}/records:batch",
            content=content,
            content_type="application/x-ndjson",
            headers=headers,
            # The hub answers once the whole stream is applied: no read timeout for that.
            timeout=httpx.Timeout(self.timeout, read=None),
        )
        return Call(request, expect(BatchResult), replayable=False)

    def query(
        self,
        resource: str,
        subject_ids: Sequence[str],
        fields: Sequence[str],
        purpose: str,
        case: str | None = None,
        officer: str | None = None,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
    ) -> Call[QueryResult]:
        body: dict[str, Any] = {"subject_ids": list(subject_ids), "fields": list(fields)}
        body |= {name: at for name, at in (("as_of", as_of), ("known_at", known_at)) if at is not None}
        request = self._request(
            "POST",
            f"/v1/resources/{_segment(resource)}/records:query",
            body=body,
            headers=use_headers(purpose, case, officer),
        )
        return Call(request, expect(QueryResult))

    def verify(
        self,
        resource: str,
        subject_id: str,
        fields: Mapping[str, Any],
        purpose: str,
        case: str | None = None,
        officer: str | None = None,
    ) -> Call[VerifyResult]:
        request = self._request(
            "POST",
            f"/v1/resources/{_segment(resource)}/records:verify",
            body={"subject_id": subject_id, "fields": dict(fields)},
            headers=use_headers(purpose, case, officer),
        )
        return Call(request, expect(VerifyResult))

    # -- sharing -------------------------------------------------------------------------------------

    def request_sharing(
        self,
        resource: str,
        elements: Sequence[str],
        access: str,
        purpose: str,
        legal_basis: str,
        justification: str,
        valid_until: date | datetime,
        case_reference: str | None = None,
    ) -> Call[SharingRequestOut]:
        body = {
            "resource": resource,
            "elements": list(elements),
            "access": access,
            "purpose": purpose,
            "legal_basis": legal_basis,
            "justification": justification,
            "valid_until": until(valid_until),
        }
        if case_reference is not None:
            body["case_reference"] = case_reference
        return Call(self._request("POST", "/v1/sharing-requests", body=body), expect(SharingRequestOut))

    def sharing_requests(
        self, role: str, status: str | None = None, cursor: str | None = None
    ) -> Call[SharingRequestPage]:
        params = {"role": role, "status": status, "cursor": cursor}
        return Call(self._request("GET", "/v1/sharing-requests", params=params), expect(SharingRequestPage))

    def decide(
        self,
        request_id: str | uuid.UUID,
        decisions: Mapping[str, Decision],
        valid_until: date | datetime | None = None,
    ) -> Call[SharingRequestOut]:
        body: dict[str, Any] = {"decisions": decisions_body(decisions)}
        if valid_until is not None:
            body["valid_until"] = until(valid_until)
        path = f"/v1/sharing-requests/{_segment(request_id)}/decisions"
        return Call(self._request("POST", path, body=body), expect(SharingRequestOut))

    def grants(self, role: str, cursor: str | None = None) -> Call[GrantPage]:
        params = {"role": role, "cursor": cursor}
        return Call(self._request("GET", "/v1/grants", params=params), expect(GrantPage))

    # -- cross-checking ------------------------------------------------------------------------------

    def report_discrepancy(
        self,
        resource: str,
        subject_id: str,
        element: str,
        value: Any,
        note: str,
        observed_at: datetime | None = None,
    ) -> Call[ReportResult]:
        body = {"resource": resource, "subject_id": subject_id, "element": element, "value": value}
        body |= {"note": note} | ({"observed_at": observed_at} if observed_at is not None else {})
        return Call(self._request("POST", "/v1/discrepancies", body=body), expect(ReportResult))

    def discrepancies(
        self,
        role: str,
        status: str | None = None,
        resource: str | None = None,
        element: str | None = None,
        cursor: str | None = None,
    ) -> Call[DiscrepancyPage]:
        params = {"role": role, "status": status, "resource": resource, "element": element, "cursor": cursor}
        return Call(self._request("GET", "/v1/discrepancies", params=params), expect(DiscrepancyPage))

    def resolve_discrepancy(
        self, discrepancy_id: str | uuid.UUID, outcome: str, note: str, value: Any = None
    ) -> Call[DiscrepancyOut]:
        body = {"outcome": outcome, "note": note} | ({"value": value} if value is not None else {})
        path = f"/v1/discrepancies/{_segment(discrepancy_id)}:resolve"
        return Call(self._request("POST", path, body=body), expect(DiscrepancyOut))

    def quality(self, resource: str) -> Call[QualityOut]:
        return Call(self._request("GET", f"/v1/quality/resources/{_segment(resource)}"), expect(QualityOut))

    # -- subscriptions -------------------------------------------------------------------------------

    def subscribe(
        self,
        resource: str,
        elements: Sequence[str],
        purpose: str,
        payload: str = "thin",
        delivery: str | Mapping[str, Any] | None = None,
        filter: Sequence[Mapping[str, Any]] | None = None,
    ) -> Call[SubscriptionOut]:
        """``delivery``: None to pull, a URL for webhooks, or the hub's ``{mode, url}`` object."""
        if delivery is None:
            delivery = {"mode": "pull"}
        elif isinstance(delivery, str):
            delivery = {"mode": "webhook", "url": delivery}
        body = {
            "resource": resource,
            "elements": list(elements),
            "purpose": purpose,
            "payload": payload,
            "delivery": dict(delivery),
            "filter": [dict(condition) for condition in filter or []],
        }
        return Call(self._request("POST", "/v1/subscriptions", body=body), expect(SubscriptionOut))

    def events(
        self,
        subscription_id: str | uuid.UUID,
        purpose: str,
        after: str | None = None,
        limit: int = 100,
        wait: float = 0,
    ) -> Call[EventPage]:
        request = self._request(
            "GET",
            f"/v1/subscriptions/{_segment(subscription_id)}/events",
            params={"after": after, "limit": limit, "wait": wait or None},
            headers=use_headers(purpose),
            timeout=httpx.Timeout(self.timeout, read=self.timeout + wait + POLL_GRACE_SECONDS),
        )
        return Call(request, expect(EventPage))

    def ack(self, subscription_id: str | uuid.UUID, cursor: str) -> Call[SubscriptionOut]:
        path = f"/v1/subscriptions/{_segment(subscription_id)}/ack"
        return Call(self._request("POST", path, body={"cursor": cursor}), expect(SubscriptionOut))

    # -- audit ---------------------------------------------------------------------------------------

    def audit_search(self, filters: Mapping[str, Any]) -> Call[AuditEventPage]:
        """POST /v1/audit/events:search; ``filters`` named as the hub names them (since, action, ...)."""
        body = {name: value for name, value in filters.items() if value is not None}
        return Call(self._request("POST", "/v1/audit/events:search", body=body), expect(AuditEventPage))


@dataclass(slots=True)
class Feed:
    """Where a follower of a pull subscription stands: the next page to ask for, and what to acknowledge."""

    subscription_id: str | uuid.UUID
    purpose: str
    wait: float
    limit: int
    max_events: int | None = None
    after: str | None = None  # None: from the acknowledged cursor
    delivered: int = 0

    def next_page(self, api: Api) -> Call[EventPage] | None:
        """The next long poll, never for more events than are still wanted; None when enough came."""
        remaining = None if self.max_events is None else self.max_events - self.delivered
        if remaining is not None and remaining <= 0:
            return None
        limit = self.limit if remaining is None else min(self.limit, remaining)
        return api.events(self.subscription_id, self.purpose, self.after, limit, self.wait)

    def handed_out(self, api: Api, page: EventPage) -> Call[SubscriptionOut] | None:
        """After a page's events were handed out: the acknowledgement to send, if it carried any."""
        self.after = page.next_cursor
        self.delivered += len(page.events)
        return api.ack(self.subscription_id, page.next_cursor) if page.events else None
