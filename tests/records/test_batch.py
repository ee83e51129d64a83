"""Batch publish: NDJSON streamed, good lines applied, bad lines reported, retries and resumption."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from exchange.records import batch
from exchange.records.models import Record, RecordVersion
from tests.fixtures_departments import PERSON, Headers
from tests.identifiers import valid_ric

pytestmark = pytest.mark.usefixtures("catalog_loaded")
NDJSON = {"content-type": "application/x-ndjson"}


def _lines(bodies: list[Any]) -> bytes:
    return b"".join((body if isinstance(body, bytes) else orjson.dumps(body)) + b"\n" for body in bodies)


async def _count(app: Any, model: Any) -> int:
    async with app.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_good_lines_are_applied_and_bad_lines_reported_by_number(
    app: Any, http: httpx.AsyncClient, police: Headers
) -> None:
    people = [valid_ric(serial=500 + n) for n in range(5)]
    body = _lines(
        [
            {"subject_id": people[0], "fields": {"name": "甲", "sex": "1"}},
            {"subject_id": people[1], "fields": {"name": "乙", "sex": "9x"}},
            b"{not json",
            b"",
            {"subject_id": "123", "fields": {"name": "丙"}},
            {"subject_id": people[2], "fields": {"name": "丁", "marital_status": "20"}},
            [1, 2],
            {"subject_id": people[0], "fields": {"name": "甲二"}},
        ]
    )
    response = await http.post(f"{PERSON}/records:batch", content=body, headers=police | NDJSON)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["accepted"], result["rejected"], result["applied_versions"], result["observations"]) == (
        3,
        4,
        3,
        1,
    )
    assert result["lines"] == 8
    assert [(e["line"], e["subject_id"]) for e in result["errors"]] == [
        (2, people[1]),
        (3, None),
        (5, "123"),
        (7, None),
    ]
    assert result["errors"][0]["invalid_params"] == [
        {"name": "fields.sex", "reason": "is not in the element's code list"}
    ]
    assert result["errors"][1]["invalid_params"] == [{"name": "line", "reason": "is not valid JSON"}]
    async with app.state.sessionmaker() as session:
        first = await session.get(Record, ("population.person", people[0]))
    assert first is not None
    assert (first.version, first.fields["name"]) == (2, "甲二")


async def test_a_line_whose_time_has_no_place_on_the_utc_time_line_is_reported_alone(
    http: httpx.AsyncClient, police: Headers
) -> None:
    people = [valid_ric(serial=520 + n) for n in range(3)]
    body = _lines(
        [
            {"subject_id": people[0], "fields": {"name": "甲"}, "valid_from": "0001-01-01T00:00:00+01:00"},
            {"subject_id": people[1], "fields": {"name": "乙"}, "valid_from": "0001-01-01T00:00:00Z"},
            {"subject_id": people[2], "fields": {"name": "丙"}, "valid_from": "2020-01-01T08:00:00+08:00"},
        ]
    )
    response = await http.post(f"{PERSON}/records:batch", content=body, headers=police | NDJSON)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (1, 2)
    assert [(e["line"], [p["name"] for p in e["invalid_params"]]) for e in result["errors"]] == [
        (1, ["valid_from"]),
        (2, ["valid_from"]),
    ]


async def test_a_retry_with_the_same_key_changes_nothing_more(
    app: Any, http: httpx.AsyncClient, police: Headers
) -> None:
    body = _lines(
        [{"subject_id": valid_ric(serial=600 + n), "fields": {"name": f"人{n}"}} for n in range(50)]
    )
    headers = police | NDJSON | {"Idempotency-Key": "batch-600"}
    first = await http.post(f"{PERSON}/records:batch", content=body, headers=headers)
    versions = await _count(app, RecordVersion)
    again = await http.post(f"{PERSON}/records:batch", content=body, headers=headers)
    assert again.json() == first.json()
    assert first.json()["applied_versions"] == 50
    assert await _count(app, RecordVersion) == versions


async def test_an_interrupted_batch_resumes_after_the_last_committed_chunk(
    app: Any, http: httpx.AsyncClient, police: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "CHUNK", 10)
    bodies = [{"subject_id": valid_ric(serial=700 + n), "fields": {"name": f"续{n}"}} for n in range(35)]
    body = _lines(bodies)
    headers = police | NDJSON | {"Idempotency-Key": "batch-700"}
    cut = body.index(orjson.dumps(bodies[25]))

    async def dropped_connection() -> AsyncIterator[bytes]:
        yield body[:cut]
        raise ConnectionResetError("the client went away")

    interrupted = await http.post(f"{PERSON}/records:batch", content=dropped_connection(), headers=headers)
    assert interrupted.status_code == 400
    assert interrupted.json()["code"] == "body_interrupted"
    assert "lines up to 20 are applied" in interrupted.json()["detail"]
    assert await _count(app, RecordVersion) == 20  # two whole chunks committed, the third never

    resumed = await http.post(f"{PERSON}/records:batch", content=body, headers=headers)
    result = resumed.json()
    assert result["resumed_after_line"] == 20
    assert (result["accepted"], result["applied_versions"], result["lines"]) == (35, 35, 35)
    assert await _count(app, RecordVersion) == 35


async def test_a_line_too_long_is_reported_and_the_rest_applied(
    app: Any, http: httpx.AsyncClient, police: Headers
) -> None:
    app.state.settings.max_line_bytes = 200
    long_line = orjson.dumps({"subject_id": valid_ric(serial=801), "fields": {"name": "长" * 300}})
    body = _lines([long_line, {"subject_id": valid_ric(serial=802), "fields": {"name": "短"}}])
    result = (await http.post(f"{PERSON}/records:batch", content=body, headers=police | NDJSON)).json()
    assert (result["accepted"], result["rejected"]) == (1, 1)
    assert result["errors"][0]["invalid_params"][0]["reason"] == "is longer than 200 bytes"


async def test_lines_split_across_network_chunks_are_read_whole() -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b'{"a":', b'1}\n{"b"', b":2}\n\n", b'{"c":3}'):
            yield piece

    assert [line async for line in batch.lines_of(pieces())] == [b'{"a":1}', b'{"b":2}', b"", b'{"c":3}']


async def test_chunks_applied_side_by_side_keep_the_order_of_the_lines(
    app: Any, http: httpx.AsyncClient, police: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two chunks are applied at once; a person in both waits for the first, so the later line wins, and the
    saved progress counts every version of the chunks before."""
    monkeypatch.setattr(batch, "CHUNK", 10)
    people = [valid_ric(serial=900 + n) for n in range(30)]
    known = {"subject_id": people[2], "fields": {"name": "原"}}
    await http.post(f"{PERSON}/records:batch", content=_lines([known]), headers=police | NDJSON)
    bodies = [{"subject_id": person, "fields": {"name": f"先{n}"}} for n, person in enumerate(people)]
    # The first person again in the third chunk, and the second in the second: each a new version on top.
    bodies[25] = {"subject_id": people[0], "fields": {"name": "后来"}}
    bodies[15] = {"subject_id": people[1], "fields": {"name": "随后"}}
    # The third is changed in the first chunk and changed back in the second: read before the first chunk
    # commits, the second's value would look unchanged.
    bodies[16] = {"subject_id": people[2], "fields": {"name": "原"}}
    applied = batch.service.apply

    async def first_chunk_slow(session: Any, rules: Any, principal: Any, items: Any, *args: Any) -> Any:
        results = await applied(session, rules, principal, items, *args)
        if items[0].subject_id == people[0]:
            await asyncio.sleep(0.3)  # the second chunk reads meanwhile, unless it waits
        return results

    monkeypatch.setattr(batch.service, "apply", first_chunk_slow)
    headers = police | NDJSON | {"Idempotency-Key": "batch-900"}
    result = (await http.post(f"{PERSON}/records:batch", content=_lines(bodies), headers=headers)).json()
    assert (result["accepted"], result["applied_versions"]) == (30, 30)
    async with app.state.sessionmaker() as session:
        first = await session.get(Record, ("population.person", people[0]))
        second = await session.get(Record, ("population.person", people[1]))
        third = await session.get(Record, ("population.person", people[2]))
    assert first is not None
    assert second is not None
    assert third is not None
    assert (first.version, first.fields["name"]) == (2, "后来")
    assert (second.version, second.fields["name"]) == (2, "随后")
    assert (third.version, third.fields["name"]) == (3, "原")
    assert await _count(app, RecordVersion) == 31


