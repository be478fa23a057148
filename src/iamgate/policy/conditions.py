"""Condition evaluation: one :class:`Atom` per ``operator -> key -> values`` clause.

The rules (docs/policy-semantics.md, Conditions), in the order ``Atom.evaluate`` applies them:

* key absent: ``...IfExists`` -> true; ``Null`` -> whether ``"true"`` was asked for;
  ``ForAnyValue:`` -> false; ``ForAllValues:`` -> true; other negated operators -> true;
  other positive operators -> false;
* ``Null`` with the key present: true when ``"false"`` was asked for (an empty list of values
  counts as absent);
* set operators apply the base operator to each request value;
* a multivalued request key under a plain operator never matches;
* one request value against the policy values: positive operators OR over the values,
  negated operators NOR; a pair that cannot be read for the operator's type (a request value
  that is not a number, an address, an ARN) is "no match" and never makes a negated operator
  true on its own; a variable without a value and without a default is "no match", which a
  negated operator counts as "not equal".
"""

from __future__ import annotations

import operator as _op
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .operators import Family, OperatorSpec, SetOp
from .patterns import ArnMatcher, GlobMatcher
from .values import IPNetwork, read_base64, read_bool, read_date, read_ip, read_network, read_number
from .variables import Template, has_vars, resolve, template_text

__all__ = ["Atom", "AtomTrace", "Context", "PairResult", "build_atom"]

Context = Mapping[str, str | tuple[str, ...]]
PairResult = bool | None  # None: the pair could not be compared (wrong type)

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": _op.eq,
    "LessThan": _op.lt,
    "LessThanEquals": _op.le,
    "GreaterThan": _op.gt,
    "GreaterThanEquals": _op.ge,
}


@dataclass(frozen=True, slots=True)
class AtomTrace:
    """Why a clause held or not, for explanations."""

    result: bool
    present: bool
    request_values: tuple[str, ...]
    policy_values: tuple[str, ...]  # resolved where variables were used
    note: str


class _Value:
    """One policy value, prepared for its operator family."""

    __slots__ = ("arn", "binary", "glob", "network", "number", "stamp", "template", "text", "truth")

    def __init__(self, template: Template) -> None:
        self.template = template
        self.text: str | None = None if has_vars(template) else template_text(template)
        self.glob: GlobMatcher | None = None
        self.arn: ArnMatcher | None = None
        self.number: Decimal | None = None
        self.stamp: int | None = None
        self.truth: bool | None = None
        self.binary: bytes | None = None
        self.network: IPNetwork | None = None


class Atom:
    """A compiled condition clause. ``evaluate(context)`` -> bool; ``trace`` explains it."""

    __slots__ = ("_compare", "key", "spec", "values", "written_key")

    def __init__(self, spec: OperatorSpec, key: str, templates: tuple[Template, ...]) -> None:
        self.spec = spec
        self.written_key = key
        self.key = key.lower()
        self.values = tuple(self._prepare(t) for t in templates)
        self._compare = self._comparer()

    # --- preparation ----------------------------------------------------------------------
    def _prepare(self, template: Template) -> _Value:
        v = _Value(template)
        family, text = self.spec.family, v.text
        if text is None:
            return v  # resolved per request
        if family is Family.NUMERIC:
            v.number = read_number(text)
        elif family is Family.DATE:
            v.stamp = read_date(text)
        elif family is Family.BOOL:
            v.truth = read_bool(text)
        elif family is Family.BINARY:
            v.binary = read_base64(text)
        elif family is Family.IP:
            v.network = read_network(text)
        elif family is Family.NULL:
            v.truth = read_bool(text)
        elif family is Family.ARN:
            v.arn = ArnMatcher(v.template)  # type: ignore[arg-type]
        elif self.spec.positive == "StringLike":
            v.glob = GlobMatcher(v.template)  # type: ignore[arg-type]
        return v

    def _comparer(self) -> Callable[[str, _Value, Context], PairResult]:
        family, positive = self.spec.family, self.spec.positive
        if family is Family.STRING:
            if positive == "StringEquals":
                return _string_equals
            if positive == "StringEqualsIgnoreCase":
                return _string_equals_ci
            return _string_like
        if family is Family.NUMERIC:
            return _numeric(_ORDER[positive[len("Numeric") :]])
        if family is Family.DATE:
            return _date(_ORDER[positive[len("Date") :]])
        if family is Family.BOOL:
            return _bool
        if family is Family.BINARY:
            return _binary
        if family is Family.IP:
            return _ip
        return _arn

    # --- evaluation -----------------------------------------------------------------------
    def evaluate(self, context: Context) -> bool:
        spec = self.spec
        value = context.get(self.key)
        if value is None:
            if spec.if_exists:
                return True
            if spec.family is Family.NULL:
                return any(v.truth is True for v in self.values)
            if spec.set_op is SetOp.FOR_ANY_VALUE:
                return False
            if spec.set_op is SetOp.FOR_ALL_VALUES:
                return True
            return spec.negated
        if spec.family is Family.NULL:
            absent = value == ()
            return any(v.truth is absent for v in self.values)
        if spec.set_op is not None:
            values = value if isinstance(value, tuple) else (value,)
            if spec.set_op is SetOp.FOR_ANY_VALUE:
                return any(self.single(r, context) for r in values)
            return all(self.single(r, context) for r in values)
        if isinstance(value, tuple):
            return False
        return self.single(value, context)

    def single(self, request_value: str, context: Context) -> bool:
        compare = self._compare
        if self.spec.negated:
            return all(compare(request_value, v, context) is False for v in self.values)
        return any(compare(request_value, v, context) is True for v in self.values)

    def trace(self, context: Context) -> AtomTrace:
        value = context.get(self.key)
        present = value is not None
        request_values: tuple[str, ...] = (
            () if value is None else (value if isinstance(value, tuple) else (value,))
        )
        resolved = []
        unresolved = False
        for v in self.values:
            if v.text is not None:
                resolved.append(v.text)
                continue
            glob = resolve(v.template, context)
            if glob is None:
                unresolved = True
                resolved.append(template_text(v.template) + " (no value)")
            else:
                resolved.append(template_text(glob))
        result = self.evaluate(context)
        spec = self.spec
        if not present:
            note = f"key {self.written_key} is not in the request"
            if spec.if_exists:
                note += "; ...IfExists makes the condition true"
            elif spec.family is Family.NULL:
                note += "; Null tests for exactly that"
            elif spec.set_op is SetOp.FOR_ALL_VALUES:
                note += "; ForAllValues over no values is true"
            elif spec.set_op is SetOp.FOR_ANY_VALUE:
                note += "; ForAnyValue over no values is false"
            elif spec.negated:
                note += "; a negated operator is true for a missing key"
            else:
                note += "; a positive operator is false for a missing key"
        elif isinstance(value, tuple) and spec.set_op is None and spec.family is not Family.NULL:
            note = "the key has several values; only ForAnyValue:/ForAllValues: can test it"
        else:
            note = "matched" if result else "did not match"
            if unresolved:
                note += "; a policy variable had no value and no default"
        return AtomTrace(result, present, request_values, tuple(resolved), note)


