"""Records (current values, versions, observations), grants, the audit log, idempotency keys, rate windows.

Revision ID: 0003_records
Revises: 0002_catalog
Create Date: 2026-11-21 23:30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_records"
down_revision: str | None = "0002_catalog"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("department", sa.String(length=18), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("officer", sa.Text(), nullable=True),
        sa.Column("purpose", sa.String(length=64), nullable=True),
        sa.Column("case_reference", sa.Text(), nullable=True),
        sa.Column("grant_id", sa.UUID(), nullable=True),
        sa.Column("resource", sa.String(length=100), nullable=True),
        sa.Column("subject_ids", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("elements", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('allowed','denied','error')", name=op.f("ck_audit_events_outcome_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_occurred_at", "audit_events", ["occurred_at"], unique=False)
    op.create_index(
        "ix_audit_events_subject_ids", "audit_events", ["subject_ids"], unique=False, postgresql_using="gin"
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), nullable=True),
        sa.Column("progress", postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("client_id", "key", name="pk_idempotency_keys"),
    )
    op.create_table(
        "observations",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("resource_code", sa.String(length=100), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("element", sa.String(length=63), nullable=False),
        sa.Column("value", postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), nullable=True),
        sa.Column("department", sa.String(length=18), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observations")),
    )
    op.create_index(
        "ix_observations_subject", "observations", ["resource_code", "subject_id", "element"], unique=False
    )
    op.create_table(
        "rate_windows",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name="pk_rate_windows"),
    )
    op.create_table(
        "record_versions",
        sa.Column("resource_code", sa.String(length=100), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("values", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("department", sa.String(length=18), nullable=False),
        sa.PrimaryKeyConstraint("resource_code", "subject_id", "version", name="pk_record_versions"),
    )
    op.create_table(
        "records",
        sa.Column("resource_code", sa.String(length=100), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("fields", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("stamps", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("resource_code", "subject_id", name="pk_records"),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("consumer_department", sa.String(length=18), nullable=False),
        sa.Column("resource_code", sa.String(length=100), nullable=False),
        sa.Column("purpose_code", sa.String(length=64), nullable=False),
        sa.Column("access", sa.String(length=16), nullable=False),
        sa.Column("elements", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("access IN ('read','verify','subscribe')", name=op.f("ck_grants_access_known")),
        sa.CheckConstraint("cardinality(elements) > 0", name=op.f("ck_grants_has_elements")),
        sa.CheckConstraint("valid_until > valid_from", name=op.f("ck_grants_period_positive")),
        sa.ForeignKeyConstraint(
            ["consumer_department"],
            ["departments.code"],
            name=op.f("fk_grants_consumer_department_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["purpose_code"], ["purposes.code"], name=op.f("fk_grants_purpose_code_purposes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grants")),
    )
    op.create_index(
        "ix_grants_lookup", "grants", ["consumer_department", "resource_code", "purpose_code"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_grants_lookup", table_name="grants")
    op.drop_table("grants")
    op.drop_table("records")
    op.drop_table("record_versions")
    op.drop_table("rate_windows")
    op.drop_index("ix_observations_subject", table_name="observations")
    op.drop_table("observations")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_audit_events_subject_ids", table_name="audit_events", postgresql_using="gin")
    op.drop_index("ix_audit_events_occurred_at", table_name="audit_events")
    op.drop_table("audit_events")
