"""`python -m bench [SCENARIO ...] [--smoke] [--json FILE]`: the hub's benchmarks, each against the hub as
`exchange serve` runs it in production mode, with its floor measured in the same run where it has one.

Scenarios: read, publish, audit, delivery, reconcile, startup (the issue's six, `all` runs them in this
order), and console and soak (extras; soak runs only when named). `--smoke` runs each at a tiny size, to
prove the benchmarks still work (CI); the figures then mean nothing. A table is printed and every figure is
written to the JSON file with the date and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Target:
    figure: str
    at_least: float | None = None
    at_most: float | None = None
    label: str = ""

    def verdict(self, figures: dict[str, Any]) -> str:
        value = figures.get(self.figure)
        if not isinstance(value, int | float):
            return "-"
        if self.at_least is not None and value < self.at_least:
            return "missed"
        if self.at_most is not None and value > self.at_most:
            return "missed"
        return "met"

    def text(self) -> str:
        bound = f">= {self.at_least:,g}" if self.at_least is not None else f"<= {self.at_most:,g}"
        return f"{bound} {self.label}".strip()


# The targets, for the full-size figures (a smoke run is judged by nothing).
TARGETS: dict[str, list[Target]] = {
    "read": [
        Target("ratio_to_floor", at_least=0.5, label="x floor"),
        Target("p99_ms", at_most=50, label="ms"),
    ],
    "publish": [
        Target("first_load_records_per_s", at_least=30_000, label="records/s"),
        Target("republish_speedup", at_least=2, label="x first load"),
        Target("hub_peak_memory_mb", at_most=512, label="MB"),
    ],
    "audit": [
        Target("append_events_per_s", at_least=10_000, label="events/s"),
        Target("subject_search_p95_ms", at_most=50, label="ms"),
        Target("verified_events_per_s", at_least=200_000, label="events/s"),
    ],
    "delivery": [
        Target("deliveries_per_s", at_least=3_000, label="deliveries/s"),
        Target("p95_ms", at_most=1_000, label="ms publish to delivery"),
    ],
    "reconcile": [Target("observations_per_s", at_least=100_000, label="observations/s")],
    "startup": [
        Target("fresh_data_dir_s", at_most=5, label="s"),
        Target("existing_data_dir_s", at_most=5, label="s"),
    ],
}
ORDER = ["read", "publish", "audit", "delivery", "reconcile", "startup", "console"]


def _scenarios(args: argparse.Namespace) -> dict[str, Callable[[], list[dict[str, Any]]]]:
    """Each scenario as the runs it makes (several sizes show how a figure scales)."""
    smoke = args.smoke

    def read() -> list[dict[str, Any]]:
        from bench import read

        seconds = args.seconds or (2 if smoke else 20)
        return [
            read.run(seconds, args.connections or (4 if smoke else 32), subjects=1000 if smoke else 10_000)
        ]

    def publish() -> list[dict[str, Any]]:
        from bench import publish

        sizes = args.records or ([2000] if smoke else [100_000, 1_000_000])
        return [publish.run(size) for size in sizes]

    def audit() -> list[dict[str, Any]]:
        from bench import audit

        sizes = args.events or ([20_000] if smoke else [1_000_000, 10_000_000])
        seconds = args.seconds or (2 if smoke else 10)
        return [audit.run(size, seconds=seconds) for size in sizes]

    def delivery() -> list[dict[str, Any]]:
        from bench import delivery

        return [delivery.run(args.changes or (200 if smoke else 100_000))]

    def reconcile() -> list[dict[str, Any]]:
        from bench import reconcile

        # 500,000 people: a million observations (names and phones); a tenth of that shows the growth
        sizes = args.records or ([2000] if smoke else [50_000, 500_000])
        return [reconcile.run(size) for size in sizes]

    def startup() -> list[dict[str, Any]]:
        from bench import startup

        return [startup.run(1 if smoke else 5)]

    def console() -> list[dict[str, Any]]:
        from bench import console

        return [console.run(args.records[0] if args.records else (2000 if smoke else 100_000))]

    def soak() -> list[dict[str, Any]]:
        from bench import soak

        return [soak.run(args.seconds or (5 if smoke else 600))]

    return {
        "read": read,
        "publish": publish,
        "audit": audit,
        "delivery": delivery,
        "reconcile": reconcile,
        "startup": startup,
        "console": console,
        "soak": soak,
    }


def machine() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in load],
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }


def _print(console: Console, name: str, runs: list[dict[str, Any]], smoke: bool) -> None:
    targets = {t.figure: t for t in TARGETS.get(name, [])}
    table = Table(title=name, title_justify="left")
    table.add_column("figure")
    for index in range(len(runs)):
        table.add_column(f"run {index + 1}" if len(runs) > 1 else "value", justify="right")
    table.add_column("target")
    table.add_column("")
    for figure in runs[0]:
        target = targets.get(figure)
        verdict = "" if target is None or smoke else target.verdict(runs[-1])
        cells = [
            f"{run.get(figure):,}" if isinstance(run.get(figure), int | float) else str(run.get(figure))
            for run in runs
        ]
        table.add_row(figure, *cells, target.text() if target else "", verdict)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", default=["all"], help=f"{', '.join(ORDER)}, soak, or all")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: prove the benchmarks run (CI)")
    parser.add_argument("--records", type=int, action="append", help="records (publish, reconcile, console)")
    parser.add_argument("--events", type=int, action="append", help="audit log sizes")
    parser.add_argument("--changes", type=int, help="changes to deliver (delivery)")
    parser.add_argument("--seconds", type=float, help="duration (read, audit appends, soak)")
    parser.add_argument("--connections", type=int, help="connections (read)")
    parser.add_argument(
        "--json", type=Path, default=Path("bench/results.json"), help="where to write figures"
    )
    args = parser.parse_args()
    known = _scenarios(args)
    names = ORDER if args.scenarios == ["all"] else args.scenarios
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    console = Console()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "smoke": args.smoke,
    }
    for name in names:
        console.print(f"[bold]{name}[/bold] …")
        runs = known[name]()
        results[name] = runs if len(runs) > 1 else runs[0]
        _print(console, name, runs, args.smoke)
        # Written after each scenario: a long run that fails late keeps what it measured.
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
