"""The next hop of a record that failed: its hashed event (or its bytes) with fresh headers.

Retry tiers and the dead-letter topic carry hashed user data only (``hash_identity``).
"""

from __future__ import annotations

from capi_stream.avro.codec import EventCodec
from capi_stream.kafka.producer import OutgoingRecord
from consumers.headers import EventIdentity, Failure, build_headers
from consumers.pipeline.items import Item
from consumers.pipeline.redact import hash_identity

__all__ = ["Forwarder"]


class Forwarder:
    """Builds the outgoing record of one hop; the outcome book calls it."""

    def __init__(self, codec: EventCodec) -> None:
        self._codec = codec

    def __call__(
        self,
        item: Item,
        *,
        topic: str,
        attempt: int,
        due_ms: int | None,
        failure: Failure,
        now_ms: int,
    ) -> OutgoingRecord:
        """The next hop of ``item``: hashed event (or original bytes if undecodable)."""
        incoming = item.incoming
        identity: EventIdentity | None = None
        value = incoming.value
        if item.event is not None:
            event = item.event
            identity = EventIdentity(str(event.tenant_id), event.event_id, event.event_name)
            country = item.tenant.default_country if item.tenant else None
            value = self._codec.encode(hash_identity(event, country))
        headers = build_headers(
            incoming.context,
            attempt=attempt,
            due_ms=due_ms,
            failure=failure,
            failed_at_ms=now_ms,
            event=identity,
        )
        return OutgoingRecord(topic, value, key=incoming.key, headers=headers)
