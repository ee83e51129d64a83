"""Helpers for tests that run the hub as real processes and talk to it over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

EXCHANGE = str(Path(sys.executable).parent / "exchange")
REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hub_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env.update({f"EXCHANGE_{k.upper()}": v for k, v in settings.items()})
    return env


def run_cli(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [EXCHANGE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert result.returncode == 0, f"exchange {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def cli_json(*args: str, env: dict[str, str]) -> dict[str, Any]:
    return dict(json.loads(run_cli(*args, "--json", env=env).stdout))


@contextmanager
def serving(
    *args: str, env: dict[str, str], port: int, ready_timeout: float = 60.0, command: str = "serve"
) -> Iterator[str]:
    """Run `exchange serve` (or another serving command) until the block ends; yield its base URL once
    /readyz answers."""
    with served_process(*args, env=env, port=port, ready_timeout=ready_timeout, command=command) as (base, _):
        yield base


@contextmanager
def served_process(
    *args: str, env: dict[str, str], port: int, ready_timeout: float = 60.0, command: str = "serve"
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """As :func:`serving`, also yielding the process (its group is the hub and its workers), to kill it."""
    process = subprocess.Popen(
        [EXCHANGE, command, "--port", str(port), *args],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"exchange serve exited with {process.returncode}:\n{process.stdout.read()}"
                )  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("exchange serve did not become ready")
            time.sleep(0.2)
        yield base, process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
