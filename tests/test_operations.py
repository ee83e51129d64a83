"""Health, readiness and metrics endpoints for operators."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import create_async_engine


async def test_health_and_readiness(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    assert (await http.get("/readyz")).json() == {"status": "ready"}


async def test_readiness_fails_when_the_database_is_unreachable(app: Any, http: httpx.AsyncClient) -> None:
    working = app.state.engine
    app.state.engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        response = await http.get("/readyz")
    finally:
        await app.state.engine.dispose()
        app.state.engine = working
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"


async def test_metrics_count_requests_by_route_template(http: httpx.AsyncClient) -> None:
    await http.get("/v1/departments/91110000600037341L")
    text = (await http.get("/metrics")).text
    assert 'route="/v1/departments/{code}"' in text
    assert "91110000600037341L" not in text
    assert "exchange_http_request_duration_seconds_bucket" in text
