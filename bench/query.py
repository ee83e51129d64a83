"""Governed read: records:query for one subject and three elements, with token, purpose, grant and audit.

Load comes from separate processes on loopback, each an asyncio client holding its share of connections.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import time
from typing import Any

import httpx

from bench.data import person_id, person_lines
from bench.hub import CIVIL_AFFAIRS, POLICE, running_hub

PURPOSE = "social-assistance-eligibility"


def _load(base: str, token: str, subjects: int, connections: int, seconds: float, queue: Any) -> None:
    async def worker(client: httpx.AsyncClient, latencies: list[float], stop: float, offset: int) -> int:
        n = offset
        errors = 0
        while time.perf_counter() < stop:
            body = {"subject_ids": [person_id(n % subjects)], "fields": ["name", "sex", "birth_date"]}
            started = time.perf_counter()
            response = await client.post("/v1/resources/population.person/records:query", json=body)
            latencies.append(time.perf_counter() - started)
            errors += response.status_code != 200
            n += 7
        return errors

    async def main() -> None:
        headers = {"Authorization": f"Bearer {token}", "Exchange-Purpose": PURPOSE}
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:
            latencies: list[float] = []
            stop = time.perf_counter() + seconds
            errors = await asyncio.gather(*(worker(client, latencies, stop, i) for i in range(connections)))
        queue.put((latencies, sum(errors)))

    asyncio.run(main())


def run(seconds: float, concurrency: int, subjects: int = 10_000) -> dict[str, Any]:
    with running_hub(workers=2) as hub:
        publisher = hub.token(POLICE, "publisher")
        httpx.post(
            f"{hub.base}/v1/resources/population.person/records:batch",
            content=b"".join(person_lines(subjects)),
            headers={"Authorization": f"Bearer {publisher}", "content-type": "application/x-ndjson"},
            timeout=None,
        ).raise_for_status()
        hub.grant(CIVIL_AFFAIRS, ["name", "sex", "birth_date"], PURPOSE)
        reader = hub.token(CIVIL_AFFAIRS, "consumer")
        loaders = 2
        queue: Any = multiprocessing.Queue()
        processes = [
            multiprocessing.Process(
                target=_load, args=(hub.base, reader, subjects, concurrency // loaders, seconds, queue)
            )
            for _ in range(loaders)
        ]
        for process in processes:
            process.start()
        results = [queue.get() for _ in processes]
        for process in processes:
            process.join()
    latencies = sorted(latency for part, _ in results for latency in part)
    errors = sum(count for _, count in results)
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / seconds),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
    }
