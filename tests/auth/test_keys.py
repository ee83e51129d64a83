"""Key rotation: new tokens use the new key, tokens signed before stay valid until they expire."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from joserfc.jwk import ECKey

from exchange.auth.keys import rotate_signing_key
from exchange.auth.models import SigningKey
from exchange.auth.principal import Role
from exchange.auth.tokens import issue_access_token, token_key_id
from exchange.db.session import transaction
from tests.conftest import MakeClient, TokenFor


async def _rotate(app: Any) -> str:
    async with transaction(app.state.sessionmaker) as session:
        return await rotate_signing_key(session, timedelta(seconds=app.state.settings.token_ttl_seconds))


async def test_rotation_keeps_old_tokens_valid_and_publishes_both_keys(
    app: Any, http: httpx.AsyncClient, make_client: MakeClient, token_for: TokenFor
) -> None:
    creds = await make_client(Role.auditor)
    before = await token_for(creds)
    old_kid = token_key_id(before["Authorization"].removeprefix("Bearer "))

    new_kid = await _rotate(app)
    app.state.keys._loaded_at = float("-inf")  # as if the refresh interval had passed in this process

    jwks = (await http.get("/.well-known/jwks.json")).json()
    assert {key["kid"] for key in jwks["keys"]} == {old_kid, new_kid}
    after = await token_for(creds)
    assert token_key_id(after["Authorization"].removeprefix("Bearer ")) == new_kid
    for headers in (before, after):
        assert (await http.get("/v1/me", headers=headers)).status_code == 200


async def test_a_process_that_has_not_seen_the_rotation_still_verifies_new_tokens(
    app: Any, http: httpx.AsyncClient, make_client: MakeClient, token_for: TokenFor
) -> None:
    creds = await make_client(Role.auditor)
    await token_for(creds)  # this process now caches the first key
    new_kid = await _rotate(app)
    # Another API process would sign with the new key; this one learns of it from the unknown kid.
    async with transaction(app.state.sessionmaker) as session:
        row = await session.get(SigningKey, new_kid)
        assert row is not None
        token, _ = issue_access_token(
            ECKey.import_key(row.private_jwk),
            issuer=app.state.settings.issuer,
            audience=app.state.settings.token_audience,
            client_id=creds.client_id,
            department_code=creds.department,
            roles=frozenset({Role.auditor}),
            ttl=timedelta(minutes=5),
        )
    app.state.keys._loaded_at -= 5  # past the minimum reload interval
    assert (await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200
