"""Tables of cross-checking (多元校核): discrepancies, who reported them, corroborations, runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, created_at_column

STATUSES = ("open", "confirmed", "corrected", "withdrawn")


class Discrepancy(Base):
    """Other departments doubt one canonical value: the source must settle it (校核纠错, terugmelding).

    One per (subject, element, canonical version): every report against that value gathers here. While it is
    ``open`` it always concerns the element's current value, and reads flag the element as under review.
    """

    __tablename__ = "discrepancies"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES}", name="status_known"),
        CheckConstraint("(status = 'open') = (resolved_at IS NULL)", name="resolved_when_closed"),
        UniqueConstraint(
            "resource_code", "subject_id", "element", "canonical_version", name="uq_discrepancies_value"
        ),
        Index(
            "uq_discrepancies_open",
            "resource_code",
            "subject_id",
            "element",
            unique=True,
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_discrepancies_source", "source_department", "status", "opened_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    resource_code: Mapped[str] = mapped_column(String(100))
    subject_id: Mapped[str] = mapped_column(String(64))
    element: Mapped[str] = mapped_column(String(63))
    canonical_version: Mapped[int] = mapped_column(Integer)
    canonical_value: Mapped[Any] = mapped_column(JSONB(none_as_null=True), nullable=True)
    source_department: Mapped[str] = mapped_column(String(18), ForeignKey("departments.code"))
    status: Mapped[str] = mapped_column(String(12))
    opened_at: Mapped[datetime] = created_at_column()
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(64), comment="client id, or 'hub' when automatic")
    resolution_note: Mapped[str | None] = mapped_column(Text)
    corrected_version: Mapped[int | None] = mapped_column(Integer)


class DiscrepancyReport(Base):
    """One department's report on a discrepancy: the value it holds, its note, how often it said so."""

    __tablename__ = "discrepancy_reports"
    __table_args__ = (
        PrimaryKeyConstraint("discrepancy_id", "department", name="pk_discrepancy_reports"),
        Index("ix_discrepancy_reports_department", "department", "last_reported_at"),
    )

    discrepancy_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("discrepancies.id", ondelete="CASCADE")
    )
    department: Mapped[str] = mapped_column(String(18))
    client_id: Mapped[str] = mapped_column(String(64))
    value: Mapped[Any] = mapped_column(JSONB(none_as_null=True), nullable=True)
    note: Mapped[str | None] = mapped_column(Text)
    first_reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    times: Mapped[int] = mapped_column(Integer)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Corroboration(Base):
    """A department other than the source reported a value that agrees with one canonical version."""

    __tablename__ = "corroborations"
    __table_args__ = (
        PrimaryKeyConstraint(
            "resource_code",
            "subject_id",
            "element",
            "canonical_version",
            "department",
            name="pk_corroborations",
        ),
        # Room on every page: a value confirmed again is rewritten in place (see the migration).
        {"postgresql_with": {"fillfactor": 50}},
    )

    resource_code: Mapped[str] = mapped_column(String(100))
    subject_id: Mapped[str] = mapped_column(String(64))
    element: Mapped[str] = mapped_column(String(63))
    canonical_version: Mapped[int] = mapped_column(Integer)
    department: Mapped[str] = mapped_column(String(18))
    confirmed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReconciliationRun(Base):
    """A bulk comparison of everything one department reported for a resource against canonical values."""

    __tablename__ = "reconciliation_runs"
    __table_args__ = (
        CheckConstraint("status IN ('queued','running','done','failed')", name="status_known"),
        Index("ix_reconciliation_runs_created", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    resource_code: Mapped[str] = mapped_column(String(100))
    department: Mapped[str] = mapped_column(String(18), ForeignKey("departments.code"))
    requested_by: Mapped[str] = mapped_column(String(64), comment="client id, or 'cli'")
    status: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = created_at_column()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    report: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    error: Mapped[str | None] = mapped_column(Text)
