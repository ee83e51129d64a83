"""Catalogue: purposes, resources with their national metadata, elements, and the change history.

Revision ID: 0002_catalog
Revises: 0001_foundation
Create Date: 2026-11-21 23:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_catalog"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "purposes",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "resources",
        sa.Column("code", sa.String(100), primary_key=True),
        sa.Column("national_code", sa.String(64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("subject_type", sa.String(20), nullable=False),
        sa.Column("subject_id_type", sa.String(20), nullable=False),
        sa.Column(
            "owner_department",
            sa.String(18),
            sa.ForeignKey("departments.code", name="fk_resources_owner_department_departments"),
            nullable=False,
        ),
        sa.Column("format_type", sa.Text(), nullable=False),
        sa.Column("format_detail", sa.Text(), nullable=True),
        sa.Column("sharing_condition", sa.Text(), nullable=True),
        sa.Column("sharing_method", sa.Text(), nullable=False),
        sa.Column("open_condition", sa.Text(), nullable=True),
        sa.Column("update_cycle", sa.String(20), nullable=False),
        sa.Column("published_on", sa.Date(), nullable=False),
        sa.Column("related", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("national_code", name="uq_resources_national_code"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
        sa.CheckConstraint(
            "(subject_type, subject_id_type) IN (('person','id_number'),('legal_entity','uscc'),('place','address_code'))",
            name="subject_id_type_fits",
        ),
    )
    op.create_table(
        "elements",
        sa.Column(
            "resource_code",
            sa.String(100),
            sa.ForeignKey("resources.code", ondelete="CASCADE", name="fk_elements_resource_code_resources"),
            nullable=False,
        ),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("length", sa.Integer(), nullable=True),
        sa.Column("codes", postgresql.JSONB(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=True),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column(
            "source_department",
            sa.String(18),
            sa.ForeignKey("departments.code", name="fk_elements_source_department_departments"),
            nullable=False,
        ),
        sa.Column("sharing", sa.String(20), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("resource_code", "name", name="pk_elements"),
        sa.CheckConstraint("NOT open OR sharing = 'unconditional'", name="open_only_if_unconditional"),
        sa.CheckConstraint("(type = 'code') = (codes IS NOT NULL)", name="codes_only_for_code_type"),
        sa.CheckConstraint("sharing IN ('unconditional','conditional','none')", name="sharing_known"),
    )
    op.create_index("ix_elements_source_department", "elements", ["source_department"])
    op.create_table(
        "catalog_changes",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("resource_code", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("actor_department", sa.String(18), nullable=True),
        sa.Column("breaking", sa.Boolean(), nullable=False),
        sa.Column("changes", postgresql.JSONB(), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(), nullable=True),
        sa.UniqueConstraint("resource_code", "version", name="uq_catalog_changes_resource_version"),
    )


def downgrade() -> None:
    op.drop_table("catalog_changes")
    op.drop_table("elements")
    op.drop_table("resources")
    op.drop_table("purposes")
