"""Running a worker inside another process (``capi dev``, tests): a thread plus a stop hook."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from capi_stream.runtime import Runtime
from consumers.config import WorkerConfig
from consumers.worker import Worker

logger = logging.getLogger(__name__)


def build_worker(
    runtime: Runtime, stop_event: threading.Event | None = None, **overrides: Any
) -> Worker:
    """A ``Worker`` wired from a ``Runtime``; ``overrides`` are ``WorkerConfig`` fields."""
    return Worker(
        kafka=runtime.kafka,
        topics=runtime.topics,
        sessions=runtime.sessions,
        codec=runtime.codec,
        config=WorkerConfig.from_settings(runtime.settings, **overrides),
        stop_event=stop_event,
    )


def start_worker_in_thread(
    runtime: Runtime, *, startup_timeout: float = 10.0, **overrides: Any
) -> tuple[str | None, Callable[[], None]]:
    """Start a worker on a daemon thread; returns ``(health_base_url, stop)``.

    ``health_base_url`` is None when ``metrics_port`` is None. ``stop()`` finishes the batch
    in flight, commits, leaves the group and joins the thread.
    """
    worker = build_worker(runtime, threading.Event(), **overrides)

    def target() -> None:
        try:
            worker.run()
        except Exception:
            logger.exception("worker thread stopped with an error")

    thread = threading.Thread(target=target, name="capi-worker", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    wants_health = worker.config.metrics_port is not None
    while wants_health and worker.health is None and thread.is_alive():
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    url = None
    if worker.health is not None:
        url = f"http://{worker.config.metrics_host}:{worker.health.port}"

    def stop() -> None:
        worker.stop_event.set()
        thread.join(30)

    return url, stop
