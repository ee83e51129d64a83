"""Start a real hub for a benchmark: `exchange serve` on a fresh embedded database, catalogue loaded."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
EXCHANGE = str(Path(sys.executable).parent / "exchange")
POLICE = "11150400MB1234567Q"
CIVIL_AFFAIRS = "11150400MB15040128"


@dataclass
class Hub:
    base: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    workers: int

    def cli(self, *args: str) -> str:
        return subprocess.run(
            [EXCHANGE, *args], env=self.env, cwd=REPO, capture_output=True, text=True, check=True
        ).stdout

    def client(self, department: str, *roles: str) -> tuple[str, str]:
        flags = [arg for role in roles for arg in ("--role", role)]
        created = json.loads(self.cli("clients", "create", "--department", department, *flags, "--json"))
        return created["client_id"], created["client_secret"]

    def token(self, department: str, *roles: str) -> str:
        client_id, secret = self.client(department, *roles)
        response = httpx.post(
            f"{self.base}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def grant(self, department: str, elements: list[str], purpose: str, access: str = "read") -> None:
        """A grant from police written with the hub's own access repository, as the sharing workflow would."""
        import asyncio
        import uuid
        from datetime import UTC, datetime, timedelta

        from exchange.access.repository import grant_elements, grant_in_force
        from exchange.config import Settings
        from exchange.db.engine import create_engine, create_sessionmaker
        from exchange.db.session import transaction

        async def write() -> None:
            engine = create_engine(Settings(), self.env["EXCHANGE_DATABASE_URL"])
            async with transaction(create_sessionmaker(engine)) as session:
                grant = await grant_in_force(session, department, "population.person", purpose, access)
                now = datetime.now(UTC)
                await grant_elements(
                    session,
                    grant,
                    [(name, POLICE) for name in elements],
                    valid_from=now,
                    valid_until=now + timedelta(days=1),
                    request_id=uuid.uuid4(),
                )
            await engine.dispose()

        asyncio.run(write())

    def publish(
        self, token: str, lines: Iterator[bytes], resource: str = "population.person"
    ) -> dict[str, Any]:
        """One NDJSON batch, sent whole; the batch answer."""
        response = httpx.post(
            f"{self.base}/v1/resources/{resource}/records:batch",
            content=b"".join(lines),
            headers={"Authorization": f"Bearer {token}", "content-type": "application/x-ndjson"},
            timeout=None,
        )
        response.raise_for_status()
        return dict(response.json())

    def sql(self, statement: str) -> Any:
        """One value from the hub's database (read-only use by the benchmarks: counts, sizes)."""
        import asyncio

        import asyncpg

        async def fetch() -> Any:
            connection = await asyncpg.connect(self.dsn)
            try:
                return await connection.fetchval(statement)
            finally:
                await connection.close()

        return asyncio.run(fetch())

    @property
    def dsn(self) -> str:
        """The database URL as asyncpg and libpq take it."""
        return self.env["EXCHANGE_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")

    def count_events(self, action: str) -> int:
        return int(self.sql(f"SELECT count(*) FROM audit_events WHERE action = '{action}'"))  # noqa: S608

    def postgres_pids(self) -> list[int]:
        """The embedded server's postmaster (its backends are its children)."""
        data = self.env["EXCHANGE_DATA_DIR"]
        return [
            p.pid
            for p in psutil.process_iter(["name", "cmdline"])
            if p.info["name"] == "postgres" and data in " ".join(p.info["cmdline"] or [])
        ]

    def cpu(self, **others: list[int]) -> CpuMeter:
        """A started meter of the API processes, the database and ``others`` (name: pids)."""
        return CpuMeter({"api": [self.process.pid], "postgres": self.postgres_pids(), **others}).start()

    def memory_mb(self) -> float:
        """Memory of the serving processes (the arbiter and its workers), as PSS where the system reports
        it: the workers are forked from the arbiter and share its pages, which RSS would count once each."""
        parent = psutil.Process(self.process.pid)
        total = 0
        for process in [parent, *parent.children(recursive=True)]:
            try:
                if "postgres" in process.name():
                    continue
                info = process.memory_full_info()
                total += getattr(info, "pss", info.rss)
            except psutil.Error:
                pass
        return total / 2**20


