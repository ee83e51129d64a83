from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from exchange.auth.principal import Role


class DepartmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        description="统一社会信用代码 (18 characters, check character validated).",
        examples=["11150400011526755K"],
    )
    name: str = Field(min_length=1, max_length=200, examples=["赤峰市公安局"])


class DepartmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    created_at: datetime
    disabled_at: datetime | None = None


class DepartmentPage(BaseModel):
    items: list[DepartmentOut]
    next_cursor: str | None


class ClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Which system of the department this is.")
    roles: list[Role] = Field(min_length=1)
    public_jwk: dict[str, Any] | None = Field(
        default=None,
        description="A public JWK (EC, RSA or OKP) for private_key_jwt. Without it the hub issues a secret.",
    )


class ClientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    client_id: str
    department_code: str
    name: str
    roles: list[Role]
    auth_method: str
    created_at: datetime
    disabled_at: datetime | None = None


class ClientCreated(ClientOut):
    client_secret: str | None = Field(default=None, description="Shown once; the hub keeps only a hash.")


class ClientList(BaseModel):
    items: list[ClientOut]
