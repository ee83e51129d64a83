"""All SQL of the departments domain."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth.models import Client
from exchange.departments.models import Department


async def insert_department(session: AsyncSession, code: str, name: str) -> Department | None:
    """Add a department; None if the code is taken."""
    return await session.scalar(
        insert(Department).values(code=code, name=name).on_conflict_do_nothing().returning(Department)
    )


async def get_department(session: AsyncSession, code: str) -> Department | None:
    return await session.get(Department, code)


async def page_departments(session: AsyncSession, after: str | None, limit: int) -> list[Department]:
    query = select(Department).order_by(Department.code).limit(limit)
    if after is not None:
        query = query.where(Department.code > after)
    return list(await session.scalars(query))


async def disable_client(session: AsyncSession, department_code: str, client_id: str) -> bool:
    result = await session.execute(
        update(Client)
        .where(Client.client_id == client_id, Client.department_code == department_code)
        .values(disabled_at=func.coalesce(Client.disabled_at, func.now()))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
