"""A real HTTP webhook receiver on loopback, in a thread: records what arrives, can be told to fail."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200  # what it answers
    script: list[int] = field(default_factory=list)  # what it answers the next posts, before ``status``
    headers: dict[str, str] = field(default_factory=dict)  # sent with every answer that is not a 2xx
    delay: float = 0.0  # seconds before answering (the event counts as received on arrival)
    posts: int = 0  # every post, whatever the answer
    in_flight: int = 0
    most_in_flight: int = 0  # the most posts it was answering at once
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.received]


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the deliverer's connections are

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with receiver.lock:
                receiver.posts += 1
                receiver.in_flight += 1
                receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                status = receiver.script.pop(0) if receiver.script else receiver.status
                if status < 300:
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            time.sleep(receiver.delay)
            with receiver.lock:
                receiver.in_flight -= 1
            self.send_response(status)
            for name, value in receiver.headers.items() if status >= 300 else ():
                self.send_header(name, value)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
