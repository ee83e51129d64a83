"""Every error is an RFC 9457 problem document with a request id, and a 500 says nothing internal."""

from __future__ import annotations

from typing import Any

import httpx


async def test_unknown_paths_and_methods_are_problems(http: httpx.AsyncClient) -> None:
    missing = await http.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "not_found"
    wrong_method = await http.delete("/oauth/token")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"


async def test_malformed_json_is_a_400_and_invalid_fields_a_422(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    headers = admin_headers | {"content-type": "application/json"}
    malformed = await http.post("/v1/departments", content=b'{"code": ', headers=headers)
    assert malformed.status_code == 400
    assert malformed.json()["code"] == "malformed_json"
    invalid = await http.post("/v1/departments", json={"code": 5, "extra": True}, headers=admin_headers)
    assert invalid.status_code == 422
    body = invalid.json()
    assert body["type"].endswith("/invalid_input")
    assert {p["name"] for p in body["invalid_params"]} == {"code", "name", "extra"}


async def test_every_response_carries_a_request_id_and_problems_repeat_it(http: httpx.AsyncClient) -> None:
    ok = await http.get("/healthz")
    assert len(ok.headers["x-request-id"]) == 32
    echoed = await http.get("/v1/nothing", headers={"X-Request-Id": "trace-12345678"})
    assert echoed.headers["x-request-id"] == "trace-12345678"
    assert echoed.json()["request_id"] == "trace-12345678"
    unsafe = await http.get("/healthz", headers={"X-Request-Id": "<script>"})
    assert unsafe.headers["x-request-id"] != "<script>"


async def test_an_unexpected_failure_is_a_500_problem_without_internals(
    app: Any, http: httpx.AsyncClient
) -> None:
    async def explode() -> None:
        raise RuntimeError("password=hunter2 at /srv/secret/path")

    app.add_api_route("/test-explode", explode)
    response = await http.get("/test-explode")
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal_error"
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]


async def test_a_transaction_the_database_undid_for_another_is_a_503_to_retry(
    app: Any, http: httpx.AsyncClient
) -> None:
    import asyncpg
    from sqlalchemy.exc import DBAPIError

    async def deadlocked() -> None:
        cause = asyncpg.exceptions.DeadlockDetectedError("deadlock detected")
        raise DBAPIError("UPDATE records ...", {}, cause) from cause

    app.add_api_route("/test-deadlock", deadlocked)
    response = await http.get("/test-deadlock")
    assert response.status_code == 503
    assert response.json()["code"] == "concurrent_conflict"
    assert response.headers["retry-after"] == "1"


async def test_openapi_describes_problem_responses_and_the_bearer_scheme(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    create = spec["paths"]["/v1/departments"]["post"]
    assert "application/problem+json" in create["responses"]["409"]["content"]
    assert spec["components"]["securitySchemes"]["accessToken"]["scheme"] == "bearer"
    assert "/oauth/token" in spec["paths"]


async def test_openapi_gives_every_problem_its_media_type_and_schema(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            errors = {status: r for status, r in operation["responses"].items() if int(status) >= 400}
            assert all(r["content"] == problem for r in errors.values()), f"{method} {path}"
            assert "422" in errors, f"{method} {path}: a URL holding a NUL is refused before any route"
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                # Refused before any route reads the body: not JSON or not UTF-8, too large, a NUL inside.
                assert {"400", "413", "422"} <= errors.keys(), f"{method} {path}"
    # The token endpoint's form fields are checked by the same handler as every other input.
    assert "422" in spec["paths"]["/oauth/token"]["post"]["responses"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
