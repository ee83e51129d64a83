"""`exchange demo`: a synthetic city that is valid, reproducible, and loaded through the hub's own rules."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from exchange.demo.city import MONGOLIAN, generate
from exchange.identifiers import check_ric, normalize_uscc
from tests.processes import free_port, hub_env, serving


def test_the_city_is_valid_and_the_same_for_the_same_seed() -> None:
    chunks = list(generate(3000, seed=7, chunk=1000))
    people = [p for c in chunks for p in c.persons]
    assert len(people) == len({p["subject_id"] for p in people}) == 3000
    for person in people:
        number, fields = person["subject_id"], person["fields"]
        assert check_ric(number).number == number  # the hub's own check (stdnum plus its rules)
        assert number[6:14] == fields["birth_date"].replace("-", "")
        assert fields["sex"] == ("1" if int(number[16]) % 2 else "2")
        assert number[:6] == fields["household_division"]
    assert any(p["fields"].get("name_mongolian") for p in people)
    assert {p["fields"]["name_mongolian"] for p in people if "name_mongolian" in p["fields"]} <= {
        script for _, script in MONGOLIAN
    }
    for entity in (e for c in chunks for e in c.entities):
        assert normalize_uscc(entity["subject_id"]) == entity["subject_id"]
    assert [p["subject_id"] for p in people[:50]] == [
        p["subject_id"] for p in next(generate(50, seed=7, chunk=1000)).persons
    ]
    assert sum(c.conflicts for c in chunks) > 0


def test_the_demo_serves_a_loaded_city_with_its_conflicts_waiting_for_the_source(
    database_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = hub_env(database_url=database_url, data_dir=str(data))
    persons = 400
    conflicts = sum(c.conflicts for c in generate(persons))
    port = free_port()
    with serving("--persons", str(persons), env=env, port=port, command="demo") as base:
        saved = json.loads((data / "demo-credentials.json").read_text(encoding="utf-8"))
        assert saved["loaded"]["persons"] == persons
        police = saved["systems"]["police"]
        token = httpx.post(
            f"{base}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(police["client_id"], police["client_secret"]),
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        to_settle = httpx.get(f"{base}/v1/discrepancies", params={"limit": 500}, headers=headers).json()
        assert len(to_settle["items"]) == conflicts
        quality = httpx.get(f"{base}/v1/quality/resources/population.person", headers=headers).json()
        assert quality["records"] == persons
        assert quality["completeness"] == 1.0
    with serving("--persons", str(persons), env=env, port=free_port(), command="demo"):
        again = json.loads((data / "demo-credentials.json").read_text(encoding="utf-8"))
        assert again == saved, "a second start serves the city it loaded, with the same credentials"
