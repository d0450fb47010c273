"""`qaio`: the command group. Subcommands are imported when they run, so a worker never loads the
modules (rich's tables and progress bars) that only the other commands use."""

from __future__ import annotations

import importlib

import click

#: Subcommand name -> "module:attribute" of its click command.
COMMANDS = {
    "worker": "qaio.cli.worker:worker",
    "enqueue": "qaio.cli.enqueue:enqueue",
    "info": "qaio.cli.inspect:info",
    "jobs": "qaio.cli.inspect:jobs",
    "purge": "qaio.cli.inspect:purge",
    "demo": "qaio.cli.demo:demo",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qaio")
def cli() -> None:
    """qaio: a fast, crash-safe task queue. Start with `qaio demo`."""


def main() -> None:
    cli()
