"""Structured differences between two versions of a catalogue document (pure functions).

A change names a dotted path — ``title``, ``format.type``, ``elements.sex``, ``elements.sex.codes`` — and says
whether the value there was added, updated (with old and new value) or removed. Elements are compared by
name, so reordering or editing one element never shows as a change to the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Op = Literal["added", "updated", "removed"]


@dataclass(frozen=True, slots=True)
class Change:
    op: Op
    path: str
    old: Any = None
    new: Any = None

    def as_dict(self) -> dict[str, Any]:
        change: dict[str, Any] = {"op": self.op, "path": self.path}
        if self.op != "added":
            change["old"] = self.old
        if self.op != "removed":
            change["new"] = self.new
        return change


def diff_values(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[Change]:
    changes: list[Change] = []
    for key in sorted(old.keys() | new.keys(), key=_key_order(old, new)):
        path = f"{prefix}{key}"
        if key not in new:
            changes.append(Change("removed", path, old=old[key]))
        elif key not in old:
            changes.append(Change("added", path, new=new[key]))
        elif isinstance(old[key], Mapping) and isinstance(new[key], Mapping):
            changes += diff_values(old[key], new[key], f"{path}.")
        elif old[key] != new[key]:
            changes.append(Change("updated", path, old=old[key], new=new[key]))
    return changes


def _key_order(old: Mapping[str, Any], new: Mapping[str, Any]) -> Any:
    order = {key: i for i, key in enumerate([*new.keys(), *old.keys()][::-1])}
    return lambda key: -order[key]


def _by_name(elements: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {element["name"]: element for element in elements}


def diff_resource(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[Change]:
    """Changes from ``old`` to ``new`` resource documents; None stands for 'no such resource'."""
    old_fields = {k: v for k, v in (old or {}).items() if k != "elements"}
    new_fields = {k: v for k, v in (new or {}).items() if k != "elements"}
    changes = diff_values(old_fields, new_fields)
    old_elements = _by_name((old or {}).get("elements", []))
    new_elements = _by_name((new or {}).get("elements", []))
    for name in [*new_elements, *(n for n in old_elements if n not in new_elements)]:
        path = f"elements.{name}"
        if name not in new_elements:
            changes.append(Change("removed", path, old=dict(old_elements[name])))
        elif name not in old_elements:
            changes.append(Change("added", path, new=dict(new_elements[name])))
        else:
            changes += diff_values(
                {k: v for k, v in old_elements[name].items() if k != "name"},
                {k: v for k, v in new_elements[name].items() if k != "name"},
                f"{path}.",
            )
    kept_old = [name for name in old_elements if name in new_elements]
    kept_new = [name for name in new_elements if name in old_elements]
    if kept_old != kept_new:
        changes.append(Change("updated", "elements.order", old=list(old_elements), new=list(new_elements)))
    return changes


def is_breaking(change: Change) -> bool:
    """Changes that touch the one-number-one-source rule or drop data: they need an explicit flag.

    Moving an element to another source department changes whose value is canonical; removing an element
    (or a whole resource) makes its published values unreachable.
    """
    parts = change.path.split(".")
    if parts[0] != "elements" or parts[-1] == "order":
        return False
    if len(parts) == 2:
        return change.op == "removed"
    return parts[2] == "source_department" and change.op == "updated"
