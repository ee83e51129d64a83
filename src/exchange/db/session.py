"""The unit of work: one transaction per request, committed here and nowhere else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


@asynccontextmanager
async def transaction(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Run a block in one transaction: commit when it finishes, roll back when it raises."""
    async with sessionmaker() as session, session.begin():
        yield session


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with transaction(request.app.state.sessionmaker) as session:
        yield session


# scope="function": the transaction commits when the endpoint returns, before the response is sent,
# so a client never sees an answer whose writes (audit events included) could still be lost.
DbSession = Annotated[AsyncSession, Depends(_request_session, scope="function")]


async def driver(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session, in its transaction: for set-based statements over
    thousands of rows, which the ORM layer would only slow down. (Its jsonb codec is SQLAlchemy's: values go
    in as JSON text.)"""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    assert raw.driver_connection is not None
    driver_connection: asyncpg.Connection = raw.driver_connection
    return driver_connection
