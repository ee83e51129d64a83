"""The sharing workflow across departments: request, decisions by each source, grants enforced on reads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from exchange.access.models import SharingRequest
from exchange.audit.models import AuditEvent
from tests.fixtures_departments import Headers, publish, query, read_headers
from tests.identifiers import valid_ric

pytestmark = pytest.mark.usefixtures("catalog_loaded")
EDUCATION = "11150400MB1504101R"
PURPOSE = "social-assistance-eligibility"


def _request_body(**overrides: Any) -> dict[str, Any]:
    return {
        "resource": "population.person",
        "elements": ["name", "sex", "death_date", "id_card_photo"],
        "access": "read",
        "purpose": PURPOSE,
        "legal_basis": "《社会救助暂行办法》第十一条",
        "valid_until": (datetime.now(UTC) + timedelta(days=90)).isoformat(),
        "justification": "核对低保申请人身份与生存状态",
        "case_reference": "民救-2026-0031",
    } | overrides


def _states(body: dict[str, Any]) -> dict[str, str]:
    return {e["element"]: e["state"] for e in body["elements"]}


@pytest.fixture
async def person(http: httpx.AsyncClient, police: Headers, health: Headers) -> str:
    subject = valid_ric(serial=901)
    await publish(http, police, {"subject_id": subject, "fields": {"name": "乌兰", "sex": "2"}})
    await publish(http, health, {"subject_id": subject, "fields": {"death_date": "2025-12-01"}})
    return subject


async def _read(http: httpx.AsyncClient, headers: Headers, subject: str, fields: list[str]) -> httpx.Response:
    return await query(http, read_headers(headers), [subject], fields)


async def test_the_whole_flow_across_three_departments(
    app: Any, http: httpx.AsyncClient, civil: Headers, police: Headers, health: Headers, person: str
) -> None:
    created = await http.post("/v1/sharing-requests", json=_request_body(), headers=civil)
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["status"] == "pending"
    assert _states(request) == {
        "name": "pending",
        "sex": "granted",
        "death_date": "pending",
        "id_card_photo": "rejected",
    }
    photo = next(e for e in request["elements"] if e["element"] == "id_card_photo")
    assert "不予共享" in photo["reason"]
    assert datetime.fromisoformat(request["due_at"]) > datetime.now(UTC) + timedelta(days=11)
    assert request["overdue"] is False

    # Unconditional elements can be read at once; the rest cannot.
    assert (await _read(http, civil, person, ["sex"])).status_code == 200
    refused = await _read(http, civil, person, ["name", "sex"])
    assert refused.status_code == 403
    assert refused.json()["elements"] == ["name"]

    rid = request["id"]
    approve_name = {"decisions": [{"element": "name", "approve": True}]}
    approved = await http.post(f"/v1/sharing-requests/{rid}/decisions", json=approve_name, headers=police)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "pending"
    reject_death = {
        "decisions": [{"element": "death_date", "approve": False, "reason": "非本部门职责范围内的用途"}]
    }
    rejected = await http.post(f"/v1/sharing-requests/{rid}/decisions", json=reject_death, headers=health)
    assert rejected.json()["status"] == "partially_granted"

    both = await _read(http, civil, person, ["name", "sex"])
    assert both.status_code == 200
    assert both.json()["records"][0]["fields"] == {"name": "乌兰", "sex": "2"}
    assert (await _read(http, civil, person, ["death_date"])).status_code == 403

    final = (await http.get(f"/v1/sharing-requests/{rid}", headers=civil)).json()
    assert _states(final) == {
        "name": "granted",
        "sex": "granted",
        "death_date": "rejected",
        "id_card_photo": "rejected",
    }
    assert (
        next(e for e in final["elements"] if e["element"] == "death_date")["reason"]
        == "非本部门职责范围内的用途"
    )

    grants = (await http.get("/v1/grants", headers=civil)).json()["items"]
    (grant,) = grants
    assert {e["element"] for e in grant["elements"] if e["in_force"]} == {"name", "sex"}
    revoked = await http.post(
        f"/v1/grants/{grant['id']}:revoke", json={"reason": "案件已办结"}, headers=police
    )
    assert revoked.status_code == 200
    assert not any(e["in_force"] for e in revoked.json()["elements"])
    assert (await _read(http, civil, person, ["sex"])).status_code == 403

    async with app.state.sessionmaker() as session:
        actions = list(
            await session.scalars(
                select(AuditEvent.action).where(
                    AuditEvent.action.in_(["sharing.request", "sharing.decision", "grant.revoke"])
                )
            )
        )
    assert sorted(actions) == ["grant.revoke", "sharing.decision", "sharing.decision", "sharing.request"]


async def test_decisions_are_the_sources_own_and_final(
    http: httpx.AsyncClient, civil: Headers, police: Headers, health: Headers
) -> None:
    rid = (await http.post("/v1/sharing-requests", json=_request_body(), headers=civil)).json()["id"]
    path = f"/v1/sharing-requests/{rid}/decisions"
    foreign = await http.post(
        path, json={"decisions": [{"element": "death_date", "approve": True}]}, headers=police
    )
    assert foreign.status_code == 403
    assert foreign.json()["code"] == "not_source_department"
    no_reason = await http.post(
        path, json={"decisions": [{"element": "name", "approve": False}]}, headers=police
    )
    assert no_reason.status_code == 422
    assert no_reason.json()["invalid_params"] == [
        {"name": "decisions.0.reason", "reason": "a refusal must give its reason"}
    ]
    longer = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    extended = await http.post(
        path,
        json={"decisions": [{"element": "name", "approve": True}], "valid_until": longer},
        headers=police,
    )
    assert extended.status_code == 422
    assert (
        await http.post(path, json={"decisions": [{"element": "name", "approve": True}]}, headers=police)
    ).status_code == 200
    again = await http.post(
        path, json={"decisions": [{"element": "name", "approve": False, "reason": "x"}]}, headers=police
    )
    assert again.status_code == 409
    unconditional = await http.post(
        path, json={"decisions": [{"element": "sex", "approve": True}]}, headers=police
    )
    assert unconditional.status_code == 409


async def test_a_shortened_period_expires(
    http: httpx.AsyncClient, civil: Headers, police: Headers, person: str
) -> None:
    rid = (
        await http.post("/v1/sharing-requests", json=_request_body(elements=["name"]), headers=civil)
    ).json()["id"]
    soon = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    decided = await http.post(
        f"/v1/sharing-requests/{rid}/decisions",
        json={"decisions": [{"element": "name", "approve": True}], "valid_until": soon},
        headers=police,
    )
    assert decided.json()["status"] == "granted"
    assert (await _read(http, civil, person, ["name"])).status_code == 200
    await asyncio.sleep(1.6)
    assert (await _read(http, civil, person, ["name"])).status_code == 403


async def test_another_department_cannot_list_read_or_decide_a_request(
    http: httpx.AsyncClient, civil: Headers, police: Headers, as_department: Any
) -> None:
    rid = (await http.post("/v1/sharing-requests", json=_request_body(), headers=civil)).json()["id"]
    education = await as_department(EDUCATION)
    hidden = await http.get(f"/v1/sharing-requests/{rid}", headers=education)
    missing = await http.get("/v1/sharing-requests/00000000-0000-4000-8000-000000000000", headers=education)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"]
    decide = await http.post(
        f"/v1/sharing-requests/{rid}/decisions",
        json={"decisions": [{"element": "name", "approve": True}]},
        headers=education,
    )
    assert decide.status_code == 404
    for role in ("consumer", "provider"):
        listed = (await http.get("/v1/sharing-requests", params={"role": role}, headers=education)).json()[
            "items"
        ]
        assert listed == []
    assert (await http.get("/v1/grants", params={"role": "provider"}, headers=education)).json()[
        "items"
    ] == []

    provider_view = (await http.get(f"/v1/sharing-requests/{rid}", headers=police)).json()
    assert {e["element"] for e in provider_view["elements"]} == {"name", "sex", "id_card_photo"}
    consumer_list = (
        await http.get("/v1/sharing-requests", params={"role": "consumer"}, headers=civil)
    ).json()
    assert [item["id"] for item in consumer_list["items"]] == [rid]
    provider_list = (
        await http.get(
            "/v1/sharing-requests", params={"role": "provider", "status": "pending"}, headers=police
        )
    ).json()
    assert [item["id"] for item in provider_list["items"]] == [rid]


async def test_overdue_requests_are_visible_to_both_sides_and_counted(
    app: Any, http: httpx.AsyncClient, civil: Headers, police: Headers, admin_headers: Headers
) -> None:
    rid = (await http.post("/v1/sharing-requests", json=_request_body(), headers=civil)).json()["id"]
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(SharingRequest)
            .where(SharingRequest.id == rid)
            .values(due_at=datetime.now(UTC) - timedelta(hours=1))
        )
    for headers, role in ((civil, "consumer"), (police, "provider")):
        listed = (
            await http.get("/v1/sharing-requests", params={"role": role, "overdue": "true"}, headers=headers)
        ).json()
        assert [(item["id"], item["overdue"]) for item in listed["items"]] == [(rid, True)]


async def test_bad_requests_are_refused_with_reasons(http: httpx.AsyncClient, civil: Headers) -> None:
    response = await http.post(
        "/v1/sharing-requests",
        json=_request_body(
            purpose="curiosity", elements=["name", "shoe_size"], valid_until="2001-01-01T00:00:00Z"
        ),
        headers=civil,
    )
    assert response.status_code == 422
    names = {p["name"]: p["reason"] for p in response.json()["invalid_params"]}
    assert names == {
        "purpose": "curiosity is not a registered purpose",
        "valid_until": "must be in the future",
        "elements": "population.person has no element shoe_size",
    }
    unknown = await http.post(
        "/v1/sharing-requests", json=_request_body(resource="population.pets"), headers=civil
    )
    assert unknown.json()["invalid_params"][0]["name"] == "resource"


async def test_only_a_source_or_an_admin_revokes(
    http: httpx.AsyncClient, civil: Headers, as_department: Any, make_client: Any, token_for: Any
) -> None:
    from exchange.auth.principal import Role

    await http.post("/v1/sharing-requests", json=_request_body(elements=["sex"]), headers=civil)
    (grant,) = (await http.get("/v1/grants", headers=civil)).json()["items"]
    education = await as_department(EDUCATION)
    assert (
        await http.post(f"/v1/grants/{grant['id']}:revoke", json={"reason": "x"}, headers=education)
    ).status_code == 404
    admin = await token_for(await make_client(Role.admin))
    whole = await http.post(f"/v1/grants/{grant['id']}:revoke", json={"reason": "依法撤销"}, headers=admin)
    assert whole.status_code == 200
    assert whole.json()["revoked_reason"] == "依法撤销"
