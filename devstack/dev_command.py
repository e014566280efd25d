"""`capi dev` (the whole pipeline on the embedded defaults) and `capi demo` (a burst)."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Sequence

import click
from rich.console import Console
from rich.table import Table

from capi_stream.runtime import build_runtime
from capi_stream.settings import CapiSettings
from capi_stream.stacks import find_stack
from devstack.demo import (
    DemoDelivery,
    curl_examples,
    send_demo_burst,
    wait_for_outcomes,
)
from devstack.example import EXAMPLE_EVENT_FILE
from devstack.seed import DemoTenant
from devstack.stack import DevStack, run_dev_stack
from devstack.terminal import install_dev_terminal

console = Console(highlight=False)


@click.command()
@click.option(
    "--demo/--no-demo",
    default=True,
    show_default=True,
    help="Send a burst from all five sources once everything runs.",
)
@click.option("--per-source", default=2, show_default=True, help="Demo events per source.")
def dev(demo: bool, per_source: int) -> None:
    """Run broker, database, Meta emulator, webhook app and worker in one process (Ctrl-C stops)."""
    settings = CapiSettings()
    use_emulator = "META_GRAPH_URL" not in os.environ
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    install_dev_terminal(console)
    with run_dev_stack(settings, use_emulator=use_emulator) as stack:
        _print_banner(stack)
        if demo:
            _run_demo(stack, per_source)
        console.print("[bold]Running.[/bold] Ctrl-C stops everything.")
        stopping.wait()
        console.print("stopping...")
    console.print("stopped cleanly")


@click.command()
@click.option("--per-source", default=2, show_default=True, help="Events per source.")
def demo(per_source: int) -> None:
    """Send a realistic burst from all five sources to a running `capi dev`; show the outcome."""
    settings = CapiSettings()
    stack = find_stack(settings)
    if stack is None:
        raise click.ClickException("no running `capi dev` found (start it with `make run`)")
    update = {
        "kafka_bootstrap_servers": stack.kafka_bootstrap_servers,
        "database_url": stack.database_url,
    }
    runtime = build_runtime(settings.model_copy(update=update))
    deliveries = send_demo_burst(stack.webhook_url, DemoTenant(), per_source)
    event_ids = [d.event_id for d in deliveries if d.event_id]
    _print_outcome(deliveries, wait_for_outcomes(runtime.sessions, event_ids))


def _run_demo(stack: DevStack, per_source: int) -> None:
    deliveries = send_demo_burst(stack.webhook_url, stack.tenant, per_source)
    event_ids = [d.event_id for d in deliveries if d.event_id]
    _print_outcome(deliveries, wait_for_outcomes(stack.runtime.sessions, event_ids))


def _print_outcome(deliveries: Sequence[DemoDelivery], statuses: dict[str, str]) -> None:
    table = Table(title="Demo burst")
    for column in ("source", "HTTP", "event_id", "pipeline status"):
        table.add_column(column)
    for delivery in deliveries:
        status = statuses.get(delivery.event_id or "", delivery.answer)
        table.add_row(delivery.source, str(delivery.http_status), delivery.event_id or "-", status)
    console.print(table)
    counts = Counter(statuses.values())
    console.print(
        f"demo: {counts.get('sent', 0)}/{len(deliveries)} events accepted by Meta ({dict(counts)})"
    )


def _print_banner(stack: DevStack) -> None:
    settings = stack.runtime.settings
    table = Table(title="capi dev", show_header=False)
    table.add_row("Kafka", f"{stack.runtime.kafka.bootstrap_servers} ({stack.kafka_kind})")
    table.add_row("Database", settings.database_url)
    table.add_row("Webhook app", f"{stack.webhook_url}  (/healthz /readyz /metrics /openapi.json)")
    table.add_row(
        "Meta Graph API", stack.graph_url + ("  (emulator)" if stack.emulator_url else "")
    )
    if stack.emulator_url:
        table.add_row("Accepted events", f"{stack.emulator_url}/_emulator/events")
    if stack.worker_health_url:
        table.add_row("Worker", f"{stack.worker_health_url}  (/healthz /readyz /metrics)")
    table.add_row("Demo tenant", str(stack.tenant.tenant_id))
    table.add_row("Topics", ", ".join(stack.runtime.topics.all))
    console.print(table)
    console.print("[bold]In another terminal:[/bold] source .venv/bin/activate  (or: make shell)")
    console.print(f"capi publish {settings.data_dir}/{EXAMPLE_EVENT_FILE}", soft_wrap=True)
    if stack.state_file is not None:
        console.print("Commands find this stack from any directory; with several running, pick it:")
        console.print(f"export CAPI_STACK={stack.state_file}", soft_wrap=True)
    console.print("[bold]Send a webhook yourself (copy-paste):[/bold]")
    for source, command in curl_examples(stack.webhook_url, stack.tenant).items():
        console.print(f"[cyan]# {source}[/cyan]")
        console.print(command, soft_wrap=True)
