from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, created_at_column


class Department(Base):
    """A government body, identified by its 统一社会信用代码."""

    __tablename__ = "departments"
    __table_args__ = (
        CheckConstraint("length(code) = 18", name="code_length"),
        CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),
    )

    code: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
