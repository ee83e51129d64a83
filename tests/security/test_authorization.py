"""The authorisation matrix (OWASP API Security Top 10 2023: API1 broken object-level authorisation, API5
broken function-level authorisation, API3 excessive data exposure) over every route of the API.

ROUTES says, for every operation of the app, which status each caller gets: seven callers without a valid
identity (no token; an expired token; a token of a disabled client; garbage; a token signed by a forger
under the hub's key id; a genuine token whose claims were edited; an unsigned one), then each of the six
roles in three departments:

- police (公安, 11150400MB1234567Q): the source of most population.person elements; it published the
  records, is asked by the sharing request, and settles the discrepancies;
- civil (民政, 11150400MB15040128): the consumer; it holds the grants, the subscriptions and the sharing
  request, reported the discrepancies (health reported them too) and has its reports reconciled;
- other (市场监管, 11150400MB1504045L): a department with no part in any of it.

Everyone sends the ids of the police and civil objects, so the third column is the object-level check: a
department with no part in an object gets 404 (the same answer as for an id that does not exist) or 403,
never the object. Every answer, errors and exports included, is searched for data planted for the test (a
name police published, the address it holds, the values and notes civil and health reported, the case
reference of the request, subject ids, client ids and secrets, tokens, the webhook address and secret, the
hub's private key) that the caller may not see; a value the caller sent itself does not count.

A new route fails `test_every_route_of_the_api_is_in_the_matrix` until a row describes it.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import itertools
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from argon2 import PasswordHasher
from fastapi import APIRouter
from fastapi.routing import APIRoute, iter_route_contexts
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import select

from exchange.auth import credentials as client_credentials
from exchange.auth.keys import SIGNING_ALGORITHM
from exchange.auth.models import SigningKey
from exchange.auth.principal import Role
from exchange.auth.tokens import issue_access_token
from exchange.config import Settings
from exchange.db.session import transaction
from exchange.departments import service as departments
from exchange.main import create_app
from tests.conftest import Credentials, MakeClient, TokenFor
from tests.fixtures_departments import ASSISTANCE, CIVIL_AFFAIRS, HEALTH, MARKET, POLICE, Headers, MakeGrant
from tests.identifiers import valid_ric, valid_uscc

OTHER = MARKET  # no part in population.person: not a source, not a consumer
ROLES = (Role.publisher, Role.consumer, Role.steward, Role.approver, Role.auditor, Role.admin)
NOBODY = ("anonymous", "expired", "disabled", "garbage", "forged", "tampered", "unsigned")
PERSON = "/v1/resources/population.person"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
NDJSON = {"Content-Type": "application/x-ndjson"}

# Data planted for the test, distinctive enough that finding one in an answer means it leaked.
PERSON_NAME = "其木格泄露检测"  # the canonical name police published; civil holds a read grant for it
DOUBTED_ADDRESS = "红山区泄露检测街88号"  # police's canonical residence_address that civil doubts
REPORTED_ADDRESS = "红山区民政核实路6号"  # the value civil reported against it
HEALTH_ADDRESS = "红山区卫健随访路9号"  # the value health reported against it: civil must not see it
HEALTH_NOTE = "家庭医生随访记录（泄露检测）"  # and where health has it from
HEALTH_WITHDRAWAL = "随访复核后撤回（泄露检测）"  # why health withdrew its report
CASE_REFERENCE = "民救-2026-泄露检测-0031"  # civil's sharing request
JUSTIFICATION = "核对低保申请人身份（泄露检测）"
WEBHOOK_URL = "http://127.0.0.1:9/civil-private-hook"


# ---- who calls ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    headers: Headers
    department: str | None = None  # None: no valid identity
    role: Role | None = None
    basic: str | None = None  # client credentials, for the token endpoint
    client_id: str | None = None

    def sees_as(self, departments: frozenset[str], roles: frozenset[Role]) -> bool:
        return self.department in departments or self.role in roles


@dataclass(frozen=True, slots=True)
class Secret:
    label: str
    value: str
    departments: frozenset[str] = frozenset()  # departments whose callers may see it
    roles: frozenset[Role] = frozenset()  # roles that may see it in any department

    def allowed(self, caller: Caller) -> bool:
        return caller.sees_as(self.departments, self.roles)


OWNERS = frozenset({POLICE, CIVIL_AFFAIRS})
OVERSIGHT = frozenset({Role.admin, Role.auditor})
AUDITORS = frozenset({Role.auditor})


# ---- what they call ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    path: str
    json: Any = None
    content: bytes | None = None
    params: dict[str, Any] | None = None
    headers: Headers = field(default_factory=dict)
    client_credentials: bool = False  # the token endpoint: authenticate as the client, not with a token

    def known(self, caller_headers: Headers) -> str:
        """Everything the caller sent: a value found here is no leak when the answer repeats it."""
        sent = [self.path, json.dumps(self.json, ensure_ascii=False), json.dumps(self.params)]
        sent += [(self.content or b"").decode(), json.dumps(caller_headers | self.headers)]
        return "\n".join(sent)


@dataclass
class World:
    """The objects of the two departments, made through the API, and the ways to make more of them."""

    http: httpx.AsyncClient
    make_grant: MakeGrant
    police: Headers = field(default_factory=dict)  # systems that set the world up, not among the callers
    civil: Headers = field(default_factory=dict)
    steward: Headers = field(default_factory=dict)
    health: Headers = field(default_factory=dict)
    person: str = ""  # police published it; civil may read its name
    doubted: str = ""  # civil doubts its residence_address
    request_id: str = ""
    discrepancy_id: str = ""  # civil and health doubt the address police holds
    confirmed_id: str = ""  # civil and health doubted, police confirmed
    withdrawn_id: str = ""  # civil and health doubted, then both withdrew
    run_id: str = ""
    pull_id: str = ""
    pull_cursor: str = ""
    webhook_id: str = ""
    webhook_cursor: str = ""
    victim: str = ""  # a civil client the admins disable
    scratch: str = ""  # a catalogue resource for the stewards' edits
    template: dict[str, Any] = field(default_factory=dict)  # a resource as stewards write them
    secrets: list[Secret] = field(default_factory=list)
    serials: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def secret(self, label: str, value: str, *departments: str, roles: frozenset[Role] = frozenset()) -> None:
        self.secrets.append(Secret(label, value, frozenset(departments), roles))

    def remember(self, credentials: Credentials, headers: Headers) -> Headers:
        """Keep a client's secret and token as secrets, and its id as its department's."""
        assert credentials.client_secret is not None
        self.secret(f"client secret of {credentials.client_id}", credentials.client_secret)
        self.secret(f"token of {credentials.client_id}", headers["Authorization"].removeprefix("Bearer "))
        if Role.steward not in credentials.roles:  # stewards sign catalogue edits: the history names them
            self.secret(
                f"client id of {credentials.client_id}",
                credentials.client_id,
                credentials.department,
                roles=OVERSIGHT,
            )
        return headers

    async def publish(self, subject: str, fields: dict[str, Any]) -> None:
        body = {"subject_id": subject, "fields": fields}
        await self.ok(self.http.post(f"{PERSON}/records", json=body, headers=self.police))

    async def report(self, subject: str, by_health: bool = False) -> str:
        """Civil (or health) reports another residence_address than police's: the discrepancy's id."""
        body = _report_body(subject, "residence_address", REPORTED_ADDRESS)
        if by_health:
            body = _report_body(subject, "residence_address", HEALTH_ADDRESS, HEALTH_NOTE)
        headers = self.health if by_health else self.civil
        reported = await self.ok(self.http.post("/v1/discrepancies", json=body, headers=headers), 201)
        return str(reported["discrepancy"]["id"])

    async def resolve(self, discrepancy: str, headers: Headers, outcome: str, note: str) -> None:
        path = f"/v1/discrepancies/{discrepancy}:resolve"
        await self.ok(self.http.post(path, json={"outcome": outcome, "note": note}, headers=headers))

    async def ok(self, response: Awaitable[httpx.Response], status: int = 200) -> Any:
        answer = await response
        assert answer.status_code == status, f"setup: {answer.request.url} {answer.text}"
        return answer.json() if answer.content else None

    async def fresh_request(self) -> str:
        """A sharing request by civil, pending police's decision on birth_date."""
        body = _request_body(["birth_date"], ASSISTANCE, case_reference="民救-2026-0099")
        created = await self.ok(self.http.post("/v1/sharing-requests", json=body, headers=self.civil), 201)
        return str(created["id"])

    async def fresh_discrepancy(self) -> str:
        subject = valid_ric(birth="19700101", serial=next(self.serials))
        self.secret("doubted subject id", subject, *OWNERS, roles=OVERSIGHT)
        await self.publish(subject, {"residence_address": DOUBTED_ADDRESS})
        return await self.report(subject)

    async def finished(self, run: str) -> None:
        for _ in range(100):
            read = await self.ok(self.http.get(f"/v1/crosscheck/runs/{run}", headers=self.civil))
            if read["status"] in {"done", "failed"}:
                assert read["status"] == "done", read
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"the reconciliation run {run} did not finish")

    async def subject_of(self, discrepancy: str) -> str:
        read = await self.ok(self.http.get(f"/v1/discrepancies/{discrepancy}", headers=self.police))
        return str(read["subject_id"])

    async def fresh_grant(self) -> str:
        grant = await self.make_grant(
            CIVIL_AFFAIRS, ["household_status"], purpose="household-registration", access="verify"
        )
        return str(grant)

    async def etag(self, code: str) -> str:
        return (await self.document(code))[1]

    async def document(self, code: str) -> tuple[dict[str, Any], str]:
        """The resource as a steward writes it, and its ETag."""
        response = await self.http.get(f"/v1/catalog/resources/{code}", headers=self.steward)
        assert response.status_code == 200, response.text
        read = response.json()
        spec = {k: v for k, v in read.items() if k not in {"version", "updated_at", "classification", "open"}}
        spec["sharing"] = {k: v for k, v in read["sharing"].items() if k != "type"}
        return spec, response.headers["etag"]

    def resource_spec(self, code: str) -> dict[str, Any]:
        serial = next(self.serials)
        return self.template | {"code": code, "national_code": f"30300201/{serial:06d}"}

    async def fresh_resource(self) -> str:
        code = f"authz.fresh{next(self.serials)}"
        await self.ok(
            self.http.post("/v1/catalog/resources", json=self.resource_spec(code), headers=self.steward), 201
        )
        return code

    async def fresh_element(self) -> str:
        name = f"authz_tmp{next(self.serials)}"
        path = f"/v1/catalog/resources/{self.scratch}/elements/{name}"
        headers = self.steward | {"If-Match": await self.etag(self.scratch)}
        await self.ok(self.http.put(path, json=_element(name), headers=headers))
        return name


