"""The ``exchange`` command: run the hub, manage its database, departments, clients and keys."""

from __future__ import annotations

import asyncio
import gc
import getpass
import json
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from exchange.audit import service as audit
from exchange.audit.archive import archive_before, verify_archives
from exchange.audit.integrator import ensure_partitions
from exchange.audit.verify import verify_log
from exchange.auth import officers
from exchange.auth.keys import published_keys, rotate_signing_key
from exchange.auth.principal import Role
from exchange.catalog import repository as catalog_repository
from exchange.catalog import service as catalog
from exchange.catalog.diff import Change, is_breaking
from exchange.catalog.loader import CatalogFiles, CatalogInvalid, read_catalog, write_catalog
from exchange.catalog.schemas import DepartmentSpec, PurposeSpec
from exchange.catalog.service import Actor, CatalogPlan
from exchange.config import Environment, Settings, get_settings
from exchange.crosscheck import reconcile
from exchange.crosscheck.models import ReconciliationRun
from exchange.db import migrate
from exchange.db.embedded import start_embedded
from exchange.db.engine import create_engine, create_sessionmaker
from exchange.db.session import transaction
from exchange.demo import seed as seed_city
from exchange.departments import service as departments
from exchange.errors import ExchangeError
from exchange.subscriptions.delivery import DEFAULT_CONCURRENCY, Deliverer

app = typer.Typer(
    help="The exchange hub for a city's population, legal-entity and geospatial base data.",
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="The hub's database schema (Alembic migrations).")
departments_app = typer.Typer(help="Departments (government bodies) connected to the hub.")
clients_app = typer.Typer(help="OAuth2 client credentials of department systems.")
keys_app = typer.Typer(help="The hub's token-signing keys.")
catalog_app = typer.Typer(help="The resource catalogue, kept as YAML in catalog/.")
audit_app = typer.Typer(help="The tamper-evident audit log.")
crosscheck_app = typer.Typer(help="Multi-source cross-checking (多元校核) of reported values.")
users_app = typer.Typer(help="Officers: the people who sign in to the web console.")
app.add_typer(db_app, name="db")
app.add_typer(departments_app, name="departments")
app.add_typer(clients_app, name="clients")
app.add_typer(keys_app, name="keys")
app.add_typer(catalog_app, name="catalog")
app.add_typer(audit_app, name="audit")
app.add_typer(crosscheck_app, name="crosscheck")
app.add_typer(users_app, name="users")

DEFAULT_CATALOG = Path("catalog")
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
        # Audit events written by commands before any server has run need their month's partition.
        _run_in_transaction(settings, lambda s: ensure_partitions(s, datetime.now(UTC)), url=url)
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


