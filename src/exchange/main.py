"""The FastAPI application: lifespan, middleware, error handlers and routers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import text

from exchange import __version__
from exchange.access.router import router as sharing_router
from exchange.audit.context import record_refusal
from exchange.audit.integrator import Integrator
from exchange.audit.router import router as audit_router
from exchange.audit.writer import AuditWriter
from exchange.auth import officers
from exchange.auth.keys import KeyRing, ensure_signing_key
from exchange.auth.router import router as auth_router
from exchange.auth.tokens import VerifiedTokens
from exchange.bodies import BodyGuardMiddleware
from exchange.catalog.router import router as catalog_router
from exchange.config import Settings, get_settings
from exchange.console.headers import ConsoleHeadersMiddleware
from exchange.console.router import router as console_router
from exchange.console.router import static_files as console_static
from exchange.crosscheck.router import router as crosscheck_router
from exchange.db.embedded import start_embedded
from exchange.db.engine import create_engine, create_sessionmaker
from exchange.db.pool import create_pool
from exchange.db.session import transaction
from exchange.departments.router import router as departments_router
from exchange.errors import install_handlers, problem_response
from exchange.jobs import Jobs
from exchange.logs import configure_logging
from exchange.observability import RequestContextMiddleware, metrics_response
from exchange.ratelimit import ClientBuckets
from exchange.records.router import open_router as open_records_router
from exchange.records.router import router as records_router
from exchange.subscriptions.delivery import Deliverer
from exchange.subscriptions.router import router as subscriptions_router

DESCRIPTION = """\
The city's exchange hub for the population (人口), legal-entity (法人) and geospatial (空间地理) base data.
Every element has one authoritative source department; reads need a declared purpose covered by a grant;
every access is audited. Authenticate with OAuth2 client credentials at `POST /oauth/token`.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    async with AsyncExitStack() as stack:
        url = settings.database_url
        if url is None:
            # The handle keeps the embedded server running for as long as this process serves.
            url, app.state.embedded_server = start_embedded(settings.data_dir)
        engine = create_engine(settings, url)
        stack.push_async_callback(engine.dispose)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.pool = await create_pool(url, settings.db_hot_pool_size)
        stack.push_async_callback(app.state.pool.close)
        app.state.audit_writer = AuditWriter(app.state.pool)
        stack.push_async_callback(app.state.audit_writer.close)
        app.state.keys = KeyRing(timedelta(seconds=settings.token_ttl_seconds))
        async with transaction(app.state.sessionmaker) as session:
            await ensure_signing_key(session)
            app.state.console_key = await officers.shared_secret(session, "console-cookies")
        # Every process offers to be the audit integrator; the one holding the database lock seals the log.
        app.state.integrator = Integrator(engine, app.state.sessionmaker, app.state.pool, app.state.keys)
        integrator = asyncio.create_task(app.state.integrator.run())
        app.state.jobs = Jobs()
        if settings.delivery_in_serve:
            # Webhooks go out from the serving processes too; `exchange worker` adds capacity.
            deliverer = Deliverer(engine, app.state.sessionmaker, settings)
            app.state.jobs.start("webhook delivery", deliverer.run())
        # Everything built so far lives as long as the process: keep it out of the collector's full passes,
        # which otherwise walk every module, route and model on each run (tens of milliseconds, a stall for
        # every request in flight).
        gc.freeze()
        try:
            yield
        finally:
            await app.state.jobs.close()
            integrator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await integrator


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    app = FastAPI(
        title="Exchange hub",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.verified_tokens = VerifiedTokens()
    app.state.client_buckets = ClientBuckets(
        settings.client_rate_per_second, 2 * settings.client_rate_per_second
    )
    app.state.on_refusal = record_refusal
    install_handlers(app)
    app.add_middleware(BodyGuardMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origin_list:
        # Closed unless an operator names the browser origins that may call the API.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Exchange-Purpose", "Exchange-Case",
                           "Exchange-On-Behalf-Of", "Idempotency-Key", "If-Match"],
            expose_headers=["ETag", "X-Request-Id", "Retry-After", "Location"],
        )  # fmt: skip
    app.add_middleware(ConsoleHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware)
    # Routes are matched in order: the hot data paths first.
    app.include_router(records_router)
    app.include_router(auth_router)
    app.include_router(departments_router)
    app.include_router(catalog_router)
    app.include_router(sharing_router)
    app.include_router(audit_router)
    app.include_router(crosscheck_router)
    app.include_router(subscriptions_router)
    app.include_router(open_records_router)
    app.include_router(console_router)
    app.mount("/console/static", console_static, name="console-static")

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/console", status_code=307)

    @app.get("/healthz", tags=["operations"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="The database answers", response_model=None)
    async def readyz(request: Request) -> JSONResponse | dict[str, str]:
        try:
            async with request.app.state.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:  # any failure to reach the database means "not ready"
            return problem_response(
                status=503,
                code="database_unavailable",
                title="Not ready",
                detail="The database is not reachable.",
            )
        return {"status": "ready"}

    app.add_route("/metrics", metrics_response, include_in_schema=False)
    return app
