"""The parsed policy: what the document says, with where it says it.

Produced by ``parse``; read by ``compile``, ``reference``, ``explain`` and ``lint``. Values keep
their source text (numbers and booleans already turned into their string form).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .diagnostics import Location
from .operators import OperatorSpec

__all__ = [
    "ConditionClause",
    "Effect",
    "Policy",
    "PolicyKind",
    "PrincipalEntry",
    "Statement",
    "Text",
]

VARIABLES_VERSION = "2012-10-17"


class Effect(enum.Enum):
    ALLOW = "Allow"
    DENY = "Deny"


class PolicyKind(enum.Enum):
    """A resource policy names principals; an identity policy (IAM identity policies, policies
    returned by Lambda authorizers) must not, and applies to its owner."""

    RESOURCE = "resource"
    IDENTITY = "identity"


@dataclass(frozen=True, slots=True)
class Text:
    """A string from the document with its location."""

    value: str
    location: Location


@dataclass(frozen=True, slots=True)
class PrincipalEntry:
    """One value of a ``Principal`` map: ``kind`` is AWS, Service, Federated or CanonicalUser;
    ``"*"`` written as a bare string is kind ``*``."""

    kind: str
    value: str
    location: Location


@dataclass(frozen=True, slots=True)
class ConditionClause:
    """One ``operator -> key -> values`` triple of a Condition block."""

    operator: OperatorSpec
    key: str  # as written
    values: tuple[Text, ...]
    location: Location  # of the key


@dataclass(frozen=True, slots=True)
class Statement:
    index: int
    sid: str | None
    effect: Effect
    principals: tuple[PrincipalEntry, ...] | None  # None: no Principal/NotPrincipal element
    not_principal: bool
    actions: tuple[Text, ...]
    not_action: bool
    resources: tuple[Text, ...]
    not_resource: bool
    conditions: tuple[ConditionClause, ...]
    location: Location
    # True when the statement had errors: it is kept only so that validation can report the
    # problems of its other parts too; a policy with a broken statement is never compiled.
    broken: bool = False

    @property
    def label(self) -> str:
        return f"#{self.index}" + (f" ({self.sid})" if self.sid else "")


@dataclass(frozen=True, slots=True)
class Policy:
    version: str | None
    id: str | None
    statements: tuple[Statement, ...]
    kind: PolicyKind = PolicyKind.RESOURCE

    @property
    def variables_enabled(self) -> bool:
        """Policy variables are expanded only under Version 2012-10-17."""
        return self.version == VARIABLES_VERSION
