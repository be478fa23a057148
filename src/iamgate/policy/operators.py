"""The condition operators: names, families and modifiers (IAM's condition operators).

A data module: it says what each operator *is*; ``conditions`` says how it evaluates.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .diagnostics import did_you_mean

__all__ = [
    "BASE_OPERATORS",
    "Family",
    "OperatorSpec",
    "SetOp",
    "parse_operator",
]


class Family(enum.Enum):
    STRING = "string"
    NUMERIC = "numeric"
    DATE = "date"
    BOOL = "bool"
    BINARY = "binary"
    IP = "ip"
    ARN = "arn"
    NULL = "null"


class SetOp(enum.Enum):
    FOR_ANY_VALUE = "ForAnyValue"
    FOR_ALL_VALUES = "ForAllValues"


@dataclass(frozen=True, slots=True)
class _Base:
    family: Family
    negated: bool
    positive: str  # the operator whose result a negated operator negates (NOR over values)
    variables: bool  # policy variables are expanded in values


_S, _N, _D = Family.STRING, Family.NUMERIC, Family.DATE
BASE_OPERATORS: dict[str, _Base] = {
    "StringEquals": _Base(_S, False, "StringEquals", True),
    "StringNotEquals": _Base(_S, True, "StringEquals", True),
    "StringEqualsIgnoreCase": _Base(_S, False, "StringEqualsIgnoreCase", True),
    "StringNotEqualsIgnoreCase": _Base(_S, True, "StringEqualsIgnoreCase", True),
    "StringLike": _Base(_S, False, "StringLike", True),
    "StringNotLike": _Base(_S, True, "StringLike", True),
    "NumericEquals": _Base(_N, False, "NumericEquals", False),
    "NumericNotEquals": _Base(_N, True, "NumericEquals", False),
    "NumericLessThan": _Base(_N, False, "NumericLessThan", False),
    "NumericLessThanEquals": _Base(_N, False, "NumericLessThanEquals", False),
    "NumericGreaterThan": _Base(_N, False, "NumericGreaterThan", False),
    "NumericGreaterThanEquals": _Base(_N, False, "NumericGreaterThanEquals", False),
    "DateEquals": _Base(_D, False, "DateEquals", False),
    "DateNotEquals": _Base(_D, True, "DateEquals", False),
    "DateLessThan": _Base(_D, False, "DateLessThan", False),
    "DateLessThanEquals": _Base(_D, False, "DateLessThanEquals", False),
    "DateGreaterThan": _Base(_D, False, "DateGreaterThan", False),
    "DateGreaterThanEquals": _Base(_D, False, "DateGreaterThanEquals", False),
    # AWS's pages disagree on variables in Bool; they are supported (harmless).
    "Bool": _Base(Family.BOOL, False, "Bool", True),
    "BinaryEquals": _Base(Family.BINARY, False, "BinaryEquals", False),
    "IpAddress": _Base(Family.IP, False, "IpAddress", False),
    "NotIpAddress": _Base(Family.IP, True, "IpAddress", False),
    "ArnEquals": _Base(Family.ARN, False, "ArnLike", True),
    "ArnLike": _Base(Family.ARN, False, "ArnLike", True),
    "ArnNotEquals": _Base(Family.ARN, True, "ArnLike", True),
    "ArnNotLike": _Base(Family.ARN, True, "ArnLike", True),
    "Null": _Base(Family.NULL, False, "Null", False),
}


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    """A parsed operator name such as ``ForAnyValue:StringLikeIfExists``."""

    name: str
    base: str
    set_op: SetOp | None
    if_exists: bool

    @property
    def family(self) -> Family:
        return BASE_OPERATORS[self.base].family

    @property
    def negated(self) -> bool:
        return BASE_OPERATORS[self.base].negated

    @property
    def positive(self) -> str:
        return BASE_OPERATORS[self.base].positive

    @property
    def variables(self) -> bool:
        return BASE_OPERATORS[self.base].variables


_ALL_NAMES = sorted([*BASE_OPERATORS, *(f"{b}IfExists" for b in BASE_OPERATORS if b != "Null")])


def parse_operator(name: str, *, hints: bool = True) -> tuple[OperatorSpec | None, str | None, str | None]:
    """Parse an operator name. Returns ``(spec, None, None)`` or ``(None, message, help)``.

    Names are matched with their documented spelling only (docs/policy-semantics.md); a
    different case is reported with a did-you-mean.
    """
    rest = name
    set_op: SetOp | None = None
    for candidate in SetOp:
        prefix = candidate.value + ":"
        if rest.startswith(prefix):
            set_op, rest = candidate, rest[len(prefix) :]
            break
    if_exists = rest.endswith("IfExists") and rest != "IfExists"
    base = rest[: -len("IfExists")] if if_exists else rest
    if base not in BASE_OPERATORS:
        hint = did_you_mean(rest, _ALL_NAMES) if hints else None
        if set_op is None and ":" in name and hint is None:
            hint = "the only set-operator prefixes are 'ForAnyValue:' and 'ForAllValues:'"
        return None, f"unknown condition operator '{name}'", hint
    if base == "Null" and if_exists:
        return None, "'Null' has no IfExists form", "use 'Null' on its own"
    if base == "Null" and set_op is not None:
        return (
            None,
            f"'{set_op.value}:' cannot be combined with 'Null'",
            "use 'Null' on its own: it tests whether the key is present",
        )
    return OperatorSpec(name, base, set_op, if_exists), None, None
