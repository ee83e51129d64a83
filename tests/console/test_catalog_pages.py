"""Stewards edit the catalogue in the console: the same one-source rule, validation and optimistic locking as
the API, with errors shown beside the fields and conflicts explained."""

from __future__ import annotations

from typing import Any

from exchange.catalog import service as catalog
from exchange.db.session import transaction
from tests.console.conftest import MakeOfficer
from tests.console.events import logged
from tests.fixtures_departments import CIVIL_AFFAIRS, POLICE

DATA_BUREAU = "11150400MB15040895"
PHONE = "/console/catalog/population.person/elements/phone"


async def _resource(app: Any) -> Any:
    async with transaction(app.state.sessionmaker) as session:
        return await catalog.get_resource(session, "population.person")


async def _phone_form(app: Any, **changes: Any) -> dict[str, Any]:
    resource = await _resource(app)
    phone = resource.element("phone")
    form = {
        "version": str(resource.version),
        "title": phone.title,
        "description": phone.description or "",
        "type": phone.type.value,
        "length": str(phone.length or ""),
        "source_department": phone.source_department,
        "sharing": phone.sharing.value,
    }
    return form | changes


async def test_a_steward_edits_an_element_and_the_history_shows_the_diff(
    app: Any, officer: MakeOfficer
) -> None:
    wang = await officer("wang.steward", DATA_BUREAU, "steward")
    before = await _resource(app)
    saved = await wang.post(PHONE, await _phone_form(app, title="本人联系电话"))
    assert saved.status_code == 303
    assert saved.headers["location"] == "/console/catalog/population.person?saved=phone"

    after = await _resource(app)
    assert after.version == before.version + 1
    assert after.element("phone").title == "本人联系电话"
    history = await wang.get("/console/catalog/population.person/history")
    assert "本人联系电话" in history.text
    assert "console:wang.steward" in history.text
    [event] = [e for e in await logged(app, "catalog.edit") if e.officer is not None]
    assert (event.officer, event.client_id, event.elements) == (
        "wang.steward",
        "console:wang.steward",
        ["phone"],
    )


async def test_invalid_fields_are_shown_beside_them_and_nothing_changes(
    app: Any, officer: MakeOfficer
) -> None:
    wang = await officer("wang.steward", DATA_BUREAU, "steward")
    before = await _resource(app)
    untitled = await wang.post(PHONE, await _phone_form(app, title=""))
    assert untitled.status_code == 422
    assert 'id="error-title"' in untitled.text
    mistyped = await wang.post(PHONE, await _phone_form(app, type="date", length="20"))
    assert mistyped.status_code == 422
    assert "length applies to" in mistyped.text
    assert (await _resource(app)).version == before.version


async def test_inline_validation_checks_without_saving(app: Any, officer: MakeOfficer) -> None:
    wang = await officer("wang.steward", DATA_BUREAU, "steward")
    before = await _resource(app)
    checked = await wang.post(f"{PHONE}/check", await _phone_form(app, length="many"))
    assert checked.status_code == 200
    assert "not a number" in checked.text
    fine = await wang.post(f"{PHONE}/check", await _phone_form(app))
    assert "inline-errors" not in fine.text
    assert (await _resource(app)).version == before.version


async def test_an_edit_over_someone_elses_is_explained_and_can_be_reapplied(
    app: Any, officer: MakeOfficer
) -> None:
    wang = await officer("wang.steward", DATA_BUREAU, "steward")
    li = await officer("li.steward", DATA_BUREAU, "steward")
    read_by_wang = await _phone_form(app, title="王的标题")
    assert (await li.post(PHONE, await _phone_form(app, description="李改了说明"))).status_code == 303

    conflict = await wang.post(PHONE, read_by_wang)
    assert conflict.status_code == 409
    assert 'data-testid="conflict"' in conflict.text
    assert "李改了说明" in conflict.text  # the change Wang had not seen
    assert "console:li.steward" in conflict.text
    assert (await _resource(app)).element("phone").title != "王的标题"

    current = str((await _resource(app)).version)
    assert f'name="version" value="{current}"' in conflict.text
    assert (await wang.post(PHONE, read_by_wang | {"version": current})).status_code == 303
    phone = (await _resource(app)).element("phone")
    assert phone.title == "王的标题"


