from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from exchange.errors import InvalidParam
from exchange.timestamps import Timestamp

MAX_SUBJECTS_PER_QUERY = 100


class PublishBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_id: str = Field(min_length=1, max_length=64)
    fields: dict[str, Any] = Field(
        min_length=1, description="element → value; null clears an optional element"
    )
    valid_from: Timestamp | None = Field(
        default=None, description="When the values became true (default: now). Not in the future."
    )


class PublishResult(BaseModel):
    subject_id: str
    version: int = Field(
        description="The record's version after this publish (unchanged if nothing changed)."
    )
    applied: list[str] = Field(description="Elements the caller is the source of: canonical values.")
    changed: list[str] = Field(description="Applied elements whose value changed (a new version).")
    observed: list[str] = Field(
        description="Elements of other sources: kept as observations for cross-checking."
    )
    discrepancies: list[str] = Field(
        default_factory=list,
        description="Discrepancies opened or joined by observed values that disagree with canonical ones.",
    )
    warnings: list[str] = Field(default_factory=list)


class BatchError(BaseModel):
    line: int = Field(description="1-based line number in the request body.")
    subject_id: str | None = None
    invalid_params: list[InvalidParam]


class BatchResult(BaseModel):
    accepted: int
    rejected: int
    applied_versions: int = Field(description="New record versions written.")
    observations: int = 0
    discrepancies: int = Field(0, description="Observed values that disagree (each opened or joined one).")
    lines: int = Field(description="Lines of the body read (blank lines are skipped but counted).")
    resumed_after_line: int = Field(
        0, description="Lines already applied by an earlier attempt with this key."
    )
    errors: list[BatchError]
    errors_truncated: bool = False
    warnings: int = 0


class QueryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_ids: list[str] = Field(min_length=1, max_length=MAX_SUBJECTS_PER_QUERY)
    fields: list[str] = Field(
        min_length=1, description="The elements wanted; each must be covered by a grant."
    )
    as_of: Timestamp | None = Field(default=None, description="Valid time: the record as it was true then.")
    known_at: Timestamp | None = Field(default=None, description="Record time: as the hub knew it then.")


class RecordOut(BaseModel):
    subject_id: str
    version: int
    valid_from: datetime | None
    fields: dict[str, Any]
    under_review: list[str] = Field(
        description="Requested elements whose value another department doubts (an open discrepancy)."
    )


class QueryResult(BaseModel):
    records: list[RecordOut]
    not_found: list[str]


class VerifyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_id: str = Field(min_length=1, max_length=64)
    fields: dict[str, Any] = Field(min_length=1, description="element → the value the caller holds")


class VerifyResult(BaseModel):
    subject_id: str
    found: bool
    matches: dict[str, bool]
    under_review: list[str] = Field(
        default_factory=list, description="Elements whose canonical value an open discrepancy doubts."
    )
