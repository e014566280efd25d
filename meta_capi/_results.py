"""What a send returns: ``SendResult`` per accepted request, ``BatchOutcome`` per input list."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias, runtime_checkable

from meta_capi.errors import MetaAPIError

__all__ = ["BatchOutcome", "EventInput", "SendResult", "SupportsPayload"]


@runtime_checkable
class SupportsPayload(Protocol):
    """Anything that can render itself as one Meta server-event JSON object."""

    def to_payload(self) -> Mapping[str, object]: ...


EventInput: TypeAlias = Mapping[str, object] | SupportsPayload
"""One event for the client: a payload dict or an object with ``to_payload()``."""


@dataclass(frozen=True, slots=True)
class SendResult:
    """Meta's success answer, summed over every request that was accepted.

    ``fbtrace_id`` is the first request's trace id (the one to quote for a single send);
    ``fbtrace_ids`` lists them all, in request order.
    """

    events_received: int = 0
    messages: list[str] = field(default_factory=list)
    fbtrace_id: str | None = None
    fbtrace_ids: list[str] = field(default_factory=list)
    requests: int = 0

    @classmethod
    def combine(cls, results: list[SendResult]) -> SendResult:
        """Aggregate several accepted requests into one result."""
        trace_ids = [t for r in results for t in r.fbtrace_ids]
        return cls(
            events_received=sum(r.events_received for r in results),
            messages=[m for r in results for m in r.messages],
            fbtrace_id=trace_ids[0] if trace_ids else None,
            fbtrace_ids=trace_ids,
            requests=sum(r.requests for r in results),
        )


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """Per-event outcome of ``send_events``; indices refer to the input sequence.

    Every input index is in exactly one of ``sent`` (Meta accepted the request holding it)
    or ``failed`` (the error to route that event by: ``isinstance(err, RetriableError)``
    -> retry tier, ``PermanentError`` -> dead-letter). A whole-request error (rate limit,
    credentials, 5xx, timeout) is the same object for every index of that request.

    ``unisolated`` holds failed indices that were rejected with code 100 inside a
    multi-event request whose bad event was not found because the narrowing budget ran
    out; they may be valid and are worth one replay.
    """

    total: int
    sent: list[int]
    failed: dict[int, MetaAPIError]
    result: SendResult
    unisolated: frozenset[int] = frozenset()

    @property
    def ok(self) -> bool:
        """True when every event was accepted."""
        return not self.failed


_DATA_PATH = re.compile(r"\$\['data'\]\[(\d+)\]")
_ANY_PATH = re.compile(r"\$\['(\w+)'\]")


def culprit_index(error: MetaAPIError, batch_size: int) -> int | None:
    """The event index named by a ``$['data'][N]`` path in Meta's message, if any."""
    for text in (error.error_user_msg, error.message):
        if text and (match := _DATA_PATH.search(text)):
            index = int(match.group(1))
            return index if index < batch_size else None
    return None


def names_request_level_path(error: MetaAPIError) -> bool:
    """True when Meta's message names a top-level parameter other than ``data``."""
    for text in (error.error_user_msg, error.message):
        if text and (match := _ANY_PATH.search(text)) and match.group(1) != "data":
            return True
    return False
