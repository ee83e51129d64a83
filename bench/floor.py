"""The floor of the governed read: a bare FastAPI + asyncpg endpoint that selects the same record by primary
key from the hub's own database and answers the requested fields, with nothing else (no token, no purpose,
no grant, no audit). Run by uvicorn as the hub is (same workers, same event loop and HTTP parser).

`uvicorn --factory bench.floor:create_app` with ``FLOOR_DATABASE_URL`` set.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel

_SELECT = """
SELECT subject_id, version, fields FROM records WHERE resource_code = $1 AND subject_id = ANY($2::text[])
"""


class Query(BaseModel):
    subject_ids: list[str]
    fields: list[str]


def create_app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = os.environ["FLOOR_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
        async with asyncpg.create_pool(url, min_size=4, max_size=10) as pool:
            app.state.pool = pool
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/resources/{code}/records:query")
    async def query(code: str, body: Query, request: Request) -> Response:
        rows = await request.app.state.pool.fetch(_SELECT, code, body.subject_ids)
        records: list[dict[str, Any]] = []
        for row in rows:
            fields = orjson.loads(row["fields"])
            records.append(
                {
                    "subject_id": row["subject_id"],
                    "version": row["version"],
                    "fields": {name: fields.get(name) for name in body.fields},
                }
            )
        return Response(orjson.dumps({"records": records}), media_type="application/json")

    return app