Builder = Callable[[World, Caller], "Call | Awaitable[Call]"]
Check = Callable[[World, Caller, httpx.Response], None]


def _request_body(elements: list[str], purpose: str, **extra: Any) -> dict[str, Any]:
    return {
        "resource": "population.person",
        "elements": elements,
        "access": "read",
        "purpose": purpose,
        "legal_basis": "《社会救助暂行办法》第十一条",
        "valid_until": (datetime.now(UTC) + timedelta(days=90)).isoformat(),
        "justification": "核对申请人身份",
    } | extra


def _report_body(subject: str, element: str, value: Any, note: str = "入户核查所见") -> dict[str, Any]:
    body = {"resource": "population.person", "subject_id": subject, "element": element, "value": value}
    return body | {"note": note}


def _element(name: str, title: str = "授权矩阵备注") -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "type": "string",
        "length": 50,
        "source_department": POLICE,
        "sharing": "conditional",
    }


def _purpose(headers: Headers | None = None) -> Headers:
    return (headers or {}) | {"Exchange-Purpose": ASSISTANCE}


# ---- the calls, one per operation (variants where an operation answers differently by its arguments) ------


def token(scope: str = "") -> Builder:
    form = b"grant_type=client_credentials" + (b"&scope=" + scope.encode() if scope else b"")
    return lambda w, c: Call("/oauth/token", content=form, client_credentials=True)


