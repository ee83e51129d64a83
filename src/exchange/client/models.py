"""What the hub answers, as pydantic models.

The answers of sharing, cross-checking, subscriptions, audit and auth are the hub's own schemas. Those of
records are declared here: the hub's ``records.schemas`` pulls in its web framework, which a department
system using this client does not need.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from exchange.access.schemas import GrantOut, GrantPage, SharingRequestOut, SharingRequestPage
from exchange.audit.schemas import EventOut as AuditEvent
from exchange.audit.schemas import EventPage as AuditEventPage
from exchange.auth.schemas import CallerOut, TokenResponse
from exchange.client.errors import InvalidParam
from exchange.crosscheck.schemas import DiscrepancyOut, DiscrepancyPage, QualityOut, ReportResult
from exchange.subscriptions.schemas import EventPage, SubscriptionOut

__all__ = [
    "AuditEvent",
    "AuditEventPage",
    "BatchError",
    "BatchResult",
    "CallerOut",
    "DiscrepancyOut",
    "DiscrepancyPage",
    "EventPage",
    "GrantOut",
    "GrantPage",
    "PublishResult",
    "QualityOut",
    "QueryResult",
    "RecordOut",
    "ReportResult",
    "SharingRequestOut",
    "SharingRequestPage",
    "SubscriptionOut",
    "TokenResponse",
    "VerifyResult",
]


class PublishResult(BaseModel):
    subject_id: str
    version: int
    applied: list[str]
    changed: list[str]
    observed: list[str]
    discrepancies: list[str] = []
    warnings: list[str] = []


class BatchError(BaseModel):
    line: int
    subject_id: str | None = None
    invalid_params: list[InvalidParam]


class BatchResult(BaseModel):
    accepted: int
    rejected: int
    applied_versions: int
    observations: int = 0
    discrepancies: int = 0
    lines: int
    resumed_after_line: int = 0
    errors: list[BatchError]
    errors_truncated: bool = False
    warnings: int = 0


class RecordOut(BaseModel):
    subject_id: str
    version: int
    valid_from: datetime | None
    fields: dict[str, Any]
    under_review: list[str]


class QueryResult(BaseModel):
    records: list[RecordOut]
    not_found: list[str]


class VerifyResult(BaseModel):
    subject_id: str
    found: bool
    matches: dict[str, bool]
    under_review: list[str] = []
