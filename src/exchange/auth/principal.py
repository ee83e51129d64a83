"""Who is calling: the authenticated client system, its department and the roles it holds."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    publisher = "publisher"
    consumer = "consumer"
    steward = "steward"
    auditor = "auditor"
    admin = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    client_id: str
    department_code: str
    roles: frozenset[Role]
    token_id: str

    def has_any(self, roles: frozenset[Role]) -> bool:
        return bool(self.roles & roles)
