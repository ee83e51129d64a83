"""The API fuzzed with schemathesis against the hub's own OpenAPI document.

One hub runs as a real process (`exchange serve`) on a database of its own, with the repository catalogue,
published persons, grants, a pull subscription and an open discrepancy. The schemathesis command line then
calls every operation of /openapi.json with generated input, valid and invalid, under a real OAuth2 token of
each role. No answer may be a 5xx, carry a status or media type the operation does not declare, or have a
body its schema does not describe. Real codes and identifiers are mixed into the generated values, so that
calls get past the lookups to the rules behind them.

The run is bounded for CI: five examples per operation and role, two to three minutes on two cores. For a
longer run raise them, e.g. ``EXCHANGE_FUZZ_EXAMPLES=60 pytest tests/security/test_fuzz.py`` (about a
quarter of an hour).

This module is also the schemathesis hooks module of those runs (SCHEMATHESIS_HOOKS): it teaches the
command to send NDJSON batches, to fill record bodies with elements the catalogue knows and values at the
edges of what the hub can hold, and to end path parameters with a NUL now and then.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st

from exchange.catalog.loader import read_catalog
from tests.conftest import REPO_CATALOG, _admin, _libpq_url
from tests.fixtures_departments import ASSISTANCE, CIVIL_AFFAIRS, POLICE
from tests.identifiers import valid_ric
from tests.processes import EXCHANGE, REPO_ROOT, cli_json, free_port, hub_env

EXAMPLES = int(os.environ.get("EXCHANGE_FUZZ_EXAMPLES", "5"))
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"

DATA_BUREAU = "11150400MB15040895"  # 政务服务与数据管理局: runs the hub

# Each role's system belongs to a department that would hold that role, so that its calls reach past the
# department checks too. Roles that change shared state most (catalogue, clients) run last.
ROLES = {
    "publisher": POLICE,
    "consumer": CIVIL_AFFAIRS,
    "approver": POLICE,
    "auditor": DATA_BUREAU,
    "steward": DATA_BUREAU,
    "admin": DATA_BUREAU,
}

CATALOG = read_catalog(REPO_CATALOG)
PURPOSES = [purpose.code for purpose in CATALOG.purposes]
ELEMENTS = sorted({element.name for resource in CATALOG.resources for element in resource.elements})
SUBJECTS = [valid_ric(birth="19700101", serial=serial) for serial in range(1, 4)]
# Times at the edges of what Python and PostgreSQL can hold, and one plain one.
INSTANTS = [
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59-01:00",
    "2026-01-01T08:00:00+08:00",
]
# Values at the edges of what JSON, orjson and the element types hold, and values of the right shape.
EDGE_VALUES = [
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**400,
    1e308,
    "2024-02-29",
    "2023-02-29",
    *INSTANTS,
    "150402",
    "01",
    SUBJECTS[0],
    {"type": "Point", "coordinates": [118.9, 42.3]},
    {"type": "Point", "coordinates": [2**70, 42.3]},
    {"type": "LineString", "coordinates": [[118.9, 42.3]]},
]


@dataclass
class Hub:
    url: str
    log: Path  # the hub's own output, where the traceback behind a 5xx is
    config: Path  # schemathesis.toml with the real codes and identifiers
    tokens: dict[str, str]  # role -> access token; "all" holds every role


@contextmanager
def hub_process(env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """`exchange serve` with its output in a file: a pipe nobody reads would fill up with tracebacks."""
    with log.open("w") as output:
        process = subprocess.Popen(
            [EXCHANGE, "serve", "--port", str(port)],
            env=env,
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _ready(base):
            assert process.poll() is None, f"exchange serve exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, "exchange serve did not become ready"
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _token(base: str, client_id: str, secret: str) -> str:
    response = httpx.post(
        f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret), timeout=10
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Seeder:
    """Makes, through the API, the systems that fuzz and the things the fuzzer then finds by identifier."""

    def __init__(self, base: str, admin: httpx.Client) -> None:
        self.base = base
        self.admin = admin

    def client(self, department: str, *roles: str) -> tuple[str, str]:
        """A new system of the department with these roles: its client id and an access token."""
        body = {"name": "fuzzing", "roles": list(roles)}
        made = self._ok(self.admin.post(f"/v1/departments/{department}/clients", json=body))
        return made["client_id"], _token(self.base, made["client_id"], made["client_secret"])

    def call(self, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._ok(self.admin.post(path, json=body, headers=_bearer(token)))

    @staticmethod
    def _ok(response: httpx.Response) -> dict[str, Any]:
        assert response.is_success, f"{response.request.method} {response.request.url}: {response.text}"
        return dict(response.json())


def _seed(seeder: Seeder) -> dict[str, list[str]]:
    """A person, a request granted in part, a subscription and a discrepancy; their identifiers by kind."""
    _, police = seeder.client(POLICE, "publisher", "approver")
    _, civil = seeder.client(CIVIL_AFFAIRS, "publisher", "consumer")
    person = "/v1/resources/population.person"
    for subject in SUBJECTS:
        seeder.call(
            police, f"{person}/records", {"subject_id": subject, "fields": {"name": "乌云", "sex": "2"}}
        )
    requests, grants = [], []
    for access in ("read", "subscribe"):
        asked = {
            "resource": "population.person",
            "elements": ["name", "sex", "death_date"],
            "access": access,
            "purpose": ASSISTANCE,
            "legal_basis": "《社会救助暂行办法》第十一条",
            "valid_until": (datetime.now(UTC) + timedelta(days=90)).isoformat(),
            "justification": "核对低保申请人身份",
        }
        requests.append(seeder.call(civil, "/v1/sharing-requests", asked)["id"])
        decisions = {"decisions": [{"element": "name", "approve": True}]}
        decided = seeder.call(police, f"/v1/sharing-requests/{requests[-1]}/decisions", decisions)
        grants.append(decided["grant_id"])
    subscription = seeder.call(
        civil,
        "/v1/subscriptions",
        {
            "resource": "population.person",
            "elements": ["name"],
            "purpose": ASSISTANCE,
            "delivery": {"mode": "pull"},
        },
    )
    reported = seeder.call(
        civil,
        "/v1/discrepancies",
        {
            "resource": "population.person",
            "subject_id": SUBJECTS[0],
            "element": "name",
            "value": "其木格",
            "note": "入户核查",
        },
    )
    return {
        "requests": requests,
        "grants": grants,
        "subscriptions": [subscription["id"]],
        "discrepancies": [reported["discrepancy"]["id"]],
        # Not a fuzzing client: disabling it leaves the runs that follow their tokens.
        "clients": [seeder.client(CIVIL_AFFAIRS, "consumer")[0]],
    }


def _toml(value: Any) -> str:
    """A TOML value (JSON strings, numbers and arrays are TOML too)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value, ensure_ascii=False)


