"""Webhook delivery: records change at a steady rate and every change goes to each of N webhook subscribers
(fast receivers on loopback, in a process of their own), delivered by `exchange worker` processes while
`exchange serve` only serves the API.

The receivers note each event's arrival and its publish time (the CloudEvent's `time`, the hub's
`recorded_at`), so the latency figures are publish-to-delivery: outbox commit, the deliverer noticing,
its page, signing and the HTTP exchange. They also count duplicates (an event seen twice by one subscriber)
and events arriving out of order; a sample of deliveries is checked against the Standard Webhooks
signature. The run waits until every change has reached every subscriber.

`python -m bench delivery --changes 100000` (10 subscribers, 2 workers; CI runs it at smoke size).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import subprocess
import time
from array import array
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from bench.data import person_id, person_lines
from bench.hub import CIVIL_AFFAIRS, EXCHANGE, POLICE, REPO, CpuMeter, Hub, running_hub, stop_group

PURPOSE = "social-assistance-eligibility"
SAMPLE_EVERY = 997  # deliveries between two whose signature the benchmark checks
TICK_SECONDS = 0.1  # one publish batch per tick


class _Hook(asyncio.Protocol):
    """One receiver's side of a keep-alive connection: parses HTTP/1.1 requests as far as it needs and
    answers each with 204."""

    def __init__(self, tally: _Tally, subscriber: int) -> None:
        self.tally = tally
        self.subscriber = subscriber
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports subclass no asyncio class

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buffer[:end])
            length = int(_header(head, b"content-length") or 0)
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[end + 4 : total])
            del self.buffer[:total]
            self.tally.arrive(self.subscriber, head, body)
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")


def _header(head: bytes, name: bytes) -> bytes:
    """A header's value (``name`` in lower case; values keep their case, as signatures need)."""
    start = head.lower().find(b"\r\n" + name + b":")
    if start < 0:
        return b""
    stop = head.find(b"\r\n", start + 2)
    return head[start + len(name) + 3 : stop if stop > 0 else len(head)].strip()


class _Tally:
    """What the receivers saw: latency per first arrival, duplicates, order, a sample for signatures."""

    def __init__(self, subscribers: int, arrived: Any) -> None:
        self.seen: list[set[bytes]] = [set() for _ in range(subscribers)]
        self.last: list[tuple[int, int]] = [(0, 0)] * subscribers
        self.latencies: array[float] = array("d")
        self.duplicates = 0
        self.out_of_order = 0
        self.samples: list[tuple[int, dict[str, str], bytes]] = []
        self.arrived = arrived  # shared with the benchmark, which waits for the total
        self.count = 0

    def arrive(self, subscriber: int, head: bytes, body: bytes) -> None:
        now = time.time()
        message_id = _header(head, b"webhook-id")
        if message_id in self.seen[subscriber]:
            self.duplicates += 1
            return
        self.seen[subscriber].add(message_id)
        txid, _, seq = message_id.partition(b"-")
        position = (int(txid), int(seq))
        if position < self.last[subscriber]:
            self.out_of_order += 1
        self.last[subscriber] = position
        event = orjson.loads(body)
        self.latencies.append(now - datetime.fromisoformat(event["time"]).timestamp())
        self.count += 1
        self.arrived.value = self.count
        if self.count % SAMPLE_EVERY == 1:
            headers = {
                name.decode(): _header(head, name).decode()
                for name in (b"webhook-id", b"webhook-timestamp", b"webhook-signature")
            }
            self.samples.append((subscriber, headers, body))


async def _receive(subscribers: int, ports: Any, arrived: Any, stop: Any, results: Any) -> None:
    loop = asyncio.get_running_loop()
    tally = _Tally(subscribers, arrived)
    servers = []
    for subscriber in range(subscribers):
        server = await loop.create_server(partial(_Hook, tally, subscriber), "127.0.0.1", 0, backlog=64)
        servers.append(server)
        ports.put(server.sockets[0].getsockname()[1])
    await loop.run_in_executor(None, stop.wait)
    for server in servers:
        server.close()
    results.put(
        {
            "latencies": tally.latencies.tobytes(),
            "duplicates": tally.duplicates,
            "out_of_order": tally.out_of_order,
            "samples": tally.samples,
        }
    )


def _receiver_process(subscribers: int, ports: Any, arrived: Any, stop: Any, results: Any) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(_receive(subscribers, ports, arrived, stop, results))


def _subscribe(hub: Hub, headers: dict[str, str], url: str) -> tuple[str, str]:
    body = {
        "resource": "population.person",
        "elements": ["name"],
        "purpose": PURPOSE,
        "payload": "full",
        "delivery": {"mode": "webhook", "url": url},
    }
    answer = httpx.post(f"{hub.base}/v1/subscriptions", json=body, headers=headers)
    answer.raise_for_status()
    return str(answer.json()["id"]), str(answer.json()["secret"])


def _publish(hub: Hub, token: str, changes: int, subjects: int, rate: float) -> int:
    """``changes`` name changes at ``rate`` a second, a batch per tick; the lines the hub refused."""
    per_tick = max(1, round(rate * TICK_SECONDS))
    refused = 0
    started = time.monotonic()
    with httpx.Client(
        base_url=hub.base,
        headers={"Authorization": f"Bearer {token}", "content-type": "application/x-ndjson"},
        timeout=60,
    ) as client:
        for tick, first in enumerate(range(0, changes, per_tick)):
            lines = [
                orjson.dumps({"subject_id": person_id(n % subjects), "fields": {"name": f"改名{n}"}}) + b"\n"
                for n in range(first, min(first + per_tick, changes))
            ]
            answer = client.post("/v1/resources/population.person/records:batch", content=b"".join(lines))
            answer.raise_for_status()
            refused += len(lines) - answer.json()["applied_versions"]
            time.sleep(max(0.0, started + (tick + 1) * TICK_SECONDS - time.monotonic()))
    return refused


