"""Names that have only one right spelling: HTTP methods, regions, account ids, the API a policy is
attached to, and the types of the condition keys API Gateway supplies.

:func:`resource_problems` finds the parts of an execute-api ``Resource`` entry that no request
can ever carry (an account id of 11 digits, a region like ``useast1``, a method ``GETT``,
another API's id or region), for validation to warn about. :func:`context_value_problem` checks
one request value against its key's type, for tools that build requests by hand (``iamgate
policy simulate``).

Wildcards are never reported for being wildcards: a part with ``*`` or ``?`` is reported only
when nothing it could match is right (``1111222233334*`` has 13 digits before its star).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from .compile import SHORTHAND, ApiRef
from .diagnostics import did_you_mean
from .operators import Family
from .patterns import GlobMatcher, glob_from_text
from .values import read_bool, read_date, read_ip, read_number

__all__ = [
    "HTTP_METHODS",
    "KEY_TYPES",
    "REGIONS",
    "NameProblem",
    "context_value_problem",
    "is_account",
    "is_region",
    "method_problem",
    "resource_problems",
]

# the methods API Gateway routes; a method ARN carries the request's own method, in upper case
HTTP_METHODS: Final = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")

# AWS regions, for did-you-mean help only: a region is judged by its shape, so a region added
# after this list was written is never reported
REGIONS: Final = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-1",
    "ap-south-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "mx-central-1",
    "sa-east-1",
    "cn-north-1",
    "cn-northwest-1",
    "us-gov-east-1",
    "us-gov-west-1",
    "eusc-de-east-1",
)

_REGION: Final = re.compile(r"[a-z]{2,}(?:-[a-z]+)+-[0-9]+")
_ACCOUNT: Final = re.compile(r"[0-9]{12}")
_WILD: Final = re.compile(r"[*?]")
_UPPER_WORD: Final = re.compile(r"[A-Z]+")

# condition keys whose values have a type (the global keys API Gateway supplies); others are text
KEY_TYPES: Final = {
    "aws:sourceip": Family.IP,
    "aws:vpcsourceip": Family.IP,
    "aws:currenttime": Family.DATE,
    "aws:tokenissuetime": Family.DATE,
    "aws:epochtime": Family.NUMERIC,
    "aws:multifactorauthage": Family.NUMERIC,
    "aws:securetransport": Family.BOOL,
    "aws:multifactorauthpresent": Family.BOOL,
    "aws:principalarn": Family.ARN,
    "execute-api:viadomainarn": Family.ARN,
}


@dataclass(frozen=True, slots=True)
class NameProblem:
    """``code`` is the last part of a diagnostic code (``invalid-region``)."""

    code: str
    message: str
    help: str | None = None


def is_region(text: str) -> bool:
    return _REGION.fullmatch(text) is not None


def is_account(text: str) -> bool:
    return _ACCOUNT.fullmatch(text) is not None


def _hint(value: str, choices: tuple[str, ...], cutoff: float = 0.6) -> str:
    hint = did_you_mean(value, choices, cutoff=cutoff)
    return hint + " " if hint else ""


def _literal_head(part: str) -> str:
    """The text before the first wildcard."""
    m = _WILD.search(part)
    return part if m is None else part[: m.start()]


def _can_be_account(part: str) -> bool:
    """Whether a (glob) account part matches some 12-digit account id."""
    literal = _WILD.sub("", part)
    if not literal.isascii() or not (literal.isdigit() or not literal):
        return False
    if "*" in part:
        return len(part.replace("*", "")) <= 12
    return len(part) == 12


def method_problem(text: str) -> NameProblem | None:
    """A request's method (a flag, a test case) that API Gateway never routes; any case."""
    if text.upper() in HTTP_METHODS:
        return None
    if text.upper() == "ANY":
        help = "a method defined as ANY is called, and evaluated, with the request's own method"
    else:
        help = _hint(text, HTTP_METHODS) + "methods: " + ", ".join(HTTP_METHODS)
    return NameProblem("unknown-method", f"'{text}' is not an HTTP method", help)


def _method_help(text: str) -> str:
    """Help for a policy's method position."""
    if text.upper() == "ANY":
        return (
            "a method defined as ANY is evaluated with the request's own method: write * for "
            "every method, or the methods one by one"
        )
    return _hint(text, HTTP_METHODS) + "methods: " + ", ".join(HTTP_METHODS) + " (or * for every method)"


def _fits_method(segment: str) -> bool:
    """Whether ``segment``, starting exactly where a request's method starts, matches the start
    of some ``METHOD/...``: a ``*`` matches anything (``/`` included) and ``?`` one character."""
    star = "*" in segment
    head = segment.partition("*")[0]
    for method in HTTP_METHODS:
        if not star and len(segment) < len(method):
            continue  # the segment ends (at '/' or the end) inside the method
        if all(h in ("?", t) for h, t in zip(head, method + "/", strict=False)):
            return True
    return False


def _method_slip(segment: str) -> bool:
    """An upper-case word one slip away from a method (``GETT``, ``PSOT``), or ``ANY``."""
    if not _UPPER_WORD.fullmatch(segment) or segment in HTTP_METHODS:
        return False
    return segment == "ANY" or did_you_mean(segment, HTTP_METHODS, cutoff=0.75) is not None


