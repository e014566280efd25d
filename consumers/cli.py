"""`capi worker`: run one consumer-group member until SIGTERM/SIGINT.

SIGTERM and SIGINT finish the batch in flight, commit, leave the group and exit 0. The
dead-letter limit exits 3 with a message that says what to do; a Kafka client that could
not be brought back (``ClientUnrecoverableError``) exits 4 so the orchestrator restarts it.
``--processes N`` runs N such processes in the same group under a supervisor
(``consumers/supervisor.py``).
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import click

from capi_stream.errors import ClientUnrecoverableError
from capi_stream.heap import tune_for_service
from capi_stream.kafka.topics import ensure_topics
from capi_stream.logs import configure_json_logging
from capi_stream.runtime import build_runtime
from capi_stream.settings import CapiSettings
from consumers.config import Tiers
from consumers.dlq_limit import DeadLetterLimitError
from consumers.service import build_worker
from storage.tenants import require_secrets_key

EXIT_DLQ_LIMIT = 3
EXIT_KAFKA_UNRECOVERABLE = 4


@click.command()
@click.option(
    "--tiers",
    type=click.Choice(["main", "retries", "all"]),
    default="all",
    show_default=True,
    help="Consume the main topic, its retry tiers, or both.",
)
@click.option("--group", default=None, help="Consumer group (default: CONSUMER_GROUP).")
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Port of /healthz, /readyz and /metrics; 0 = any free port. [default: "
    f"WORKER_METRICS_PORT, else {CapiSettings.model_fields['worker_metrics_port'].default}]",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes in the group (one per core); ports are --metrics-port + i.",
)
def worker(tiers: Tiers, group: str | None, metrics_port: int | None, processes: int) -> None:
    """Deliver events from Kafka to Meta's Conversions API."""
    if processes > 1:
        from consumers.supervisor import child_specs, supervise

        options = ["--tiers", tiers, *(["--group", group] if group else [])]
        base = CapiSettings().worker_metrics_port if metrics_port is None else metrics_port
        sys.exit(supervise(child_specs(processes, options, base)))
    configure_json_logging()
    settings = CapiSettings()
    runtime = build_runtime(settings)
    require_secrets_key(runtime)  # a missing or wrong CAPI_SECRETS_KEY fails now
    ensure_topics(runtime.kafka.admin_config(), runtime.topics.all, settings.topic_partitions)
    overrides: dict[str, object] = {"tiers": tiers}
    if group:
        overrides["group_id"] = group
    if metrics_port is not None:
        overrides["metrics_port"] = metrics_port
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    instance = build_worker(runtime, stop, **overrides)
    tune_for_service()
    try:
        instance.run()
    except DeadLetterLimitError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_DLQ_LIMIT)
    except ClientUnrecoverableError as exc:
        click.echo(f"error: {exc}; exiting so the process is restarted", err=True)
        sys.exit(EXIT_KAFKA_UNRECOVERABLE)
    finally:
        runtime.engine.dispose()


if __name__ == "__main__":  # how the supervisor starts each worker process
    worker()
