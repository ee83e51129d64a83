"""Webhook delivery in pages: one audit event per page, the position moving only with a recorded 2xx (and
not at all when the audit log refuses), failures mid-page, redirects, Retry-After, and one deliverer at a
time per subscription."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from exchange.db.locks import advisory_key
from exchange.db.session import transaction
from exchange.subscriptions import repository
from tests.fixtures_departments import Headers
from tests.subscriptions.factories import arrived, person, subscribe
from tests.subscriptions.receiver import Receiver, receiving

pytestmark = pytest.mark.usefixtures("catalog_loaded", "granted")


async def _webhook(http: httpx.AsyncClient, civil: Headers, receiver: Receiver, **extra: Any) -> str:
    created = await subscribe(http, civil, {"mode": "webhook", "url": receiver.url}, **extra)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _set_active(http: httpx.AsyncClient, civil: Headers, subscription: str, active: bool) -> None:
    action = "resume" if active else "pause"
    answer = await http.post(f"/v1/subscriptions/{subscription}:{action}", headers=civil)
    assert answer.status_code == 200, answer.text


async def _log(
    http: httpx.AsyncClient, civil: Headers, subscription: str, count: int
) -> list[dict[str, Any]]:
    """The subscription's attempts log, oldest first, once it holds ``count`` attempts."""
    for _ in range(100):
        answer = await http.get(f"/v1/subscriptions/{subscription}/deliveries", headers=civil)
        items = list(reversed(answer.json()["items"]))
        if len(items) >= count:
            break
        await asyncio.sleep(0.1)
    return items


async def _deliver_audits(app: Any) -> list[Any]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            text(
                "SELECT subject_ids, details FROM audit_events WHERE action = 'subscriptions.deliver' "
                "ORDER BY id"
            )
        )
        return list(rows)


