"""`exchange catalog validate | apply | export` as an operator runs them."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import REPO_CATALOG
from tests.processes import hub_env, run_cli


def test_apply_is_idempotent_and_prints_the_diff(database_url: str, tmp_path: Path) -> None:
    env = hub_env(database_url=database_url, data_dir=str(tmp_path / "data"))
    dry = run_cli("catalog", "apply", str(REPO_CATALOG), "--dry-run", env=env).stdout
    assert "+ population.person (20 elements)" in dry
    assert "dry run: nothing applied" in dry
    first = run_cli("catalog", "apply", str(REPO_CATALOG), env=env).stdout
    assert "+ legal_entity.entity" in first
    assert "+ 11150400MB1234567Q 赤峰市公安局" in first
    assert run_cli("catalog", "apply", str(REPO_CATALOG), env=env).stdout.strip() == "no changes"


def test_an_edited_file_shows_old_and_new_values_and_breaking_edits_need_the_flag(
    database_url: str, tmp_path: Path
) -> None:
    env = hub_env(database_url=database_url, data_dir=str(tmp_path / "data"))
    catalog = tmp_path / "catalog"
    shutil.copytree(REPO_CATALOG, catalog)
    run_cli("catalog", "apply", str(catalog), env=env)
    path = catalog / "resources" / "legal_entity.entity.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("title: 法人单位基础信息", "title: 法人基础信息", 1), encoding="utf-8")
    changed = run_cli("catalog", "apply", str(catalog), env=env).stdout
    assert "~ legal_entity.entity" in changed
    assert "~ title: '法人单位基础信息' → '法人基础信息'" in changed

    (catalog / "resources" / "geospatial.address.yaml").unlink()
    refused = run_cli("catalog", "apply", str(catalog), env=env, check=False)
    assert refused.returncode == 1
    assert "- geospatial.address  [breaking]" in refused.stdout
    assert "allow_breaking" in refused.stderr
    assert "- geospatial.address" in run_cli("catalog", "apply", str(catalog), "--dry-run", env=env).stdout
    run_cli("catalog", "apply", str(catalog), "--allow-breaking", env=env)
    assert run_cli("catalog", "apply", str(catalog), env=env).stdout.strip() == "no changes"


def test_bad_files_are_listed_and_nothing_is_applied(database_url: str, tmp_path: Path) -> None:
    env = hub_env(database_url=database_url, data_dir=str(tmp_path / "data"))
    catalog = tmp_path / "catalog"
    shutil.copytree(REPO_CATALOG, catalog)
    person = catalog / "resources" / "population.person.yaml"
    person.write_text(
        person.read_text(encoding="utf-8").replace("type: date", "type: day", 1), encoding="utf-8"
    )
    invalid = run_cli("catalog", "validate", str(catalog), env=env, check=False)
    assert invalid.returncode == 1
    assert (
        "resources/population.person.yaml, resource population.person, element birth_date, field type"
        in invalid.stderr
    )
    refused = run_cli("catalog", "apply", str(catalog), env=env, check=False)
    assert refused.returncode == 1
    assert "nothing was applied" in refused.stderr
    assert (
        "+ population.person" in run_cli("catalog", "apply", str(REPO_CATALOG), "--dry-run", env=env).stdout
    )


def test_export_writes_files_that_apply_back_unchanged(database_url: str, tmp_path: Path) -> None:
    env = hub_env(database_url=database_url, data_dir=str(tmp_path / "data"))
    run_cli("catalog", "apply", str(REPO_CATALOG), env=env)
    run_cli("catalog", "export", str(tmp_path / "exported"), env=env)
    assert (tmp_path / "exported" / "resources" / "population.person.yaml").exists()
    assert "valid" in run_cli("catalog", "validate", str(tmp_path / "exported"), env=env).stdout
    assert run_cli("catalog", "apply", str(tmp_path / "exported"), env=env).stdout.strip() == "no changes"
