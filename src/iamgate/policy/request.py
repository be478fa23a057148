"""What is being decided: the caller, the action, the resource ARN and the condition keys.

Condition-key names are case-insensitive, so a :class:`Request` always holds them
lower-cased; a multivalued key holds a tuple. Build one with :meth:`Request.build` from loose
input (a CLI, a test case) or, on a hot path, pass a :class:`Context` that is already
normalised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Caller", "CallerKind", "Context", "Request", "parse_caller"]


class Context(dict[str, "str | tuple[str, ...]"]):
    """Condition keys already lower-cased, values ``str`` or ``tuple[str, ...]``."""

    __slots__ = ()


class CallerKind:
    ANONYMOUS = "anonymous"
    ACCOUNT = "account"  # the account root (arn:...:root) or a bare account id
    USER = "user"
    ROLE = "role"  # an IAM role ARN used directly as the caller
    SESSION = "assumed-role"
    FEDERATED = "federated-user"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Caller:
    """A caller identity parsed from its ARN."""

    kind: str
    arn: str | None
    account: str | None = None
    role_name: str | None = None  # for sessions and roles

    @property
    def anonymous(self) -> bool:
        return self.kind == CallerKind.ANONYMOUS


ANONYMOUS = Caller(CallerKind.ANONYMOUS, None)

_IAM_ARN = re.compile(
    r"arn:(?P<partition>[a-z0-9-]+):(?P<service>iam|sts)::(?P<account>[0-9]{12}):(?P<rest>.+)", re.S
)
_ACCOUNT_ID = re.compile(r"[0-9]{12}")


@lru_cache(maxsize=4096)
def parse_caller(arn: str | None) -> Caller:
    if arn is None:
        return ANONYMOUS
    if _ACCOUNT_ID.fullmatch(arn):
        return Caller(CallerKind.ACCOUNT, arn, arn)
    m = _IAM_ARN.fullmatch(arn)
    if not m:
        return Caller(CallerKind.OTHER, arn)
    account, rest, service = m.group("account"), m.group("rest"), m.group("service")
    if service == "iam":
        if rest == "root":
            return Caller(CallerKind.ACCOUNT, arn, account)
        if rest.startswith("user/") and len(rest) > 5:
            return Caller(CallerKind.USER, arn, account)
        if rest.startswith("role/") and len(rest) > 5:
            return Caller(CallerKind.ROLE, arn, account, rest.rsplit("/", 1)[1])
        return Caller(CallerKind.OTHER, arn, account)
    if rest.startswith("assumed-role/"):
        pieces = rest.split("/")
        if len(pieces) >= 3 and pieces[1] and pieces[-1]:
            return Caller(CallerKind.SESSION, arn, account, pieces[1])
    if rest.startswith("federated-user/") and len(rest) > 15:
        return Caller(CallerKind.FEDERATED, arn, account)
    return Caller(CallerKind.OTHER, arn, account)


def _normalise_value(value: object) -> str | tuple[str, ...]:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return tuple(_normalise_value(v) for v in value)  # type: ignore[misc]
    return str(value)


_EXECUTE_API = "arn:aws:execute-api:"


def _fold_service(resource: str) -> str:
    """ARN service names compare case-insensitively (iamgate's choice): fold the third part."""
    if resource.startswith(_EXECUTE_API):
        return resource
    pieces = resource.split(":", 3)
    if len(pieces) == 4 and not pieces[2].islower():
        pieces[2] = pieces[2].lower()
        return ":".join(pieces)
    return resource


class Request:
    """One authorization question. Immutable by convention; cheap to build."""

    __slots__ = ("action", "caller", "context", "principal", "resource")

    def __init__(
        self,
        principal: str | None,
        action: str,
        resource: str,
        context: Mapping[str, object] | None = None,
    ) -> None:
        # the common cases inline (this runs on every request): an anonymous caller, an
        # execute-api ARN (its service name is already lower-case), a prepared Context
        self.principal = principal
        self.caller = ANONYMOUS if principal is None else parse_caller(principal)
        self.action = action
        self.resource = resource if resource.startswith(_EXECUTE_API) else _fold_service(resource)
        if type(context) is Context:
            self.context: Context = context
        elif context is None:
            self.context = Context()
        else:
            self.context = Context({str(k).lower(): _normalise_value(v) for k, v in context.items()})

    @classmethod
    def build(
        cls,
        principal: str | None,
        action: str,
        resource: str,
        context: Mapping[str, object] | None = None,
        *,
        derive_principal_keys: bool = True,
    ) -> Request:
        """A request from loose input, filling ``aws:PrincipalArn`` and ``aws:PrincipalAccount``
        from the caller when absent (the conformance format's rule; for a role session the
        PrincipalArn is the role's ARN)."""
        req = cls(principal, action, resource, context)
        if derive_principal_keys and principal is not None:
            caller = req.caller
            ctx = Context(req.context)
            if "aws:principalarn" not in ctx:
                arn = principal_arn_key(caller)
                if arn is not None:
                    ctx["aws:principalarn"] = arn
            if "aws:principalaccount" not in ctx and caller.account is not None:
                ctx["aws:principalaccount"] = caller.account
            req.context = ctx
        return req

    def __repr__(self) -> str:
        return f"Request({self.principal!r}, {self.action!r}, {self.resource!r}, {dict(self.context)!r})"


def principal_arn_key(caller: Caller) -> str | None:
    """``aws:PrincipalArn`` for a caller: a session's is its role's ARN (as IAM sets it)."""
    if caller.arn is None:
        return None
    if caller.kind == CallerKind.SESSION and caller.account and caller.role_name:
        partition = caller.arn.split(":", 2)[1]
        return f"arn:{partition}:iam::{caller.account}:role/{caller.role_name}"
    if caller.kind == CallerKind.ACCOUNT and caller.account and caller.arn == caller.account:
        return f"arn:aws:iam::{caller.account}:root"
    return caller.arn