@pytest.mark.usefixtures("deliverers")
async def test_a_page_of_events_is_one_audit_event_naming_every_subject_and_event(
    app: Any, http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    with receiving() as receiver:
        subscription = await _webhook(http, civil, receiver, payload="full")
        await _set_active(http, civil, subscription, False)
        subjects = [await person(http, police, 700 + i, f"页{i}", "150402001") for i in range(5)]
        await _set_active(http, civil, subscription, True)
        bodies = await arrived(receiver, 5)
        assert [b["data"]["subject_id"] for b in bodies] == subjects
        log = await _log(http, civil, subscription, 5)
    assert [item["outcome"] for item in log] == ["delivered"] * 5
    (audited,) = await _deliver_audits(app)
    assert audited.subject_ids == sorted(subjects)
    assert audited.details["events"] == [headers["webhook-id"] for headers, _ in receiver.received]
    assert (audited.details["delivered"], audited.details["outcome"]) == (5, "delivered")


@pytest.mark.usefixtures("deliverers")
async def test_the_position_stays_while_the_audit_log_refuses_and_the_events_go_again_after(
    app: Any, http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    async with transaction(app.state.sessionmaker) as session:
        await session.execute(
            text(
                "CREATE FUNCTION refuse_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.action = 'subscriptions.deliver' THEN RAISE EXCEPTION 'the log is full'; END IF; "
                "RETURN NEW; END $$"
            )
        )
        await session.execute(
            text(
                "CREATE TRIGGER refuse_deliveries BEFORE INSERT ON audit_events FOR EACH ROW "
                "EXECUTE FUNCTION refuse_deliveries()"
            )
        )
    with receiving() as receiver:
        subscription = await _webhook(http, civil, receiver)
        start = (await http.get(f"/v1/subscriptions/{subscription}", headers=civil)).json()["cursor"]
        # Both changes wait for one page: each attempt sends them together.
        await _set_active(http, civil, subscription, False)
        subjects = [await person(http, police, 710 + i, f"审{i}", "150402001") for i in range(2)]
        await _set_active(http, civil, subscription, True)
        await arrived(receiver, 2)
        await asyncio.sleep(0.5)
        state = (await http.get(f"/v1/subscriptions/{subscription}", headers=civil)).json()
        assert state["cursor"] == start, "no audit event, no move"
        assert await _log(http, civil, subscription, 0) == [], "nor any record of the attempts"
        first = [headers["webhook-id"] for headers, _ in receiver.received[:2]]
        async with transaction(app.state.sessionmaker) as session:
            await session.execute(text("DROP TRIGGER refuse_deliveries ON audit_events"))
        log = await _log(http, civil, subscription, 2)
    assert [item["outcome"] for item in log] == ["delivered", "delivered"]
    ids = [headers["webhook-id"] for headers, _ in receiver.received]
    assert ids[-2:] == first, "sent again with the same webhook-ids"
    assert [body["data"]["subject_id"] for body in receiver.bodies()[-2:]] == subjects
    (audited,) = await _deliver_audits(app)
    assert audited.subject_ids == sorted(subjects)


@pytest.mark.retries("0,0.2,0.5")
@pytest.mark.usefixtures("deliverers")
async def test_a_failure_mid_page_keeps_what_was_delivered_and_sends_the_rest_in_order(
    http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    with receiving() as receiver:
        subscription = await _webhook(http, civil, receiver)
        await _set_active(http, civil, subscription, False)
        subjects = [await person(http, police, 720 + i, f"断{i}", "150402001") for i in range(4)]
        receiver.script = [204, 204, 503]
        await _set_active(http, civil, subscription, True)
        bodies = await arrived(receiver, 4)
        log = await _log(http, civil, subscription, 5)
    assert [b["data"]["subject_id"] for b in bodies] == subjects
    assert [(item["outcome"], item["attempt"]) for item in log] == [
        ("delivered", 1),
        ("delivered", 1),
        ("failed", 1),
        ("delivered", 2),
        ("delivered", 1),
    ]


@pytest.mark.usefixtures("deliverers")
async def test_two_deliverers_never_post_to_one_subscription_at_once(
    http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    with receiving() as receiver:
        receiver.delay = 0.02
        await _webhook(http, civil, receiver)
        subjects = [await person(http, police, 730 + i, f"锁{i}", "150402001") for i in range(30)]
        bodies = await arrived(receiver, 30)
    assert [b["data"]["subject_id"] for b in bodies] == subjects
    assert receiver.most_in_flight == 1


@pytest.mark.usefixtures("deliverers")
async def test_redirects_are_followed_only_to_targets_that_pass_the_check(
    http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    with receiving() as moved, receiving() as new_home:
        moved.status, moved.headers = 307, {"location": new_home.url}
        subscription = await _webhook(http, civil, moved)
        first = await person(http, police, 740, "迁", "150402001")
        assert [b["data"]["subject_id"] for b in await arrived(new_home, 1)] == [first]
        moved.headers = {"location": "http://10.0.0.8/hook"}
        await person(http, police, 741, "拒", "150402001")
        log = await _log(http, civil, subscription, 2)
    assert log[0]["outcome"] == "delivered"
    assert log[1]["outcome"] == "failed"
    assert log[1]["error"].startswith("refused target http://10.0.0.8/hook")


@pytest.mark.usefixtures("deliverers")
async def test_retry_after_holds_the_next_attempt_back(
    http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    with receiving() as receiver:
        receiver.script, receiver.headers = [503], {"retry-after": "2"}
        subscription = await _webhook(http, civil, receiver)
        await person(http, police, 750, "等", "150402001")
        log = await _log(http, civil, subscription, 2)
    assert [item["outcome"] for item in log] == ["failed", "delivered"]
    waited = datetime.fromisoformat(log[1]["attempted_at"]) - datetime.fromisoformat(log[0]["attempted_at"])
    assert waited.total_seconds() >= 2, "the schedule says 0.2 s; the endpoint asked for 2"


@pytest.mark.usefixtures("deliverers")
async def test_a_filtered_webhook_hears_only_its_subjects_and_moves_past_the_others(
    http: httpx.AsyncClient, police: Headers, civil: Headers
) -> None:
    with receiving() as receiver:
        subscription = await _webhook(
            http, civil, receiver, filter=[{"element": "household_division", "prefix": "150402"}]
        )
        await person(http, police, 760, "外", "150403001")
        inside = await person(http, police, 761, "内", "150402001")
        assert [b["data"]["subject_id"] for b in await arrived(receiver, 1)] == [inside]
        await _log(http, civil, subscription, 1)
    state = (await http.get(f"/v1/subscriptions/{subscription}", headers=civil)).json()
    assert state["cursor"] == receiver.bodies()[0]["exchangecursor"]
    assert len(receiver.received) == 1


async def test_a_claim_is_one_sessions_at_a_time_under_the_shared_lock_key(
    app: Any, http: httpx.AsyncClient, database_url: str, police: Headers, civil: Headers
) -> None:
    with receiving() as receiver:
        subscription = await _webhook(http, civil, receiver)
    await person(http, police, 770, "领", "150402001")
    one, other = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    now = datetime.now(UTC)
    try:
        (claimed,) = await repository.claim(one, [], 10, now)
        assert str(claimed.subscription_id) == subscription
        assert claimed.key == advisory_key(f"deliver:{subscription}"), "the key every deliverer computes"
        assert await repository.claim(other, [], 10, now) == [], "held by the first session"
        assert await repository.claim(one, [claimed.subscription_id], 10, now) == [], "nor claimed twice"
        await repository.release(one, claimed)
        (again,) = await repository.claim(other, [], 10, now)
        assert again == claimed, "given back, the other session may take it"
    finally:
        await one.close()
        await other.close()
