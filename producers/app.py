"""The webhook app factory: wires settings, broker, database and adapters into Starlette.

The app owns one ``AsyncEventPublisher`` (one producer, polled by the event loop) for its
lifetime, flushed at the lifespan's shutdown. ASGI servers run the lifespan; in-process
tests enter ``app.router.lifespan_context(app)`` themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from capi_stream.kafka.lifecycle import RecoveryPolicy
from capi_stream.runtime import Runtime
from producers.adapters.base import WebhookAdapter
from producers.asgi import WebhookApp
from producers.health import ReadinessProbe
from producers.ingest import WebhookIngestor
from producers.metrics import WebhookMetrics
from producers.openapi import build_openapi
from producers.pixel_endpoint import PixelEndpoints
from producers.publisher import DEFAULT_TIMEOUT_SECONDS, AsyncEventPublisher
from producers.responses import error_response
from producers.routes import WebhookEndpoints
from producers.tenant_cache import DEFAULT_TTL_SECONDS, TenantCache

__all__ = ["AppOptions", "build_app"]


@dataclass(frozen=True, slots=True)
class AppOptions:
    """Knobs of the web app that are not process settings."""

    publish_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    tenant_cache_ttl_seconds: float = DEFAULT_TTL_SECONDS
    readiness_timeout_seconds: float = 1.0
    readiness_cache_seconds: float = 2.0
    db_threads: int = 4  # PostgreSQL; SQLite has one writer, so it always gets one thread
    # How the producer is replaced after a fatal error, and when that gives up; then
    # ``on_kafka_give_up`` is called once (``capi serve``: shut down, exit 4).
    kafka_recovery: RecoveryPolicy | None = None
    on_kafka_give_up: Callable[[], None] | None = None


async def _http_error(_request: Request, exc: Exception) -> Response:
    """404/405 from routing get the same error shape as everything else."""
    return error_response(exc)


def build_app(
    runtime: Runtime,
    options: AppOptions | None = None,
    *,
    adapters: Mapping[str, WebhookAdapter] | None = None,
) -> Starlette:
    """The ASGI app for ``runtime``; ``adapters`` defaults to every registered source."""
    options = options or AppOptions()
    if adapters is None:
        from producers.adapters import ADAPTERS

        adapters = ADAPTERS
    metrics = WebhookMetrics(frozenset(adapters))
    publisher = AsyncEventPublisher(
        runtime.kafka,
        runtime.topics.main,
        runtime.codec,
        timeout_seconds=options.publish_timeout_seconds,
        policy=options.kafka_recovery,
        on_give_up=options.on_kafka_give_up,
    )
    tenants = TenantCache(runtime.sessions, options.tenant_cache_ttl_seconds)
    sqlite = runtime.engine.dialect.name == "sqlite"
    ingestor = WebhookIngestor(
        adapters,
        tenants,
        runtime.sessions,
        publisher,
        metrics,
        db_threads=1 if sqlite else options.db_threads,
    )
    probe = ReadinessProbe(
        publisher,
        runtime.engine,
        timeout_seconds=options.readiness_timeout_seconds,
        cache_seconds=options.readiness_cache_seconds,
    )
    endpoints = WebhookEndpoints(
        ingestor,
        metrics,
        probe,
        build_openapi(sorted(adapters)),
        runtime.settings.webhook_max_body_bytes,
    )

    pixel = PixelEndpoints(ingestor, runtime.sessions)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            publisher.close(options.publish_timeout_seconds)
            ingestor.close()

    app = WebhookApp(
        endpoints,
        routes=[
            Route("/webhooks/{tenant_id}/{source}", endpoints.webhook, methods=["POST"]),
            Route("/healthz", endpoints.healthz, methods=["GET"]),
            Route("/readyz", endpoints.readyz, methods=["GET"]),
            Route("/metrics", endpoints.metrics, methods=["GET"]),
            Route("/openapi.json", endpoints.openapi, methods=["GET"]),
            Route("/pixel/capi-pixel.js", pixel.script, methods=["GET"]),
            Route("/pixel/{tenant_id}/{source}/event-id", pixel.event_id, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.publisher = publisher
    app.state.tenants = tenants
    app.state.metrics = metrics
    return app
