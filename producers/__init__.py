"""Producers: the webhook app (`capi serve`), one adapter per source, the publisher library.

Names are re-exported lazily (PEP 562): a producing service that imports the publisher does
not pay for the webhook app (Starlette), the adapters or the database.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from producers.adapters import ADAPTERS
    from producers.app import AppOptions, build_app
    from producers.publisher import AsyncEventPublisher, EventPublisher, publish_event

_EXPORTS = {
    "ADAPTERS": "producers.adapters",
    "AppOptions": "producers.app",
    "AsyncEventPublisher": "producers.publisher",
    "EventPublisher": "producers.publisher",
    "build_app": "producers.app",
    "publish_event": "producers.publisher",
}

__all__ = [
    "ADAPTERS",
    "AppOptions",
    "AsyncEventPublisher",
    "EventPublisher",
    "build_app",
    "publish_event",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'producers' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
