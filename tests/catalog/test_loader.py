"""Reading catalog/ YAML: the repository's catalogue is valid, and bad files are refused precisely."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from exchange.catalog.loader import CatalogInvalid, read_catalog, write_catalog
from exchange.catalog.schemas import Sharing, SubjectType
from tests.conftest import REPO_CATALOG


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    shutil.copytree(REPO_CATALOG, tmp_path / "catalog")
    return tmp_path / "catalog"


def _edit_resource(directory: Path, code: str, edit: object) -> None:
    path = directory / "resources" / f"{code}.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(doc)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _problems(directory: Path) -> list[str]:
    with pytest.raises(CatalogInvalid) as caught:
        read_catalog(directory)
    return [str(problem) for problem in caught.value.problems]


def test_the_repository_catalogue_holds_the_three_base_resources() -> None:
    files = read_catalog(REPO_CATALOG)
    by_code = {spec.code: spec for spec in files.resources}
    assert set(by_code) == {"population.person", "legal_entity.entity", "geospatial.address"}
    assert by_code["population.person"].subject_type is SubjectType.person
    assert by_code["legal_entity.entity"].subject_id_type.value == "uscc"
    sharing = {element.sharing for spec in files.resources for element in spec.elements}
    assert sharing == {Sharing.unconditional, Sharing.conditional, Sharing.none}
    assert any(element.open for element in by_code["legal_entity.entity"].elements)
    departments = {d.code for d in files.departments}
    assert all(e.source_department in departments for spec in files.resources for e in spec.elements)
    assert len(files.purposes) >= 5


def test_an_element_with_no_source_is_refused_naming_file_resource_and_element(catalog_dir: Path) -> None:
    _edit_resource(catalog_dir, "population.person", lambda doc: doc["elements"][0].pop("source_department"))
    (problem,) = _problems(catalog_dir)
    assert problem == (
        "resources/population.person.yaml, resource population.person, element name, "
        "field source_department: Field required"
    )


def test_an_element_with_two_sources_is_refused(catalog_dir: Path) -> None:
    def two_sources(doc: dict) -> None:  # type: ignore[type-arg]
        element = doc["elements"][1]
        element["source_department"] = [element["source_department"], doc["owner_department"]]

    _edit_resource(catalog_dir, "population.person", two_sources)
    (problem,) = _problems(catalog_dir)
    assert problem.startswith(
        "resources/population.person.yaml, resource population.person, element name_mongolian"
    )
    assert "exactly one source department (一数一源), not 2" in problem


def test_a_source_that_is_no_department_is_refused(catalog_dir: Path) -> None:
    _edit_resource(
        catalog_dir,
        "geospatial.address",
        lambda doc: doc["elements"][2].update(source_department="91350100M000100Y43"),
    )
    (problem,) = _problems(catalog_dir)
    assert problem.startswith(
        "resources/geospatial.address.yaml, resource geospatial.address, element division_code"
    )
    assert "91350100M000100Y43 is not a department" in problem


def test_every_problem_is_reported_at_once(catalog_dir: Path) -> None:
    def break_many(doc: dict) -> None:  # type: ignore[type-arg]
        doc["elements"][0]["type"] = "colour"
        doc["elements"][3]["open"] = True
        doc["elements"][3]["sharing"] = "conditional"
        doc["national_code"] = "9-bad"

    _edit_resource(catalog_dir, "legal_entity.entity", break_many)
    problems = _problems(catalog_dir)
    assert len(problems) == 3
    assert any("field national_code" in p for p in problems)
    assert any("element name, field type" in p for p in problems)
    assert any("only an element shared unconditionally may be open" in p for p in problems)


def test_broken_yaml_names_the_file_and_line(catalog_dir: Path) -> None:
    (catalog_dir / "purposes.yaml").write_text(
        "purposes:\n  - code: x\n   title: [unclosed\n", encoding="utf-8"
    )
    (problem,) = _problems(catalog_dir)
    assert problem.startswith("purposes.yaml: line ")
    assert "not valid YAML" in problem


def test_a_key_given_twice_is_refused(catalog_dir: Path) -> None:
    path = catalog_dir / "departments.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("    name: 赤峰市公安局", "    name: 赤峰市公安局\n    name: 公安局", 1),
        encoding="utf-8",
    )
    (problem,) = _problems(catalog_dir)
    assert "the key 'name' is given twice" in problem


def test_a_resource_file_must_be_named_for_its_code(catalog_dir: Path) -> None:
    (catalog_dir / "resources" / "population.person.yaml").rename(catalog_dir / "resources" / "people.yaml")
    (problem,) = _problems(catalog_dir)
    assert "must be named population.person.yaml" in problem


def test_written_files_read_back_to_the_same_catalogue(tmp_path: Path) -> None:
    original = read_catalog(REPO_CATALOG)
    write_catalog(tmp_path / "out", original)
    assert read_catalog(tmp_path / "out") == original
