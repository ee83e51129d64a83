"""The ``exchange`` command: run the hub, manage its database, departments, clients and keys."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth.keys import published_keys, rotate_signing_key
from exchange.auth.principal import Role
from exchange.config import Environment, Settings, get_settings
from exchange.db import migrate
from exchange.db.embedded import start_embedded
from exchange.db.engine import create_engine, create_sessionmaker
from exchange.db.session import transaction
from exchange.departments import service as departments
from exchange.errors import ExchangeError

app = typer.Typer(help="The exchange hub for a city's population, legal-entity and geospatial base data.")
db_app = typer.Typer(help="The hub's database schema (Alembic migrations).")
departments_app = typer.Typer(help="Departments (government bodies) connected to the hub.")
clients_app = typer.Typer(help="OAuth2 client credentials of department systems.")
keys_app = typer.Typer(help="The hub's token-signing keys.")
app.add_typer(db_app, name="db")
app.add_typer(departments_app, name="departments")
app.add_typer(clients_app, name="clients")
app.add_typer(keys_app, name="keys")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


@contextmanager
def _embedded_or_configured(settings: Settings) -> Iterator[str]:
    """The configured database URL, or the embedded server's, held running for the block."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    url, server = start_embedded(settings.data_dir)
    try:
        yield url
    finally:
        # Stops the server if no other process (a running `exchange serve`, say) still uses it.
        server.cleanup()


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The database URL to use, with the schema at head.

    On the embedded default the schema is brought up to date; on a configured server it is checked,
    because upgrading a shared production database is an operator's deliberate step.
    """
    with _embedded_or_configured(settings) as url:
        if settings.uses_embedded_database:
            migrate.upgrade(url)
        else:
            _require_head(url)
        yield url


def _require_head(url: str) -> None:
    async def current() -> str | None:
        engine = create_engine(get_settings(), url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(migrate.current_revision)
        finally:
            await engine.dispose()

    revision, head = asyncio.run(current()), migrate.head_revision(url)
    if revision != head:
        raise _fail(
            f"the database schema is at {revision or 'no revision'}, the hub needs {head}: "
            "run `exchange db upgrade`"
        )


def _run_in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(settings, url)
        try:
            async with transaction(create_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    with database(settings) as url:
        try:
            return asyncio.run(run())
        except ExchangeError as exc:
            raise _fail(exc.detail) from None


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int | None, typer.Option(help="API processes (default: EXCHANGE_WORKERS, 1 in development).")
    ] = None,
) -> None:
    """Serve the hub's API. On the embedded database, the schema is upgraded first."""
    import uvicorn

    # uvicorn re-raises SIGTERM once it has shut down gracefully; turn it into a normal exit so the
    # embedded database is stopped on the way out instead of being left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    settings = get_settings()
    processes = (
        workers
        or settings.workers
        or (2 * (os.cpu_count() or 1) if settings.env is Environment.production else 1)
    )
    with database(settings) as url:
        os.environ["EXCHANGE_DATABASE_URL"] = url
        if processes > 1:
            metrics_dir = settings.data_dir.resolve() / "metrics"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        get_settings.cache_clear()
        uvicorn.run(
            "exchange.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=processes,
            log_config=None,
            access_log=False,
            proxy_headers=True,
            server_header=False,
        )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations up to REVISION."""
    settings = get_settings()
    with _embedded_or_configured(settings) as url:
        migrate.upgrade(url, revision)
    console.print(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision, e.g. base.")]) -> None:
    """Revert migrations down to REVISION."""
    settings = get_settings()
    with _embedded_or_configured(settings) as url:
        migrate.downgrade(url, revision)
    console.print(f"database at {revision}")


@departments_app.command("create")
def departments_create(
    code: Annotated[str, typer.Option(help="统一社会信用代码 of the department.")],
    name: Annotated[str, typer.Option(help="The department's name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Register a department."""
    department = _run_in_transaction(get_settings(), lambda s: departments.create_department(s, code, name))
    if as_json:
        _print_json({"code": department.code, "name": department.name})
    else:
        console.print(f"department {department.code} {department.name} created")


@departments_app.command("list")
def departments_list() -> None:
    """List departments."""
    from exchange.departments.repository import page_departments

    rows = _run_in_transaction(get_settings(), lambda s: page_departments(s, None, 10_000))
    table = Table("code", "name", "disabled")
    for row in rows:
        table.add_row(row.code, row.name, "yes" if row.disabled_at else "")
    console.print(table)


@clients_app.command("create")
def clients_create(
    department: Annotated[str, typer.Option(help="Code of the department the system belongs to.")],
    role: Annotated[list[Role], typer.Option(help="A role; repeat for several.")],
    name: Annotated[str, typer.Option(help="Which system this client is.")] = "system",
    jwk: Annotated[
        Path | None, typer.Option(help="Public JWK file, for private_key_jwt instead of a secret.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create client credentials. The secret is printed once and stored only as a hash."""
    public_jwk = None
    if jwk is not None:
        try:
            public_jwk = json.loads(jwk.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise _fail(f"cannot read the JWK from {jwk}: {exc}") from None
        if not isinstance(public_jwk, dict):
            raise _fail(f"{jwk} does not hold a JSON object")
    created = _run_in_transaction(
        get_settings(),
        lambda s: departments.create_client(s, department, name=name, roles=role, public_jwk=public_jwk),
    )
    result = {
        "client_id": created.client.client_id,
        "client_secret": created.secret,
        "department": created.client.department_code,
        "roles": created.client.roles,
    }
    if as_json:
        _print_json(result)
    else:
        console.print(f"client_id:     {result['client_id']}")
        if created.secret:
            console.print(f"client_secret: {created.secret}  (shown once)")


@clients_app.command("list")
def clients_list(department: Annotated[str, typer.Option(help="Department code.")]) -> None:
    """List a department's clients."""
    rows = _run_in_transaction(get_settings(), lambda s: departments.list_clients(s, department))
    table = Table("client_id", "name", "roles", "auth", "disabled")
    for row in rows:
        table.add_row(
            row.client_id,
            row.name,
            " ".join(row.roles),
            departments.auth_method(row),
            "yes" if row.disabled_at else "",
        )
    console.print(table)


@clients_app.command("disable")
def clients_disable(
    department: Annotated[str, typer.Option(help="Department code.")],
    client_id: Annotated[str, typer.Argument(help="The client to disable.")],
) -> None:
    """Disable a client; its tokens stop working at once."""
    _run_in_transaction(get_settings(), lambda s: departments.disable_client(s, department, client_id))
    console.print(f"client {client_id} disabled")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Start signing with a new key; tokens signed by the old one stay valid until they expire."""
    settings = get_settings()
    kid = _run_in_transaction(
        settings, lambda s: rotate_signing_key(s, timedelta(seconds=settings.token_ttl_seconds))
    )
    console.print(f"now signing with key {kid}")


@keys_app.command("list")
def keys_list() -> None:
    """The published signing keys."""
    settings = get_settings()
    rows = _run_in_transaction(
        settings, lambda s: published_keys(s, timedelta(seconds=settings.token_ttl_seconds))
    )
    table = Table("kid", "created", "retired")
    for row in rows:
        table.add_row(row.kid, str(row.created_at), str(row.retired_at or ""))
    console.print(table)
