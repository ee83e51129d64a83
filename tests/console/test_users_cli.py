"""`exchange users`: operators create, list and disable officers from the command line."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.console.conftest import PASSWORD, sign_in
from tests.fixtures_departments import POLICE
from tests.processes import EXCHANGE, hub_env, run_cli


def _create(env: dict[str, str], *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXCHANGE, "users", "create", *args, "--password-stdin"],
        input=password + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.usefixtures("catalog_loaded")
async def test_an_officer_created_on_the_command_line_signs_in_until_disabled(
    database_url: str, tmp_path: Path, browsers: Callable[[], httpx.AsyncClient]
) -> None:
    env = hub_env(database_url=database_url, data_dir=str(tmp_path / "data"))
    created = _create(env, "zhang.wei", "--department", POLICE, "--role", "approver", "--name", "张伟")
    assert created.returncode == 0, created.stderr
    listed = run_cli("users", "list", env=env).stdout
    assert "zhang.wei" in listed
    assert "approver" in listed
    assert (await sign_in(browsers(), "zhang.wei")).status_code == 303

    run_cli("users", "disable", "zhang.wei", env=env)
    assert (await sign_in(browsers(), "zhang.wei")).status_code == 401


@pytest.mark.usefixtures("catalog_loaded")
def test_bad_officers_are_refused_with_reasons(database_url: str, tmp_path: Path) -> None:
    env = hub_env(database_url=database_url, data_dir=str(tmp_path / "data"))
    weak = _create(
        env, "li.jing", "--department", POLICE, "--role", "auditor", "--name", "李静", password="short"
    )
    assert weak.returncode != 0
    assert "at least 12 characters" in weak.stdout + weak.stderr
    unknown_role = _create(env, "li.jing", "--department", POLICE, "--role", "publisher", "--name", "李静")
    assert unknown_role.returncode != 0
    assert "roles" in unknown_role.stdout + unknown_role.stderr
    assert (
        _create(env, "li.jing", "--department", POLICE, "--role", "auditor", "--name", "李静").returncode == 0
    )
    again = _create(env, "li.jing", "--department", POLICE, "--role", "auditor", "--name", "李静")
    assert again.returncode != 0
    assert "exists already" in again.stdout + again.stderr
