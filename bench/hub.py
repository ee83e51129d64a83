"""Start a real hub for a benchmark: `exchange serve` on a fresh embedded database, catalogue loaded."""

from __future__ import annotations

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

    def memory_mb(self) -> float:
        """Resident memory of the serving processes (the supervisor and its workers)."""
        parent = psutil.Process(self.process.pid)
        processes = [parent, *parent.children(recursive=True)]
        total = 0
        for process in processes:
            try:
                if "postgres" not in process.name():
                    total += process.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total / 2**20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_hub(workers: int = 2, **settings: str) -> Iterator[Hub]:
    with tempfile.TemporaryDirectory(prefix="exchange-bench-") as data:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
        env |= {
            "EXCHANGE_DATA_DIR": data,
            "EXCHANGE_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "EXCHANGE_ENV": "production",
            "EXCHANGE_LOG_LEVEL": "WARNING",
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
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the hub did not start")
                time.sleep(0.2)
            env["EXCHANGE_DATABASE_URL"] = _database_url(Path(data))
            yield Hub(base, env, process)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)


def _database_url(data: Path) -> str:
    """The URL the hub's CLI would use for this data directory (so commands skip starting a server)."""
    from exchange.db.embedded import start_embedded

    url, _ = start_embedded(data)
    return url