def fixed(path: str, **kwargs: Any) -> Builder:
    return lambda w, c: Call(path, **kwargs)


def new_department(w: World, c: Caller) -> Call:
    return Call(
        "/v1/departments", json={"code": valid_uscc(serial=900_000 + next(w.serials)), "name": "测试局"}
    )


def publish(w: World, c: Caller) -> Call:
    # Police's own element; for the other departments an observation agreeing with the canonical value.
    return Call(f"{PERSON}/records", json={"subject_id": w.person, "fields": {"sex": "1"}})


def publish_batch(w: World, c: Caller) -> Call:
    line = orjson.dumps({"subject_id": w.person, "fields": {"sex": "1"}})
    return Call(f"{PERSON}/records:batch", content=line + b"\n", headers=NDJSON)


def query(w: World, c: Caller) -> Call:
    body = {"subject_ids": [w.person], "fields": ["name", "sex"]}
    return Call(f"{PERSON}/records:query", json=body, headers=_purpose())


def verify(w: World, c: Caller) -> Call:
    body = {"subject_id": w.person, "fields": {"name": "某某"}}
    return Call(f"{PERSON}/records:verify", json=body, headers=_purpose())


def open_query(w: World, c: Caller) -> Call:
    body = {"subject_ids": [w.person], "fields": ["name"]}
    return Call("/open/v1/resources/population.person/records:query", json=body, headers=_purpose())


async def create_resource(w: World, c: Caller) -> Call:
    return Call("/v1/catalog/resources", json=w.resource_spec(f"authz.new{next(w.serials)}"))


async def replace_resource(w: World, c: Caller) -> Call:
    spec, etag = await w.document(w.scratch)
    return Call(f"/v1/catalog/resources/{w.scratch}", json=spec, headers={"If-Match": etag})


async def patch_resource(w: World, c: Caller) -> Call:
    patch = orjson.dumps({"description": f"授权矩阵修订 {next(w.serials)}"})
    headers = MERGE_PATCH | {"If-Match": await w.etag(w.scratch)}
    return Call(f"/v1/catalog/resources/{w.scratch}", content=patch, headers=headers)


async def delete_resource(w: World, c: Caller) -> Call:
    code = await w.fresh_resource()
    headers = {"If-Match": await w.etag(code)}
    return Call(f"/v1/catalog/resources/{code}", params={"allow_breaking": "true"}, headers=headers)


async def put_element(w: World, c: Caller) -> Call:
    headers = {"If-Match": await w.etag(w.scratch)}
    return Call(
        f"/v1/catalog/resources/{w.scratch}/elements/authz_note", json=_element("authz_note"), headers=headers
    )


async def patch_element(w: World, c: Caller) -> Call:
    patch = orjson.dumps({"title": f"备注 {next(w.serials)}"})
    headers = MERGE_PATCH | {"If-Match": await w.etag(w.scratch)}
    return Call(f"/v1/catalog/resources/{w.scratch}/elements/authz_note", content=patch, headers=headers)


async def delete_element(w: World, c: Caller) -> Call:
    name = await w.fresh_element()
    headers = {"If-Match": await w.etag(w.scratch)}
    path = f"/v1/catalog/resources/{w.scratch}/elements/{name}"
    return Call(path, params={"allow_breaking": "true"}, headers=headers)


def new_request(w: World, c: Caller) -> Call:
    body = _request_body(["birth_date"], "statistical-survey", case_reference="统计-2026-0007")
    return Call("/v1/sharing-requests", json=body)


async def decide(w: World, c: Caller) -> Call:
    request = await w.fresh_request()
    decision = {"element": "birth_date", "approve": False, "reason": "不符合最小必要原则"}
    return Call(f"/v1/sharing-requests/{request}/decisions", json={"decisions": [decision]})


async def revoke(w: World, c: Caller) -> Call:
    return Call(f"/v1/grants/{await w.fresh_grant()}:revoke", json={"reason": "用途已结束"})


def report(w: World, c: Caller) -> Call:
    return Call("/v1/discrepancies", json=_report_body(w.person, "sex", "1"))


def resolving(outcome: str) -> Builder:
    async def build(w: World, c: Caller) -> Call:
        discrepancy = await w.fresh_discrepancy()
        return Call(
            f"/v1/discrepancies/{discrepancy}:resolve", json={"outcome": outcome, "note": "已核对档案"}
        )

    return build


def subscription(suffix: str = "", *, webhook: bool = False, **kwargs: Any) -> Builder:
    def build(w: World, c: Caller) -> Call:
        return Call(f"/v1/subscriptions/{w.webhook_id if webhook else w.pull_id}{suffix}", **kwargs)

    return build


