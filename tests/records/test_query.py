"""Governed reads: a declared purpose, a grant covering every requested element, only those elements back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select

from exchange.audit.models import AuditEvent
from tests.fixtures_departments import (
    CIVIL_AFFAIRS,
    PERSON,
    Headers,
    MakeGrant,
    publish,
    query,
    read_headers,
)
from tests.identifiers import valid_ric

pytestmark = pytest.mark.usefixtures("catalog_loaded")


@pytest.fixture
async def person(http: httpx.AsyncClient, police: Headers, civil: Headers) -> str:
    subject = valid_ric(serial=101)
    await publish(
        http, police, {"subject_id": subject, "fields": {"name": "ᠪᠠᠲᠤ 巴特", "sex": "1", "ethnicity": "02"}}
    )
    await publish(http, civil, {"subject_id": subject, "fields": {"marital_status": "20"}})
    return subject


async def _events(app: Any, action: str) -> list[AuditEvent]:
    async with app.state.sessionmaker() as session:
        return list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )


async def test_a_granted_read_returns_only_the_requested_elements_and_is_audited(
    app: Any, http: httpx.AsyncClient, civil: Headers, person: str, make_grant: MakeGrant
) -> None:
    grant = await make_grant(CIVIL_AFFAIRS, ["name", "sex", "ethnicity"])
    missing = valid_ric(serial=102)
    case = quote("民救〔2026〕17号")  # header values travel as ASCII: UTF-8 percent-encoded
    headers = read_headers(civil, **{"Exchange-Case": case, "Exchange-On-Behalf-Of": "officer-0042"})
    response = await query(http, headers, [person, missing], ["name", "sex"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["not_found"] == [missing]
    (record,) = body["records"]
    assert record["fields"] == {"name": "ᠪᠠᠲᠤ 巴特", "sex": "1"}
    assert record["version"] == 2  # 公安 wrote version 1, 民政 (source of marital_status) version 2
    assert record["under_review"] == []
    (event,) = await _events(app, "records.query")
    assert event.outcome == "allowed"
    assert event.grant_id == grant
    assert event.subject_ids == [person, missing]
    assert event.elements == ["name", "sex"]
    assert (event.purpose, event.case_reference, event.officer) == (
        "social-assistance-eligibility",
        "民救〔2026〕17号",
        "officer-0042",
    )


async def test_asking_for_an_element_the_grant_lacks_is_403_naming_it_and_audited(
    app: Any, http: httpx.AsyncClient, civil: Headers, person: str, make_grant: MakeGrant
) -> None:
    await make_grant(CIVIL_AFFAIRS, ["name", "sex"])
    response = await query(http, read_headers(civil), [person], ["name", "birth_date", "id_card_photo"])
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "unauthorized_field"
    assert body["elements"] == ["birth_date", "id_card_photo"]
    assert "ᠪᠠᠲᠤ" not in response.text
    assert person not in response.text
    (event,) = await _events(app, "records.query")
    assert event.outcome == "denied"
    assert event.subject_ids == [person]
    assert "unauthorized_field" in (event.reason or "")


async def test_a_grant_serves_only_its_own_purpose(
    http: httpx.AsyncClient, civil: Headers, person: str, make_grant: MakeGrant
) -> None:
    await make_grant(CIVIL_AFFAIRS, ["name"], purpose="marriage-registration")
    other = await query(http, read_headers(civil), [person], ["name"])
    assert other.status_code == 403
    same = await query(http, read_headers(civil, "marriage-registration"), [person], ["name"])
    assert same.status_code == 200


async def test_expired_future_and_revoked_grants_authorise_nothing(
    http: httpx.AsyncClient, civil: Headers, person: str, make_grant: MakeGrant
) -> None:
    now = datetime.now(UTC)

    async def status() -> int:
        return (await query(http, read_headers(civil), [person], ["name"])).status_code

    await make_grant(
        CIVIL_AFFAIRS, ["name"], valid_from=now - timedelta(days=9), valid_until=now - timedelta(days=1)
    )
    assert await status() == 403
    await make_grant(
        CIVIL_AFFAIRS, ["name"], valid_from=now + timedelta(days=1), valid_until=now + timedelta(days=9)
    )
    assert await status() == 403
    await make_grant(CIVIL_AFFAIRS, ["name"])
    assert await status() == 200
    await make_grant(CIVIL_AFFAIRS, ["name"], revoked=True)
    assert await status() == 403


async def test_a_source_reads_its_own_elements_without_a_grant_but_not_others(
    http: httpx.AsyncClient, police: Headers, person: str
) -> None:
    own = await query(http, read_headers(police), [person], ["name", "id_card_photo"])
    assert own.status_code == 200
    assert own.json()["records"][0]["fields"] == {"name": "ᠪᠠᠲᠤ 巴特", "id_card_photo": None}
    assert (await query(http, read_headers(police), [person], ["marital_status"])).status_code == 403


async def test_reads_need_a_declared_purpose(
    app: Any, http: httpx.AsyncClient, civil: Headers, person: str
) -> None:
    response = await query(http, civil, [person], ["name"])
    assert response.status_code == 400
    assert response.json()["code"] == "purpose_required"
    malformed = await query(http, civil | {"Exchange-Purpose": "Nope!"}, [person], ["name"])
    assert malformed.json()["code"] == "invalid_purpose"
    events = await _events(app, "records.query")
    assert [e.outcome for e in events] == ["denied", "denied"]


async def test_bad_query_bodies_are_422(
    http: httpx.AsyncClient, civil: Headers, make_grant: MakeGrant
) -> None:
    await make_grant(CIVIL_AFFAIRS, ["name"])
    headers = read_headers(civil)
    too_many = await query(http, headers, [valid_ric(serial=200 + n) for n in range(101)], ["name"])
    assert too_many.status_code == 422
    no_fields = await http.post(
        f"{PERSON}/records:query", json={"subject_ids": [valid_ric(serial=1)]}, headers=headers
    )
    assert no_fields.json()["invalid_params"][0]["name"] == "fields"
    unknown = await query(http, headers, [valid_ric(serial=1)], ["name", "shoe_size"])
    assert unknown.json()["invalid_params"] == [
        {"name": "fields", "reason": "population.person has no element shoe_size"}
    ]
    bad_id = await query(http, headers, ["12345"], ["name"])
    assert bad_id.json()["invalid_params"][0]["name"] == "subject_ids.0"
    for moment in ("as_of", "known_at"):
        # The last instant of year 9999 is stored as PostgreSQL's infinity: no time to read back.
        beyond = await query(
            http, headers, [valid_ric(serial=1)], ["name"], **{moment: "9999-12-31T23:59:59.999999Z"}
        )
        assert beyond.json()["invalid_params"][0]["name"] == moment


async def test_full_width_and_mongolian_text_round_trips_unchanged(
    http: httpx.AsyncClient, police: Headers
) -> None:
    subject = valid_ric(serial=103)
    name = "ＡＢＣ　全角 ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ᠌"
    await publish(
        http, police, {"subject_id": subject, "fields": {"name": name, "name_mongolian": "ᠪᠠᠲᠤ᠂ᠮᠥᠩᠬᠡ"}}
    )
    back = await query(http, read_headers(police), [subject], ["name", "name_mongolian"])
    assert back.json()["records"][0]["fields"] == {"name": name, "name_mongolian": "ᠪᠠᠲᠤ᠂ᠮᠥᠩᠬᠡ"}
