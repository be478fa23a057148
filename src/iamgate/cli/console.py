"""``iamgate console ...``: what the web console needs from the command line.

``iamgate console hash-password`` makes the argon2 hash of a console user's password for
``identities.console_users`` (docs/console.md), with the parameters sign-in verifies with, so
nobody has to hash by hand. The password is read from the terminal without echo (asked twice)
or, with ``--stdin``, from the first line of standard input (for scripts); it is never an
argument (arguments are visible to other users in the process list and kept in shell history).
"""

from __future__ import annotations

import os
import sys

import click

from iamgate.console.signin import hash_password, password_problem

__all__ = ["console"]


@click.group()
def console() -> None:
    """The web console (docs/console.md)."""


@console.command("hash-password")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the hash to this file (created with mode 0600) for password_hash_file.",
)
def hash_password_command(from_stdin: bool, output: str | None) -> None:
    """Print the argon2 hash of a console user's password."""
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
    else:
        password = click.prompt(
            "Password", hide_input=True, confirmation_prompt=True, err=True, show_default=False
        )
    problem = password_problem(password)
    if problem is not None:
        raise click.UsageError(f"not hashed: {problem}")
    hashed = hash_password(password)
    if output is None:
        click.echo(hashed)
        return
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(hashed + "\n")
    except OSError as exc:
        raise click.UsageError(f"--output {output}: {exc.strerror}") from None
    click.echo(f"wrote the hash to {output} (mode 0600): set password_hash_file: {output}", err=True)
