"""Cross-checking rules (多元校核): compare reported values with canonical ones, keep what follows from it.

Called by the records service inside the publishing transaction: reports of elements the publisher is not the
source of are compared with the locked current record; agreement is kept as corroboration, disagreement
opens (or joins) the discrepancy of that canonical value. When the source changes a doubted value, the
discrepancy closes as corrected if the new value matches a report, and otherwise follows the new value.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from exchange.access.workdays import add_working_days
from exchange.crosscheck import repository
from exchange.crosscheck.compare import Matcher
from exchange.crosscheck.repository import Agreement, Doubt, Opened, Settled
from exchange.crosscheck.schemas import Outcome
from exchange.records.repository import Current, stamp
from exchange.records.validation import ResourceRules
from exchange.subscriptions import outbox

HUB = "hub"  # ``resolved_by`` of what the hub settles by itself
AGREED = "every reporting department now reports a value that agrees"


@dataclass(frozen=True, slots=True)
class Reported:
    """A value of an element reported by a department that is not its source."""

    subject_id: str
    element: str
    value: Any
    observed_at: datetime
    note: str | None = None
    dated: bool = False  # observed_at was given by the reporter, not the time the report arrived


@dataclass(frozen=True, slots=True)
class Compared:
    reported: Reported
    outcome: Outcome
    version: int | None = None
    canonical: Any = None


_NOTHING_TO_COMPARE = frozenset({Outcome.empty, Outcome.no_canonical})


def compare(
    rules: ResourceRules, reported: Sequence[Reported], current: Mapping[str, Current]
) -> list[Compared]:
    """Each report against the element's current canonical value (pure).

    A report dated by its reporter before the canonical value became true is ``stale``: the world may have
    changed since, so it is kept but counts neither for nor against the value. An undated report states what
    the reporter holds now and is compared. A null on either side states nothing.
    """
    results = []
    for item in reported:
        record = current.get(item.subject_id)
        canonical = None if record is None or record.version == 0 else record.fields.get(item.element)
        outcome = judge(
            rules.matchers[item.element],
            item.value,
            canonical,
            item.dated,
            item.observed_at,
            "" if record is None else record.stamps.get(item.element, ""),
        )
        if outcome in _NOTHING_TO_COMPARE or record is None:
            results.append(Compared(item, outcome))
        else:
            version = record.versions.get(item.element, record.version)
            results.append(Compared(item, outcome, version, canonical))
    return results


def judge(
    matches: Matcher, value: Any, canonical: Any, dated: bool, observed_at: datetime, canonical_since: str
) -> Outcome:
    """One reported value against the canonical one, which has been true since the stamp ``canonical_since``
    (pure; the rules of :func:`compare`)."""
    if value is None:
        return Outcome.empty
    if canonical is None:
        return Outcome.no_canonical
    if dated and stamp(observed_at) < canonical_since:
        return Outcome.stale
    return Outcome.agrees if matches(canonical, value) else Outcome.disagrees


@dataclass(frozen=True, slots=True)
class Reporter:
    department: str
    client_id: str


def review_deadline(now: datetime, working_days: int) -> datetime:
    return add_working_days(now, working_days)


async def keep(
    session: AsyncSession,
    rules: ResourceRules,
    reporter: Reporter,
    compared: Sequence[Compared],
    now: datetime,
    review_days: int,
) -> dict[tuple[str, str], Opened]:
    """Keep what the comparisons showed: corroborations, and discrepancies for the source to settle.

    Returns the discrepancy of each disagreeing (subject, element).
    """
    code = rules.spec.code
    doubts = [
        Doubt(
            c.reported.subject_id,
            c.reported.element,
            c.version or 0,
            c.canonical,
            rules.elements[c.reported.element].source_department,
            c.reported.value,
            c.reported.note,
        )
        for c in compared
        if c.outcome is Outcome.disagrees
    ]
    agreements = [
        Agreement(c.reported.subject_id, c.reported.element, c.version or 0)
        for c in compared
        if c.outcome is Outcome.agrees
    ]
    opened = await repository.open_discrepancies(
        session,
        code,
        doubts,
        department=reporter.department,
        client=reporter.client_id,
        now=now,
        due=review_deadline(now, review_days),
    )
    lost = await repository.corroborate(session, code, agreements, department=reporter.department, now=now)
    settled = await repository.close_unreported(session, lost, by=HUB, note=AGREED, now=now)
    await announce(session, code, [o for o in opened if o.fresh], settled, now)
    return {(o.subject_id, o.element): o for o in opened}


async def keep_reconciled(
    session: AsyncSession,
    rules: ResourceRules,
    reporter: Reporter,
    elements: Sequence[str],
    now: datetime,
    review_days: int,
) -> int:
    """:func:`keep` for the reports a reconciliation has judged (its work table, ``elements`` reported):
    made before, so not counted once more. Returns how many discrepancies it opened."""
    code = rules.spec.code
    opened = await repository.open_reconciled(
        session,
        code,
        {name: rules.elements[name].source_department for name in elements},
        department=reporter.department,
        client=reporter.client_id,
        now=now,
        due=review_deadline(now, review_days),
    )
    lost = await repository.corroborate_reconciled(session, code, department=reporter.department, now=now)
    settled = await repository.close_unreported(session, lost, by=HUB, note=AGREED, now=now)
    await announce(session, code, [], settled, now)
    return opened


async def announce(
    session: AsyncSession,
    resource: str,
    under_review: Sequence[Opened],
    settled: Sequence[Settled],
    now: datetime,
) -> None:
    """Tell subscribers which elements came under review and which reviews were settled."""
    await outbox.review_changes(
        session,
        resource,
        [outbox.ReviewChange(o.subject_id, o.element, o.version, settled=False) for o in under_review]
        + [outbox.ReviewChange(s.subject_id, s.element, s.version, settled=True) for s in settled],
        now,
    )


async def on_canonical_change(
    session: AsyncSession,
    rules: ResourceRules,
    moved: Mapping[str, Sequence[str]],
    current: Mapping[str, Current],
    now: datetime,
) -> list[uuid.UUID]:
    """Settle open discrepancies whose doubted value the source has just replaced; returns those corrected.

    A new value that matches a report closes the discrepancy as corrected (and that report now corroborates
    it); a new value that matches none leaves it open on the new value, which the reports still contradict.
    """
    if not moved:
        return []
    code = rules.spec.code
    reports = await repository.active_reports(session, code, list(moved))
    by_discrepancy: dict[uuid.UUID, list[repository.ActiveReport]] = defaultdict(list)
    for report in reports:
        if report.element in moved[report.subject_id]:
            by_discrepancy[report.discrepancy_id].append(report)
    corrected: list[tuple[uuid.UUID, int, str]] = []
    carried: list[tuple[uuid.UUID, int, Any]] = []
    confirming: list[tuple[Agreement, str]] = []
    for discrepancy_id, group in by_discrepancy.items():
        subject_id, element = group[0].subject_id, group[0].element
        record = current[subject_id]
        value, version = record.fields.get(element), record.versions[element]
        matches = rules.matchers[element]
        agreeing = sorted(r.department for r in group if matches(value, r.value))
        if agreeing:
            note = f"the source published a value matching the report of {', '.join(agreeing)}"
            corrected.append((discrepancy_id, version, note))
            confirming += [(Agreement(subject_id, element, version), department) for department in agreeing]
        else:
            carried.append((discrepancy_id, version, value))
    await announce(session, code, [], await repository.correct(session, corrected, by=HUB, now=now), now)
    await repository.carry(session, carried)
    await repository.corroborate_many(session, code, confirming, now)
    return [discrepancy_id for discrepancy_id, _, _ in corrected]
