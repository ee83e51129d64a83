"""All SQL of the records domain: set-based, one statement per kind of row whatever the number of subjects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.access.policy import Access, GrantView
from exchange.db.pool import Db
from exchange.db.session import driver


@dataclass(slots=True)
class Current:
    version: int
    fields: dict[str, Any]
    stamps: dict[str, str]
    versions: dict[str, int]
    updated_at: datetime | None = None
    created: bool = False  # no record exists yet: publishing creates it


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


@lru_cache(maxsize=4096)
def stamp(moment: datetime) -> str:
    """A valid_from as stored in ``records.stamps``: UTC, fixed width, so strings order like instants."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_LOCK = """
SELECT subject_id, version, fields, stamps, element_versions, updated_at FROM records
WHERE resource_code = $1 AND subject_id = ANY($2::text[])
ORDER BY subject_id FOR UPDATE
"""


def _currents(rows: Sequence[asyncpg.Record]) -> dict[str, Current]:
    return {row[0]: Current(row[1], row[2], row[3], row[4], row[5]) for row in rows}


_SEEN = """
SELECT subject_id, version, fields, stamps, element_versions, updated_at FROM records
WHERE resource_code = $1 AND subject_id = ANY($2::text[])
"""


async def current_of(session: AsyncSession, resource: str, subject_ids: Sequence[str]) -> dict[str, Current]:
    """The subjects' records as they stand, without locking them (those that exist).

    (Comparing the values in the database instead, to send back only the records that differ, cost the
    server more than it saved here: a dozen microseconds per record to parse and walk the JSON.)"""
    if not subject_ids:
        return {}
    return _currents(await (await driver(session)).fetch(_SEEN, resource, list(subject_ids)))


async def lock_current(
    session: AsyncSession, resource: str, subject_ids: Sequence[str]
) -> dict[str, Current]:
    """Lock the subjects' records (those that exist) and return them as they stand now.

    They are locked in one statement in a fixed order, so concurrent publishers of the same subjects queue
    up instead of racing or deadlocking, and a report compared with a value cannot miss its concurrent
    change. A record that does not exist yet cannot be locked: its creation is checked when it is saved
    (see :func:`save_versions`)."""
    if not subject_ids:
        return {}
    rows = await (await driver(session)).fetch(_LOCK, resource, sorted(set(subject_ids)))
    return _currents(rows)


class RecordCreatedMeanwhile(Exception):
    """A record this transaction was creating was created by a concurrent one first: apply again."""


# One statement per chunk: the records' new state (updated, or created if new), their history, and the
# change events subscribers read (the transactional outbox of subscriptions/), from one set of parameters
# parsed once (a new record's first version holds all its fields: they are sent, and parsed, once). A record
# to create that a concurrent transaction has created meanwhile is not overwritten:
# the statement reports how many it created, and the caller applies again if that falls short.
_SAVE = """
WITH u AS MATERIALIZED (
    SELECT u.subject_id, u.version, f.fields, u.stamps::jsonb AS stamps,
           u.element_versions::jsonb AS element_versions, u.valid_from,
           coalesce(u.values::jsonb, f.fields) AS values, string_to_array(u.elements, ',') AS elements,
           u.previous::jsonb AS previous, u.created
    FROM unnest($5::text[], $6::int[], $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::text[],
                $12::text[], $13::boolean[], $14::text[])
         AS u(subject_id, version, fields, stamps, element_versions, valid_from, values, previous, created,
              elements)
    CROSS JOIN LATERAL (SELECT u.fields::jsonb AS fields) AS f
), saved AS (
    UPDATE records AS r SET version = u.version, fields = u.fields, stamps = u.stamps,
           element_versions = u.element_versions, updated_at = $2
    FROM u WHERE NOT u.created AND r.resource_code = $1 AND r.subject_id = u.subject_id
      AND r.subject_id = ANY($5::text[])
), created AS (
    INSERT INTO records (resource_code, subject_id, version, fields, stamps, element_versions, created_at,
                         updated_at)
    SELECT $1, u.subject_id, u.version, u.fields, u.stamps, u.element_versions, $2, $2 FROM u WHERE u.created
    ON CONFLICT (resource_code, subject_id) DO NOTHING
    RETURNING 1
), history AS (
    INSERT INTO record_versions (resource_code, subject_id, version, valid_from, recorded_at, values,
                                 client_id, department)
    SELECT $1, u.subject_id, u.version, u.valid_from, $2, u.values, $3, $4 FROM u
), events AS (
    INSERT INTO change_events (resource_code, subject_id, kind, version, elements, valid_from, recorded_at,
                               fields, previous)
    SELECT $1, u.subject_id, 'record.changed', u.version, u.elements, u.valid_from, $2, u.fields, u.previous
    FROM u
)
SELECT count(*) FROM created
"""
_TOUCH = text(
    """
    UPDATE records SET updated_at = :now
    WHERE resource_code = :resource AND subject_id = ANY(CAST(:ids AS text[]))
    """
)
_OBSERVATIONS = text(
    """
    INSERT INTO observations (resource_code, subject_id, element, value, department, client_id, observed_at,
                              dated, outcome, note, recorded_at)
    SELECT :resource, u.subject_id, u.element, u.value::jsonb, :department, :client, u.observed_at,
           u.dated, u.outcome, u.note, :now
    FROM unnest(CAST(:ids AS text[]), CAST(:elements AS text[]), CAST(:values AS text[]),
                CAST(:observed_at AS timestamptz[]), CAST(:dated AS boolean[]), CAST(:outcomes AS text[]),
                CAST(:notes AS text[])) AS u(subject_id, element, value, observed_at, dated, outcome, note)
    """
)


@dataclass(slots=True)
class NewVersion:
    subject_id: str
    version: int
    valid_from: datetime
    values: dict[str, Any]
    current: Current
    previous: dict[str, Any]  # the moved elements' values before this version
    created: bool = False  # the record is new: inserted, not updated
    fields_json: str | None = None  # a new record's fields (= this version's values) as JSON


@dataclass(slots=True)
class NewObservation:
    subject_id: str
    element: str
    value: Any
    observed_at: datetime
    outcome: str
    note: str | None = None
    dated: bool = False


async def save_versions(
    session: AsyncSession,
    resource: str,
    versions: Sequence[NewVersion],
    *,
    client: str,
    department: str,
    now: datetime,
) -> None:
    """Write the versions; raises :class:`RecordCreatedMeanwhile` (the caller applies again) if a record to
    create exists by now."""
    if not versions:
        return
    try:
        created = await (await driver(session)).fetchval(
            _SAVE,
            resource,
            now,
            client,
            department,
            [v.subject_id for v in versions],
            [v.version for v in versions],
            [v.fields_json or _json(v.current.fields) for v in versions],
            [_json(v.current.stamps) for v in versions],
            [_json(v.current.versions) for v in versions],
            [v.valid_from for v in versions],
            [None if v.fields_json else _json(v.values) for v in versions],
            [_json(v.previous) for v in versions],
            [v.created for v in versions],
            [",".join(v.values) for v in versions],  # element names are identifiers: no commas
        )
    except asyncpg.UniqueViolationError as error:
        # The first version of a record another transaction was creating meanwhile: its history row is there.
        if error.constraint_name != "pk_record_versions":
            raise
        raise RecordCreatedMeanwhile() from None
    if created != sum(1 for v in versions if v.created):
        raise RecordCreatedMeanwhile()


async def touch(session: AsyncSession, resource: str, subject_ids: Sequence[str], now: datetime) -> None:
    """The source published these records again without a change: they are fresh as of ``now``."""
    if subject_ids:
        await session.execute(_TOUCH, {"resource": resource, "ids": list(subject_ids), "now": now})


async def save_observations(
    session: AsyncSession,
    resource: str,
    observations: Sequence[NewObservation],
    *,
    client: str,
    department: str,
    now: datetime,
) -> None:
    if not observations:
        return
    await session.execute(
        _OBSERVATIONS,
        {
            "resource": resource,
            "department": department,
            "client": client,
            "now": now,
            "ids": [o.subject_id for o in observations],
            "elements": [o.element for o in observations],
            "values": [_json(o.value) for o in observations],
            "observed_at": [o.observed_at for o in observations],
            "dated": [o.dated for o in observations],
            "outcomes": [o.outcome for o in observations],
            "notes": [o.note for o in observations],
        },
    )


_CURRENT = text(
    """
    SELECT subject_id, version, fields, stamps, element_versions, updated_at FROM records
    WHERE resource_code = :resource AND subject_id = ANY(CAST(:ids AS text[])) AND version > 0
    """
)


async def current_records(
    session: AsyncSession, resource: str, subject_ids: Sequence[str]
) -> dict[str, Current]:
    rows = await session.execute(_CURRENT, {"resource": resource, "ids": list(subject_ids)})
    return {row[0]: Current(row[1], row[2], row[3], row[4], row[5]) for row in rows}


# The governed read in one round trip: the caller's client if it and its department are enabled, the
# catalogue version the caller's rules must match, the consumer's grants for the purpose in force now, the
# records and their elements under review. Nothing of it leaves the hub before the caller is confirmed and
# the policy decision on the grants allows it. (Rows are anonymous records, which asyncpg decodes only for
# core types: hence the casts of varchar columns to text.)
_GOVERNED_READ = """
SELECT
    (SELECT ROW(c.department_code::text, c.roles::text[])
     FROM clients AS c JOIN departments AS d ON d.code = c.department_code
     WHERE c.client_id = $6 AND c.disabled_at IS NULL AND d.disabled_at IS NULL) AS client,
    (SELECT version FROM resources WHERE code = $1) AS catalog_version,
    ARRAY(
        SELECT ROW(g.id, g.access::text, array_agg(e.element)::text[], min(e.valid_from), max(e.valid_until))
        FROM grants AS g JOIN grant_elements AS e ON e.grant_id = g.id
        WHERE g.consumer_department = $2 AND g.resource_code = $1 AND g.purpose_code = $3
          AND g.revoked_at IS NULL AND e.revoked_at IS NULL AND e.valid_from <= $4 AND e.valid_until > $4
        GROUP BY g.id, g.access
    ) AS grants,
    ARRAY(
        SELECT ROW(r.subject_id::text, r.version, r.fields, r.stamps, r.element_versions, r.updated_at)
        FROM records AS r
        WHERE r.resource_code = $1 AND r.subject_id = ANY($5::text[]) AND r.version > 0
    ) AS records,
    ARRAY(
        SELECT ROW(d.subject_id::text, d.element::text) FROM discrepancies AS d
        WHERE d.resource_code = $1 AND d.status = 'open' AND d.subject_id = ANY($5::text[])
    ) AS under_review