def _config(ids: dict[str, list[str]]) -> str:
    """schemathesis.toml: real codes and identifiers, mixed into half of the generated values."""
    dictionaries = {
        "codes": [r.code for r in CATALOG.resources] + [d.code for d in CATALOG.departments] + PURPOSES,
        "purposes": PURPOSES,
        "elements": ELEMENTS,
        "subjects": SUBJECTS,
        "instants": INSTANTS,
        # Whole numbers at the edges of INTEGER, BIGINT and orjson (as text: TOML integers stop at 64 bits).
        "integers": [str(n) for n in (-1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 2**64)],
        # Text PostgreSQL cannot hold (NUL), or that looks encoded, turns around, or is long.
        "strings": ["\x00", "name\x00", "%00", "\u202e", "名" * 300],
        "waits": [0, 0.5],  # a feed waits up to 30 s for events; the fuzzer should not wait with it
        **ids,
    }
    bindings = {
        "path.code": "codes",
        "path.name": "elements",
        "path.request_id": "requests",
        "path.grant_id": "grants",
        "path.subscription_id": "subscriptions",
        "path.discrepancy_id": "discrepancies",
        "path.client_id": "clients",
        "query.resource": "strings",
        "query.element": "strings",
        "query.cursor": "strings",
        "query.after": "strings",
        "header.Exchange-Purpose": "purposes",
        "body.purpose": "purposes",
        "body.resource": "codes",
        "body.element": "elements",
        "body.elements[*]": "elements",
        "body.fields[*]": "elements",
        "body.subject_id": "subjects",
        "body.subject_ids[*]": "subjects",
        **{f"body.{name}": "instants" for name in ("valid_from", "valid_until", "as_of", "known_at")},
        **{f"body.{name}": "instants" for name in ("since", "until", "observed_at")},
    }
    lines = ["[dictionaries]"]
    lines += [f"{name} = {_toml({'values': values})}" for name, values in dictionaries.items()]
    lines += ["", "[parameters]"]
    lines += [
        f"{json.dumps(key)} = {_toml({'dictionary': name, 'probability': 0.5})}"
        for key, name in bindings.items()
    ]
    lines += [f'"query.wait" = {_toml({"dictionary": "waits", "probability": 1.0})}']
    # Any other parameter of these types (and in bodies) draws from the edges now and then.
    lines += ["", "[generation.dictionaries]"]
    lines += [f"integer = {_toml({'dictionary': 'integers', 'probability': 0.25})}"]
    lines += [f"string = {_toml({'dictionary': 'strings', 'probability': 0.1})}"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
async def fuzz_database(server_url: str, template_database: str) -> AsyncIterator[str]:
    name = f"exchange_fuzz_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    yield _libpq_url(server_url, name)
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def hub(fuzz_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    folder = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    env = hub_env(
        database_url=fuzz_database,
        data_dir=str(folder / "data"),
        public_url=f"http://127.0.0.1:{port}",
        catalog_dir=str(REPO_CATALOG),
        log_level="WARNING",
        delivery_in_serve="false",
        token_ttl_seconds="86400",  # a longer run outlasts the default ten minutes
    )
    with hub_process(env, port, folder / "hub.log") as base:
        made = cli_json("clients", "create", "--department", DATA_BUREAU, "--role", "admin", env=env)
        admin_token = _token(base, made["client_id"], made["client_secret"])
        with httpx.Client(base_url=base, headers=_bearer(admin_token), timeout=30) as admin:
            seeder = Seeder(base, admin)
            config = folder / "schemathesis.toml"
            config.write_text(_config(_seed(seeder)), encoding="utf-8")
            tokens = {role: seeder.client(department, role)[1] for role, department in ROLES.items()}
            tokens["all"] = seeder.client(POLICE, *ROLES)[1]
        yield Hub(base, folder / "hub.log", config, tokens)


def fuzz(hub: Hub, token: str, phases: str) -> subprocess.CompletedProcess[str]:
    """`schemathesis run` against the hub, this module as its hooks."""
    command = [
        SCHEMATHESIS,
        "--config-file",
        str(hub.config),
        "--no-color",
        "run",
        f"{hub.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--phases",
        phases,
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "2",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
    ]
    env = os.environ | {"SCHEMATHESIS_HOOKS": __name__, "PYTHONPATH": str(REPO_ROOT)}
    # Run in the hub's folder: schemathesis keeps a cache of its failures in the working directory.
    return subprocess.run(
        command, cwd=hub.config.parent, env=env, capture_output=True, text=True, check=False
    )


def report(run: subprocess.CompletedProcess[str], hub: Hub) -> str:
    """What schemathesis found, and the hub's own account of its errors: route and exception, latest first."""
    errors = []
    for line in reversed(hub.log.read_text().splitlines()):
        entry = json.loads(line) if line.startswith("{") else {}
        if entry.get("level") == "error":
            raised = [row for row in (entry.get("exc") or "").splitlines() if _RAISED.match(row)]
            errors.append(f"  {entry.get('route')} {entry.get('msg')}: {raised[-1] if raised else ''}")
    return "\n".join([run.stdout[-30_000:], run.stderr[-5_000:], "hub errors:", *errors[:20]])


_RAISED = re.compile(r"^[\w.]+(Error|Exception|Warning)\b")


@pytest.mark.parametrize("role", ROLES)
def test_no_operation_answers_a_role_with_a_server_error_or_off_its_schema(hub: Hub, role: str) -> None:
    run = fuzz(hub, hub.tokens[role], "examples,fuzzing,stateful")
    assert run.returncode == 0, report(run, hub)


def test_boundary_values_and_malformed_input_are_refused_cleanly(hub: Hub) -> None:
    """The coverage phase: each operation's boundary values and each way its input can be wrong, once, under
    a token holding every role (so that no role check stops a call before its input is read)."""
    run = fuzz(hub, hub.tokens["all"], "coverage")
    assert run.returncode == 0, report(run, hub)


# The hooks of the schemathesis runs above (this module is imported by the command).

schemathesis.serializer.alias("application/x-ndjson", "text/plain")

_NUMBERS = st.integers() | st.floats(allow_nan=False, allow_infinity=False)  # what requests sends as JSON
_VALUES = (
    st.none()
    | st.booleans()
    | _NUMBERS
    | st.text(max_size=40)
    | st.sampled_from(EDGE_VALUES)
    | st.lists(_NUMBERS, max_size=3)
)
_FIELDS = st.dictionaries(st.sampled_from(ELEMENTS), _VALUES, max_size=6)
_LINES = st.fixed_dictionaries(
    {"subject_id": st.sampled_from(SUBJECTS) | st.text(max_size=20), "fields": _FIELDS},
    optional={"valid_from": st.sampled_from(INSTANTS)},
).map(json.dumps)


@schemathesis.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """Half of the record bodies name elements the catalogue has, with values of every shape and at the edges,
    so that they reach the element's own checks; half of the NDJSON batches are lines of such bodies."""
    if isinstance(body, dict) and isinstance(body.get("fields"), dict):
        return st.just(body) | _FIELDS.map(lambda fields: body | {"fields": fields})
    operation = context.operation
    if isinstance(body, str) and operation is not None and operation.path.endswith(":batch"):
        return st.just(body) | st.lists(_LINES | st.text(max_size=40), max_size=5).map("\n".join)
    return st.just(body)


@schemathesis.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: Any
) -> st.SearchStrategy[Any]:
    """One case in ten ends a path parameter with a NUL (as ``%00``: path values go out percent-encoded)."""
    names = [name for name, value in (path_parameters or {}).items() if isinstance(value, str)]
    if not names:
        return st.just(path_parameters)
    with_nul = st.sampled_from(names).map(
        lambda name: path_parameters | {name: path_parameters[name] + "%00"}
    )
    return st.integers(0, 9).flatmap(lambda draw: with_nul if draw == 0 else st.just(path_parameters))
