from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from exchange.timestamps import Timestamp


class Outcome(StrEnum):
    """How a reported value compared with the canonical one when it arrived."""

    agrees = "agrees"
    disagrees = "disagrees"
    no_canonical = "no_canonical"  # the hub holds no canonical value to compare with
    stale = "stale"  # observed before the canonical value became true: not evidence against it
    empty = "empty"  # the report carries no value: nothing to compare


class Resolution(StrEnum):
    confirmed = "confirmed"
    corrected = "corrected"
    withdrawn = "withdrawn"


class ReportBody(BaseModel):
    """A department doubts a canonical value and says which value it holds (terugmelding)."""

    model_config = ConfigDict(extra="forbid")

    resource: str = Field(min_length=1, max_length=100, examples=["population.person"])
    subject_id: str = Field(min_length=1, max_length=64)
    element: str = Field(min_length=1, max_length=63)
    value: Any = Field(description="The value your department holds or observed.")
    note: str = Field(min_length=1, max_length=2000, description="Where the value comes from, and why.")
    observed_at: Timestamp | None = Field(default=None, description="When it was observed (default: now).")


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Resolution = Field(
        description="confirmed / corrected: the source department; withdrawn: a reporting department."
    )
    note: str = Field(min_length=1, max_length=2000, description="The reason, kept with the discrepancy.")
    value: Any = Field(
        default=None,
        description="corrected only: the corrected value, published as the new canonical value at once.",
    )


class ReporterOut(BaseModel):
    department: str
    value: Any = Field(default=None, description="Shown to the source department and to the reporter itself.")
    note: str | None = None
    first_reported_at: datetime
    last_reported_at: datetime
    times: int
    withdrawn: bool


class DiscrepancyOut(BaseModel):
    id: uuid.UUID
    resource: str
    subject_id: str
    element: str
    status: str = Field(description="open | confirmed | corrected | withdrawn")
    source_department: str
    canonical_version: int = Field(description="The record version that set the doubted value.")
    canonical_value: Any = Field(default=None, description="The doubted value: shown to its source only.")
    values_shown: bool = Field(description="Whether this view carries values (source, or own report).")
    reporters: list[ReporterOut] = Field(description="Every reporting department, or only your own report.")
    reporter_count: int = Field(description="Departments whose report is not withdrawn.")
    opened_at: datetime
    due_at: datetime
    overdue: bool = Field(description="Still open after the deadline.")
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None
    corrected_version: int | None


class DiscrepancyPage(BaseModel):
    items: list[DiscrepancyOut]
    next_cursor: str | None


class ReportResult(BaseModel):
    outcome: Outcome
    corroborations: int = Field(
        description="Departments other than the source confirming the canonical value."
    )
    discrepancy: DiscrepancyOut | None


class RunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource: str = Field(min_length=1, max_length=100)
    department: str = Field(min_length=1, max_length=18, description="The reporting department to reconcile.")


class ElementReconciliation(BaseModel):
    element: str
    compared: int = Field(description="Subjects whose latest reported value was compared.")
    agreeing: int
    disagreeing: int
    stale: int = Field(description="Reported values older than the canonical value: not compared.")
    missing_canonical: int = Field(description="Reported, but the hub holds no canonical value.")
    missing_reported: int = Field(description="A canonical value the department never reported.")


class ReconciliationReport(BaseModel):
    resource: str
    department: str
    subjects_reported: int
    discrepancies_opened: int
    elements: list[ElementReconciliation]


class RunOut(BaseModel):
    id: uuid.UUID
    resource: str
    department: str
    status: str = Field(description="queued | running | done | failed")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    report: ReconciliationReport | None
    error: str | None


class ElementQuality(BaseModel):
    element: str
    required: bool
    filled: int = Field(description="Records holding a value.")
    completeness: float | None = Field(description="filled / records")
    agreeing: int = Field(description="Reports by other departments agreeing with the current value.")
    disagreeing: int = Field(description="Reports disagreeing with it (open or confirmed discrepancies).")
    consistency: float | None = Field(description="agreeing / (agreeing + disagreeing)")
    open_discrepancies: int


class Freshness(BaseModel):
    update_cycle: str
    window_days: int = Field(description="A record is fresh if its source published it within this window.")
    fresh: int
    share: float | None


class OpenDiscrepancies(BaseModel):
    count: int
    overdue: int
    oldest_days: float | None
    median_days: float | None


class QualityOut(BaseModel):
    resource: str
    title: str
    measured_at: datetime
    records: int
    completeness: float | None = Field(description="Mean completeness of the required elements.")
    consistency: float | None = Field(description="Share of cross-checked values that agree.")
    freshness: Freshness
    discrepancies: OpenDiscrepancies
    elements: list[ElementQuality]


class QualityStatistics(BaseModel):
    items: list[QualityOut]
