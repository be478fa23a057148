"""``iamgate serve --help``: every option says what it is for (issue 14, item 13a)."""

from __future__ import annotations

import re

from click.testing import CliRunner

from iamgate.cli import cli
from iamgate.cli.serve import serve


def help_text() -> str:
    result = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def option_help(text: str, option: str) -> str:
    """The help of ``option``: from its name up to the next option."""
    found = re.search(rf"{re.escape(option)} \S+ (.*?)(?= --[a-z]|$)", text)
    assert found, f"{option} is not in the help"
    return found.group(1)


def test_every_option_has_help_text() -> None:
    missing = [p.name for p in serve.params if not getattr(p, "help", None)]
    assert missing == []


def test_admin_host_says_what_it_is() -> None:
    assert "admin port" in option_help(help_text(), "--admin-host")


def test_admin_port_names_everything_it_serves() -> None:
    text = option_help(help_text(), "--admin-port")
    for served in ("/healthz", "/readyz", "/metrics", "/usage", "management API"):
        assert served in text, served
    assert "0 disables" in text
