"""Cross-checking: 民政 reports N people's names and birth dates (one name in ten differs) after 公安
published them, so each report is compared on arrival; then a reconciliation run goes over all N again.

Figures: reports compared per second on the publish path (against the plain first load of the same number
of canonical records, measured in the same run), and reported values reconciled per second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson

from bench.data import person_lines
from bench.hub import CIVIL_AFFAIRS, POLICE, running_hub
from bench.publish import send_lines


def reported_lines(count: int) -> Iterator[bytes]:
    for n, line in enumerate(person_lines(count)):
        fields = orjson.loads(line)["fields"]
        name = fields["name"] + ("甲" if n % 10 == 0 else "")
        body = {
            "subject_id": orjson.loads(line)["subject_id"],
            "fields": {"name": name, "birth_date": fields["birth_date"]},
        }
        yield orjson.dumps(body) + b"\n"


def _reconcile(base: str, token: str) -> tuple[float, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    run = httpx.post(
        f"{base}/v1/crosscheck/runs",
        json={"resource": "population.person", "department": CIVIL_AFFAIRS},
        headers=headers,
    ).json()
    while run["status"] not in {"done", "failed"}:
        time.sleep(0.2)
        run = httpx.get(f"{base}/v1/crosscheck/runs/{run['id']}", headers=headers).json()
    assert run["status"] == "done", run
    return time.perf_counter() - started, run["report"]


def run(count: int) -> dict[str, Any]:
    with running_hub(workers=2) as hub:
        canonical_rate, _, _ = send_lines(hub, hub.token(POLICE, "publisher"), person_lines(count), count)
        civil = hub.token(CIVIL_AFFAIRS, "publisher", "consumer")
        reported_rate, reported, _ = send_lines(hub, civil, reported_lines(count), count)
        seconds, report = _reconcile(hub.base, civil)
    assert reported["discrepancies"] == count // 10 + (1 if count % 10 else 0), reported
    values = sum(row["compared"] for row in report["elements"])
    assert values == 2 * count, report
    return {
        "records": count,
        "canonical_first_load_records_per_s": round(canonical_rate),
        "reports_compared_on_publish_records_per_s": round(reported_rate),
        "discrepancies_opened_on_publish": reported["discrepancies"],
        "reconciliation_seconds": round(seconds, 2),
        "reconciled_values_per_s": round(values / seconds),
    }
