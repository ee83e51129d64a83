"""Publishing, reading and verifying records: the one-number-one-source rule, versions, governed reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from exchange.access import repository as access_repository
from exchange.access.dependencies import DeclaredUse
from exchange.access.exceptions import UnauthorizedField
from exchange.access.policy import Access, Decision, decide
from exchange.audit import service as audit
from exchange.auth.principal import Principal
from exchange.catalog import repository as catalog_repository
from exchange.catalog.exceptions import ResourceNotFound
from exchange.crosscheck import service as crosscheck
from exchange.db.pool import connection
from exchange.db.session import transaction
from exchange.errors import InvalidInput, InvalidParam
from exchange.records import repository
from exchange.records.repository import Current, NewObservation, NewVersion, stamp
from exchange.records.schemas import (
    PublishResult,
    QueryBody,
    QueryResult,
    RecordOut,
    VerifyBody,
    VerifyResult,
)
from exchange.records.validation import ResourceRules
from exchange.timestamps import in_utc

# Clocks of department systems drift; a valid_from this far ahead of the hub's clock is still "now".
CLOCK_SKEW = timedelta(minutes=5)
# A record the source publishes again unchanged counts as fresh from then on; within this long of the last
# time it is not written again, so an extract republished at once costs no writes.
FRESHNESS_RESOLUTION = timedelta(hours=1)


_rules_cache: dict[tuple[str, int], ResourceRules] = {}
# The newest rules this process has built per resource: governed reads check with them and confirm the
# version in their own statement (see _governed).
_latest_rules: dict[str, ResourceRules] = {}


async def load_rules(session: AsyncSession, code: str) -> ResourceRules:
    """The resource's checking rules, built once per catalogue version.

    Every call asks the database for the current version (one indexed lookup), so an edit made through any
    process applies to the next request everywhere; only the work of building the rules is remembered.
    """
    version = await catalog_repository.resource_version(session, code)
    if version is None:
        raise ResourceNotFound(code)
    rules = _rules_cache.get((code, version))
    if rules is None:
        loaded = await catalog_repository.load_resources(session, [code])
        if not loaded:
            raise ResourceNotFound(code)
        resource, spec = loaded[0]
        rules = ResourceRules(spec, resource.version)
        if len(_rules_cache) > 256:
            _rules_cache.clear()
        _rules_cache[(code, resource.version)] = rules
    if rules.version >= getattr(_latest_rules.get(code), "version", -1):
        _latest_rules[code] = rules
    return rules


def cached_rules(code: str, version: int | None) -> ResourceRules | None:
    """The rules of this catalogue version of the resource, if this process has built them (for a caller
    that has read the version already)."""
    return None if version is None else _rules_cache.get((code, version))


@dataclass(slots=True)
class Prepared:
    """One checked publish: canonical values for the caller's own elements, observations for the others."""

    subject_id: str
    valid_from: datetime
    canonical: dict[str, Any]
    observed: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    dated: bool = False  # the publisher said when the values became true (valid_from)


_BODY_KEYS = frozenset({"subject_id", "fields", "valid_from"})


def prepare(
    rules: ResourceRules, department: str, body: Mapping[str, Any], now: datetime
) -> Prepared | list[InvalidParam]:
    """Check one publish body; the reasons it is refused, or what to apply. (Run for every line of a
    batch: written for speed, with the common case of a valid body first.)"""
    errors: list[InvalidParam] = []
    subject_id = None
    try:
        checked_id = rules.subject_id(body.get("subject_id"))
        subject_id = checked_id.number
    except ValueError as exc:
        errors.append(InvalidParam(name="subject_id", reason=str(exc)))
    fields = body.get("fields")
    if not fields or not (type(fields) is dict or isinstance(fields, Mapping)):
        errors.append(InvalidParam(name="fields", reason="must be an object with at least one element"))
        fields = {}
    checked = rules.fields(fields)
    if checked.errors:
        errors += [InvalidParam(name=name, reason=reason) for name, reason in checked.errors]
    valid_from = now
    raw_from = body.get("valid_from")
    if raw_from is not None:
        try:
            valid_from = parse_instant(raw_from)
        except ValueError as exc:
            errors.append(InvalidParam(name="valid_from", reason=str(exc)))
        else:
            if valid_from > now + CLOCK_SKEW:
                errors.append(InvalidParam(name="valid_from", reason="must not be in the future"))
    unknown = body.keys() - _BODY_KEYS
    if unknown:
        reason = "is not a field of a publish body"
        errors += [InvalidParam(name=name, reason=reason) for name in sorted(unknown)]
    if errors or subject_id is None:
        return errors
    values = checked.values
    own = rules.elements_of(department)
    if values.keys() <= own:
        canonical, observed = values, {}
    else:
        canonical = {name: value for name, value in values.items() if name in own}
        observed = {name: value for name, value in values.items() if name not in own}
    warnings = checked.warnings
    if checked_id.warnings:
        warnings = [f"subject_id: {w}" for w in checked_id.warnings] + warnings
    return Prepared(subject_id, valid_from, canonical, observed, warnings, raw_from is not None)


