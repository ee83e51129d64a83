"""`exchange-client` as a department's operator runs it: a real process, configured by its environment or a
profile, talking to a live hub."""

from __future__ import annotations

import json
import subprocess
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey

from tests.client.conftest import DATA_OFFICE, EXCHANGE_CLIENT, PERSON, Hub, new_person
from tests.fixtures_departments import HEALTH, MARKET, POLICE

PENSION = "pension-qualification-certification"
REGISTRATION = "enterprise-registration-review"


def client_cli(*args: str, env: dict[str, str], code: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [EXCHANGE_CLIENT, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == code, f"exchange-client {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def client_json(*args: str, env: dict[str, str], code: int = 0) -> Any:
    return json.loads(client_cli("--json", *args, env=env, code=code).stdout)


def test_a_department_publishes_asks_decides_reads_and_cross_checks_from_the_command_line(
    hub: Hub, tmp_path: Path
) -> None:
    police = hub.cli_env(hub.credentials(POLICE, "publisher"))
    health = hub.cli_env(hub.credentials(HEALTH, "consumer"))
    auditor = hub.cli_env(hub.credentials(DATA_OFFICE, "auditor"))
    people = [new_person(), new_person()]
    table = tmp_path / "people.csv"
    table.write_text(f"id,姓名,sex\n{people[0]},那仁,1\n{people[1]},其木格,2\n", encoding="utf-8")
    published = client_cli(
        "publish",
        str(table),
        "--resource",
        PERSON,
        "--subject-column",
        "id",
        "--map",
        "姓名=name",
        env=police,
    )
    assert "accepted 2, rejected 0" in published.stdout
    bad = tmp_path / "bad.ndjson"
    bad.write_text(json.dumps({"subject_id": new_person(), "fields": {"sex": "7"}}) + "\n", encoding="utf-8")
    rejected = client_json("publish", str(bad), "--resource", PERSON, env=police, code=1)
    assert (rejected["rejected"], rejected["errors"][0]["line"]) == (1, 1)

    refused = client_cli(
        *("query", "--resource", PERSON, "--purpose", PENSION, "--subject", people[0], "--field", "name"),
        env=health,
        code=1,
    )
    assert "403 unauthorized_field" in refused.stderr
    assert refused.stdout == ""

    asked = client_json(
        *("requests", "create", "--resource", PERSON, "--element", "name", "--element", "birth_date"),
        *("--access", "read", "--purpose", PENSION, "--legal-basis", "《社会保险法》"),
        *("--justification", "待遇领取资格认证", "--valid-until", str(date.today() + timedelta(days=60))),
        env=health,
    )
    assert asked["status"] == "pending"
    pending = client_json("requests", "list", "--role", "provider", "--status", "pending", env=police)
    assert asked["id"] in [item["id"] for item in pending["items"]]
    decided = client_json(
        "requests", "decide", asked["id"], "--approve", "name", "--reject", "birth_date=不需要", env=police
    )
    assert decided["status"] == "partially_granted"

    query = (
        "query",
        "--resource",
        PERSON,
        "--purpose",
        PENSION,
        "--subject",
        people[0],
        "--subject",
        people[1],
    )
    read = client_json(*query, "--field", "name", env=health)
    assert [r["fields"] for r in read["records"]] == [{"name": "那仁"}, {"name": "其木格"}]
    assert "其木格" in client_cli(*query, "--field", "name", env=health).stdout
    verified = client_json(
        *("verify", "--resource", PERSON, "--purpose", PENSION, "--subject", people[1]),
        *("--value", "name=其木格"),
        env=health,
    )
    assert verified["matches"] == {"name": True}

    reported = client_json(
        *("discrepancies", "report", "--resource", PERSON, "--subject", people[0], "--element", "name"),
        *("--value", "那日", "--note", "医保登记姓名"),
        env=health,
    )
    discrepancy = reported["discrepancy"]["id"]
    listed = client_json("discrepancies", "list", "--role", "source", "--status", "open", env=police)
    assert discrepancy in [item["id"] for item in listed["items"]]
    corrected = client_json(
        *("discrepancies", "resolve", discrepancy, "--outcome", "corrected"),
        *("--note", "核对户籍档案后更正", "--value", "那日"),
        env=police,
    )
    assert corrected["status"] == "corrected"

    trail = client_json("audit", "search", "--subject", people[0], "--action", "records.query", env=auditor)
    assert [e["outcome"] for e in trail["items"] if e["department"] == HEALTH] == [
        "allowed",
        "allowed",
        "denied",
    ]


def test_following_a_subscription_with_a_profile_and_a_private_key(hub: Hub, tmp_path: Path) -> None:
    key = ECKey.generate_key("P-256", private=True)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "market.jwk.json").write_text(json.dumps(key.as_dict(private=True)))
    market = hub.credentials(MARKET, "consumer", public_jwk=key.as_dict(private=False))
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(
        f'[market]\nurl = "{hub.url}"\nclient_id = "{market.client_id}"\nkey_file = "keys/market.jwk.json"\n',
        encoding="utf-8",
    )
    env = hub.cli_env(hub.credentials(POLICE, "publisher"), EXCHANGE_PROFILES=str(profiles))
    client_json(
        *("--profile", "market", "requests", "create", "--resource", PERSON, "--element", "sex"),
        *("--access", "subscribe", "--purpose", REGISTRATION, "--legal-basis", "《市场主体登记管理条例》"),
        *("--justification", "法定代表人信息变动", "--valid-until", str(date.today() + timedelta(days=30))),
        env=env,
    )

    subscribe = ["subscribe", "--resource", PERSON, "--element", "sex", "--purpose", REGISTRATION]
    follower = subprocess.Popen(
        # the profile's client id and key win over the police credentials in the environment
        [EXCHANGE_CLIENT, "--profile", "market", "--json", *subscribe, "--follow", "--max-events", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        subscription = json.loads(follower.stdout.readline())
        assert subscription["status"] == "active"
        person = new_person()
        client_cli("publish", str(_ndjson(tmp_path, person)), "--resource", PERSON, env=env)
        stdout, stderr = follower.communicate(timeout=60)
    finally:
        follower.kill()
    assert follower.returncode == 0, stderr
    events = [json.loads(line) for line in stdout.splitlines()]
    assert [(e["type"], e["data"]["subject_id"], e["data"]["elements"]) for e in events] == [
        ("cn.gov.exchange.record.changed", person, ["sex"])
    ]


def _ndjson(directory: Path, person: str) -> Path:
    path = directory / "change.ndjson"
    path.write_text(json.dumps({"subject_id": person, "fields": {"sex": "1"}}) + "\n", encoding="utf-8")
    return path
