"""Abuse controls: rate limits per client and per address answer 429 with Retry-After; disabling a client
cuts it off at once; secrets and personal identifiers never reach the logs."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from exchange.auth.principal import Role
from exchange.db.session import transaction
from exchange.departments import service as departments
from exchange.ratelimit import ClientBuckets
from tests.conftest import MakeClient, TokenFor
from tests.fixtures_departments import CIVIL_AFFAIRS, POLICE, Headers, MakeGrant, publish, query, read_headers
from tests.identifiers import valid_ric


def test_a_bucket_allows_bursts_then_the_rate() -> None:
    buckets = ClientBuckets(rate=2, burst=4)
    assert [buckets.take("a", now=0.0) for _ in range(4)] == [None] * 4
    assert buckets.take("a", now=0.0) == pytest.approx(0.5)
    assert buckets.take("b", now=0.0) is None, "each client has its own bucket"
    assert buckets.take("a", now=0.5) is None
    assert buckets.take("a", now=0.5) is not None
    assert ClientBuckets(rate=0, burst=0).take("a") is None, "0 turns the limit off"


async def test_a_client_over_its_rate_gets_429_and_others_do_not(
    app: Any, http: httpx.AsyncClient, make_client: MakeClient, token_for: TokenFor
) -> None:
    busy = await token_for(await make_client(Role.publisher))
    calm = await token_for(await make_client(Role.publisher))
    app.state.client_buckets = ClientBuckets(rate=1, burst=3)
    answers = [(await http.get("/v1/me", headers=busy)).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    refused = await http.get("/v1/me", headers=busy)
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert (await http.get("/v1/me", headers=calm)).status_code == 200


async def test_token_requests_are_limited_per_address(
    app: Any, http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    app.state.settings.token_rate_per_minute = 3
    credentials = await make_client(Role.consumer)
    asked = [
        await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": credentials.basic},
        )
        for _ in range(4)
    ]
    assert [a.status_code for a in asked] == [200, 200, 200, 429]
    assert int(asked[-1].headers["retry-after"]) >= 1


async def test_disabling_a_client_cuts_it_off_at_once(
    app: Any, http: httpx.AsyncClient, make_client: MakeClient, token_for: TokenFor
) -> None:
    credentials = await make_client(Role.publisher)
    headers = await token_for(credentials)
    assert (await http.get("/v1/me", headers=headers)).status_code == 200
    async with transaction(app.state.sessionmaker) as session:
        await departments.disable_client(session, credentials.department, credentials.client_id)
    assert (await http.get("/v1/me", headers=headers)).status_code == 401


@pytest.mark.usefixtures("catalog_loaded")
async def test_secrets_and_personal_identifiers_never_reach_the_logs(
    app: Any,
    http: httpx.AsyncClient,
    make_client: MakeClient,
    police: Headers,
    civil: Headers,
    make_grant: MakeGrant,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    credentials = await make_client(Role.publisher, department=POLICE)
    token = (
        await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": credentials.basic},
        )
    ).json()["access_token"]
    wrong = {"client_id": credentials.client_id, "client_secret": "wrong-secret-value-1234"}
    await http.post("/oauth/token", data={"grant_type": "client_credentials"} | wrong)
    await make_grant(CIVIL_AFFAIRS, ["name"])
    subject = valid_ric(serial=77)
    await publish(http, police, {"subject_id": subject, "fields": {"name": "隐私姓名"}})
    await query(http, read_headers(civil), [subject], ["name"])
    await query(http, read_headers(civil), [valid_ric(serial=78) + "X"], ["name"])  # refused
    subscription = await http.post(
        "/v1/subscriptions",
        json={
            "resource": "population.person",
            "elements": ["name"],
            "purpose": "social-assistance-eligibility",
            "delivery": {"mode": "webhook", "url": "http://127.0.0.1:9/hook"},
        },
        headers=civil,
    )
    # A failure deep in the database, whose error message would carry the statement's parameters.
    async with transaction(app.state.sessionmaker) as session:
        await session.execute(text("ALTER TABLE audit_pending ADD CONSTRAINT closed CHECK (false) NOT VALID"))
    assert (await query(http, read_headers(civil), [subject], ["name"])).status_code == 503

    logged = "\n".join(f"{r.getMessage()} {vars(r)} {caplog.text}" for r in caplog.records)
    assert "audit log refused" in logged, "the failure was logged, so the scan below means something"
    secrets = [credentials.client_secret or "", token, "wrong-secret-value-1234", police["Authorization"][7:]]
    if subscription.status_code == 201 and subscription.json().get("secret"):
        secrets.append(subscription.json()["secret"])
    for secret in secrets:
        assert secret
        assert secret not in logged
    for personal in [subject, "隐私姓名", valid_ric(serial=78)]:
        assert personal not in logged
