"""All SQL of the auth domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth.models import Client, ClientAssertion
from exchange.db.pool import Db
from exchange.departments.models import Department


async def active_client(session: AsyncSession, client_id: str) -> Client | None:
    """The client, if it and its department are both enabled."""
    return await session.scalar(
        select(Client)
        .join(Department, Department.code == Client.department_code)
        .where(Client.client_id == client_id, Client.disabled_at.is_(None), Department.disabled_at.is_(None))
    )


_ACTIVE_CLIENT = """
SELECT c.department_code, c.roles FROM clients AS c JOIN departments AS d ON d.code = c.department_code
WHERE c.client_id = $1 AND c.disabled_at IS NULL AND d.disabled_at IS NULL
"""


async def active_client_roles(db: Db, client_id: str) -> tuple[str, list[str]] | None:
    """The department and roles of the client, if it and its department are both enabled (hot path)."""
    row = await db.fetchrow(_ACTIVE_CLIENT, client_id)
    return None if row is None else (row["department_code"], row["roles"])


async def record_assertion(session: AsyncSession, client_id: str, jti: str, expires_at: datetime) -> bool:
    """Remember an assertion id; False if the client already used it (a replay)."""
    await session.execute(delete(ClientAssertion).where(ClientAssertion.expires_at < func.now()))
    inserted = await session.scalar(
        insert(ClientAssertion)
        .values(client_id=client_id, jti=jti, expires_at=expires_at)
        .on_conflict_do_nothing()
        .returning(ClientAssertion.jti)
    )
    return inserted is not None


async def add_client(
    session: AsyncSession,
    *,
    client_id: str,
    department_code: str,
    name: str,
    roles: Sequence[str],
    secret_hash: str | None,
    public_jwk: dict[str, Any] | None,
) -> Client:
    client = Client(
        client_id=client_id,
        department_code=department_code,
        name=name,
        roles=list(roles),
        secret_hash=secret_hash,
        public_jwk=public_jwk,
    )
    session.add(client)
    await session.flush()
    await session.refresh(client)
    return client


async def list_clients(session: AsyncSession, department_code: str) -> list[Client]:
    result = await session.scalars(
        select(Client)
        .where(Client.department_code == department_code)
        .order_by(Client.created_at, Client.client_id)
    )
    return list(result)
