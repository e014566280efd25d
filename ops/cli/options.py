"""Option parsers shared by several ``capi`` commands."""

from __future__ import annotations

from datetime import UTC, datetime

import click

__all__ = ["parse_instant"]


def parse_instant(_ctx: click.Context, param: click.Parameter, value: str) -> datetime:
    """Click callback: ISO 8601; a value without an offset is read as UTC (never local)."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date/time", param=param) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
