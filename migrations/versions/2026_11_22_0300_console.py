"""The web console: officers (people, with departments, roles and argon2id passwords), their sessions, the
hub's shared secrets, and the approver role for systems too.

Revision ID: 0009_console
Revises: 0008_subscriptions
Create Date: 2026-11-22 03:12
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009_console"
down_revision: str | None = "0008_subscriptions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


CLIENT_ROLES_BEFORE = "roles <@ ARRAY['publisher','consumer','steward','auditor','admin']::text[]"
CLIENT_ROLES_AFTER = "roles <@ ARRAY['publisher','consumer','steward','approver','auditor','admin']::text[]"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_clients_known_roles"), "clients", type_="check")
    op.create_check_constraint(op.f("ck_clients_known_roles"), "clients", CLIENT_ROLES_AFTER)
    op.create_table(
        "hub_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_hub_secrets")),
    )
    op.create_table(
        "officers",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("department_code", sa.String(length=18), nullable=False),
        sa.Column("roles", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("failed_sign_ins", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "roles <@ ARRAY['steward','approver','consumer','auditor','admin']::text[]",
            name=op.f("ck_officers_known_roles"),
        ),
        sa.CheckConstraint("username ~ '^[a-z][a-z0-9._-]{1,63}$'", name=op.f("ck_officers_username_format")),
        sa.CheckConstraint("cardinality(roles) > 0", name=op.f("ck_officers_has_role")),
        sa.ForeignKeyConstraint(
            ["department_code"], ["departments.code"], name=op.f("fk_officers_department_code_departments")
        ),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_officers")),
    )
    op.create_index("ix_officers_department_code", "officers", ["department_code"], unique=False)
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column(
            "last_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["username"],
            ["officers.username"],
            name=op.f("fk_console_sessions_username_officers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_sessions")),
    )
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"], unique=False)
    op.create_index("ix_console_sessions_username", "console_sessions", ["username"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_console_sessions_username", table_name="console_sessions")
    op.drop_index("ix_console_sessions_expires_at", table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_index("ix_officers_department_code", table_name="officers")
    op.drop_table("officers")
    op.drop_table("hub_secrets")
    op.execute("UPDATE clients SET roles = array_remove(roles, 'approver')")
    op.drop_constraint(op.f("ck_clients_known_roles"), "clients", type_="check")
    op.create_check_constraint(op.f("ck_clients_known_roles"), "clients", CLIENT_ROLES_BEFORE)
