"""Change events (the transactional outbox), subscriptions to them, and webhook delivery attempts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from exchange.db.base import Base, created_at_column


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id, read and written as an integer."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


class ChangeEvent(Base):
    """One change of a record (or of its review state), written in the transaction that made it.

    Feeds are ordered by (``txid``, ``seq``) and read only below the oldest transaction still running, so
    an event whose transaction commits late is never skipped by a reader that has moved past its ``seq``.
    """

    __tablename__ = "change_events"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('record.changed','record.under_review','record.review_settled')", name="kind_known"
        ),
        Index("ix_change_events_position", "resource_code", "txid", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    txid: Mapped[int] = mapped_column(Xid8(), server_default=text("pg_current_xact_id()"))
    resource_code: Mapped[str] = mapped_column(String(100))
    subject_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(24))
    version: Mapped[int] = mapped_column(Integer)
    elements: Mapped[list[str]] = mapped_column(ARRAY(Text), comment="the elements changed or reviewed")
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    fields: Mapped[dict[str, Any] | None] = mapped_column(
        JSONB(none_as_null=True), comment="the record after the change (record.changed)"
    )
    previous: Mapped[dict[str, Any] | None] = mapped_column(
        JSONB(none_as_null=True), comment="the changed elements' values before it"
    )


class Subscription(Base):
    """A consumer's standing request for change events of a resource, under a subscribe grant."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint("mode IN ('pull','webhook')", name="mode_known"),
        CheckConstraint("payload IN ('thin','full')", name="payload_known"),
        CheckConstraint("status IN ('active','paused','suspended','disabled')", name="status_known"),
        CheckConstraint("(mode = 'webhook') = (url IS NOT NULL)", name="webhook_has_url"),
        Index(
            "ix_subscriptions_due",
            "next_attempt_at",
            postgresql_where=text("mode = 'webhook' AND status = 'active'"),
        ),
        Index("ix_subscriptions_consumer", "consumer_department", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    consumer_department: Mapped[str] = mapped_column(String(18), ForeignKey("departments.code"))
    client_id: Mapped[str] = mapped_column(String(64))
    resource_code: Mapped[str] = mapped_column(String(100))
    elements: Mapped[list[str]] = mapped_column(ARRAY(Text))
    purpose_code: Mapped[str] = mapped_column(String(64), ForeignKey("purposes.code"))
    filter: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    payload: Mapped[str] = mapped_column(String(8))
    mode: Mapped[str] = mapped_column(String(8))
    url: Mapped[str | None] = mapped_column(Text)
    secret: Mapped[str | None] = mapped_column(Text, comment="Standard Webhooks signing secret (whsec_…)")
    status: Mapped[str] = mapped_column(String(12))
    status_reason: Mapped[str | None] = mapped_column(Text)
    # The position delivered (webhook) or acknowledged (pull): events after it are still to come.
    cursor_txid: Mapped[int] = mapped_column(BigInteger)
    cursor_seq: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(
        Integer, server_default=text("0"), comment="for the event at the head"
    )
    dead_in_a_row: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))
    created_at: Mapped[datetime] = created_at_column()


class Delivery(Base):
    """One attempt to deliver one event to a webhook: the attempts log and, for ``dead``, the dead letters."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint("outcome IN ('delivered','failed','dead')", name="outcome_known"),
        Index("ix_deliveries_subscription", "subscription_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("subscriptions.id", ondelete="CASCADE")
    )
    event_seq: Mapped[int] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(10))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float] = mapped_column()
    attempted_at: Mapped[datetime] = created_at_column()
