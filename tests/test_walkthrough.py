"""docs/walkthrough.md runs as written: every `sh` block, in order, against a live hub."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.conftest import REPO_CATALOG
from tests.processes import EXCHANGE, REPO_ROOT, free_port, hub_env, serving

WALKTHROUGH = REPO_ROOT / "docs" / "walkthrough.md"


def _script() -> str:
    blocks = re.findall(r"```sh\n(.*?)```", WALKTHROUGH.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 6
    return "\n".join(blocks)


def test_the_walkthrough_runs_as_written(database_url: str, tmp_path: Path) -> None:
    env = hub_env(
        database_url=database_url,
        data_dir=str(tmp_path / "data"),
        catalog_dir=str(REPO_CATALOG),
        delivery_in_serve="false",
        log_level="WARNING",
    )
    port = free_port()
    with serving(env=env, port=port) as base:
        shell_env = env | {
            "EXCHANGE_URL": base,
            "PATH": f"{Path(EXCHANGE).parent}{os.pathsep}{os.environ['PATH']}",
        }
        result = subprocess.run(
            ["bash", "-c", _script()],
            cwd=REPO_ROOT,
            env=shell_env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "张三" in result.stdout
    assert "the log shows:" in result.stdout
    assert "discrepancies.resolve" in result.stdout
