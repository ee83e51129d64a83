"""The audit log's tables. Events and their chain are insert-only (triggers refuse UPDATE, DELETE and
TRUNCATE; the application's database role holds only INSERT and SELECT); events are partitioned by month."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base


class AuditEvent(Base):
    """One access or change: who, on whose behalf, what, why, with which outcome, when."""

    __tablename__ = "audit_events"
    __table_args__ = (
        PrimaryKeyConstraint("id", "occurred_at", name="pk_audit_events"),
        CheckConstraint("outcome IN ('allowed','denied','error')", name="outcome_known"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
        # No pending list: searches never scan one, and no insert ever merges one (migration 0010).
        Index(
            "ix_audit_events_subject_ids",
            "subject_ids",
            postgresql_using="gin",
            postgresql_with={"fastupdate": "off"},
        ),
        Index("ix_audit_events_department", "department", "occurred_at"),
        {"postgresql_partition_by": "RANGE (occurred_at)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
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


class AuditPending(Base):
    """Events written but not yet in the chain: the integrator's queue (the one table rows leave)."""

    __tablename__ = "audit_pending"

    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditLink(Base):
    """An event's place in the hash chain: hash = SHA-256(previous hash || the event's canonical bytes)."""

    __tablename__ = "audit_chain"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class AuditCheckpoint(Base):
    """A signed statement of the chain's head: sequence number, hash and time, signed with the hub's key."""

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    signature: Mapped[str] = mapped_column(Text)


class AuditArchive(Base):
    """A closed stretch of the chain moved to a compressed file; each archive names its predecessor's digest,
    and its last link is where verification of the live log starts."""

    __tablename__ = "audit_archives"

    first_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[bytes] = mapped_column(LargeBinary)
    file: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    previous_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
