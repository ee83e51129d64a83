"""Bad input gets a clear 4xx problem and changes nothing: oversized, deeply nested, badly encoded, NUL,
too many subjects, meta-characters, header injection; and browsers of other sites are not let in (CORS)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from exchange.audit.models import AuditEvent
from exchange.db.session import transaction
from exchange.main import create_app
from exchange.records.models import Record
from tests.conftest import TEST_ISSUER
from tests.fixtures_departments import PERSON, Headers, MakeGrant, publish, query, read_headers
from tests.identifiers import valid_ric

pytestmark = pytest.mark.usefixtures("catalog_loaded")
NDJSON = {"content-type": "application/x-ndjson"}


async def _records(app: Any) -> int:
    async with transaction(app.state.sessionmaker) as session:
        return int(await session.scalar(select(func.count()).select_from(Record)) or 0)


def _person(serial: int, name: str) -> dict[str, Any]:
    return {"subject_id": valid_ric(serial=serial), "fields": {"name": name, "sex": "1"}}


async def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(
    app: Any, http: httpx.AsyncClient, police: Headers
) -> None:
    limit = app.state.settings.max_body_bytes
    big = orjson.dumps(_person(1, "大" * limit))
    declared = await http.post(
        f"{PERSON}/records", content=big, headers=police | {"content-type": "application/json"}
    )
    assert declared.status_code == 413
    assert declared.headers["content-type"] == "application/problem+json"

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    streamed = await http.post(
        f"{PERSON}/records", content=chunks(), headers=police | {"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert await _records(app) == 0


async def test_deeply_nested_json_is_refused(http: httpx.AsyncClient, police: Headers) -> None:
    nested = b'{"subject_id": "x", "fields": {"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    answer = await http.post(
        f"{PERSON}/records", content=nested, headers=police | {"content-type": "application/json"}
    )
    assert answer.status_code in {400, 422}
    assert answer.headers["content-type"] == "application/problem+json"


async def test_invalid_utf8_is_400_and_nul_characters_422(
    app: Any, http: httpx.AsyncClient, police: Headers
) -> None:
    raw = b'{"subject_id": "' + valid_ric(serial=2).encode() + b'", "fields": {"name": "\xff\xfe"}}'
    bad_bytes = await http.post(
        f"{PERSON}/records", content=raw, headers=police | {"content-type": "application/json"}
    )
    assert (bad_bytes.status_code, bad_bytes.json()["code"]) == (400, "invalid_encoding")

    nul = await publish(http, police, _person(3, "张\u0000三"))
    assert (nul.status_code, nul.json()["code"]) == (422, "nul_character")
    escaped_backslash = await publish(http, police, _person(4, "张\\u0000三"))  # text, not a NUL
    assert escaped_backslash.status_code == 200, escaped_backslash.text
    assert await _records(app) == 1


@pytest.mark.parametrize(
    "url",
    [
        "/v1/catalog/resources/population.person%00",
        "/v1/discrepancies?element=name%00",
        f"{PERSON}%00/records:query",
    ],
)
async def test_a_nul_in_the_url_is_422_before_any_route(
    http: httpx.AsyncClient, police: Headers, url: str
) -> None:
    # PostgreSQL would refuse it as a code, an element name or a filter: a 500, had it got that far.
    answer = await http.request(
        "POST" if url.endswith(":query") else "GET", url, headers=read_headers(police)
    )
    assert (answer.status_code, answer.json()["code"]) == (422, "nul_character")
    assert answer.headers["content-type"] == "application/problem+json"


async def test_a_nul_in_a_batch_line_refuses_that_line_only(
    app: Any, http: httpx.AsyncClient, police: Headers
) -> None:
    lines = [orjson.dumps(_person(5, "张\u0000三")), orjson.dumps(_person(6, "李四"))]
    answer = await http.post(
        f"{PERSON}/records:batch", content=b"\n".join(lines) + b"\n", headers=police | NDJSON
    )
    result = answer.json()
    assert (result["accepted"], result["rejected"]) == (1, 1)
    assert result["errors"][0]["line"] == 1
    assert await _records(app) == 1


async def test_ten_thousand_subjects_in_one_query_are_refused(
    http: httpx.AsyncClient, police: Headers, civil: Headers, make_grant: MakeGrant
) -> None:
    await make_grant("11150400MB15040128", ["name"])
    subjects = [valid_ric(serial=n) for n in range(10_000)]
    answer = await query(http, read_headers(civil), subjects, ["name"])
    assert answer.status_code == 422
    assert answer.json()["invalid_params"][0]["name"] == "subject_ids"


@pytest.mark.parametrize(
    "text",
    [
        "'; DROP TABLE records; --",
        "{{7*7}}${7*7}<%= 7*7 %>",
        "<script>alert(1)</script>",
        "\\' OR 1=1 --",
        "％００",
    ],
)
async def test_meta_characters_are_kept_as_text_and_never_run(
    app: Any, http: httpx.AsyncClient, police: Headers, civil: Headers, make_grant: MakeGrant, text: str
) -> None:
    await make_grant("11150400MB15040128", ["name"])
    subject = valid_ric(serial=7)
    assert (await publish(http, police, {"subject_id": subject, "fields": {"name": text}})).status_code == 200
    read = await query(http, read_headers(civil), [subject], ["name"])
    assert read.json()["records"][0]["fields"]["name"] == text
    assert await _records(app) == 1


async def test_header_injection_is_refused_and_nothing_is_logged_with_it(
    app: Any, http: httpx.AsyncClient, civil: Headers, make_grant: MakeGrant
) -> None:
    await make_grant("11150400MB15040128", ["name"])
    for value in ["%E5%BC%A0%E4%B8%89%0d%0aX-Injected: yes", "%E5%BC%A0%E4%B8%89%00"]:
        answer = await query(
            http, read_headers(civil) | {"Exchange-On-Behalf-Of": value}, [valid_ric(serial=8)], ["name"]
        )
        assert answer.status_code == 422
        assert "x-injected" not in answer.headers
    async with transaction(app.state.sessionmaker) as session:
        officers = list(
            await session.scalars(select(AuditEvent.officer).where(AuditEvent.officer.is_not(None)))
        )
    assert all("\n" not in o and "\x00" not in o for o in officers)
    unsafe_id = await http.get("/healthz", headers={"X-Request-Id": "abcdefgh; drop table"})
    assert unsafe_id.headers["x-request-id"] != "abcdefgh; drop table"


async def test_cors_is_closed_unless_origins_are_configured(
    app: Any, http: httpx.AsyncClient, settings: Any
) -> None:
    origin = {"Origin": "https://portal.example.gov.cn"}
    preflight = await http.options(
        f"{PERSON}/records:query", headers=origin | {"Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in (await http.get("/healthz", headers=origin)).headers

    opened = create_app(settings.model_copy(update={"cors_origins": "https://portal.example.gov.cn"}))
    transport = httpx.ASGITransport(app=opened)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_ISSUER) as client:
        allowed = await client.options(
            f"{PERSON}/records:query", headers=origin | {"Access-Control-Request-Method": "POST"}
        )
        assert allowed.headers["access-control-allow-origin"] == "https://portal.example.gov.cn"
        other = await client.options(
            f"{PERSON}/records:query",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in other.headers
