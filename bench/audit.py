"""Audit: appends under concurrent requests, chaining, subject-access search over a large log, verification.

1. Appends: two processes, as the hub's two API processes, each with ``appenders`` concurrent tasks that
   append an event and wait until it is durable, through the same AuditWriter every read request uses,
   against the serving hub's database; its integrator chains them meanwhile. Figures: events/s committed,
   p50/p99 time to durability, and how long the integrator needs afterwards to catch up.
2. A large log: ``events`` read events (one person each, of ``persons`` people) and the publish events of
   loading those people (2,000 people each) generated in PostgreSQL and queued; the hub's integrator chains
   them all (events/s).
3. Subject-access search: ``POST /v1/audit/subjects:accesses`` for 200 people over HTTP, one after another,
   with an auditor's token (p50/p95).
4. Verification: ``GET /v1/audit/verify`` over the whole log (events/s).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import statistics
import time
from array import array
from typing import Any

import httpx

from bench.data import person_id
from bench.hub import CIVIL_AFFAIRS, Hub, running_hub

AUDITOR_DEPARTMENT = "11150400MB15040895"  # the data bureau
PUBLISH_CHUNK = 2000

# The people by number, in a table: a subscript into a parameter array of a million ids costs the whole
# array per event.
_PEOPLE = """
CREATE TEMPORARY TABLE bench_people AS
SELECT id, n - 1 AS n FROM unnest($1::text[]) WITH ORDINALITY AS p(id, n)
"""
_GENERATE = """
WITH made AS (
    INSERT INTO audit_events (occurred_at, action, outcome, department, client_id, purpose, resource,
                              subject_ids, elements, request_id, details)
    SELECT now() - interval '1 hour' - ($2 - g) * interval '1 millisecond',
           CASE WHEN g % 50 = 0 THEN 'records.verify' ELSE 'records.query' END, 'allowed', $3, 'cl_bench',
           'social-assistance-eligibility', 'population.person',
           ARRAY[p.id], ARRAY['name', 'sex', 'birth_date'],
           md5(g::text), '{"found": 1, "not_found": 0}'::jsonb
    FROM generate_series($4::bigint, $5::bigint) AS g
    JOIN pg_temp.bench_people AS p ON p.n = (g * 7919) % $1
    RETURNING id, occurred_at
)
INSERT INTO audit_pending (event_id, occurred_at) SELECT id, occurred_at FROM made
"""
_GENERATE_PUBLISHES = """
WITH made AS (
    INSERT INTO audit_events (occurred_at, action, outcome, department, client_id, resource, subject_ids,
                              elements, request_id, details)
    SELECT now() - interval '2 hours' + c * interval '1 millisecond', 'records.publish', 'allowed', $2,
           'cl_bench_publisher', 'population.person', $1::text[], ARRAY['name', 'sex', 'birth_date'],
           md5('publish' || c), jsonb_build_object('batch_lines', c * 2000)
    FROM generate_series(1, $3::int) AS c
    RETURNING id, occurred_at
)
INSERT INTO audit_pending (event_id, occurred_at) SELECT id, occurred_at FROM made
"""


def _append_process(url: str, appenders: int, seconds: float, queue: Any) -> None:
    """One process appending like an API process under load: each task waits for its event to be durable."""
    import uvloop

    from exchange.audit.service import Event
    from exchange.audit.writer import AuditWriter
    from exchange.db.pool import create_pool

    async def main() -> tuple[bytes, int]:
        pool = await create_pool(url, 8)
        writer = AuditWriter(pool)
        latencies: array[float] = array("d")
        stop = time.perf_counter() + seconds

        async def appender(n: int) -> None:
            k = n
            while time.perf_counter() < stop:
                event = Event(
                    action="bench.append",
                    department=CIVIL_AFFAIRS,
                    client_id="cl_bench",
                    purpose="social-assistance-eligibility",
                    resource="population.person",
                    subject_ids=[person_id(k % 100_000)],
                    elements=["name", "sex", "birth_date"],
                    details={"found": 1, "not_found": 0},
                )
                started = time.perf_counter()
                await writer.append(event)
                latencies.append(time.perf_counter() - started)
                k += appenders

        await asyncio.gather(*(appender(n) for n in range(appenders)))
        await writer.close()
        await pool.close()
        return latencies.tobytes(), len(latencies)

    raw, count = uvloop.run(main())
    queue.put((raw, count))


def _appends(hub: Hub, appenders: int, seconds: float, processes: int = 2) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_append_process, args=(hub.dsn, appenders, seconds, queue))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    latencies: array[float] = array("d")
    for _ in workers:
        raw, _ = queue.get()
        part: array[float] = array("d")
        part.frombytes(raw)
        latencies.extend(part)
    for worker in workers:
        worker.join()
    appended = int(hub.sql("SELECT count(*) FROM audit_events WHERE action = 'bench.append'"))
    caught_up = _wait_chained(hub)
    ordered = sorted(latencies)
    return {
        "append_processes": processes,
        "appenders_per_process": appenders,
        "appended_events": appended,
        "append_events_per_s": round(len(ordered) / seconds),
        "append_p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
        "append_p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 2),
        "integrator_caught_up_after_s": round(caught_up, 1),
    }


def _wait_chained(hub: Hub, timeout: float = 3600) -> float:
    """Seconds until the integrator has chained everything queued."""
    started = time.perf_counter()
    while int(hub.sql("SELECT count(*) FROM audit_pending")):
        if time.perf_counter() - started > timeout:
            raise RuntimeError("the integrator did not catch up")
        time.sleep(0.2)
    return time.perf_counter() - started


def _generate(hub: Hub, events: int, persons: int) -> float:
    """Write the large log straight into PostgreSQL (queued for chaining); the seconds it took."""
    import asyncpg

    ids = [person_id(n) for n in range(persons)]

    async def write() -> None:
        connection = await asyncpg.connect(hub.dsn)
        try:
            await connection.execute(_PEOPLE, ids)
            await connection.execute("ANALYZE pg_temp.bench_people")
            step = 500_000
            for start in range(1, events + 1, step):
                end = min(events, start + step - 1)
                await connection.execute(_GENERATE, persons, events, CIVIL_AFFAIRS, start, end)
            for start in range(0, persons, PUBLISH_CHUNK):
                chunk = ids[start : start + PUBLISH_CHUNK]
                await connection.execute(_GENERATE_PUBLISHES, chunk, "11150400MB1234567Q", 1)
            await connection.execute("ANALYZE audit_events")
        finally:
            await connection.close()

    started = time.perf_counter()
    asyncio.run(write())
    return time.perf_counter() - started


def _searches(hub: Hub, token: str, persons: int, count: int = 200) -> list[float]:
    rng = random.Random(11)
    headers = {"Authorization": f"Bearer {token}"}
    latencies = []
    with httpx.Client(base_url=hub.base, headers=headers, timeout=60) as client:
        for _ in range(count):
            body = {"subject_id": person_id(rng.randrange(persons)), "limit": 200}
            started = time.perf_counter()
            response = client.post("/v1/audit/subjects:accesses", json=body)
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()
            assert response.json()["items"], "every generated person was read"
    return latencies


def run(
    events: int, persons: int | None = None, appenders: int = 64, seconds: float = 10.0
) -> dict[str, Any]:
    persons = persons or max(1000, events // 10)
    with running_hub() as hub:
        token = hub.token(AUDITOR_DEPARTMENT, "auditor")
        figures: dict[str, Any] = {"log_events": events, "persons": persons}
        figures |= _appends(hub, appenders, seconds)
        generated = _generate(hub, events, persons)
        chained = _wait_chained(hub)
        total = int(hub.sql("SELECT count(*) FROM audit_chain"))
        searches = sorted(_searches(hub, token, persons))
        meter = hub.cpu()
        started = time.perf_counter()
        verified = httpx.get(
            f"{hub.base}/v1/audit/verify", headers={"Authorization": f"Bearer {token}"}, timeout=None
        )
        verify_seconds = time.perf_counter() - started
        verify_cpu = meter.stop()
        verified.raise_for_status()
        result = verified.json()
        size = hub.sql(
            # a partitioned table has no storage of its own: its size is its partitions'
            "SELECT pg_size_pretty(sum(pg_total_relation_size(relid))) FROM pg_partition_tree('audit_events')"
        )
    assert result["ok"], result
    figures |= {
        "generated_in_s": round(generated, 1),
        "chained_events_per_s": round((events + persons // PUBLISH_CHUNK) / chained) if chained else None,
        "chain_length": total,
        "audit_events_size": size,
        "subject_search_p50_ms": round(statistics.median(searches) * 1000, 1),
        "subject_search_p95_ms": round(searches[int(len(searches) * 0.95)] * 1000, 1),
        "verify_seconds": round(verify_seconds, 1),
        "verified_events_per_s": round(result["checked"] / verify_seconds),
        "verify_cpu_s": verify_cpu,
    }
    return figures
