from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, created_at_column


class Grant(Base):
    """Permission for a consumer department to use some elements of a resource, for one purpose."""

    __tablename__ = "grants"
    __table_args__ = (
        CheckConstraint("access IN ('read','verify','subscribe')", name="access_known"),
        CheckConstraint("valid_until > valid_from", name="period_positive"),
        CheckConstraint("cardinality(elements) > 0", name="has_elements"),
        Index("ix_grants_lookup", "consumer_department", "resource_code", "purpose_code"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    consumer_department: Mapped[str] = mapped_column(String(18), ForeignKey("departments.code"))
    resource_code: Mapped[str] = mapped_column(String(100))
    purpose_code: Mapped[str] = mapped_column(String(64), ForeignKey("purposes.code"))
    access: Mapped[str] = mapped_column(String(16))
    elements: Mapped[list[str]] = mapped_column(ARRAY(Text))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
