"""The audit log: every kind of action recorded, searchable, sealed in a verifiable chain, fail-closed."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select, text

from exchange.audit.models import AuditEvent, AuditPending
from exchange.audit.verify import verify_log
from tests.fixtures_departments import CIVIL_AFFAIRS, Headers, MakeGrant, publish, query, read_headers
from tests.identifiers import valid_ric

pytestmark = pytest.mark.usefixtures("catalog_loaded")


async def sealed(app: Any, within: float = 15.0) -> None:
    """Wait until the hub's own integrator has chained every queued event."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        async with app.state.sessionmaker() as session:
            if not await session.scalar(select(func.count()).select_from(AuditPending)):
                return
        assert loop.time() < deadline, "the integrator did not seal the log in time"
        await asyncio.sleep(0.2)


async def _sql(app: Any, *statements: str) -> None:
    """Statements run straight in PostgreSQL, as someone with database access would run them."""
    async with app.state.engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))


async def _verify(app: Any) -> Any:
    async with app.state.sessionmaker() as session:
        return await verify_log(session)


@pytest.fixture
async def auditor(make_client: Any, token_for: Any) -> Headers:
    from exchange.auth.principal import Role

    return dict(await token_for(await make_client(Role.auditor)))


@pytest.fixture
async def activity(
    http: httpx.AsyncClient, police: Headers, civil: Headers, make_grant: MakeGrant, steward_headers: Headers
) -> str:
    """One of each kind of action about one person."""
    person = valid_ric(serial=1101)
    await publish(http, police, {"subject_id": person, "fields": {"name": "敖登", "sex": "2"}})
    await make_grant(CIVIL_AFFAIRS, ["name"])
    await query(
        http,
        read_headers(civil, **{"Exchange-Case": "C-7", "Exchange-On-Behalf-Of": "officer-9"}),
        [person],
        ["name"],
    )
    await query(http, read_headers(civil), [person], ["birth_date"])
    await http.post(
        "/v1/resources/population.person/records:verify",
        json={"subject_id": person, "fields": {"name": "敖登"}},
        headers=read_headers(civil),
    )
    etag = (await http.get("/v1/catalog/resources/population.person", headers=steward_headers)).headers[
        "etag"
    ]
    edited = await http.patch(
        "/v1/catalog/resources/population.person",
        json={"elements": {"phone": {"title": "移动电话号码"}}},
        headers=steward_headers | {"If-Match": etag, "content-type": "application/merge-patch+json"},
    )
    assert edited.status_code == 200, edited.text
    return person


@pytest.fixture
async def steward_headers(make_client: Any, token_for: Any) -> Headers:
    from exchange.auth.principal import Role

    return dict(await token_for(await make_client(Role.steward)))


async def _search(http: httpx.AsyncClient, auditor: Headers, **filters: Any) -> list[dict[str, Any]]:
    response = await http.post("/v1/audit/events:search", json=filters, headers=auditor)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_every_kind_of_action_is_recorded_with_who_why_and_outcome(
    app: Any, http: httpx.AsyncClient, auditor: Headers, activity: str
) -> None:
    await sealed(app)
    events = await _search(http, auditor, subject_id=activity)
    kinds = [(e["action"], e["outcome"]) for e in reversed(events)]
    assert kinds == [
        ("records.publish", "allowed"),
        ("records.query", "allowed"),
        ("records.query", "denied"),
        ("records.verify", "allowed"),
    ]
    allowed_read = events[2]
    assert (allowed_read["department"], allowed_read["officer"], allowed_read["case"]) == (
        CIVIL_AFFAIRS,
        "officer-9",
        "C-7",
    )
    assert allowed_read["purpose"] == "social-assistance-eligibility"
    assert allowed_read["grant_id"] is not None
    assert all(e["seq"] is not None for e in events)
    edits = await _search(http, auditor, action="catalog.edit")
    assert edits[0]["resource"] == "population.person"
    assert edits[0]["elements"] == ["phone"]


async def test_search_filters_and_pages(http: httpx.AsyncClient, auditor: Headers, activity: str) -> None:
    denied = await _search(http, auditor, outcome="denied", subject_id=activity)
    assert [e["elements"] for e in denied] == [["birth_date"]]
    by_case = await _search(http, auditor, case="C-7")
    assert len(by_case) == 1
    by_element = await _search(
        http, auditor, element="name", department=CIVIL_AFFAIRS, action="records.query"
    )
    assert len(by_element) == 1
    assert await _search(http, auditor, since="2999-01-01T00:00:00Z") == []
    reads = {"subject_id": activity, "action": "records.query", "limit": 1}
    first = (await http.post("/v1/audit/events:search", json=reads, headers=auditor)).json()
    second = (
        await http.post(
            "/v1/audit/events:search", json=reads | {"cursor": first["next_cursor"]}, headers=auditor
        )
    ).json()
    assert [e["outcome"] for e in first["items"] + second["items"]] == ["denied", "allowed"]
    assert second["next_cursor"] is None


