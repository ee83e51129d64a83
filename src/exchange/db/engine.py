"""Engine construction: one async engine per process, pointed at the configured or embedded server."""

from __future__ import annotations

import orjson
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

from exchange.config import Settings


def async_url(url: str) -> URL:
    """Accept ``postgresql://`` and ``postgres://`` URLs as people write them; the hub speaks asyncpg."""
    parsed = make_url(
        url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url
    )
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"only PostgreSQL is supported, not {parsed.get_backend_name()!r}")
    return parsed.set(drivername="postgresql+asyncpg")


def create_engine(settings: Settings, url: str) -> AsyncEngine:
    return create_async_engine(
        async_url(url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle=1800,
        # Statement parameters hold subject ids and personal values: they never go into error messages/logs.
        hide_parameters=True,
        # orjson: several times faster than json for the jsonb values of records and events.
        json_serializer=lambda value: orjson.dumps(value).decode(),
        json_deserializer=orjson.loads,
        connect_args={"server_settings": {"application_name": "exchange-hub", "timezone": "UTC"}},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
