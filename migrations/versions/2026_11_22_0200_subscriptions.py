"""Subscriptions: the change-event outbox (ordered by writing transaction), subscriptions, delivery attempts.

Revision ID: 0008_subscriptions
Revises: 0007_crosscheck
Create Date: 2026-11-22 02:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import UserDefinedType


class Xid8(UserDefinedType):  # type: ignore[type-arg]
    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "xid8"


revision: str = "0008_subscriptions"
down_revision: str | None = "0007_crosscheck"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "change_events",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("txid", Xid8(), server_default=sa.text("pg_current_xact_id()"), nullable=False),
        sa.Column("resource_code", sa.String(length=100), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "elements", sa.ARRAY(sa.Text()), nullable=False, comment="the elements changed or reviewed"
        ),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "fields",
            postgresql.JSONB(none_as_null=True, astext_type=sa.Text()),
            nullable=True,
            comment="the record after the change (record.changed)",
        ),
        sa.Column(
            "previous",
            postgresql.JSONB(none_as_null=True, astext_type=sa.Text()),
            nullable=True,
            comment="the changed elements' values before it",
        ),
        sa.CheckConstraint(
            "kind IN ('record.changed','record.under_review','record.review_settled')",
            name=op.f("ck_change_events_kind_known"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_change_events")),
    )
    op.create_index(
        "ix_change_events_position", "change_events", ["resource_code", "txid", "seq"], unique=False
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("consumer_department", sa.String(length=18), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("resource_code", sa.String(length=100), nullable=False),
        sa.Column("elements", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("purpose_code", sa.String(length=64), nullable=False),
        sa.Column("filter", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("payload", sa.String(length=8), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("secret", sa.Text(), nullable=True, comment="Standard Webhooks signing secret (whsec_…)"),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("cursor_txid", sa.BigInteger(), nullable=False),
        sa.Column("cursor_seq", sa.BigInteger(), nullable=False),
        sa.Column(
            "attempts",
            sa.Integer(),
            server_default=sa.text("0"),
            nullable=False,
            comment="for the event at the head",
        ),
        sa.Column("dead_in_a_row", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "(mode = 'webhook') = (url IS NOT NULL)", name=op.f("ck_subscriptions_webhook_has_url")
        ),
        sa.CheckConstraint("mode IN ('pull','webhook')", name=op.f("ck_subscriptions_mode_known")),
        sa.CheckConstraint("payload IN ('thin','full')", name=op.f("ck_subscriptions_payload_known")),
        sa.CheckConstraint(
            "status IN ('active','paused','suspended','disabled')", name=op.f("ck_subscriptions_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["consumer_department"],
            ["departments.code"],
            name=op.f("fk_subscriptions_consumer_department_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["purpose_code"], ["purposes.code"], name=op.f("fk_subscriptions_purpose_code_purposes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    op.create_index(
        "ix_subscriptions_consumer", "subscriptions", ["consumer_department", "created_at"], unique=False
    )
    op.create_index(
        "ix_subscriptions_due",
        "subscriptions",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("mode = 'webhook' AND status = 'active'"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("subscription_id", sa.UUID(), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Double(), nullable=False),
        sa.Column(
            "attempted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "outcome IN ('delivered','failed','dead')", name=op.f("ck_deliveries_outcome_known")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_deliveries_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    op.create_index("ix_deliveries_subscription", "deliveries", ["subscription_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_deliveries_subscription", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index(
        "ix_subscriptions_due",
        table_name="subscriptions",
        postgresql_where=sa.text("mode = 'webhook' AND status = 'active'"),
    )
    op.drop_index("ix_subscriptions_consumer", table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_index("ix_change_events_position", table_name="change_events")
    op.drop_table("change_events")
