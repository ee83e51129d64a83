"""Console pages an officer waits for: the dashboard (statistics over every record and the audit log), the
catalogue, an audit search and a data-subject lookup, timed one after another like a person clicking."""

from __future__ import annotations

import re
import statistics
import subprocess
import time
from typing import Any

import httpx

from bench.data import person_id, person_lines
from bench.hub import EXCHANGE, POLICE, REPO, running_hub

DATA_BUREAU = "11150400MB15040895"
PASSWORD = "bench-password-0123"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _officer(env: dict[str, str]) -> None:
    subprocess.run(
        [EXCHANGE, "users", "create", "bench.officer", "--department", DATA_BUREAU, "--role", "steward",
         "--role", "auditor", "--name", "基准测试", "--password-stdin"],
        input=PASSWORD + "\n", env=env, cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip


def _signed_in(base: str) -> tuple[httpx.Client, str, float]:
    client = httpx.Client(base_url=base, timeout=120)
    form = client.get("/console/sign-in")
    token = CSRF.search(form.text)
    assert token
    client.post(
        "/console/sign-in",
        data={"username": "bench.officer", "password": PASSWORD, "csrf_token": token.group(1)},
    )
    started = time.perf_counter()
    page = client.get("/console")  # the first dashboard measures the quality figures
    first = time.perf_counter() - started
    session_token = CSRF.search(page.text)
    assert page.status_code == 200 and session_token, "the officer could not sign in"
    return client, session_token.group(1), first


def _timed(call: Any, rounds: int) -> dict[str, float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = call()
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    times.sort()
    return {"median_ms": round(statistics.median(times) * 1000, 1), "max_ms": round(times[-1] * 1000, 1)}


def run(records: int, rounds: int = 10) -> dict[str, Any]:
    with running_hub(workers=1) as hub:
        publisher = hub.token(POLICE, "publisher")
        httpx.post(
            f"{hub.base}/v1/resources/population.person/records:batch",
            content=b"".join(person_lines(records)),
            headers={"Authorization": f"Bearer {publisher}", "content-type": "application/x-ndjson"},
            timeout=None,
        ).raise_for_status()
        _officer(hub.env)
        client, csrf, first = _signed_in(hub.base)
        try:
            figures: dict[str, Any] = {
                "records": records,
                "rounds": rounds,
                "dashboard_measuring_quality_ms": round(first * 1000, 1),
            }
            pages = {
                "dashboard": lambda: client.get("/console"),
                "catalogue": lambda: client.get("/console/catalog/population.person"),
                "audit_search": lambda: client.post(
                    "/console/audit", data={"csrf_token": csrf, "action": "records.publish", "limit": "200"}
                ),
                "subject_lookup": lambda: client.post(
                    "/console/audit/subject", data={"csrf_token": csrf, "subject_id": person_id(records // 2)}
                ),
            }
            for name, call in pages.items():
                for key, value in _timed(call, rounds).items():
                    figures[f"{name}_{key}"] = value
        finally:
            client.close()
    return figures
