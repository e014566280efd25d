"""`capi serve` (the webhook app under uvicorn) and `capi publish` (one event from JSON)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from capi_stream.errors import DependencyUnavailableError, EventValidationError
from capi_stream.heap import tune_for_service
from capi_stream.settings import CapiSettings

__all__ = ["create_app", "publish", "serve"]

# How `capi serve --workers N` hands its options to the app factory in each worker process.
_OPTIONS_ENV = "CAPI_SERVE_APP_OPTIONS"


def create_app() -> Any:
    """The webhook app of one ``capi serve --workers N`` process (uvicorn's factory).

    Each worker process builds its own runtime (producer, engine, tenant cache); the options
    come from the ``capi serve`` command line that started them.
    """
    from capi_stream.runtime import build_runtime
    from producers.app import AppOptions, build_app

    options = json.loads(os.environ.get(_OPTIONS_ENV, "{}"))
    app = build_app(build_runtime(CapiSettings()), AppOptions(**options))
    # uvicorn's own default when FORWARDED_ALLOW_IPS is unset
    app = _behind_proxy(app, os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1"))
    tune_for_service()
    return app


def _behind_proxy(app: Any, trusted_hosts: list[str] | str) -> Any:
    """``app`` with uvicorn's proxy headers applied to every route but the webhooks.

    ``capi serve`` turns the server-wide middleware off (``producers.asgi`` says why).
    """
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    app.rest = ProxyHeadersMiddleware(app.rest, trusted_hosts=trusted_hosts)
    return app


EXIT_KAFKA_UNRECOVERABLE = 4


@click.command()
@click.option("--host", default=None, help="Bind address [default: HTTP_HOST or 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [default: HTTP_PORT or 8080].")
@click.option(
    "--publish-timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds to wait for the broker's ack before answering 503.",
)
@click.option(
    "--tenant-cache-ttl",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds a tenant and its webhook secrets are cached.",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log one line per HTTP request (uvicorn's access log).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Server processes sharing the port (one per core).",
)
def serve(
    host: str | None,
    port: int | None,
    publish_timeout: float,
    tenant_cache_ttl: float,
    access_log: bool,
    workers: int,
) -> None:
    """Serve POST /webhooks/{tenant_id}/{source}, /healthz, /readyz, /metrics, /openapi.json."""
    import uvicorn

    from capi_stream.kafka.topics import ensure_topics
    from capi_stream.runtime import build_runtime
    from producers.app import AppOptions, build_app
    from storage.tenants import require_secrets_key

    settings = CapiSettings()
    runtime = build_runtime(settings)
    require_secrets_key(runtime)  # a missing or wrong CAPI_SECRETS_KEY fails now
    ensure_topics(runtime.kafka.admin_config(), (runtime.topics.main,), settings.topic_partitions)
    gave_up: list[bool] = []

    def give_up() -> None:
        # The producer cannot be brought back: drain the requests in flight, then exit 4.
        gave_up.append(True)
        server.should_exit = True

    options = AppOptions(
        publish_timeout_seconds=publish_timeout,
        tenant_cache_ttl_seconds=tenant_cache_ttl,
        on_kafka_give_up=give_up,
    )
    config: dict[str, Any] = {
        "host": host or settings.http_host,
        "port": port or settings.http_port,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": access_log,
        "log_level": "info",
        "proxy_headers": False,  # applied by the app itself, around all but the webhooks
        "server_header": False,
    }
    if workers > 1:  # uvicorn needs an import string to start its worker processes
        runtime.engine.dispose()
        os.environ[_OPTIONS_ENV] = json.dumps(
            {
                "publish_timeout_seconds": publish_timeout,
                "tenant_cache_ttl_seconds": tenant_cache_ttl,
            }
        )
        uvicorn.run("producers.cli:create_app", factory=True, workers=workers, **config)
        return
    server_config = uvicorn.Config(build_app(runtime, options), **config)
    _behind_proxy(server_config.app, server_config.forwarded_allow_ips)
    tune_for_service()
    server = uvicorn.Server(server_config)
    server.run()
    if gave_up:
        click.echo("error: the Kafka producer could not be brought back; exiting", err=True)
        sys.exit(EXIT_KAFKA_UNRECOVERABLE)


def _read_json(source: str) -> Any:
    try:
        if source == "-":
            return json.load(sys.stdin)
        with open(source, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise click.ClickException(f"cannot read {source}: {exc.strerror}") from exc
    except ValueError as exc:
        raise click.ClickException(f"{source} is not valid JSON: {exc}") from exc


@click.command()
@click.argument("path", default="-")
@click.option(
    "--timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds to wait for the broker's acknowledgement.",
)
def publish(path: str, timeout: float) -> None:
    """Publish one ConversionEvent read as JSON from PATH ('-' = stdin); prints its event_id.

    A missing event_id is derived from tenant_id, source and source_event_id. Identity fields
    may be raw or already SHA-256 hex.
    """
    from producers.publisher import coerce_event, publish_event

    data = _read_json(path)
    if not isinstance(data, dict):
        raise click.ClickException("the JSON must be one object with ConversionEvent fields")
    try:
        event = coerce_event(data)
        published = publish_event(event, settings=CapiSettings(), timeout_seconds=timeout)
    except EventValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    except DependencyUnavailableError as exc:
        from capi_stream.diagnose import describe_kafka_address

        raise click.ClickException(f"not published: {exc}; {describe_kafka_address()}") from exc
    click.echo(published.event_id)
