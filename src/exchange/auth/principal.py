"""Who is calling: the authenticated client system or signed-in officer, its department and its roles.

Officers (people using the web console) act through the same services as systems: their principal names the
console as the client and carries the officer's user name, which every audit event of the request records.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    publisher = "publisher"
    consumer = "consumer"
    steward = "steward"
    approver = "approver"
    auditor = "auditor"
    admin = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    client_id: str
    department_code: str
    roles: frozenset[Role]
    token_id: str
    officer: str | None = None

    def has_any(self, roles: frozenset[Role]) -> bool:
        return bool(self.roles & roles)
