"""Bulk reconciliation on a few thousand records with seeded conflicts, and the quality figures after it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select, update

from exchange.auth.principal import Role
from exchange.crosscheck.models import Discrepancy, DiscrepancyReport, ReconciliationRun
from exchange.db.session import transaction
from exchange.records.models import Observation, Record
from exchange.subscriptions.models import ChangeEvent
from tests.conftest import MakeClient, TokenFor
from tests.fixtures_departments import (
    CIVIL_AFFAIRS,
    HEALTH,
    MARKET,
    NATURAL_RESOURCES,
    PERSON,
    Headers,
    publish,
)
from tests.identifiers import valid_ric, valid_uscc
from tests.processes import cli_json, hub_env

pytestmark = pytest.mark.usefixtures("catalog_loaded")

CANONICAL = 3000  # subjects 公安 publishes
EXTRA = 100  # subjects only 民政 reports: no canonical value
STALE = range(2900, 2940)  # reported with a valid_from long before the canonical values
BIRTH_REPORTED = 2000  # 民政 reports birth dates for the first 2000 only


def _subject(i: int) -> str:
    return valid_ric(birth=f"199001{1 + i // 1000:02d}", serial=i % 1000)


def _birth(i: int) -> str:
    return f"1990-01-{1 + i // 1000:02d}"


def _name(i: int) -> str:
    return f"居民{i:04d}"


def _reported(i: int) -> dict[str, Any]:
    fields: dict[str, Any] = {"name": _name(i) if i % 10 != 3 else f"居民{i:04d}甲"}
    if i < BIRTH_REPORTED:
        fields["birth_date"] = _birth(i) if i % 25 else "1991-01-01"
    line: dict[str, Any] = {"subject_id": _subject(i), "fields": fields}
    if i in STALE:
        line["valid_from"] = "2020-01-01T00:00:00+08:00"
    return line


async def _batch(http: httpx.AsyncClient, headers: Headers, lines: list[dict[str, Any]]) -> dict[str, Any]:
    response = await http.post(
        f"{PERSON}/records:batch",
        content=b"\n".join(orjson.dumps(line) for line in lines),
        headers=headers | {"Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == 0, response.json()["errors"][:3]
    return dict(response.json())


@pytest.fixture
async def seeded(http: httpx.AsyncClient, police: Headers, civil: Headers) -> None:
    """民政 reports first (nothing to compare with yet), then 公安 publishes the canonical values."""
    reported = await _batch(http, civil, [_reported(i) for i in range(CANONICAL + EXTRA)])
    assert (reported["observations"], reported["discrepancies"]) == (CANONICAL + EXTRA + BIRTH_REPORTED, 0)
    canonical = [
        {"subject_id": _subject(i), "fields": {"name": _name(i), "birth_date": _birth(i), "sex": "1"}}
        for i in range(CANONICAL)
    ]
    assert (await _batch(http, police, canonical))["applied_versions"] == CANONICAL


EXPECTED = {
    "name": {
        "element": "name",
        "compared": CANONICAL - len(STALE),
        "agreeing": CANONICAL - len(STALE) - 296,
        "disagreeing": 296,  # every tenth (i % 10 == 3), less the 4 of them among the stale reports
        "stale": len(STALE),
        "missing_canonical": EXTRA,
        "missing_reported": 0,
    },
    "birth_date": {
        "element": "birth_date",
        "compared": BIRTH_REPORTED,
        "agreeing": BIRTH_REPORTED - 80,
        "disagreeing": 80,  # every 25th
        "stale": 0,
        "missing_canonical": 0,
        "missing_reported": CANONICAL - BIRTH_REPORTED,
    },
}


async def _run(
    http: httpx.AsyncClient,
    headers: Headers,
    department: str = CIVIL_AFFAIRS,
    resource: str = "population.person",
) -> dict[str, Any]:
    started = await http.post(
        "/v1/crosscheck/runs", json={"resource": resource, "department": department}, headers=headers
    )
    assert started.status_code == 202, started.text
    for _ in range(600):
        run = (await http.get(f"/v1/crosscheck/runs/{started.json()['id']}", headers=headers)).json()
        if run["status"] in {"done", "failed"}:
            return dict(run)
        await asyncio.sleep(0.05)
    raise AssertionError("the run did not finish")


@pytest.mark.usefixtures("seeded")
async def test_reconciliation_counts_every_case_and_opens_the_discrepancies(
    app: Any, http: httpx.AsyncClient, police: Headers
) -> None:
    run = await _run(http, police)
    assert run["status"] == "done", run["error"]
    report = run["report"]
    assert report["subjects_reported"] == CANONICAL + EXTRA
    assert report["discrepancies_opened"] == 296 + 80
    assert {row["element"]: row for row in report["elements"]} == EXPECTED

    again = await _run(http, police)
    assert again["report"]["discrepancies_opened"] == 0
    assert {row["element"]: row for row in again["report"]["elements"]} == EXPECTED
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Discrepancy)) == 376
        times = await session.scalar(select(func.max(DiscrepancyReport.times)))
    assert times == 1, "going over old reports again does not count them as new ones"

    source_view = await http.get(
        "/v1/discrepancies", params={"element": "birth_date", "limit": 500}, headers=police
    )
    assert len(source_view.json()["items"]) == 80
    assert {item["reporters"][0]["value"] for item in source_view.json()["items"]} == {"1991-01-01"}


@pytest.mark.usefixtures("seeded")
async def test_quality_after_reconciliation(app: Any, http: httpx.AsyncClient, police: Headers) -> None:
    await _run(http, police)
    async with transaction(app.state.sessionmaker) as session:
        stale_ids = [_subject(i) for i in range(300)]
        await session.execute(
            update(Record)
            .where(Record.subject_id.in_(stale_ids))
            .values(updated_at=datetime.now(UTC) - timedelta(days=30))
        )
        await session.execute(
            update(Discrepancy)
            .where(Discrepancy.element == "birth_date")
            .values(
                opened_at=datetime.now(UTC) - timedelta(days=20), due_at=datetime.now(UTC) - timedelta(days=6)
            )
        )
    response = await http.get("/v1/quality/resources/population.person", headers=police)
    assert response.status_code == 200, response.text
    quality = response.json()
    assert quality["records"] == CANONICAL
    assert quality["freshness"] == {"update_cycle": "daily", "window_days": 2, "fresh": 2700, "share": 0.9}
    elements = {e["element"]: e for e in quality["elements"]}
    assert (elements["name"]["completeness"], elements["name"]["filled"]) == (1.0, CANONICAL)
    assert elements["household_address"]["completeness"] == 0.0
    assert elements["name"]["agreeing"] == EXPECTED["name"]["agreeing"]
    assert elements["name"]["disagreeing"] == 296
    assert elements["name"]["consistency"] == round(2664 / 2960, 4)
    assert elements["birth_date"]["consistency"] == 0.96
    assert quality["consistency"] == round((2664 + 1920) / (2960 + 2000), 4)
    assert quality["discrepancies"]["count"] == 376
    assert quality["discrepancies"]["overdue"] == 80
    assert quality["discrepancies"]["oldest_days"] == pytest.approx(20, abs=0.01)
    required = [e["completeness"] for e in quality["elements"] if e["required"]]
    assert quality["completeness"] == round(sum(required) / len(required), 4)

    statistics = await http.get("/v1/statistics/quality", headers=police)
    assert statistics.status_code == 403, "the statistics of every resource are for stewards and auditors"


async def test_who_may_run_a_reconciliation(
    http: httpx.AsyncClient, health: Headers, civil: Headers, as_department: Any
) -> None:
    market = await as_department(MARKET)
    refused = await http.post(
        "/v1/crosscheck/runs",
        json={"resource": "population.person", "department": CIVIL_AFFAIRS},
        headers=market,
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "reconciliation_not_allowed")
    unknown = await http.post(
        "/v1/crosscheck/runs", json={"resource": "population.nobody", "department": HEALTH}, headers=health
    )
    assert unknown.status_code == 422
    own = await _run(http, civil)
    assert own["status"] == "done"
    assert own["report"]["elements"] == []
    as_source = await http.get(f"/v1/crosscheck/runs/{own['id']}", headers=health)  # 卫健委 keeps death_date
    assert as_source.status_code == 200
    assert (await http.get(f"/v1/crosscheck/runs/{own['id']}", headers=market)).status_code == 404


@pytest.mark.usefixtures("seeded")
def test_the_command_prints_the_same_report(database_url: str, tmp_path: Path) -> None:
    env = hub_env(database_url=database_url, data_dir=str(tmp_path / "data"))
    run = cli_json(
        "crosscheck", "run", "--resource", "population.person", "--from-department", CIVIL_AFFAIRS, env=env
    )
    assert run["status"] == "done"
    assert run["report"]["discrepancies_opened"] == 376
    assert {row["element"]: row for row in run["report"]["elements"]} == EXPECTED


async def test_a_run_whose_process_died_reads_as_interrupted(
    app: Any, http: httpx.AsyncClient, police: Headers
) -> None:
    async with transaction(app.state.sessionmaker) as session:
        run = ReconciliationRun(
            id=uuid.uuid4(),
            resource_code="population.person",
            department=CIVIL_AFFAIRS,
            requested_by="cli",
            status="running",
            started_at=datetime.now(UTC),
        )
        session.add(run)
    seen = (await http.get(f"/v1/crosscheck/runs/{run.id}", headers=police)).json()
    assert (seen["status"], seen["error"]) == ("failed", "interrupted: the hub process stopped")


async def test_quality_statistics_cover_every_resource(
    http: httpx.AsyncClient, make_client: MakeClient, token_for: TokenFor
) -> None:
    auditor = await token_for(await make_client(Role.auditor))
    response = await http.get("/v1/statistics/quality", headers=auditor)
    assert response.status_code == 200, response.text
    assert [item["resource"] for item in response.json()["items"]] == [
        "geospatial.address",
        "legal_entity.entity",
        "population.person",
    ]
    assert all(item["records"] == 0 and item["completeness"] is None for item in response.json()["items"])


# Canonical and reported values of every kind of element, each pair for a subject of its own: identical,
# alike only after normalisation, different.
PAIRS: dict[str, tuple[str, list[tuple[str, Any, Any]]]] = {
    "population.person": (
        "11150400MB1234567Q",
        [
            ("name", "张三", "张三"),
            ("name", "张三", "\u3000张三 "),
            ("name", "Zhang San", "ZHANG  SAN"),
            ("name", "张三", "张山"),
            ("name_mongolian", HOHHOT := "ᠬᠥᠬᠡᠬᠣᠲᠠ", f"{HOHHOT}\u200b"),
            ("sex", "1", "1"),
            ("sex", "1", "2"),
            ("birth_date", "1990-01-01", "1990-01-01"),
            ("birth_date", "1990-01-01", "1990-01-02"),
            ("household_division", "150402", "150402"),
            ("household_division", "150402", "150403"),
            ("phone", "13800138000", "13800138000"),
            ("phone", "13800138000", "+86 13800138000"),
            ("phone", "0476-8881234", "04768881234"),
            ("phone", "13800138000", "13800138001"),
            ("fingerprint_registered", True, True),
            ("fingerprint_registered", True, False),
            ("id_card_photo", "ＡＢＣ", "abc"),
        ],
    ),
    "legal_entity.entity": (
        MARKET,
        [
            ("registered_capital", "100", "100"),
            ("registered_capital", "100.00004", "100"),
            ("registered_capital", "100.5", "101"),
            ("registered_capital", "1e2", "100.0"),
            ("establishment_date", "2001-02-03", "2001-02-03"),
            ("legal_representative_id", "11010519491231002X", "11010519491231002x"),
            ("legal_representative_id", "11010519491231002X", "11010519491231002X"),
            ("business_scope", "软件开发", "软件开发；"),
        ],
    ),
    "geospatial.address": (
        NATURAL_RESOURCES,
        [
            ("location", {"type": "Point", "coordinates": [118.8869, 42.2578]}, None),
            ("location", {"type": "Point", "coordinates": [118.8869, 42.2578]}, [118.8869, 42.25782]),
            ("location", {"type": "Point", "coordinates": [118.8869, 42.2578]}, [118.8869, 42.2579]),
            ("location", {"type": "Point", "coordinates": [118.8869, 42.2578, 10]}, [118.8869, 42.2578, 10]),
        ],
    ),
}
HOUSING = "11150400MB15040781"  # 住建局: the source of building floors (integers)


def _pair_subject(resource: str, n: int) -> str:
    if resource == "population.person":
        return valid_ric(serial=n)
    if resource == "legal_entity.entity":
        return valid_uscc(serial=n)
    return f"150402001001{n:06d}"


def _reported_value(canonical: Any, reported: Any) -> Any:
    """A geometry pair gives the reported point's coordinates (none: the canonical point itself)."""
    if isinstance(canonical, dict):
        return canonical if reported is None else {"type": "Point", "coordinates": reported}
    return reported


