"""Corroborations keep half of each page free, so that confirming one again rewrites it in place.

A reconciliation confirms every agreeing value again (``confirmed_at``): on full pages each of those updates
wrote the row to another page and a new entry into the five-column key index, 7 µs a row; with room on its
own page the update is a heap-only one, 2.5 µs, and the table no longer grows with every run. Pages written
before keep their rows until the table is rewritten (VACUUM FULL).

Revision ID: 0011_corroborations_fillfactor
Revises: 0010_audit_write_path
Create Date: 2026-12-01 22:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011_corroborations_fillfactor"
down_revision: str | None = "0010_audit_write_path"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE corroborations SET (fillfactor = 50)")


def downgrade() -> None:
    op.execute("ALTER TABLE corroborations RESET (fillfactor)")
