from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Payload(StrEnum):
    thin = "thin"  # subject and changed element names; read the values through the audited query API
    full = "full"  # the granted values travel in the event (each delivery audited)


class Condition(BaseModel):
    """One filter condition on an element of the record: equal to a value, or starting with a prefix."""

    model_config = ConfigDict(extra="forbid")

    element: str = Field(min_length=1, max_length=63)
    equals: Any = None
    prefix: str | None = Field(default=None, min_length=1, max_length=64, examples=["150402"])

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        if (self.equals is None) == (self.prefix is None):
            raise ValueError("give exactly one of equals and prefix")
        return self


class PullDelivery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["pull"]


class WebhookDelivery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["webhook"]
    url: str = Field(
        min_length=8, max_length=2000, examples=["https://minzheng.example.gov.cn/hooks/exchange"]
    )


Delivery = Annotated[PullDelivery | WebhookDelivery, Field(discriminator="mode")]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource: str = Field(min_length=1, max_length=100)
    elements: list[str] = Field(min_length=1, max_length=200)
    purpose: str = Field(min_length=1, max_length=64)
    filter: list[Condition] = Field(
        default_factory=list, max_length=10, description="All must hold (before or after the change)."
    )
    payload: Payload = Payload.thin
    delivery: Delivery


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    resource: str
    elements: list[str]
    purpose: str
    filter: list[Condition]
    payload: Payload
    delivery: dict[str, Any]
    status: str = Field(
        description="active | paused | suspended (no grant) | disabled (410 from the endpoint)"
    )
    status_reason: str | None
    cursor: str = Field(description="Events after this position are still to be delivered or acknowledged.")
    created_at: datetime
    secret: str | None = Field(
        default=None,
        description="Standard Webhooks signing secret: shown once, when the subscription is made.",
    )


class SubscriptionPage(BaseModel):
    items: list[SubscriptionOut]


class EventPage(BaseModel):
    events: list[dict[str, Any]] = Field(description="CloudEvents 1.0, structured JSON, in order.")
    next_cursor: str


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cursor: str = Field(min_length=1, max_length=200)


class ReplayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: str = Field(min_length=1, max_length=200, description="A cursor: events after it are sent again.")


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    event_seq: int
    attempt: int
    outcome: str = Field(
        description="delivered | failed | dead (dead letter: gave up after the last attempt)"
    )
    status_code: int | None
    error: str | None
    duration_ms: float
    attempted_at: datetime


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
