"""Bitemporal history: as_of (when it was true) and known_at (what the hub knew then)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from tests.fixtures_departments import Headers, publish, query, read_headers
from tests.identifiers import valid_ric

pytestmark = pytest.mark.usefixtures("catalog_loaded")


async def _fields(http: httpx.AsyncClient, headers: Headers, subject: str, **times: str) -> dict[str, object]:
    response = await query(http, read_headers(headers), [subject], ["name", "household_address"], **times)
    assert response.status_code == 200, response.text
    records = response.json()["records"]
    return records[0]["fields"] if records else {}


async def test_reads_as_of_a_valid_time_and_as_known_at_a_record_time(
    http: httpx.AsyncClient, police: Headers
) -> None:
    subject = valid_ric(serial=301)
    await publish(
        http,
        police,
        {
            "subject_id": subject,
            "fields": {"name": "陈一", "household_address": "红山区一号"},
            "valid_from": "2020-01-01T00:00:00Z",
        },
    )
    await publish(
        http,
        police,
        {
            "subject_id": subject,
            "fields": {"household_address": "松山区二号"},
            "valid_from": "2023-06-01T00:00:00Z",
        },
    )
    await asyncio.sleep(0.05)
    before_correction = datetime.now(UTC).isoformat()
    await asyncio.sleep(0.05)
    # Learned today: the move happened in 2022, not 2023, and the person moved once more in between.
    await publish(
        http,
        police,
        {
            "subject_id": subject,
            "fields": {"household_address": "元宝山区三号"},
            "valid_from": "2021-03-01T00:00:00Z",
        },
    )

    assert await _fields(http, police, subject) == {"name": "陈一", "household_address": "松山区二号"}
    assert await _fields(http, police, subject, as_of="2020-06-01T00:00:00Z") == {
        "name": "陈一",
        "household_address": "红山区一号",
    }
    assert await _fields(http, police, subject, as_of="2022-01-01T00:00:00Z") == {
        "name": "陈一",
        "household_address": "元宝山区三号",
    }
    assert await _fields(http, police, subject, as_of="2022-01-01T00:00:00Z", known_at=before_correction) == {
        "name": "陈一",
        "household_address": "红山区一号",
    }
    assert await _fields(http, police, subject, as_of="2019-01-01T00:00:00Z") == {}


async def test_the_record_carries_its_version_and_when_its_values_became_true(
    http: httpx.AsyncClient, police: Headers
) -> None:
    subject = valid_ric(serial=302)
    await publish(
        http,
        police,
        {"subject_id": subject, "fields": {"name": "周二"}, "valid_from": "2024-05-01T08:00:00+08:00"},
    )
    await publish(
        http,
        police,
        {"subject_id": subject, "fields": {"name": "周贰"}, "valid_from": "2025-05-01T00:00:00Z"},
    )
    (record,) = (await query(http, read_headers(police), [subject], ["name"])).json()["records"]
    assert record["version"] == 2
    assert record["valid_from"].startswith("2025-05-01T00:00:00")