async def test_the_data_subject_view_and_the_exports(
    http: httpx.AsyncClient, auditor: Headers, activity: str
) -> None:
    response = await http.post("/v1/audit/subjects:accesses", json={"subject_id": activity}, headers=auditor)
    items = response.json()["items"]
    assert [(i["action"], i["outcome"], i["elements"]) for i in items] == [
        ("records.verify", "allowed", ["name"]),
        ("records.query", "denied", ["birth_date"]),
        ("records.query", "allowed", ["name"]),
    ]
    assert items[2]["purpose"] == "social-assistance-eligibility"
    ndjson = await http.post("/v1/audit/events:export", json={"subject_id": activity}, headers=auditor)
    assert ndjson.headers["content-type"] == "application/x-ndjson"
    exported = [orjson.loads(line) for line in ndjson.text.strip().splitlines()]
    assert sorted(e["action"] for e in exported if e["action"].startswith("records.")) == [
        "records.publish",
        "records.query",
        "records.query",
        "records.verify",
    ]
    csv = await http.post(
        "/v1/audit/events:export?format=csv", json={"subject_id": activity}, headers=auditor
    )
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("id,seq,occurred_at,action")
    assert len(lines) == len(exported) + 2  # a header, and the export recorded before it streamed
    # Looking is itself recorded.
    looks = await _search(http, auditor, action="audit.subject_accesses")
    assert looks[0]["subject_ids"] == [activity]


async def test_only_auditors_read_the_log(http: httpx.AsyncClient, civil: Headers) -> None:
    assert (await http.post("/v1/audit/events:search", json={}, headers=civil)).status_code == 403


async def test_the_sealed_log_verifies(
    app: Any, http: httpx.AsyncClient, auditor: Headers, activity: str
) -> None:
    await sealed(app)
    response = (await http.get("/v1/audit/verify", headers=auditor)).json()
    assert response["ok"] is True, response
    assert response["checked"] >= 6
    assert response["checkpoints"] >= 1
    checkpoints = (await http.get("/v1/audit/checkpoints", headers=auditor)).json()
    assert checkpoints[-1]["seq"] == response["checked"]


@pytest.mark.parametrize(
    ("path", "parameter"), [("/v1/audit/verify", "from"), ("/v1/audit/checkpoints", "after")]
)
async def test_a_sequence_number_beyond_the_column_is_refused_as_input(
    http: httpx.AsyncClient, auditor: Headers, path: str, parameter: str
) -> None:
    response = await http.get(path, params={parameter: 2**63}, headers=auditor)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [p["name"] for p in response.json()["invalid_params"]] == [f"query.{parameter}"]


async def test_the_log_refuses_updates_deletes_and_truncation(app: Any, activity: str) -> None:
    await sealed(app)
    for statement in (
        "UPDATE audit_events SET outcome = 'allowed' WHERE outcome = 'denied'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "UPDATE audit_chain SET hash = '\\x00'",
    ):
        with pytest.raises(Exception, match="append-only"):
            await _sql(app, statement)


async def test_the_application_role_may_only_insert_and_select(app: Any, activity: str) -> None:
    await sealed(app)
    with pytest.raises(Exception, match="permission denied"):
        await _sql(app, "SET LOCAL ROLE exchange_app", "UPDATE audit_events SET reason = 'x'")
    await _sql(app, "SET LOCAL ROLE exchange_app", "SELECT count(*) FROM audit_events")


@pytest.mark.parametrize(
    ("tampering", "expect_first_bad"),
    [
        ("UPDATE audit_events SET outcome = 'allowed' WHERE outcome = 'denied'", True),
        ("DELETE FROM audit_events WHERE action = 'records.verify'", True),
        ("DELETE FROM audit_chain WHERE seq = (SELECT max(seq) FROM audit_chain)", True),
        (
            "INSERT INTO audit_events (occurred_at, action, outcome, subject_ids, elements, details) "
            "VALUES (now() - interval '1 hour', 'records.query', 'allowed', '{}', '{}', '{}')",
            False,
        ),
    ],
    ids=["update", "delete-event", "truncated-tail", "forged-insert"],
)
async def test_tampering_in_postgresql_is_found(
    app: Any, activity: str, tampering: str, expect_first_bad: bool
) -> None:
    await sealed(app)
    assert (await _verify(app)).ok
    await _sql(
        app,
        "ALTER TABLE audit_events DISABLE TRIGGER USER",
        "ALTER TABLE audit_chain DISABLE TRIGGER USER",
        tampering,
        "ALTER TABLE audit_events ENABLE TRIGGER USER",
        "ALTER TABLE audit_chain ENABLE TRIGGER USER",
    )
    result = await _verify(app)
    assert not result.ok
    if expect_first_bad:
        assert result.first_bad is not None
        assert result.first_bad >= 1
    else:
        assert result.unchained_events


