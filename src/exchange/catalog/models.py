from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, created_at_column


class Purpose(Base):
    """A registered declared use (用途), with the law that permits it."""

    __tablename__ = "purposes"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Resource(Base):
    """信息资源: a dataset of the catalogue, with its national metadata."""

    __tablename__ = "resources"
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint(
            "(subject_type, subject_id_type) IN "
            "(('person','id_number'),('legal_entity','uscc'),('place','address_code'))",
            name="subject_id_type_fits",
        ),
    )

    code: Mapped[str] = mapped_column(String(100), primary_key=True)
    national_code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id_type: Mapped[str] = mapped_column(String(20))
    owner_department: Mapped[str] = mapped_column(String(18), ForeignKey("departments.code"))
    format_type: Mapped[str] = mapped_column(Text)
    format_detail: Mapped[str | None] = mapped_column(Text)
    sharing_condition: Mapped[str | None] = mapped_column(Text)
    sharing_method: Mapped[str] = mapped_column(Text)
    open_condition: Mapped[str | None] = mapped_column(Text)
    update_cycle: Mapped[str] = mapped_column(String(20))
    published_on: Mapped[date] = mapped_column(Date)
    related: Mapped[list[str]] = mapped_column(ARRAY(Text))
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Element(Base):
    """信息项: one field of a resource and its one authoritative source department."""

    __tablename__ = "elements"
    __table_args__ = (
        PrimaryKeyConstraint("resource_code", "name", name="pk_elements"),
        CheckConstraint("NOT open OR sharing = 'unconditional'", name="open_only_if_unconditional"),
        CheckConstraint("(type = 'code') = (codes IS NOT NULL)", name="codes_only_for_code_type"),
        CheckConstraint("sharing IN ('unconditional','conditional','none')", name="sharing_known"),
        Index("ix_elements_source_department", "source_department"),
    )

    resource_code: Mapped[str] = mapped_column(String(100), ForeignKey("resources.code", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(20))
    length: Mapped[int | None] = mapped_column(Integer)
    codes: Mapped[list[dict[str, str]] | None] = mapped_column(JSONB(none_as_null=True))
    unit: Mapped[str | None] = mapped_column(Text)
    precision: Mapped[int | None] = mapped_column(Integer)
    tolerance_m: Mapped[float | None] = mapped_column(Float)
    required: Mapped[bool] = mapped_column(Boolean)
    source_department: Mapped[str] = mapped_column(String(18), ForeignKey("departments.code"))
    sharing: Mapped[str] = mapped_column(String(20))
    open: Mapped[bool] = mapped_column(Boolean)


class CatalogChange(Base):
    """One version of one resource: who changed what, and the whole resource as it then stood."""

    __tablename__ = "catalog_changes"
    __table_args__ = (
        UniqueConstraint("resource_code", "version", name="uq_catalog_changes_resource_version"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # No foreign key: the history of a removed resource stays readable.
    resource_code: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime] = created_at_column()
    actor: Mapped[str] = mapped_column(Text)
    actor_department: Mapped[str | None] = mapped_column(String(18))
    breaking: Mapped[bool] = mapped_column(Boolean)
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
