"""Batch publish: N generated population records as one NDJSON batch over HTTP (validation, one-source
routing, versions, change events, audit), then the same N again (unchanged: nothing to write).

Floor: PostgreSQL's COPY of the same rows (subject id and fields as jsonb) from a file into a bare table on
the same server, in the same run. The body is written to a file first and streamed from it, so generating
it costs the measurement nothing.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from bench.data import person_lines
from bench.hub import POLICE, Hub, running_hub

READ_SIZE = 1 << 20


def write_body(path: Path, count: int) -> None:
    with path.open("wb") as out:
        for line in person_lines(count):
            out.write(line)


def _write_copy_rows(body: Path, path: Path) -> None:
    """The batch's rows as COPY text: subject id, tab, the fields as JSON (backslashes doubled)."""
    with body.open("rb") as lines, path.open("wb") as out:
        for line in lines:
            item = orjson.loads(line)
            fields = orjson.dumps(item["fields"]).replace(b"\\", b"\\\\")
            out.write(item["subject_id"].encode() + b"\t" + fields + b"\n")


async def _copy_floor(dsn: str, rows: Path, count: int) -> float:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("CREATE TABLE bench_copy_floor (subject_id text, fields jsonb)")
        started = time.perf_counter()
        await connection.copy_to_table("bench_copy_floor", source=rows, format="text")
        elapsed = time.perf_counter() - started
        await connection.execute("DROP TABLE bench_copy_floor")
        return count / elapsed
    finally:
        await connection.close()


def send_file(
    hub: Hub, token: str, body: Path, count: int, resource: str = "population.person"
) -> tuple[float, dict[str, Any], float]:
    """POST the file as one streamed batch; records per second, the batch answer, peak hub memory (MB)."""
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, hub.memory_mb())
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    async def chunks() -> AsyncIterator[bytes]:
        with body.open("rb") as source:
            while chunk := source.read(READ_SIZE):
                yield chunk

    async def send() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=None) as client:
            response = await client.post(
                f"{hub.base}/v1/resources/{resource}/records:batch",
                content=chunks(),
                headers={"Authorization": f"Bearer {token}", "content-type": "application/x-ndjson"},
            )
            response.raise_for_status()
            return dict(response.json())

    started = time.perf_counter()
    try:
        result = asyncio.run(send())
    finally:
        done.set()
        sampler.join()
    return count / (time.perf_counter() - started), result, peak


def send_lines(
    hub: Hub, token: str, lines: Iterator[bytes], count: int, resource: str = "population.person"
) -> tuple[float, dict[str, Any], float]:
    """:func:`send_file` for lines generated on the fly (written to a file first)."""
    with tempfile.TemporaryDirectory(prefix="exchange-bench-body-") as scratch:
        body = Path(scratch) / "lines.ndjson"
        with body.open("wb") as out:
            out.writelines(lines)
        return send_file(hub, token, body, count, resource)


def run(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="exchange-bench-body-") as scratch:
        body = Path(scratch) / "people.ndjson"
        write_body(body, count)
        rows = Path(scratch) / "people.copy"
        _write_copy_rows(body, rows)
        with running_hub() as hub:
            token = hub.token(POLICE, "publisher")
            meter = hub.cpu(client=[os.getpid()])
            first_rate, first, first_peak = send_file(hub, token, body, count)
            first_cpu = meter.stop()
            meter.start()
            again_rate, again, again_peak = send_file(hub, token, body, count)
            again_cpu = meter.stop()
            floor = asyncio.run(_copy_floor(hub.dsn, rows, count))
    assert first["accepted"] == count and first["applied_versions"] == count, first
    assert again["applied_versions"] == 0, again
    return {
        "records": count,
        "workers": hub.workers,
        "first_load_records_per_s": round(first_rate),
        "republish_unchanged_records_per_s": round(again_rate),
        "republish_speedup": round(again_rate / first_rate, 2),
        "copy_floor_rows_per_s": round(floor),
        "ratio_to_floor": round(first_rate / floor, 3),
        "hub_peak_memory_mb": round(max(first_peak, again_peak)),
        # CPU seconds per part (API processes, database, the sending client): what bounds each load
        "first_load_cpu_s": first_cpu,
        "republish_cpu_s": again_cpu,
    }
