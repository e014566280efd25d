"""Consumers: the `capi worker` (main topic + retry tiers -> Meta) and its building blocks.

Names are re-exported lazily (PEP 562): importing one light submodule (the DLQ tools, the
headers) does not pay for the worker's Kafka, HTTP and database imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from consumers.config import WorkerConfig
    from consumers.dlq_limit import DeadLetterLimit, DeadLetterLimitError
    from consumers.headers import HopContext, build_headers, parse_hop
    from consumers.pipeline.routing import Destination, Route, route_failure
    from consumers.service import build_worker, start_worker_in_thread
    from consumers.worker import Worker

_EXPORTS = {
    "DeadLetterLimit": "consumers.dlq_limit",
    "DeadLetterLimitError": "consumers.dlq_limit",
    "Destination": "consumers.pipeline.routing",
    "HopContext": "consumers.headers",
    "Route": "consumers.pipeline.routing",
    "Worker": "consumers.worker",
    "WorkerConfig": "consumers.config",
    "build_headers": "consumers.headers",
    "build_worker": "consumers.service",
    "parse_hop": "consumers.headers",
    "route_failure": "consumers.pipeline.routing",
    "start_worker_in_thread": "consumers.service",
}

__all__ = [
    "DeadLetterLimit",
    "DeadLetterLimitError",
    "Destination",
    "HopContext",
    "Route",
    "Worker",
    "WorkerConfig",
    "build_headers",
    "build_worker",
    "parse_hop",
    "route_failure",
    "start_worker_in_thread",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'consumers' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
