"""Collecting a batch: up to ``max_events`` records or ``max_wait`` seconds, whichever first.

The wait is bounded so the loop comes back often enough to resume due partitions, answer
a stop request and keep its place in the group; an idle consumer returns an empty batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, cast

from confluent_kafka import KafkaError, Message

from capi_stream.kafka.message import KafkaRecord, describe_record

logger = logging.getLogger(__name__)

Consume = Callable[[int, float], list[Message]]


def collect_batch(
    consume: Consume,
    into: list[Message],
    *,
    max_events: int,
    max_wait_seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> list[Message]:
    """Fill ``into`` (which rebalance callbacks may trim in place) and return it.

    Error events (partition EOF, transport errors) are logged, not returned.
    """
    deadline = clock() + max_wait_seconds
    while len(into) < max_events:
        remaining = deadline - clock()
        if remaining <= 0:
            break
        for message in consume(min(max_events - len(into), 1000), remaining):
            error: Any = message.error()
            if error is None:
                into.append(message)
            elif error.code() != KafkaError._PARTITION_EOF:
                logger.warning(
                    "consumer error",
                    extra={
                        "record": describe_record(cast(KafkaRecord, message)),
                        "error": str(error),
                    },
                )
    return into
