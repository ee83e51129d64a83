from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base


class Record(Base):
    """The current canonical values of one subject of one resource.

    ``fields`` maps element → value; ``stamps`` maps element → the valid_from of that value, so a
    late report about the past (a smaller valid_from) is kept in the history without overwriting a newer fact.
    """

    __tablename__ = "records"
    __table_args__ = (PrimaryKeyConstraint("resource_code", "subject_id", name="pk_records"),)

    resource_code: Mapped[str] = mapped_column(String(100))
    subject_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB)
    stamps: Mapped[dict[str, Any]] = mapped_column(JSONB)
    element_versions: Mapped[dict[str, int]] = mapped_column(
        JSONB, server_default=text("'{}'::jsonb"), comment="element → the version that set its current value"
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), comment="last published by the source (freshness)"
    )


class RecordVersion(Base):
    """One change to a record: the values it set, when they became true and when the hub learned them."""

    __tablename__ = "record_versions"
    __table_args__ = (
        PrimaryKeyConstraint("resource_code", "subject_id", "version", name="pk_record_versions"),
    )

    resource_code: Mapped[str] = mapped_column(String(100))
    subject_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    values: Mapped[dict[str, Any]] = mapped_column(JSONB)
    client_id: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(18))


class Observation(Base):
    """A value reported by a department that is not the element's source: input to cross-checking."""

    __tablename__ = "observations"
    __table_args__ = (
        Index("ix_observations_subject", "resource_code", "subject_id", "element"),
        Index("ix_observations_department", "resource_code", "department", "subject_id", "element"),
        CheckConstraint(
            "outcome IN ('agrees','disagrees','no_canonical','stale','empty')", name="outcome_known"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    resource_code: Mapped[str] = mapped_column(String(100))
    subject_id: Mapped[str] = mapped_column(String(64))
    element: Mapped[str] = mapped_column(String(63))
    value: Mapped[Any] = mapped_column(JSONB(none_as_null=True), nullable=True)
    department: Mapped[str] = mapped_column(String(18))
    client_id: Mapped[str] = mapped_column(String(64))
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dated: Mapped[bool] = mapped_column(
        Boolean, server_default=false(), comment="observed_at was given by the reporter"
    )
    outcome: Mapped[str | None] = mapped_column(String(12), comment="the comparison when it was reported")
    note: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RateWindow(Base):
    """Requests counted per caller key and minute, shared by every hub process (open-data rate limit)."""

    __tablename__ = "rate_windows"
    __table_args__ = (PrimaryKeyConstraint("key", "window_start", name="pk_rate_windows"),)

    key: Mapped[str] = mapped_column(Text)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    count: Mapped[int] = mapped_column(Integer)