def parse_instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 date and time") from None
    else:
        raise ValueError("must be an ISO 8601 date and time")
    if moment.tzinfo is None:
        raise ValueError("must carry a UTC offset")
    return in_utc(moment)


def _changes(item: Prepared, current: Current) -> tuple[dict[str, Any], dict[str, Any]]:
    """The values that make a new version, and the elements whose current value moves (with the value
    each had before).

    A value whose valid_from is not older than the current one replaces it if it differs. An older one is
    a report about the past: it goes into the history (as-of reads see it) but leaves the present alone.
    """
    moment = stamp(item.valid_from)
    if current.created:
        # Nothing recorded yet: every value there is makes the first version (the common case of a load).
        changed = {name: value for name, value in item.canonical.items() if value is not None}
        current.fields = dict(changed)
        current.stamps = dict.fromkeys(changed, moment)
        return changed, dict.fromkeys(changed)
    changed = {}
    moved: dict[str, Any] = {}
    for name, value in item.canonical.items():
        held = current.stamps.get(name)
        if held is None or moment >= held:
            if current.fields.get(name) != value:
                changed[name] = value
                moved[name] = current.fields.get(name)
                current.fields[name] = value
                current.stamps[name] = moment
        else:
            changed[name] = value
    return changed, moved


@dataclass(slots=True)
class Applied:
    """What one checked publish did (a plain object: batches make millions of them)."""

    item: Prepared
    version: int
    changed: list[str]
    discrepancies: list[str]

    def result(self) -> PublishResult:
        return PublishResult(
            subject_id=self.item.subject_id,
            version=self.version,
            applied=list(self.item.canonical),
            changed=self.changed,
            observed=list(self.item.observed),
            discrepancies=self.discrepancies,
            warnings=self.item.warnings,
        )


async def apply(
    session: AsyncSession,
    rules: ResourceRules,
    principal: Principal,
    items: Sequence[Prepared],
    now: datetime,
    review_days: int,
) -> list[Applied]:
    """Apply checked publishes (subjects distinct) in set-based statements; return one result per item.

    Canonical values make new versions; reported values of other sources are cross-checked against the
    same locked records, so a report and a concurrent change of the value it doubts cannot cross. If a
    concurrent publisher creates one of the new records first, the work is undone and done again on top."""
    while True:
        try:
            async with session.begin_nested():
                return await _apply(session, rules, principal, items, now, review_days)
        except repository.RecordCreatedMeanwhile:
            continue


@dataclass(slots=True)
class _Planned:
    """One item's effect, worked out against its record as read (None: the item has no canonical values)."""

    item: Prepared
    record: Current | None
    read_version: int
    version: int
    changed: dict[str, Any]
    moved: dict[str, Any]


def _plan(item: Prepared, record: Current | None) -> _Planned:
    if record is None:
        return _Planned(item, None, 0, 0, {}, {})
    read_version = record.version
    changed, moved = _changes(item, record)
    if changed:
        record.version += 1
        for name in moved:
            record.versions[name] = record.version
    return _Planned(item, record, read_version, record.version, changed, moved)


def _stale(record: Current, now: datetime) -> bool:
    """Whether a record republished unchanged is due to be marked fresh again."""
    return record.updated_at is None or now - record.updated_at > FRESHNESS_RESOLUTION