async def test_a_run_judges_every_kind_of_value_as_it_was_judged_when_reported(
    app: Any, http: httpx.AsyncClient, civil: Headers, as_department: Any
) -> None:
    for resource, (source, pairs) in PAIRS.items():
        path = f"/v1/resources/{resource}"
        publisher = await as_department(source)
        for n, (element, canonical, reported) in enumerate(pairs):
            subject = _pair_subject(resource, n)
            body = {"subject_id": subject, "fields": {element: canonical}}
            assert (await publish(http, publisher, body, path)).status_code == 200
            body = {"subject_id": subject, "fields": {element: _reported_value(canonical, reported)}}
            assert (await publish(http, civil, body, path)).status_code == 200, body
    housing = await as_department(HOUSING)
    floors = [(7, 7), (7, 8), (2**63 - 1, 2**63 - 1)]
    for n, (canonical, reported) in enumerate(floors):
        subject = _pair_subject("geospatial.address", 100 + n)
        path = "/v1/resources/geospatial.address"
        await publish(http, housing, {"subject_id": subject, "fields": {"building_floors": canonical}}, path)
        await publish(http, civil, {"subject_id": subject, "fields": {"building_floors": reported}}, path)

    for resource in PAIRS:
        async with app.state.sessionmaker() as session:
            judged = (
                await session.execute(
                    select(Observation.element, Observation.outcome, func.count())
                    .where(Observation.resource_code == resource)
                    .group_by(Observation.element, Observation.outcome)
                )
            ).all()
        when_reported: dict[str, dict[str, int]] = {}
        for element, outcome, n in judged:
            when_reported.setdefault(element, {"agrees": 0, "disagrees": 0})[outcome] = n
        run = await _run(http, civil, resource=resource)
        assert run["status"] == "done", run["error"]
        assert {
            row["element"]: {"agrees": row["agreeing"], "disagrees": row["disagreeing"]}
            for row in run["report"]["elements"]
        } == when_reported
        assert run["report"]["discrepancies_opened"] == 0, "each was opened when it was reported"
    assert when_reported["location"] == {"agrees": 3, "disagrees": 1}
    assert when_reported["building_floors"] == {"agrees": 2, "disagrees": 1}


