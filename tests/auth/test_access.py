"""Every /v1 route needs a valid token from this hub, and the right role."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey

from exchange.auth.principal import Role
from exchange.auth.tokens import issue_access_token
from exchange.db.session import transaction
from tests.conftest import TEST_ISSUER, MakeClient, TokenFor


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _claims(creds_id: str, department: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": TEST_ISSUER,
        "sub": creds_id,
        "aud": "exchange-hub",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "department": department,
        "roles": ["admin"],
    } | overrides


async def _refused(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await http.get("/v1/departments", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    return dict(response.json())


async def test_no_token_is_a_401_problem(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/departments")
    assert response.status_code == 401
    assert response.json()["code"] == "token_required"


async def test_forged_unsigned_expired_and_foreign_tokens_are_refused(
    http: httpx.AsyncClient, make_client: MakeClient, token_for: TokenFor
) -> None:
    creds = await make_client(Role.admin)
    kid = (await http.get("/.well-known/jwks.json")).json()["keys"][0]["kid"]
    valid = (await token_for(creds))["Authorization"].removeprefix("Bearer ")
    header, _, signature = valid.split(".")

    unsigned = (
        _b64({"alg": "none", "kid": kid}) + "." + _b64(_claims(creds.client_id, creds.department)) + "."
    )
    assert (await _refused(http, unsigned))["code"] == "invalid_token"

    impostor = ECKey.generate_key("P-256", parameters={"kid": kid}, private=True)
    forged = jwt.encode({"alg": "ES256", "kid": kid}, _claims(creds.client_id, creds.department), impostor)
    await _refused(http, forged)

    tampered = (
        header
        + "."
        + _b64(_claims(creds.client_id, creds.department, roles=["admin", "auditor"]))
        + "."
        + signature
    )
    await _refused(http, tampered)

    await _refused(http, "garbage")
    await _refused(http, valid[:-4] + "AAAA")


async def test_tokens_for_another_audience_or_issuer_or_past_expiry_are_refused(
    app: Any, http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    creds = await make_client(Role.admin)
    async with transaction(app.state.sessionmaker) as session:
        key = await app.state.keys.signing_key(session)

    def token(**kwargs: Any) -> str:
        options: dict[str, Any] = {
            "issuer": TEST_ISSUER,
            "audience": "exchange-hub",
            "client_id": creds.client_id,
            "department_code": creds.department,
            "roles": frozenset({Role.admin}),
            "ttl": timedelta(minutes=5),
        } | kwargs
        return issue_access_token(key, **options)[0]

    ok = await http.get("/v1/departments", headers={"Authorization": f"Bearer {token()}"})
    assert ok.status_code == 200
    await _refused(http, token(audience="another-service"))
    await _refused(http, token(issuer="https://evil.example"))
    await _refused(http, token(now=datetime.now(UTC) - timedelta(hours=1)))


async def test_a_role_the_token_lacks_is_a_403(
    http: httpx.AsyncClient, make_client: MakeClient, token_for: TokenFor
) -> None:
    headers = await token_for(await make_client(Role.consumer))
    response = await http.get("/v1/departments", headers=headers)
    assert response.status_code == 403
    assert response.json()["code"] == "role_required"


async def test_disabling_a_client_ends_its_live_tokens(
    http: httpx.AsyncClient, make_client: MakeClient, token_for: TokenFor, admin_headers: dict[str, str]
) -> None:
    creds = await make_client(Role.auditor)
    headers = await token_for(creds)
    assert (await http.get("/v1/departments", headers=headers)).status_code == 200
    await http.post(
        f"/v1/departments/{creds.department}/clients/{creds.client_id}:disable", headers=admin_headers
    )
    response = await http.get("/v1/departments", headers=headers)
    assert response.status_code == 401
    assert "disabled" in response.json()["detail"]