class CpuMeter:
    """CPU seconds each part of a run used between :meth:`start` and :meth:`stop`: a part is processes by
    pid with their descendants (and the children they have reaped, such as the database's finished
    backends); a database process under another part is counted as the database's only."""

    def __init__(self, parts: dict[str, list[int]]) -> None:
        self.parts = parts
        self.before: dict[str, float] = {}

    @staticmethod
    def _tree(pid: int) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            return [process, *process.children(recursive=True)]
        return []

    def _used(self) -> dict[str, float]:
        # Each process counts for the part of its nearest root: trees are claimed largest first, so a part
        # whose processes descend from another's (the hub the benchmark started) takes them back.
        trees = {(pid, name): self._tree(pid) for name, pids in self.parts.items() for pid in pids}
        owners: dict[int, tuple[str, psutil.Process]] = {}
        for (_, name), members in sorted(trees.items(), key=lambda item: -len(item[1])):
            owners |= {member.pid: (name, member) for member in members}
        used = dict.fromkeys(self.parts, 0.0)
        for name, member in owners.values():
            with contextlib.suppress(psutil.Error):
                if member.name() == "postgres" and name != "postgres":
                    continue
                times = member.cpu_times()
                used[name] += times.user + times.system + times.children_user + times.children_system
        return used

    def start(self) -> CpuMeter:
        self.before = self._used()
        return self

    def stop(self) -> dict[str, float]:
        return {name: round(value - self.before[name], 1) for name, value in self._used().items()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> float:
    """Poll ``url`` until it answers 200; the seconds it took. Raises if the process ends first."""
    started = time.monotonic()
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() - started > timeout:
            raise RuntimeError(f"{url} did not answer")
        time.sleep(0.05)


def default_workers() -> int:
    """The API processes `exchange serve` starts in production mode on this machine."""
    from exchange.cli import production_workers

    return production_workers()


@contextmanager
def running_hub(workers: int | None = None, **settings: str) -> Iterator[Hub]:
    """`exchange serve` in production mode, with its default settings, on a fresh embedded database;
    ``workers`` defaults to what production mode chooses for this machine."""
    workers = workers or default_workers()
    with tempfile.TemporaryDirectory(prefix="exchange-bench-") as data:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
        env |= {
            "EXCHANGE_DATA_DIR": data,
            "EXCHANGE_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "EXCHANGE_ENV": "production",
            "EXCHANGE_TOKEN_TTL_SECONDS": "3600",
        } | {f"EXCHANGE_{k.upper()}": v for k, v in settings.items()}
        process = subprocess.Popen(
            [EXCHANGE, "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(f"{base}/readyz", process)
            env["EXCHANGE_DATABASE_URL"] = _database_url(Path(data))
            yield Hub(base, env, process, workers)
        finally:
            stop_group(process)
            stop_embedded(Path(data))


def stop_group(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """SIGTERM the process and everything it started; SIGKILL what is left after ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def stop_embedded(data: Path) -> None:
    """Stop the embedded PostgreSQL of ``data`` (fast shutdown), so no server outlives its benchmark."""
    for candidate in psutil.process_iter(["name", "cmdline"]):
        cmdline = candidate.info["cmdline"] or []
        if candidate.info["name"] == "postgres" and "-D" in cmdline and str(data) in " ".join(cmdline):
            with contextlib.suppress(psutil.Error):
                candidate.send_signal(signal.SIGINT)
                try:
                    candidate.wait(timeout=30)
                except psutil.TimeoutExpired:
                    candidate.kill()


def _database_url(data: Path) -> str:
    """The URL the hub's CLI would use for this data directory (so commands skip starting a server)."""
    from exchange.db.embedded import start_embedded

    url, _ = start_embedded(data)
    return url