def _as_read(seen: Mapping[str, Current], item: Prepared) -> Current | None:
    if not item.canonical:
        return None
    return seen.get(item.subject_id) or Current(0, {}, {}, {}, created=True)


async def _planned(
    session: AsyncSession, code: str, items: Sequence[Prepared]
) -> tuple[list[_Planned], dict[str, Current]]:
    """Each item's effect, and the records it concerns as they will stand.

    The source's values are first compared with its records as they stand, unlocked, so that a republished
    extract locks and writes nothing; the records that change are then locked and read again, and one that
    another transaction changed in between is worked out again as it is now."""
    seen = await repository.current_of(session, code, [item.subject_id for item in items if item.canonical])
    planned = [_plan(item, _as_read(seen, item)) for item in items]
    changing = [
        p.item.subject_id for p in planned if p.changed and p.record is not None and not p.record.created
    ]
    locked = await repository.lock_current(
        session, code, changing + [item.subject_id for item in items if item.observed]
    )
    for index, p in enumerate(planned):
        fresh = locked.get(p.item.subject_id)
        if p.record is not None and fresh is not None and fresh.version != p.read_version:
            planned[index] = _plan(p.item, fresh)
    # As they will stand: what this publish makes of them, else as locked.
    return planned, locked | {p.item.subject_id: p.record for p in planned if p.record is not None}


async def _apply(
    session: AsyncSession,
    rules: ResourceRules,
    principal: Principal,
    items: Sequence[Prepared],
    now: datetime,
    review_days: int,
) -> list[Applied]:
    code = rules.spec.code
    planned, current = await _planned(session, code, items)
    versions: list[NewVersion] = []
    untouched: list[str] = []
    moved_by_subject: dict[str, list[str]] = {}
    reported: list[crosscheck.Reported] = []
    for p in planned:
        item, record = p.item, p.record
        if record is not None and p.changed:
            if p.moved and not record.created:
                # A record just created has no value anyone could have doubted yet.
                moved_by_subject[item.subject_id] = list(p.moved)
            # A new record's fields are its first version's values, written as JSON once for both.
            fields_json = orjson.dumps(p.changed).decode() if record.created else None
            versions.append(
                NewVersion(
                    item.subject_id,
                    p.version,
                    item.valid_from,
                    p.changed,
                    record,
                    p.moved,
                    record.created,
                    fields_json,
                )
            )
        elif record is not None and not record.created and _stale(record, now):
            untouched.append(item.subject_id)
        if item.observed:
            reported += [
                crosscheck.Reported(item.subject_id, name, value, item.valid_from, dated=item.dated)
                for name, value in item.observed.items()
            ]
    await repository.save_versions(
        session, code, versions, client=principal.client_id, department=principal.department_code, now=now
    )
    await repository.touch(session, code, untouched, now)
    await crosscheck.on_canonical_change(session, rules, moved_by_subject, current, now)
    compared = crosscheck.compare(rules, reported, current)
    reporter = crosscheck.Reporter(principal.department_code, principal.client_id)
    opened = await crosscheck.keep(session, rules, reporter, compared, now, review_days)
    await repository.save_observations(
        session,
        code,
        [
            NewObservation(
                c.reported.subject_id,
                c.reported.element,
                c.reported.value,
                c.reported.observed_at,
                c.outcome.value,
                dated=c.reported.dated,
            )
            for c in compared
        ],
        client=principal.client_id,
        department=principal.department_code,
        now=now,
    )
    return [
        Applied(
            p.item,
            p.version,
            list(p.changed),
            [
                str(opened[(p.item.subject_id, name)].id)
                for name in p.item.observed
                if (p.item.subject_id, name) in opened
            ]
            if p.item.observed
            else [],
        )
        for p in planned
    ]


def publish_event(
    rules: ResourceRules, principal: Principal, use: DeclaredUse, items: Sequence[Prepared], **details: Any
) -> audit.Event:
    elements = sorted({name for item in items for name in (*item.canonical, *item.observed)})
    return audit.Event(
        action="records.publish",
        department=principal.department_code,
        client_id=principal.client_id,
        officer=use.officer,
        purpose=use.purpose,
        case_reference=use.case_reference,
        resource=rules.spec.code,
        subject_ids=[item.subject_id for item in items],
        elements=elements,
        details=details,
    )


