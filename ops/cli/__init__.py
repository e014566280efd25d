"""The `capi` command line: one module per command, loaded only when that command runs.

Every command, at any depth, gets ``-h``/``--help`` (from the root's context settings, which
child contexts inherit) and ``--version``, and its line in a group's command list is its
first sentence whole, never cut with "...": both are added where a command is loaded
(``finish_command``), so a command module needs nothing special.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
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


def package_version() -> str:
    """The installed capi-stream version ("unknown" when run from an uninstalled tree)."""
    try:
        return importlib.metadata.version("capi-stream")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"capi {package_version()}")
    ctx.exit()


def _version_option() -> click.Option:
    return click.Option(
        ["--version"],
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_show_version,
        help="Show the version and exit.",
    )


def first_sentence(text: str) -> str:
    """The first sentence of a help text's first paragraph, whole (a group's command list
    shows it; Click's own short help cuts it at ~45 characters with "...")."""
    words = inspect.cleandoc(text).partition("\n\n")[0].split()
    if words and words[0] == "\b":
        words = words[1:]
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ""
        if word.endswith(".") and not following[:1].islower():
            return " ".join(words[: index + 1])
    return " ".join(words)


def finish_command(command: click.Command) -> click.Command:
    """Give ``command`` and its subcommands ``--version`` and a complete short help."""
    if not any("--version" in param.opts for param in command.params):
        command.params.append(_version_option())
    if command.short_help is None and command.help:
        command.short_help = first_sentence(command.help)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            finish_command(sub)
    return command


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
        return finish_command(command)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """capi-stream: webhooks -> Kafka (Avro) -> Meta Conversions API."""


finish_command(cli)


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
        from capi_stream.diagnose import explain

        message = explain(exc)
        if message is None and isinstance(exc, CapiError):
            message = f"error: {exc}"
        if message is None:
            raise
        click.echo(message, err=True)
        sys.exit(2)
