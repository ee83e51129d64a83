"""Advisory-lock keys: a name hashed to the signed 64-bit integer PostgreSQL's advisory locks take."""

from __future__ import annotations

import hashlib


def advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
