"""Verification (核验): yes or no per element, never the stored value, under a verify or read grant."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures_departments import CIVIL_AFFAIRS, PERSON, Headers, MakeGrant, publish, read_headers
from tests.identifiers import valid_ric

pytestmark = pytest.mark.usefixtures("catalog_loaded")


async def _verify(
    http: httpx.AsyncClient, headers: Headers, subject: str, fields: dict[str, object]
) -> httpx.Response:
    return await http.post(
        f"{PERSON}/records:verify", json={"subject_id": subject, "fields": fields}, headers=headers
    )


async def test_verify_compares_after_normalisation_and_reveals_nothing(
    http: httpx.AsyncClient, police: Headers, civil: Headers, make_grant: MakeGrant
) -> None:
    subject = valid_ric(serial=401)
    await publish(
        http,
        police,
        {"subject_id": subject, "fields": {"name": "Ｗａｎｇ  Xiao", "birth_date": "1990-01-01"}},
    )
    await make_grant(CIVIL_AFFAIRS, ["name", "birth_date"], access="verify")
    response = await _verify(
        http, read_headers(civil), subject, {"name": "wang xiao", "birth_date": "1990-01-02"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "subject_id": subject,
        "found": True,
        "matches": {"name": True, "birth_date": False},
        "under_review": [],
    }
    assert "1990-01-01" not in response.text
    assert "Ｗａｎｇ" not in response.text


async def test_a_verify_grant_does_not_allow_reading(
    http: httpx.AsyncClient, civil: Headers, make_grant: MakeGrant
) -> None:
    await make_grant(CIVIL_AFFAIRS, ["name"], access="verify")
    response = await http.post(
        f"{PERSON}/records:query",
        json={"subject_ids": [valid_ric(serial=402)], "fields": ["name"]},
        headers=read_headers(civil),
    )
    assert response.status_code == 403


async def test_a_read_grant_allows_verifying_and_unknown_subjects_match_nothing(
    http: httpx.AsyncClient, civil: Headers, make_grant: MakeGrant
) -> None:
    await make_grant(CIVIL_AFFAIRS, ["name"])
    response = await _verify(http, read_headers(civil), valid_ric(serial=403), {"name": "无名"})
    assert response.json()["found"] is False
    assert response.json()["matches"] == {"name": False}


async def test_verify_without_a_grant_or_purpose_is_refused(http: httpx.AsyncClient, civil: Headers) -> None:
    subject = valid_ric(serial=404)
    assert (await _verify(http, read_headers(civil), subject, {"name": "x"})).json()[
        "code"
    ] == "unauthorized_field"
    assert (await _verify(http, civil, subject, {"name": "x"})).json()["code"] == "purpose_required"
