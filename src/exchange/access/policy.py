"""The one policy decision point: may this department use these elements, for this purpose, this way?

Every data path (query, verify, subscriptions, exports) asks :func:`decide`; no route decides on its own.
Pure: the caller passes the resource's element rules and the department's grants for the purpose.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Access(StrEnum):
    read = "read"
    verify = "verify"  # 核验: yes/no answers, never the stored value
    subscribe = "subscribe"


# A grant to read also lets its holder verify: a yes/no answer reveals less than the value.
SATISFIES: Mapping[Access, frozenset[Access]] = {
    Access.read: frozenset({Access.read}),
    Access.verify: frozenset({Access.read, Access.verify}),
    Access.subscribe: frozenset({Access.subscribe}),
}


@dataclass(frozen=True, slots=True)
class ElementRule:
    source_department: str
    sharing: str  # unconditional | conditional | none


@dataclass(frozen=True, slots=True)
class GrantView:
    id: uuid.UUID
    purpose: str
    access: Access
    elements: frozenset[str]
    valid_from: datetime
    valid_until: datetime
    revoked_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and self.valid_from <= now < self.valid_until


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    elements: frozenset[str]
    grant_ids: tuple[uuid.UUID, ...]
    missing: tuple[str, ...]
    reason: str


def decide(
    *,
    department: str,
    rules: Mapping[str, ElementRule],
    requested: Sequence[str],
    access: Access,
    purpose: str,
    grants: Iterable[GrantView],
    now: datetime,
) -> Decision:
    """Allow exactly when every requested element is covered; otherwise deny, naming what is not.

    An element is covered when the caller is its source department (its own data), or an active grant for
    exactly this purpose and a sufficient access covers it. Elements shared ``none`` are covered only for
    their source. Requested names must be elements of the resource (the caller checks that first).
    """
    usable = [
        grant
        for grant in grants
        if grant.purpose == purpose and grant.access in SATISFIES[access] and grant.active(now)
    ]
    covered: set[str] = set()
    used: list[uuid.UUID] = []
    missing: list[str] = []
    for name in dict.fromkeys(requested):
        rule = rules[name]
        if rule.source_department == department:
            covered.add(name)
            continue
        grant = None if rule.sharing == "none" else next((g for g in usable if name in g.elements), None)
        if grant is None:
            missing.append(name)
            continue
        covered.add(name)
        if grant.id not in used:
            used.append(grant.id)
    if missing:
        reason = f"no active {access.value} grant for purpose {purpose} covers: {', '.join(missing)}"
        return Decision(False, frozenset(covered), tuple(used), tuple(missing), reason)
    return Decision(True, frozenset(covered), tuple(used), (), "covered")
