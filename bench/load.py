"""Closed-loop HTTP/1.1 load from separate processes: keep-alive connections, each sending its next request
as soon as the answer to the last one is in, for a fixed time after a warm-up.

The requests are encoded once up front and the answers parsed only as far as the status line and
Content-Length, so the generator costs a few tens of microseconds per request and leaves the cores to the
server under test. The same generator drives the floor and the hub, so their ratio is fair.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import statistics
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson


def http_request(host: str, method: str, path: str, headers: dict[str, str], body: Any = None) -> bytes:
    """One HTTP/1.1 request, ready to write to a socket; ``body`` is sent as JSON unless it is bytes."""
    payload = b"" if body is None else body if isinstance(body, bytes) else orjson.dumps(body)
    lines = [f"{method} {path} HTTP/1.1", f"host: {host}", f"content-length: {len(payload)}"]
    if body is not None and not isinstance(body, bytes):
        lines.append("content-type: application/json")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


@dataclass
class LoadResult:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.transport_errors + sum(n for status, n in self.statuses.items() if status >= 400)

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]

    def figures(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "requests_per_s": round(self.rate),
            "errors": self.errors,
            "p50_ms": round(self.percentile(50) * 1000, 2),
            "p99_ms": round(self.percentile(99) * 1000, 2),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 2) if self.latencies else None,
        }


class _Connection(asyncio.Protocol):
    """One keep-alive connection answering one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports subclass no asyncio class

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._parse()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))
        if not self.lost.done():
            self.lost.set_result(None)

    def _parse(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = bytes(self.buffer[:end]).lower()
        start = head.find(b"\r\ncontent-length:")
        if start < 0:
            self.waiter.set_exception(ValueError("an answer without Content-Length"))
            return
        stop = head.find(b"\r\n", start + 2)
        length = int(head[start + 17 : stop if stop > 0 else len(head)])
        total = end + 4 + length
        if len(self.buffer) < total:
            return
        status = int(head[9:12])
        del self.buffer[:total]
        self.waiter.set_result(status)

    async def send(self, request: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


async def _drive(
    host: str, port: int, requests: list[bytes], connections: int, warmup: float, seconds: float, offset: int
) -> tuple[array[float], Counter[int], int]:
    loop = asyncio.get_running_loop()
    latencies: array[float] = array("d")
    statuses: Counter[int] = Counter()
    errors = 0
    begin = time.perf_counter() + warmup
    stop = begin + seconds

    async def one(number: int) -> None:
        nonlocal errors
        index = offset + number * 7919
        while time.perf_counter() < stop:
            try:
                _, connection = await loop.create_connection(_Connection, host, port)
            except OSError:
                errors += 1
                await asyncio.sleep(0.05)
                continue
            try:
                while (now := time.perf_counter()) < stop:
                    status = await connection.send(requests[index % len(requests)])
                    index += 1
                    if now >= begin:
                        latencies.append(time.perf_counter() - now)
                        statuses[status] += 1
            except (ConnectionError, ValueError):
                errors += time.perf_counter() >= begin
            finally:
                assert connection.transport is not None
                connection.transport.close()

    await asyncio.gather(*(one(n) for n in range(connections)))
    return latencies, statuses, errors


def _process(
    host: str,
    port: int,
    requests: list[bytes],
    connections: int,
    warmup: float,
    seconds: float,
    offset: int,
    queue: Any,
) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    latencies, statuses, errors = asyncio.run(
        _drive(host, port, requests, connections, warmup, seconds, offset)
    )
    queue.put((latencies.tobytes(), dict(statuses), errors))


def run(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    connections: int,
    seconds: float,
    warmup: float = 2.0,
    processes: int = 2,
) -> LoadResult:
    """Drive ``connections`` keep-alive connections from ``processes`` processes for ``seconds`` after
    ``warmup``; requests are taken round-robin from ``requests``."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    shares = [connections // processes + (i < connections % processes) for i in range(processes)]
    workers = [
        context.Process(
            target=_process,
            args=(host, port, requests, share, warmup, seconds, i * 104729, queue),
            daemon=True,
        )
        for i, share in enumerate(shares)
        if share
    ]
    for worker in workers:
        worker.start()
    result = LoadResult(seconds)
    for _ in workers:
        raw, statuses, errors = queue.get()
        part: array[float] = array("d")
        part.frombytes(raw)
        result.latencies.extend(part)
        result.statuses.update(statuses)
        result.transport_errors += errors
    for worker in workers:
        worker.join()
    return result