def _path_problems(path: str, value: str, what: str, method_index: int) -> list[NameProblem]:
    """The method position of ``API_ID/STAGE/METHOD/...`` (or ``STAGE/METHOD/...``).

    With only literal text before it, a request's method starts exactly there, and the check is
    exact. With a whole-segment ``*`` before it (``execute-api:/*/GETT/*``) that star could also
    stretch over the method and part of the path, so only an upper-case word one slip away from
    a method is reported, the way such a resource is always meant; any other wildcard before it
    (``pro?``, ``p*d``) leaves the position unknown and nothing is reported.
    """
    segments = path.partition("${")[0].split("/")
    if len(segments) <= method_index + (1 if "${" in path else 0):
        return []  # no method position, or a variable reaches into it
    segment = segments[method_index]
    before = segments[:method_index]
    if all(not _WILD.search(b) for b in before):
        if _fits_method(segment):
            return []
    elif not all(b == "*" or not _WILD.search(b) for b in before) or not _method_slip(segment):
        return []
    help = _method_help(segment)
    if before and before[-1] == "*":
        help += f"; to match a path segment named {segment}, give the method first (*/*/{segment})"
    return [
        NameProblem(
            "unknown-method",
            f"{what} '{value}' has '{segment}' where the HTTP method goes, and that is not a method "
            "(methods are upper case): this entry matches no request to a method",
            help,
        )
    ]


def resource_problems(value: str, what: str, api: ApiRef | None) -> list[NameProblem]:
    """Parts of an execute-api resource entry (ARN or ``execute-api:/`` shorthand) that no
    request to ``api`` (or, when it is None, to any API) can carry."""
    if value.startswith(SHORTHAND):
        return _path_problems(value[len(SHORTHAND) :], value, what, 1)
    parts = value.split(":", 5)
    if len(parts) < 4 or parts[2].lower() != "execute-api" or "${" in ":".join(parts[:5]):
        return []  # not execute-api; or a variable before the resource part, where it is literal
    whole = len(parts) == 6
    out: list[NameProblem] = []
    if whole or len(parts) > 4:
        out.extend(_region_problems(parts[3], value, what, api))
    if whole:
        out.extend(_account_problems(parts[4], value, what, api))
        out.extend(_api_id_problems(parts[5], value, what, api))
        out.extend(_path_problems(parts[5], value, what, 2))
    if api is not None and not _glob(parts[1], api.partition):
        out.append(
            NameProblem(
                "other-api",
                f"{what} '{value}' names partition '{parts[1]}', but the API is in '{api.partition}'",
                f"write {api.arn_prefix}/..., or the execute-api:/ shorthand",
            )
        )
    return out


def _glob(pattern: str, text: str) -> bool:
    return GlobMatcher(glob_from_text(pattern)).match(text)


def _region_problems(part: str, value: str, what: str, api: ApiRef | None) -> list[NameProblem]:
    if not _WILD.search(part) and not is_region(part) and (api is None or part != api.region):
        return [
            NameProblem(
                "invalid-region",
                f"{what} '{value}' names region '{part}', which is not a region: this entry "
                "matches no request",
                _hint(part, REGIONS) + "regions look like us-east-1 or eu-west-2; write * for any region",
            )
        ]
    if api is not None and not _glob(part, api.region):
        return [
            NameProblem(
                "other-api",
                f"{what} '{value}' names region '{part}', but the API the policy is attached to is in "
                f"'{api.region}': this entry matches no request it decides",
                f"write {api.arn_prefix}/..., or the execute-api:/ shorthand",
            )
        ]
    return []


def _account_problems(part: str, value: str, what: str, api: ApiRef | None) -> list[NameProblem]:
    if not _can_be_account(part) and (api is None or part != api.account):
        close = api is not None and did_you_mean(part, (api.account,), cutoff=0.8) is not None
        return [
            NameProblem(
                "invalid-account-id",
                f"{what} '{value}' names account '{part}', which is not a 12-digit account id: this "
                "entry matches no request",
                (f"did you mean '{api.account}' (the API's account)? " if close and api else "")
                + "an account id is 12 digits, e.g. 111122223333; write * for any account",
            )
        ]
    if api is not None and not _glob(part, api.account):
        return [
            NameProblem(
                "other-api",
                f"{what} '{value}' names account '{part}', but the API the policy is attached to "
                f"belongs to '{api.account}': this entry matches no request it decides",
                f"write {api.arn_prefix}/..., or the execute-api:/ shorthand",
            )
        ]
    return []


def _api_id_problems(resource: str, value: str, what: str, api: ApiRef | None) -> list[NameProblem]:
    if api is None:
        return []
    segment = resource.partition("/")[0]
    if "${" in segment:
        return []
    head = _literal_head(segment)
    fits = api.api_id.startswith(head) if head != segment else segment == api.api_id
    if fits:
        return []
    return [
        NameProblem(
            "other-api",
            f"{what} '{value}' names API '{segment}', but the policy is attached to API "
            f"'{api.api_id}': this entry matches no request it decides",
            "a resource policy only ever decides requests to its own API; write "
            f"{api.arn_prefix}/..., or the execute-api:/ shorthand",
        )
    ]


def context_value_problem(key: str, value: str) -> str | None:
    """Why ``value`` cannot be a request's value of condition key ``key``, or None."""
    family = KEY_TYPES.get(key.lower())
    if family is Family.IP and read_ip(value) is None:
        return f"'{value}' is not an IP address ({key} holds one IPv4 or IPv6 address, e.g. 203.0.113.9)"
    if family is Family.DATE and read_date(value) is None:
        return f"'{value}' is not a date ({key} holds ISO 8601, e.g. 2026-01-31T12:00:00Z)"
    if family is Family.NUMERIC and read_number(value) is None:
        return f"'{value}' is not a number ({key} holds one, e.g. 1767225600)"
    if family is Family.BOOL and read_bool(value) is None:
        return f"'{value}' is not true or false ({key} is a boolean)"
    if family is Family.ARN and (not value.startswith("arn:") or value.count(":") < 5):
        return f"'{value}' is not an ARN ({key} holds one, e.g. arn:aws:iam::111122223333:role/Dev)"
    return None
