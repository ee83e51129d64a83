"""Loading the synthetic city through the hub's own publishing rules, and the demo's client systems.

Every record goes through the same checks, versions, cross-checking and audit events as a batch publish
from a department system; only the HTTP hop is left out, so ten thousand people load in a few seconds.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from exchange.access import sharing
from exchange.access.dependencies import DeclaredUse
from exchange.access.policy import Access
from exchange.access.schemas import SharingRequestCreate
from exchange.audit import service as audit
from exchange.auth import officers
from exchange.auth.principal import Principal, Role
from exchange.config import Settings
from exchange.db.session import transaction
from exchange.demo.city import Chunk, generate
from exchange.departments import service as departments
from exchange.records import service as records

POLICE = "11150400MB1234567Q"  # 赤峰市公安局
CIVIL_AFFAIRS = "11150400MB15040128"  # 赤峰市民政局
SOCIAL_SECURITY = "11150400MB1504034G"  # 赤峰市人力资源和社会保障局
MARKET = "11150400MB1504045L"  # 赤峰市市场监督管理局
NATURAL_RESOURCES = "11150400MB1504067W"  # 赤峰市自然资源局
DATA_BUREAU = "11150400MB15040895"  # 赤峰市政务服务与数据管理局

# (who, department, roles): the client systems the demo creates.
SYSTEMS = [
    ("police", POLICE, [Role.publisher, Role.consumer]),
    ("civil_affairs", CIVIL_AFFAIRS, [Role.publisher, Role.consumer]),
    ("social_security", SOCIAL_SECURITY, [Role.publisher, Role.consumer]),
    ("market", MARKET, [Role.publisher, Role.consumer]),
    ("steward", DATA_BUREAU, [Role.steward, Role.admin]),
    ("auditor", DATA_BUREAU, [Role.auditor]),
]


# (user name, department, roles, full name): the people the demo lets sign in to the console.
OFFICERS = [
    ("steward", DATA_BUREAU, ["steward", "admin"], "王晓明（数据管理员）"),
    ("auditor", DATA_BUREAU, ["auditor"], "李静（审计员）"),
    ("police.approver", POLICE, ["approver"], "张伟（公安局审批员）"),
    ("civil.officer", CIVIL_AFFAIRS, ["consumer", "approver"], "赵敏（民政局经办人）"),
]

# Letters and digits without look-alikes, so a demo password can be read off the terminal and typed.
PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

# (consumer system, resource, elements, purpose, legal basis, justification): requests waiting for decisions.
REQUESTS = [
    (
        "civil_affairs",
        "population.person",
        ["name", "birth_date", "household_address", "household_status"],
        "social-assistance-eligibility",
        "《社会救助暂行办法》（国务院令第649号）第十一条",
        "最低生活保障申请家庭户籍情况核查",
    ),
    (
        "social_security",
        "population.person",
        ["name", "marital_status", "death_date"],
        "social-assistance-eligibility",
        "《社会救助暂行办法》（国务院令第649号）第十一条",
        "特困人员供养资格复核：婚姻状况与死亡登记",
    ),
]


@dataclass(frozen=True, slots=True)
class Loaded:
    persons: int
    entities: int
    addresses: int
    reports: int
    conflicts: int


def _plan(chunk: Chunk) -> list[tuple[str, str, list[dict[str, Any]]]]:
    return [
        ("population.person", POLICE, chunk.persons),
        ("population.person", CIVIL_AFFAIRS, chunk.civil_affairs),
        ("population.person", SOCIAL_SECURITY, chunk.social_security),
        ("legal_entity.entity", MARKET, chunk.entities),
        ("geospatial.address", CIVIL_AFFAIRS, chunk.addresses),
        ("geospatial.address", NATURAL_RESOURCES, chunk.locations),
    ]


async def _publish(
    session: AsyncSession, resource: str, department: str, bodies: Sequence[dict[str, Any]], review_days: int
) -> None:
    rules = await records.load_rules(session, resource)
    now = datetime.now(UTC)
    principal = Principal("demo-loader", department, frozenset({Role.publisher}), "demo")
    prepared = []
    for body in bodies:
        item = records.prepare(rules, department, body, now)
        if isinstance(item, list):
            raise ValueError(f"the demo generated a bad record {body['subject_id']}: {item}")
        prepared.append(item)
    await records.apply(session, rules, principal, prepared, now, review_days)
    use = DeclaredUse(None, None, "demo loader")
    await audit.append(session, records.publish_event(rules, principal, use, prepared, demo=True))


async def load_city(
    sessionmaker: async_sessionmaker[AsyncSession],
    persons: int,
    seed: int,
    review_days: int,
    advance: Callable[[int], None],
) -> Loaded:
    """Publish the city chunk by chunk, each department's part in a transaction of its own."""
    totals = Loaded(0, 0, 0, 0, 0)
    for chunk in generate(persons, seed):
        for resource, department, bodies in _plan(chunk):
            if bodies:
                async with transaction(sessionmaker) as session:
                    await _publish(session, resource, department, bodies, review_days)
        totals = Loaded(
            totals.persons + len(chunk.persons),
            totals.entities + len(chunk.entities),
            totals.addresses + len(chunk.addresses),
            totals.reports + len(chunk.civil_affairs) + len(chunk.social_security),
            totals.conflicts + chunk.conflicts,
        )
        advance(len(chunk.persons))
    return totals


async def create_systems(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, dict[str, Any]]:
    """One client per demo system; the secrets are shown once, so the caller keeps them."""
    systems = {}
    async with transaction(sessionmaker) as session:
        for who, department, roles in SYSTEMS:
            created = await departments.create_client(session, department, name=f"demo {who}", roles=roles)
            systems[who] = {
                "department": department,
                "client_id": created.client.client_id,
                "client_secret": created.secret,
                "roles": [role.value for role in roles],
            }
    return systems


def save_credentials(
    path: Path, systems: dict[str, dict[str, Any]], people: dict[str, dict[str, Any]], loaded: Loaded
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = {"systems": systems, "officers": people, "loaded": asdict(loaded)}
    path.write_text(
        json.dumps(saved, indent=2, ensure_ascii=False),
        encoding="utf-8",
    )
    path.chmod(0o600)


async def create_officers(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, dict[str, Any]]:
    """The demo's officers, each with a fresh random password (kept with the demo credentials)."""
    people = {}
    async with transaction(sessionmaker) as session:
        for username, department, roles, name in OFFICERS:
            password = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(16))
            await officers.create_officer(
                session,
                username=username,
                display_name=name,
                department=department,
                roles=roles,
                password=password,
            )
            people[username] = {"department": department, "roles": roles, "name": name, "password": password}
    return people


async def ask_for_sharing(
    sessionmaker: async_sessionmaker[AsyncSession], systems: dict[str, dict[str, Any]], settings: Settings
) -> int:
    """Sharing requests from the demo's consumer systems, left for the source departments to decide."""
    valid_until = datetime.now(UTC) + timedelta(days=365)
    async with transaction(sessionmaker) as session:
        for who, resource, elements, purpose, legal_basis, justification in REQUESTS:
            system = systems[who]
            principal = Principal(
                system["client_id"], system["department"], frozenset({Role.consumer}), "demo"
            )
            body = SharingRequestCreate(
                resource=resource,
                elements=elements,
                access=Access.read,
                purpose=purpose,
                legal_basis=legal_basis,
                justification=justification,
                valid_until=valid_until,
            )
            await sharing.create(session, principal, body, settings)
    return len(REQUESTS)
