"""The audit log's write path, measured under load: the subjects index without a pending list, and the
subject lists of batch events stored without compression.

A GIN index with fast update keeps new entries in a pending list that every search scans in full and that
some unlucky insert merges into the index (a search took 3 ms instead of 0.1 ms over 200,000 fresh events,
and a merge stalls one request for tens of milliseconds); without it each insert goes straight into the
tree. A batch chunk's event names up to 2,000 subjects (36 kB): compressing it cost its commit milliseconds
and saved little, since identifiers hardly compress.

Revision ID: 0010_audit_write_path
Revises: 0009_console
Create Date: 2026-12-01 21:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_audit_write_path"
down_revision: str | None = "0009_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _subjects_index(fast_update: bool) -> None:
    # A partitioned index takes no ALTER INDEX ... SET: it is built again, and its partitions with it.
    op.drop_index("ix_audit_events_subject_ids", table_name="audit_events")
    op.create_index(
        "ix_audit_events_subject_ids",
        "audit_events",
        ["subject_ids"],
        postgresql_using="gin",
        postgresql_with={"fastupdate": "on" if fast_update else "off"},
    )


def upgrade() -> None:
    _subjects_index(fast_update=False)
    op.execute("ALTER TABLE audit_events ALTER COLUMN subject_ids SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE audit_events ALTER COLUMN subject_ids SET STORAGE EXTENDED")
    _subjects_index(fast_update=True)
