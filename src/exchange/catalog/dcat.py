"""The catalogue as a DCAT-AP 3.0.1 JSON-LD document, for data portals that harvest DCAT.

Every resource is a ``dcat:Dataset`` with one ``dcat:Distribution``: the hub's ``records:query`` endpoint.
What DCAT-AP has no property for (the elements and their single source department, the sharing type, the
subject) is said in the hub's own namespace, ``{base_url}/ns#``, which DCAT-AP consumers may ignore.
The ``@context`` is inline so the document parses without fetching anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from exchange.catalog.schemas import ElementSpec, ResourceOut, Sharing, UpdateCycle

EU_AUTHORITY = "http://publications.europa.eu/resource/authority"
FREQUENCIES = {
    UpdateCycle.realtime: f"{EU_AUTHORITY}/frequency/UPDATE_CONT",
    UpdateCycle.daily: f"{EU_AUTHORITY}/frequency/DAILY",
    UpdateCycle.weekly: f"{EU_AUTHORITY}/frequency/WEEKLY",
    UpdateCycle.monthly: f"{EU_AUTHORITY}/frequency/MONTHLY",
    UpdateCycle.quarterly: f"{EU_AUTHORITY}/frequency/QUARTERLY",
    UpdateCycle.semiannual: f"{EU_AUTHORITY}/frequency/ANNUAL_2",
    UpdateCycle.yearly: f"{EU_AUTHORITY}/frequency/ANNUAL",
}
PUBLIC = f"{EU_AUTHORITY}/access-right/PUBLIC"
RESTRICTED = f"{EU_AUTHORITY}/access-right/RESTRICTED"
NON_PUBLIC = f"{EU_AUTHORITY}/access-right/NON_PUBLIC"
JSON_FILE_TYPE = f"{EU_AUTHORITY}/file-type/JSON"
JSON_MEDIA_TYPE = "https://www.iana.org/assignments/media-types/application/json"
CHINESE = f"{EU_AUTHORITY}/language/ZHO"

DEFAULT_TITLE = "政务数据共享交换平台资源目录"
DEFAULT_DESCRIPTION = "共享交换平台登记的政务信息资源，按《政务信息资源目录编制指南（试行）》编目。"
SERVICE_TITLE = "政务数据共享交换平台接口"
DISTRIBUTION_TITLE = "记录查询接口"
DISTRIBUTION_DESCRIPTION = "经共享交换平台接口查询记录：须声明用途，并在授权范围内读取。"

MONGOLIAN_SCRIPT = ("\u1800", "\u18af")


def dcat_catalog(
    resources: Sequence[ResourceOut],
    departments: Mapping[str, str],
    *,
    base_url: str,
    title: str = DEFAULT_TITLE,
    description: str = DEFAULT_DESCRIPTION,
    publisher_code: str | None = None,
) -> dict[str, Any]:
    """The ``dcat:Catalog`` of ``resources``, with ``departments`` (code → name) as the agents.

    The catalogue's publisher is ``publisher_code``, else the first of ``departments``. Raises ValueError
    when a department the catalogue names is missing from ``departments``: DCAT-AP requires every agent
    to have a name.
    """
    base = base_url.rstrip("/")
    publisher = publisher_code if publisher_code is not None else next(iter(departments), None)
    if publisher is None:
        raise ValueError("the catalogue needs a publisher: pass publisher_code or at least one department")
    named = {publisher}
    for resource in resources:
        named.add(resource.owner_department)
        named.update(element.source_department for element in resource.elements)
    missing = sorted(named - departments.keys())
    if missing:
        raise ValueError(f"departments not given, so they have no name: {', '.join(missing)}")

    catalog_iri = f"{base}/v1/catalog/dcat"
    service_iri = f"{catalog_iri}#service"
    datasets = {resource.national_code: _dataset_iri(base, resource.code) for resource in resources}
    catalog: dict[str, Any] = {
        "@id": catalog_iri,
        "@type": "dcat:Catalog",
        "dct:title": _text(title),
        "dct:description": _text(description),
        "dct:publisher": _ref(_agent_iri(base, publisher)),
        "dct:language": _ref(CHINESE),
        "dcat:service": _ref(service_iri),
        "dcat:dataset": [_ref(iri) for iri in datasets.values()],
    }
    if resources:
        latest = max(resource.updated_at for resource in resources)
        catalog["dct:modified"] = _typed(latest.isoformat(), "xsd:dateTime")
    service = {
        "@id": service_iri,
        "@type": "dcat:DataService",
        "dct:title": _text(SERVICE_TITLE),
        "dct:publisher": _ref(_agent_iri(base, publisher)),
        "dcat:endpointURL": _ref(base),
        "dcat:endpointDescription": _ref(f"{base}/openapi.json"),
        "dcat:servesDataset": [_ref(iri) for iri in datasets.values()],
    }
    agents = [
        {
            "@id": _agent_iri(base, code),
            "@type": "foaf:Agent",
            "foaf:name": _text(departments[code]),
            "dct:identifier": code,
        }
        for code in sorted(named)
    ]
    return {
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "foaf": "http://xmlns.com/foaf/0.1/",
            "adms": "http://www.w3.org/ns/adms#",
            "skos": "http://www.w3.org/2004/02/skos/core#",
            "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
            "xsd": "http://www.w3.org/2001/XMLSchema#",
            "exchange": f"{base}/ns#",
        },
        "@graph": [
            catalog,
            service,
            *(_dataset(base, resource, datasets, service_iri) for resource in resources),
            *agents,
        ],
    }


def _dataset(
    base: str, resource: ResourceOut, datasets: Mapping[str, str], service_iri: str
) -> dict[str, Any]:
    iri = _dataset_iri(base, resource.code)
    distribution: dict[str, Any] = {
        "@id": f"{iri}#records-query",
        "@type": "dcat:Distribution",
        "dct:title": _text(DISTRIBUTION_TITLE),
        "dct:description": _text(DISTRIBUTION_DESCRIPTION),
        "dcat:accessURL": _ref(f"{base}/v1/resources/{resource.code}/records:query"),
        "dcat:accessService": _ref(service_iri),
        "dct:format": _ref(JSON_FILE_TYPE),
        "dcat:mediaType": _ref(JSON_MEDIA_TYPE),
    }
    if resource.sharing.condition is not None:
        distribution["dct:rights"] = {
            "@type": "dct:RightsStatement",
            "rdfs:label": _text(resource.sharing.condition),
        }
    dataset: dict[str, Any] = {
        "@id": iri,
        "@type": "dcat:Dataset",
        "dct:title": _text(resource.title),
        "dct:description": _text(resource.description),
        "dct:identifier": resource.national_code,
        "adms:identifier": {"@type": "adms:Identifier", "skos:notation": resource.code},
        "dct:publisher": _ref(_agent_iri(base, resource.owner_department)),
        "dct:issued": _typed(resource.published_on.isoformat(), "xsd:date"),
        "dct:modified": _typed(resource.updated_at.isoformat(), "xsd:dateTime"),
        "dct:accrualPeriodicity": _ref(FREQUENCIES[resource.update_cycle]),
        "dct:accessRights": _ref(_access_rights(resource)),
        "dcat:version": str(resource.version),
        "dcat:keyword": [_text(label) for label in resource.classification["label"].split("/")],
        "dcat:distribution": distribution,
        "exchange:subjectType": resource.subject_type.value,
        "exchange:subjectIdType": resource.subject_id_type.value,
        "exchange:formatType": resource.format.type.value,
        "exchange:sharingType": resource.sharing.type.value,
        "exchange:sharingMethod": _text(resource.sharing.method),
        "exchange:open": resource.open,
        "exchange:elements": {"@list": [_element(base, element) for element in resource.elements]},
    }
    if resource.related:
        # A related resource outside this catalogue has no IRI here, so it is named by its national code.
        dataset["dct:relation"] = [
            _ref(datasets[code]) if code in datasets else {"dct:identifier": code}
            for code in resource.related
        ]
    if resource.format.detail is not None:
        dataset["exchange:formatDetail"] = resource.format.detail
    if resource.open_condition is not None:
        dataset["exchange:openCondition"] = _text(resource.open_condition)
    return dataset


def _element(base: str, element: ElementSpec) -> dict[str, Any]:
    node: dict[str, Any] = {
        "@type": "exchange:Element",
        "exchange:name": element.name,
        "dct:title": _text(element.title),
        "exchange:type": element.type.value,
        "exchange:required": element.required,
        "exchange:sourceDepartment": _ref(_agent_iri(base, element.source_department)),
        "exchange:sharingType": element.sharing.value,
        "exchange:open": element.open,
    }
    if element.description is not None:
        node["dct:description"] = _text(element.description)
    if element.length is not None:
        node["exchange:length"] = element.length
    if element.unit is not None:
        node["exchange:unit"] = element.unit
    if element.precision is not None:
        node["exchange:precision"] = element.precision
    if element.tolerance_m is not None:
        node["exchange:toleranceMetres"] = element.tolerance_m
    if element.codes is not None:
        node["exchange:codes"] = {
            "@list": [
                {"@type": "skos:Concept", "skos:notation": item.code, "skos:prefLabel": _text(item.title)}
                for item in element.codes
            ]
        }
    return node


def _access_rights(resource: ResourceOut) -> str:
    # ResourceOut.open means *some* element is open; the dataset as a whole is public only if all are.
    if all(element.open for element in resource.elements):
        return PUBLIC
    if resource.sharing.type is Sharing.none:
        return NON_PUBLIC
    return RESTRICTED


def _text(value: str) -> dict[str, str]:
    """A literal tagged with its language: Chinese, unless it is written in Mongolian script."""
    low, high = MONGOLIAN_SCRIPT
    if not any(low <= char <= high for char in value):
        return {"@value": value, "@language": "zh"}
    if all(low <= char <= high for char in value if char.isalpha()):
        return {"@value": value, "@language": "mn-Mong"}
    # Bilingual text (e.g. a department's name in both scripts) has no one language to claim.
    return {"@value": value}


def _ref(iri: str) -> dict[str, str]:
    return {"@id": iri}


def _typed(value: str, datatype: str) -> dict[str, str]:
    return {"@value": value, "@type": datatype}


def _dataset_iri(base: str, code: str) -> str:
    return f"{base}/v1/catalog/resources/{code}"


def _agent_iri(base: str, code: str) -> str:
    return f"{base}/v1/departments/{code}"
