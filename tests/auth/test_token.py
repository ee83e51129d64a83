"""POST /oauth/token: the three client authentication methods and the ways a request is refused."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey

from exchange.auth.principal import Role
from tests.conftest import TEST_ISSUER, Credentials, MakeClient

GRANT = {"grant_type": "client_credentials"}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _assertion(key: Any, client_id: str, alg: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": f"{TEST_ISSUER}/oauth/token",
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
    } | overrides
    return jwt.encode({"alg": alg}, claims, key, algorithms=[alg])


async def _me(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_client_secret_basic_gets_a_token_that_names_client_department_and_roles(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    creds = await make_client(Role.consumer, Role.publisher)
    response = await http.post("/oauth/token", data=GRANT, headers={"Authorization": creds.basic})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "consumer publisher"
    me = await _me(http, body["access_token"])
    assert me == {
        "client_id": creds.client_id,
        "department": creds.department,
        "roles": ["consumer", "publisher"],
    }


async def test_client_secret_post_works_too(http: httpx.AsyncClient, make_client: MakeClient) -> None:
    creds = await make_client(Role.auditor)
    response = await http.post(
        "/oauth/token",
        data=GRANT | {"client_id": creds.client_id, "client_secret": creds.client_secret or ""},
    )
    assert response.status_code == 200
    assert (await _me(http, response.json()["access_token"]))["roles"] == ["auditor"]


async def test_scope_narrows_the_token_to_some_of_the_clients_roles(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    creds = await make_client(Role.consumer, Role.publisher)
    narrowed = await http.post(
        "/oauth/token", data=GRANT | {"scope": "consumer"}, headers={"Authorization": creds.basic}
    )
    assert narrowed.json()["scope"] == "consumer"
    widened = await http.post(
        "/oauth/token", data=GRANT | {"scope": "admin"}, headers={"Authorization": creds.basic}
    )
    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_scope"


async def test_a_wrong_secret_is_refused_like_an_unknown_client(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    creds = await make_client()
    wrong = Credentials(creds.client_id, "cs_wrong", creds.department, creds.roles)
    unknown = Credentials("cl_nobody", creds.client_secret, creds.department, creds.roles)
    for attempt in (wrong, unknown):
        response = await http.post("/oauth/token", data=GRANT, headers={"Authorization": attempt.basic})
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Basic")
        body = response.json()
        assert body["error"] == "invalid_client"
        assert body["code"] == "invalid_client"
        assert body["detail"] == "Unknown client, disabled client or wrong secret."


async def test_requests_without_credentials_or_with_another_grant_are_refused(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    creds = await make_client()
    anonymous = await http.post("/oauth/token", data=GRANT)
    assert anonymous.status_code == 401
    password = await http.post(
        "/oauth/token", data={"grant_type": "password"}, headers={"Authorization": creds.basic}
    )
    assert password.status_code == 400
    assert password.json()["error"] == "unsupported_grant_type"
    both = await http.post(
        "/oauth/token",
        data=GRANT | {"client_id": creds.client_id, "client_secret": creds.client_secret or ""},
        headers={"Authorization": creds.basic},
    )
    assert both.status_code == 401
    assert "one client authentication method" in both.json()["detail"]
    garbled = await http.post("/oauth/token", data=GRANT, headers={"Authorization": "Basic not-base64!"})
    assert garbled.status_code == 401


async def test_private_key_jwt_with_an_ec_key(http: httpx.AsyncClient, make_client: MakeClient) -> None:
    key = ECKey.generate_key("P-256", private=True)
    creds = await make_client(Role.publisher, public_jwk=key.as_dict(private=False))
    assert creds.client_secret is None
    form = GRANT | {
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": _assertion(key, creds.client_id, "ES256"),
    }
    response = await http.post("/oauth/token", data=form)
    assert response.status_code == 200, response.text
    assert (await _me(http, response.json()["access_token"]))["client_id"] == creds.client_id


async def test_private_key_jwt_with_an_ed25519_key_and_the_issuer_as_audience(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    key = OKPKey.generate_key("Ed25519", private=True)
    creds = await make_client(public_jwk=key.as_dict(private=False))
    assertion = _assertion(key, creds.client_id, "Ed25519", aud=TEST_ISSUER)
    response = await http.post(
        "/oauth/token", data=GRANT | {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    )
    assert response.status_code == 200, response.text


async def test_a_client_assertion_is_refused_when_replayed_forged_expired_or_for_another_audience(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    key = ECKey.generate_key("P-256", private=True)
    creds = await make_client(public_jwk=key.as_dict(private=False))

    async def attempt(assertion: str) -> httpx.Response:
        return await http.post(
            "/oauth/token",
            data=GRANT | {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion},
        )

    once = _assertion(key, creds.client_id, "ES256")
    assert (await attempt(once)).status_code == 200
    replay = await attempt(once)
    assert replay.status_code == 401
    assert "replay" in replay.json()["detail"]

    impostor = ECKey.generate_key("P-256", private=True)
    assert (await attempt(_assertion(impostor, creds.client_id, "ES256"))).status_code == 401
    expired = _assertion(
        key, creds.client_id, "ES256", iat=int(time.time()) - 600, exp=int(time.time()) - 300
    )
    assert (await attempt(expired)).status_code == 401
    elsewhere = _assertion(key, creds.client_id, "ES256", aud="https://other.example/token")
    assert (await attempt(elsewhere)).status_code == 401
    long_lived = _assertion(key, creds.client_id, "ES256", exp=int(time.time()) + 3600)
    assert "10 minutes" in (await attempt(long_lived)).json()["detail"]
    assert (await attempt("not.a.jwt")).status_code == 401


async def test_a_disabled_client_gets_no_token(
    http: httpx.AsyncClient, make_client: MakeClient, admin_headers: dict[str, str]
) -> None:
    creds = await make_client()
    disabled = await http.post(
        f"/v1/departments/{creds.department}/clients/{creds.client_id}:disable", headers=admin_headers
    )
    assert disabled.status_code == 204
    response = await http.post("/oauth/token", data=GRANT, headers={"Authorization": creds.basic})
    assert response.status_code == 401


async def test_discovery_documents_describe_the_token_endpoint_and_keys(http: httpx.AsyncClient) -> None:
    metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["issuer"] == TEST_ISSUER
    assert metadata["token_endpoint"] == f"{TEST_ISSUER}/oauth/token"
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    }
    jwks = (await http.get("/.well-known/jwks.json")).json()
    assert len(jwks["keys"]) == 1
    (key,) = jwks["keys"]
    assert key["kty"] == "EC"
    assert key["alg"] == "ES256"
    assert "d" not in key
