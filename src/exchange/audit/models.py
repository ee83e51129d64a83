from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base


class AuditEvent(Base):
    """One access or change: who, on whose behalf, what, why, with which outcome, when."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint("outcome IN ('allowed','denied','error')", name="outcome_known"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
        Index("ix_audit_events_subject_ids", "subject_ids", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(String(18))
    client_id: Mapped[str | None] = mapped_column(String(64))
    officer: Mapped[str | None] = mapped_column(Text)
    purpose: Mapped[str | None] = mapped_column(String(64))
    case_reference: Mapped[str | None] = mapped_column(Text)
    grant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    resource: Mapped[str | None] = mapped_column(String(100))
    subject_ids: Mapped[list[str]] = mapped_column(ARRAY(Text))
    elements: Mapped[list[str]] = mapped_column(ARRAY(Text))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB)
