"""Governed read: `records:query` for one subject and three elements, with token, purpose, grant check and a
durable audit event, against `exchange serve` in production mode; 32 keep-alive connections from separate
processes on loopback.

Floor: a bare FastAPI + asyncpg endpoint (bench/floor.py) selecting the same rows by primary key from the same
database, served by uvicorn with the same number of processes, driven by the same load generator in the same
run. The figure that matters is the ratio.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

from bench import load
from bench.data import person_id, person_lines
from bench.hub import CIVIL_AFFAIRS, POLICE, REPO, free_port, running_hub, wait_ready

PURPOSE = "social-assistance-eligibility"
FIELDS = ["name", "sex", "birth_date"]
QUERY = "/v1/resources/population.person/records:query"


SYSTEMS = 4  # 民政's client systems sharing the load, as a department's several systems would


def query_requests(host: str, tokens: list[str], subjects: int, count: int = 4096) -> list[bytes]:
    """Queries of one person each, spread over the systems' tokens."""
    return [
        load.http_request(
            host,
            "POST",
            QUERY,
            {"authorization": f"Bearer {tokens[n % len(tokens)]}", "exchange-purpose": PURPOSE},
            {"subject_ids": [person_id(n * 7 % subjects)], "fields": FIELDS},
        )
        for n in range(count)
    ]


def _floor(database_url: str, workers: int, requests: list[bytes], **options: Any) -> load.LoadResult:
    port = free_port()
    env = os.environ | {"FLOOR_DATABASE_URL": database_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "bench.floor:create_app", "--port", str(port),
         "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{port}/docs", process)
        return load.run("127.0.0.1", port, requests, **options)
    finally:
        process.terminate()
        process.wait(timeout=30)


def run(
    seconds: float, connections: int, subjects: int = 10_000, workers: int | None = None
) -> dict[str, Any]:
    with running_hub(workers=workers) as hub:
        hub.publish(hub.token(POLICE, "publisher"), person_lines(subjects))
        hub.grant(CIVIL_AFFAIRS, FIELDS, PURPOSE)
        tokens = [hub.token(CIVIL_AFFAIRS, "consumer") for _ in range(SYSTEMS)]
        address = urlsplit(hub.base)
        requests = query_requests(address.netloc, tokens, subjects)
        options: dict[str, Any] = {"connections": connections, "seconds": seconds}
        meter = hub.cpu(load=[os.getpid()])
        served = load.run(address.hostname or "", address.port or 80, requests, **options)
        cpu = meter.stop()
        floor = _floor(hub.env["EXCHANGE_DATABASE_URL"], hub.workers, requests, **options)
        audited = hub.count_events("records.query")
    figures = served.figures()
    assert served.errors == 0, served.statuses
    assert audited >= served.requests, (audited, served.requests)
    return {
        "connections": connections,
        "workers": hub.workers,
        **figures,
        "floor_requests_per_s": round(floor.rate),
        "floor_p99_ms": round(floor.percentile(99) * 1000, 2),
        "ratio_to_floor": round(served.rate / floor.rate, 3) if floor.rate else None,
        "audit_events_written": audited,
        "cpu_s": cpu,  # API processes, database, load generator: who had the two cores
    }
