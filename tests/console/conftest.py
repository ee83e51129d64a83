"""Console tests drive the pages as a browser would: cookies, forms with their CSRF tokens, redirects."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from exchange.auth import officers
from exchange.db.session import transaction
from tests.conftest import TEST_ISSUER

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form token"
    return found.group(1)


@dataclass
class Officer:
    """A signed-in officer's browser: its own cookie jar, and the form token of its session."""

    client: httpx.AsyncClient
    username: str
    csrf: str = ""

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, **kwargs)

    async def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        """Submit a form as the console's own page would, with the session's CSRF token."""
        return await self.client.post(path, data={"csrf_token": self.csrf, **(data or {})}, **kwargs)


async def sign_in(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    form = await client.get("/console/sign-in")
    return await client.post(
        "/console/sign-in",
        data={
            "username": username,
            "password": password,
            "csrf_token": csrf_of(form.text),
            "next": "/console",
        },
    )


MakeOfficer = Callable[..., Awaitable[Officer]]


@pytest.fixture
async def browsers(app: Any) -> AsyncIterator[Callable[[], httpx.AsyncClient]]:
    """Fresh cookie jars against the app, one per person."""
    opened: list[httpx.AsyncClient] = []

    def open_browser() -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url=TEST_ISSUER)
        opened.append(client)
        return client

    yield open_browser
    for client in opened:
        await client.aclose()


@pytest.fixture
def officer(app: Any, catalog_loaded: None, browsers: Callable[[], httpx.AsyncClient]) -> MakeOfficer:
    """Create an officer of a department of the repository catalogue and sign them in."""

    async def make(username: str, department: str, *roles: str, name: str = "测试人员") -> Officer:
        async with transaction(app.state.sessionmaker) as session:
            await officers.create_officer(
                session,
                username=username,
                display_name=name,
                department=department,
                roles=list(roles),
                password=PASSWORD,
            )
        client = browsers()
        answer = await sign_in(client, username)
        assert answer.status_code == 303, answer.text
        dashboard = await client.get("/console")
        assert dashboard.status_code == 200
        return Officer(client, username, csrf_of(dashboard.text))

    return make
