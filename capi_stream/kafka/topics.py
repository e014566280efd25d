"""Topic names of the pipeline and their creation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from capi_stream.errors import DependencyUnavailableError


@dataclass(frozen=True, slots=True)
class TopicNames:
    """The main topic, its retry tiers (attempts 2..5) and its dead-letter topic."""

    main: str = "capi.events"
    retry_tiers: int = 4

    @property
    def retries(self) -> tuple[str, ...]:
        return tuple(f"{self.main}.retry.{n}" for n in range(1, self.retry_tiers + 1))

    @property
    def dlq(self) -> str:
        return f"{self.main}.dlq"

    @property
    def all(self) -> tuple[str, ...]:
        return (self.main, *self.retries, self.dlq)

    def retry_topic_for_attempt(self, attempt: int) -> str:
        """The topic that carries attempt number ``attempt`` (2..retry_tiers+1)."""
        return self.retries[attempt - 2]


def ensure_topics(
    admin_config: dict[str, Any], names: tuple[str, ...], partitions: int, timeout: float = 15.0
) -> None:
    """Create the topics that do not exist yet; existing ones are left alone.

    Raises:
        DependencyUnavailableError: the broker did not answer.
    """
    admin = AdminClient(admin_config)
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise DependencyUnavailableError(f"cannot list topics: {exc}") from exc
    missing = [NewTopic(name, num_partitions=partitions) for name in names if name not in existing]
    if not missing:
        return
    for name, future in admin.create_topics(missing, request_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise DependencyUnavailableError(f"cannot create topic {name}: {exc}") from exc