"""


@dataclass(slots=True)
class GovernedRead:
    client: tuple[str, list[str]] | None  # department and roles, if the client and department are enabled
    catalog_version: int | None
    grants: list[GrantView]
    records: dict[str, Current]
    under_review: dict[str, set[str]]


async def governed_read(
    db: Db,
    resource: str,
    client_id: str,
    department: str,
    purpose: str,
    now: datetime,
    subject_ids: Sequence[str],
) -> GovernedRead:
    row = await db.fetchrow(_GOVERNED_READ, resource, department, purpose, now, list(subject_ids), client_id)
    assert row is not None
    flagged: dict[str, set[str]] = {}
    for subject_id, element in row["under_review"]:
        flagged.setdefault(subject_id, set()).add(element)
    return GovernedRead(
        client=row["client"],
        catalog_version=row["catalog_version"],
        grants=[
            GrantView(
                id=id_,
                purpose=purpose,
                access=Access(access),
                elements=frozenset(elements),
                valid_from=valid_from,
                valid_until=valid_until,
            )
            for id_, access, elements, valid_from, valid_until in row["grants"]
        ],
        records={r[0]: Current(r[1], r[2], r[3], r[4], r[5]) for r in row["records"]},
        under_review=flagged,
    )


_HISTORY_OF = """
SELECT subject_id, version, valid_from, values FROM record_versions
WHERE resource_code = $1 AND subject_id = ANY($2::text[]) AND valid_from <= $3 AND recorded_at <= $4
ORDER BY subject_id, valid_from, recorded_at, version
"""


async def records_as_of(
    db: Db, resource: str, subject_ids: Sequence[str], as_of: datetime, known_at: datetime
) -> dict[str, Current]:
    """Each subject's values as they were true at ``as_of``, by what the hub knew at ``known_at``:
    per element, the value with the latest valid_from (ties: the later recorded) wins."""
    result: dict[str, Current] = {}
    for row in await db.fetch(_HISTORY_OF, resource, list(subject_ids), as_of, known_at):
        record = result.setdefault(row["subject_id"], Current(0, {}, {}, {}))
        record.version = max(record.version, row["version"])
        valid_from = stamp(row["valid_from"])
        for name, value in row["values"].items():
            record.fields[name] = value
            record.stamps[name] = valid_from
            record.versions[name] = row["version"]
    return result
