"""Cross-checking: discrepancies and their reports, corroborations, reconciliation runs, element versions.

Revision ID: 0007_crosscheck
Revises: 0006_audit_archives
Create Date: 2026-11-22 01:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_crosscheck"
down_revision: str | None = "0006_audit_archives"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "corroborations",
        sa.Column("resource_code", sa.String(length=100), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("element", sa.String(length=63), nullable=False),
        sa.Column("canonical_version", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(length=18), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "resource_code",
            "subject_id",
            "element",
            "canonical_version",
            "department",
            name="pk_corroborations",
        ),
    )
    op.create_table(
        "discrepancies",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("resource_code", sa.String(length=100), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("element", sa.String(length=63), nullable=False),
        sa.Column("canonical_version", sa.Integer(), nullable=False),
        sa.Column(
            "canonical_value", postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), nullable=True
        ),
        sa.Column("source_department", sa.String(length=18), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "resolved_by", sa.String(length=64), nullable=True, comment="client id, or 'hub' when automatic"
        ),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("corrected_version", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(status = 'open') = (resolved_at IS NULL)", name=op.f("ck_discrepancies_resolved_when_closed")
        ),
        sa.CheckConstraint(
            "status IN ('open', 'confirmed', 'corrected', 'withdrawn')",
            name=op.f("ck_discrepancies_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["source_department"],
            ["departments.code"],
            name=op.f("fk_discrepancies_source_department_departments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discrepancies")),
        sa.UniqueConstraint(
            "resource_code", "subject_id", "element", "canonical_version", name="uq_discrepancies_value"
        ),
    )
    op.create_index(
        "ix_discrepancies_source", "discrepancies", ["source_department", "status", "opened_at"], unique=False
    )
    op.create_index(
        "uq_discrepancies_open",
        "discrepancies",
        ["resource_code", "subject_id", "element"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("resource_code", sa.String(length=100), nullable=False),
        sa.Column("department", sa.String(length=18), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False, comment="client id, or 'cli'"),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("report", postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued','running','done','failed')", name=op.f("ck_reconciliation_runs_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["department"], ["departments.code"], name=op.f("fk_reconciliation_runs_department_departments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_runs")),
    )
    op.create_index("ix_reconciliation_runs_created", "reconciliation_runs", ["created_at"], unique=False)
    op.create_table(
        "discrepancy_reports",
        sa.Column("discrepancy_id", sa.UUID(), nullable=False),
        sa.Column("department", sa.String(length=18), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("value", postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("first_reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("times", sa.Integer(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["discrepancy_id"],
            ["discrepancies.id"],
            name=op.f("fk_discrepancy_reports_discrepancy_id_discrepancies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("discrepancy_id", "department", name="pk_discrepancy_reports"),
    )
    op.create_index(
        "ix_discrepancy_reports_department",
        "discrepancy_reports",
        ["department", "last_reported_at"],
        unique=False,
    )
    op.add_column("elements", sa.Column("precision", sa.Integer(), nullable=True))
    op.add_column("elements", sa.Column("tolerance_m", sa.Float(), nullable=True))
    op.add_column(
        "observations",
        sa.Column(
            "outcome", sa.String(length=12), nullable=True, comment="the comparison when it was reported"
        ),
    )
    op.add_column("observations", sa.Column("note", sa.Text(), nullable=True))
    op.add_column(
        "observations",
        sa.Column(
            "dated",
            sa.Boolean(),
            server_default=sa.false(),
            nullable=False,
            comment="observed_at was given by the reporter",
        ),
    )
    op.create_index(
        "ix_observations_department",
        "observations",
        ["resource_code", "department", "subject_id", "element"],
        unique=False,
    )
    op.add_column(
        "records",
        sa.Column(
            "element_versions",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="element → the version that set its current value",
        ),
    )
    op.alter_column(
        "records",
        "updated_at",
        existing_type=postgresql.TIMESTAMP(timezone=True),
        comment="last published by the source (freshness)",
        existing_nullable=False,
        existing_server_default=sa.text("now()"),
    )
    op.create_check_constraint(
        "outcome_known", "observations", "outcome IN ('agrees','disagrees','no_canonical','stale','empty')"
    )
    # The version that set each element's current value: per element, the version with the latest
    # valid_from (ties: the later recorded, then the higher version), as reads resolve it.
    op.execute(
        """
        UPDATE records AS r SET element_versions = v.versions
        FROM (
            SELECT resource_code, subject_id, jsonb_object_agg(element, version) AS versions
            FROM (
                SELECT DISTINCT ON (rv.resource_code, rv.subject_id, k.element)
                       rv.resource_code, rv.subject_id, k.element, rv.version
                FROM record_versions AS rv, jsonb_object_keys(rv.values) AS k(element)
                ORDER BY rv.resource_code, rv.subject_id, k.element,
                         rv.valid_from DESC, rv.recorded_at DESC, rv.version DESC
            ) AS latest
            GROUP BY resource_code, subject_id
        ) AS v
        WHERE r.resource_code = v.resource_code AND r.subject_id = v.subject_id
        """
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_observations_outcome_known"), "observations", type_="check")
    op.alter_column(
        "records",
        "updated_at",
        existing_type=postgresql.TIMESTAMP(timezone=True),
        comment=None,
        existing_comment="last published by the source (freshness)",
        existing_nullable=False,
        existing_server_default=sa.text("now()"),
    )
    op.drop_column("records", "element_versions")
    op.drop_index("ix_observations_department", table_name="observations")
    op.drop_column("observations", "note")
    op.drop_column("observations", "dated")
    op.drop_column("observations", "outcome")
    op.drop_column("elements", "tolerance_m")
    op.drop_column("elements", "precision")
    op.drop_index("ix_discrepancy_reports_department", table_name="discrepancy_reports")
    op.drop_table("discrepancy_reports")
    op.drop_index("ix_reconciliation_runs_created", table_name="reconciliation_runs")
    op.drop_table("reconciliation_runs")
    op.drop_index(
        "uq_discrepancies_open", table_name="discrepancies", postgresql_where=sa.text("status = 'open'")
    )
    op.drop_index("ix_discrepancies_source", table_name="discrepancies")
    op.drop_table("discrepancies")
    op.drop_table("corroborations")
