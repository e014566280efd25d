"""Producers: the webhook app (`capi serve`), one adapter per source, the publisher library."""

from producers.adapters import ADAPTERS
from producers.app import AppOptions, build_app
from producers.publisher import AsyncEventPublisher, EventPublisher, publish_event

__all__ = [
    "ADAPTERS",
    "AppOptions",
    "AsyncEventPublisher",
    "EventPublisher",
    "build_app",
    "publish_event",
]
