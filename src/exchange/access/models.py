from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, PrimaryKeyConstraint, String, Text, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, created_at_column

ACCESS_KINDS = "('read','verify','subscribe')"


class SharingRequest(Base):
    """A consumer department's request to use elements of a resource for one purpose (申请)."""

    __tablename__ = "sharing_requests"
    __table_args__ = (
        CheckConstraint(f"access IN {ACCESS_KINDS}", name="access_known"),
        CheckConstraint(
            "status IN ('pending','granted','partially_granted','rejected')", name="status_known"
        ),
        Index("ix_sharing_requests_consumer", "consumer_department", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    consumer_department: Mapped[str] = mapped_column(String(18), ForeignKey("departments.code"))
    resource_code: Mapped[str] = mapped_column(String(100))
    access: Mapped[str] = mapped_column(String(16))
    purpose_code: Mapped[str] = mapped_column(String(64), ForeignKey("purposes.code"))
    legal_basis: Mapped[str] = mapped_column(Text)
    justification: Mapped[str] = mapped_column(Text)
    case_reference: Mapped[str | None] = mapped_column(Text)
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    grant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class RequestedElement(Base):
    """One element of a sharing request, decided by its own source department."""

    __tablename__ = "sharing_request_elements"
    __table_args__ = (
        PrimaryKeyConstraint("request_id", "element", name="pk_sharing_request_elements"),
        CheckConstraint("state IN ('granted','pending','rejected')", name="state_known"),
        CheckConstraint("state <> 'rejected' OR reason IS NOT NULL", name="rejection_has_reason"),
        Index("ix_sharing_request_elements_provider", "source_department", "state"),
    )

    request_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("sharing_requests.id", ondelete="CASCADE")
    )
    element: Mapped[str] = mapped_column(String(63))
    source_department: Mapped[str] = mapped_column(String(18), ForeignKey("departments.code"))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(64))


class Grant(Base):
    """Permission for a consumer department to use elements of a resource, for one purpose and one kind of
    access: at most one in force per (consumer, resource, purpose, access); its elements carry their own
    periods, since each source department decides its own."""

    __tablename__ = "grants"
    __table_args__ = (
        CheckConstraint(f"access IN {ACCESS_KINDS}", name="access_known"),
        Index(
            "uq_grants_in_force",
            "consumer_department",
            "resource_code",
            "purpose_code",
            "access",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    consumer_department: Mapped[str] = mapped_column(String(18), ForeignKey("departments.code"))
    resource_code: Mapped[str] = mapped_column(String(100))
    purpose_code: Mapped[str] = mapped_column(String(64), ForeignKey("purposes.code"))
    access: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = created_at_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(Text)


class GrantElement(Base):
    """One granted element, with the period its source department approved."""

    __tablename__ = "grant_elements"
    __table_args__ = (
        PrimaryKeyConstraint("grant_id", "element", name="pk_grant_elements"),
        CheckConstraint("valid_until > valid_from", name="period_positive"),
        Index("ix_grant_elements_source", "source_department"),
    )

    grant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("grants.id", ondelete="CASCADE")
    )
    element: Mapped[str] = mapped_column(String(63))
    source_department: Mapped[str] = mapped_column(String(18), ForeignKey("departments.code"))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    request_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(Text)
