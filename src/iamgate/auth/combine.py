"""How the resource policy combines with the caller's side (docs/authentication.md).

One function per authorization type, all pure: they take decisions and return an
:class:`Outcome`. The tables:

* **Table A** (same account; Lambda and Cognito authorizers are always "same account"): an
  explicit deny on either side wins; else an allow on either side allows; else implicit deny.
* **Table B** (cross account, ``AWS_IAM``): an explicit deny wins; both sides must allow.
* A resource-policy allow that names only the caller's **account** (an account match) grants
  nothing by itself to a same-account IAM caller: it delegates to the account, whose identity
  policy must allow (API Gateway's tables do not say; IAM's rule).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from iamgate.policy import Decision, DecisionEffect, MatchKind

__all__ = ["Outcome", "Side", "aws_iam", "cognito", "custom", "none", "table_a", "table_b"]


class Side(enum.Enum):
    ALLOW = "Allow"
    DENY = "Deny"  # explicit
    NEITHER = "Neither"


def side(decision: Decision | None) -> Side:
    if decision is None:
        return Side.NEITHER
    if decision.effect is DecisionEffect.ALLOW:
        return Side.ALLOW
    if decision.effect is DecisionEffect.EXPLICIT_DENY:
        return Side.DENY
    return Side.NEITHER


@dataclass(frozen=True, slots=True)
class Outcome:
    allowed: bool
    explicit: bool  # an explicit deny (the denial message says so)
    denied_by: str | None  # "resource" | "identity" | "authorizer" | None


ALLOW: Final = Outcome(True, False, None)


def table_a(caller: Side, resource: Side, *, caller_name: str = "identity") -> Outcome:
    if resource is Side.DENY:
        return Outcome(False, True, "resource")
    if caller is Side.DENY:
        return Outcome(False, True, caller_name)
    if Side.ALLOW in (caller, resource):
        return ALLOW
    return Outcome(False, False, caller_name if resource is Side.NEITHER else "resource")


def table_b(caller: Side, resource: Side) -> Outcome:
    if resource is Side.DENY:
        return Outcome(False, True, "resource")
    if caller is Side.DENY:
        return Outcome(False, True, "identity")
    if caller is Side.ALLOW and resource is Side.ALLOW:
        return ALLOW
    return Outcome(False, False, "resource" if caller is Side.ALLOW else "identity")


def none(resource: Decision | None) -> Outcome:
    """``NONE``: with a resource policy an explicit allow is required; without one, public."""
    if resource is None:
        return ALLOW
    s = side(resource)
    if s is Side.ALLOW:
        return ALLOW
    return Outcome(False, s is Side.DENY, "resource")


def aws_iam(
    identity: Decision,
    resource: Decision | None,
    *,
    same_account: bool,
    cross_account_without_policy: str = "deny",
) -> Outcome:
    """``AWS_IAM``: Table A in the same account, Table B across accounts.

    Without a resource policy a same-account caller needs only its identity allow; for a
    cross-account caller the tables are silent: ``"deny"`` (Table B read
    literally, the default) or ``"identity"`` (the identity policy alone decides).
    """
    caller = side(identity)
    if resource is None:
        if same_account or cross_account_without_policy == "identity":
            if caller is Side.ALLOW:
                return ALLOW
            return Outcome(False, caller is Side.DENY, "identity")
        if caller is Side.DENY:
            return Outcome(False, True, "identity")
        return Outcome(False, False, "resource")
    rp = side(resource)
    if same_account:
        if rp is Side.ALLOW and resource.principal_match is MatchKind.ACCOUNT:
            rp = Side.NEITHER  # the account is named, not the caller: the identity must allow
        return table_a(caller, rp)
    return table_b(caller, rp)


def custom(authorizer: Decision, resource: Decision | None) -> Outcome:
    """``CUSTOM`` phase 2 (phase 1, the explicit-deny check before the authorizer runs, is the
    caller's job): the authorizer's policy and the resource policy with Table A."""
    return table_a(side(authorizer), side(resource), caller_name="authorizer")


def cognito(resource: Decision | None, *, mode: str = "prose") -> Outcome:
    """``COGNITO_USER_POOLS`` after a valid token; AWS's prose and Table A disagree: ``"prose"`` (the
    default) requires an explicit resource-policy allow; ``"table"`` applies Table A with the
    valid token as an allow (a silent policy then allows)."""
    if resource is None:
        return ALLOW
    rp = side(resource)
    if mode == "table":
        return table_a(Side.ALLOW, rp, caller_name="authorizer")
    if rp is Side.ALLOW:
        return ALLOW
    return Outcome(False, rp is Side.DENY, "resource")
