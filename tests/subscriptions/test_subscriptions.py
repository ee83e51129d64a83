"""及时更新: change events in order, to pull feeds and signed webhooks, only under a subscribe grant."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from exchange.auth.principal import Role
from exchange.db.session import transaction
from tests.conftest import MakeClient, TokenFor
from tests.fixtures_departments import CIVIL_AFFAIRS, Headers, MakeGrant, publish, read_headers
from tests.identifiers import valid_ric
from tests.processes import EXCHANGE, hub_env
from tests.subscriptions.factories import ELEMENTS, arrived, events, person, subscribe
from tests.subscriptions.receiver import receiving

pytestmark = pytest.mark.usefixtures("catalog_loaded")


@pytest.mark.usefixtures("granted")
async def test_a_pull_feed_gives_every_event_once_in_order_with_granted_values_only(
    http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    created = await subscribe(http, civil, {"mode": "pull"}, payload="full")
    assert created.status_code == 201, created.text
    subscription = created.json()["id"]
    assert created.json()["secret"] is None
    subjects = [await person(http, police, 600 + i, f"居民{i}", "150402001") for i in range(5)]
    await publish(http, police, {"subject_id": subjects[0], "fields": {"name": "改名", "sex": "1"}})

    first = await events(http, civil, subscription, limit=4)
    assert [e["data"]["subject_id"] for e in first["events"]] == subjects[:4]
    event = first["events"][0]
    assert (event["specversion"], event["type"]) == ("1.0", "cn.gov.exchange.record.changed")
    assert event["data"]["values"] == {"name": "居民0", "household_division": "150402001"}
    again = await events(http, civil, subscription, limit=4)
    assert again["events"] == first["events"], "nothing is acknowledged yet"
    ack = await http.post(
        f"/v1/subscriptions/{subscription}/ack", json={"cursor": first["next_cursor"]}, headers=civil
    )
    assert ack.status_code == 200, ack.text
    rest = await events(http, civil, subscription, limit=10)
    assert [e["data"]["subject_id"] for e in rest["events"]] == [subjects[4], subjects[0]]
    last = rest["events"][-1]["data"]
    assert (last["version"], last["elements"], last["values"]) == (2, ["name"], {"name": "改名"})
    assert "sex" not in str(rest), "an element the subscription has no grant for never leaves"
    await http.post(
        f"/v1/subscriptions/{subscription}/ack", json={"cursor": rest["next_cursor"]}, headers=civil
    )
    assert (await events(http, civil, subscription))["events"] == []
    backwards = await http.post(
        f"/v1/subscriptions/{subscription}/ack", json={"cursor": first["next_cursor"]}, headers=civil
    )
    assert backwards.status_code == 422


@pytest.mark.usefixtures("granted")
async def test_thin_events_filters_and_long_poll(
    http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    created = await subscribe(
        http, civil, {"mode": "pull"}, filter=[{"element": "household_division", "prefix": "150402"}]
    )
    subscription = created.json()["id"]
    inside = await person(http, police, 620, "甲", "150402003")
    await person(http, police, 621, "乙", "150403001")
    await publish(http, police, {"subject_id": inside, "fields": {"household_division": "150404002"}})
    page = await events(http, civil, subscription)
    assert [(e["data"]["subject_id"], e["data"]["elements"]) for e in page["events"]] == [
        (inside, ELEMENTS),
        (inside, ["household_division"]),
    ], "a subscriber to 150402 hears of arrivals and of moves away, and of nobody else"
    assert "values" not in page["events"][0]["data"]

    async def later() -> None:
        await asyncio.sleep(0.5)
        await person(http, police, 622, "丙", "150402009")

    waiting = asyncio.create_task(later())
    polled = await events(http, civil, subscription, after=page["next_cursor"], wait=10)
    await waiting
    assert [e["data"]["subject_id"] for e in polled["events"]] == [valid_ric(serial=622)]


@pytest.mark.usefixtures("granted")
async def test_a_feed_read_without_a_well_formed_purpose_is_a_declared_400(
    http: httpx.AsyncClient, civil: Headers
) -> None:
    subscription = (await subscribe(http, civil, {"mode": "pull"})).json()["id"]
    feed = f"/v1/subscriptions/{subscription}/events"
    missing = await http.get(feed, headers=civil)
    assert (missing.status_code, missing.json()["code"]) == (400, "purpose_required")
    malformed = await http.get(feed, headers=civil | {"Exchange-Purpose": "Social Assistance"})
    assert (malformed.status_code, malformed.json()["code"]) == (400, "invalid_purpose")
    spec = (await http.get("/openapi.json")).json()
    assert "400" in spec["paths"]["/v1/subscriptions/{subscription_id}/events"]["get"]["responses"]


async def test_no_subscription_without_a_subscribe_grant_and_revocation_stops_it(
    app: Any, http: httpx.AsyncClient, police: Headers, civil: Headers, make_grant: MakeGrant
) -> None:
    refused = await subscribe(http, civil, {"mode": "pull"})
    assert (refused.status_code, refused.json()["code"]) == (403, "unauthorized_field")
    await make_grant(CIVIL_AFFAIRS, ELEMENTS)  # a read grant is not a subscribe grant
    assert (await subscribe(http, civil, {"mode": "pull"})).status_code == 403
    grant = await make_grant(CIVIL_AFFAIRS, ELEMENTS, access="subscribe")
    subscription = (await subscribe(http, civil, {"mode": "pull"})).json()["id"]
    await person(http, police, 630, "丁", "150402001")
    async with transaction(app.state.sessionmaker) as session:
        await session.execute(text("UPDATE grants SET revoked_at = now() WHERE id = :id"), {"id": grant})
    stopped = await http.get(f"/v1/subscriptions/{subscription}/events", headers=read_headers(civil))
    assert stopped.status_code == 403
    assert "丁" not in stopped.text
    state = await http.get(f"/v1/subscriptions/{subscription}", headers=civil)
    assert state.json()["status"] == "suspended"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"delivery": {"mode": "webhook", "url": "http://10.0.0.8/hook"}}, "delivery.url"),
        ({"delivery": {"mode": "webhook", "url": "ftp://example.org/x"}}, "delivery.url"),
        ({"filter": [{"element": "sex", "equals": "1"}]}, "filter.0.element"),
        ({"filter": [{"element": "name", "equals": 2**70}]}, "filter.0.equals"),
        ({"elements": ["name", "name"]}, "elements"),
        ({"purpose": "no-such-purpose"}, "purpose"),
    ],
)
@pytest.mark.usefixtures("granted")
async def test_bad_subscriptions_are_refused(
    http: httpx.AsyncClient, civil: Headers, body: dict[str, Any], param: str
) -> None:
    response = await subscribe(http, civil, body.pop("delivery", {"mode": "pull"}), **body)
    assert response.status_code == 422, response.text
    assert param in [p["name"] for p in response.json()["invalid_params"]]


@pytest.mark.usefixtures("granted", "deliverers")
async def test_webhooks_arrive_in_order_signed_once_each_and_survive_an_outage(
    http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    with receiving() as receiver:
        created = await subscribe(http, civil, {"mode": "webhook", "url": receiver.url}, payload="full")
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        assert secret.startswith("whsec_")
        subscription = created.json()["id"]
        subjects = [await person(http, police, 640 + i, f"居民{i}", "150402001") for i in range(6)]
        bodies = await arrived(receiver, 6)
        assert [b["data"]["subject_id"] for b in bodies] == subjects
        webhook = Webhook(secret)
        for headers, body in receiver.received:
            assert webhook.verify(body, headers)["id"] == headers["webhook-id"]
        assert len({h["webhook-id"] for h, _ in receiver.received}) == 6

        receiver.status = 503
        later = [await person(http, police, 650 + i, f"后来{i}", "150402001") for i in range(3)]
        await asyncio.sleep(1.0)
        receiver.status = 200
        bodies = await arrived(receiver, 9)
        assert [b["data"]["subject_id"] for b in bodies] == subjects + later, "in order, after the outage"
        for _ in range(100):  # the receiver sees a delivery before the deliverer has recorded its answer
            log = await http.get(f"/v1/subscriptions/{subscription}/deliveries", headers=civil)
            outcomes = [item["outcome"] for item in log.json()["items"]]
            if outcomes.count("delivered") == 9:
                break
            await asyncio.sleep(0.1)
        assert outcomes.count("delivered") == 9
        assert "failed" in outcomes


@pytest.mark.retries("0,0.1,0.2")
@pytest.mark.usefixtures("granted", "deliverers")
async def test_dead_letters_pause_the_endpoint_and_replay_sends_them_again(
    http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    with receiving() as receiver:
        receiver.status = 500
        created = (await subscribe(http, civil, {"mode": "webhook", "url": receiver.url})).json()
        subjects = [await person(http, police, 680 + i, f"辛{i}", "150402001") for i in range(4)]
        for _ in range(200):
            state = (await http.get(f"/v1/subscriptions/{created['id']}", headers=civil)).json()
            if state["status"] == "paused":
                break
            await asyncio.sleep(0.1)
        assert state["status_reason"] == "3 events in a row could not be delivered"
        log = (await http.get(f"/v1/subscriptions/{created['id']}/deliveries", headers=civil)).json()
        assert [i["outcome"] for i in log["items"]].count("dead") == 3
        receiver.status = 200
        replayed = await http.post(
            f"/v1/subscriptions/{created['id']}:replay", json={"after": created["cursor"]}, headers=civil
        )
        assert replayed.status_code == 200, replayed.text
        await http.post(f"/v1/subscriptions/{created['id']}:resume", headers=civil)
        bodies = await arrived(receiver, 4)
        assert [b["data"]["subject_id"] for b in bodies] == subjects


@pytest.mark.usefixtures("granted", "deliverers")
async def test_revoking_the_grant_stops_webhooks_at_once(
    app: Any, http: httpx.AsyncClient, police: Headers, civil: Headers, make_grant: MakeGrant
) -> None:
    with receiving() as receiver:
        subscription = (await subscribe(http, civil, {"mode": "webhook", "url": receiver.url})).json()["id"]
        await person(http, police, 660, "戊", "150402001")
        assert len(await arrived(receiver, 1)) == 1
        async with transaction(app.state.sessionmaker) as session:
            await session.execute(text("UPDATE grants SET revoked_at = now()"))
        await person(http, police, 661, "己", "150402001")
        await asyncio.sleep(1.5)
        assert len(receiver.received) == 1
        state = await http.get(f"/v1/subscriptions/{subscription}", headers=civil)
        assert state.json()["status"] == "suspended"


async def test_a_feed_never_skips_an_event_whose_transaction_commits_late(
    app: Any, http: httpx.AsyncClient, civil: Headers, granted: None
) -> None:
    """Two writers: the one that took its sequence number first commits last. A reader that paged by
    sequence alone would move past the late event; ordering by writing transaction never does."""
    subscription = (await subscribe(http, civil, {"mode": "pull"})).json()["id"]
    insert = text(
        "INSERT INTO change_events (resource_code, subject_id, kind, version, elements, recorded_at, fields) "
        "VALUES ('population.person', :subject, 'record.changed', 1, ARRAY['name'], now(), '{}')"
    )
    async with app.state.engine.connect() as early, app.state.engine.connect() as late:
        await early.execute(insert, {"subject": "early"})  # takes the smaller seq and txid, commits last
        await late.execute(insert, {"subject": "late"})
        await late.commit()
        seen = await events(http, civil, subscription)
        assert seen["events"] == [], "nothing is handed out while an older writer may still commit"
        await early.commit()
    page = await events(http, civil, subscription, after=seen["next_cursor"])
    assert [e["data"]["subject_id"] for e in page["events"]] == ["early", "late"]


async def test_a_worker_killed_mid_delivery_loses_nothing(
    http: httpx.AsyncClient, database_url: str, tmp_path: Any, police: Headers, civil: Headers, granted: None
) -> None:
    """A real `exchange worker` is SIGKILLed while an endpoint is slow to answer; a second one delivers
    the interrupted event again (same webhook-id) and everything after it, in order."""
    env = hub_env(
        database_url=database_url,
        data_dir=str(tmp_path / "data"),
        webhook_allowed_networks="127.0.0.0/8",
        webhook_retry_schedule="0,0.2,0.2",
    )
    with receiving() as receiver:
        receiver.delay = 3.0
        created = await subscribe(http, civil, {"mode": "webhook", "url": receiver.url})
        assert created.status_code == 201, created.text
        subjects = [await person(http, police, 670 + i, f"庚{i}", "150402001") for i in range(4)]
        first = await asyncio.create_subprocess_exec(EXCHANGE, "worker", env=env, start_new_session=True)
        try:
            for _ in range(300):
                if receiver.received:
                    break
                await asyncio.sleep(0.1)
            assert receiver.received, "the first worker never posted"
            os.killpg(first.pid, signal.SIGKILL)
        finally:
            await asyncio.wait_for(first.wait(), 10)
        receiver.delay = 0.0
        second = await asyncio.create_subprocess_exec(EXCHANGE, "worker", env=env, start_new_session=True)
        try:
            for _ in range(300):
                if {b["data"]["subject_id"] for b in receiver.bodies()} >= set(subjects):
                    break
                await asyncio.sleep(0.1)
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            await asyncio.wait_for(second.wait(), 10)
    ids = [headers["webhook-id"] for headers, _ in receiver.received]
    order = [b["data"]["subject_id"] for b in receiver.bodies()]
    assert order[0] == order[1] == subjects[0], "the interrupted event is sent again"
    assert ids[0] == ids[1], "with the same webhook-id, so the receiver can de-duplicate"
    assert order[1:] == subjects


@pytest.mark.usefixtures("granted")
async def test_subscribers_hear_when_a_value_comes_under_review_and_when_it_is_settled(
    app: Any, http: httpx.AsyncClient, police: Headers, civil: Headers, health: Headers
) -> None:
    subscription = (await subscribe(http, civil, {"mode": "pull"})).json()["id"]
    subject = await person(http, police, 690, "壬", "150402001")
    report = await http.post(
        "/v1/discrepancies",
        json={
            "resource": "population.person",
            "subject_id": subject,
            "element": "name",
            "value": "任",
            "note": "医保档案",
        },
        headers=health,
    )
    discrepancy = report.json()["discrepancy"]["id"]
    await http.post(
        f"/v1/discrepancies/{discrepancy}:resolve",
        json={"outcome": "confirmed", "note": "户籍档案为准"},
        headers=police,
    )
    page = await events(http, civil, subscription)
    assert [(e["type"], e["data"]["elements"]) for e in page["events"]] == [
        ("cn.gov.exchange.record.changed", ELEMENTS),
        ("cn.gov.exchange.record.under_review", ["name"]),
        ("cn.gov.exchange.record.review_settled", ["name"]),
    ]
    async with app.state.sessionmaker() as session:
        audited = await session.scalar(
            text("SELECT subject_ids FROM audit_events WHERE action = 'subscriptions.events'")
        )
    assert audited == [subject], "the page that carried the events is in the audit log"


@pytest.mark.usefixtures("granted", "deliverers")
async def test_an_endpoint_answering_410_gone_is_disabled(
    http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    with receiving() as receiver:
        receiver.status = 410
        created = (await subscribe(http, civil, {"mode": "webhook", "url": receiver.url})).json()
        await person(http, police, 695, "癸", "150402001")
        for _ in range(100):
            state = (await http.get(f"/v1/subscriptions/{created['id']}", headers=civil)).json()
            if state["status"] != "active":
                break
            await asyncio.sleep(0.1)
        assert (state["status"], state["status_reason"]) == ("disabled", "the endpoint answered 410 Gone")
        resumed = await http.post(f"/v1/subscriptions/{created['id']}:resume", headers=civil)
        assert resumed.status_code == 200, "an operator may resume it once the endpoint is back"


@pytest.mark.usefixtures("granted")
async def test_a_subjects_access_view_lists_the_feed_that_carried_their_data(
    http: httpx.AsyncClient, police: Headers, civil: Headers, make_client: MakeClient, token_for: TokenFor
) -> None:
    created = await subscribe(http, civil, {"mode": "pull"}, payload="full")
    subject = await person(http, police, 690, "居民", "150402001")
    carried = await events(http, civil, created.json()["id"])
    assert [e["data"]["subject_id"] for e in carried["events"]] == [subject]
    auditor = await token_for(await make_client(Role.auditor))
    view = await http.post("/v1/audit/subjects:accesses", json={"subject_id": subject}, headers=auditor)
    assert [(a["action"], a["department"]) for a in view.json()["items"]] == [
        ("subscriptions.events", CIVIL_AFFAIRS)
    ]
