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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from capi_stream.kafka.lifecycle import ClientStatus

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


def start_health_server(probes: HealthProbes, host: str, port: int) -> HealthServer:
    """Serve ``probes`` on ``host:port``, or on any free port if that one is taken (a second
    worker on one host); the port used is logged."""
    try:
        server = HealthServer(probes, host, port)
    except OSError as exc:
        logger.warning("health port unavailable", extra={"port": port, "error": str(exc)})
        server = HealthServer(probes, host, 0)
    server.start()
    logger.info("health server listening", extra={"port": server.port})
    return server


def liveness(loop_age_seconds: float) -> tuple[bool, str]:
    """Live while the poll loop turned within the last minute."""
    return (loop_age_seconds < 60, f"last loop {loop_age_seconds:.1f}s ago")


def readiness(
    *,
    stopped_by_dlq_limit: bool,
    in_outage: bool,
    clients: Sequence[tuple[str, ClientStatus | None]],
    assigned: int,
) -> tuple[bool, str]:
    """Ready unless stopped, paused by an outage, a Kafka client is not ready (being
    replaced or gave up), or no partition is assigned; the detail says which."""
    if stopped_by_dlq_limit:
        return False, "stopped by the dead-letter limit"
    if in_outage:
        return False, "dependency outage: paused"
    for kind, status in clients:
        if status is not None and not status.ready:
            return False, f"{kind} {status.state.value}: {status.detail}"
    return (assigned > 0, f"{assigned} partitions assigned")


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