# --- pair comparisons: (request value, policy value, context) -> True / False / None -------
def _text(v: _Value, context: Context) -> str | None:
    if v.text is not None:
        return v.text
    glob = resolve(v.template, context)
    return None if glob is None else template_text(glob)


def _string_equals(r: str, v: _Value, context: Context) -> PairResult:
    text = _text(v, context)
    return False if text is None else r == text


def _string_equals_ci(r: str, v: _Value, context: Context) -> PairResult:
    text = _text(v, context)
    return False if text is None else r.lower() == text.lower()


def _string_like(r: str, v: _Value, context: Context) -> PairResult:
    matcher = v.glob
    if matcher is None:
        glob = resolve(v.template, context)
        if glob is None:
            return False
        matcher = GlobMatcher(glob)
    return matcher.match(r)


def _numeric(
    order: Callable[[Any, Any], bool],
) -> Callable[[str, _Value, Context], PairResult]:
    def compare(r: str, v: _Value, context: Context) -> PairResult:
        number = read_number(r)
        if number is None or v.number is None:
            return None
        return order(number, v.number)

    return compare


def _date(order: Callable[[Any, Any], bool]) -> Callable[[str, _Value, Context], PairResult]:
    def compare(r: str, v: _Value, context: Context) -> PairResult:
        stamp = read_date(r)
        if stamp is None or v.stamp is None:
            return None
        return order(stamp, v.stamp)

    return compare


def _bool(r: str, v: _Value, context: Context) -> PairResult:
    if v.text is None:
        text = _text(v, context)
        if text is None:
            return False
        policy = read_bool(text)
    else:
        policy = v.truth
    request = read_bool(r)
    if request is None or policy is None:
        return None
    return request is policy


def _binary(r: str, v: _Value, context: Context) -> PairResult:
    data = read_base64(r)
    if data is None or v.binary is None:
        return None
    return data == v.binary


def _ip(r: str, v: _Value, context: Context) -> PairResult:
    addr = read_ip(r)
    net = v.network
    if addr is None or net is None:
        return None
    version, number = addr
    if version != net.version:
        return False  # family mismatch: not in the range
    return (number >> (net.max_prefixlen - net.prefixlen)) == (
        int(net.network_address) >> (net.max_prefixlen - net.prefixlen)
    )


def _arn(r: str, v: _Value, context: Context) -> PairResult:
    if r.count(":") < 5:
        return None  # not an ARN
    matcher = v.arn
    if matcher is None:
        glob = resolve(v.template, context)
        if glob is None:
            return False
        matcher = ArnMatcher(glob)
    return matcher.match(r)


def build_atom(spec: OperatorSpec, key: str, templates: tuple[Template, ...]) -> Atom:
    return Atom(spec, key, templates)
