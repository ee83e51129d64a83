"""Records tests run on the repository catalogue, with some of its departments as publishers and readers."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from exchange.access.models import Grant
from exchange.access.repository import grant_elements, grant_in_force
from exchange.auth.principal import Role
from exchange.catalog.models import Element
from exchange.db.session import transaction
from tests.conftest import MakeClient, TokenFor

POLICE = "11150400MB1234567Q"  # 公安局: source of identity elements of population.person
CIVIL_AFFAIRS = "11150400MB15040128"  # 民政局: source of marital_status
HEALTH = "11150400MB1504023C"  # 卫生健康委员会: source of death_date
MARKET = "11150400MB1504045L"  # 市场监督管理局: source of most legal_entity elements
NATURAL_RESOURCES = "11150400MB1504067W"  # 自然资源局: source of address locations

PERSON = "/v1/resources/population.person"
ASSISTANCE = "social-assistance-eligibility"

Headers = dict[str, str]
MakeGrant = Callable[..., Awaitable[uuid.UUID]]


@pytest.fixture
async def as_department(
    catalog_loaded: None, make_client: MakeClient, token_for: TokenFor
) -> Callable[[str], Awaitable[Headers]]:
    """Token headers for a system of the given department, with publisher and consumer roles."""

    async def headers(department: str) -> Headers:
        return await token_for(await make_client(Role.publisher, Role.consumer, department=department))

    return headers


@pytest.fixture
async def police(as_department: Callable[[str], Awaitable[Headers]]) -> Headers:
    return await as_department(POLICE)


@pytest.fixture
async def civil(as_department: Callable[[str], Awaitable[Headers]]) -> Headers:
    return await as_department(CIVIL_AFFAIRS)


@pytest.fixture
async def health(as_department: Callable[[str], Awaitable[Headers]]) -> Headers:
    return await as_department(HEALTH)


@pytest.fixture
def make_grant(app: Any) -> MakeGrant:
    """A grant written with the access repository, skipping the request-and-decision workflow."""

    async def make(
        consumer: str,
        elements: list[str],
        *,
        resource: str = "population.person",
        purpose: str = ASSISTANCE,
        access: str = "read",
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        revoked: bool = False,
    ) -> uuid.UUID:
        now = datetime.now(UTC)
        async with transaction(app.state.sessionmaker) as session:
            rows = await session.execute(
                select(Element.name, Element.source_department).where(Element.resource_code == resource)
            )
            sources = {row.name: row.source_department for row in rows}
            grant_id = await grant_in_force(session, consumer, resource, purpose, access)
            await grant_elements(
                session,
                grant_id,
                [(element, sources[element]) for element in elements],
                valid_from=valid_from or now - timedelta(days=1),
                valid_until=valid_until or now + timedelta(days=30),
                request_id=uuid.uuid4(),
            )
            if revoked:
                await session.execute(update(Grant).where(Grant.id == grant_id).values(revoked_at=now))
        return grant_id

    return make


def read_headers(headers: Headers, purpose: str = ASSISTANCE, **extra: str) -> Headers:
    return headers | {"Exchange-Purpose": purpose} | extra


async def publish(
    http: httpx.AsyncClient, headers: Headers, body: dict[str, Any], path: str = PERSON
) -> httpx.Response:
    return await http.post(f"{path}/records", json=body, headers=headers)


async def query(
    http: httpx.AsyncClient,
    headers: Headers,
    subject_ids: list[str],
    fields: list[str],
    path: str = PERSON,
    **extra: Any,
) -> httpx.Response:
    return await http.post(
        f"{path}/records:query", json={"subject_ids": subject_ids, "fields": fields} | extra, headers=headers
    )
