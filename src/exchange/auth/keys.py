"""The hub's token-signing keys: generated on first start, kept in the database, rotated on demand.

Every process reads the same keys from the database. The in-process cache only saves round trips: it is
refreshed periodically and whenever a token names a key it does not know, so a rotation done by any
process is picked up by all of them.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

from joserfc.jwk import ECKey, KeySet
from sqlalchemy import func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth.models import SigningKey

SIGNING_ALGORITHM = "ES256"
# Retired keys stay published for the lifetime of the tokens they signed, plus this much clock skew.
_GRACE = timedelta(seconds=60)
_ROTATION_LOCK = 0x65786B6579  # "exkey": serialises rotations across processes


def _new_key() -> tuple[str, dict[str, Any], dict[str, Any]]:
    kid = uuid.uuid4().hex
    key = ECKey.generate_key(
        "P-256", parameters={"kid": kid, "use": "sig", "alg": SIGNING_ALGORITHM}, private=True
    )
    return kid, key.as_dict(private=True), key.as_dict(private=False)


async def ensure_signing_key(session: AsyncSession) -> None:
    """Create the first signing key if there is none; safe when several processes start at once."""
    kid, private, public = _new_key()
    await session.execute(
        insert(SigningKey)
        .values(kid=kid, private_jwk=private, public_jwk=public)
        .on_conflict_do_nothing(index_elements=[text("(true)")], index_where=SigningKey.retired_at.is_(None))
    )


async def rotate_signing_key(session: AsyncSession, token_ttl: timedelta) -> str:
    """Retire the active key, start signing with a new one, and drop private keys no live token can carry."""
    await session.execute(select(func.pg_advisory_xact_lock(_ROTATION_LOCK)))
    # Public halves stay forever (they verify old audit checkpoints); private halves go once unneeded.
    await session.execute(
        update(SigningKey)
        .where(SigningKey.retired_at < func.now() - (token_ttl + _GRACE))
        .values(private_jwk={})
    )
    await session.execute(
        update(SigningKey).where(SigningKey.retired_at.is_(None)).values(retired_at=func.now())
    )
    kid, private, public = _new_key()
    session.add(SigningKey(kid=kid, private_jwk=private, public_jwk=public))
    await session.flush()
    return kid


async def published_keys(session: AsyncSession, token_ttl: timedelta) -> list[SigningKey]:
    result = await session.scalars(
        select(SigningKey)
        .where(
            or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > func.now() - (token_ttl + _GRACE))
        )
        .order_by(SigningKey.created_at.desc())
    )
    return list(result)


class KeyRing:
    """Per-process cache of the signing key and the verification key set."""

    def __init__(
        self, token_ttl: timedelta, refresh_seconds: float = 30.0, min_reload_seconds: float = 2.0
    ) -> None:
        self._ttl = token_ttl
        self._refresh = refresh_seconds
        self._min_reload = min_reload_seconds
        self._loaded_at = float("-inf")
        self._signing: ECKey | None = None
        self._public: list[dict[str, Any]] = []
        self._verify = KeySet([])
        self._kids: frozenset[str] = frozenset()

    async def _load(self, session: AsyncSession) -> None:
        rows = await published_keys(session, self._ttl)
        active = next((row for row in rows if row.retired_at is None), None)
        self._signing = ECKey.import_key(active.private_jwk) if active else None
        self._public = [row.public_jwk for row in rows]
        self._verify = KeySet([ECKey.import_key(jwk) for jwk in self._public])
        self._kids = frozenset(row.kid for row in rows)
        self._loaded_at = time.monotonic()

    def _stale(self) -> bool:
        return time.monotonic() - self._loaded_at > self._refresh

    async def signing_key(self, session: AsyncSession) -> ECKey:
        if self._signing is None or self._stale():
            await self._load(session)
        if self._signing is None:
            await ensure_signing_key(session)
            await self._load(session)
        assert self._signing is not None
        return self._signing

    async def verification_keys(self, session: AsyncSession, kid: str | None) -> KeySet:
        unknown = kid is not None and kid not in self._kids
        if self._stale() or (unknown and time.monotonic() - self._loaded_at > self._min_reload):
            await self._load(session)
        return self._verify

    async def jwks(self, session: AsyncSession) -> dict[str, list[dict[str, Any]]]:
        # Always fresh: a key rotated in by another process must be published before anyone relies on it.
        await self._load(session)
        return {"keys": self._public}