async def test_a_chunk_that_fails_leaves_the_chunks_after_it_unapplied(
    app: Any, http: httpx.AsyncClient, police: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chunk after a failed one was applied beside it but commits only after it: it rolls back too, and
    a retry with the same key resumes after the last chunk that did commit."""
    monkeypatch.setattr(batch, "CHUNK", 10)
    bodies = [{"subject_id": valid_ric(serial=950 + n), "fields": {"name": f"败{n}"}} for n in range(30)]
    headers = police | NDJSON | {"Idempotency-Key": "batch-950"}
    applied = batch.service.apply

    async def second_chunk_fails(session: Any, rules: Any, principal: Any, items: Any, *args: Any) -> Any:
        results = await applied(session, rules, principal, items, *args)
        if items[0].subject_id == bodies[10]["subject_id"]:
            raise RuntimeError("the database went away mid-chunk")
        return results

    monkeypatch.setattr(batch.service, "apply", second_chunk_fails)
    failed = await http.post(f"{PERSON}/records:batch", content=_lines(bodies), headers=headers)
    assert failed.status_code == 500
    assert await _count(app, RecordVersion) == 10  # the first chunk only; the third waited and rolled back

    monkeypatch.setattr(batch.service, "apply", applied)
    resumed = (await http.post(f"{PERSON}/records:batch", content=_lines(bodies), headers=headers)).json()
    assert (resumed["resumed_after_line"], resumed["applied_versions"]) == (10, 30)
    assert await _count(app, RecordVersion) == 30
