"""Client secrets: generated with enough entropy, stored only as argon2id hashes."""

from __future__ import annotations

import secrets
from functools import cache

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified when the client id is unknown, so a wrong id costs as long as a wrong secret (made on first
    use: hashing costs a third of a second, which every process start would pay)."""
    return _hasher.hash(secrets.token_urlsafe(32))


def new_client_id() -> str:
    return "cl_" + secrets.token_hex(12)


def new_client_secret() -> str:
    return "cs_" + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def _verify(secret_hash: str | None, secret: str) -> bool:
    try:
        return _hasher.verify(secret_hash or _dummy_hash(), secret) and secret_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_secret(secret_hash: str | None, secret: str) -> bool:
    """Check a presented secret off the event loop (argon2 is deliberately slow)."""
    return await anyio.to_thread.run_sync(_verify, secret_hash, secret)
