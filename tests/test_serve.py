"""The hub as an operator runs it: `exchange` commands and `exchange serve` as real processes, real HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.identifiers import valid_uscc
from tests.processes import cli_json, free_port, hub_env, run_cli, serving


def _token(base: str, client_id: str, secret: str) -> str:
    response = httpx.post(
        f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret), timeout=10
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _me(base: str, token: str) -> httpx.Response:
    return httpx.get(f"{base}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_a_client_made_on_the_command_line_reaches_an_authenticated_route_over_http(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = hub_env(database_url=database_url, data_dir=str(tmp_path), public_url=f"http://127.0.0.1:{port}")
    code = valid_uscc()
    assert (
        cli_json("departments", "create", "--code", code, "--name", "赤峰市公安局", env=env)["code"] == code
    )
    creds = cli_json(
        "clients", "create", "--department", code, "--role", "publisher", "--role", "consumer", env=env
    )
    assert creds["client_secret"].startswith("cs_")

    with serving("--workers", "2", env=env, port=port) as base:
        token = _token(base, creds["client_id"], creds["client_secret"])
        # Two worker processes share keys through the database: every request verifies, whichever serves it.
        for _ in range(6):
            me = _me(base, token)
            assert me.status_code == 200
            assert me.json() == {
                "client_id": creds["client_id"],
                "department": code,
                "roles": ["consumer", "publisher"],
            }
        assert _me(base, token + "x").status_code == 401
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert 'exchange_http_requests_total{method="GET",route="/v1/me",status="200"} 6.0' in metrics


def test_cli_errors_are_clear_and_change_nothing(database_url: str, tmp_path: Path) -> None:
    env = hub_env(database_url=database_url, data_dir=str(tmp_path))
    bad = run_cli("departments", "create", "--code", "123", "--name", "x", env=env, check=False)
    assert bad.returncode == 1
    assert "统一社会信用代码" in bad.stderr
    unknown = run_cli(
        "clients", "create", "--department", valid_uscc(), "--role", "consumer", env=env, check=False
    )
    assert unknown.returncode == 1
    assert "No department has the code" in unknown.stderr
    role = run_cli("clients", "create", "--department", valid_uscc(), "--role", "root", env=env, check=False)
    assert role.returncode == 2


def test_a_configured_database_behind_the_schema_is_refused_until_upgraded(
    empty_database_url: str, tmp_path: Path
) -> None:
    env = hub_env(database_url=empty_database_url, data_dir=str(tmp_path))
    refused = run_cli("departments", "create", "--code", valid_uscc(), "--name", "某局", env=env, check=False)
    assert refused.returncode == 1
    assert "exchange db upgrade" in refused.stderr
    run_cli("db", "upgrade", env=env)
    run_cli("departments", "create", "--code", valid_uscc(), "--name", "某局", env=env)


def test_the_embedded_database_serves_a_fresh_data_directory(tmp_path: Path) -> None:
    port = free_port()
    env = hub_env(data_dir=str(tmp_path / "hub-data"), public_url=f"http://127.0.0.1:{port}")
    with serving(env=env, port=port) as base:
        code = valid_uscc()
        cli_json("departments", "create", "--code", code, "--name", "赤峰市市场监督管理局", env=env)
        creds = cli_json("clients", "create", "--department", code, "--role", "steward", env=env)
        token = _token(base, creds["client_id"], creds["client_secret"])
        assert _me(base, token).status_code == 200
        # Started from the repository, serve loaded catalog/ into the fresh database.
        resources = httpx.get(
            f"{base}/v1/catalog/resources", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).json()["items"]
        assert {r["code"] for r in resources} == {
            "population.person",
            "legal_entity.entity",
            "geospatial.address",
        }
    pgdata = tmp_path / "hub-data" / "pg"
    assert (pgdata / "PG_VERSION").exists()
    assert not (pgdata / "postmaster.pid").exists(), "the embedded server outlived `exchange serve`"
