"""The `capi` command line: one module per command, loaded only when that command runs."""

from __future__ import annotations

import importlib
import sys

import click

from capi_stream.errors import CapiError

# name -> "module:attribute" of a click command; each owner adds its own line.
COMMANDS: dict[str, str] = {
    "migrate": "capi_stream.cli.migrate_command:migrate",
    "worker": "consumers.cli:worker",
    "tenants": "capi_stream.cli.tenants_command:tenants",
    "status": "capi_stream.cli.status_command:status",
    "dlq": "capi_stream.cli.dlq_command:dlq",
    "export": "capi_stream.cli.export_command:export",
    "replay": "capi_stream.cli.replay_command:replay",
    "dev": "capi_stream.cli.dev_command:dev",
    "demo": "capi_stream.cli.dev_command:demo",
    "meta-emulator": "capi_stream.cli.emulator_command:meta_emulator",
    "serve": "producers.cli:serve",
    "publish": "producers.cli:publish",
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
    except Exception as exc:
        # Configuration failures (database, broker, settings) become one or two lines
        # naming the setting and the fix; anything else keeps its traceback.
        from capi_stream.cli.diagnose import explain

        message = explain(exc)
        if message is None and isinstance(exc, CapiError):
            message = f"error: {exc}"
        if message is None:
            raise
        click.echo(message, err=True)
        sys.exit(2)
