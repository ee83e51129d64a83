"""Idempotency-Key: a retried write has the effect of one, and gets the first answer again."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.errors import Conflict, InvalidInput
from exchange.idempotency.models import IdempotencyKey

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class KeyReused(Conflict):
    code = "idempotency_key_reused"
    title = "The Idempotency-Key was used for a different request"


@dataclass(frozen=True, slots=True)
class Stored:
    status_code: int
    response: dict[str, Any]


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise InvalidInput.one("Idempotency-Key", "must be 1 to 255 visible ASCII characters")
    return key


def request_hash(operation: str, body: Any) -> str:
    return hashlib.sha256(
        operation.encode() + b"\n" + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


async def claim(
    session: AsyncSession, client_id: str, key: str, operation: str, digest: str | None
) -> Stored | None:
    """Claim the key for this request, or return the answer an earlier request with it got.

    A concurrent request with the same key waits on the unique index until the first commits, then
    sees its answer; if the first rolled back, the key is free again and this one proceeds.
    """
    claimed = await session.scalar(
        insert(IdempotencyKey)
        .values(client_id=client_id, key=key, operation=operation, request_hash=digest)
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    )
    if claimed is not None:
        return None
    row = await session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.client_id == client_id, IdempotencyKey.key == key)
    )
    assert row is not None
    if row.operation != operation or (digest is not None and row.request_hash != digest):
        raise KeyReused(f"Idempotency-Key {key!r} was first used for another request; use a new key.")
    if row.response is None or row.status_code is None:
        return None
    return Stored(row.status_code, row.response)


async def remember(
    session: AsyncSession, client_id: str, key: str, status_code: int, response: dict[str, Any]
) -> None:
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.client_id == client_id, IdempotencyKey.key == key)
        .values(status_code=status_code, response=response, completed_at=func.now())
    )


async def progress(session: AsyncSession, client_id: str, key: str) -> dict[str, Any] | None:
    return await session.scalar(
        select(IdempotencyKey.progress).where(
            IdempotencyKey.client_id == client_id, IdempotencyKey.key == key
        )
    )


async def save_progress(session: AsyncSession, client_id: str, key: str, state: dict[str, Any]) -> None:
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.client_id == client_id, IdempotencyKey.key == key)
        .values(progress=state)
    )
