"""Alembic, driven from the hub's own code (``exchange db upgrade``, ``exchange serve``, the tests)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from exchange.db.engine import async_url

_PARTITION = re.compile(r"^audit_events_(default|\d{4}_\d{2})$")


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Leave the audit log's partitions (and their indexes) out of schema comparisons: the integrator
    adds them at run time, and they follow their parent's definition."""
    table = obj.table.name if type_ == "index" else name
    return not (reflected and compare_to is None and table is not None and _PARTITION.match(table))


def migrations_dir() -> Path:
    packaged = Path(str(resources.files("exchange"))) / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option(
        "file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d_%%(slug)s"
    )
    # Passed as an attribute: URLs with %-escapes (socket paths) would trip the ini interpolation.
    config.attributes["url"] = async_url(url).render_as_string(hide_password=False)
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
