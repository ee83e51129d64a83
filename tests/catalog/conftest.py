from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exchange.catalog import service
from exchange.catalog.loader import read_catalog
from exchange.db.session import transaction

REPO_CATALOG = Path(__file__).resolve().parents[2] / "catalog"


async def apply_directory(app: Any, directory: Path, **options: Any) -> service.CatalogPlan:
    files = read_catalog(directory)
    async with transaction(app.state.sessionmaker) as session:
        plan = await service.plan_catalog(session, files.departments, files.purposes, files.resources)
        await service.apply_plan(
            session, plan, actor=service.Actor("test-loader"), **({"allow_breaking": False} | options)
        )
    return plan


@pytest.fixture
async def catalog_loaded(app: Any) -> None:
    """The repository's own catalogue (catalog/), loaded as `exchange catalog apply` loads it."""
    await apply_directory(app, REPO_CATALOG)
