"""One live hub for the client tests: `exchange serve` on a database of its own, reached over real HTTP.

The hub and its database are shared by the tests of this package (starting a hub takes seconds); each test
works on subjects of its own, and tests that need grants use a consumer department and purpose of their
own, so their order does not matter. Other packages keep their database per test.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from exchange.client import ExchangeClient
from tests.identifiers import valid_ric
from tests.processes import REPO_ROOT, free_port, hub_env, run_cli, serving

DATA_OFFICE = "11150400MB15040895"  # 政务服务与数据管理局: runs the hub, audits it
EXCHANGE_CLIENT = str(Path(sys.executable).parent / "exchange-client")
PERSON = "population.person"
_people = itertools.count(1)


def new_person() -> str:
    """A 公民身份号码 no other test of this package uses."""
    return valid_ric(birth="19800101", serial=next(_people))


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str | None


@dataclass
class Hub:
    url: str
    env: dict[str, str]  # `exchange` commands on the hub's database
    admin: httpx.Client
    clients: list[ExchangeClient] = field(default_factory=list)

    def credentials(
        self, department: str, *roles: str, public_jwk: dict[str, Any] | None = None
    ) -> Credentials:
        """New client credentials of a department's system, made by an admin through the API."""
        body = {"name": "client tests", "roles": list(roles), "public_jwk": public_jwk}
        response = self.admin.post(f"/v1/departments/{department}/clients", json=body)
        assert response.status_code == 201, response.text
        created = response.json()
        return Credentials(created["client_id"], created["client_secret"])

    def client(self, department: str, *roles: str, **options: Any) -> ExchangeClient:
        creds = self.credentials(department, *(roles or ("publisher", "consumer")))
        client = ExchangeClient(self.url, creds.client_id, creds.client_secret, **options)
        self.clients.append(client)  # closed with the hub
        return client

    def cli_env(self, creds: Credentials, **extra: str) -> dict[str, str]:
        """The environment `exchange-client` reads its hub and credentials from."""
        env = hub_env() | {"EXCHANGE_URL": self.url, "EXCHANGE_CLIENT_ID": creds.client_id}
        if creds.client_secret:
            env["EXCHANGE_CLIENT_SECRET"] = creds.client_secret
        return env | extra


def _database_url(server_url: str, database: str) -> str:
    url = make_url(server_url).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


async def _admin_sql(server_url: str, statement: str) -> None:
    connection = await asyncpg.connect(_database_url(server_url, "postgres"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="package")
def hub_database(server_url: str, template_database: str) -> Iterator[str]:
    name = f"exchange_client_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_sql(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"'))
    yield _database_url(server_url, name)
    asyncio.run(_admin_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="package")
def hub(hub_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = hub_env(
        database_url=hub_database,
        data_dir=str(tmp_path_factory.mktemp("hub")),
        public_url=url,
        catalog_dir=str(REPO_ROOT / "catalog"),
        log_level="WARNING",  # the hub's output goes to a pipe nobody reads while it runs
        delivery_in_serve="false",
    )
    with serving(env=env, port=port):
        admin = json.loads(
            run_cli(
                "clients", "create", "--department", DATA_OFFICE, "--role", "admin", "--json", env=env
            ).stdout
        )
        token = httpx.post(
            f"{url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(admin["client_id"], admin["client_secret"]),
            timeout=10,
        ).json()["access_token"]
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as http:
            hub = Hub(url, env, http)
            yield hub
            for client in hub.clients:
                client.close()
