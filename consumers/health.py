"""A tiny HTTP server beside the worker: ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz`` is 200 while the poll loop turns (a stuck loop turns it 503); ``/readyz`` is
200 when the worker has partitions, is not paused by an outage (database or broker
unreachable, a forward that failed), neither Kafka client is being replaced or gave up,
and the dead-letter limit has not stopped it; the body says which. ``/metrics`` is the
Prometheus text format.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HealthProbes:
    """Callbacks the server asks; each returns ``(ok, detail)`` or the metrics text."""

    live: Callable[[], tuple[bool, str]]
    ready: Callable[[], tuple[bool, str]]
    metrics: Callable[[], bytes]


class HealthServer:
    """Serves the probes on ``host:port`` (0 = a free port) from a daemon thread."""

    def __init__(self, probes: HealthProbes, host: str = "127.0.0.1", port: int = 0) -> None:
        handler = _handler(probes)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="worker-health", daemon=True
        )

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(probes: HealthProbes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, probes.metrics(), "text/plain; version=0.0.4; charset=utf-8")
            elif path in ("/healthz", "/readyz"):
                ok, detail = (probes.live if path == "/healthz" else probes.ready)()
                self._reply(200 if ok else 503, detail.encode() + b"\n", "text/plain")
            else:
                self._reply(404, b"not found\n", "text/plain")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            logger.debug("health request: " + format, *args)

    return Handler