async def _change_kinds(app: Any, subject: str) -> list[str]:
    async with app.state.sessionmaker() as session:
        return list(
            await session.scalars(
                select(ChangeEvent.kind).where(ChangeEvent.subject_id == subject).order_by(ChangeEvent.seq)
            )
        )


async def test_a_run_withdraws_a_report_the_latest_one_no_longer_supports(
    app: Any, http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    subject = _subject(7001)
    since = "2025-01-01T00:00:00+08:00"
    await publish(http, police, {"subject_id": subject, "fields": {"name": "张三"}, "valid_from": since})
    await publish(http, civil, {"subject_id": subject, "fields": {"name": "张三"}})
    # Reported later, but dated earlier than the agreeing report: the latest report still agrees.
    doubted = await publish(
        http,
        civil,
        {"subject_id": subject, "fields": {"name": "张山"}, "valid_from": "2025-06-01T00:00:00+08:00"},
    )
    (discrepancy,) = doubted.json()["discrepancies"]

    run = await _run(http, police)
    assert run["report"]["discrepancies_opened"] == 0
    assert [(row["compared"], row["agreeing"]) for row in run["report"]["elements"]] == [(1, 1)]
    settled = (await http.get(f"/v1/discrepancies/{discrepancy}", headers=police)).json()
    assert (settled["status"], settled["resolved_by"], settled["reporter_count"]) == ("withdrawn", "hub", 0)
    assert await _change_kinds(app, subject) == [
        "record.changed",
        "record.under_review",
        "record.review_settled",
    ]


async def test_a_run_reopens_a_discrepancy_withdrawn_while_the_latest_report_still_disagrees(
    app: Any, http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    subject = _subject(7002)
    await publish(http, police, {"subject_id": subject, "fields": {"name": "张三"}})
    (discrepancy,) = (await publish(http, civil, {"subject_id": subject, "fields": {"name": "张山"}})).json()[
        "discrepancies"
    ]
    withdrawn = await http.post(
        f"/v1/discrepancies/{discrepancy}:resolve",
        json={"outcome": "withdrawn", "note": "系统录入错误"},
        headers=civil,
    )
    assert withdrawn.json()["status"] == "withdrawn"

    run = await _run(http, police)
    assert run["report"]["discrepancies_opened"] == 0, "reopened, not opened"
    reopened = (await http.get(f"/v1/discrepancies/{discrepancy}", headers=police)).json()
    assert (reopened["status"], reopened["reporter_count"], reopened["resolved_by"]) == ("open", 1, None)
    assert reopened["reporters"][0]["times"] == 1
    assert await _change_kinds(app, subject) == [
        "record.changed",
        "record.under_review",
        "record.review_settled",
        "record.under_review",
    ]


async def test_a_run_leaves_a_confirmed_value_confirmed(
    http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    subject = _subject(7003)
    await publish(http, police, {"subject_id": subject, "fields": {"name": "张三"}})
    (discrepancy,) = (await publish(http, civil, {"subject_id": subject, "fields": {"name": "张山"}})).json()[
        "discrepancies"
    ]
    confirmed = await http.post(
        f"/v1/discrepancies/{discrepancy}:resolve",
        json={"outcome": "confirmed", "note": "户籍档案为准"},
        headers=police,
    )
    assert confirmed.json()["status"] == "confirmed"

    run = await _run(http, police)
    assert [
        (row["disagreeing"], run["report"]["discrepancies_opened"]) for row in run["report"]["elements"]
    ] == [(1, 0)]
    kept = (await http.get(f"/v1/discrepancies/{discrepancy}", headers=police)).json()
    assert (kept["status"], kept["reporter_count"]) == ("confirmed", 1)
