"""Bulk reconciliation: 民政 reports the phones and names of N people 公安 is the source of, then a run
compares every report with the canonical values (`POST /v1/crosscheck/runs`).

The phones are reported before 公安 publishes, so nothing can be compared on arrival and the run opens
their discrepancies; the names after, so each is compared on arrival (the publish figure) and the run finds
them kept already. Known shares of both differ (one name in 10, one phone in 25), agree only after
normalisation (one in 20: an ideographic space before a name, +86 before a phone), are dated before the
canonical value (stale), are never reported, or concern people 公安 never published: the run's report is
checked against all of them. A second run then goes over the same reports again.

Figures: observations reconciled per second (the run as the hub timed it), and reports compared per
second on the publish path against the plain first load of the canonical records, same run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import orjson

from bench.data import person_id, person_lines
from bench.hub import CIVIL_AFFAIRS, POLICE, Hub, running_hub
from bench.publish import send_lines

STALE_SINCE = "2020-01-01T00:00:00+08:00"  # before any canonical value: such a report is stale


def _every(period: int, remainder: int, count: int) -> int:
    """How many n in range(count) have n % period == remainder."""
    return max(0, (count - remainder + period - 1) // period)


def _people(count: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
    for n, line in enumerate(person_lines(count)):
        body = orjson.loads(line)
        yield n, body["subject_id"], body["fields"]


def phone_lines(count: int) -> Iterator[bytes]:
    """One in 25 differs, one in 20 carries +86, one in 50 is not reported."""
    for n, subject, fields in _people(count):
        if n % 50 == 49:
            continue
        phone = fields["phone"]
        if n % 25 == 1:
            phone = phone[:2] + ("8" if phone[2] == "9" else "9") + phone[3:]
        elif n % 20 == 3:
            phone = f"+86 {phone}"
        yield orjson.dumps({"subject_id": subject, "fields": {"phone": phone}}) + b"\n"


def name_lines(count: int, extra: int) -> Iterator[bytes]:
    """One in 10 differs, one in 20 starts with an ideographic space (agrees), one in 100 is dated before
    the canonical value (one of those); ``extra`` more people 公安 never published."""
    for n, subject, fields in _people(count):
        body: dict[str, Any] = {"subject_id": subject, "fields": {"name": fields["name"]}}
        if n % 10 == 0:
            body["fields"]["name"] += "甲"
        elif n % 20 == 5:
            body["fields"]["name"] = "\u3000" + fields["name"]
            if n % 100 == 5:
                body["valid_from"] = STALE_SINCE
        yield orjson.dumps(body) + b"\n"
    for n in range(count, count + extra):
        yield orjson.dumps({"subject_id": person_id(n), "fields": {"name": "王伟"}}) + b"\n"


def expected(count: int, extra: int) -> dict[str, dict[str, int]]:
    """The run's report per element, as the generated data implies it."""
    name_stale = _every(100, 5, count)
    name_disagreeing = _every(10, 0, count)
    phones = count - _every(50, 49, count)
    phone_disagreeing = _every(25, 1, count)
    return {
        "name": {
            "compared": count - name_stale,
            "agreeing": count - name_stale - name_disagreeing,
            "disagreeing": name_disagreeing,
            "stale": name_stale,
            "missing_canonical": extra,
            "missing_reported": 0,
        },
        "phone": {
            "compared": phones,
            "agreeing": phones - phone_disagreeing,
            "disagreeing": phone_disagreeing,
            "stale": 0,
            "missing_canonical": 0,
            "missing_reported": count - phones,
        },
    }


def _reconcile(hub: Hub, token: str) -> tuple[float, float, dict[str, Any]]:
    """Start a run and wait for it: the run's seconds as the hub timed it, the wall seconds, its report."""
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    run = httpx.post(
        f"{hub.base}/v1/crosscheck/runs",
        json={"resource": "population.person", "department": CIVIL_AFFAIRS},
        headers=headers,
    ).json()
    while run["status"] not in {"done", "failed"}:
        time.sleep(0.05)
        run = httpx.get(f"{hub.base}/v1/crosscheck/runs/{run['id']}", headers=headers).json()
    wall = time.perf_counter() - started
    assert run["status"] == "done", run
    took = datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["started_at"])
    return took.total_seconds(), wall, run["report"]


def run(records: int) -> dict[str, Any]:
    extra = max(1, records // 100)
    with running_hub() as hub:
        civil = hub.token(CIVIL_AFFAIRS, "publisher", "consumer")
        phones = records - _every(50, 49, records)
        _, early, _ = send_lines(hub, civil, phone_lines(records), phones)
        canonical_rate, _, _ = send_lines(hub, hub.token(POLICE, "publisher"), person_lines(records), records)
        reported_rate, named, _ = send_lines(hub, civil, name_lines(records, extra), records + extra)
        meter = hub.cpu()
        seconds, wall, report = _reconcile(hub, civil)
        cpu = meter.stop()
        again, _, repeated = _reconcile(hub, civil)
        discrepancies = hub.sql("SELECT count(*) FROM discrepancies WHERE status = 'open'")
    want = expected(records, extra)
    assert (early["observations"], early["discrepancies"]) == (phones, 0), early
    assert named["discrepancies"] == want["name"]["disagreeing"], named
    elements = {row.pop("element"): row for row in report["elements"]}
    assert elements == want, report
    assert report["subjects_reported"] == records + extra, report
    assert report["discrepancies_opened"] == want["phone"]["disagreeing"], report
    assert discrepancies == want["name"]["disagreeing"] + want["phone"]["disagreeing"], discrepancies
    assert {row.pop("element"): row for row in repeated["elements"]} == want, repeated
    assert repeated["discrepancies_opened"] == 0, repeated
    observations = sum(row["compared"] + row["stale"] + row["missing_canonical"] for row in want.values())
    return {
        "records": records,
        "observations_reconciled": observations,
        "reconciliation_seconds": round(seconds, 2),
        "observations_per_s": round(observations / seconds),
        "reconciliation_wall_seconds": round(wall, 2),
        "discrepancies_opened": report["discrepancies_opened"],
        "reconciliation_cpu_s": cpu,
        "rerun_seconds": round(again, 2),
        "rerun_observations_per_s": round(observations / again),
        "canonical_first_load_records_per_s": round(canonical_rate),
        "reports_compared_on_publish_records_per_s": round(reported_rate),
        "discrepancies_opened_on_publish": named["discrepancies"],
    }
