"""The DCAT-AP 3.0.1 export: it parses offline, keeps its text, and passes the official SHACL shapes."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pyshacl import validate
from rdflib import RDF, RDFS, Graph, Literal, Namespace, Node, URIRef
from rdflib.collection import Collection
from rdflib.namespace import DCTERMS, FOAF, SH, SKOS

from exchange.catalog.dcat import dcat_catalog
from exchange.catalog.schemas import (
    CodeItem,
    ElementSpec,
    ElementType,
    FormatType,
    ResourceFormat,
    ResourceOut,
    Sharing,
    SharingOut,
    SubjectIdType,
    SubjectType,
    UpdateCycle,
    classification,
    resource_sharing,
)
from tests.identifiers import valid_uscc

# rdflib's closed DCAT and XSD namespaces lack DCAT 3 terms and warn on lookups, so open ones are used.
DCAT = Namespace("http://www.w3.org/ns/dcat#")
XSD = Namespace("http://www.w3.org/2001/XMLSchema#")
SHAPES = Path(__file__).parent / "data" / "dcat-ap-3.0.1-shapes.ttl"
BASE = "https://hub.example.gov.cn"
EXCHANGE = Namespace(f"{BASE}/ns#")
FREQUENCY = Namespace("http://publications.europa.eu/resource/authority/frequency/")
ACCESS_RIGHT = Namespace("http://publications.europa.eu/resource/authority/access-right/")

POLICE = valid_uscc(prefix="11150400")
MARKET = valid_uscc(prefix="11150400")
LAND = valid_uscc(prefix="11150400")
DEPARTMENTS = {
    POLICE: "赤峰市公安局",
    MARKET: "赤峰市市场监督管理局",
    LAND: "ᠤᠯᠠᠭᠠᠨᠬᠠᠳᠠ ᠬᠣᠲᠠ 赤峰市自然资源局",
}
MONGOLIAN_TITLE = "ᠬᠦᠮᠦᠨ ᠠᠮ ᠠ"
OUTSIDE = "20100101/000009"

# rdflib's own JSON-LD parser uses its deprecated ConjunctiveGraph.
pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")


def _element(name: str, title: str, source: str, sharing: Sharing, **extra: Any) -> ElementSpec:
    return ElementSpec(name=name, title=title, source_department=source, sharing=sharing, **extra)


def _resource(
    code: str,
    national_code: str,
    title: str,
    *,
    owner: str,
    elements: list[ElementSpec],
    update_cycle: UpdateCycle,
    subject: tuple[SubjectType, SubjectIdType] = (SubjectType.person, SubjectIdType.id_number),
    related: Sequence[str] = (),
    condition: str | None = None,
) -> ResourceOut:
    return ResourceOut(
        code=code,
        national_code=national_code,
        title=title,
        description=f"{title}的摘要。",
        subject_type=subject[0],
        subject_id_type=subject[1],
        owner_department=owner,
        format=ResourceFormat(type=FormatType.database, detail="PostgreSQL"),
        sharing=SharingOut(type=resource_sharing(elements), condition=condition, method="共享交换平台接口"),
        open=any(element.open for element in elements),
        update_cycle=update_cycle,
        published_on=date(2024, 6, 1),
        related=list(related),
        elements=elements,
        classification=classification(national_code),
        version=3,
        updated_at=datetime(2025, 3, 1, 8, 30, tzinfo=UTC),
    )


def _resources() -> list[ResourceOut]:
    residents = _resource(
        "population.residents",
        "10100101/000001",
        "常住人口基本信息",
        owner=POLICE,
        update_cycle=UpdateCycle.realtime,
        condition="仅限履行法定职责所需",
        related=["10200101/000001", OUTSIDE],
        elements=[
            _element("id_number", "公民身份号码", POLICE, Sharing.conditional, type=ElementType.id_number),
            _element("name", "姓名", POLICE, Sharing.conditional, type=ElementType.string, length=50),
            _element(
                "gender",
                "性别",
                POLICE,
                Sharing.unconditional,
                type=ElementType.code,
                codes=[CodeItem(code="1", title="男"), CodeItem(code="2", title="女")],
            ),
        ],
    )
    companies = _resource(
        "legal_entity.registrations",
        "10200101/000001",
        "市场主体登记信息",
        owner=MARKET,
        update_cycle=UpdateCycle.daily,
        subject=(SubjectType.legal_entity, SubjectIdType.uscc),
        elements=[
            _element(
                "uscc", "统一社会信用代码", MARKET, Sharing.unconditional, type=ElementType.uscc, open=True
            ),
            _element("name", "名称", MARKET, Sharing.unconditional, type=ElementType.string, open=True),
        ],
    )
    pastures = _resource(
        "geo.pastures",
        "10300101/000001",
        MONGOLIAN_TITLE,
        owner=LAND,
        update_cycle=UpdateCycle.semiannual,
        subject=(SubjectType.place, SubjectIdType.address_code),
        elements=[
            _element("address", "标准地址编码", LAND, Sharing.none, type=ElementType.string),
            _element("area", "面积", POLICE, Sharing.none, type=ElementType.decimal, unit="公顷"),
        ],
    )
    return [residents, companies, pastures]


def _graph(document: dict[str, Any]) -> Graph:
    return Graph().parse(data=json.dumps(document, ensure_ascii=False), format="json-ld")


def _dataset(code: str) -> URIRef:
    return URIRef(f"{BASE}/v1/catalog/resources/{code}")


def _list(graph: Graph, subject: Node, predicate: URIRef) -> list[Node]:
    head = graph.value(subject, predicate)
    assert head is not None, f"{subject} has no {predicate}"
    return list(Collection(graph, head))


def _node(document: dict[str, Any], iri: str) -> dict[str, Any]:
    return next(node for node in document["@graph"] if node["@id"] == iri)


@pytest.fixture(scope="module")
def shapes() -> Graph:
    return Graph().parse(SHAPES, format="turtle")


@pytest.fixture
def document() -> dict[str, Any]:
    return dcat_catalog(_resources(), DEPARTMENTS, base_url=f"{BASE}/")


def test_the_catalogue_parses_offline_as_one_catalog_of_datasets(document: dict[str, Any]) -> None:
    # rdflib fetches only contexts given by URL; an inline one keeps the document self-contained.
    assert isinstance(document["@context"], dict)
    graph = _graph(document)

    catalogs = list(graph.subjects(RDF.type, DCAT.Catalog))
    assert catalogs == [URIRef(f"{BASE}/v1/catalog/dcat")]
    datasets = set(graph.subjects(RDF.type, DCAT.Dataset))
    assert datasets == {_dataset(resource.code) for resource in _resources()}
    assert set(graph.objects(catalogs[0], DCAT.dataset)) == datasets
    assert graph.value(catalogs[0], DCTERMS.publisher) == URIRef(f"{BASE}/v1/departments/{POLICE}")


def test_text_round_trips_unchanged(document: dict[str, Any]) -> None:
    graph = _graph(document)

    titles = {str(title) for title in graph.objects(None, DCTERMS.title)}
    assert {"常住人口基本信息", "市场主体登记信息", MONGOLIAN_TITLE} <= titles
    mongolian = graph.value(_dataset("geo.pastures"), DCTERMS.title)
    assert mongolian == Literal(MONGOLIAN_TITLE, lang="mn-Mong")
    assert graph.value(_dataset("population.residents"), DCTERMS.title) == Literal(
        "常住人口基本信息", lang="zh"
    )
    names = {
        str(graph.value(agent, DCTERMS.identifier)): str(graph.value(agent, FOAF.name))
        for agent in graph.subjects(RDF.type, FOAF.Agent)
    }
    assert names == DEPARTMENTS
    # A name in both scripts is left untagged rather than claimed for one language.
    assert graph.value(URIRef(f"{BASE}/v1/departments/{LAND}"), FOAF.name) == Literal(DEPARTMENTS[LAND])


def test_the_catalogue_conforms_to_the_dcat_ap_shapes(document: dict[str, Any], shapes: Graph) -> None:
    conforms, _, text = validate(_graph(document), shacl_graph=shapes, inference="none")
    assert conforms, text


def _without_dataset_description(document: dict[str, Any]) -> None:
    del _node(document, str(_dataset("geo.pastures")))["dct:description"]


def _without_catalog_publisher(document: dict[str, Any]) -> None:
    del _node(document, f"{BASE}/v1/catalog/dcat")["dct:publisher"]


def _without_access_url(document: dict[str, Any]) -> None:
    del _node(document, str(_dataset("geo.pastures")))["dcat:distribution"]["dcat:accessURL"]


@pytest.mark.parametrize(
    ("damage", "path"),
    [
        (_without_dataset_description, DCTERMS.description),
        (_without_catalog_publisher, DCTERMS.publisher),
        (_without_access_url, DCAT.accessURL),
    ],
)
def test_the_shapes_catch_a_missing_mandatory_property(
    document: dict[str, Any], shapes: Graph, damage: Callable[[dict[str, Any]], None], path: URIRef
) -> None:
    damaged = copy.deepcopy(document)
    damage(damaged)

    conforms, results, text = validate(_graph(damaged), shacl_graph=shapes, inference="none")

    assert not conforms
    assert isinstance(results, Graph)
    assert {
        results.value(result, SH.resultPath) for result in results.subjects(RDF.type, SH.ValidationResult)
    } == {path}, text


def test_fields_map_to_dcat_ap_vocabularies(document: dict[str, Any]) -> None:
    graph = _graph(document)
    residents, companies, pastures = (
        _dataset(code) for code in ("population.residents", "legal_entity.registrations", "geo.pastures")
    )

    assert graph.value(residents, DCTERMS.identifier) == Literal("10100101/000001")
    assert graph.value(residents, DCTERMS.issued) == Literal("2024-06-01", datatype=XSD.date)
    assert graph.value(residents, DCTERMS.modified) == Literal(
        "2025-03-01T08:30:00+00:00", datatype=XSD.dateTime
    )
    assert graph.value(residents, DCAT.version) == Literal("3")
    assert graph.value(residents, DCTERMS.publisher) == URIRef(f"{BASE}/v1/departments/{POLICE}")
    assert {
        graph.value(dataset, DCTERMS.accrualPeriodicity) for dataset in (residents, companies, pastures)
    } == {
        FREQUENCY.UPDATE_CONT,
        FREQUENCY.DAILY,
        FREQUENCY.ANNUAL_2,
    }
    assert graph.value(residents, DCTERMS.accessRights) == ACCESS_RIGHT.RESTRICTED
    assert graph.value(companies, DCTERMS.accessRights) == ACCESS_RIGHT.PUBLIC
    assert graph.value(pastures, DCTERMS.accessRights) == ACCESS_RIGHT.NON_PUBLIC
    assert set(graph.objects(residents, DCAT.keyword)) == {
        Literal("基础信息资源", lang="zh"),
        Literal("人口基础信息资源", lang="zh"),
    }

    related = set(graph.objects(residents, DCTERMS.relation))
    assert companies in related
    assert {graph.value(node, DCTERMS.identifier) for node in related if node != companies} == {
        Literal(OUTSIDE)
    }

    distribution = graph.value(residents, DCAT.distribution)
    assert graph.value(distribution, DCAT.accessURL) == URIRef(
        f"{BASE}/v1/resources/population.residents/records:query"
    )
    assert graph.value(distribution, DCAT.mediaType) == URIRef(
        "https://www.iana.org/assignments/media-types/application/json"
    )
    rights = graph.value(distribution, DCTERMS.rights)
    assert graph.value(rights, RDFS.label) == Literal("仅限履行法定职责所需", lang="zh")


def test_elements_keep_their_order_codes_and_source(document: dict[str, Any]) -> None:
    graph = _graph(document)

    residents = _list(graph, _dataset("population.residents"), EXCHANGE.elements)
    assert [str(graph.value(element, EXCHANGE.name)) for element in residents] == [
        "id_number",
        "name",
        "gender",
    ]
    assert graph.value(residents[1], EXCHANGE.length) == Literal(50)
    codes = _list(graph, residents[2], EXCHANGE.codes)
    assert [(str(graph.value(c, SKOS.notation)), str(graph.value(c, SKOS.prefLabel))) for c in codes] == [
        ("1", "男"),
        ("2", "女"),
    ]
    pastures = _list(graph, _dataset("geo.pastures"), EXCHANGE.elements)
    # An element may come from a department other than the resource's owner (一数一源).
    assert graph.value(pastures[1], EXCHANGE.sourceDepartment) == URIRef(f"{BASE}/v1/departments/{POLICE}")
    assert graph.value(pastures[1], EXCHANGE.unit) == Literal("公顷")


def test_publisher_code_names_the_catalogue_publisher() -> None:
    document = dcat_catalog(_resources(), DEPARTMENTS, base_url=BASE, publisher_code=MARKET)

    assert _node(document, f"{BASE}/v1/catalog/dcat")["dct:publisher"] == {
        "@id": f"{BASE}/v1/departments/{MARKET}"
    }


def test_an_empty_catalogue_still_conforms(shapes: Graph) -> None:
    document = dcat_catalog([], {POLICE: DEPARTMENTS[POLICE]}, base_url=BASE)

    conforms, _, text = validate(_graph(document), shacl_graph=shapes, inference="none")
    assert conforms, text


def test_a_department_without_a_name_is_refused() -> None:
    with pytest.raises(ValueError, match=LAND):
        dcat_catalog(_resources(), {POLICE: DEPARTMENTS[POLICE], MARKET: DEPARTMENTS[MARKET]}, base_url=BASE)
