"""The outcome of evaluating one policy for one request, as a value.

A :class:`Decision` holds the effect, the *determining* statements (the applicable Deny
statements for an explicit deny, the applicable Allow statements for an allow), the kind of
principal match behind an allow (``FULL`` or only ``ACCOUNT``, which the gateway's same-account
rule needs), statements whose evaluation failed, and on request a trace of every
statement.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .conditions import AtomTrace

__all__ = [
    "Decision",
    "DecisionEffect",
    "ElementCheck",
    "MatchKind",
    "StatementRef",
    "StatementTrace",
    "combine_policies",
]


class DecisionEffect(enum.Enum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


class MatchKind(enum.Enum):
    """How a statement's principal part matched the caller."""

    NONE = "none"
    ACCOUNT = "account"  # matched only because the caller's account is named
    FULL = "full"  # "*", the caller itself, its role, or a NotPrincipal that excludes it not


@dataclass(frozen=True, slots=True)
class StatementRef:
    index: int
    sid: str | None

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "sid": self.sid}

    def __str__(self) -> str:
        return f"#{self.index}" + (f" ({self.sid})" if self.sid else "")


@dataclass(frozen=True, slots=True)
class ElementCheck:
    """One element of one statement: did it match, and why."""

    element: str  # Principal, NotPrincipal, Action, NotAction, Resource, NotResource
    matched: bool
    detail: str


@dataclass(frozen=True, slots=True)
class StatementTrace:
    ref: StatementRef
    effect: str
    applies: bool
    principal_match: MatchKind
    elements: tuple[ElementCheck, ...]
    conditions: tuple[tuple[str, str, AtomTrace], ...]  # (operator, key, trace)
    error: str | None = None

    @property
    def failed(self) -> str | None:
        """The first element that kept the statement from applying."""
        for check in self.elements:
            if not check.matched:
                return check.element
        for _, _, t in self.conditions:
            if not t.result:
                return "Condition"
        return None

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.ref.index,
            "sid": self.ref.sid,
            "effect": self.effect,
            "applies": self.applies,
            "principal_match": self.principal_match.value,
            "failed": self.failed,
            "elements": [
                {"element": c.element, "matched": c.matched, "detail": c.detail} for c in self.elements
            ],
            "conditions": [
                {
                    "operator": op,
                    "key": key,
                    "result": t.result,
                    "present": t.present,
                    "request_values": list(t.request_values),
                    "policy_values": list(t.policy_values),
                    "note": t.note,
                }
                for op, key, t in self.conditions
            ],
            **({"error": self.error} if self.error else {}),
        }


@dataclass(frozen=True, slots=True)
class Decision:
    effect: DecisionEffect
    determining: tuple[StatementRef, ...] = ()
    principal_match: MatchKind = MatchKind.NONE
    errors: tuple[tuple[StatementRef, str], ...] = ()
    trace: tuple[StatementTrace, ...] | None = field(default=None, compare=False)

    @property
    def allowed(self) -> bool:
        return self.effect is DecisionEffect.ALLOW

    @property
    def explicit_deny(self) -> bool:
        return self.effect is DecisionEffect.EXPLICIT_DENY

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "decision": self.effect.value,
            "statements": [r.to_dict() for r in self.determining],
            "principal_match": self.principal_match.value,
        }
        if self.errors:
            out["errors"] = [{**r.to_dict(), "error": e} for r, e in self.errors]
        if self.trace is not None:
            out["trace"] = [t.to_dict() for t in self.trace]
        return out


def combine_policies(decisions: list[tuple[str, Decision]]) -> tuple[DecisionEffect, str | None]:
    """Several policies that must all allow (an API's resource policy with its stage's and
    route's own, docs/policy-semantics.md): an explicit deny in any is an explicit deny, else a
    policy that does not allow is an implicit deny, else an allow. With the label of the policy
    that decided a denial (the first with an explicit deny, else the first that did not allow)."""
    for label, decision in decisions:
        if decision.effect is DecisionEffect.EXPLICIT_DENY:
            return DecisionEffect.EXPLICIT_DENY, label
    for label, decision in decisions:
        if decision.effect is not DecisionEffect.ALLOW:
            return DecisionEffect.IMPLICIT_DENY, label
    return DecisionEffect.ALLOW, None
