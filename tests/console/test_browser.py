"""The console in a real browser: Debian's Chromium, headless, driven by Playwright, against `exchange demo`
running as its own process. A steward edits the catalogue, an approver decides a request, an auditor searches
the log and verifies the chain. Each page is photographed (EXCHANGE_SCREENSHOTS=docs/screenshots keeps them).

Without Chromium the tests are skipped, unless EXCHANGE_REQUIRE_BROWSER=1 (CI sets it): then they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _admin, _libpq_url
from tests.processes import free_port, hub_env, serving

playwright = pytest.importorskip("playwright.async_api")
CHROMIUM = os.environ.get("EXCHANGE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# As the machine's notes advise: no sandbox as root, and no background traffic to a network we do not have.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not Path(CHROMIUM).exists():
    if os.environ.get("EXCHANGE_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"no Chromium at {CHROMIUM}; install Debian's chromium package")
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
async def demo(
    server_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Any]:
    """`exchange demo` on a database of its own: its base URL and the officers' passwords."""
    name = f"exchange_browser_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    data = tmp_path_factory.mktemp("demo")
    env = hub_env(database_url=_libpq_url(server_url, name), data_dir=str(data), log_level="WARNING")
    try:
        with serving(
            "--persons", "300", env=env, port=free_port(), command="demo", ready_timeout=120
        ) as base:
            saved = json.loads((data / "demo-credentials.json").read_text(encoding="utf-8"))
            yield base, saved["officers"]
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[Any]:
    async with playwright.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = os.environ.get("EXCHANGE_SCREENSHOTS")
    folder = Path(kept) if kept else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Officer:
    """One person's browser tab, signed in through the sign-in page."""

    def __init__(self, context: Any, page: Any, shots: Path) -> None:
        self.context = context
        self.page = page
        self.shots = shots
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    @classmethod
    async def sign_in(cls, chromium: Any, demo: Any, shots: Path, username: str) -> Officer:
        base, officers = demo
        context = await chromium.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
        officer = cls(context, await context.new_page(), shots)
        await officer.page.goto(f"{base}/console")
        await officer.page.fill("input[name=username]", username)
        await officer.page.fill("input[name=password]", officers[username]["password"])
        await officer.page.click("button[type=submit]")
        await officer.page.wait_for_url(f"{base}/console")
        return officer

    async def shoot(self, name: str) -> None:
        await self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    async def close(self) -> None:
        await self.context.close()
        assert self.errors == [], "the pages raised script or loading errors"


async def test_the_sign_in_page_refuses_a_wrong_password(chromium: Any, demo: Any, shots: Path) -> None:
    base, _ = demo
    context = await chromium.new_context(viewport={"width": 1360, "height": 700}, locale="zh-CN")
    page = await context.new_page()
    await page.goto(f"{base}/console/catalog")
    assert page.url == f"{base}/console/sign-in?next=/console/catalog"
    await page.screenshot(path=str(shots / "sign-in.png"))
    await page.fill("input[name=username]", "steward")
    await page.fill("input[name=password]", "not-the-password")
    await page.click("button[type=submit]")
    assert "用户名或密码错误" in await page.inner_text("[data-testid=sign-in-error]")
    await context.close()


async def test_a_steward_edits_an_element_with_inline_validation(
    chromium: Any, demo: Any, shots: Path
) -> None:
    steward = await Officer.sign_in(chromium, demo, shots, "steward")
    page = steward.page
    assert "%" in await page.inner_text("[data-testid=connection-rate]")
    await steward.shoot("dashboard")
    await page.click("text=资源目录")
    await steward.shoot("catalogue")
    await page.click("a[href='/console/catalog/population.person']")
    await steward.shoot("resource")
    await page.click("[data-testid=edit-phone]")
    await page.fill("input[name=length]", "twenty")
    await page.dispatch_event("input[name=length]", "change")
    await page.wait_for_selector("[data-testid=inline-errors]")
    assert "not a number" in await page.inner_text("[data-testid=inline-errors]")
    await steward.shoot("element-inline-validation")
    await page.fill("input[name=length]", "20")
    await page.fill("input[name=title]", "本人联系电话")
    await page.click("[data-testid=save]")
    await page.wait_for_selector("[data-testid=saved]")
    assert "本人联系电话" in await page.inner_text("[data-testid=elements]")
    await page.click("text=修改历史")
    assert "本人联系电话" in await page.inner_text("main")
    await steward.shoot("history")
    await steward.close()


async def test_an_approver_approves_a_request_from_the_inbox(chromium: Any, demo: Any, shots: Path) -> None:
    approver = await Officer.sign_in(chromium, demo, shots, "police.approver")
    page = approver.page
    await approver.shoot("dashboard-approver")
    await page.click("text=共享申请")
    await page.wait_for_selector("[data-testid=requests]")
    await approver.shoot("sharing-inbox")
    await page.click("[data-testid=requests] tr:has-text('household_status') a")
    for element in ["name", "birth_date", "household_address", "household_status"]:
        await page.check(f"[data-testid=approve-{element}]")
    await approver.shoot("sharing-request")
    await page.click("[data-testid=decide]")
    await page.wait_for_selector("[data-testid=decided]")
    assert "已同意" in await page.inner_text("h1")
    await page.click("text=授权")
    await approver.shoot("grants")
    await page.click("text=校核纠错")
    await page.wait_for_selector("[data-testid=discrepancies]")
    await approver.shoot("discrepancies")
    await page.click("[data-testid=discrepancies] tbody tr:first-child a")
    await approver.shoot("discrepancy")
    await approver.close()


async def test_an_auditor_finds_the_approval_and_verifies_the_chain(
    chromium: Any, demo: Any, shots: Path
) -> None:
    auditor = await Officer.sign_in(chromium, demo, shots, "auditor")
    page = auditor.page
    await page.click("text=审计日志")
    await page.fill("[data-testid=filter-officer]", "police.approver")
    await page.click("[data-testid=search]")
    await page.wait_for_selector("[data-testid=events]")
    assert "sharing.decision" in await page.inner_text("[data-testid=events]")
    await page.click("[data-testid=verify]")
    await page.wait_for_selector("[data-testid=verification]")
    assert "日志完整" in await page.inner_text("[data-testid=verification]")
    await auditor.shoot("audit")
    await auditor.close()
