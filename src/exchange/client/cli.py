"""``exchange-client``: a department's command line to the hub (publish, query, verify, sharing, ...).

Global options come before the command: ``exchange-client --profile civil --json query …``. With ``--json``
stdout carries JSON only (one document, or one per line when following a subscription); messages and
problems go to stderr. Exit status: 0 done, 1 refused by the hub or rejected lines, 2 bad usage or settings.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from exchange.client.config import ConfigError, Connection, resolve
from exchange.client.errors import ExchangeError
from exchange.client.models import BatchResult, DiscrepancyOut, SharingRequestOut
from exchange.client.sync import ExchangeClient

app = typer.Typer(
    help="Talk to the exchange hub as a department system: publish, read, verify, share, cross-check.",
    pretty_exceptions_show_locals=False,
    no_args_is_help=True,
)
requests_app = typer.Typer(help="Sharing requests: ask for elements, see requests, decide on them.")
discrepancies_app = typer.Typer(help="Discrepancies (校核纠错): report doubted values, settle them.")
audit_app = typer.Typer(help="The audit log (auditors).")
app.add_typer(requests_app, name="requests")
app.add_typer(discrepancies_app, name="discrepancies")
app.add_typer(audit_app, name="audit")

# Piped output is not cut to 80 columns: tables of ids and codes would fold beyond reading.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200)
err = Console(stderr=True, soft_wrap=True)


class Access(StrEnum):
    read = "read"
    verify = "verify"
    subscribe = "subscribe"


class RequestRole(StrEnum):
    consumer = "consumer"
    provider = "provider"


class DiscrepancyRole(StrEnum):
    source = "source"
    reporter = "reporter"


class Outcome(StrEnum):
    confirmed = "confirmed"
    corrected = "corrected"
    withdrawn = "withdrawn"


class Payload(StrEnum):
    thin = "thin"
    full = "full"


@dataclass(frozen=True, slots=True)
class State:
    options: dict[str, str | None]
    profile: str | None
    json: bool

    def connection(self) -> Connection:
        try:
            return resolve(self.options, self.profile)
        except ConfigError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(help="The hub's base URL (env EXCHANGE_URL).")] = None,
    client_id: Annotated[str | None, typer.Option(help="Client id (env EXCHANGE_CLIENT_ID).")] = None,
    client_secret: Annotated[
        str | None, typer.Option(help="Client secret (env EXCHANGE_CLIENT_SECRET).")
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(help="Private key (JWK or PEM) for private_key_jwt (env EXCHANGE_KEY_FILE)."),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            envvar="EXCHANGE_PROFILE",
            help="A section of the profiles file (EXCHANGE_PROFILES, default "
            "~/.config/exchange-client/profiles.toml).",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    options = {
        "url": url,
        "client_id": client_id,
        "client_secret": client_secret,
        "key_file": str(key_file) if key_file else None,
    }
    ctx.obj = State(options, profile, json_output)


@contextmanager
def _hub(ctx: typer.Context) -> Iterator[ExchangeClient]:
    """A client for the configured hub; the hub's refusals and unreachable hubs end the command with 1."""
    state: State = ctx.obj
    connection = state.connection()
    try:
        key = connection.key_file
        with ExchangeClient(
            connection.url, connection.client_id, connection.client_secret, private_key=key
        ) as client:
            yield client
    except ExchangeError as exc:
        _report_problem(state, exc)
        raise typer.Exit(1) from None
    except httpx.HTTPError as exc:
        err.print(f"[red]error:[/red] cannot reach the hub at {connection.url}: {exc}")
        raise typer.Exit(1) from None
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


def _report_problem(state: State, exc: ExchangeError) -> None:
    if state.json:
        problem = exc.problem or {"status": exc.status, "code": exc.code, "detail": exc.detail}
        print(json.dumps(problem, ensure_ascii=False), file=sys.stderr)
        return
    # A 422's detail repeats its invalid params: then the title heads the list instead.
    summary = exc.title if exc.invalid_params else exc.detail
    err.print(f"[red]error:[/red] {exc.status} {exc.code}: ", end="")
    err.print(summary, markup=False, highlight=False)
    for param in exc.invalid_params:
        err.print(f"  {param.name}: {param.reason}", markup=False, highlight=False)
    if exc.request_id:
        err.print(f"  request id {exc.request_id}", markup=False, highlight=False)


