from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from exchange.catalog.diff import Change, diff_resource, is_breaking


def _doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "code": "population.person",
        "title": "人口基础信息",
        "format": {"type": "数据库", "detail": "PostgreSQL"},
        "elements": [
            {"name": "name", "title": "姓名", "source_department": "A", "sharing": "conditional"},
            {"name": "sex", "title": "性别", "source_department": "A", "sharing": "unconditional"},
        ],
    }
    doc.update(overrides)
    return doc


def test_identical_documents_have_no_changes() -> None:
    assert diff_resource(_doc(), _doc()) == []


def test_a_new_resource_is_every_field_added() -> None:
    changes = diff_resource(None, _doc())
    assert {c.op for c in changes} == {"added"}
    assert {c.path for c in changes} == {"code", "title", "format", "elements.name", "elements.sex"}


def test_field_nested_and_element_updates_carry_old_and_new_values() -> None:
    new = _doc(title="人口库", format={"type": "接口", "detail": "PostgreSQL"})
    new["elements"][1] = new["elements"][1] | {"title": "性别代码"}
    assert diff_resource(_doc(), new) == [
        Change("updated", "title", old="人口基础信息", new="人口库"),
        Change("updated", "format.type", old="数据库", new="接口"),
        Change("updated", "elements.sex.title", old="性别", new="性别代码"),
    ]


def test_only_source_moves_and_removals_are_breaking() -> None:
    new = _doc()
    new["elements"] = [new["elements"][0] | {"source_department": "B"}]
    changes = diff_resource(_doc(), new)
    assert [(c.path, is_breaking(c)) for c in changes] == [
        ("elements.name.source_department", True),
        ("elements.sex", True),
    ]
    assert not any(is_breaking(c) for c in diff_resource(_doc(), _doc(title="x")))


def test_reordering_elements_is_one_non_breaking_change() -> None:
    new = _doc()
    new["elements"] = list(reversed(new["elements"]))
    (change,) = diff_resource(_doc(), new)
    assert change.path == "elements.order"
    assert not is_breaking(change)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.dictionaries(st.sampled_from("abcde"), children, max_size=4),
    max_leaves=10,
)


@given(
    old=st.dictionaries(st.sampled_from("abcdef"), json_values),
    new=st.dictionaries(st.sampled_from("abcdef"), json_values),
)
def test_a_diff_is_empty_exactly_when_documents_are_equal(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert (diff_resource(old, new) == []) == (old == new)
