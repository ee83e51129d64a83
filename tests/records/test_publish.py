"""Publishing by the authority: one-number-one-source routing, versions, and every way a body is refused."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from exchange.records.models import Observation, Record, RecordVersion
from tests.fixtures_departments import PERSON, Headers, publish
from tests.identifiers import valid_ric, valid_uscc

pytestmark = pytest.mark.usefixtures("catalog_loaded")


async def _versions(app: object, subject_id: str) -> int:
    async with app.state.sessionmaker() as session:  # type: ignore[attr-defined]
        return int(
            await session.scalar(select(func.count()).where(RecordVersion.subject_id == subject_id)) or 0
        )


async def test_the_source_values_become_canonical_and_others_are_observations(
    app: object, http: httpx.AsyncClient, police: Headers
) -> None:
    person = valid_ric(serial=11)
    response = await publish(
        http, police, {"subject_id": person, "fields": {"name": "张三", "sex": "1", "marital_status": "20"}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 1
    assert body["applied"] == ["name", "sex"]
    assert body["changed"] == ["name", "sex"]
    assert body["observed"] == ["marital_status"]
    async with app.state.sessionmaker() as session:  # type: ignore[attr-defined]
        record = await session.get(Record, ("population.person", person))
        observed = (await session.scalars(select(Observation).where(Observation.subject_id == person))).one()
    assert record is not None
    assert record.fields == {"name": "张三", "sex": "1"}
    assert (observed.element, observed.value) == ("marital_status", "20")


async def test_a_new_version_only_when_a_value_changes(
    app: object, http: httpx.AsyncClient, police: Headers
) -> None:
    person = valid_ric(serial=12)
    first = await publish(http, police, {"subject_id": person, "fields": {"name": "李四", "sex": "2"}})
    same = await publish(http, police, {"subject_id": person, "fields": {"name": "李四"}})
    assert same.json()["version"] == first.json()["version"] == 1
    assert same.json()["changed"] == []
    changed = await publish(http, police, {"subject_id": person, "fields": {"name": "李思"}})
    assert changed.json()["version"] == 2
    assert changed.json()["changed"] == ["name"]
    assert await _versions(app, person) == 2


async def test_the_standards_own_examples_are_accepted(
    http: httpx.AsyncClient, police: Headers, as_department: object
) -> None:
    assert (
        await publish(http, police, {"subject_id": "11010519491231002X", "fields": {"sex": "2"}})
    ).status_code == 200
    market = await as_department("11150400MB1504045L")  # type: ignore[operator]
    entity = await publish(
        http,
        market,
        {"subject_id": "91350100M000100Y43", "fields": {"name": "某某有限公司"}},
        path="/v1/resources/legal_entity.entity",
    )
    assert entity.status_code == 200, entity.text
    association = valid_uscc(prefix="Y1150400")  # registration authority Y: stdnum alone would refuse it
    letter_authority = await publish(
        http,
        market,
        {"subject_id": association, "fields": {"name": "某协会"}},
        path="/v1/resources/legal_entity.entity",
    )
    assert letter_authority.status_code == 200, letter_authority.text


async def test_an_unknown_birth_place_is_a_warning_not_a_refusal(
    http: httpx.AsyncClient, police: Headers
) -> None:
    person = valid_ric(division="150402", birth="19700101", serial=5)  # 红山区 got its code in 1983
    response = await publish(http, police, {"subject_id": person, "fields": {"sex": "1"}})
    assert response.status_code == 200
    assert response.json()["warnings"] == [
        "subject_id: the birth-place code 150402 is not known for the year of birth"
    ]


@pytest.mark.parametrize(
    ("fields", "name", "reason"),
    [
        ({"nickname": "x"}, "fields.nickname", "population.person has no element nickname"),
        ({"sex": "7"}, "fields.sex", "is not in the element's code list"),
        ({"birth_date": "1990-02-30"}, "fields.birth_date", "is not a real date"),
        ({"birth_date": "19900101"}, "fields.birth_date", "must be a date as YYYY-MM-DD"),
        ({"name": "名" * 51}, "fields.name", "is longer than 50 characters"),
        ({"name": None}, "fields.name", "is required and cannot be cleared"),
        ({"name": 5}, "fields.name", "must be a string"),
        ({"name": "a\x00b"}, "fields.name", "must not contain the NUL character"),
        ({"phone": "call me"}, "fields.phone", "is not a telephone number"),
        (
            {"household_division": "15040"},
            "fields.household_division",
            "is not a division code (6, 9 or 12 digits)",
        ),
        ({"fingerprint_registered": "yes"}, "fields.fingerprint_registered", "must be true or false"),
    ],
)
async def test_bad_values_are_refused_naming_the_field_and_nothing_is_applied(
    app: object, http: httpx.AsyncClient, police: Headers, fields: dict[str, object], name: str, reason: str
) -> None:
    person = valid_ric(serial=13)
    response = await publish(http, police, {"subject_id": person, "fields": {"sex": "1", **fields}})
    assert response.status_code == 422
    assert {"name": name, "reason": reason} in response.json()["invalid_params"]
    assert await _versions(app, person) == 0


async def test_bad_subject_ids_and_times_are_refused(http: httpx.AsyncClient, police: Headers) -> None:
    person = valid_ric(serial=14)
    wrong_check = person[:-1] + ("1" if person[-1] != "1" else "2")
    response = await publish(http, police, {"subject_id": wrong_check, "fields": {"sex": "1"}})
    assert response.json()["invalid_params"] == [
        {"name": "subject_id", "reason": "the check character does not match"}
    ]
    future = await publish(
        http, police, {"subject_id": person, "fields": {"sex": "1"}, "valid_from": "2999-01-01T00:00:00Z"}
    )
    assert future.json()["invalid_params"] == [{"name": "valid_from", "reason": "must not be in the future"}]
    naive = await publish(
        http, police, {"subject_id": person, "fields": {"sex": "1"}, "valid_from": "2020-01-01T00:00:00"}
    )
    assert naive.status_code == 422
    empty = await publish(http, police, {"subject_id": person, "fields": {}})
    assert empty.status_code == 422


@pytest.mark.parametrize(
    "valid_from", ["0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999-01:00"]
)
async def test_a_time_with_no_place_on_the_utc_time_line_is_refused(
    app: object, http: httpx.AsyncClient, police: Headers, valid_from: str
) -> None:
    person = valid_ric(serial=15)
    response = await publish(
        http, police, {"subject_id": person, "fields": {"sex": "1"}, "valid_from": valid_from}
    )
    assert response.status_code == 422, response.text
    assert [p["name"] for p in response.json()["invalid_params"]] == ["valid_from"]
    assert await _versions(app, person) == 0


async def test_numbers_the_hub_cannot_store_are_refused(
    http: httpx.AsyncClient, as_department: object
) -> None:
    # 住建局: the source of building floors; what it says of locations are observations.
    housing = await as_department("11150400MB15040781")  # type: ignore[operator]
    path = "/v1/resources/geospatial.address"
    address = "150402001001000002"

    def body(**fields: object) -> dict[str, object]:
        return {"subject_id": address, "fields": fields}

    largest = await publish(http, housing, body(building_floors=2**63 - 1), path)
    assert largest.status_code == 200, largest.text
    beyond = await publish(http, housing, body(building_floors=2**63), path)
    assert beyond.json()["invalid_params"] == [
        {"name": "fields.building_floors", "reason": "is out of range (a 64-bit whole number)"}
    ]
    far = await publish(http, housing, body(location={"type": "Point", "coordinates": [2**70, 42.0]}), path)
    assert far.json()["invalid_params"][0]["reason"].startswith("holds a number out of range")
    # JSON's 1e400 is read as an infinite float, which no JSON document can hold.
    point = '{"type": "Point", "coordinates": [1e400, 42]}'
    infinite = f'{{"subject_id": "{address}", "fields": {{"location": {point}}}}}'
    response = await http.post(
        f"{path}/records", content=infinite, headers=housing | {"content-type": "application/json"}
    )
    assert response.json()["invalid_params"][0]["reason"].startswith("holds a number out of range")


async def test_geometry_must_be_valid_geojson(http: httpx.AsyncClient, as_department: object) -> None:
    natural_resources = await as_department("11150400MB1504067W")  # type: ignore[operator]
    path = "/v1/resources/geospatial.address"
    address = "150402001001000001"
    point = {"type": "Point", "coordinates": [118.8869, 42.2578]}
    assert (
        await publish(http, natural_resources, {"subject_id": address, "fields": {"location": point}}, path)
    ).status_code == 200
    open_ring = {"type": "Polygon", "coordinates": [[[118.0, 42.0], [118.1, 42.0], [118.1, 42.1]]]}
    bad = await publish(
        http, natural_resources, {"subject_id": address, "fields": {"location": open_ring}}, path
    )
    assert bad.status_code == 422
    assert bad.json()["invalid_params"][0]["reason"].startswith("is not valid GeoJSON")
    not_geojson = await publish(
        http, natural_resources, {"subject_id": address, "fields": {"location": [1, 2]}}, path
    )
    assert not_geojson.json()["invalid_params"][0]["reason"] == "must be a GeoJSON geometry object"


async def test_only_publishers_publish(
    http: httpx.AsyncClient, make_client: object, token_for: object
) -> None:
    from exchange.auth.principal import Role

    reader = await token_for(await make_client(Role.consumer, department="11150400MB1234567Q"))  # type: ignore[operator]
    response = await publish(http, reader, {"subject_id": valid_ric(serial=15), "fields": {"sex": "1"}})
    assert response.status_code == 403


async def test_an_unknown_resource_is_a_404(http: httpx.AsyncClient, police: Headers) -> None:
    response = await http.post(
        "/v1/resources/population.pets/records", json={"subject_id": "x", "fields": {"a": 1}}, headers=police
    )
    assert response.status_code == 404
    assert response.json()["code"] == "resource_not_found"


async def test_idempotent_retries_have_the_effect_of_one(
    app: object, http: httpx.AsyncClient, police: Headers
) -> None:
    person = valid_ric(serial=16)
    headers = police | {"Idempotency-Key": "publish-16-a"}
    first = await http.post(
        f"{PERSON}/records", json={"subject_id": person, "fields": {"name": "王五"}}, headers=headers
    )
    await publish(http, police, {"subject_id": person, "fields": {"name": "王伍"}})
    again = await http.post(
        f"{PERSON}/records", json={"subject_id": person, "fields": {"name": "王五"}}, headers=headers
    )
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await _versions(app, person) == 2  # the replay did not set the name back
    other = await http.post(
        f"{PERSON}/records", json={"subject_id": person, "fields": {"name": "赵六"}}, headers=headers
    )
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"


async def test_every_publish_is_audited_and_a_refused_one_too(
    app: object, http: httpx.AsyncClient, police: Headers
) -> None:
    from exchange.audit.models import AuditEvent

    person = valid_ric(serial=17)
    await publish(
        http,
        police | {"Exchange-Purpose": "household-registration"},
        {"subject_id": person, "fields": {"sex": "1"}},
    )
    await publish(http, police, {"subject_id": person, "fields": {"sex": "8"}})
    async with app.state.sessionmaker() as session:  # type: ignore[attr-defined]
        events = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "records.publish").order_by(AuditEvent.id)
            )
        )
    assert [(e.outcome, e.subject_ids, e.elements) for e in events] == [
        ("allowed", [person], ["sex"]),
        ("error", [person], ["sex"]),
    ]
    assert events[0].purpose == "household-registration"
    assert events[0].details == {"version": 1, "changed": ["sex"]}
    assert "fields.sex" in (events[1].reason or "")


async def test_two_publishers_creating_one_record_at_once_both_land_one_after_the_other(app: object) -> None:
    """The second read the record as missing while the first was creating it; its save finds the record
    there, so its work is undone and done again on top: versions 1 and 2, nothing lost or overwritten."""
    from datetime import UTC, datetime

    from exchange.auth.principal import Principal, Role
    from exchange.db.session import transaction
    from exchange.records import service
    from tests.fixtures_departments import POLICE

    person = valid_ric(serial=21)
    principal = Principal("cl_test", POLICE, frozenset({Role.publisher}), "token")
    sessionmaker = app.state.sessionmaker  # type: ignore[attr-defined]
    async with transaction(sessionmaker) as session:
        rules = await service.load_rules(session, "population.person")
    now = datetime.now(UTC)

    def item(name: str) -> service.Prepared:
        prepared = service.prepare(rules, POLICE, {"subject_id": person, "fields": {"name": name}}, now)
        assert isinstance(prepared, service.Prepared)
        return prepared

    async with transaction(sessionmaker) as first:
        (created,) = await service.apply(first, rules, principal, [item("先到")], now, 10)
        async with transaction(sessionmaker) as second:
            # The second sees no record yet (the first has not committed) and waits for the first's key.
            late = asyncio.create_task(service.apply(second, rules, principal, [item("后到")], now, 10))
            await asyncio.sleep(0.3)
            assert not late.done()
            await first.commit()
            (updated,) = await late
    assert (created.version, updated.version) == (1, 2)
    async with sessionmaker() as session:
        record = await session.get(Record, ("population.person", person))
    assert record is not None
    assert (record.version, record.fields["name"]) == (2, "后到")
    assert await _versions(app, person) == 2