def _json_line(value: Any, indent: int | None = None) -> None:
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else to_jsonable_python(value)
    print(json.dumps(data, ensure_ascii=False, indent=indent), flush=True)


def _emit_json(ctx: typer.Context, value: Any) -> bool:
    """With --json, print the value as JSON and say so; otherwise leave the output to the caller."""
    if ctx.obj.json:
        _json_line(value, indent=2)
        return True
    return False


def _pairs(values: Sequence[str], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{value!r}: expected NAME=VALUE", param_hint=option)
        pairs[name] = rest
    return pairs


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: expected YYYY-MM-DD", param_hint=option) from None


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise typer.BadParameter(f"{value!r}: expected an ISO time with offset", param_hint=option)
    return moment


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(to_jsonable_python(value), ensure_ascii=False)


# Identifiers stay on one line; anything else wraps when the terminal is narrow.
UNBROKEN = frozenset({"id", "line", "subject"})


def _table(*columns: str, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column in UNBROKEN)
    return table


# -- records ------------------------------------------------------------------------------------------

Resource = Annotated[str, typer.Option("--resource", help="Resource code, e.g. population.person.")]
Purpose = Annotated[str, typer.Option("--purpose", help="The registered purpose of this use.")]
Case = Annotated[str | None, typer.Option("--case", help="The case this use serves.")]
Officer = Annotated[str | None, typer.Option("--officer", help="The officer the system acts for.")]


@app.command()
def publish(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A .csv or .ndjson file.")
    ],
    resource: Resource,
    mapping: Annotated[
        list[str],
        typer.Option("--map", help="COLUMN=ELEMENT: the element a CSV column holds (COLUMN= leaves it out)."),
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    subject_column: Annotated[str, typer.Option(help="The column holding the subject id.")] = "subject_id",
    idempotency_key: Annotated[
        str | None, typer.Option(help="Retrying with the same key resumes instead of repeating.")
    ] = None,
) -> None:
    """Publish a CSV or NDJSON file as one streamed batch; exit 1 if any line was rejected."""
    columns = _pairs(mapping, "--map")
    with _hub(ctx) as hub, _progress(ctx, file.name) as progress:
        result = hub.publish_file(resource, file, columns, subject_column, idempotency_key, progress)
    if not _emit_json(ctx, result):
        _print_batch(file, result)
    if result.rejected:
        raise typer.Exit(1)


@contextmanager
def _progress(ctx: typer.Context, name: str) -> Iterator[Any]:
    """A live count of the records sent, on a terminal's stderr only."""
    if ctx.obj.json or not err.is_terminal:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(f"{name}: 0 records sent")
        yield lambda sent: progress.update(task, description=f"{name}: {sent:,} records sent")


def _print_batch(file: Path, result: BatchResult) -> None:
    out.print(
        f"{file.name}: accepted {result.accepted}, rejected {result.rejected}, "
        f"new versions {result.applied_versions}, observations {result.observations}, "
        f"discrepancies {result.discrepancies}",
        highlight=False,
    )
    if result.errors:
        table = _table("line", "subject", "field", "reason", title="Rejected lines")
        for error in result.errors:
            for param in error.invalid_params:
                table.add_row(str(error.line), error.subject_id or "", param.name, param.reason)
        out.print(table)
        if result.errors_truncated:
            out.print("(more rejected lines than listed)")


@app.command()
def query(
    ctx: typer.Context,
    resource: Resource,
    purpose: Purpose,
    subject: Annotated[list[str], typer.Option("--subject", help="A subject id (repeat for more).")],
    field: Annotated[list[str], typer.Option("--field", help="An element to read (repeat for more).")],
    case: Case = None,
    officer: Officer = None,
    as_of: Annotated[str | None, typer.Option(help="As true at this ISO time (with offset).")] = None,
) -> None:
    """Read elements of subjects for a declared purpose (a grant is needed unless you are the source)."""
    with _hub(ctx) as hub:
        result = hub.query(resource, subject, field, purpose, case, officer, as_of=_moment(as_of, "--as-of"))
    if _emit_json(ctx, result):
        return
    table = _table("subject", "version", *field, "under review")
    for record in result.records:
        values = [_text(record.fields.get(name)) for name in field]
        table.add_row(record.subject_id, str(record.version), *values, ", ".join(record.under_review))
    out.print(table)
    if result.not_found:
        out.print(f"not found: {', '.join(result.not_found)}", highlight=False)


@app.command()
def verify(
    ctx: typer.Context,
    resource: Resource,
    purpose: Purpose,
    subject: Annotated[str, typer.Option("--subject", help="The subject id.")],
    value: Annotated[
        list[str], typer.Option("--value", help="ELEMENT=VALUE you hold (a string; repeat for more).")
    ],
    case: Case = None,
    officer: Officer = None,
) -> None:
    """Check values you hold against the canonical record (核验): yes or no, never the stored value."""
    values = _pairs(value, "--value")
    with _hub(ctx) as hub:
        result = hub.verify(resource, subject, values, purpose, case, officer)
    if _emit_json(ctx, result):
        return
    if not result.found:
        out.print(f"{subject}: no record", highlight=False)
        return
    table = _table("element", "matches", "under review")
    for element, matches in result.matches.items():
        table.add_row(element, "yes" if matches else "no", "yes" if element in result.under_review else "")
    out.print(table)


# -- sharing ------------------------------------------------------------------------------------------


def _print_request(item: SharingRequestOut) -> None:
    out.print(
        f"request {item.id}: {item.status} — {item.resource} for {item.purpose} ({item.access}), "
        f"asked by {item.consumer_department}, decide by {item.due_at:%Y-%m-%d}",
        highlight=False,
    )
    table = _table("element", "source", "state", "reason", "valid until")
    for element in item.elements:
        until = f"{element.valid_until:%Y-%m-%d}" if element.valid_until else ""
        table.add_row(element.element, element.source_department, element.state, element.reason or "", until)
    out.print(table)


@requests_app.command("create")
def create_request(
    ctx: typer.Context,
    resource: Resource,
    element: Annotated[list[str], typer.Option("--element", help="An element asked for (repeat).")],
    access: Annotated[Access, typer.Option("--access", help="read, verify or subscribe.")],
    purpose: Purpose,
    legal_basis: Annotated[str, typer.Option(help="The law or regulation relied on.")],
    justification: Annotated[str, typer.Option(help="Why the elements are needed.")],
    valid_until: Annotated[str, typer.Option(help="The last day of the period asked for (YYYY-MM-DD).")],
    case_reference: Annotated[str | None, typer.Option(help="The case the request serves.")] = None,
) -> None:
    """Ask the source departments for elements of a resource, for a purpose and a period."""
    last_day = _day(valid_until, "--valid-until")
    assert last_day is not None
    with _hub(ctx) as hub:
        created = hub.request_sharing(
            resource, element, access.value, purpose, legal_basis, justification, last_day, case_reference
        )
    if not _emit_json(ctx, created):
        _print_request(created)


@requests_app.command("list")
def list_requests(
    ctx: typer.Context,
    role: Annotated[
        RequestRole, typer.Option(help="consumer: requests you made; provider: requests you decide.")
    ] = RequestRole.consumer,
    status: Annotated[
        str | None, typer.Option(help="pending, granted, partially_granted or rejected.")
    ] = None,
) -> None:
    """Sharing requests your department made or must decide, newest first."""
    with _hub(ctx) as hub:
        page = hub.sharing_requests(role.value, status)
    if _emit_json(ctx, page):
        return
    table = _table("id", "status", "resource", "purpose", "access", "consumer", "due", "elements")
    for item in page.items:
        elements = ", ".join(f"{e.element} ({e.state})" for e in item.elements)
        table.add_row(
            str(item.id),
            item.status + (" overdue" if item.overdue else ""),
            item.resource,
            item.purpose,
            item.access,
            item.consumer_department,
            f"{item.due_at:%Y-%m-%d}",
            elements,
        )
    out.print(table)


@requests_app.command("decide")
def decide(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="The request's id.")],
    approve: Annotated[list[str], typer.Option("--approve", help="An element to grant (repeat).")] = [],  # noqa: B006
    reject: Annotated[
        list[str], typer.Option("--reject", help="ELEMENT=REASON: an element to refuse, and why (repeat).")
    ] = [],  # noqa: B006
    valid_until: Annotated[
        str | None, typer.Option(help="Shorten the period to end on this day (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Decide on the elements of a request your department is the source of."""
    refusals = _pairs(reject, "--reject")
    if not approve and not refusals:
        raise typer.BadParameter("approve or reject at least one element", param_hint="--approve/--reject")
    decisions: dict[str, bool | str] = dict.fromkeys(approve, True) | dict(refusals)
    with _hub(ctx) as hub:
        decided = hub.decide(request_id, decisions, _day(valid_until, "--valid-until"))
    if not _emit_json(ctx, decided):
        _print_request(decided)


# -- cross-checking -----------------------------------------------------------------------------------


def _print_discrepancies(items: Sequence[DiscrepancyOut]) -> None:
    table = _table("id", "status", "resource", "subject", "element", "canonical", "reported", "due")
    for item in items:
        reported = "; ".join(
            f"{r.department}: {_text(r.value)}" if item.values_shown else r.department
            for r in item.reporters
            if not r.withdrawn
        )
        table.add_row(
            str(item.id),
            item.status + (" overdue" if item.overdue else ""),
            item.resource,
            item.subject_id,
            item.element,
            _text(item.canonical_value),
            reported,
            f"{item.due_at:%Y-%m-%d}",
        )
    out.print(table)


@discrepancies_app.command("list")
def list_discrepancies(
    ctx: typer.Context,
    role: Annotated[
        DiscrepancyRole, typer.Option(help="source: yours to settle; reporter: raised by you.")
    ] = DiscrepancyRole.source,
    status: Annotated[str | None, typer.Option(help="open, confirmed, corrected or withdrawn.")] = None,
    resource: Annotated[str | None, typer.Option(help="Only this resource.")] = None,
    element: Annotated[str | None, typer.Option(help="Only this element.")] = None,
) -> None:
    """Discrepancies your department must settle, or has raised, newest first."""
    with _hub(ctx) as hub:
        page = hub.discrepancies(role.value, status, resource, element)
    if not _emit_json(ctx, page):
        _print_discrepancies(page.items)


@discrepancies_app.command("report")
def report_discrepancy(
    ctx: typer.Context,
    resource: Resource,
    subject: Annotated[str, typer.Option("--subject", help="The subject id.")],
    element: Annotated[str, typer.Option("--element", help="The doubted element.")],
    value: Annotated[str, typer.Option("--value", help="The value your department holds (a string).")],
    note: Annotated[str, typer.Option("--note", help="Where your value comes from, and why.")],
) -> None:
    """Report a canonical value you doubt, with the value your department holds."""
    with _hub(ctx) as hub:
        result = hub.report_discrepancy(resource, subject, element, value, note)
    if _emit_json(ctx, result):
        return
    corroborating = f"{result.corroborations} department(s) corroborate the canonical value"
    out.print(f"{result.outcome.value}: {corroborating}", highlight=False)
    if result.discrepancy is not None:
        _print_discrepancies([result.discrepancy])


@discrepancies_app.command("resolve")
def resolve_discrepancy(
    ctx: typer.Context,
    discrepancy_id: Annotated[str, typer.Argument(help="The discrepancy's id.")],
    outcome: Annotated[Outcome, typer.Option(help="confirmed, corrected (with --value) or withdrawn.")],
    note: Annotated[str, typer.Option(help="The reason, kept with the discrepancy.")],
    value: Annotated[str | None, typer.Option(help="corrected: the corrected value (a string).")] = None,
) -> None:
    """Settle a discrepancy: confirm or correct your value (source), or withdraw your report."""
    with _hub(ctx) as hub:
        settled = hub.resolve_discrepancy(discrepancy_id, outcome.value, note, value)
    if not _emit_json(ctx, settled):
        _print_discrepancies([settled])


# -- subscriptions ------------------------------------------------------------------------------------


@app.command()
def subscribe(
    ctx: typer.Context,
    resource: Resource,
    element: Annotated[list[str], typer.Option("--element", help="An element to hear about (repeat).")],
    purpose: Purpose,
    payload: Annotated[Payload, typer.Option(help="thin: names of changed elements; full: values.")] = (
        Payload.thin
    ),
    follow: Annotated[bool, typer.Option("--follow", help="Print events as they come, acking each page.")] = (
        False
    ),
    max_events: Annotated[
        int | None, typer.Option(min=1, help="With --follow: stop after this many events.")
    ] = None,
    wait: Annotated[float, typer.Option(min=0, max=30, help="Seconds each long poll waits.")] = 25.0,
) -> None:
    """Subscribe to changes (pull; needs a subscribe grant) and print its id; --follow prints its events."""
    with _hub(ctx) as hub:
        subscription = hub.subscribe(resource, element, purpose, payload.value)
        if ctx.obj.json:
            _json_line(subscription, indent=None if follow else 2)
        else:
            out.print(f"subscription {subscription.id}", highlight=False)
            sys.stdout.flush()
        if not follow:
            return
        try:
            for event in hub.follow(subscription.id, purpose, wait=wait, max_events=max_events):
                _print_event(ctx, event)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


def _print_event(ctx: typer.Context, event: dict[str, Any]) -> None:
    if ctx.obj.json:
        _json_line(event)
        return
    data = event.get("data") or {}
    elements = ",".join(data.get("elements") or [])
    values = f" {_text(data['values'])}" if "values" in data else ""
    line = (
        f"{event.get('time', '')}  {event.get('type', '')}  {data.get('subject_id', '')}  {elements}{values}"
    )
    out.print(line, highlight=False, markup=False)
    sys.stdout.flush()


# -- audit --------------------------------------------------------------------------------------------


@audit_app.command("search")
def audit_search(
    ctx: typer.Context,
    subject: Annotated[str | None, typer.Option("--subject", help="Events about this subject.")] = None,
    department: Annotated[str | None, typer.Option(help="Events of this department.")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. records.query, records.publish.")] = None,
    purpose: Annotated[str | None, typer.Option(help="Events declaring this purpose.")] = None,
    outcome: Annotated[str | None, typer.Option(help="allowed, denied or error.")] = None,
    since: Annotated[str | None, typer.Option(help="From this ISO time (with offset).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many events at most.")] = 100,
) -> None:
    """Search the audit log (role auditor), newest first."""
    with _hub(ctx) as hub:
        page = hub.audit_search(
            subject_id=subject,
            department=department,
            action=action,
            purpose=purpose,
            outcome=outcome,
            since=_moment(since, "--since"),
            limit=limit,
        )
    if _emit_json(ctx, page):
        return
    table = _table(
        "time", "action", "outcome", "department", "officer", "purpose", "case", "subjects", "elements"
    )
    for event in page.items:
        table.add_row(
            f"{event.occurred_at:%Y-%m-%d %H:%M:%S}",
            event.action,
            event.outcome + (f" ({event.reason})" if event.reason else ""),
            event.department or "",
            event.officer or "",
            event.purpose or "",
            event.case or "",
            ", ".join(event.subject_ids),
            ", ".join(event.elements),
        )
    out.print(table)
