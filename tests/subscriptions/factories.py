"""Small builders for subscription stories: subscribe, publish a person, read a feed, wait for webhooks."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.fixtures_departments import Headers, publish, read_headers
from tests.identifiers import valid_ric
from tests.subscriptions.receiver import Receiver

ELEMENTS = ["name", "household_division"]


async def subscribe(
    http: httpx.AsyncClient, headers: Headers, delivery: dict[str, Any], **extra: Any
) -> httpx.Response:
    body = {
        "resource": "population.person",
        "elements": ELEMENTS,
        "purpose": "social-assistance-eligibility",
        "delivery": delivery,
    } | extra
    return await http.post("/v1/subscriptions", json=body, headers=headers)


async def person(http: httpx.AsyncClient, police: Headers, serial: int, name: str, division: str) -> str:
    subject = valid_ric(serial=serial)
    response = await publish(
        http, police, {"subject_id": subject, "fields": {"name": name, "household_division": division}}
    )
    assert response.status_code == 200, response.text
    return subject


async def events(http: httpx.AsyncClient, civil: Headers, subscription: str, **params: Any) -> dict[str, Any]:
    response = await http.get(
        f"/v1/subscriptions/{subscription}/events", params=params, headers=read_headers(civil)
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def arrived(receiver: Receiver, count: int) -> list[dict[str, Any]]:
    for _ in range(200):
        if len(receiver.received) >= count:
            break
        await asyncio.sleep(0.1)
    return receiver.bodies()