async def publish_one(
    session: AsyncSession,
    rules: ResourceRules,
    principal: Principal,
    use: DeclaredUse,
    body: Mapping[str, Any],
    review_days: int,
) -> PublishResult:
    now = datetime.now(UTC)
    prepared = prepare(rules, principal.department_code, body, now)
    if isinstance(prepared, list):
        raise InvalidInput("; ".join(f"{p.name}: {p.reason}" for p in prepared), prepared)
    (applied,) = await apply(session, rules, principal, [prepared], now, review_days)
    result = applied.result()
    details: dict[str, Any] = {"version": result.version, "changed": result.changed}
    if result.discrepancies:
        details["discrepancies"] = result.discrepancies
    await audit.append(session, publish_event(rules, principal, use, [prepared], **details))
    return result


def check_elements(rules: ResourceRules, names: Sequence[str], field: str) -> None:
    unknown = [name for name in names if name not in rules.elements]
    if unknown:
        raise InvalidInput(
            f"{rules.spec.code} has no element {', '.join(unknown)}",
            [InvalidParam(name=field, reason=f"{rules.spec.code} has no element {name}") for name in unknown],
        )


def canonical_subject_ids(rules: ResourceRules, values: Sequence[str], field: str) -> list[str]:
    canonical = []
    errors = []
    for i, value in enumerate(values):
        try:
            canonical.append(rules.subject_id(value).number)
        except ValueError as exc:
            errors.append(
                InvalidParam(name=f"{field}.{i}" if field.endswith("s") else field, reason=str(exc))
            )
    if errors:
        raise InvalidInput("; ".join(f"{p.name}: {p.reason}" for p in errors), errors)
    return canonical


async def decide_for(
    session: AsyncSession,
    rules: ResourceRules,
    department: str,
    purpose: str,
    elements: Sequence[str],
    access: Access,
    now: datetime,
) -> Decision:
    """The policy decision for ``department`` using ``elements`` of the resource for ``purpose`` now."""
    grants = await access_repository.grants_for(session, department, rules.spec.code, purpose, now)
    return decide(
        department=department,
        rules=rules.policy_rules,
        requested=elements,
        access=access,
        purpose=purpose,
        grants=grants,
        now=now,
    )


@dataclass(frozen=True, slots=True)
class ReadPath:
    """What a governed read needs of its process: the driver pool, the audit writer, and the ORM sessions
    that (re)load a resource's rules when the catalogue has moved on."""

    pool: asyncpg.Pool
    writer: audit.Appender
    sessionmaker: async_sessionmaker[AsyncSession]


async def _rules(path: ReadPath, code: str, newer_than: int = -1) -> ResourceRules:
    rules = _latest_rules.get(code)
    if rules is None or rules.version <= newer_than:
        async with transaction(path.sessionmaker) as session:
            rules = await load_rules(session, code)
    return rules


@dataclass(frozen=True, slots=True)
class Asked:
    """A governed read checked against the rules this process knows: the elements and the subjects (in
    canonical form, each once)."""

    rules: ResourceRules
    elements: list[str]
    subject_ids: list[str]

    @property
    def code(self) -> str:
        return self.rules.spec.code


def _asked(
    rules: ResourceRules, elements: Sequence[str], subject_ids: Sequence[str], id_field: str = "subject_ids"
) -> Asked:
    check_elements(rules, elements, "fields")
    ids = list(dict.fromkeys(canonical_subject_ids(rules, subject_ids, id_field)))
    return Asked(rules, list(elements), ids)


async def ask(
    path: ReadPath, code: str, elements: Sequence[str], subject_ids: Sequence[str], id_field: str
) -> Asked:
    """Check a governed read's elements and subjects (422, naming ``id_field``) of a resource that exists
    (404)."""
    return _asked(await _rules(path, code), elements, subject_ids, id_field)


