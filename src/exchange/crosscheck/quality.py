"""Data quality per resource (量化评估): completeness, consistency, freshness, open discrepancies.

Every figure is one aggregate statement over the resource, so a dashboard asking for all of them costs a
handful of index or sequential scans, never a loop over records.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.catalog import repository as catalog_repository
from exchange.catalog.schemas import UpdateCycle
from exchange.crosscheck.repository import NOT_SINCE_CONTRADICTED
from exchange.crosscheck.schemas import ElementQuality, Freshness, OpenDiscrepancies, QualityOut
from exchange.records import service as records
from exchange.records.validation import ResourceRules

# How recently the source must have published a record for it to count as fresh, per update cycle (更新周期):
# the cycle itself plus a day's grace for a late run.
FRESH_WITHIN_DAYS = {
    UpdateCycle.realtime: 1,
    UpdateCycle.daily: 2,
    UpdateCycle.weekly: 8,
    UpdateCycle.monthly: 32,
    UpdateCycle.quarterly: 93,
    UpdateCycle.semiannual: 184,
    UpdateCycle.yearly: 367,
}

_RECORDS = text(
    """
    SELECT count(*) AS records, count(*) FILTER (WHERE updated_at >= :fresh_since) AS fresh
    FROM records WHERE resource_code = :resource AND version > 0
    """
)
_FILLED = text(
    """
    SELECT f.key AS element, count(*) AS n
    FROM records AS r CROSS JOIN LATERAL jsonb_each(r.fields) AS f
    WHERE r.resource_code = :resource AND r.version > 0 AND f.value <> 'null'::jsonb
    GROUP BY f.key
    """
)
# Agreement with the value the record holds now: corroborations of its current element version.
_AGREEING = text(
    f"""
    SELECT c.element, count(*) AS n
    FROM corroborations AS c
    JOIN records AS r ON r.resource_code = c.resource_code AND r.subject_id = c.subject_id
    WHERE c.resource_code = :resource
      AND CAST(r.element_versions ->> c.element AS int) = c.canonical_version
      AND {NOT_SINCE_CONTRADICTED}
    GROUP BY c.element
    """  # noqa: S608 (a constant fragment, no input)
)
# Disagreement still standing: reports not withdrawn, on discrepancies open or confirmed by the source, about
# the value the record holds now.
_DISAGREEING = text(
    """
    SELECT d.element, count(*) AS n
    FROM discrepancies AS d
    JOIN discrepancy_reports AS rp ON rp.discrepancy_id = d.id AND rp.withdrawn_at IS NULL
    JOIN records AS r ON r.resource_code = d.resource_code AND r.subject_id = d.subject_id
    WHERE d.resource_code = :resource AND d.status IN ('open', 'confirmed')
      AND CAST(r.element_versions ->> d.element AS int) = d.canonical_version
    GROUP BY d.element
    """
)
_OPEN = text(
    """
    SELECT element, count(*) AS n, count(*) FILTER (WHERE due_at < :now) AS overdue,
           min(opened_at) AS oldest,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM :now - opened_at)) AS median_seconds
    FROM discrepancies WHERE resource_code = :resource AND status = 'open'
    GROUP BY GROUPING SETS ((element), ())
    """
)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _days(seconds: float | None) -> float | None:
    return round(seconds / 86_400, 2) if seconds is not None else None


async def measure(session: AsyncSession, rules: ResourceRules, now: datetime) -> QualityOut:
    spec = rules.spec
    window = FRESH_WITHIN_DAYS[spec.update_cycle]
    params = {"resource": spec.code, "now": now, "fresh_since": now - timedelta(days=window)}
    totals = (await session.execute(_RECORDS, params)).one()
    filled = {row.element: row.n for row in await session.execute(_FILLED, params)}
    agreeing = {row.element: row.n for row in await session.execute(_AGREEING, params)}
    disagreeing = {row.element: row.n for row in await session.execute(_DISAGREEING, params)}
    open_rows = list(await session.execute(_OPEN, params))
    open_by_element = {row.element: row.n for row in open_rows if row.element is not None}
    overall = next((row for row in open_rows if row.element is None), None)
    elements = [
        ElementQuality(
            element=name,
            required=element.required,
            filled=filled.get(name, 0),
            completeness=_share(filled.get(name, 0), totals.records),
            agreeing=agreeing.get(name, 0),
            disagreeing=disagreeing.get(name, 0),
            consistency=_share(agreeing.get(name, 0), agreeing.get(name, 0) + disagreeing.get(name, 0)),
            open_discrepancies=open_by_element.get(name, 0),
        )
        for name, element in rules.elements.items()
    ]
    required = [e.completeness for e in elements if e.required and e.completeness is not None]
    agree, disagree = sum(agreeing.values()), sum(disagreeing.values())
    return QualityOut(
        resource=spec.code,
        title=spec.title,
        measured_at=now,
        records=totals.records,
        completeness=round(sum(required) / len(required), 4) if required else None,
        consistency=_share(agree, agree + disagree),
        freshness=Freshness(
            update_cycle=spec.update_cycle.value,
            window_days=window,
            fresh=totals.fresh,
            share=_share(totals.fresh, totals.records),
        ),
        discrepancies=OpenDiscrepancies(
            count=overall.n if overall else 0,
            overdue=overall.overdue if overall else 0,
            oldest_days=_days((now - overall.oldest).total_seconds()) if overall and overall.oldest else None,
            median_days=_days(overall.median_seconds) if overall else None,
        ),
        elements=elements,
    )


async def measure_all(session: AsyncSession, now: datetime) -> list[QualityOut]:
    """The quality figures of every resource of the catalogue."""
    return [
        await measure(session, await records.load_rules(session, code), now)
        for code in await catalog_repository.resource_codes(session)
    ]
