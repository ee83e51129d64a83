"""Serving the API with several processes: gunicorn's pre-fork arbiter running uvicorn workers.

The application is imported and built once, in the arbiter, and the workers are forked from it: a worker
starts in milliseconds instead of importing the hub again (two seconds of CPU each, on a machine whose cores
are busy starting the database), and the workers share those pages until they write to them. Each worker
runs the app's lifespan itself, so engines, pools and the audit integrator belong to the process that uses
them. The arbiter restarts a worker that dies and stops them all, gracefully, on SIGTERM or SIGINT.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from fastapi import FastAPI
from gunicorn.app.base import BaseApplication
from uvicorn_worker import UvicornWorker

GRACEFUL_TIMEOUT_SECONDS = 30
# A worker whose event loop does not come round to its heartbeat for this long is replaced.
WORKER_TIMEOUT_SECONDS = 120


class Worker(UvicornWorker):  # type: ignore[misc]  # untyped base
    """uvicorn in a gunicorn worker, configured as `exchange serve` configures a single uvicorn."""

    CONFIG_KWARGS: dict[str, Any] = {  # noqa: RUF012 (uvicorn-worker's own class attribute)
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "proxy_headers": True,
        "server_header": False,
        "access_log": False,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn-worker hands uvicorn's loggers to gunicorn's handlers; the hub writes its own JSON lines
        # (and its own access line per request, see observability.py).
        error = logging.getLogger("uvicorn.error")
        error.handlers, error.propagate = [], True
        logging.getLogger("uvicorn.access").disabled = True


class _Hub(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    def __init__(self, app: FastAPI, options: dict[str, Any]) -> None:
        self.app = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self) -> FastAPI:
        return self.app


def serve_forked(app: FastAPI, host: str, port: int, workers: int, log_level: str) -> None:
    """Serve ``app`` (built already) with ``workers`` forked processes until stopped."""
    # What is alive now is shared by every worker for its whole life: keep the collector's passes (and the
    # copy-on-write faults they would cause) off it.
    gc.freeze()
    _Hub(
        app,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": f"{__name__}.Worker",
            "preload_app": True,
            "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
            "timeout": WORKER_TIMEOUT_SECONDS,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": log_level.lower(),
            "proc_name": "exchange-hub",
        },
    ).run()
