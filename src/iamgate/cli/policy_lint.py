"""``iamgate policy lint``: risky or pointless constructs in resource policies (docs/lint.md).

Each file is read and validated first; a valid policy is then linted. Validation diagnostics
come first in the output, then the lint findings. Exit status: 0 when no finding reaches
``--fail-on``; 1 when one does (validation errors included); 2 when the command line or an
input file cannot be used.
"""

from __future__ import annotations

import json
import sys

import click

from iamgate.cli.flags import api_from_flags, api_options, max_chars_limit, max_chars_option, read_input
from iamgate.policy import Diagnostic, Severity, has_errors, read_document
from iamgate.policy.lint import ENDPOINT_TYPES, lint_policy

__all__ = ["lint"]

FAIL_ON = {"error": Severity.ERROR, "warning": Severity.WARNING, "info": Severity.INFO, "never": None}


def _summary(name: str, diags: list[Diagnostic], linted: bool) -> str:
    counts = {s: sum(d.severity is s for d in diags) for s in Severity}
    text = (
        f"{counts[Severity.ERROR]} error(s), {counts[Severity.WARNING]} warning(s), "
        f"{counts[Severity.INFO]} info"
    )
    return f"{name}: {text}" if linted else f"{name}: invalid, not linted ({text})"


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--fail-on",
    type=click.Choice(list(FAIL_ON)),
    default="error",
    show_default=True,
    help="Exit 1 when a finding (validation diagnostics included) is at least this severe.",
)
@click.option(
    "--endpoint-type",
    type=click.Choice(ENDPOINT_TYPES, case_sensitive=False),
    metavar="[" + "|".join(ENDPOINT_TYPES) + "]",
    help="The API's endpoint type: enables the checks of keys only some endpoints supply "
    "(aws:SourceIp on PRIVATE, VPC keys on REGIONAL and EDGE).",
)
@api_options("the policy is attached to (with --region and --account): resources of other APIs are reported")
@max_chars_option
def lint(
    files: tuple[str, ...],
    fmt: str,
    fail_on: str,
    endpoint_type: str | None,
    api_id: str | None,
    region: str | None,
    account: str | None,
    max_chars: int,
) -> None:
    """Find risky or pointless constructs in resource policy FILES ("-" for stdin).

    \b
    Text output: FILE:LINE:COL: severity code: message, an indented help line, and per file
    a summary line. JSON output: {"files": [{"file", "valid", "findings": [...]}]}.
    A policy with validation errors is reported with them and not linted.
    Exit status 1 when any finding reaches --fail-on (default: error), 2 when a file
    cannot be read.
    """
    api = api_from_flags(api_id, region, account)
    reports: list[tuple[str, list[Diagnostic], bool]] = []
    for path in files:
        data, name = read_input(path)  # exit status 2 when it cannot be read
        policy, diags = read_document(data, max_chars=max_chars_limit(max_chars), api=api)
        linted = policy is not None and not has_errors(diags)
        if policy is not None and linted:
            diags.extend(lint_policy(policy, endpoint_type=endpoint_type))
        reports.append((name, [d.with_source(name) for d in diags], linted))
    threshold = FAIL_ON[fail_on]
    failed = threshold is not None and any(
        d.severity.rank >= threshold.rank for _, diags, _ in reports for d in diags
    )
    if fmt == "json":
        out = {
            "files": [
                {"file": name, "valid": linted, "findings": [d.to_dict() for d in diags]}
                for name, diags, linted in reports
            ]
        }
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        for name, diags, linted in reports:
            for d in diags:
                click.echo(d.render())
            click.echo(_summary(name, diags, linted))
    sys.exit(1 if failed else 0)
