from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, PrimaryKeyConstraint, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, created_at_column


class Client(Base):
    """OAuth2 client credentials of one department system."""

    __tablename__ = "clients"
    __table_args__ = (
        CheckConstraint("secret_hash IS NOT NULL OR public_jwk IS NOT NULL", name="has_credential"),
        CheckConstraint("cardinality(roles) > 0", name="has_role"),
        CheckConstraint(
            "roles <@ ARRAY['publisher','consumer','steward','auditor','admin']::text[]", name="known_roles"
        ),
        Index("ix_clients_department_code", "department_code"),
    )

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    department_code: Mapped[str] = mapped_column(String(18), ForeignKey("departments.code"))
    name: Mapped[str] = mapped_column(Text)
    roles: Mapped[list[str]] = mapped_column(ARRAY(Text))
    secret_hash: Mapped[str | None] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SigningKey(Base):
    """A key the hub signs access tokens with; one active at a time, retired ones verify until expiry."""

    __tablename__ = "signing_keys"
    __table_args__ = (
        Index(
            "uq_signing_keys_active", text("(true)"), unique=True, postgresql_where=text("retired_at IS NULL")
        ),
    )

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_jwk: Mapped[dict[str, Any]] = mapped_column(JSONB)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ClientAssertion(Base):
    """The ``jti`` of each accepted private_key_jwt assertion, kept until it expires, to refuse replays."""

    __tablename__ = "client_assertions"
    __table_args__ = (
        PrimaryKeyConstraint("client_id", "jti", name="pk_client_assertions"),
        Index("ix_client_assertions_expires_at", "expires_at"),
    )

    client_id: Mapped[str] = mapped_column(String(64), ForeignKey("clients.client_id", ondelete="CASCADE"))
    jti: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