def ack(w: World, c: Caller) -> Call:
    return Call(f"/v1/subscriptions/{w.pull_id}/ack", json={"cursor": w.pull_cursor})


def replay(w: World, c: Caller) -> Call:
    return Call(f"/v1/subscriptions/{w.webhook_id}:replay", json={"after": w.webhook_cursor})


def disable_victim(w: World, c: Caller) -> Call:
    return Call(f"/v1/departments/{CIVIL_AFFAIRS}/clients/{w.victim}:disable")


def subject_accesses(w: World, c: Caller) -> Call:
    return Call("/v1/audit/subjects:accesses", json={"subject_id": w.doubted})


def the_request(w: World, c: Caller) -> Call:
    return Call(f"/v1/sharing-requests/{w.request_id}")


def the_discrepancy(w: World, c: Caller) -> Call:
    return Call(f"/v1/discrepancies/{w.discrepancy_id}")


def settled(outcome: str) -> Builder:
    """A discrepancy civil and health reported, which police confirmed or both withdrew."""
    return lambda w, c: Call(
        f"/v1/discrepancies/{w.confirmed_id if outcome == 'confirmed' else w.withdrawn_id}"
    )


def status_is(status: str) -> Check:
    def check(w: World, c: Caller, response: httpx.Response) -> None:
        if response.status_code == 200:
            assert response.json()["status"] == status, f"the discrepancy is {response.json()['status']}"

    return check


def the_run(w: World, c: Caller) -> Call:
    return Call(f"/v1/crosscheck/runs/{w.run_id}")


def provider_sees_only_its_elements(w: World, c: Caller, response: httpx.Response) -> None:
    """Police sees the lines of the request it decides, not health's (death_date)."""
    if c.department == POLICE and c.role is not Role.admin and response.status_code == 200:
        sources = {e["source_department"] for e in response.json()["elements"]}
        assert sources == {POLICE}, f"the provider sees other sources' lines: {sources}"


# ---- the matrix -------------------------------------------------------------------------------------------

# Statuses per department, in the order of ROLES: publisher consumer steward approver auditor admin.
ANY_ROLE = "200 200 200 200 200 200"
NO_ROLE = "403 403 403 403 403 403"
ADMIN = "403 403 403 403 403 200"
AUDITOR = "403 403 403 403 200 403"
OVERSEERS = "403 403 200 403 200 200"  # admin, auditor, steward: figures of every department
PARTIES = "200 200 200 200 403 200"  # sharing: every role but the auditor's
STEWARD = "403 403 200 403 403 403"
PUBLISHER = "200 403 403 403 403 403"
CONSUMER = "403 200 403 403 403 403"
NOT_HERE = "403 404 403 403 403 403"  # a consumer of another department: as if it did not exist
# The callers without a valid identity, in the order of NOBODY:
# anonymous expired disabled garbage forged tampered unsigned
UNAUTHENTICATED = "401 401 401 401 401 401 401"
PUBLIC = "200 200 200 200 200 200 200"
NO_CLIENT = "401 400 401 400 400 400 400"  # the token endpoint: no credentials, or a token instead of them


@dataclass(frozen=True, slots=True)
class Row:
    method: str
    route: str
    call: Builder
    police: str
    civil: str
    other: str
    nobody: str = UNAUTHENTICATED
    check: Check | None = None

    def expected(self, caller: Caller) -> int:
        if caller.role is None:
            return int(self.nobody.split()[NOBODY.index(caller.name)])
        column = {POLICE: self.police, CIVIL_AFFAIRS: self.civil, OTHER: self.other}[caller.department or ""]
        return int(column.split()[ROLES.index(caller.role)])


def same(method: str, route: str, call: Builder, statuses: str, **kwargs: Any) -> Row:
    """A row where the department does not matter (no object of a department, or a hub-wide role)."""
    return Row(method, route, call, statuses, statuses, statuses, **kwargs)


RUN = {"resource": "population.person", "department": CIVIL_AFFAIRS}
SUBSCRIBE = {
    "resource": "population.person",
    "elements": ["name", "household_division"],
    "purpose": ASSISTANCE,
}
CATALOG = "/v1/catalog/resources"
PULL = {"mode": "pull"}

