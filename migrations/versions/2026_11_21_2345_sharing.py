"""Sharing requests and their per-element decisions; grants get per-element periods (grant_elements).

Revision ID: 0004_sharing
Revises: 0003_records
Create Date: 2026-11-21 23:45
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_sharing"
down_revision: str | None = "0003_records"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sharing_requests",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("consumer_department", sa.String(length=18), nullable=False),
        sa.Column("resource_code", sa.String(length=100), nullable=False),
        sa.Column("access", sa.String(length=16), nullable=False),
        sa.Column("purpose_code", sa.String(length=64), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("case_reference", sa.Text(), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("grant_id", sa.UUID(), nullable=True),
        sa.CheckConstraint(
            "access IN ('read','verify','subscribe')", name=op.f("ck_sharing_requests_access_known")
        ),
        sa.CheckConstraint(
            "status IN ('pending','granted','partially_granted','rejected')",
            name=op.f("ck_sharing_requests_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["consumer_department"],
            ["departments.code"],
            name=op.f("fk_sharing_requests_consumer_department_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["purpose_code"], ["purposes.code"], name=op.f("fk_sharing_requests_purpose_code_purposes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_requests")),
    )
    op.create_index(
        "ix_sharing_requests_consumer",
        "sharing_requests",
        ["consumer_department", "created_at"],
        unique=False,
    )
    op.create_table(
        "grant_elements",
        sa.Column("grant_id", sa.UUID(), nullable=False),
        sa.Column("element", sa.String(length=63), nullable=False),
        sa.Column("source_department", sa.String(length=18), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.UUID(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
        sa.CheckConstraint("valid_until > valid_from", name=op.f("ck_grant_elements_period_positive")),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["grants.id"], name=op.f("fk_grant_elements_grant_id_grants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["source_department"],
            ["departments.code"],
            name=op.f("fk_grant_elements_source_department_departments"),
        ),
        sa.PrimaryKeyConstraint("grant_id", "element", name="pk_grant_elements"),
    )
    op.create_index("ix_grant_elements_source", "grant_elements", ["source_department"], unique=False)
    op.create_table(
        "sharing_request_elements",
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("element", sa.String(length=63), nullable=False),
        sa.Column("source_department", sa.String(length=18), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "state <> 'rejected' OR reason IS NOT NULL",
            name=op.f("ck_sharing_request_elements_rejection_has_reason"),
        ),
        sa.CheckConstraint(
            "state IN ('granted','pending','rejected')", name=op.f("ck_sharing_request_elements_state_known")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["sharing_requests.id"],
            name=op.f("fk_sharing_request_elements_request_id_sharing_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_department"],
            ["departments.code"],
            name=op.f("fk_sharing_request_elements_source_department_departments"),
        ),
        sa.PrimaryKeyConstraint("request_id", "element", name="pk_sharing_request_elements"),
    )
    op.create_index(
        "ix_sharing_request_elements_provider",
        "sharing_request_elements",
        ["source_department", "state"],
        unique=False,
    )
    # Existing grants keep their elements, each with the grant's period and its catalogue source.
    op.execute(
        """
        INSERT INTO grant_elements (grant_id, element, source_department, valid_from, valid_until, revoked_at)
        SELECT g.id, e.name, e.source_department, g.valid_from, g.valid_until, g.revoked_at
        FROM grants g CROSS JOIN LATERAL unnest(g.elements) AS granted(name)
        JOIN elements e ON e.resource_code = g.resource_code AND e.name = granted.name
        """
    )
    # At most one grant in force per (consumer, resource, purpose, access): older duplicates are retired.
    op.execute(
        """
        UPDATE grants SET revoked_at = now(), revoked_reason = 'merged into a newer grant by migration 0004'
        WHERE revoked_at IS NULL AND id NOT IN (
            SELECT DISTINCT ON (consumer_department, resource_code, purpose_code, access) id FROM grants
            WHERE revoked_at IS NULL
            ORDER BY consumer_department, resource_code, purpose_code, access, created_at DESC
        )
        """
    )
    op.drop_index(op.f("ix_grants_lookup"), table_name="grants")
    op.create_index(
        "uq_grants_in_force",
        "grants",
        ["consumer_department", "resource_code", "purpose_code", "access"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.drop_column("grants", "elements")
    op.drop_column("grants", "valid_from")
    op.drop_column("grants", "valid_until")


def downgrade() -> None:
    op.add_column("grants", sa.Column("valid_until", postgresql.TIMESTAMP(timezone=True), nullable=True))
    op.add_column(
        "grants",
        sa.Column(
            "valid_from", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=True
        ),
    )
    op.add_column("grants", sa.Column("elements", postgresql.ARRAY(sa.TEXT()), nullable=True))
    op.execute(
        """
        UPDATE grants g SET elements = agg.elements, valid_from = agg.valid_from, valid_until = agg.valid_until
        FROM (SELECT grant_id, array_agg(element ORDER BY element) AS elements, min(valid_from) AS valid_from,
                     max(valid_until) AS valid_until
              FROM grant_elements GROUP BY grant_id) AS agg
        WHERE agg.grant_id = g.id
        """
    )
    op.execute("DELETE FROM grants WHERE elements IS NULL")
    for column in ("valid_until", "valid_from", "elements"):
        op.alter_column("grants", column, nullable=False)
    op.create_check_constraint("period_positive", "grants", "valid_until > valid_from")
    op.create_check_constraint("has_elements", "grants", "cardinality(elements) > 0")
    op.drop_index("uq_grants_in_force", table_name="grants", postgresql_where=sa.text("revoked_at IS NULL"))
    op.create_index(
        op.f("ix_grants_lookup"),
        "grants",
        ["consumer_department", "resource_code", "purpose_code"],
        unique=False,
    )
    op.drop_index("ix_sharing_request_elements_provider", table_name="sharing_request_elements")
    op.drop_table("sharing_request_elements")
    op.drop_index("ix_grant_elements_source", table_name="grant_elements")
    op.drop_table("grant_elements")
    op.drop_index("ix_sharing_requests_consumer", table_name="sharing_requests")
    op.drop_table("sharing_requests")
