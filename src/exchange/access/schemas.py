from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from exchange.access.policy import Access
from exchange.timestamps import Timestamp

Text = Field(min_length=1, max_length=2000)


class SharingRequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource: str = Field(min_length=1, max_length=100, examples=["population.person"])
    elements: list[str] = Field(min_length=1, max_length=200)
    access: Access
    purpose: str = Field(min_length=1, max_length=64, description="A registered purpose code.")
    legal_basis: str = Field(min_length=1, max_length=2000, description="The law or regulation relied on.")
    valid_until: Timestamp = Field(description="The end of the period asked for.")
    justification: str = Field(min_length=1, max_length=4000, description="Why the elements are needed.")
    case_reference: str | None = Field(default=None, max_length=600)


class RequestedElementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    element: str
    source_department: str
    state: str = Field(description="granted | pending | rejected")
    reason: str | None = None
    valid_until: datetime | None = None
    decided_at: datetime | None = None


class SharingRequestOut(BaseModel):
    id: uuid.UUID
    status: str = Field(description="pending | granted | partially_granted | rejected")
    resource: str
    consumer_department: str
    access: Access
    purpose: str
    legal_basis: str
    justification: str
    case_reference: str | None
    valid_until: datetime
    created_at: datetime
    due_at: datetime
    overdue: bool = Field(description="Still pending after the decision deadline.")
    decided_at: datetime | None
    grant_id: uuid.UUID | None
    elements: list[RequestedElementOut]


class SharingRequestPage(BaseModel):
    items: list[SharingRequestOut]
    next_cursor: str | None


class ElementDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    element: str
    approve: bool
    reason: str | None = Field(default=None, max_length=2000, description="Required when refusing.")


class DecisionsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decisions: list[ElementDecision] = Field(min_length=1)
    valid_until: Timestamp | None = Field(default=None, description="Shorten the period (never lengthen).")


class GrantElementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    element: str
    source_department: str
    valid_from: datetime
    valid_until: datetime
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    in_force: bool


class GrantOut(BaseModel):
    id: uuid.UUID
    consumer_department: str
    resource: str
    purpose: str
    access: Access
    created_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None
    elements: list[GrantElementOut]


class GrantPage(BaseModel):
    items: list[GrantOut]
    next_cursor: str | None


class RevokeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class SharingStatistics(BaseModel):
    pending: int
    granted: int
    partially_granted: int
    rejected: int
    overdue: int = Field(description="Pending past their decision deadline now.")
    decided_late: int = Field(description="Decided after their deadline.")
    median_hours_to_decision: float | None = Field(description="Median time from request to last decision.")
