"""Narrowing a rejected request down to its bad events (Meta rejects whole requests).

On a code-100 rejection of several events: if Meta's message names ``$['data'][N]`` that
event fails and the rest are resent, otherwise the group is bisected. Rate-limit and
credential errors halt the run: every later group fails with that error unsent.
"""

from __future__ import annotations

from collections.abc import Callable

from meta_capi._results import SendResult, culprit_index, names_request_level_path
from meta_capi.errors import (
    MetaAPIError,
    MetaCredentialsError,
    MetaPermanentError,
    MetaRateLimitedError,
)

__all__ = ["NarrowingRun"]


class NarrowingRun:
    """State of one ``send_events`` call: sends groups of indices, narrowing rejections.

    ``post`` sends pre-serialized events as one request and raises ``MetaAPIError``;
    ``budget`` caps the narrowing steps (each costs one or two extra requests).
    """

    def __init__(
        self,
        post: Callable[[list[bytes]], SendResult],
        bodies: list[bytes],
        failed: dict[int, MetaAPIError],
        budget: int,
    ) -> None:
        self.post = post
        self.bodies = bodies
        self.failed = failed
        self.sent: list[int] = []
        self.results: list[SendResult] = []
        self.unisolated: set[int] = set()
        self.budget = budget
        self.halt: MetaAPIError | None = None

    def send(self, indices: list[int]) -> None:
        pending = [indices]
        while pending:
            group = pending.pop(0)
            if self.halt is not None:
                self.failed.update(dict.fromkeys(group, self.halt))
                continue
            try:
                self.results.append(self.post([self.bodies[i] for i in group]))
            except MetaAPIError as error:
                pending[:0] = self._narrow(group, error)
            else:
                self.sent.extend(group)

    def _narrow(self, group: list[int], error: MetaAPIError) -> list[list[int]]:
        """Fail what ``error`` applies to; return the sub-groups still worth sending."""
        if isinstance(error, MetaRateLimitedError | MetaCredentialsError):
            self.halt = error
        if not _narrowable(error) or len(group) == 1:
            self.failed.update(dict.fromkeys(group, error))
            return []
        if self.budget <= 0:
            self.failed.update(dict.fromkeys(group, error))
            self.unisolated.update(group)
            return []
        self.budget -= 1
        culprit = culprit_index(error, len(group))
        if culprit is not None:
            self.failed[group[culprit]] = error
            rest = group[:culprit] + group[culprit + 1 :]
            return [rest] if rest else []
        middle = len(group) // 2
        return [group[:middle], group[middle:]]


def _narrowable(error: MetaAPIError) -> bool:
    """A code-100 rejection that may be caused by one event rather than the request."""
    return (
        isinstance(error, MetaPermanentError)
        and not isinstance(error, MetaCredentialsError)
        and error.code == 100
        and error.error_subcode != 33  # the pixel does not exist / no permission
        and not names_request_level_path(error)
    )
