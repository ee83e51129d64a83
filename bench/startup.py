"""Start-up: `exchange serve` in production mode on the embedded database, from the command until `/readyz`
answers 200 — on a fresh data directory (initdb, migrations, catalogue) and again on the one it left
(server start, schema and catalogue found up to date). Each several times; the median counts.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.hub import EXCHANGE, REPO, free_port, stop_embedded, stop_group, wait_ready


def _start(data: Path) -> float:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")} | {
        "EXCHANGE_DATA_DIR": str(data),
        "EXCHANGE_ENV": "production",
        "EXCHANGE_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    started = time.monotonic()
    process = subprocess.Popen(
        [EXCHANGE, "serve", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        return time.monotonic() - started
    finally:
        stop_group(process)


def run(times: int = 3) -> dict[str, Any]:
    fresh, warm = [], []
    for _ in range(times):
        with tempfile.TemporaryDirectory(prefix="exchange-bench-start-") as scratch:
            data = Path(scratch)
            try:
                fresh.append(_start(data))
                warm.append(_start(data))
            finally:
                stop_embedded(data)
    return {
        "fresh_data_dir_s": round(statistics.median(fresh), 2),
        "fresh_slowest_s": round(max(fresh), 2),
        "existing_data_dir_s": round(statistics.median(warm), 2),
        "existing_slowest_s": round(max(warm), 2),
    }
