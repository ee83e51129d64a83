"""Soak: mixed reads, publishes and subscriptions against one hub for a long while (10 minutes by default),
sampling errors, throughput, delivered webhooks and the hub's memory every interval, so leaks and slow
degradation show as a trend rather than a single figure.

`python -m bench soak --seconds 600` (not part of `all`; CI runs it only at smoke size, if at all).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson

from bench.data import person_id, person_lines
from bench.hub import CIVIL_AFFAIRS, POLICE, Hub, running_hub

PURPOSE = "social-assistance-eligibility"
PERSON = "/v1/resources/population.person"
SUBJECTS = 5_000


@contextmanager
def _receiver() -> Iterator[list[int]]:
    """A webhook endpoint on loopback that counts what arrives."""
    arrived = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            arrived[0] += 1
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    arrived.append(server.server_address[1])
    try:
        yield arrived
    finally:
        server.shutdown()


class Tally:
    def __init__(self) -> None:
        self.done = 0
        self.errors = 0
        self.kinds: dict[str, int] = {}

    def note(self, kind: str, ok: bool) -> None:
        self.done += 1
        self.errors += not ok
        if not ok:
            self.kinds[kind] = self.kinds.get(kind, 0) + 1


async def _reader(client: httpx.AsyncClient, tally: Tally, stop: float, rng: random.Random) -> None:
    while time.monotonic() < stop:
        body = {"subject_ids": [person_id(rng.randrange(SUBJECTS))], "fields": ["name", "sex"]}
        try:
            answer = await client.post(f"{PERSON}/records:query", json=body)
            tally.note("query", answer.status_code == 200)
        except httpx.HTTPError:
            tally.note("query", False)


async def _publisher(client: httpx.AsyncClient, tally: Tally, stop: float, rng: random.Random) -> None:
    n = 0
    while time.monotonic() < stop:
        subject = person_id(rng.randrange(SUBJECTS))
        body = {
            "subject_id": subject,
            "fields": {"name": f"改名{n}", "sex": "1" if int(subject[16]) % 2 else "2"},
        }
        n += 1
        try:
            answer = await client.post(f"{PERSON}/records", json=body)
            tally.note("publish", answer.status_code == 200)
        except httpx.HTTPError:
            tally.note("publish", False)
        await asyncio.sleep(0.02)


async def _puller(client: httpx.AsyncClient, subscription: str, tally: Tally, stop: float) -> None:
    while time.monotonic() < stop:
        try:
            page = await client.get(
                f"/v1/subscriptions/{subscription}/events", params={"limit": 200, "wait": 1}
            )
            ok = page.status_code == 200
            if ok and page.json()["events"]:
                ack = await client.post(
                    f"/v1/subscriptions/{subscription}/ack", json={"cursor": page.json()["next_cursor"]}
                )
                ok = ack.status_code == 200
            tally.note("pull", ok)
        except httpx.HTTPError:
            tally.note("pull", False)


def _subscribe(hub: Hub, reader: dict[str, str], delivery: dict[str, Any]) -> str:
    body = {"resource": "population.person", "elements": ["name"], "purpose": PURPOSE, "delivery": delivery}
    answer = httpx.post(f"{hub.base}/v1/subscriptions", json=body, headers=reader)
    answer.raise_for_status()
    return str(answer.json()["id"])


async def _soak(hub: Hub, seconds: float, interval: float, arrived: list[int]) -> list[dict[str, Any]]:
    publisher = {"Authorization": f"Bearer {hub.token(POLICE, 'publisher')}"}
    reader = {"Authorization": f"Bearer {hub.token(CIVIL_AFFAIRS, 'consumer')}"}
    _subscribe(hub, reader, {"mode": "webhook", "url": f"http://127.0.0.1:{arrived[1]}/hook"})
    pull = _subscribe(hub, reader, {"mode": "pull"})
    tally = Tally()
    stop = time.monotonic() + seconds
    rng = random.Random(11)
    limits = httpx.Limits(max_connections=16)
    async with (
        httpx.AsyncClient(
            base_url=hub.base, headers=reader | {"Exchange-Purpose": PURPOSE}, limits=limits
        ) as reads,
        httpx.AsyncClient(base_url=hub.base, headers=publisher, limits=limits) as writes,
    ):
        workers = [asyncio.create_task(_reader(reads, tally, stop, rng)) for _ in range(6)]
        workers += [asyncio.create_task(_publisher(writes, tally, stop, rng)) for _ in range(2)]
        workers.append(asyncio.create_task(_puller(reads, pull, tally, stop)))
        samples = []
        started = time.monotonic()
        last_done = 0
        while time.monotonic() < stop:
            await asyncio.sleep(min(interval, max(0.0, stop - time.monotonic())))
            elapsed = time.monotonic() - started
            samples.append(
                {
                    "t_s": round(elapsed),
                    "requests": tally.done,
                    "requests_per_s": round((tally.done - last_done) / interval),
                    "errors": tally.errors,
                    "webhooks_delivered": arrived[0],
                    "hub_memory_mb": round(hub.memory_mb(), 1),
                }
            )
            last_done = tally.done
            print("  " + orjson.dumps(samples[-1]).decode(), flush=True)
        await asyncio.gather(*workers)
    if tally.kinds:
        samples[-1]["errors_by_kind"] = tally.kinds
    return samples


def run(seconds: float, interval: float = 10.0) -> dict[str, Any]:
    with _receiver() as arrived, running_hub(workers=2, webhook_allowed_networks="127.0.0.0/8") as hub:
        publisher = hub.token(POLICE, "publisher")
        httpx.post(
            f"{hub.base}{PERSON}/records:batch",
            content=b"".join(person_lines(SUBJECTS)),
            headers={"Authorization": f"Bearer {publisher}", "content-type": "application/x-ndjson"},
            timeout=None,
        ).raise_for_status()
        hub.grant(CIVIL_AFFAIRS, ["name", "sex"], PURPOSE)
        hub.grant(CIVIL_AFFAIRS, ["name"], PURPOSE, access="subscribe")
        samples = asyncio.run(_soak(hub, seconds, min(interval, seconds), arrived))
    first, last = samples[0], samples[-1]
    return {
        "seconds": seconds,
        "requests": last["requests"],
        "errors": last["errors"],
        "webhooks_delivered": last["webhooks_delivered"],
        "memory_first_mb": first["hub_memory_mb"],
        "memory_last_mb": last["hub_memory_mb"],
        "memory_max_mb": max(s["hub_memory_mb"] for s in samples),
        "samples": samples,
    }
