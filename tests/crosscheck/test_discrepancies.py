"""多元校核: reports by other departments, discrepancies the source settles, and reads that flag them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from exchange.audit.models import AuditEvent
from exchange.auth.principal import Role
from exchange.crosscheck.models import Discrepancy
from exchange.db.session import transaction
from tests.conftest import MakeClient, TokenFor
from tests.fixtures_departments import (
    CIVIL_AFFAIRS,
    HEALTH,
    POLICE,
    Headers,
    MakeGrant,
    publish,
    query,
    read_headers,
)
from tests.identifiers import valid_ric

pytestmark = pytest.mark.usefixtures("catalog_loaded")


async def _report(
    http: httpx.AsyncClient, headers: Headers, subject: str, value: Any, element: str = "name", **extra: Any
) -> httpx.Response:
    body = {
        "resource": "population.person",
        "subject_id": subject,
        "element": element,
        "value": value,
        "note": "户籍核查",
    }
    return await http.post("/v1/discrepancies", json=body | extra, headers=headers)


async def _listed(http: httpx.AsyncClient, headers: Headers, **params: Any) -> list[dict[str, Any]]:
    response = await http.get("/v1/discrepancies", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def _resolve(
    http: httpx.AsyncClient, headers: Headers, discrepancy: str, outcome: str, **extra: Any
) -> httpx.Response:
    return await http.post(
        f"/v1/discrepancies/{discrepancy}:resolve",
        json={"outcome": outcome, "note": "核对户籍原始档案"} | extra,
        headers=headers,
    )


async def _named(http: httpx.AsyncClient, police: Headers, serial: int, name: str = "张三") -> str:
    subject = valid_ric(serial=serial)
    response = await publish(http, police, {"subject_id": subject, "fields": {"name": name, "sex": "1"}})
    assert response.status_code == 200, response.text
    return subject


async def test_a_disagreeing_observation_opens_a_discrepancy_the_source_sees_and_reads_flag(
    http: httpx.AsyncClient, police: Headers, civil: Headers, health: Headers, make_grant: MakeGrant
) -> None:
    subject = await _named(http, police, 501)
    observed = await publish(http, civil, {"subject_id": subject, "fields": {"name": "张山"}})
    assert observed.status_code == 200, observed.text
    assert observed.json()["observed"] == ["name"]
    (discrepancy_id,) = observed.json()["discrepancies"]

    (item,) = await _listed(http, police, role="source")
    assert item["id"] == discrepancy_id
    assert (item["status"], item["element"], item["subject_id"]) == ("open", "name", subject)
    assert (item["canonical_value"], item["canonical_version"], item["source_department"]) == (
        "张三",
        1,
        POLICE,
    )
    assert [(r["department"], r["value"], r["times"]) for r in item["reporters"]] == [
        (CIVIL_AFFAIRS, "张山", 1)
    ]
    assert item["overdue"] is False
    assert item["due_at"] > item["opened_at"]

    (raised,) = await _listed(http, civil, role="reporter")
    assert raised["canonical_value"] is None, "a reporter never learns the canonical value from its report"
    assert raised["reporters"][0]["value"] == "张山"
    assert await _listed(http, health, role="source") == []
    assert (await http.get(f"/v1/discrepancies/{discrepancy_id}", headers=health)).status_code == 404

    await make_grant(HEALTH, ["name", "sex"])
    read = await query(http, read_headers(health), [subject], ["name", "sex"])
    assert read.json()["records"][0]["under_review"] == ["name"]
    assert read.json()["records"][0]["fields"]["name"] == "张三", "the canonical value is still served"
    await make_grant(HEALTH, ["name"], access="verify")
    verified = await http.post(
        "/v1/resources/population.person/records:verify",
        json={"subject_id": subject, "fields": {"name": "张三"}},
        headers=read_headers(health),
    )
    assert verified.json()["under_review"] == ["name"]


async def test_agreeing_reports_are_counted_as_corroboration(
    http: httpx.AsyncClient, police: Headers, civil: Headers, health: Headers
) -> None:
    subject = await _named(http, police, 502, name="Zhang San")
    agreeing = await publish(http, civil, {"subject_id": subject, "fields": {"name": "ＺＨＡＮＧ  san"}})
    assert agreeing.json()["discrepancies"] == []
    first = await _report(http, health, subject, " zhang san ")
    assert first.status_code == 200, first.text
    assert first.json() == {"outcome": "agrees", "corroborations": 2, "discrepancy": None}
    again = await _report(http, health, subject, "Zhang San")
    assert again.json()["corroborations"] == 2, "one department corroborates a value once"
    changed_mind = await _report(http, health, subject, "Zhang Shan")
    assert changed_mind.json()["corroborations"] == 1, (
        "a department that now disagrees no longer corroborates"
    )
    await _report(http, health, subject, "zhang san")
    quality = await http.get("/v1/quality/resources/population.person", headers=police)
    name = next(e for e in quality.json()["elements"] if e["element"] == "name")
    assert (name["agreeing"], name["disagreeing"], name["consistency"]) == (2, 0, 1.0)


async def test_the_source_confirms_its_value_and_later_reports_of_it_stay_settled(
    http: httpx.AsyncClient, police: Headers, civil: Headers, make_grant: MakeGrant
) -> None:
    subject = await _named(http, police, 503)
    opened = await _report(http, civil, subject, "张山")
    assert opened.status_code == 201, opened.text
    assert opened.json()["outcome"] == "disagrees"
    discrepancy = opened.json()["discrepancy"]["id"]

    by_reporter = await _resolve(http, civil, discrepancy, "confirmed")
    assert by_reporter.status_code == 403
    assert by_reporter.json()["code"] == "not_source_department"
    confirmed = await _resolve(http, police, discrepancy, "confirmed")
    assert confirmed.status_code == 200, confirmed.text
    assert (confirmed.json()["status"], confirmed.json()["resolution_note"]) == (
        "confirmed",
        "核对户籍原始档案",
    )
    twice = await _resolve(http, police, discrepancy, "confirmed")
    assert (twice.status_code, twice.json()["code"]) == (409, "discrepancy_settled")

    repeated = await publish(http, civil, {"subject_id": subject, "fields": {"name": "张山"}})
    assert repeated.json()["discrepancies"] == [discrepancy]
    settled = (await http.get(f"/v1/discrepancies/{discrepancy}", headers=police)).json()
    assert settled["status"] == "confirmed"
    assert settled["reporters"][0]["times"] == 2
    await make_grant(CIVIL_AFFAIRS, ["name"])
    read = await query(http, read_headers(civil), [subject], ["name"])
    assert read.json()["records"][0]["under_review"] == []


async def test_a_matching_new_value_from_the_source_closes_it_as_corrected(
    http: httpx.AsyncClient, police: Headers, civil: Headers, health: Headers
) -> None:
    subject = await _named(http, police, 504)
    discrepancy = (await _report(http, civil, subject, "张山")).json()["discrepancy"]["id"]
    await _report(http, health, subject, "張三丰")

    other = await publish(http, police, {"subject_id": subject, "fields": {"name": "张珊"}})
    assert other.json()["version"] == 2
    moved = (await http.get(f"/v1/discrepancies/{discrepancy}", headers=police)).json()
    assert moved["status"] == "open", "a new value that matches no report still stands against them"
    assert (moved["canonical_version"], moved["canonical_value"]) == (2, "张珊")

    fixed = await publish(http, police, {"subject_id": subject, "fields": {"name": "张山"}})
    assert fixed.json()["version"] == 3
    closed = (await http.get(f"/v1/discrepancies/{discrepancy}", headers=police)).json()
    assert (closed["status"], closed["corrected_version"], closed["resolved_by"]) == ("corrected", 3, "hub")
    assert CIVIL_AFFAIRS in closed["resolution_note"]
    assert (await _report(http, civil, subject, "张山")).json()["corroborations"] == 1


async def test_the_source_corrects_through_the_discrepancy(
    app: Any, http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    subject = await _named(http, police, 505)
    discrepancy = (await _report(http, civil, subject, "张山")).json()["discrepancy"]["id"]
    no_value = await _resolve(http, police, discrepancy, "corrected")
    assert no_value.status_code == 422
    assert no_value.json()["invalid_params"][0]["name"] == "value"
    same = await _resolve(http, police, discrepancy, "corrected", value="张三")
    assert (same.status_code, same.json()["code"]) == (409, "not_a_correction")
    bad = await _resolve(http, police, discrepancy, "corrected", value=12)
    assert bad.status_code == 422
    async with app.state.sessionmaker() as session:
        assert (await session.get(Discrepancy, discrepancy)).status == "open"  # type: ignore[union-attr]

    corrected = await _resolve(http, police, discrepancy, "corrected", value="张叁")
    assert corrected.status_code == 200, corrected.text
    body = corrected.json()
    assert (body["status"], body["corrected_version"], body["resolution_note"]) == (
        "corrected",
        2,
        "核对户籍原始档案",
    )
    assert body["canonical_value"] == "张三", "the discrepancy keeps the value it doubted"


async def test_reporters_withdraw_and_the_last_withdrawal_closes_it(
    http: httpx.AsyncClient, police: Headers, civil: Headers, health: Headers
) -> None:
    subject = await _named(http, police, 506)
    discrepancy = (await _report(http, civil, subject, "张山")).json()["discrepancy"]["id"]
    joined = await _report(http, health, subject, "张杉")
    assert joined.json()["discrepancy"]["id"] == discrepancy
    as_source = (await http.get(f"/v1/discrepancies/{discrepancy}", headers=police)).json()
    assert {r["department"]: r["value"] for r in as_source["reporters"]} == {
        CIVIL_AFFAIRS: "张山",
        HEALTH: "张杉",
    }
    assert [r["department"] for r in joined.json()["discrepancy"]["reporters"]] == [HEALTH]
    assert joined.json()["discrepancy"]["reporter_count"] == 2

    not_reporter = await _resolve(http, police, discrepancy, "withdrawn")
    assert (not_reporter.status_code, not_reporter.json()["code"]) == (403, "not_reporter")
    first = await _resolve(http, civil, discrepancy, "withdrawn", note="系统录入错误")
    assert (first.json()["status"], first.json()["reporter_count"]) == ("open", 1)
    last = await _resolve(http, health, discrepancy, "withdrawn", note="已核实")
    assert (last.json()["status"], last.json()["resolution_note"]) == ("withdrawn", "已核实")

    reopened = await _report(http, civil, subject, "张山")
    assert reopened.json()["discrepancy"]["id"] == discrepancy
    assert reopened.json()["discrepancy"]["status"] == "open"


async def test_a_reporter_that_comes_to_agree_withdraws_by_reporting_the_canonical_value(
    http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    subject = await _named(http, police, 507)
    discrepancy = (await _report(http, civil, subject, "张山")).json()["discrepancy"]["id"]
    await publish(http, civil, {"subject_id": subject, "fields": {"name": "张三"}})
    closed = (await http.get(f"/v1/discrepancies/{discrepancy}", headers=police)).json()
    assert (closed["status"], closed["resolved_by"]) == ("withdrawn", "hub")


async def test_reports_that_cannot_be_compared_open_nothing(
    app: Any, http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    subject = await _named(http, police, 508)
    older = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    stale = await _report(http, civil, subject, "张山", observed_at=older)
    assert stale.json() == {"outcome": "stale", "corroborations": 0, "discrepancy": None}
    unknown = await _report(http, civil, valid_ric(serial=509), "李四")
    assert unknown.json()["outcome"] == "no_canonical"
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Discrepancy)) == 0


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        ({"element": "sex", "value": "2"}, 422, "element"),  # 公安 is the source of sex: it publishes instead
        ({"element": "nickname"}, 422, "element"),
        ({"value": None}, 422, "value"),
        ({"element": "marital_status", "value": "99"}, 422, "value"),
        ({"subject_id": "110105194912310021"}, 422, "subject_id"),
        ({"observed_at": "2999-01-01T00:00:00+08:00"}, 422, "observed_at"),
        ({"resource": "population.nobody"}, 404, None),
        ({"note": ""}, 422, "note"),
    ],
)
async def test_bad_reports_are_refused_and_change_nothing(
    app: Any,
    http: httpx.AsyncClient,
    police: Headers,
    change: dict[str, Any],
    status: int,
    param: str | None,
) -> None:
    body = {
        "resource": "population.person",
        "subject_id": valid_ric(serial=510),
        "element": "marital_status",
        "value": "20",
        "note": "入户核查",
    } | change
    response = await http.post("/v1/discrepancies", json=body, headers=police)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if param is not None:
        assert param in [p["name"] for p in response.json()["invalid_params"]]
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Discrepancy)) == 0


async def test_a_batch_of_observations_is_cross_checked_line_by_line(
    http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    known = [await _named(http, police, serial, name) for serial, name in ((511, "王五"), (512, "赵六"))]
    lines = [
        {"subject_id": known[0], "fields": {"name": "王五"}},
        {"subject_id": known[1], "fields": {"name": "赵陆"}},
        {"subject_id": valid_ric(serial=513), "fields": {"name": "钱七"}},
    ]
    body = "\n".join(httpx.Response(200, json=line).text for line in lines)
    response = await http.post(
        "/v1/resources/population.person/records:batch",
        content=body.encode(),
        headers=civil | {"Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    assert (response.json()["observations"], response.json()["discrepancies"]) == (3, 1)
    (item,) = await _listed(http, police)
    assert (item["subject_id"], item["reporters"][0]["value"]) == (known[1], "赵陆")


async def test_lists_filter_page_and_show_overdue(
    app: Any,
    http: httpx.AsyncClient,
    police: Headers,
    civil: Headers,
    make_client: MakeClient,
    token_for: TokenFor,
) -> None:
    subjects = [await _named(http, police, serial) for serial in range(520, 525)]
    for subject in subjects:
        await _report(http, civil, subject, "张山")
    async with transaction(app.state.sessionmaker) as session:
        await session.execute(
            update(Discrepancy)
            .where(Discrepancy.subject_id == subjects[0])
            .values(due_at=datetime.now(UTC) - timedelta(days=1))
        )
    (late,) = await _listed(http, police, overdue="true")
    assert (late["subject_id"], late["overdue"]) == (subjects[0], True)

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await http.get("/v1/discrepancies", params=params, headers=police)).json()
        seen += [item["subject_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(subjects)
    assert await _listed(http, police, status="confirmed") == []
    assert len(await _listed(http, police, element="name", resource="population.person")) == 5

    refused = await http.get("/v1/discrepancies", params={"role": "all"}, headers=police)
    assert refused.status_code == 422
    auditor = await token_for(await make_client(Role.auditor))
    every = await _listed(http, auditor, role="all")
    assert len(every) == 5
    assert all(not item["values_shown"] and item["reporters"][0]["value"] is None for item in every)
    bad_cursor = await http.get("/v1/discrepancies", params={"cursor": "nope"}, headers=police)
    assert bad_cursor.status_code == 422


async def test_reports_reads_and_resolutions_are_audited(
    app: Any, http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    subject = await _named(http, police, 530)
    discrepancy = (await _report(http, civil, subject, "张山")).json()["discrepancy"]["id"]
    await _listed(http, police)
    await _resolve(http, police, discrepancy, "confirmed")
    async with app.state.sessionmaker() as session:
        rows = (
            await session.execute(
                select(AuditEvent.action, AuditEvent.department, AuditEvent.subject_ids)
                .where(AuditEvent.action.like("discrepancies.%"))
                .order_by(AuditEvent.id)
            )
        ).all()
    assert [(r.action, r.department, list(r.subject_ids)) for r in rows] == [
        ("discrepancies.report", CIVIL_AFFAIRS, [subject]),
        ("discrepancies.read", POLICE, [subject]),
        ("discrepancies.resolve", POLICE, [subject]),
    ]