def _run_in_transaction(
    settings: Settings, work: Callable[[AsyncSession], Awaitable[T]], *, url: str | None = None
) -> T:
    """Run ``work`` in one transaction; on ``url`` if given (the caller holds the database), else on the
    configured or embedded database, held for the duration."""

    async def run(target: str) -> T:
        engine = create_engine(settings, target)
        try:
            async with transaction(create_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        if url is not None:
            return asyncio.run(run(url))
        with database(settings) as held:
            return asyncio.run(run(held))
    except ExchangeError as exc:
        raise _fail(_explained(exc)) from None


def _run_with_database(
    settings: Settings,
    work: Callable[[AsyncEngine, async_sessionmaker[AsyncSession]], Awaitable[T]],
    *,
    url: str | None = None,
) -> T:
    """Run ``work``, which opens its own transactions; on ``url`` if given (the caller holds the database),
    else on the configured or embedded database."""

    async def run(target: str) -> T:
        engine = create_engine(settings, target)
        try:
            return await work(engine, create_sessionmaker(engine))
        finally:
            await engine.dispose()

    try:
        if url is not None:
            return asyncio.run(run(url))
        with database(settings) as held:
            return asyncio.run(run(held))
    except ExchangeError as exc:
        raise _fail(_explained(exc)) from None


def _explained(error: ExchangeError) -> str:
    """The error's detail and, one per line, each field it names and why."""
    lines = [error.detail, *(f"  {p.name}: {p.reason}" for p in error.invalid_params or [])]
    return "\n".join(lines)


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
    # uvicorn re-raises SIGTERM once it has shut down gracefully; turn it into a normal exit so the
    # embedded database is stopped on the way out instead of being left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    settings = get_settings()
    processes = (
        workers or settings.workers or (production_workers() if settings.env is Environment.production else 1)
    )
    with database(settings) as url:
        catalog_dir = settings.catalog_dir or (DEFAULT_CATALOG if settings.uses_embedded_database else None)
        if catalog_dir is not None and catalog_dir.is_dir():
            _apply_catalog(settings, catalog_dir, dry_run=False, allow_breaking=False, url=url)
        _run_uvicorn(settings, url, host, port, processes)


def production_workers() -> int:
    """API processes in production mode when none are configured: one per core. Each is an event loop that
    keeps its core busy; a second per core only adds switching (bench read: 2,966 requests/s with two
    processes on two cores, 1,493 with four)."""
    return os.cpu_count() or 1


def _run_uvicorn(settings: Settings, url: str, host: str, port: int, processes: int) -> None:
    os.environ["EXCHANGE_DATABASE_URL"] = url
    if processes > 1:
        # Set before the app (and prometheus_client) is imported: the workers forked from it count there.
        metrics_dir = settings.data_dir.resolve() / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    get_settings.cache_clear()
    from exchange.main import create_app

    if processes > 1:
        from exchange.serving import serve_forked

        serve_forked(create_app(), host, port, processes, settings.log_level)
        return
    import uvicorn

    uvicorn.run(
        create_app(),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        server_header=False,
    )


@app.command()
def demo(
    persons: Annotated[int, typer.Option(help="People in the synthetic city.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the generator: the same seed, the same city.")] = 2026,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the hub with a synthetic 赤峰市 loaded: people, entities, addresses, reports, demo clients."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    settings = get_settings()
    credentials = settings.data_dir / "demo-credentials.json"
    with database(settings) as url:
        _apply_catalog(settings, DEFAULT_CATALOG, dry_run=False, allow_breaking=False, url=url)
        if credentials.exists():
            err.print(f"the demo city is loaded already ({credentials}); starting the hub")
            saved = json.loads(credentials.read_text(encoding="utf-8"))
            if "officers" not in saved:  # a city loaded before the console existed gets its officers now

                async def staff(engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
                    saved["officers"] = await seed_city.create_officers(sessionmaker)
                    await seed_city.ask_for_sharing(sessionmaker, saved["systems"], settings)

                _run_with_database(settings, staff, url=url)
                credentials.write_text(json.dumps(saved, indent=2, ensure_ascii=False), encoding="utf-8")
        else:
            with Progress(
                TextColumn("loading the city"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err,
            ) as progress:
                task = progress.add_task("people", total=persons)

                async def load(engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
                    loaded = await seed_city.load_city(
                        sessionmaker,
                        persons,
                        seed,
                        settings.discrepancy_working_days,
                        lambda n: progress.advance(task, n),
                    )
                    systems = await seed_city.create_systems(sessionmaker)
                    people = await seed_city.create_officers(sessionmaker)
                    await seed_city.ask_for_sharing(sessionmaker, systems, settings)
                    seed_city.save_credentials(credentials, systems, people, loaded)

                _run_with_database(settings, load, url=url)
        _print_demo(json.loads(credentials.read_text(encoding="utf-8")), host, port)
        _run_uvicorn(settings, url, host, port, settings.workers or 1)


def _print_demo(saved: dict[str, Any], host: str, port: int) -> None:
    base = f"http://{host}:{port}"
    loaded = saved["loaded"]
    console.print(
        f"\n[bold]赤峰市 demo[/bold]: {loaded['persons']:,} people, {loaded['entities']:,} legal entities, "
        f"{loaded['addresses']:,} addresses; {loaded['reports']:,} reports by 民政 and 人社, "
        f"{loaded['conflicts']:,} of them in conflict (see the discrepancies)."
    )
    console.print(f"Console {base}/console · API {base}/v1 · reference {base}/docs")
    console.print("Officers for the console (user name, password, roles):")
    for username, person in saved.get("officers", {}).items():
        roles = ",".join(person["roles"])
        console.print(f"  {username:<16} {person['password']:<18} {roles:<16} {person['name']}", markup=False)
    console.print("Demo systems (system, department, roles, client_id, client_secret):")
    for who, system in saved["systems"].items():
        roles = ",".join(system["roles"])
        identity = f"{system['client_id']}  {system['client_secret']}"
        console.print(
            f"  {who:<16} {system['department']}  {roles:<18} {identity}",
            soft_wrap=True,
            markup=False,
        )
    civil = saved["systems"]["civil_affairs"]
    console.print(
        "Try, in another terminal:\n"
        f"  export EXCHANGE_URL={base} EXCHANGE_CLIENT_ID={civil['client_id']} "
        f"EXCHANGE_CLIENT_SECRET={civil['client_secret']}\n"
        "  exchange-client discrepancies list --role reporter\n"
        "  exchange-client requests create --resource population.person --element name --element birth_date "
        "--access read --purpose social-assistance-eligibility --legal-basis 《社会救助暂行办法》 "
        "--justification 低保资格审核 --valid-until 2027-12-31\n"
        f"  curl -s -u {civil['client_id']}:{civil['client_secret']} -d grant_type=client_credentials "
        f"{base}/oauth/token\n"
        f"Credentials are kept in the data directory (demo-credentials.json). Stop with Ctrl-C.",
        soft_wrap=True,
    )


@app.command()
def worker(
    concurrency: Annotated[
        int, typer.Option(help="Subscriptions served at once by this process.")
    ] = DEFAULT_CONCURRENCY,
) -> None:
    """Deliver webhooks of subscriptions (run any number, against the same database)."""
    import uvloop

    settings = get_settings()

    async def work(url: str) -> None:
        # SIGTERM cancels the delivery loops, which close their connections; an interrupted post is sent
        # again by the next worker, as after a crash.
        running = asyncio.current_task()
        assert running is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, running.cancel)
        engine = create_engine(settings, url)
        deliverer = Deliverer(engine, create_sessionmaker(engine), settings)
        # Everything loaded so far lives as long as the process: keep it out of the collector's full
        # passes, which otherwise walk the whole hub's modules and models (about 100 ms, every subscription
        # of the process stalled, several times a minute under load).
        gc.freeze()
        try:
            with suppress(asyncio.CancelledError):
                await deliverer.run(concurrency)
        finally:
            await engine.dispose()

    err.print(f"delivering webhooks with {concurrency} concurrent subscriptions; stop with Ctrl-C")
    with suppress(KeyboardInterrupt), database(settings) as url:
        # A worker's time goes to its sockets (posts, database round trips): uvloop's event loop takes
        # a third less CPU per webhook post than asyncio's (bench delivery).
        uvloop.run(work(url))


def _catalog_actor() -> Actor:
    return Actor(name=f"cli:{getpass.getuser()}")


def _print_changes(changes: list[Change], indent: str) -> None:
    for change in changes:
        mark = {"added": "+", "updated": "~", "removed": "-"}[change.op]
        flag = "  [breaking]" if is_breaking(change) else ""
        if change.op == "updated":
            console.print(
                f"{indent}{mark} {change.path}: {change.old!r} → {change.new!r}{flag}", markup=False
            )
        else:
            console.print(f"{indent}{mark} {change.path}{flag}", markup=False)


def _print_plan(plan: CatalogPlan) -> None:
    if plan.empty:
        console.print("no changes")
        return
    if plan.departments_added or plan.departments_renamed:
        console.print("departments:")
        for department in plan.departments_added:
            console.print(f"  + {department.code} {department.name}", markup=False)
        for department, old in plan.departments_renamed:
            console.print(f"  ~ {department.code} name: {old!r} → {department.name!r}", markup=False)
    if plan.purposes_added or plan.purposes_changed or plan.purposes_removed:
        console.print("purposes:")
        for purpose in plan.purposes_added:
            console.print(f"  + {purpose.code} {purpose.title}", markup=False)
        for purpose, changes in plan.purposes_changed:
            console.print(f"  ~ {purpose.code}", markup=False)
            _print_changes(changes, "      ")
        for code in plan.purposes_removed:
            console.print(f"  - {code}", markup=False)
    if plan.resources_added or plan.resources_changed or plan.resources_removed:
        console.print("resources:")
        for spec in plan.resources_added:
            console.print(f"  + {spec.code} ({len(spec.elements)} elements)", markup=False)
        for spec, changes in plan.resources_changed:
            console.print(f"  ~ {spec.code}", markup=False)
            _print_changes(changes, "      ")
        for code in plan.resources_removed:
            console.print(f"  - {code}  [breaking]", markup=False)


def _apply_catalog(
    settings: Settings, directory: Path, *, dry_run: bool, allow_breaking: bool, url: str | None = None
) -> CatalogPlan:
    async def work(session: AsyncSession) -> CatalogPlan:
        known = [d.code for d in await catalog_repository.all_departments(session)]
        files = read_catalog(directory, known)
        plan = await catalog.plan_catalog(session, files.departments, files.purposes, files.resources)
        _print_plan(plan)
        if not dry_run and not plan.empty:
            await catalog.apply_plan(session, plan, actor=_catalog_actor(), allow_breaking=allow_breaking)
        return plan

    try:
        return _run_in_transaction(settings, work, url=url)
    except CatalogInvalid as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False)
        raise _fail(f"{len(exc.problems)} problem(s) in {directory}; nothing was applied") from None


@catalog_app.command("validate")
def catalog_validate(
    directory: Annotated[Path, typer.Argument(help="The catalogue directory.")] = DEFAULT_CATALOG,
) -> None:
    """Check the catalogue files without touching any database."""
    try:
        files = read_catalog(directory)
    except CatalogInvalid as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False)
        raise _fail(f"{len(exc.problems)} problem(s) in {directory}") from None
    elements = sum(len(spec.elements) for spec in files.resources)
    console.print(
        f"{directory}: {len(files.departments)} departments, {len(files.purposes)} purposes, "
        f"{len(files.resources)} resources with {elements} elements: valid"
    )


@catalog_app.command("apply")
def catalog_apply(
    directory: Annotated[Path, typer.Argument(help="The catalogue directory.")] = DEFAULT_CATALOG,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the changes, apply nothing.")] = False,
    allow_breaking: Annotated[
        bool, typer.Option("--allow-breaking", help="Allow moving source departments and removing elements.")
    ] = False,
) -> None:
    """Load the catalogue files into the hub (idempotent) and print what changed."""
    plan = _apply_catalog(get_settings(), directory, dry_run=dry_run, allow_breaking=allow_breaking)
    if dry_run and not plan.empty:
        console.print("dry run: nothing applied")


@catalog_app.command("export")
def catalog_export(
    directory: Annotated[Path, typer.Argument(help="Where to write the catalogue files.")] = DEFAULT_CATALOG,
) -> None:
    """Write the hub's catalogue as files that `exchange catalog apply` reads back unchanged."""

    async def work(session: AsyncSession) -> CatalogFiles:
        departments = [
            DepartmentSpec(code=d.code, name=d.name)
            for d in await catalog_repository.all_departments(session)
        ]
        purposes = [
            PurposeSpec.model_validate(p, from_attributes=True)
            for p in await catalog_repository.all_purposes(session)
        ]
        resources = [spec for _, spec in await catalog_repository.load_resources(session)]
        return CatalogFiles(departments, purposes, resources)

    written = write_catalog(directory, _run_in_transaction(get_settings(), work))
    console.print(f"wrote {len(written)} files to {directory}")


@audit_app.command("verify")
def audit_verify(
    from_seq: Annotated[int | None, typer.Option("--from", help="Start at this sequence number.")] = None,
    archives: Annotated[
        Path | None, typer.Option(help="Also verify the archive files in this directory.")
    ] = None,
) -> None:
    """Recompute the hash chain, check the signed checkpoints and look for events that bypassed the hub."""
    result = _run_in_transaction(get_settings(), lambda s: verify_log(s, from_seq))
    if archives is not None:
        for problem in _run_in_transaction(get_settings(), lambda s: verify_archives(s, archives)):
            result.bad(0, problem)
    for problem in result.problems:
        err.print(problem, markup=False)
    summary = f"checked {result.checked} events and {result.checkpoints} checkpoints"
    if not result.ok:
        raise _fail(
            f"the audit log does not verify (first bad sequence number: {result.first_bad}); {summary}"
        )
    console.print(f"ok: {summary}")


@audit_app.command("archive")
def audit_archive(
    before: Annotated[datetime, typer.Option(help="Archive the events before this time (e.g. 2026-10-01).")],
    to: Annotated[Path, typer.Option(help="The directory for the archive files.")] = Path("audit-archives"),
) -> None:
    """Move chained events before a time to a compressed file that keeps the chain verifiable."""
    moment = before if before.tzinfo else before.replace(tzinfo=UTC)
    entry = _run_in_transaction(get_settings(), lambda s: archive_before(s, moment, to))
    if entry is None:
        console.print("nothing to archive")
    else:
        console.print(
            f"archived seq {entry.first_seq}..{entry.last_seq} to {to / entry.file} (sha256 {entry.sha256})"
        )


@audit_app.command("checkpoints")
def audit_checkpoints(
    after: Annotated[int, typer.Option(help="Only checkpoints after this seq.")] = 0,
) -> None:
    """Print the signed checkpoints as NDJSON, for an outside witness to keep."""
    from exchange.audit.repository import checkpoints

    rows = _run_in_transaction(get_settings(), lambda s: checkpoints(s, after, 1_000_000))
    for row in rows:
        print(
            json.dumps(
                {
                    "seq": row.seq,
                    "hash": row.hash.hex(),
                    "at": row.created_at.isoformat(),
                    "signature": row.signature,
                }
            )
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


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="Sign-in name: a-z, 0-9, '.', '_', '-'.")],
    department: Annotated[str, typer.Option(help="Code of the officer's department.")],
    role: Annotated[
        list[str], typer.Option(help="steward, approver, consumer, auditor or admin; repeat for several.")
    ],
    name: Annotated[str, typer.Option(help="The officer's full name, as pages show it.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create an officer who signs in to the console (the password is prompted for, or read from stdin)."""
    password = _read_password(password_stdin)
    _run_in_transaction(
        get_settings(),
        lambda s: officers.create_officer(
            s, username=username, display_name=name, department=department, roles=role, password=password
        ),
    )
    console.print(f"officer {username} created; sign in at /console")


@users_app.command("list")
def users_list() -> None:
    """List the officers."""
    rows = _run_in_transaction(get_settings(), officers.list_officers)
    table = Table("username", "name", "department", "roles", "last sign-in", "disabled")
    for row in rows:
        table.add_row(
            row.username,
            row.display_name,
            row.department_code,
            " ".join(row.roles),
            row.last_sign_in_at.isoformat(timespec="seconds") if row.last_sign_in_at else "",
            "yes" if row.disabled_at else "",
        )
    console.print(table)


@users_app.command("set-password")
def users_set_password(
    username: Annotated[str, typer.Argument(help="The officer.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Set an officer's password; their open sessions end and a lock-out is lifted."""
    password = _read_password(password_stdin)
    _run_in_transaction(get_settings(), lambda s: officers.set_password(s, username, password))
    console.print(f"password of {username} set")


@users_app.command("disable")
def users_disable(username: Annotated[str, typer.Argument(help="The officer.")]) -> None:
    """Disable an officer; their sessions end at once."""
    _run_in_transaction(get_settings(), lambda s: officers.disable_officer(s, username))
    console.print(f"officer {username} disabled")


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


@crosscheck_app.command("run")
def crosscheck_run(
    resource: Annotated[str, typer.Option(help="Resource code, e.g. population.person.")],
    from_department: Annotated[str, typer.Option("--from-department", help="The reporting department.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
) -> None:
    """Compare everything a department reported for a resource with the canonical values; print the report."""
    settings = get_settings()

    async def work(engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> ReconciliationRun:
        async with transaction(sessionmaker) as session:
            run = await reconcile.create(session, resource, from_department, "cli")
            await audit.append(
                session,
                audit.Event(
                    action="crosscheck.run",
                    officer=getpass.getuser(),
                    resource=resource,
                    details={"run": str(run.id), "reporting_department": from_department, "via": "cli"},
                ),
            )
        return await reconcile.execute(engine, sessionmaker, run.id, settings.discrepancy_working_days)

    out = reconcile.out(_run_with_database(settings, work))
    if as_json:
        _print_json(out.model_dump(mode="json"))
        return
    assert out.report is not None
    report = out.report
    console.print(
        f"run {out.id}: {report.subjects_reported} subjects reported by {report.department} "
        f"for {report.resource}; {report.discrepancies_opened} discrepancies opened"
    )
    table = Table(
        "element", "compared", "agreeing", "disagreeing", "stale", "missing canonical", "never reported"
    )
    for row in report.elements:
        table.add_row(
            row.element,
            *(
                str(n)
                for n in (
                    row.compared,
                    row.agreeing,
                    row.disagreeing,
                    row.stale,
                    row.missing_canonical,
                    row.missing_reported,
                )
            ),
        )
    console.print(table)
