"""Consumers ask for data in the console, the source department's approver decides element by element, and
grants can be revoked: all through the sharing service, all audited with the officer's name."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from exchange.access.models import Grant, SharingRequest
from exchange.db.session import transaction
from tests.console.conftest import MakeOfficer, Officer
from tests.console.events import logged
from tests.fixtures_departments import ASSISTANCE, CIVIL_AFFAIRS, MARKET, POLICE

ELEMENTS = ["name", "birth_date", "household_address"]


async def _ask(zhao: Officer) -> str:
    answer = await zhao.post(
        "/console/sharing/new",
        {
            "resource": "population.person",
            "elements": ELEMENTS,
            "access": "read",
            "purpose": ASSISTANCE,
            "legal_basis": "《社会救助暂行办法》第十一条",
            "justification": "低保资格审核",
            "valid_until": (date.today() + timedelta(days=180)).isoformat(),
        },
    )
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/console/sharing/([0-9a-f-]{36})", answer.headers["location"])
    assert found
    return found.group(1)


async def _status(app: Any, request_id: str) -> str:
    async with transaction(app.state.sessionmaker) as session:
        return str(await session.scalar(select(SharingRequest.status).where(SharingRequest.id == request_id)))


async def test_an_approver_decides_each_element_and_a_refusal_needs_its_reason(
    app: Any, officer: MakeOfficer
) -> None:
    zhao = await officer("zhao.min", CIVIL_AFFAIRS, "consumer")
    zhang = await officer("zhang.wei", POLICE, "approver")
    request_id = await _ask(zhao)

    inbox = await zhang.get("/console/sharing", params={"box": "inbox", "status": "pending"})
    assert f"/console/sharing/{request_id}" in inbox.text
    page = await zhang.get(f"/console/sharing/{request_id}")
    assert 'data-testid="approve-name"' in page.text

    decisions = {
        "element": ELEMENTS,
        "decision.name": "approve",
        "decision.birth_date": "approve",
        "decision.household_address": "reject",
    }
    unexplained = await zhang.post(f"/console/sharing/{request_id}/decisions", decisions)
    assert unexplained.status_code == 422
    assert "a refusal must give its reason" in unexplained.text
    assert await _status(app, request_id) == "pending"

    decided = await zhang.post(
        f"/console/sharing/{request_id}/decisions",
        decisions | {"reason.household_address": "住址不属于低保审核必需信息项"},
    )
    assert decided.status_code == 303
    assert await _status(app, request_id) == "partially_granted"
    [event] = await logged(app, "sharing.decision")
    assert (event.officer, event.client_id, event.department) == ("zhang.wei", "console", POLICE)

    outbox = await zhao.get("/console/sharing", params={"box": "outbox"})
    assert "部分同意" in outbox.text


async def test_an_approver_of_another_department_cannot_decide(app: Any, officer: MakeOfficer) -> None:
    zhao = await officer("zhao.min", CIVIL_AFFAIRS, "consumer")
    other = await officer("sun.market", MARKET, "approver")
    request_id = await _ask(zhao)
    page = await other.get(f"/console/sharing/{request_id}")
    assert page.status_code == 404
    answer = await other.post(
        f"/console/sharing/{request_id}/decisions", {"element": ["name"], "decision.name": "approve"}
    )
    assert answer.status_code in {403, 404}
    assert await _status(app, request_id) == "pending"


async def test_a_grant_is_revoked_from_the_grants_page(app: Any, officer: MakeOfficer) -> None:
    zhao = await officer("zhao.min", CIVIL_AFFAIRS, "consumer")
    zhang = await officer("zhang.wei", POLICE, "approver")
    request_id = await _ask(zhao)
    decisions = {"element": ELEMENTS, **{f"decision.{e}": "approve" for e in ELEMENTS}}
    assert (await zhang.post(f"/console/sharing/{request_id}/decisions", decisions)).status_code == 303
    async with transaction(app.state.sessionmaker) as session:
        grant_id = await session.scalar(select(Grant.id))
    given = await zhang.get("/console/grants", params={"role": "provider"})
    assert f"/console/grants/{grant_id}/revoke" in given.text

    unexplained = await zhang.post(f"/console/grants/{grant_id}/revoke", {"reason": ""})
    assert unexplained.status_code == 422
    revoked = await zhang.post(f"/console/grants/{grant_id}/revoke", {"reason": "审核已完成"})
    assert revoked.status_code == 303
    held = await zhao.get("/console/grants", params={"role": "consumer"})
    assert "审核已完成" in held.text
    [event] = await logged(app, "grant.revoke")
    assert event.officer == "zhang.wei"
