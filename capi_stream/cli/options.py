"""Option parsers and help texts shared by several ``capi`` commands.

Every time range of the CLI (``export``, ``replay``) means the same thing: record
timestamps in ``[--from, --to)``, the end excluded, so consecutive ranges never overlap.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

__all__ = [
    "FROM_HELP",
    "INSTANT_METAVAR",
    "TO_HELP",
    "check_range",
    "parse_instant",
]

INSTANT_METAVAR = "ISO-8601"
_FORMATS = (
    "ISO 8601, e.g. 2026-11-28, 2026-11-28T08:00, 2026-11-28T08:00Z or "
    "2026-11-28T08:00+01:00; UTC when no offset is given"
)
FROM_HELP = f"Range start, included (record timestamp). {_FORMATS}."
TO_HELP = f"Range end, excluded (record timestamp). {_FORMATS}."


def parse_instant(_ctx: click.Context, param: click.Parameter, value: str) -> datetime:
    """Click callback: ISO 8601; a value without an offset is read as UTC (never local)."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date/time ({_FORMATS})", param=param
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_range(start: datetime, end: datetime, now: datetime | None = None) -> None:
    """Refuse an empty range and one that starts in the future (nothing can be in it yet).

    Raises:
        click.BadParameter: naming the option to fix.
    """
    if end <= start:
        raise click.BadParameter(
            f"must be after --from ({start.isoformat()}); the end is excluded", param_hint="--to"
        )
    moment = now or datetime.now(UTC)
    if start > moment:
        now_text = moment.replace(microsecond=0).isoformat()
        raise click.BadParameter(
            f"{start.isoformat()} is in the future (now is {now_text}); "
            "no record can be in the range yet",
            param_hint="--from",
        )