# fmt: off
ROUTES: list[Row] = [
    # same(method, route, call, statuses of every department) or
    # Row(method, route, call, police, civil, other), each: publisher consumer steward approver auditor admin

    # -- authentication: the token endpoint takes client credentials (a bearer token is a bad request there)
    same("POST", "/oauth/token", token(), ANY_ROLE, nobody=NO_CLIENT),
    # a client asking for a role it does not hold: invalid_scope
    same("POST", "/oauth/token", token("admin"), "400 400 400 400 400 200", nobody=NO_CLIENT),
    same("GET", "/.well-known/jwks.json", fixed("/.well-known/jwks.json"), ANY_ROLE, nobody=PUBLIC),
    same("GET", "/.well-known/oauth-authorization-server",
         fixed("/.well-known/oauth-authorization-server"), ANY_ROLE, nobody=PUBLIC),
    same("GET", "/v1/me", fixed("/v1/me"), ANY_ROLE),

    # -- departments and clients: admins (hub-wide); stewards and auditors read the departments
    same("POST", "/v1/departments", new_department, "403 403 403 403 403 201"),
    same("GET", "/v1/departments", fixed("/v1/departments"), OVERSEERS),
    same("GET", "/v1/departments/{code}", fixed(f"/v1/departments/{POLICE}"), OVERSEERS),
    same("POST", "/v1/departments/{code}/clients", fixed(f"/v1/departments/{CIVIL_AFFAIRS}/clients",
         json={"name": "新系统", "roles": ["consumer"]}), "403 403 403 403 403 201"),
    same("GET", "/v1/departments/{code}/clients", fixed(f"/v1/departments/{CIVIL_AFFAIRS}/clients"), ADMIN),
    same("POST", "/v1/departments/{code}/clients/{client_id}:disable", disable_victim,
         "403 403 403 403 403 204"),

    # -- the catalogue: every role reads; stewards edit (of any department: the catalogue is the hub's)
    same("GET", CATALOG, fixed(CATALOG), ANY_ROLE),
    same("POST", CATALOG, create_resource, "403 403 201 403 403 403"),
    same("GET", CATALOG + "/{code}", fixed(f"{CATALOG}/population.person"), ANY_ROLE),
    same("PUT", CATALOG + "/{code}", replace_resource, STEWARD),
    same("PATCH", CATALOG + "/{code}", patch_resource, STEWARD),
    same("DELETE", CATALOG + "/{code}", delete_resource, "403 403 204 403 403 403"),
    same("PUT", CATALOG + "/{code}/elements/{name}", put_element, STEWARD),
    same("PATCH", CATALOG + "/{code}/elements/{name}", patch_element, STEWARD),
    same("DELETE", CATALOG + "/{code}/elements/{name}", delete_element, STEWARD),
    same("GET", CATALOG + "/{code}/history", fixed(f"{CATALOG}/population.person/history"), ANY_ROLE),
    same("GET", CATALOG + "/{code}/versions/{version}", fixed(f"{CATALOG}/population.person/versions/1"),
         ANY_ROLE),
    same("GET", "/v1/catalog/purposes", fixed("/v1/catalog/purposes"), ANY_ROLE),
    same("GET", "/v1/catalog/purposes/{code}", fixed(f"/v1/catalog/purposes/{ASSISTANCE}"), ANY_ROLE),
    same("GET", "/v1/catalog/departments", fixed("/v1/catalog/departments"), ANY_ROLE),
    same("GET", "/v1/catalog/dcat", fixed("/v1/catalog/dcat"), ANY_ROLE),

    # -- records: any publisher publishes (elements of other sources are kept as observations);
    #    reads: police its own elements, civil under its grant, the other department nothing
    same("POST", "/v1/resources/{code}/records", publish, PUBLISHER),
    same("POST", "/v1/resources/{code}/records:batch", publish_batch, PUBLISHER),
    Row("POST", "/v1/resources/{code}/records:query", query,
        CONSUMER, CONSUMER, NO_ROLE),
    Row("POST", "/v1/resources/{code}/records:verify", verify,
        CONSUMER, CONSUMER, NO_ROLE),
    # -- open data: no token needed and none helps: no person element is open
    same("POST", "/open/v1/resources/{code}/records:query", open_query, NO_ROLE,
         nobody="403 403 403 403 403 403 403"),

    # -- sharing: a request's parties are its consumer (every line) and its sources (their own lines);
    #    admins see every request; the holder of a grant cannot revoke it, its source and admins can
    same("POST", "/v1/sharing-requests", new_request, "403 201 403 403 403 403"),
    same("GET", "/v1/sharing-requests", fixed("/v1/sharing-requests", params={"role": "consumer"}), PARTIES),
    same("GET", "/v1/sharing-requests", fixed("/v1/sharing-requests", params={"role": "provider"}), PARTIES),
    same("GET", "/v1/statistics/sharing", fixed("/v1/statistics/sharing"), OVERSEERS),
    Row("GET", "/v1/sharing-requests/{request_id}", the_request,
        PARTIES, PARTIES, "404 404 404 404 403 200", check=provider_sees_only_its_elements),
    # deciding: the source's publishers, stewards and approvers; the consumer sees it but decides nothing
    Row("POST", "/v1/sharing-requests/{request_id}/decisions", decide,
        "200 403 200 200 403 403", NO_ROLE, "404 403 404 404 403 403"),
    same("GET", "/v1/grants", fixed("/v1/grants", params={"role": "consumer"}), PARTIES),
    same("GET", "/v1/grants", fixed("/v1/grants", params={"role": "all"}), "422 422 422 422 403 200"),
    Row("POST", "/v1/grants/{grant_id}:revoke", revoke,
        "200 403 200 200 403 200", "404 403 404 404 403 200", "404 403 404 404 403 200"),

    # -- the audit log: auditors of any department read all of it (who, what, why; never values)
    same("POST", "/v1/audit/events:search", fixed("/v1/audit/events:search", json={"limit": 1000}), AUDITOR),
    same("POST", "/v1/audit/events:export", fixed("/v1/audit/events:export", json={}), AUDITOR),
    same("POST", "/v1/audit/events:export",
         fixed("/v1/audit/events:export", json={}, params={"format": "csv"}), AUDITOR),
    same("POST", "/v1/audit/subjects:accesses", subject_accesses, AUDITOR),
    same("GET", "/v1/audit/verify", fixed("/v1/audit/verify"), AUDITOR),
    same("GET", "/v1/audit/usage", fixed("/v1/audit/usage"), OVERSEERS),
    same("GET", "/v1/audit/checkpoints", fixed("/v1/audit/checkpoints"), AUDITOR),

    # -- cross-checking: the source (police) sees its doubted value and every report and settles; the
    #    reporter (civil) sees its own report, never the canonical value; admins and auditors see no values
    # reporting: any publisher or consumer, even one with no grant (the answer says whether its value
    # agrees); the source publishes its values instead (422)
    Row("POST", "/v1/discrepancies", report,
        "422 422 403 403 403 403", "200 200 403 403 403 403", "200 200 403 403 403 403"),
    same("GET", "/v1/discrepancies", fixed("/v1/discrepancies", params={"role": "source"}), ANY_ROLE),
    same("GET", "/v1/discrepancies", fixed("/v1/discrepancies", params={"role": "reporter"}), ANY_ROLE),
    same("GET", "/v1/discrepancies", fixed("/v1/discrepancies", params={"role": "all"}),
         "422 422 422 422 200 200"),
    Row("GET", "/v1/discrepancies/{discrepancy_id}", the_discrepancy,
        ANY_ROLE, ANY_ROLE, "404 404 404 404 200 200"),
    Row("GET", "/v1/discrepancies/{discrepancy_id}", settled("confirmed"),
        ANY_ROLE, ANY_ROLE, "404 404 404 404 200 200", check=status_is("confirmed")),
    Row("GET", "/v1/discrepancies/{discrepancy_id}", settled("withdrawn"),
        ANY_ROLE, ANY_ROLE, "404 404 404 404 200 200", check=status_is("withdrawn")),
    # settling: the source confirms (a reporter may not: 403), a reporter withdraws (the source may not: 403)
    Row("POST", "/v1/discrepancies/{discrepancy_id}:resolve", resolving("confirmed"),
        "200 200 403 200 403 403", NO_ROLE, "404 404 403 404 403 403"),
    Row("POST", "/v1/discrepancies/{discrepancy_id}:resolve", resolving("withdrawn"),
        NO_ROLE, "200 200 403 200 403 403", "404 404 403 404 403 403"),
    # reconciliation: stewards, admins, the reporting department or a source department of the resource
    Row("POST", "/v1/crosscheck/runs", fixed("/v1/crosscheck/runs", json=RUN),
        "202 202 202 202 202 202", "202 202 202 202 202 202", "403 403 202 403 403 202"),
    Row("GET", "/v1/crosscheck/runs/{run_id}", the_run,
        ANY_ROLE, ANY_ROLE, "404 404 200 404 200 200"),
    same("GET", "/v1/quality/resources/{code}", fixed("/v1/quality/resources/population.person"), ANY_ROLE),
    same("GET", "/v1/statistics/quality", fixed("/v1/statistics/quality"), OVERSEERS),

    # -- subscriptions: a consumer department's own, under a subscribe grant (police: its own elements)
    Row("POST", "/v1/subscriptions", fixed("/v1/subscriptions", json=SUBSCRIBE | {"delivery": PULL}),
        "403 201 403 403 403 403", "403 201 403 403 403 403", NO_ROLE),
    same("GET", "/v1/subscriptions", fixed("/v1/subscriptions"), CONSUMER),
    Row("GET", "/v1/subscriptions/{subscription_id}", subscription(),
        NOT_HERE, CONSUMER, NOT_HERE),
    Row("GET", "/v1/subscriptions/{subscription_id}/events", subscription("/events", headers=_purpose()),
        NOT_HERE, CONSUMER, NOT_HERE),
    Row("POST", "/v1/subscriptions/{subscription_id}/ack", ack,
        NOT_HERE, CONSUMER, NOT_HERE),
    Row("POST", "/v1/subscriptions/{subscription_id}:replay", replay,
        NOT_HERE, CONSUMER, NOT_HERE),
    Row("POST", "/v1/subscriptions/{subscription_id}:pause", subscription(":pause", webhook=True),
        NOT_HERE, CONSUMER, NOT_HERE),
    Row("POST", "/v1/subscriptions/{subscription_id}:resume", subscription(":resume", webhook=True),
        NOT_HERE, CONSUMER, NOT_HERE),
    Row("GET", "/v1/subscriptions/{subscription_id}/deliveries", subscription("/deliveries", webhook=True),
        NOT_HERE, CONSUMER, NOT_HERE),
]
# fmt: on

