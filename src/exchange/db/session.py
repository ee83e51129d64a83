"""The unit of work: one transaction per request, committed here and nowhere else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

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
