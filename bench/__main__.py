"""`python -m bench publish|query|crosscheck|console|soak|all [--records N] [--seconds S] [--concurrency C]
[--json F]`."""

from __future__ import annotations

import argparse
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import console, crosscheck, publish, query, soak


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenario", choices=["publish", "query", "crosscheck", "console", "soak", "all"])
    parser.add_argument(
        "--records",
        type=int,
        default=100_000,
        help="records for the publish, crosscheck and console scenarios",
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="duration of the query and soak scenarios"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="connections of the query scenario")
    parser.add_argument(
        "--json", type=Path, default=Path("bench/results.json"), help="where to write figures"
    )
    args = parser.parse_args()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.processor() or '?'}, Python {platform.python_version()}",
    }
    if args.scenario in {"publish", "all"}:
        results["publish"] = publish.run(args.records)
    if args.scenario in {"crosscheck", "all"}:
        results["crosscheck"] = crosscheck.run(args.records)
    if args.scenario in {"console", "all"}:
        results["console"] = console.run(args.records)
    if args.scenario == "soak":  # long by design: never part of `all`
        results["soak"] = soak.run(args.seconds)
    if args.scenario in {"query", "all"}:
        results["query"] = query.run(args.seconds, args.concurrency)
    for name, figures in results.items():
        if isinstance(figures, dict):
            print(f"\n{name}")
            for key, value in figures.items():
                print(f"  {key:<40} {value}")
    args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
