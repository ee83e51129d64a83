from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from exchange.timestamps import Timestamp


class OutcomeFilter(StrEnum):
    allowed = "allowed"
    denied = "denied"
    error = "error"


class EventSearch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: Timestamp | None = None
    until: Timestamp | None = None
    department: str | None = Field(default=None, max_length=18)
    client_id: str | None = Field(default=None, max_length=64)
    officer: str | None = Field(default=None, max_length=600)
    action: str | None = Field(default=None, max_length=64)
    resource: str | None = Field(default=None, max_length=100)
    subject_id: str | None = Field(default=None, max_length=64)
    element: str | None = Field(default=None, max_length=63)
    purpose: str | None = Field(default=None, max_length=64)
    case: str | None = Field(default=None, max_length=600)
    outcome: OutcomeFilter | None = None
    cursor: str | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class EventOut(BaseModel):
    id: int
    seq: int | None = Field(description="Place in the hash chain; null until the integrator reaches it.")
    occurred_at: datetime
    action: str
    outcome: str
    reason: str | None
    department: str | None
    client_id: str | None
    officer: str | None
    purpose: str | None
    case: str | None
    grant_id: uuid.UUID | None
    resource: str | None
    subject_ids: list[str]
    elements: list[str]
    request_id: str | None
    details: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


class SubjectQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_id: str = Field(min_length=1, max_length=64)
    since: Timestamp | None = None
    limit: int = Field(default=200, ge=1, le=1000)


class SubjectAccess(BaseModel):
    at: datetime
    action: str
    department: str | None
    client_id: str | None
    officer: str | None
    purpose: str | None
    case: str | None
    resource: str | None
    elements: list[str]
    outcome: str


class SubjectAccesses(BaseModel):
    subject_id: str
    items: list[SubjectAccess]


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    first_bad: int | None
    checkpoints: int
    unchained_events: list[int]
    problems: list[str]


class CheckpointOut(BaseModel):
    seq: int
    hash: str
    created_at: datetime
    signature: str = Field(description="JWS (ES256) over {seq, hash, at}, verifiable with the hub's JWKS.")