def _wait_for_workers(hub: Hub, workers: list[subprocess.Popen[bytes]], timeout: float = 120) -> None:
    """Until every worker holds its claims connection (so the first changes do not wait for start-up)."""
    deadline = time.monotonic() + timeout
    while hub.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'exchange-claims'") < len(
        workers
    ):
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            raise RuntimeError("the workers did not start")
        time.sleep(0.1)


def _percentile(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else float("nan")


def run(
    changes: int, subscribers: int = 10, workers: int = 2, *, rate: float | None = None
) -> dict[str, Any]:
    """Deliver ``changes`` changes to ``subscribers`` webhooks with ``workers`` `exchange worker` processes;
    changes are published at ``rate`` a second (default: 3,300 deliveries a second over the subscribers)."""
    rate = rate or 3_300 / subscribers
    subjects = min(10_000, max(changes, 1_000))
    expected = changes * subscribers
    context = multiprocessing.get_context("spawn")
    ports, results = context.Queue(), context.Queue()
    arrived = context.Value("q", 0, lock=False)
    stop = context.Event()
    receiver = context.Process(
        target=_receiver_process, args=(subscribers, ports, arrived, stop, results), daemon=True
    )
    started_workers: list[subprocess.Popen[bytes]] = []
    with running_hub(webhook_allowed_networks="127.0.0.0/8", delivery_in_serve="false") as hub:
        try:
            receiver.start()
            urls = [f"http://127.0.0.1:{ports.get(timeout=60)}/hook" for _ in range(subscribers)]
            publisher = hub.token(POLICE, "publisher")
            hub.publish(publisher, person_lines(subjects))
            hub.grant(CIVIL_AFFAIRS, ["name"], PURPOSE, access="subscribe")
            reader = {"Authorization": f"Bearer {hub.token(CIVIL_AFFAIRS, 'consumer')}"}
            secrets = [_subscribe(hub, reader, url)[1] for url in urls]
            started_workers = [
                subprocess.Popen(
                    [EXCHANGE, "worker"],
                    env=hub.env,
                    cwd=REPO,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                for _ in range(workers)
            ]
            _wait_for_workers(hub, started_workers)
            cpu = CpuMeter(
                {
                    "postgres": hub.postgres_pids(),
                    "serve": [hub.process.pid],
                    "workers": [w.pid for w in started_workers],
                    "receivers": [receiver.pid or 0],
                }
            )
            cpu.start()
            began = time.monotonic()
            refused = _publish(hub, publisher, changes, subjects, rate)
            published = time.monotonic() - began
            deadline = time.monotonic() + 60 + expected / 500
            while arrived.value < expected and time.monotonic() < deadline:
                time.sleep(0.05)
            elapsed = time.monotonic() - began
            used = cpu.stop()
            stop.set()
            seen = results.get(timeout=120)
            outcomes = orjson.loads(
                hub.sql(
                    "SELECT coalesce(jsonb_object_agg(outcome, n), '{}') FROM "
                    "(SELECT outcome, count(*) AS n FROM deliveries GROUP BY outcome) AS o"
                )
            )
            audited, pages = orjson.loads(
                hub.sql(
                    "SELECT jsonb_build_array(coalesce(sum((details->>'delivered')::int), 0), count(*)) "
                    "FROM audit_events WHERE action = 'subscriptions.deliver'"
                )
            )
            post_ms = hub.sql("SELECT round(avg(duration_ms)::numeric, 2)::float8 FROM deliveries")
        finally:
            for worker in started_workers:
                stop_group(worker, timeout=30)
            stop.set()
            receiver.join(timeout=30)
            if receiver.is_alive():
                receiver.kill()
    latencies = array("d")
    latencies.frombytes(seen["latencies"])
    ordered = sorted(latencies)
    bad_signatures = 0
    for subscriber, headers, body in seen["samples"]:
        # Signed again here rather than verified: verify() refuses timestamps older than five minutes.
        sent_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
        signature = Webhook(secrets[subscriber]).sign(headers["webhook-id"], sent_at, body.decode())
        bad_signatures += signature not in headers["webhook-signature"].split()
    delivered = len(ordered)
    return {
        "changes": changes,
        "subscribers": subscribers,
        "workers": workers,
        "offered_deliveries_per_s": round(rate * subscribers),
        "publish_seconds": round(published, 1),
        "deliveries": delivered,
        "deliveries_per_s": round(delivered / elapsed),
        "p50_ms": round(_percentile(ordered, 50) * 1000, 1),
        "p95_ms": round(_percentile(ordered, 95) * 1000, 1),
        "p99_ms": round(_percentile(ordered, 99) * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1) if ordered else None,
        "duplicates": seen["duplicates"],
        "out_of_order": seen["out_of_order"],
        "signatures_checked": len(seen["samples"]),
        "errors": (expected - delivered) + refused + seen["out_of_order"] + bad_signatures,
        "attempts_by_outcome": outcomes,
        "deliveries_audited": audited,
        "pages": pages,
        "post_mean_ms": post_ms,
        "cpu_seconds": used,
    }
