"""The catalogue API as department systems and stewards use it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pyshacl
import pytest
from rdflib import RDF, Graph, Namespace

from exchange.auth.principal import Role
from tests.conftest import MakeClient, TokenFor

DCAT = Namespace("http://www.w3.org/ns/dcat#")
SHAPES = Path(__file__).parent / "data" / "dcat-ap-3.0.1-shapes.ttl"
PERSON = "/v1/catalog/resources/population.person"
MERGE_PATCH = {"content-type": "application/merge-patch+json"}

pytestmark = pytest.mark.usefixtures("catalog_loaded")


@pytest.fixture
async def steward(make_client: MakeClient, token_for: TokenFor) -> dict[str, str]:
    return await token_for(await make_client(Role.steward))


@pytest.fixture
async def consumer(make_client: MakeClient, token_for: TokenFor) -> dict[str, str]:
    return await token_for(await make_client(Role.consumer))


async def _read(
    http: httpx.AsyncClient, headers: dict[str, str], path: str = PERSON
) -> tuple[dict[str, Any], str]:
    response = await http.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return response.json(), response.headers["etag"]


async def _patch(
    http: httpx.AsyncClient, headers: dict[str, str], patch: dict[str, Any], etag: str | None, **params: Any
) -> httpx.Response:
    extra = MERGE_PATCH | ({"If-Match": etag} if etag else {})
    return await http.patch(PERSON, content=json.dumps(patch), headers=headers | extra, params=params)


async def test_any_department_system_reads_the_three_base_resources(
    http: httpx.AsyncClient, consumer: dict[str, str]
) -> None:
    listing = (await http.get("/v1/catalog/resources", headers=consumer)).json()
    assert [item["code"] for item in listing["items"]] == [
        "geospatial.address",
        "legal_entity.entity",
        "population.person",
    ]
    person, etag = await _read(http, consumer)
    assert etag == '"1"'
    assert person["subject_type"] == "person"
    assert person["subject_id_type"] == "id_number"
    assert person["sharing"]["type"] == "conditional"
    assert person["classification"]["label"] == "基础信息资源/人口基础信息资源"
    sex = next(e for e in person["elements"] if e["name"] == "sex")
    assert set(sex) >= {"name", "title", "type", "codes", "source_department", "sharing", "open", "required"}
    assert {"code": "1", "title": "男"} in sex["codes"]
    assert (await http.get("/v1/catalog/resources/nothing.here", headers=consumer)).status_code == 404


async def test_departments_and_purposes_are_listed(http: httpx.AsyncClient, consumer: dict[str, str]) -> None:
    departments = (await http.get("/v1/catalog/departments", headers=consumer)).json()["items"]
    assert any(d["name"] == "赤峰市公安局" for d in departments)
    purposes = (await http.get("/v1/catalog/purposes", headers=consumer)).json()["items"]
    assistance = next(p for p in purposes if p["code"] == "social-assistance-eligibility")
    assert "社会救助" in assistance["legal_basis"]
    one = await http.get("/v1/catalog/purposes/social-assistance-eligibility", headers=consumer)
    assert one.json()["title"] == assistance["title"]


async def test_a_steward_edit_makes_a_version_with_a_structured_history(
    http: httpx.AsyncClient, steward: dict[str, str]
) -> None:
    before, etag = await _read(http, steward)
    mongolian = "ᠬᠦᠮᠦᠨ ᠠᠮ ᠠ ᠶᠢᠨ ᠰᠠᠭᠤᠷᠢ ᠮᠡᠳᠡᠭᠡ"
    response = await _patch(
        http, steward, {"title": mongolian, "elements": {"phone": {"title": "联系电话（手机）"}}}, etag
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    assert response.json()["title"] == mongolian

    history = (await http.get(f"{PERSON}/history", headers=steward)).json()["items"]
    assert [item["version"] for item in history] == [2, 1]
    latest = history[0]
    assert latest["actor"].startswith("cl_")
    assert latest["breaking"] is False
    old_phone = next(e for e in before["elements"] if e["name"] == "phone")
    assert latest["changes"] == [
        {"op": "updated", "path": "title", "old": before["title"], "new": mongolian},
        {
            "op": "updated",
            "path": "elements.phone.title",
            "old": old_phone["title"],
            "new": "联系电话（手机）",
        },
    ]
    assert history[1]["actor"] == "test-loader"
    first = (await http.get(f"{PERSON}/versions/1", headers=steward)).json()
    assert first["document"]["title"] == before["title"]
    assert (await http.get(f"{PERSON}/versions/9", headers=steward)).status_code == 404


async def test_a_version_number_beyond_the_column_is_refused_as_input(
    http: httpx.AsyncClient, consumer: dict[str, str]
) -> None:
    response = await http.get(f"{PERSON}/versions/{2**31}", headers=consumer)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [p["name"] for p in response.json()["invalid_params"]] == ["path.version"]


async def test_an_edit_that_changes_nothing_makes_no_version(
    http: httpx.AsyncClient, steward: dict[str, str]
) -> None:
    person, etag = await _read(http, steward)
    response = await _patch(http, steward, {"title": person["title"]}, etag)
    assert response.headers["etag"] == etag
    assert len((await http.get(f"{PERSON}/history", headers=steward)).json()["items"]) == 1


async def test_stale_and_missing_preconditions_are_refused(
    http: httpx.AsyncClient, steward: dict[str, str]
) -> None:
    _, etag = await _read(http, steward)
    assert (await _patch(http, steward, {"title": "一"}, etag)).status_code == 200
    stale = await _patch(http, steward, {"title": "二"}, etag)
    assert stale.status_code == 412
    assert stale.json()["code"] == "stale_version"
    assert stale.headers["etag"] == '"2"'
    missing = await _patch(http, steward, {"title": "三"}, None)
    assert missing.status_code == 428
    assert (await _read(http, steward))[0]["title"] == "一"


async def test_concurrent_edits_from_the_same_version_let_exactly_one_through(
    app: Any, steward: dict[str, str]
) -> None:
    _, etag = await _read(
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub.test"), steward
    )

    async def edit(title: str) -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
            return (await _patch(client, steward, {"title": title}, etag)).status_code

    statuses = sorted(await asyncio.gather(*(edit(f"版本{n}") for n in range(4))))
    assert statuses == [200, 412, 412, 412]


async def test_moving_a_source_department_needs_an_explicit_flag_and_is_recorded(
    http: httpx.AsyncClient, steward: dict[str, str]
) -> None:
    person, etag = await _read(http, steward)
    new_source = person["owner_department"]
    marital = next(e for e in person["elements"] if e["name"] == "marital_status")
    assert marital["source_department"] != new_source
    patch = {"elements": {"marital_status": {"source_department": new_source}}}

    refused = await _patch(http, steward, patch, etag)
    assert refused.status_code == 409
    assert refused.json()["code"] == "breaking_change"
    assert refused.json()["changes"][0]["path"] == "elements.marital_status.source_department"

    allowed = await _patch(http, steward, patch, etag, allow_breaking="true")
    assert allowed.status_code == 200
    latest = (await http.get(f"{PERSON}/history", headers=steward)).json()["items"][0]
    assert latest["breaking"] is True


async def test_elements_are_added_replaced_and_removed_one_by_one(
    http: httpx.AsyncClient, steward: dict[str, str]
) -> None:
    person, etag = await _read(http, steward)
    element = {
        "name": "nickname",
        "title": "曾用名",
        "type": "string",
        "length": 50,
        "source_department": person["owner_department"],
        "sharing": "conditional",
    }
    added = await http.put(f"{PERSON}/elements/nickname", json=element, headers=steward | {"If-Match": etag})
    assert added.status_code == 200, added.text
    assert added.json()["elements"][-1]["name"] == "nickname"
    etag = added.headers["etag"]
    kept = await http.delete(f"{PERSON}/elements/nickname", headers=steward | {"If-Match": etag})
    assert kept.status_code == 409
    removed = await http.delete(
        f"{PERSON}/elements/nickname", headers=steward | {"If-Match": etag}, params={"allow_breaking": "true"}
    )
    assert removed.status_code == 200
    assert all(e["name"] != "nickname" for e in removed.json()["elements"])
    gone = await http.patch(
        f"{PERSON}/elements/nickname",
        content="{}",
        headers=steward | MERGE_PATCH | {"If-Match": removed.headers["etag"]},
    )
    assert gone.status_code == 404


async def test_invalid_edits_are_422_naming_the_element_and_change_nothing(
    http: httpx.AsyncClient, steward: dict[str, str]
) -> None:
    _, etag = await _read(http, steward)
    two_sources = await _patch(http, steward, {"elements": {"sex": {"source_department": ["a", "b"]}}}, etag)
    assert two_sources.status_code == 422
    assert two_sources.json()["invalid_params"][0]["name"] == "elements.sex.source_department"
    open_conditional = await _patch(http, steward, {"elements": {"name": {"open": True}}}, etag)
    assert open_conditional.status_code == 422
    assert open_conditional.json()["invalid_params"][0]["name"] == "elements.name"
    unknown_department = await _patch(
        http, steward, {"elements": {"sex": {"source_department": "91350100M000100Y43"}}}, etag
    )
    assert unknown_department.status_code == 422
    assert unknown_department.json()["invalid_params"] == [
        {"name": "elements.sex.source_department", "reason": "91350100M000100Y43 is not a department"}
    ]
    renamed = await _patch(http, steward, {"code": "population.people"}, etag)
    assert renamed.status_code == 422
    assert (await _read(http, steward))[1] == etag


async def test_only_stewards_edit(http: httpx.AsyncClient, consumer: dict[str, str]) -> None:
    _, etag = await _read(http, consumer)
    assert (await _patch(http, consumer, {"title": "x"}, etag)).status_code == 403


async def test_a_new_resource_is_created_and_a_duplicate_refused(
    http: httpx.AsyncClient, steward: dict[str, str]
) -> None:
    person, _ = await _read(http, steward)
    new = {k: v for k, v in person.items() if k not in {"version", "updated_at", "classification", "open"}}
    new |= {"code": "population.household", "national_code": "10100201/000001", "title": "户籍家庭信息"}
    new["sharing"] = {k: v for k, v in person["sharing"].items() if k != "type"}
    created = await http.post("/v1/catalog/resources", json=new, headers=steward)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/catalog/resources/population.household"
    again = await http.post("/v1/catalog/resources", json=new, headers=steward)
    assert again.status_code == 409
    same_national_code = await http.post(
        "/v1/catalog/resources", json=new | {"code": "population.other"}, headers=steward
    )
    assert same_national_code.status_code == 422
    assert same_national_code.json()["invalid_params"][0]["name"] == "national_code"


async def test_the_dcat_export_is_dcat_ap_conformant_json_ld(
    http: httpx.AsyncClient, consumer: dict[str, str]
) -> None:
    response = await http.get("/v1/catalog/dcat", headers=consumer)
    assert response.headers["content-type"] == "application/ld+json"
    graph = Graph().parse(data=response.text, format="json-ld")
    assert len(list(graph.subjects(RDF.type, DCAT.Catalog))) == 1
    assert len(list(graph.subjects(RDF.type, DCAT.Dataset))) == 3
    conforms, _, report = pyshacl.validate(
        graph, shacl_graph=Graph().parse(SHAPES, format="turtle"), inference="none"
    )
    assert conforms, report
