"""The Python client against a live hub: tokens, publishing, governed reads, sharing, cross-checking,
subscriptions and the audit trail, as a department system uses them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey, OKPKey

from exchange.client import AsyncExchangeClient, ExchangeClient, ExchangeError, Forbidden, ValidationFailed
from tests.client.conftest import DATA_OFFICE, PERSON, Hub, new_person
from tests.fixtures_departments import ASSISTANCE, CIVIL_AFFAIRS, POLICE

NEXT_MONTH = date.today() + timedelta(days=30)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_fetched_once_renewed_shortly_before_it_expires_and_again_when_refused(hub: Hub) -> None:
    sent: list[tuple[str, str]] = []
    refuse_next = False

    def record(request: httpx.Request) -> None:
        nonlocal refuse_next
        if refuse_next and request.url.path != "/oauth/token":
            request.headers["Authorization"] = "Bearer a-token-the-hub-no-longer-accepts"
            refuse_next = False
        sent.append((request.url.path, request.headers.get("authorization", "")[:12]))

    clock = Clock()
    creds = hub.credentials(POLICE, "publisher")
    http = httpx.Client(event_hooks={"request": [record]})
    with (
        http,
        ExchangeClient(hub.url, creds.client_id, creds.client_secret, http=http, clock=clock) as client,
    ):
        assert client.me().department == POLICE
        client.me()
        assert [path for path, _ in sent] == ["/oauth/token", "/v1/me", "/v1/me"]
        assert sent[0][1].startswith("Basic ")

        clock.now += 530  # the hub's tokens live 600 s: still fresh
        client.me()
        clock.now += 15  # within the last minute: renewed before the hub would refuse it
        client.me()
        assert [path for path, _ in sent[3:]] == ["/v1/me", "/oauth/token", "/v1/me"]

        refuse_next = True
        assert client.me().client_id == creds.client_id
        assert [path for path, _ in sent[6:]] == ["/v1/me", "/oauth/token", "/v1/me"]


def test_private_key_jwt_with_a_jwk_file_or_a_pem_key(hub: Hub, tmp_path: Path) -> None:
    ec_key = ECKey.generate_key("P-256", private=True)
    jwk_file = tmp_path / "system.jwk.json"
    jwk_file.write_text(json.dumps(ec_key.as_dict(private=True)))
    ec_creds = hub.credentials(CIVIL_AFFAIRS, "consumer", public_jwk=ec_key.as_dict(private=False))
    assert ec_creds.client_secret is None
    clock = Clock()
    with ExchangeClient(hub.url, ec_creds.client_id, private_key=jwk_file, clock=clock) as client:
        assert client.me().client_id == ec_creds.client_id
        clock.now += 3600  # a second assertion, with a fresh jti (a replayed one is refused)
        assert client.me().department == CIVIL_AFFAIRS

    ed_key = OKPKey.generate_key("Ed25519", private=True)
    ed_creds = hub.credentials(CIVIL_AFFAIRS, "consumer", public_jwk=ed_key.as_dict(private=False))
    pem = ed_key.as_pem(private=True).decode()
    with ExchangeClient(hub.url, ed_creds.client_id, private_key=pem) as client:
        assert client.me().client_id == ed_creds.client_id


def test_publishing_one_record_a_batch_from_a_generator_and_a_csv_file(hub: Hub, tmp_path: Path) -> None:
    police = hub.client(POLICE, "publisher", "consumer")
    first = new_person()
    published = police.publish(PERSON, first, {"name": "张三", "sex": "1"}, idempotency_key="publish-one-1")
    assert (published.version, published.changed) == (1, ["name", "sex"])
    again = police.publish(PERSON, first, {"name": "张三", "sex": "1"}, idempotency_key="publish-one-1")
    assert again == published

    people = [new_person() for _ in range(3)]
    pulled: list[str] = []

    def records() -> Iterator[dict[str, Any]]:
        for number, person in enumerate(people):
            pulled.append(person)
            yield {"subject_id": person, "fields": {"name": f"居民{number}", "sex": "2"}}
        yield {"subject_id": new_person(), "fields": {"sex": "7"}}

    progress: list[int] = []
    batch = police.publish_batch(PERSON, records(), progress=progress.append)
    assert (batch.accepted, batch.rejected, batch.applied_versions) == (3, 1, 3)
    assert [(e.line, [p.name for p in e.invalid_params]) for e in batch.errors] == [(4, ["fields.sex"])]
    assert pulled == people
    assert progress[-1] == 4

    csv_people = [new_person() for _ in range(3)]
    table = tmp_path / "户籍.csv"
    table.write_text(
        "身份证号,姓名,性别,出生日期,备注\n"
        f"{csv_people[0]},王五,1,1980-01-01,\n"
        f"{csv_people[1]},赵六,2,,迁入\n"  # an empty cell is left out, not cleared
        f"{csv_people[2]},钱七,1,1980-02-30,\n",
        encoding="utf-8-sig",
    )
    mapping = {"姓名": "name", "性别": "sex", "出生日期": "birth_date", "备注": ""}
    from_file = police.publish_file(PERSON, table, mapping, subject_column="身份证号")
    assert (from_file.accepted, from_file.rejected) == (2, 1)
    assert [(e.line, e.subject_id) for e in from_file.errors] == [(4, csv_people[2])], "the file's line"

    read = police.query(PERSON, csv_people[:2], ["name", "birth_date"], purpose=ASSISTANCE)
    assert {r.subject_id: r.fields for r in read.records} == {
        csv_people[0]: {"name": "王五", "birth_date": "1980-01-01"},
        csv_people[1]: {"name": "赵六", "birth_date": None},
    }


def test_reading_another_departments_data_takes_a_purpose_the_source_approved(hub: Hub) -> None:
    police = hub.client(POLICE, "publisher")
    civil = hub.client(CIVIL_AFFAIRS, "consumer")
    auditor = hub.client(DATA_OFFICE, "auditor")
    person = new_person()
    police.publish(PERSON, person, {"name": "巴特尔", "birth_date": "1980-01-01", "sex": "1"})

    with pytest.raises(Forbidden) as refused:
        civil.query(PERSON, [person], ["name"], purpose=ASSISTANCE)
    assert (refused.value.status, refused.value.code) == (403, "unauthorized_field")
    assert "name" in refused.value.detail
    assert refused.value.request_id

    asked = civil.request_sharing(
        PERSON,
        ["name", "birth_date"],
        "read",
        ASSISTANCE,
        legal_basis="《社会救助暂行办法》第十一条",
        justification="低保申请家庭信息核查",
        valid_until=NEXT_MONTH,
    )
    assert asked.status == "pending"
    assert asked.id in {item.id for item in police.sharing_requests("provider", "pending").items}
    decided = police.decide(asked.id, {"name": True, "birth_date": "出生日期不为本用途所需"})
    assert decided.status == "partially_granted"
    assert {e.element: e.state for e in decided.elements} == {"name": "granted", "birth_date": "rejected"}

    case, officer = "赤民救〔2026〕17号 50%", "乌兰其其格"
    read = civil.query(PERSON, [person], ["name"], purpose=ASSISTANCE, case=case, officer=officer)
    assert read.records[0].fields == {"name": "巴特尔"}
    checked = civil.verify(PERSON, person, {"name": " 巴特尔 "}, purpose=ASSISTANCE)
    assert checked.matches == {"name": True}
    grant = next(g for g in civil.grants("consumer").items if g.id == decided.grant_id)
    assert [(e.element, e.in_force) for e in grant.elements] == [("name", True)]

    trail = auditor.audit_search(subject_id=person, action="records.query", department=CIVIL_AFFAIRS)
    assert [(e.outcome, e.case, e.officer) for e in trail.items] == [
        ("allowed", case, officer),
        ("denied", None, None),
    ], "newest first; headers percent-encoded by the client are logged decoded"


def test_a_doubted_value_is_reported_and_settled_by_its_source(hub: Hub) -> None:
    police = hub.client(POLICE, "publisher")
    civil = hub.client(CIVIL_AFFAIRS, "consumer")
    person = new_person()
    police.publish(PERSON, person, {"name": "张叁"})

    report = civil.report_discrepancy(PERSON, person, "name", "张三", note="入户核查所见户口簿")
    assert report.outcome == "disagrees"
    assert report.discrepancy is not None
    doubted = next(d for d in police.discrepancies("source", "open").items if d.subject_id == person)
    assert (doubted.id, doubted.canonical_value) == (report.discrepancy.id, "张叁")
    assert [(r.department, r.value) for r in doubted.reporters] == [(CIVIL_AFFAIRS, "张三")]

    settled = police.resolve_discrepancy(doubted.id, "confirmed", "户籍档案原件为“张叁”")
    assert settled.status == "confirmed"
    mine = next(d for d in civil.discrepancies("reporter").items if d.id == doubted.id)
    assert (mine.status, mine.resolution_note) == ("confirmed", "户籍档案原件为“张叁”")
    assert police.quality(PERSON).records >= 1


async def test_an_async_follower_hears_of_changes_and_acknowledges_them(hub: Hub) -> None:
    civil_creds = hub.credentials(CIVIL_AFFAIRS, "consumer")
    police_creds = hub.credentials(POLICE, "publisher")
    async with (
        AsyncExchangeClient(hub.url, civil_creds.client_id, civil_creds.client_secret) as civil,
        AsyncExchangeClient(hub.url, police_creds.client_id, police_creds.client_secret) as police,
    ):
        granted = await civil.request_sharing(
            PERSON, ["sex"], "subscribe", ASSISTANCE, "《社会救助暂行办法》", "救助对象变动提醒", NEXT_MONTH
        )
        assert granted.status == "granted", "sex is shared unconditionally"
        subscription = await civil.subscribe(PERSON, ["sex"], ASSISTANCE, payload="full")
        people = [new_person(), new_person()]

        async def records() -> AsyncIterator[dict[str, Any]]:
            for person in people:
                yield {"subject_id": person, "fields": {"sex": "2"}}

        assert (await police.publish_batch(PERSON, records())).accepted == 2
        heard = [event async for event in civil.follow(subscription.id, ASSISTANCE, wait=5, max_events=2)]
        assert [(e["data"]["subject_id"], e["data"]["values"]) for e in heard] == [
            (people[0], {"sex": "2"}),
            (people[1], {"sex": "2"}),
        ]
        assert (await civil.events(subscription.id, ASSISTANCE)).events == [], "acknowledged"


def test_refusals_raise_typed_errors_naming_each_bad_field(hub: Hub) -> None:
    police = hub.client(POLICE, "publisher")
    with pytest.raises(ValidationFailed) as invalid:
        police.publish(PERSON, new_person(), {"sex": "7", "birth_date": "1980-02-30"})
    error = invalid.value
    assert isinstance(error, ExchangeError)
    assert (error.status, error.code) == (422, "invalid_input")
    assert sorted(p.name for p in error.invalid_params) == ["fields.birth_date", "fields.sex"]
    assert error.request_id
    assert "fields.sex" in str(error)


def test_the_client_does_not_load_the_hubs_server_side() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, exchange.client.cli; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    server_side = [m for m in loaded if m.split(".")[0] in {"fastapi", "sqlalchemy", "asyncpg", "uvicorn"}]
    assert server_side == []
    assert not {"exchange.main", "exchange.db", "exchange.errors"} & set(loaded)
