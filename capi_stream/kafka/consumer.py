"""The one place consumers are built: a group member for the worker, a reader for scans.

Everything above the Kafka edge gets its consumers here (and the ``Consumer`` type for its
annotations), so the librdkafka options of each kind are decided once: a group member
commits by hand (``KafkaConfig.consumer_config``); a scan reader ``assign()``s partitions,
reports the end of each and reads ahead little.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaException

from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.lifecycle import ClientLifecycle, RecoveryPolicy

__all__ = [
    "Consumer",
    "build_group_consumer",
    "build_scan_consumer",
    "close_consumer",
    "own_group_consumer",
]

logger = logging.getLogger(__name__)


def build_group_consumer(kafka: KafkaConfig, group_id: str, **overrides: Any) -> Consumer:
    """A member of ``group_id`` that commits by hand, only after a record is handled."""
    return Consumer(kafka.consumer_config(group_id, **overrides))


def own_group_consumer(
    kafka: KafkaConfig, group_id: str, *, policy: RecoveryPolicy | None = None
) -> ClientLifecycle[Consumer]:
    """A group member owned by a ``ClientLifecycle``: replaced by a fresh one (which
    resumes from the committed offsets) after a fatal error; a replaced one is closed."""
    return ClientLifecycle(
        "consumer",
        Consumer,
        kafka.consumer_config(group_id),
        dispose=close_consumer,
        policy=policy,
    )


def build_scan_consumer(kafka: KafkaConfig, group_id: str | None = None) -> Consumer:
    """A consumer for ``assign()`` reads; ``group_id`` only names where offsets are committed.

    Without a group id a throw-away one is used and nothing is ever committed under it.
    """
    return build_group_consumer(
        kafka,
        group_id or f"capi-scan-{uuid.uuid4().hex[:12]}",
        **{
            "enable.partition.eof": True,
            # Keep read-ahead small: a scan may stop long before the end of a big log.
            "queued.max.messages.kbytes": 4096,
        },
    )


def close_consumer(consumer: Consumer) -> None:
    """Close, tolerating a consumer that is already closed or broken beyond a clean leave."""
    try:
        consumer.close()
    except (KafkaException, RuntimeError) as exc:
        logger.warning("consumer close failed", extra={"error": str(exc)})
