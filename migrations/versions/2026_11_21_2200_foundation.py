"""Foundation: departments, OAuth2 clients, the hub's signing keys, used client-assertion ids.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-21 22:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_foundation"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "departments",
        sa.Column("code", sa.String(18), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("length(code) = 18", name="code_length"),
        sa.CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),
    )
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column(
            "department_code",
            sa.String(18),
            sa.ForeignKey("departments.code", name="fk_clients_department_code_departments"),
            nullable=False,
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("roles", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("secret_hash", sa.Text(), nullable=True),
        sa.Column("public_jwk", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("secret_hash IS NOT NULL OR public_jwk IS NOT NULL", name="has_credential"),
        sa.CheckConstraint("cardinality(roles) > 0", name="has_role"),
        sa.CheckConstraint(
            "roles <@ ARRAY['publisher','consumer','steward','auditor','admin']::text[]", name="known_roles"
        ),
    )
    op.create_index("ix_clients_department_code", "clients", ["department_code"])
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("private_jwk", postgresql.JSONB(), nullable=False),
        sa.Column("public_jwk", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
    )
    # At most one key signs at a time; retired keys stay published until their tokens have expired.
    op.create_index(
        "uq_signing_keys_active",
        "signing_keys",
        [sa.text("(true)")],
        unique=True,
        postgresql_where=sa.text("retired_at IS NULL"),
    )
    op.create_table(
        "client_assertions",
        sa.Column(
            "client_id",
            sa.String(64),
            sa.ForeignKey(
                "clients.client_id", ondelete="CASCADE", name="fk_client_assertions_client_id_clients"
            ),
            nullable=False,
        ),
        sa.Column("jti", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name="pk_client_assertions"),
    )
    op.create_index("ix_client_assertions_expires_at", "client_assertions", ["expires_at"])


def downgrade() -> None:
    op.drop_table("client_assertions")
    op.drop_table("signing_keys")
    op.drop_table("clients")
    op.drop_table("departments")
