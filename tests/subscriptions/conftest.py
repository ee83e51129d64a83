"""Fixtures of the subscription stories: a subscribe grant, and deliverers running beside the test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from exchange.subscriptions.delivery import Deliverer
from tests.fixtures_departments import CIVIL_AFFAIRS, MakeGrant
from tests.subscriptions.factories import ELEMENTS


@pytest.fixture
async def granted(catalog_loaded: None, make_grant: MakeGrant) -> None:
    await make_grant(CIVIL_AFFAIRS, ELEMENTS, access="subscribe")


@pytest.fixture
async def deliverers(app: Any, request: pytest.FixtureRequest) -> AsyncIterator[list[Deliverer]]:
    """Two deliverers on the test database, as two `exchange worker` processes would be. The retry schedule
    is shrunk (a test may shrink it further with ``@pytest.mark.retries("...")``)."""
    marker = request.node.get_closest_marker("retries")
    schedule = marker.args[0] if marker else "0,0.2,0.5,1,2,4"
    settings = app.state.settings.model_copy(update={"webhook_retry_schedule": schedule})
    running = [Deliverer(app.state.engine, app.state.sessionmaker, settings) for _ in range(2)]
    tasks = [asyncio.create_task(d.run(concurrency=2)) for d in running]
    yield running
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
