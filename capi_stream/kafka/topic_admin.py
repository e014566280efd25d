"""The broker side of ``capi topics``: describe, create and set retention, via AdminClient.

Every librdkafka failure leaves as ``DependencyUnavailableError`` naming the broker address,
so a Job or init container log says which cluster did not answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

# `confluent_kafka.admin` re-exports these without `__all__`; mypy --strict wants the source.
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._resource import ResourceType
from confluent_kafka.cimpl import NewTopic

from capi_stream.errors import DependencyUnavailableError
from capi_stream.kafka.topic_specs import TopicProblem, TopicSpec, TopicState, compare_topics

__all__ = ["TopicAdmin", "fix_topics"]

RETENTION = "retention.ms"


class TopicAdmin:
    """One AdminClient for the life of a ``capi topics`` run."""

    def __init__(self, admin_config: dict[str, Any], timeout_seconds: float = 15.0) -> None:
        self._address = str(admin_config.get("bootstrap.servers", "?"))
        self._admin = AdminClient(admin_config)
        self._timeout = timeout_seconds

    def describe(self, names: Sequence[str]) -> dict[str, TopicState]:
        """Partitions and ``retention.ms`` of those of ``names`` that exist.

        Raises:
            DependencyUnavailableError: the broker did not answer.
        """
        try:
            metadata = self._admin.list_topics(timeout=self._timeout)
        except KafkaException as exc:
            raise self._unavailable("cannot list topics", exc) from exc
        present = [name for name in names if name in metadata.topics]
        retention = self._retention(present)
        return {
            name: TopicState(name, len(metadata.topics[name].partitions), retention.get(name))
            for name in present
        }

    def create(self, specs: Sequence[TopicSpec], replication_factor: int) -> None:
        """Create ``specs`` with their partitions and retention; an existing one is fine.

        Raises:
            DependencyUnavailableError: the broker refused or did not answer.
        """
        if not specs:
            return
        new = [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=replication_factor,
                config={RETENTION: str(spec.retention_ms)},
            )
            for spec in specs
        ]
        futures = self._admin.create_topics(new, request_timeout=self._timeout)
        for name, future in futures.items():
            try:
                future.result(self._timeout)
            except KafkaException as exc:
                # Another `capi topics` (a second Job pod, compose and k8s) may have won.
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise self._unavailable(f"cannot create topic {name}", exc) from exc

    def set_retention(self, specs: Sequence[TopicSpec]) -> None:
        """Set ``retention.ms`` of existing topics (incremental: other configs stay).

        Raises:
            DependencyUnavailableError: the broker refused or did not answer.
        """
        resources = [
            ConfigResource(
                ResourceType.TOPIC,
                spec.name,
                incremental_configs=[
                    ConfigEntry(
                        RETENTION,
                        str(spec.retention_ms),
                        incremental_operation=AlterConfigOpType.SET,
                    )
                ],
            )
            for spec in specs
        ]
        if not resources:
            return
        futures = self._admin.incremental_alter_configs(resources, request_timeout=self._timeout)
        for resource, future in futures.items():
            try:
                future.result(self._timeout)
            except KafkaException as exc:
                raise self._unavailable(f"cannot set retention of {resource.name}", exc) from exc

    def _retention(self, names: Sequence[str]) -> dict[str, int]:
        if not names:
            return {}
        resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
        futures = self._admin.describe_configs(resources, request_timeout=self._timeout)
        found: dict[str, int] = {}
        for resource, future in futures.items():
            try:
                entries = future.result(self._timeout)
            except KafkaException as exc:
                raise self._unavailable(f"cannot describe topic {resource.name}", exc) from exc
            entry = entries.get(RETENTION)
            if entry is not None and entry.value is not None:
                found[resource.name] = int(entry.value)
        return found

    def _unavailable(self, what: str, exc: KafkaException) -> DependencyUnavailableError:
        return DependencyUnavailableError(
            f"{what} on the Kafka cluster at {self._address} (KAFKA_BOOTSTRAP_SERVERS): "
            f"{exc.args[0] if exc.args else exc}"
        )


def fix_topics(
    admin: TopicAdmin, specs: Sequence[TopicSpec], replication_factor: int
) -> list[TopicProblem]:
    """Create the missing topics and correct retention; returns what it fixed.

    Partition counts are never changed (it would move keys between partitions): such
    problems are left for the caller to report.

    Raises:
        DependencyUnavailableError: the broker did not answer.
    """
    problems = compare_topics(specs, admin.describe([spec.name for spec in specs]))
    missing = [p.spec for p in problems if p.kind == "missing"]
    retention = [p.spec for p in problems if p.kind == "retention"]
    admin.create(missing, replication_factor)
    admin.set_retention(retention)
    return [p for p in problems if p.fixable]
