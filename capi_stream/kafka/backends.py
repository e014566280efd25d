"""Where a process or the test suite gets its Kafka cluster from.

In order: ``KAFKA_BOOTSTRAP_SERVERS`` (an existing cluster); Apache Kafka in a container via
testcontainers when asked for (``CAPI_KAFKA_BACKEND=testcontainers``) and a Docker engine
answers; otherwise the embedded Tansu broker. Asking for a container where no Docker engine
runs says so on stderr and falls back to the embedded broker.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from capi_stream.kafka.broker import EmbeddedBroker

KAFKA_IMAGE = "apache/kafka:3.9.1"


def docker_available() -> bool:
    """True when a Docker engine answers a ping."""
    try:
        import docker

        docker.from_env().ping()
    except Exception:  # no engine, no socket, no permission: all mean "not available"
        return False
    return True


@contextlib.contextmanager
def kafka_cluster(
    bootstrap_servers: str | None,
    backend: str | None,
    log_path: Path | None = None,
    *,
    storage_dir: Path | None = None,
) -> Iterator[tuple[str, str]]:
    """Yield ``(bootstrap_servers, kind)`` for the cluster to use, stopping it afterwards.

    ``storage_dir`` makes the embedded broker durable (see ``EmbeddedBroker``); without it
    the embedded broker keeps everything in memory.
    """
    if bootstrap_servers:
        yield bootstrap_servers, "external"
        return
    if backend == "testcontainers":
        if docker_available():
            from testcontainers.kafka import KafkaContainer

            with KafkaContainer(KAFKA_IMAGE).with_kraft() as container:
                yield container.get_bootstrap_server(), "testcontainers"
            return
        print(
            "capi: CAPI_KAFKA_BACKEND=testcontainers but no Docker engine answers; "
            "using the embedded broker instead",
            file=sys.stderr,
        )
    with EmbeddedBroker(log_path=log_path, storage_dir=storage_dir) as broker:
        yield broker.bootstrap_servers, "embedded"
