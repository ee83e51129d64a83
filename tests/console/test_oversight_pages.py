"""The discrepancies board, the auditors' pages and the dashboard, as approvers, auditors and stewards use
them."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx

from exchange.catalog.schemas import ElementType
from exchange.console.discrepancies import corrected_value
from tests.console.conftest import MakeOfficer
from tests.console.events import logged
from tests.fixtures_departments import CIVIL_AFFAIRS, POLICE, Headers, publish
from tests.identifiers import valid_ric

DATA_BUREAU = "11150400MB15040895"


async def _doubted_name(http: httpx.AsyncClient, police: Headers, civil: Headers) -> tuple[str, str]:
    subject = valid_ric(serial=41)
    published = await publish(http, police, {"subject_id": subject, "fields": {"name": "张三", "sex": "1"}})
    assert published.status_code == 200, published.text
    body = {
        "resource": "population.person",
        "subject_id": subject,
        "element": "name",
        "value": "张叁",
        "note": "户籍核查",
    }
    reported = await http.post("/v1/discrepancies", json=body, headers=civil)
    assert reported.status_code == 201, reported.text
    return subject, str(reported.json()["discrepancy"]["id"])


async def test_the_source_approver_settles_a_discrepancy_on_the_board(
    app: Any, http: httpx.AsyncClient, police: Headers, civil: Headers, officer: MakeOfficer
) -> None:
    _, discrepancy = await _doubted_name(http, police, civil)
    zhang = await officer("zhang.wei", POLICE, "approver")
    board = await zhang.get("/console/discrepancies")
    assert f"/console/discrepancies/{discrepancy}" in board.text
    page = await zhang.get(f"/console/discrepancies/{discrepancy}")
    assert "张叁" in page.text  # the reported value, shown to the source
    assert 'value="confirmed"' in page.text

    missing_note = await zhang.post(f"/console/discrepancies/{discrepancy}/resolve", {"outcome": "confirmed"})
    assert missing_note.status_code == 422
    settled = await zhang.post(
        f"/console/discrepancies/{discrepancy}/resolve",
        {"outcome": "confirmed", "note": "核对户籍原始档案无误"},
    )
    assert settled.status_code == 303
    after = (await http.get(f"/v1/discrepancies/{discrepancy}", headers=police)).json()
    assert (after["status"], after["resolution_note"]) == ("confirmed", "核对户籍原始档案无误")
    [event] = await logged(app, "discrepancies.resolve")
    assert event.officer == "zhang.wei"


async def test_a_reporter_sees_its_own_report_and_withdraws_it(
    http: httpx.AsyncClient, police: Headers, civil: Headers, officer: MakeOfficer
) -> None:
    _, discrepancy = await _doubted_name(http, police, civil)
    zhao = await officer("zhao.min", CIVIL_AFFAIRS, "consumer")
    page = await zhao.get(f"/console/discrepancies/{discrepancy}")
    assert 'value="withdrawn"' in page.text
    assert 'value="confirmed"' not in page.text
    withdrawn = await zhao.post(
        f"/console/discrepancies/{discrepancy}/resolve", {"outcome": "withdrawn", "note": "我方数据有误"}
    )
    assert withdrawn.status_code == 303
    assert (await http.get(f"/v1/discrepancies/{discrepancy}", headers=police)).json()[
        "status"
    ] == "withdrawn"


async def test_an_auditor_searches_exports_looks_up_a_subject_and_verifies_the_chain(
    app: Any, http: httpx.AsyncClient, police: Headers, civil: Headers, officer: MakeOfficer
) -> None:
    subject, discrepancy = await _doubted_name(http, police, civil)
    assert (await http.get(f"/v1/discrepancies/{discrepancy}", headers=police)).status_code == 200
    li = await officer("li.jing", DATA_BUREAU, "auditor")

    found = await li.post("/console/audit", {"action": "discrepancies.report", "limit": "50"})
    assert found.status_code == 200
    assert "discrepancies.report" in found.text
    assert subject not in found.text  # counts of subjects in the table, not the ids
    [search] = await logged(app, "audit.search")
    assert (search.officer, search.details["filters"]["action"]) == ("li.jing", "discrepancies.report")

    bad = await li.post("/console/audit", {"since": "yesterday"})
    assert bad.status_code == 422
    assert "not a date and time" in bad.text

    exported = await li.post("/console/audit/export", {"action": "records.publish", "format": "csv"})
    assert exported.status_code == 200
    assert exported.headers["content-disposition"] == 'attachment; filename="audit-events.csv"'
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert rows
    assert {row["action"] for row in rows} == {"records.publish"}

    accesses = await li.post("/console/audit/subject", {"subject_id": subject})
    assert accesses.status_code == 200
    assert "discrepancies.read" in accesses.text
    assert POLICE in accesses.text
    [lookup] = await logged(app, "audit.subject_accesses")
    assert list(lookup.subject_ids) == [subject]

    verified = await li.post("/console/audit/verify", headers={"HX-Request": "true"})
    assert verified.status_code == 200
    assert "日志完整" in verified.text
    assert "<html" not in verified.text  # htmx gets the fragment only


async def test_only_auditors_read_the_log(app: Any, officer: MakeOfficer) -> None:
    wang = await officer("wang.steward", DATA_BUREAU, "steward", "admin")
    assert (await wang.get("/console/audit")).status_code == 403
    assert (await wang.post("/console/audit", {"action": "x"})).status_code == 403
    assert 'href="/console/audit"' not in (await wang.get("/console")).text
    assert await logged(app, "audit.search") == []


async def test_the_dashboard_shows_statistics_to_stewards_and_a_queue_to_approvers(
    http: httpx.AsyncClient, police: Headers, civil: Headers, officer: MakeOfficer, admin_headers: Headers
) -> None:
    await _doubted_name(http, police, civil)
    wang = await officer("wang.steward", DATA_BUREAU, "steward")
    dashboard = await wang.get("/console")
    assert 'data-testid="connection-rate"' in dashboard.text
    assert 'data-testid="quality"' in dashboard.text
    assert "<svg" in dashboard.text
    zhang = await officer("zhang.wei", POLICE, "approver")
    queue = await zhang.get("/console")
    assert "待本部门审批的共享申请" in queue.text
    assert 'data-testid="connection-rate"' not in queue.text

    usage = (await http.get("/v1/audit/usage", params={"days": 7}, headers=admin_headers)).json()
    connected = {d["code"] for d in usage["departments"] if d["connected"]}
    assert {POLICE, CIVIL_AFFAIRS} <= connected
    assert usage["connection_rate"] == round(usage["connected"] / len(usage["departments"]), 4)
    assert (await http.get("/v1/audit/usage", headers=police)).status_code == 403


async def test_the_source_corrects_its_value_from_the_console(
    http: httpx.AsyncClient, police: Headers, civil: Headers, officer: MakeOfficer
) -> None:
    _, discrepancy = await _doubted_name(http, police, civil)
    zhang = await officer("zhang.wei", POLICE, "approver")
    corrected = await zhang.post(
        f"/console/discrepancies/{discrepancy}/resolve",
        {"outcome": "corrected", "note": "户籍档案登记为张叁", "value": "张叁"},
    )
    assert corrected.status_code == 303
    after = (await http.get(f"/v1/discrepancies/{discrepancy}", headers=police)).json()
    assert after["status"] == "corrected"
    assert after["corrected_version"] == 2


def test_a_corrected_value_is_read_as_its_element_reads_it() -> None:
    assert corrected_value(" 18916493677 ", ElementType.phone) == "18916493677"
    assert corrected_value("007", ElementType.string) == "007"
    assert corrected_value("42", ElementType.integer) == 42
    assert corrected_value("true", ElementType.boolean) is True
    assert corrected_value("not json", ElementType.decimal) == "not json"