async def fetch(
    path: ReadPath, asked: Asked, client_id: str, department: str, purpose: str
) -> tuple[Asked, repository.GovernedRead]:
    """The caller's client, grants and the records in one round trip.

    The statement also returns the resource's catalogue version: if an edit made the rules stale, they are
    reloaded and the request checked and read again, so no answer rests on an outdated catalogue."""
    while True:
        async with connection(path.pool) as db:
            read = await repository.governed_read(
                db, asked.code, client_id, department, purpose, datetime.now(UTC), asked.subject_ids
            )
        if read.catalog_version is None or read.catalog_version == asked.rules.version:
            return asked, read
        rules = await _rules(path, asked.code, newer_than=asked.rules.version)
        asked = _asked(rules, asked.elements, asked.subject_ids)


def authorize(
    asked: Asked, read: repository.GovernedRead, principal: Principal, purpose: str, access: Access
) -> Decision:
    """Ask the policy decision point; a denial is raised as ``unauthorized_field`` (and audited)."""
    if read.catalog_version is None:
        raise ResourceNotFound(asked.code)
    decision = decide(
        department=principal.department_code,
        rules=asked.rules.policy_rules,
        requested=asked.elements,
        access=access,
        purpose=purpose,
        grants=read.grants,
        now=datetime.now(UTC),
    )
    if not decision.allowed:
        raise UnauthorizedField(asked.code, decision.missing, decision.reason)
    return decision


async def query(
    path: ReadPath,
    principal: Principal,
    asked: Asked,
    read: repository.GovernedRead,
    decision: Decision,
    body: QueryBody,
    event: audit.Event,
) -> QueryResult:
    subject_ids = asked.subject_ids
    found = read.records
    if body.as_of is not None or body.known_at is not None:
        now = datetime.now(UTC)
        async with connection(path.pool) as db:
            found = await repository.records_as_of(
                db, asked.code, subject_ids, body.as_of or now, body.known_at or now
            )
    flagged = read.under_review
    records = []
    for subject_id in subject_ids:
        record = found.get(subject_id)
        if record is None or record.version == 0:
            continue
        doubted = flagged.get(subject_id, set())
        stamps = [record.stamps[name] for name in body.fields if name in record.stamps]
        records.append(
            RecordOut(
                subject_id=subject_id,
                version=record.version,
                valid_from=datetime.fromisoformat(max(stamps)) if stamps else None,
                fields={name: record.fields.get(name) for name in body.fields},
                under_review=[name for name in body.fields if name in doubted],
            )
        )
    returned = {r.subject_id for r in records}
    not_found = [s for s in subject_ids if s not in returned]
    # No event, no data: the answer goes out only once its event is committed.
    await path.writer.append(
        _read_event(
            event, principal, decision, subject_ids, body.fields, found=len(records), not_found=len(not_found)
        )
    )
    return QueryResult(records=records, not_found=not_found)


def _read_event(
    event: audit.Event,
    principal: Principal,
    decision: Decision,
    subject_ids: Sequence[str],
    elements: Sequence[str],
    **details: Any,
) -> audit.Event:
    return replace(
        event,
        department=principal.department_code,
        client_id=principal.client_id,
        subject_ids=list(subject_ids),
        elements=list(elements),
        grant_id=decision.grant_ids[0] if decision.grant_ids else None,
        details=details
        | ({"grants": [str(g) for g in decision.grant_ids]} if len(decision.grant_ids) > 1 else {}),
    )


async def verify(
    path: ReadPath,
    principal: Principal,
    asked: Asked,
    read: repository.GovernedRead,
    decision: Decision,
    body: VerifyBody,
    event: audit.Event,
) -> VerifyResult:
    (subject_id,) = asked.subject_ids
    record = read.records.get(subject_id)
    matchers = asked.rules.matchers
    matches = {
        name: record is not None and name in record.fields and matchers[name](record.fields[name], value)
        for name, value in body.fields.items()
    }
    flagged = read.under_review.get(subject_id, set())
    await path.writer.append(
        _read_event(event, principal, decision, [subject_id], asked.elements, found=record is not None)
    )
    return VerifyResult(
        subject_id=subject_id,
        found=record is not None,
        matches=matches,
        under_review=[name for name in body.fields if name in flagged],
    )
