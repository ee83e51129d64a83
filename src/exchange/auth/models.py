from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    text,
)
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
            "roles <@ ARRAY['publisher','consumer','steward','approver','auditor','admin']::text[]",
            name="known_roles",
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


OFFICER_ROLES = ("steward", "approver", "consumer", "auditor", "admin")


class Officer(Base):
    """A person who signs in to the web console: one department, some roles, an argon2id password hash."""

    __tablename__ = "officers"
    __table_args__ = (
        CheckConstraint("cardinality(roles) > 0", name="has_role"),
        CheckConstraint(
            "roles <@ ARRAY['steward','approver','consumer','auditor','admin']::text[]", name="known_roles"
        ),
        CheckConstraint("username ~ '^[a-z][a-z0-9._-]{1,63}$'", name="username_format"),
        Index("ix_officers_department_code", "department_code"),
    )

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(Text)
    department_code: Mapped[str] = mapped_column(String(18), ForeignKey("departments.code"))
    roles: Mapped[list[str]] = mapped_column(ARRAY(Text))
    password_hash: Mapped[str] = mapped_column(Text)
    failed_sign_ins: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConsoleSession(Base):
    """A signed-in officer's session. The cookie carries a random token, signed; only its SHA-256 is kept,
    so a copy of this table opens no session. Signing out or disabling the officer ends it at once."""

    __tablename__ = "console_sessions"
    __table_args__ = (
        Index("ix_console_sessions_username", "username"),
        Index("ix_console_sessions_expires_at", "expires_at"),
    )

    token_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), ForeignKey("officers.username", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    last_seen_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HubSecret(Base):
    """Random secrets the hub's processes share through the database (e.g. the console's cookie key)."""

    __tablename__ = "hub_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = created_at_column()
