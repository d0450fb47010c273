"""`qaio`: the command group."""

from __future__ import annotations

import click

from qaio.cli.demo import demo
from qaio.cli.enqueue import enqueue
from qaio.cli.inspect import info, jobs, purge
from qaio.cli.worker import worker


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qaio")
def cli() -> None:
    """qaio: a fast, crash-safe task queue. Start with `qaio demo`."""


for command in (worker, enqueue, info, jobs, purge, demo):
    cli.add_command(command)


def main() -> None:
    cli()
