"""The driver-level pool of the hot paths: governed reads, token checks and the audit writer.

These run thousands of times a second, so they talk to asyncpg directly: each statement is prepared once per
connection and then costs one round trip, without the ORM's compilation and result processing. They run
single statements in autocommit (a statement is its own transaction) and never change session state, so a
connection goes back to the pool without the reset query asyncpg would otherwise send on every release.
Everything else uses the SQLAlchemy engine; both point at the same server.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from exchange.db.engine import async_url

CONNECT_TIMEOUT_SECONDS = 10.0
# The hot statements are index probes and small appends; one that takes this long means an outage.
STATEMENT_TIMEOUT_SECONDS = 30.0

# A connection lent by the pool, as the hot paths' repository functions take it.
Db: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"


def _uuid_as_text(value: Any) -> str:
    # asyncpg reads uuid columns as its own subclass of uuid.UUID, which orjson does not take as a UUID.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _jsonb_out(value: Any) -> bytes:
    return b"\x01" + orjson.dumps(value, default=_uuid_as_text)


def _jsonb_in(data: bytes) -> Any:
    return orjson.loads(data[1:])


async def _init(connection: asyncpg.Connection) -> None:
    # jsonb in binary form (a version byte, then the text): so it decodes inside rows and arrays too.
    await connection.set_type_codec(
        "jsonb", encoder=_jsonb_out, decoder=_jsonb_in, schema="pg_catalog", format="binary"
    )
    await connection.set_type_codec(
        "json", encoder=orjson.dumps, decoder=orjson.loads, schema="pg_catalog", format="binary"
    )


async def _keep(connection: asyncpg.Connection) -> None:
    """Nothing to reset: the hot paths leave no session state behind (asyncpg still ends a transaction)."""


def libpq_url(url: str) -> str:
    """The URL as asyncpg takes it (no SQLAlchemy driver name)."""
    return async_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_pool(url: str, size: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        libpq_url(url),
        min_size=1,
        max_size=size,
        init=_init,
        reset=_keep,
        max_inactive_connection_lifetime=300,
        timeout=CONNECT_TIMEOUT_SECONDS,
        server_settings={
            "application_name": "exchange-hub",
            "timezone": "UTC",
            # The hot statements are index probes whose best plan does not depend on the values: planned
            # once per connection instead of on every execution (which cost four times the execution).
            "plan_cache_mode": "force_generic_plan",
            # Enforced by the server, which costs the client nothing per statement (asyncpg's own
            # command timeout arms a timer on every call).
            "statement_timeout": f"{STATEMENT_TIMEOUT_SECONDS * 1000:.0f}",
        },
    )
    assert pool is not None
    return pool


@asynccontextmanager
async def connection(pool: asyncpg.Pool) -> AsyncIterator[Db]:
    """A pooled connection. Waits are bounded by the connect timeout and the server's statement timeout, so
    an overloaded or unreachable database is an outage (503), not a hang."""
    held = await pool.acquire()
    try:
        yield held
    finally:
        await pool.release(held)
