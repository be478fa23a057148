"""The ``iamgate`` command line: ``iamgate policy ...`` (and, as they land, ``serve`` and more)."""

from __future__ import annotations

import click

from iamgate import __version__
from iamgate._compiled import state as compiled_state
from iamgate.cli.console import console
from iamgate.cli.manage import apply, export
from iamgate.cli.policy import policy
from iamgate.cli.policy_lint import lint
from iamgate.cli.serve import config_group, serve
from iamgate.cli.usage import usage

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(
    __version__,
    prog_name="iamgate",
    message=f"%(prog)s, version %(version)s (request path: {compiled_state()})",
)
def cli() -> None:
    """iamgate: an API gateway that enforces AWS API Gateway resource policies."""


policy.add_command(lint)
cli.add_command(policy)
cli.add_command(serve)
cli.add_command(config_group)
cli.add_command(usage)
cli.add_command(apply)
cli.add_command(export)
cli.add_command(console)


def main() -> None:
    cli()
