"""`capi tenants verify`: the one test event it sends, and what Meta's answer means.

The event carries Meta's ``test_event_code``, so it shows in Events Manager's Test Events
tab. Test events are not dropped (Meta counts them for targeting and measurement), so it is
a custom event, ``CapiStreamVerify``, that no campaign optimises for, and its user is an
invented address, hashed like every other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from capi_stream.errors import CapiError
from meta_capi.client import SendResult
from meta_capi.errors import (
    MetaAPIError,
    MetaCredentialsError,
    MetaRateLimitedError,
    MetaRetryableError,
)
from meta_capi.hashing import hash_email

__all__ = ["VERIFY_EVENT_NAME", "Verdict", "build_verify_event", "judge_answer"]

VERIFY_EVENT_NAME = "CapiStreamVerify"
VERIFY_EMAIL = "capi-stream-verify@example.com"
_UNKNOWN_OBJECT_SUBCODE = 33  # code 100: the object does not exist or the token may not use it


@dataclass(frozen=True, slots=True)
class Verdict:
    """One or two lines for the terminal, and whether the tenant is ready to send."""

    ok: bool
    message: str


def build_verify_event(now: datetime) -> dict[str, object]:
    """One server event Meta accepts from any pixel: a custom name, a hashed email."""
    return {
        "event_name": VERIFY_EVENT_NAME,
        "event_time": int(now.timestamp()),
        "event_id": f"verify-{uuid.uuid4()}",
        "action_source": "other",
        "user_data": {"em": [hash_email(VERIFY_EMAIL)]},
    }


def _trace(error: MetaAPIError) -> str:
    parts = [f"code {error.code}" + (f"/{error.subcode}" if error.subcode else "")]
    if error.fbtrace_id:
        parts.append(f"fbtrace_id {error.fbtrace_id}")
    return ", ".join(parts)


def judge_answer(
    tenant_id: str, pixel_id: str, test_code: str, answer: SendResult | CapiError
) -> Verdict:
    """What Meta's answer (or the error it became) means for the tenant, and the fix."""
    set_meta = f"capi tenants set-meta {tenant_id} --pixel-id {pixel_id}"
    if isinstance(answer, SendResult):
        return Verdict(
            True,
            f"Meta accepted the test event: events_received={answer.events_received}, "
            f"fbtrace_id={answer.fbtrace_id or '-'}\n"
            f"Events Manager > pixel {pixel_id} > Test events shows it under {test_code}",
        )
    if isinstance(answer, MetaCredentialsError):
        return Verdict(
            False,
            f"Meta refused the access token ({_trace(answer)}): {answer.message}\n"
            f"fix: {set_meta} --access-token <a Conversions API token of this pixel>",
        )
    if isinstance(answer, MetaRateLimitedError):
        wait = answer.retry_after_seconds
        when = f"in about {max(1, round(wait / 60))} min" if wait else "later"
        return Verdict(
            False,
            f"Meta is throttling this pixel ({_trace(answer)}): {answer.message}\n"
            f"try again {when}; the worker holds this tenant's events until then",
        )
    if (
        isinstance(answer, MetaAPIError)
        and answer.code == 100
        and (answer.subcode == _UNKNOWN_OBJECT_SUBCODE)
    ):
        return Verdict(
            False,
            f"Meta knows no pixel {pixel_id} this token may use ({_trace(answer)})\n"
            f"fix: check the pixel (dataset) id in Events Manager, then {set_meta} "
            "--access-token <its token> (use the right --pixel-id)",
        )
    if isinstance(answer, MetaRetryableError):
        return Verdict(False, f"Meta did not answer usefully, try again: {answer}")
    if isinstance(answer, MetaAPIError):
        return Verdict(False, f"Meta rejected the test event ({_trace(answer)}): {answer.message}")
    return Verdict(False, f"cannot verify: {answer}")
