"""Batch publish: N population records as NDJSON over HTTP, then the same records again (unchanged).

Floor: PostgreSQL COPY of the same rows (subject id, fields as jsonb) into a bare table, same server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import orjson

from bench.data import person_lines
from bench.hub import POLICE, Hub, running_hub


async def _copy_floor(url: str, count: int) -> float:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute("CREATE TEMP TABLE floor (subject_id text, fields jsonb)")
        rows = (
            (line_obj["subject_id"], orjson.dumps(line_obj["fields"]).decode())
            for line_obj in map(orjson.loads, person_lines(count))
        )
        started = time.perf_counter()
        await connection.copy_records_to_table("floor", records=list(rows), columns=["subject_id", "fields"])
        return count / (time.perf_counter() - started)
    finally:
        await connection.close()


def send_lines(
    hub: Hub, token: str, lines: Iterator[bytes], count: int
) -> tuple[float, dict[str, Any], float]:
    """POST the lines as one streamed batch; records per second, the batch answer, peak hub memory."""
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, hub.memory_mb())
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    async def body() -> AsyncIterator[bytes]:
        batch: list[bytes] = []
        for line in lines:
            batch.append(line)
            if len(batch) == 1000:
                yield b"".join(batch)
                batch.clear()
        if batch:
            yield b"".join(batch)

    async def send() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=None) as client:
            response = await client.post(
                f"{hub.base}/v1/resources/population.person/records:batch",
                content=body(),
                headers={"Authorization": f"Bearer {token}", "content-type": "application/x-ndjson"},
            )
            response.raise_for_status()
            return dict(response.json())

    started = time.perf_counter()
    result = asyncio.run(send())
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    return count / elapsed, result, peak


def run(count: int) -> dict[str, Any]:
    with running_hub(workers=2) as hub:
        token = hub.token(POLICE, "publisher")
        first_rate, first, first_peak = send_lines(hub, token, person_lines(count), count)
        again_rate, again, again_peak = send_lines(hub, token, person_lines(count), count)
        floor = asyncio.run(_copy_floor(hub.env["EXCHANGE_DATABASE_URL"], min(count, 1_000_000)))
    assert first["accepted"] == count and first["applied_versions"] == count, first
    assert again["applied_versions"] == 0, again
    return {
        "records": count,
        "first_load_records_per_s": round(first_rate),
        "republish_unchanged_records_per_s": round(again_rate),
        "copy_floor_rows_per_s": round(floor),
        "ratio_to_floor": round(first_rate / floor, 3),
        "hub_peak_memory_mb": round(max(first_peak, again_peak)),
    }
