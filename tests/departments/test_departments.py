"""The admin API for departments and their clients."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from exchange.audit.models import AuditEvent
from exchange.auth.models import Client
from exchange.auth.principal import Role
from exchange.db.session import transaction
from tests.conftest import MakeClient, TokenFor
from tests.identifiers import valid_uscc


async def test_an_admin_registers_a_department_with_a_valid_code(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    code = valid_uscc(prefix="11150400")
    created = await http.post(
        "/v1/departments", json={"code": code.lower(), "name": " 赤峰市民政局 "}, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["code"] == code
    assert created.json()["name"] == "赤峰市民政局"
    fetched = await http.get(f"/v1/departments/{code}", headers=admin_headers)
    assert fetched.json()["name"] == "赤峰市民政局"


async def test_mongolian_script_names_are_kept_as_written(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    name = "ᠤᠯᠠᠭᠠᠨᠬᠠᠳᠠ ᠬᠣᠲᠠ 赤峰市"
    code = valid_uscc()
    assert (
        await http.post("/v1/departments", json={"code": code, "name": name}, headers=admin_headers)
    ).status_code == 201
    assert (await http.get(f"/v1/departments/{code}", headers=admin_headers)).json()["name"] == name


async def test_a_bad_code_is_a_422_naming_the_field_and_nothing_is_stored(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    code = valid_uscc()
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    response = await http.post("/v1/departments", json={"code": wrong, "name": "某局"}, headers=admin_headers)
    assert response.status_code == 422
    body = response.json()
    assert body["invalid_params"] == [
        {"name": "code", "reason": "not a valid 统一社会信用代码: the check character does not match"}
    ]
    assert (await http.get(f"/v1/departments/{wrong}", headers=admin_headers)).status_code == 404


async def test_registering_a_code_twice_is_a_409(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = {"code": valid_uscc(), "name": "赤峰市卫生健康委员会"}
    assert (await http.post("/v1/departments", json=body, headers=admin_headers)).status_code == 201
    again = await http.post("/v1/departments", json=body, headers=admin_headers)
    assert again.status_code == 409
    assert again.json()["code"] == "department_exists"


async def test_only_admins_register_departments(
    http: httpx.AsyncClient, make_client: MakeClient, token_for: TokenFor
) -> None:
    steward = await token_for(await make_client(Role.steward))
    response = await http.post(
        "/v1/departments", json={"code": valid_uscc(), "name": "某局"}, headers=steward
    )
    assert response.status_code == 403


async def test_departments_are_listed_in_pages(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for n in range(5):
        await http.post(
            "/v1/departments", json={"code": valid_uscc(), "name": f"局{n}"}, headers=admin_headers
        )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await http.get("/v1/departments", params=params, headers=admin_headers)).json()
        assert len(page["items"]) <= 2
        seen += [item["code"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6  # five plus the admin's own department
    assert seen == sorted(seen)
    bad = await http.get("/v1/departments", params={"cursor": "bm9wZQ"}, headers=admin_headers)
    assert bad.status_code == 422
    assert bad.json()["invalid_params"][0]["name"] == "cursor"


async def test_a_client_secret_is_shown_once_and_stored_only_as_a_hash(
    app: Any, http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    code = valid_uscc()
    await http.post("/v1/departments", json={"code": code, "name": "赤峰市人社局"}, headers=admin_headers)
    created = await http.post(
        f"/v1/departments/{code}/clients",
        json={"name": "社保系统", "roles": ["publisher"]},
        headers=admin_headers,
    )
    assert created.status_code == 201
    secret = created.json()["client_secret"]
    assert secret.startswith("cs_")
    listed = (await http.get(f"/v1/departments/{code}/clients", headers=admin_headers)).json()["items"]
    assert [item["client_id"] for item in listed] == [created.json()["client_id"]]
    assert "client_secret" not in listed[0]
    async with transaction(app.state.sessionmaker) as session:
        stored = (await session.scalars(select(Client).where(Client.department_code == code))).one()
    assert stored.secret_hash is not None
    assert stored.secret_hash.startswith("$argon2id$")
    assert secret not in stored.secret_hash
    async with transaction(app.state.sessionmaker) as session:
        actions = list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions == ["admin.department.create", "admin.client.create"]


async def test_client_creation_refuses_unknown_roles_private_keys_and_unknown_departments(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    code = valid_uscc()
    await http.post("/v1/departments", json={"code": code, "name": "某局"}, headers=admin_headers)
    bad_role = await http.post(
        f"/v1/departments/{code}/clients", json={"name": "x", "roles": ["superuser"]}, headers=admin_headers
    )
    assert bad_role.status_code == 422
    assert bad_role.json()["invalid_params"][0]["name"] == "roles.0"
    private = {"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"}
    leaked = await http.post(
        f"/v1/departments/{code}/clients",
        json={"name": "x", "roles": ["consumer"], "public_jwk": private},
        headers=admin_headers,
    )
    assert leaked.status_code == 422
    assert "private key material" in leaked.json()["detail"]
    nowhere = await http.post(
        f"/v1/departments/{valid_uscc()}/clients",
        json={"name": "x", "roles": ["consumer"]},
        headers=admin_headers,
    )
    assert nowhere.status_code == 404