# Pages for people and the operations plumbing: outside the API this matrix judges.
NOT_API = ("/console", "/docs", "/redoc", "/openapi.json", "/healthz", "/readyz", "/metrics")


def api_operations(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every API operation the app serves, found by walking its routes."""
    operations: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path or ""
        if not isinstance(route, APIRoute) or path == "/" or path.startswith(NOT_API):
            continue
        operations |= {(method, path) for method in context.methods or () if method != "HEAD"}
    return operations


def test_every_route_of_the_api_is_in_the_matrix(tmp_path: Path) -> None:
    app = create_app(Settings(database_url="postgresql://unused/unused", data_dir=tmp_path))
    served = api_operations(app)
    described = {(row.method, row.route) for row in ROUTES}
    assert served - described == set(), "routes the authorisation matrix does not describe: add rows"
    assert described - served == set(), "rows for routes the app no longer serves"
    assert len(served) >= 60

    added = APIRouter(prefix="/v1/novelties")
    added.add_api_route("/{novelty_id}:approve", lambda novelty_id: None, methods=["POST"])
    app.include_router(added)
    assert api_operations(app) - described == {("POST", "/v1/novelties/{novelty_id}:approve")}


# ---- setting the world up ----------------------------------------------------------------------------------


async def _callers(app: Any, world: World, make_client: MakeClient, token_for: TokenFor) -> list[Caller]:
    """The callers without a valid identity (in the order of NOBODY), then every role of every department."""
    callers = []
    for department, label in ((POLICE, "police"), (CIVIL_AFFAIRS, "civil"), (OTHER, "other")):
        for role in ROLES:
            credentials = await make_client(role, department=department)
            headers = world.remember(credentials, await token_for(credentials))
            callers.append(
                Caller(f"{label}.{role}", headers, department, role, credentials.basic, credentials.client_id)
            )

    settings = app.state.settings
    async with transaction(app.state.sessionmaker) as session:
        key = await app.state.keys.signing_key(session)
        for row in await session.scalars(select(SigningKey)):
            world.secret("the hub's private signing key", str(row.private_jwk["d"]))
    by_name = {caller.name: caller for caller in callers}
    admin = {
        "issuer": settings.issuer,
        "audience": settings.token_audience,
        "client_id": by_name["police.admin"].client_id,
        "department_code": POLICE,
        "roles": frozenset(Role),
        "ttl": timedelta(minutes=10),
    }
    expired, _ = issue_access_token(key, **admin, now=datetime.now(UTC) - timedelta(hours=1))
    genuine = jwt.decode(issue_access_token(key, **admin)[0], key)
    forger = ECKey.generate_key("P-256", parameters={"kid": key.kid}, private=True)
    forged = jwt.encode(genuine.header, genuine.claims, forger, algorithms=[SIGNING_ALGORITHM])
    # The other department's consumer token, claiming police and every role, its signature kept.
    outsider = by_name["other.consumer"]
    header, _, signature = outsider.headers["Authorization"].removeprefix("Bearer ").split(".")
    payload = _b64(genuine.claims | {"client_id": outsider.client_id, "sub": outsider.client_id})
    unsigned = _b64({"alg": "none", "typ": "at+jwt"}) + "." + _b64(genuine.claims) + "."

    disabled = await make_client(*ROLES, department=POLICE)
    disabled_headers = world.remember(disabled, await token_for(disabled))
    async with transaction(app.state.sessionmaker) as session:
        await departments.disable_client(session, POLICE, disabled.client_id)
    return [
        Caller("anonymous", {}),
        Caller("expired", _bearer(expired)),
        Caller("disabled", disabled_headers, basic=disabled.basic),
        Caller("garbage", _bearer("not-a-token")),
        Caller("forged", _bearer(forged)),
        Caller("tampered", _bearer(f"{header}.{payload}.{signature}")),
        Caller("unsigned", _bearer(unsigned)),
        *callers,
    ]


def _b64(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def _bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


async def _world(
    app: Any, http: httpx.AsyncClient, make_client: MakeClient, token_for: TokenFor, make_grant: MakeGrant
) -> World:
    """Police publishes two people; civil holds grants and subscriptions, doubts the address of the second
    person, asks police for more elements and has its reports reconciled."""
    world = World(http, make_grant)

    async def system(department: str, *roles: Role) -> Headers:
        credentials = await make_client(*roles, department=department)
        return world.remember(credentials, await token_for(credentials))

    world.police = await system(POLICE, Role.publisher, Role.consumer)
    world.civil = await system(CIVIL_AFFAIRS, Role.publisher, Role.consumer)
    world.steward = await system(OTHER, Role.steward)
    world.health = await system(HEALTH, Role.publisher, Role.consumer)
    world.person = valid_ric(birth="19850315", serial=11)
    world.doubted = valid_ric(birth="19850315", serial=12)
    world.secret("the name police published", PERSON_NAME, *OWNERS)
    world.secret("the address police holds and civil doubts", DOUBTED_ADDRESS, POLICE)
    world.secret("the address civil reported", REPORTED_ADDRESS, *OWNERS)
    world.secret("the address health reported", HEALTH_ADDRESS, POLICE, HEALTH)
    world.secret("health's note on its report", HEALTH_NOTE, POLICE, HEALTH)
    # The audit log keeps why a discrepancy was settled, for the auditors.
    world.secret("health's note on its withdrawal", HEALTH_WITHDRAWAL, POLICE, HEALTH, roles=AUDITORS)
    world.secret("subject id", world.person, *OWNERS, roles=AUDITORS)
    world.secret("doubted subject id", world.doubted, *OWNERS, roles=OVERSIGHT)
    world.secret("civil's case reference", CASE_REFERENCE, *OWNERS, roles=OVERSIGHT)
    world.secret("civil's justification", JUSTIFICATION, *OWNERS, roles=frozenset({Role.admin}))
    world.secret("civil's webhook address", WEBHOOK_URL, CIVIL_AFFAIRS)

    await make_grant(CIVIL_AFFAIRS, ["name", "sex"])
    await make_grant(CIVIL_AFFAIRS, ["name", "household_division"], access="subscribe")
    pull = await world.ok(
        http.post(
            "/v1/subscriptions", json=SUBSCRIBE | {"payload": "full", "delivery": PULL}, headers=world.civil
        ),
        201,
    )
    world.pull_id, world.pull_cursor = pull["id"], pull["cursor"]
    webhook = SUBSCRIBE | {"delivery": {"mode": "webhook", "url": WEBHOOK_URL}}
    hook = await world.ok(http.post("/v1/subscriptions", json=webhook, headers=world.civil), 201)
    world.webhook_id, world.webhook_cursor = hook["id"], hook["cursor"]
    world.secret("civil's webhook secret", hook["secret"])

    await world.publish(world.person, {"name": PERSON_NAME, "sex": "2", "household_division": "150402001"})
    await world.publish(world.doubted, {"name": "乌兰", "residence_address": DOUBTED_ADDRESS})
    world.discrepancy_id = await world.report(world.doubted)
    await world.report(world.doubted, by_health=True)
    started = await world.ok(http.post("/v1/crosscheck/runs", json=RUN, headers=world.civil), 202)
    world.run_id = started["id"]
    await world.finished(world.run_id)  # it would reopen what civil withdraws below
    world.confirmed_id = await world.fresh_discrepancy()
    await world.report(await world.subject_of(world.confirmed_id), by_health=True)
    await world.resolve(world.confirmed_id, world.police, "confirmed", "户籍档案无误")
    world.withdrawn_id = await world.fresh_discrepancy()
    await world.report(await world.subject_of(world.withdrawn_id), by_health=True)
    await world.resolve(world.withdrawn_id, world.civil, "withdrawn", "民政复核后撤回")
    await world.resolve(world.withdrawn_id, world.health, "withdrawn", HEALTH_WITHDRAWAL)
    events = await world.ok(
        http.get(f"/v1/subscriptions/{world.pull_id}/events", headers=_purpose(world.civil))
    )
    assert PERSON_NAME in json.dumps(events, ensure_ascii=False), "civil's feed carries the name"

    # Civil asks police (name, birth_date) and health (death_date) for more.
    body = _request_body(
        ["name", "birth_date", "death_date"],
        "marriage-registration",
        case_reference=CASE_REFERENCE,
        justification=JUSTIFICATION,
    )
    world.request_id = (
        await world.ok(http.post("/v1/sharing-requests", json=body, headers=world.civil), 201)
    )["id"]

    victim = await make_client(Role.consumer, department=CIVIL_AFFAIRS)
    world.victim = victim.client_id
    world.remember(victim, await token_for(victim))

    spec, _ = await world.document("geospatial.address")
    world.template = spec | {"title": "授权矩阵试验资源"}
    world.scratch = await world.fresh_resource()
    path = f"/v1/catalog/resources/{world.scratch}/elements/authz_note"
    etag = {"If-Match": await world.etag(world.scratch)}
    await world.ok(http.put(path, json=_element("authz_note"), headers=world.steward | etag))
    return world


# ---- the matrix, run ---------------------------------------------------------------------------------------


def leaks(secrets: list[Secret], caller: Caller, call: Call, response: httpx.Response) -> list[str]:
    """The planted secrets in the answer (body and headers) that the caller may not see and did not send."""
    seen = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    if "json" in response.headers.get("content-type", ""):  # in case some came \u-escaped
        documents = [json.loads(line) for line in response.text.splitlines() if line.strip()]
        seen += json.dumps(documents, ensure_ascii=False)
    known = call.known(caller.headers)
    return [
        secret.label
        for secret in secrets
        if secret.value in seen and secret.value not in known and not secret.allowed(caller)
    ]


def test_the_leak_check_finds_what_the_caller_may_not_see_wherever_it_is() -> None:
    subject = valid_ric(serial=1)
    secrets = [Secret("the name", PERSON_NAME, frozenset({POLICE})), Secret("a subject", subject)]
    outsider = Caller("other.consumer", {}, OTHER, Role.consumer)
    escaped = httpx.Response(200, content=json.dumps({"name": PERSON_NAME}).encode(), headers=PROBLEM)
    assert leaks(secrets, outsider, Call("/v1/me"), escaped) == ["the name"]
    police = Caller("police.consumer", {}, POLICE, Role.consumer)
    assert leaks(secrets, police, Call("/v1/me"), escaped) == [], "police may see it"
    sent = Call("/v1/discrepancies", json={"value": PERSON_NAME})
    assert leaks(secrets, outsider, sent, escaped) == [], "the caller sent it"
    exported = httpx.Response(200, text=f'{{"a": 1}}\n{{"b": "{subject}"}}\n', headers=EXPORT)
    assert leaks(secrets, outsider, Call("/v1/audit/events:export"), exported) == ["a subject"]
    redirected = httpx.Response(307, headers={"Location": f"/somewhere?id={subject}"})
    assert leaks(secrets, outsider, Call("/v1/me"), redirected) == ["a subject"]


PROBLEM = {"Content-Type": "application/problem+json"}
EXPORT = {"Content-Type": "application/x-ndjson"}


async def _send(world: World, row: Row, caller: Caller) -> tuple[Call, httpx.Response]:
    built = row.call(world, caller)
    call = await built if inspect.isawaitable(built) else built
    headers = dict(caller.headers)
    if call.client_credentials:
        headers = {"Authorization": caller.basic} if caller.basic else headers
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = world.http.build_request(
        row.method,
        call.path,
        json=call.json,
        content=call.content,
        params=call.params,
        headers=headers | call.headers,
    )
    return call, await world.http.send(request)


async def test_every_caller_gets_what_the_matrix_says_and_sees_nothing_it_may_not(
    app: Any,
    http: httpx.AsyncClient,
    catalog_loaded: None,
    make_client: MakeClient,
    token_for: TokenFor,
    make_grant: MakeGrant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Secrets hashed at argon2's production cost would take half the run; who gets what does not depend on it.
    monkeypatch.setattr(
        client_credentials, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    world = await _world(app, http, make_client, token_for, make_grant)
    callers = await _callers(app, world, make_client, token_for)
    failures = []
    cases = 0
    for row in ROUTES:
        for caller in callers:
            call, response = await _send(world, row, caller)
            cases += 1
            where = f"{row.method} {call.path} {call.params or ''} as {caller.name}"
            expected = row.expected(caller)
            if response.status_code != expected:
                failures.append(
                    f"{where}: {response.status_code}, expected {expected}: {response.text[:300]}"
                )
            leaked = leaks(world.secrets, caller, call, response)
            if leaked:
                failures.append(f"{where}: LEAKS {leaked}")
            if row.check is not None:
                try:
                    row.check(world, caller, response)
                except AssertionError as exc:
                    failures.append(f"{where}: {exc}")
    assert cases == len(ROUTES) * (len(NOBODY) + 3 * len(ROLES))
    assert not failures, f"{len(failures)} of {cases} cases:\n" + "\n".join(failures)
