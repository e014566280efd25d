"""The `capi` command line: one module per command, loaded only when that command runs."""

from __future__ import annotations

import importlib
import sys

import click

from capi_stream.errors import CapiError

# name -> "module:attribute" of a click command; each owner adds its own line.
COMMANDS: dict[str, str] = {
    "migrate": "ops.cli.migrate_command:migrate",
    "worker": "consumers.cli:worker",
    "tenants": "ops.cli.tenants_command:tenants",
    "status": "ops.cli.status_command:status",
    "dlq": "ops.cli.dlq_command:dlq",
    "export": "ops.cli.export_command:export",
    "replay": "ops.cli.replay_command:replay",
    "dev": "devstack.dev_command:dev",
    "demo": "devstack.dev_command:demo",
    "meta-emulator": "devstack.emulator_command:meta_emulator",
    "serve": "producers.cli:serve",
    "publish": "producers.cli:publish",
    "pixel-snippet": "ops.cli.pixel_command:pixel_snippet",
    "pixel-origins": "ops.cli.pixel_command:pixel_origins",
    "topics": "ops.cli.topics_command:topics",
}


class LazyGroup(click.Group):
    """Imports a command's module only when it is invoked (fast `--help`, light workers)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command


@click.group(cls=LazyGroup)
def cli() -> None:
    """capi-stream: webhooks -> Kafka (Avro) -> Meta Conversions API."""


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except CapiError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
