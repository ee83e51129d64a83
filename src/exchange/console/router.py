"""The console's pages under /console, and its static files."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles

from exchange.console import audit, catalog, dashboard, discrepancies, sharing, signin

router = APIRouter()
for module in (signin, dashboard, catalog, sharing, discrepancies, audit):
    router.include_router(module.router)

static_files = StaticFiles(packages=[("exchange.console", "static")])