async def test_moving_the_source_department_must_be_confirmed(app: Any, officer: MakeOfficer) -> None:
    wang = await officer("wang.steward", DATA_BUREAU, "steward")
    moved = await _phone_form(app, source_department=CIVIL_AFFAIRS)
    unconfirmed = await wang.post(PHONE, moved)
    assert unconfirmed.status_code == 409
    assert 'data-testid="breaking"' in unconfirmed.text
    assert (await _resource(app)).element("phone").source_department == POLICE

    confirmed = await wang.post(PHONE, moved | {"allow_breaking": "on"})
    assert confirmed.status_code == 303
    assert (await _resource(app)).element("phone").source_department == CIVIL_AFFAIRS


async def test_a_new_element_is_added_from_the_resource_page(app: Any, officer: MakeOfficer) -> None:
    wang = await officer("wang.steward", DATA_BUREAU, "steward")
    asked = await wang.get("/console/catalog/population.person/new-element", params={"name": "wechat_id"})
    assert asked.headers["location"] == "/console/catalog/population.person/elements/wechat_id"
    form = await wang.get(asked.headers["location"])
    assert "新增信息项" in form.text
    version = str((await _resource(app)).version)
    saved = await wang.post(
        "/console/catalog/population.person/elements/wechat_id",
        {
            "version": version,
            "title": "微信号",
            "type": "string",
            "source_department": POLICE,
            "sharing": "none",
        },
    )
    assert saved.status_code == 303
    assert (await _resource(app)).element("wechat_id") is not None


async def test_only_stewards_edit_and_a_refusal_is_logged(app: Any, officer: MakeOfficer) -> None:
    zhang = await officer("zhang.wei", POLICE, "approver")
    browse = await zhang.get("/console/catalog/population.person")
    assert browse.status_code == 200
    assert "edit-phone" not in browse.text
    refused = await zhang.post(PHONE, await _phone_form(app, title="x"))
    assert refused.status_code == 403
    assert "steward" in refused.text
    [event] = await logged(app, "console.refused")
    assert (event.outcome, event.officer) == ("denied", "zhang.wei")
    assert (await _resource(app)).element("phone").title != "x"


async def _resource_form(app: Any, **changes: str) -> dict[str, str]:
    resource = await _resource(app)
    form = {
        "version": str(resource.version),
        "title": resource.title,
        "description": resource.description,
        "update_cycle": resource.update_cycle.value,
        "method": resource.sharing.method,
        "condition": resource.sharing.condition or "",
        "open_condition": resource.open_condition or "",
    }
    return form | changes


async def test_a_steward_edits_the_resources_own_fields_with_the_same_locking(
    app: Any, officer: MakeOfficer
) -> None:
    wang = await officer("wang.steward", DATA_BUREAU, "steward")
    li = await officer("li.steward", DATA_BUREAU, "steward")
    read_by_wang = await _resource_form(app, update_cycle="weekly")
    untitled = await li.post("/console/catalog/population.person", await _resource_form(app, title=""))
    assert untitled.status_code == 422
    assert 'id="error-title"' in untitled.text
    saved = await li.post(
        "/console/catalog/population.person", await _resource_form(app, title="人口基础信息库")
    )
    assert saved.status_code == 303
    assert (await _resource(app)).title == "人口基础信息库"

    conflict = await wang.post("/console/catalog/population.person", read_by_wang)
    assert conflict.status_code == 409
    assert "人口基础信息库" in conflict.text
    assert (await _resource(app)).update_cycle.value != "weekly"
