"""Flag handling shared by the ``iamgate policy`` commands: checks of the flags that describe an
API or a request, the ``--api-id``/``--region``/``--account`` and ``--max-chars`` options, and
reading an input file or stdin.

A flag that no request can carry (``--method GETT``, ``--context aws:SourceIp=999.1.1.1``, a
``--path`` without its leading ``/``) is a usage error, exit status 2, naming the flag and the
value, with a did-you-mean where there is one: answering ImplicitDeny for a request that cannot
exist would look like a policy decision. Each ``*_problem`` function returns why a value is
refused, or None; :func:`checked` turns one into a click callback.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from iamgate.policy import DEFAULT_MAX_CHARS, ApiRef, CallerKind, parse_caller
from iamgate.policy.diagnostics import did_you_mean
from iamgate.policy.names import (
    HTTP_METHODS,
    REGIONS,
    context_value_problem,
    is_account,
    is_region,
    method_problem,
)
from iamgate.policy.validate import EXECUTE_API_ACTIONS

__all__ = [
    "InputError",
    "account_problem",
    "action_problem",
    "api_from_flags",
    "api_id_problem",
    "api_options",
    "checked",
    "context_problem",
    "max_chars_limit",
    "max_chars_option",
    "method_flag_problem",
    "path_problem",
    "principal_problem",
    "read_input",
    "region_problem",
    "resource_problem",
    "stage_problem",
]

F = TypeVar("F", bound=Callable[..., Any])

# API Gateway stage names: letters, digits, '-' and '_'; API ids: no '/', ':' or wildcards
_STAGE: Final = re.compile(r"[A-Za-z0-9_-]+")
_API_ID: Final = re.compile(r"[A-Za-z0-9._-]+")
_SERVICE: Final = re.compile(r"[A-Za-z0-9-]+")


def _hinted(message: str, hint: str | None) -> str:
    return f"{message}; {hint}" if hint else message


def region_problem(value: str) -> str | None:
    if is_region(value):
        return None
    return _hinted(f"'{value}' is not a region (like us-east-1)", did_you_mean(value, REGIONS))


def account_problem(value: str) -> str | None:
    return None if is_account(value) else f"'{value}' is not a 12-digit account id (like 111122223333)"


def api_id_problem(value: str) -> str | None:
    if _API_ID.fullmatch(value):
        return None
    return f"'{value}' is not an API id (letters, digits, '-', '_' and '.', e.g. a1b2c3d4e5)"


def stage_problem(value: str) -> str | None:
    if _STAGE.fullmatch(value):
        return None
    return f"'{value}' is not a stage name (letters, digits, '-' and '_', e.g. prod)"


def method_flag_problem(value: str) -> str | None:
    problem = method_problem(value)
    return None if problem is None else _hinted(problem.message, problem.help)


def path_problem(value: str) -> str | None:
    if not value.startswith("/"):
        return f"'{value}' does not start with '/': give the path after the stage, e.g. /{value}"
    if "?" in value or "#" in value:
        return (
            f"'{value}' has a query string or fragment, which the method ARN leaves out: give the path only"
        )
    return None


def principal_problem(value: str) -> str | None:
    if parse_caller(value).kind != CallerKind.OTHER:
        return None
    return (
        f"'{value}' is not a caller: give an account id or the ARN of an IAM user, role, role "
        "session (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION) or federated user; leave the "
        "flag out for an anonymous caller"
    )


def action_problem(value: str) -> str | None:
    service, sep, name = value.partition(":")
    if not sep or not _SERVICE.fullmatch(service) or not name or ":" in name:
        return f"'{value}' is not an action (service:Action, e.g. execute-api:Invoke)"
    if "*" in name or "?" in name:
        return f"'{value}' has a wildcard: a request names one action, e.g. execute-api:Invoke"
    if service.lower() == "execute-api" and name.lower() not in {a.lower() for a in EXECUTE_API_ACTIONS}:
        return _hinted(
            f"'{value}' is not an execute-api action ({', '.join(EXECUTE_API_ACTIONS)})",
            did_you_mean(name, EXECUTE_API_ACTIONS),
        )
    return None


def resource_problem(value: str) -> str | None:
    """A request's resource: an ARN; an execute-api one is a method ARN
    ``arn:PARTITION:execute-api:REGION:ACCOUNT:API_ID/STAGE/METHOD/PATH``."""
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[5]:
        return f"'{value}' is not an ARN (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE)"
    if parts[2].lower() != "execute-api":
        return None
    shape = "a method ARN is arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE/METHOD/PATH"
    pieces = parts[5].split("/", 3)
    for problem in (region_problem(parts[3]), account_problem(parts[4])):
        if problem is not None:
            return f"'{value}': {problem}"
    if len(pieces) < 4:
        return f"'{value}' has no method and path: {shape} (the root's path is empty: .../GET/)"
    api_id, stage, method, _ = pieces
    problem = api_id_problem(api_id) or stage_problem(stage)
    if problem is None and method not in HTTP_METHODS:
        problem = _hinted(
            f"'{method}' is not an HTTP method in upper case", did_you_mean(method, HTTP_METHODS)
        )
    return None if problem is None else f"'{value}': {problem}"


def context_problem(key: str, value: str) -> str | None:
    problem = context_value_problem(key, value)
    return None if problem is None else f"{key}={value}: {problem}"


Callback = Callable[[click.Context, click.Parameter, str | None], str | None]


def checked(check: Callable[[str], str | None]) -> Callback:
    """A click callback that refuses a value ``check`` finds a problem with."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None:
            problem = check(value)
            if problem is not None:
                raise click.BadParameter(problem, ctx=ctx, param=param)
        return value

    return callback


class InputError(click.FileError):
    """An input file that cannot be used: exit status 2, like other usage errors."""

    exit_code = 2


def read_input(path: str) -> tuple[bytes, str]:
    """Bytes of a file or of stdin ("-"), and the name to report them by; a usage error (exit 2)
    when the file cannot be read."""
    if path == "-":
        return sys.stdin.buffer.read(), "<stdin>"
    try:
        return Path(path).read_bytes(), path
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None


max_chars_option = click.option(
    "--max-chars",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_CHARS,
    show_default=True,
    help="Largest policy accepted, in characters (API Gateway's quota); 0 lifts the limit.",
)


def max_chars_limit(value: int) -> int | None:
    """``--max-chars`` as the engine takes it: 0 is no limit (None)."""
    return None if value == 0 else value


def api_options(purpose: str) -> Callable[[F], F]:
    """``--api-id``, ``--region`` and ``--account`` (given together), each checked."""

    def decorate(fn: F) -> F:
        fn = click.option("--account", callback=checked(account_problem), help="The API owner's account.")(fn)
        fn = click.option("--region", callback=checked(region_problem), help="The API's region.")(fn)
        return click.option("--api-id", callback=checked(api_id_problem), help=f"The API id {purpose}.")(fn)

    return decorate


def api_from_flags(api_id: str | None, region: str | None, account: str | None) -> ApiRef | None:
    """The API that ``--api-id``, ``--region`` and ``--account`` name, or None when none is
    given; a usage error when only some are."""
    given = [v is not None for v in (api_id, region, account)]
    if any(given) and not all(given):
        raise click.UsageError("--api-id, --region and --account go together")
    if all(given):
        return ApiRef(region, account, api_id)  # type: ignore[arg-type]
    return None
