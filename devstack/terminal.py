"""What the dev terminal shows while `capi dev` runs: why events retry or dead-letter, and
which webhooks were rejected, one readable line each (the worker's JSON log is for machines).
"""

from __future__ import annotations

import logging

from rich.console import Console
from rich.markup import escape

# Loggers whose per-event lines the terminal shows, down to DEBUG (retries, rejections).
_EVENT_LOGGERS = ("consumers.pipeline.outcomes", "producers.routes")


def format_line(record: logging.LogRecord) -> str | None:
    """Rich markup for one log record, or None for records the terminal leaves out."""
    fields = vars(record)
    message = record.getMessage()
    reason = escape(str(fields.get("reason") or fields.get("error_class") or "no reason given"))
    if message in ("dead-lettered", "retrying"):
        event = fields.get("event_id") or "(undecodable)"
        source = fields.get("source") or "?"
        error_class = fields.get("error_class", "")
        where = fields.get("next_topic") if message == "retrying" else "the DLQ"
        colour = "red" if message == "dead-lettered" else "yellow"
        return (
            f"[{colour}]{message}[/{colour}] event {event} ({escape(str(source))}) "
            f"from {fields.get('record', '?')} to {where}: {escape(str(error_class))}: {reason}"
        )
    if message == "webhook rejected":
        return (
            f"[yellow]webhook rejected[/yellow] {escape(str(fields.get('source', '?')))} "
            f"answered {fields.get('status', '?')}: {reason}"
        )
    if record.levelno >= logging.WARNING:
        return f"[red]{record.levelname.lower()}[/red] {record.name}: {escape(message)}"
    return None


class DevTerminalHandler(logging.Handler):
    """Prints ``format_line`` of each record on the dev console."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.DEBUG)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = format_line(record)
            if line is not None:
                self.console.print(line, soft_wrap=True)
        except Exception:  # a log line must never break the stack
            self.handleError(record)


def install_dev_terminal(console: Console) -> DevTerminalHandler:
    """Route warnings, retries, dead letters and webhook rejections to ``console``."""
    handler = DevTerminalHandler(console)
    logging.getLogger().addHandler(handler)
    for name in _EVENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    return handler
