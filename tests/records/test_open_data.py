"""Public open data: no token, only elements marked open, rate limited per address, still audited."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from exchange.audit.models import AuditEvent
from tests.fixtures_departments import MARKET, publish
from tests.identifiers import valid_uscc

pytestmark = pytest.mark.usefixtures("catalog_loaded")
OPEN = "/open/v1/resources/legal_entity.entity/records:query"


@pytest.fixture
async def company(http: httpx.AsyncClient, as_department: Any) -> str:
    code = valid_uscc(prefix="91150402")
    market = await as_department(MARKET)
    fields = {"name": "赤峰草原乳业有限公司", "status": "1", "legal_representative": "王某"}
    response = await publish(
        http, market, {"subject_id": code, "fields": fields}, path="/v1/resources/legal_entity.entity"
    )
    assert response.status_code == 200, response.text
    return code


async def test_open_elements_are_served_without_a_token(
    app: Any, http: httpx.AsyncClient, company: str
) -> None:
    response = await http.post(OPEN, json={"subject_ids": [company], "fields": ["name", "status"]})
    assert response.status_code == 200, response.text
    assert response.json()["records"][0]["fields"] == {"name": "赤峰草原乳业有限公司", "status": "1"}
    async with app.state.sessionmaker() as session:
        event = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "records.open_query"))
        ).one()
    assert event.subject_ids == [company]
    assert event.client_id is None
    assert event.details["address"] == "127.0.0.1"


async def test_closed_elements_are_refused(http: httpx.AsyncClient, company: str) -> None:
    response = await http.post(
        OPEN, json={"subject_ids": [company], "fields": ["name", "legal_representative"]}
    )
    assert response.status_code == 403
    assert response.json()["elements"] == ["legal_representative"]
    assert "王某" not in response.text


async def test_the_rate_limit_is_per_address(app: Any, http: httpx.AsyncClient, company: str) -> None:
    app.state.settings.open_data_rate_per_minute = 3
    statuses = [
        (await http.post(OPEN, json={"subject_ids": [company], "fields": ["name"]})).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    limited = await http.post(OPEN, json={"subject_ids": [company], "fields": ["name"]})
    assert limited.json()["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) <= 60
