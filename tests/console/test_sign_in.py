"""Officers sign in with a password, get a signed HttpOnly session cookie, and every form needs the session's
CSRF token; signing out, disabling the officer or too many wrong passwords shut the door at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from exchange.auth import officers
from exchange.db.session import transaction
from tests.console.conftest import PASSWORD, MakeOfficer, csrf_of, sign_in
from tests.console.events import logged
from tests.fixtures_departments import CIVIL_AFFAIRS, POLICE


async def test_an_officer_signs_in_and_the_session_cookie_is_signed_http_only_and_same_site(
    app: Any, officer: MakeOfficer
) -> None:
    zhang = await officer("zhang.wei", POLICE, "approver", name="张伟")
    cookie = next(c for c in zhang.client.cookies.jar if c.name == "exchange_console")
    assert cookie.path == "/console"
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert (cookie.get_nonstandard_attr("SameSite") or "").lower() == "lax"
    assert "." in (cookie.value or "")  # token.signature

    page = await zhang.get("/console")
    assert "张伟" in page.text
    [event] = await logged(app, "console.sign_in")
    assert (event.outcome, event.officer, event.department) == ("allowed", "zhang.wei", POLICE)


async def test_a_forged_or_tampered_cookie_opens_nothing(officer: MakeOfficer) -> None:
    zhang = await officer("zhang.wei", POLICE, "approver")
    value = zhang.client.cookies.get("exchange_console", path="/console")
    assert value is not None
    token, _, signature = value.rpartition(".")
    zhang.client.cookies.set("exchange_console", f"{token}x.{signature}", path="/console")
    answer = await zhang.get("/console/catalog")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in?next=/console/catalog"


async def test_a_wrong_password_is_refused_and_five_lock_the_officer_out(
    app: Any, officer: MakeOfficer, browsers: Callable[[], httpx.AsyncClient]
) -> None:
    await officer("li.jing", CIVIL_AFFAIRS, "auditor")
    browser = browsers()
    for _ in range(5):
        refused = await sign_in(browser, "li.jing", "not the password")
        assert refused.status_code == 401
        assert "exchange_console" not in refused.headers.get("set-cookie", "")
    locked = await sign_in(browser, "li.jing", PASSWORD)
    assert locked.status_code == 429
    assert "exchange_console=" not in locked.headers.get("set-cookie", "")
    denied = [e for e in await logged(app, "console.sign_in") if e.outcome == "denied"]
    assert [e.reason for e in denied] == ["wrong password"] * 5 + ["locked"]

    async with transaction(app.state.sessionmaker) as session:
        await officers.set_password(session, "li.jing", PASSWORD)
    assert (await sign_in(browser, "li.jing", PASSWORD)).status_code == 303


async def test_an_unknown_officer_gets_the_same_answer_as_a_wrong_password(
    officer: MakeOfficer, browsers: Callable[[], httpx.AsyncClient]
) -> None:
    await officer("li.jing", CIVIL_AFFAIRS, "auditor")
    unknown = await sign_in(browsers(), "nobody.here", PASSWORD)
    wrong = await sign_in(browsers(), "li.jing", "wrong")
    assert unknown.status_code == wrong.status_code == 401
    assert "用户名或密码错误" in unknown.text
    assert "用户名或密码错误" in wrong.text


async def test_the_sign_in_form_needs_its_own_token(browsers: Callable[[], httpx.AsyncClient]) -> None:
    browser = browsers()
    answer = await browser.post(
        "/console/sign-in",
        data={"username": "x", "password": "y", "csrf_token": "made-up", "next": "/console"},
    )
    assert answer.status_code == 403


async def test_a_form_without_the_session_token_changes_nothing(officer: MakeOfficer) -> None:
    zhang = await officer("zhang.wei", POLICE, "approver")
    forged = await zhang.client.post("/console/sign-out", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    missing = await zhang.client.post("/console/sign-out")
    assert missing.status_code == 403
    assert (await zhang.get("/console")).status_code == 200  # still signed in


async def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(
    app: Any, officer: MakeOfficer
) -> None:
    zhang = await officer("zhang.wei", POLICE, "approver")
    copied = dict(zhang.client.cookies)
    out = await zhang.post("/console/sign-out")
    assert out.status_code == 303
    assert out.headers["location"] == "/console/sign-in"
    zhang.client.cookies.update(copied)
    assert (await zhang.get("/console")).status_code == 303
    [event] = await logged(app, "console.sign_out")
    assert event.officer == "zhang.wei"


async def test_disabling_an_officer_cuts_them_off_at_once(app: Any, officer: MakeOfficer) -> None:
    zhang = await officer("zhang.wei", POLICE, "approver")
    async with transaction(app.state.sessionmaker) as session:
        await officers.disable_officer(session, "zhang.wei")
    assert (await zhang.get("/console")).status_code == 303
    assert (await sign_in(zhang.client, "zhang.wei")).status_code == 401


async def test_after_signing_in_the_officer_lands_where_they_wanted_but_never_on_another_site(
    officer: MakeOfficer, browsers: Callable[[], httpx.AsyncClient]
) -> None:
    await officer("zhang.wei", POLICE, "approver")
    browser = browsers()
    asked = await browser.get("/console/sharing")
    assert asked.headers["location"] == "/console/sign-in?next=/console/sharing"
    for target, landing in [("/console/sharing", "/console/sharing"), ("https://evil.example/", "/console")]:
        form = await browser.get(f"/console/sign-in?next={target}")
        answer = await browser.post(
            "/console/sign-in",
            data={
                "username": "zhang.wei",
                "password": PASSWORD,
                "csrf_token": csrf_of(form.text),
                "next": target,
            },
        )
        assert answer.headers["location"] == landing


async def test_console_pages_carry_security_headers_and_are_not_cached(officer: MakeOfficer) -> None:
    zhang = await officer("zhang.wei", POLICE, "approver")
    page = await zhang.get("/console/catalog")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    script = await zhang.get("/console/static/htmx.min.js")
    assert script.status_code == 200
    assert "cache-control" not in script.headers


async def test_the_officer_reads_english_when_they_choose_it(officer: MakeOfficer) -> None:
    zhang = await officer("zhang.wei", POLICE, "approver")
    assert "资源目录" in (await zhang.get("/console/catalog")).text
    switched = await zhang.get("/console/language/en?next=/console/catalog")
    assert switched.headers["location"] == "/console/catalog"
    page = await zhang.get("/console/catalog")
    assert "Sharing catalogue" in page.text
    assert 'lang="en"' in page.text