async def test_no_audit_event_no_data(
    app: Any, http: httpx.AsyncClient, police: Headers, civil: Headers, make_grant: MakeGrant
) -> None:
    person = valid_ric(serial=1102)
    await publish(http, police, {"subject_id": person, "fields": {"name": "其木格"}})
    await make_grant(CIVIL_AFFAIRS, ["name"])
    await _sql(
        app,
        """CREATE FUNCTION refuse_reads() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN IF NEW.action = 'records.query' THEN RAISE EXCEPTION 'audit storage unavailable'; END IF;
           RETURN NEW; END $$""",
        "CREATE TRIGGER refuse_reads BEFORE INSERT ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION refuse_reads()",
    )
    response = await query(http, read_headers(civil), [person], ["name"])
    assert response.status_code == 503
    assert response.json()["code"] == "audit_unavailable"
    assert "其木格" not in response.text
    async with app.state.sessionmaker() as session:
        reads = await session.scalar(select(func.count()).where(AuditEvent.action == "records.query"))
    assert reads == 0


async def test_archived_months_leave_the_log_and_everything_still_verifies(
    app: Any, http: httpx.AsyncClient, police: Headers, activity: str, tmp_path: Any
) -> None:
    from datetime import UTC, datetime

    from exchange.audit.archive import archive_before, verify_archives
    from exchange.db.session import transaction

    await sealed(app)
    cut = datetime.now(UTC)
    await publish(http, police, {"subject_id": valid_ric(serial=1103), "fields": {"sex": "1"}})
    await sealed(app)
    async with transaction(app.state.sessionmaker) as session:
        entry = await archive_before(session, cut, tmp_path)
    assert entry is not None
    assert entry.first_seq == 1
    assert (tmp_path / entry.file).exists()
    result = await _verify(app)
    assert result.ok, result.problems
    assert result.checked >= 1  # the live remainder, anchored on the archive's last link
    async with app.state.sessionmaker() as session:
        assert await verify_archives(session, tmp_path) == []
        left = await session.scalar(select(func.min(AuditEvent.id)))
    assert left is not None
    (tmp_path / entry.file).write_bytes(b"tampered")
    async with app.state.sessionmaker() as session:
        assert "does not match its recorded digest" in (await verify_archives(session, tmp_path))[0]


async def test_the_verify_command_reports_the_first_bad_sequence_number(app: Any, settings: Any) -> None:
    from tests.processes import hub_env, run_cli

    await sealed(app)
    env = hub_env(database_url=settings.database_url, data_dir=str(settings.data_dir))
    assert "ok: checked 3 events" in (await asyncio.to_thread(run_cli, "audit", "verify", env=env)).stdout
    await _sql(
        app,
        "ALTER TABLE audit_events DISABLE TRIGGER USER",
        "UPDATE audit_events SET reason = 'edited' "
        "WHERE id = (SELECT event_id FROM audit_chain WHERE seq = 2)",
        "ALTER TABLE audit_events ENABLE TRIGGER USER",
    )
    refused = await asyncio.to_thread(run_cli, "audit", "verify", env=env, check=False)
    assert refused.returncode == 1
    assert "first bad sequence number: 2" in refused.stderr


async def test_the_database_writes_an_events_fields_as_the_chain_hashes_them(app: Any) -> None:
    """The integrator and the verifier have PostgreSQL format times and ids for hashing; archives and the
    pure chain functions format them in Python: both must give the same bytes, or old links stop verifying."""
    import uuid
    from datetime import UTC, datetime, timedelta, timezone

    from exchange.audit.chain import plain

    moments = [
        datetime(2026, 12, 1, 8, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=timezone(timedelta(hours=8))),
        datetime(2031, 7, 31, 23, 59, 59, 1, tzinfo=UTC),
    ]
    grant = uuid.uuid4()
    async with app.state.engine.connect() as connection:
        for moment in moments:
            row = (
                await connection.execute(
                    text(
                        """SELECT to_char(CAST(:at AS timestamptz) AT TIME ZONE 'UTC',
                                          'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), CAST(:grant AS uuid)::text"""
                    ),
                    {"at": moment, "grant": grant},
                )
            ).one()
            assert (row[0], row[1]) == (plain(moment), plain(grant))


async def test_an_event_read_as_json_from_the_database_hashes_as_its_columns_do(app: Any) -> None:
    """Chaining and verifying read each event as one JSON array built by PostgreSQL; archives hash events
    from their columns. Awkward values must give the same bytes both ways."""
    import uuid

    from exchange.audit.chain import CANONICAL_JSON, GENESIS, link, link_json
    from exchange.audit.service import Event

    event = Event(
        action="records.query",
        reason='引号 " 反斜杠 \\ 换行\n制表\t ᠮᠣᠩᠭᠣᠯ ＦＵＬＬ',
        department=CIVIL_AFFAIRS,
        client_id="cl_test",
        officer="ᠪᠠᠲᠤ",
        grant_id=uuid.uuid4(),
        resource="population.person",
        subject_ids=["150402198503120025", "ᠮᠣᠩ"],
        elements=[],
        details={"b": [1, 2.5, None, True], "a": {"z": "", "y": 12345678901234}, "长": -0.0},
    )
    await app.state.audit_writer.append(event)
    async with app.state.engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    f"SELECT e.*, {CANONICAL_JSON} AS canonical FROM audit_events AS e "  # noqa: S608
                    "WHERE action = 'records.query' ORDER BY id DESC LIMIT 1"
                )
            )
        ).one()
    assert link_json(GENESIS, row.canonical) == link(GENESIS, row._mapping)
