"""Departments and the client credentials of their systems."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth import repository as auth_repository
from exchange.auth.credentials import hash_secret, new_client_id, new_client_secret
from exchange.auth.models import Client
from exchange.auth.principal import Role
from exchange.departments import repository
from exchange.departments.exceptions import ClientNotFound, DepartmentExists, DepartmentNotFound
from exchange.departments.models import Department
from exchange.errors import InvalidInput
from exchange.identifiers import InvalidIdentifier, normalize_uscc

_KEY_TYPES: dict[str, type[ECKey] | type[RSAKey] | type[OKPKey]] = {"EC": ECKey, "RSA": RSAKey, "OKP": OKPKey}


@dataclass(frozen=True, slots=True)
class NewClient:
    client: Client
    secret: str | None


def department_code(value: str, field: str = "code") -> str:
    try:
        return normalize_uscc(value)
    except InvalidIdentifier as exc:
        raise InvalidInput.one(field, f"not a valid 统一社会信用代码: {exc}") from None


def clean_name(value: str, field: str = "name") -> str:
    name = unicodedata.normalize("NFC", value).strip()
    if not name:
        raise InvalidInput.one(field, "must not be blank")
    return name


async def create_department(session: AsyncSession, code: str, name: str) -> Department:
    code = department_code(code)
    department = await repository.insert_department(session, code, clean_name(name))
    if department is None:
        raise DepartmentExists(code)
    return department


async def get_department(session: AsyncSession, code: str) -> Department:
    department = await repository.get_department(session, code.strip().upper())
    if department is None:
        raise DepartmentNotFound(code)
    return department


def public_key_jwk(jwk: dict[str, Any]) -> dict[str, Any]:
    """The client's registered key, checked to be a usable public signing key and nothing more."""
    key_class = _KEY_TYPES.get(str(jwk.get("kty")))
    if key_class is None:
        raise InvalidInput.one("public_jwk.kty", "must be EC, RSA or OKP")
    if "d" in jwk or "p" in jwk:
        raise InvalidInput.one("public_jwk", "contains private key material; register the public key only")
    try:
        key = key_class.import_key(jwk)
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidInput.one("public_jwk", f"not a valid {jwk.get('kty')} key: {exc}") from None
    return key.as_dict(private=False)


async def create_client(
    session: AsyncSession,
    department: str,
    *,
    name: str,
    roles: Sequence[Role],
    public_jwk: dict[str, Any] | None = None,
) -> NewClient:
    owner = await get_department(session, department)
    if owner.disabled_at is not None:
        raise InvalidInput.one("department", "the department is disabled")
    jwk = public_key_jwk(public_jwk) if public_jwk is not None else None
    secret = None if jwk is not None else new_client_secret()
    client = await auth_repository.add_client(
        session,
        client_id=new_client_id(),
        department_code=owner.code,
        name=clean_name(name),
        roles=sorted({Role(role).value for role in roles}),
        secret_hash=hash_secret(secret) if secret else None,
        public_jwk=jwk,
    )
    return NewClient(client=client, secret=secret)


async def list_clients(session: AsyncSession, department: str) -> list[Client]:
    owner = await get_department(session, department)
    return await auth_repository.list_clients(session, owner.code)


async def disable_client(session: AsyncSession, department: str, client_id: str) -> None:
    owner = await get_department(session, department)
    if not await repository.disable_client(session, owner.code, client_id):
        raise ClientNotFound(client_id)


def auth_method(client: Client) -> str:
    return "private_key_jwt" if client.public_jwk is not None else "client_secret_basic"
