"""Fuzz properties of the policy engine: any input to ``prepare`` yields a policy or diagnostics.

Reading, parsing, validating and compiling never raise, whatever the input (bytes, text with lone
surrogates, arbitrary JSON values as Python objects or text, mostly-valid policies with random
corruptions); every diagnostic is well formed; a compiled policy evaluates random requests
without an engine fault and the same way with and without ``explain``; deep nesting, huge strings
and pathological wildcards stay cheap. Cost is asserted as *work done* (calls counted), never as
time; ``pytest.mark.timeout`` only guards against hangs.

``IAMGATE_FUZZ_SCALE=N`` multiplies every example budget (and hang guard) by N for a longer run.
See docs/fuzzing.md.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from iamgate.policy import ApiRef, DecisionEffect, Prepared, Request, prepare
from iamgate.policy import patterns as patterns_module
from iamgate.policy._json import MAX_DEPTH, JsonNode, from_python, read_json
from iamgate.policy.operators import BASE_OPERATORS, Family
from iamgate.policy.patterns import ArnMatcher, GlobMatcher, glob_from_text
from iamgate.policy.prepare import HARD_MAX_CHARS
from tests.policy.agreement import assert_decide_agrees

SCALE = max(1, int(os.environ.get("IAMGATE_FUZZ_SCALE", "1")))
API = ApiRef("us-east-1", "111122223333", "a1b2c3d4e5")
ARN = "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5"


def fuzz_settings(examples: int, **kwargs: Any) -> Callable[[Any], Any]:
    """No deadline (no timed assertions); the hang guard is the timeout mark."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        **kwargs,
    )


def hang_guard(seconds: int) -> pytest.MarkDecorator:
    return pytest.mark.timeout(seconds * SCALE)


# --- the invariant every prepare() result must hold --------------------------------------------
def check_prepared(result: Prepared) -> Prepared:
    assert isinstance(result, Prepared)
    errors = [d for d in result.diagnostics if d.is_error]
    if result.ok:
        assert not errors, [d.render() for d in errors]
        assert result.ast is not None
    else:
        assert errors, "a refused policy names at least one error"
    for d in result.diagnostics:
        assert d.code.startswith("policy."), d.code
        line, column = d.location.line, d.location.column
        assert (line is None) == (column is None), d
        assert line is None or line >= 1, d
        assert column is None or column >= 1, d
        rendered = d.render()
        assert d.code in rendered
        rendered.encode("utf-8")  # no lone surrogate leaks into a message, pointer or help text
        as_json = json.dumps(d.to_dict(), ensure_ascii=False)
        as_json.encode("utf-8")
        assert json.loads(as_json)["code"] == d.code
    return result


def prepare_checked(source: Any, **kwargs: Any) -> Prepared:
    return check_prepared(prepare(source, **kwargs))


# --- strategies ---------------------------------------------------------------------------------
any_char = st.one_of(
    st.characters(exclude_categories=()),  # every code point, surrogates included
    st.characters(categories=["Cs"]),  # lone surrogates, often
    st.sampled_from('{}[]:,"\\ \n\t0123456789-.eE\ufeff\x00\u0663'),
)
any_text = st.text(any_char, max_size=200)

nasty_scalars = st.one_of(
    # built lazily: Hypothesis cannot repr an int of more than 4,300 digits
    st.sampled_from([5000, -4400]).map(lambda digits: (1 if digits > 0 else -1) * 10 ** abs(digits)),
    st.sampled_from(
        [float("nan"), float("inf"), -0.0, 1e308, 5e-324, "\ud800", "a\udfffb", "\x00", "\ufeff", "", "${"]
    ),
    st.just("*" * 300),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=30),
    nasty_scalars,
)
POLICY_WORDS = [
    *("Version", "Id", "Statement", "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction"),
    *("Resource", "NotResource", "Condition", "AWS", "Service", "Allow", "Deny", "*"),
]
policy_words = st.sampled_from([*POLICY_WORDS, *BASE_OPERATORS])
json_keys = st.one_of(policy_words, st.text(any_char, max_size=12))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(json_keys, children, max_size=5),
    max_leaves=40,
)

# corruption values for policy-shaped documents: plain JSON, no nasty scalars (those are above)
junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(json_keys, children, max_size=3),
    max_leaves=8,
)

# JSON text: dumped values, then a few character-level mutations (insert, delete, replace)
mutation_chars = st.sampled_from(list('{}[]:,"\\ 0123456789-+.eEtruefalsn\u0663\ufeff\x00\ud800'))


@st.composite
def json_texts(draw: st.DrawFn) -> str:
    value = draw(json_values)
    try:
        text = json.dumps(value, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 0, 2])))
    except ValueError:  # an integer too long for the interpreter to print
        text = "[" + "9" * 5000 + "]"
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(mutation_chars)
        if op == "insert":
            text = text[:pos] + char + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + 1 :]
        else:
            text = text[:pos] + char + text[pos + 1 :]
    return text


# --- policy-shaped documents ---------------------------------------------------------------------
# Valid documents from a small vocabulary (so requests often match), then a few corruptions.
ACCOUNTS = ["111122223333", "444455556666"]
PRINCIPAL_ARNS = [
    "arn:aws:iam::111122223333:root",
    "arn:aws:iam::111122223333:user/alice",
    "arn:aws:iam::111122223333:role/ci",
    "arn:aws:sts::111122223333:assumed-role/ci/build-7",
    "arn:aws:sts::444455556666:federated-user/bob",
    "arn:aws:iam::444455556666:role/path/admin",
]
ACTIONS = [
    "*",
    "execute-api:Invoke",
    "execute-api:*",
    "execute-api:Inv*",
    "execute-api:invoke",
    "execute-api:ManageConnections",
    "execute-api:InvalidateCache",
    "execute-api:?nvoke",
    "s3:GetObject",
]
RESOURCES = [
    "*",
    "execute-api:/*",
    "execute-api:/prod/GET/pets",
    "execute-api:/prod/*/pets/*",
    f"{ARN}/*",
    f"{ARN}/prod/GET/pets",
    f"{ARN}/prod/GET/pets/*",
    f"{ARN}/*/POST/*",
    f"{ARN}/prod/GET/pets/??",
    "arn:aws:execute-api:us-east-1:*",
    "arn:aws:execute-api:*:111122223333:*/prod/*",
    "arn:aws:EXECUTE-API:us-east-1:111122223333:a1b2c3d4e5/*",
    f"{ARN}/${{aws:username}}/*",
    f"{ARN}/prod/GET/${{aws:PrincipalTag/team, 'none'}}",
    f"{ARN}/prod/${{*}}/x",
    "arn:aws:s3:::bucket/*",
]
CONDITION_KEYS = [
    "aws:SourceIp",
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:SecureTransport",
    "aws:PrincipalArn",
    "aws:PrincipalAccount",
    "aws:UserAgent",
    "aws:username",
    "aws:PrincipalTag/team",
    "aws:SourceVpce",
    "aws:TagKeys",
    "execute-api:viaDomainArn",
]
VALUES_BY_FAMILY = {
    Family.STRING: [
        *("curl/*", "*a*a*b", "team-?", "vpce-1a2b3c4d", "", "*", "111122223333"),
        *("${aws:username}", "${*}", "${aws:PrincipalTag/team, 'dev'}", "${aws:nope"),
    ],
    Family.NUMERIC: ["10", "-12.5", "1e3", ".5", "1768478400", "0"],
    Family.DATE: [
        *("2026-01-15T12:00:00Z", "2026-01-15", "1768478400", "2026-01-15T12:00+05:30"),
        *("9999-12-31T23:00:00-23:00", "0001-01-01T00:00+01:00", "1970-01-01T00:00:00.123456789Z"),
    ],
    Family.BOOL: ["true", "false", "TRUE", "${aws:SecureTransport}"],
    Family.BINARY: ["aGVsbG8=", ""],
    Family.IP: ["192.0.2.0/24", "192.0.2.10", "2001:db8::/32", "::ffff:192.0.2.1/128", "0.0.0.0/0"],
    Family.ARN: [
        *("arn:aws:iam::111122223333:role/ci", "arn:aws:iam::*:role/*", "arn:aws:*", "*"),
        *("arn:aws:sts::111122223333:assumed-role/ci/*", "arn:aws:iam::${aws:PrincipalAccount}:root"),
    ],
    Family.NULL: ["true", "false"],
}
# likely mistakes, for the corruption pass
BAD_TEXTS = ["Invoke", "execute-api:", "*:Invoke", "not-an-arn", "allow", "Aws", "10.0.0.0/33", "1e999"]
BAD_TEXTS += ["not base64!", "maybe", "${aws:nope", "arn:aws:iam::1:user/*", " x", "", "2012-10-18"]
BAD_KEYS = ["Actions", "principal", "NotAction", "NotResource", "NotPrincipal", "StringEqual", "noprefix"]
BAD_KEYS += ["ForSomeValues:StringLike", "NullIfExists", "ForAnyValue:Null", "stringequals", ""]


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    block: dict[str, Any] = {}
    for _ in range(draw(st.integers(1, 3))):
        base = draw(st.sampled_from(sorted(BASE_OPERATORS)))
        prefix = "" if base == "Null" else draw(st.sampled_from(["", "", "ForAnyValue:", "ForAllValues:"]))
        suffix = "" if base == "Null" else draw(st.sampled_from(["", "", "IfExists"]))
        family = BASE_OPERATORS[base].family
        values = st.one_of(st.sampled_from(VALUES_BY_FAMILY[family]), st.booleans(), st.integers(-5, 20))
        keys = block.setdefault(prefix + base + suffix, {})
        keys[draw(st.sampled_from(CONDITION_KEYS))] = draw(st.one_of(values, st.lists(values, max_size=4)))
    return block


def _one_or_list(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(values, st.lists(values, min_size=1, max_size=4))


principals = st.one_of(
    st.just("*"),
    st.fixed_dictionaries({"AWS": _one_or_list(st.sampled_from(["*", *ACCOUNTS, *PRINCIPAL_ARNS]))}),
    st.fixed_dictionaries({"Service": _one_or_list(st.just("lambda.amazonaws.com"))}),
    st.fixed_dictionaries({"Federated": st.just("cognito-identity.amazonaws.com")}),
)


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Deny"]))}
    if draw(st.booleans()):
        out["Sid"] = draw(st.sampled_from(["A", "B", "Same", "Same"]))
    out["NotPrincipal" if draw(st.integers(0, 7)) == 1 else "Principal"] = draw(principals)
    out["NotAction" if draw(st.integers(0, 5)) == 1 else "Action"] = draw(
        _one_or_list(st.sampled_from(ACTIONS))
    )
    out["NotResource" if draw(st.integers(0, 5)) == 1 else "Resource"] = draw(
        _one_or_list(st.sampled_from(RESOURCES))
    )
    if draw(st.booleans()):
        out["Condition"] = draw(conditions())
    return out


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))


@st.composite
def corrupted(draw: st.DrawFn, document: Any) -> Any:
    """Up to three corruptions at random places: a junk value, a likely mistake, a dropped, added
    or renamed member, a value wrapped in (or unwrapped from) an array."""
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(list(_paths(document))))
        parent: Any = None
        target: Any = document
        for step in path:
            parent, target = target, target[step]
        kind = draw(st.sampled_from(["junk", "mistake", "drop", "add", "rename", "wrap"]))
        if kind == "add" and isinstance(target, dict):
            target[draw(st.one_of(st.sampled_from(BAD_KEYS), policy_words))] = draw(junk)
        elif kind == "rename" and isinstance(target, dict) and target:
            key = draw(st.sampled_from(sorted(target)))
            target[draw(st.sampled_from(BAD_KEYS))] = target.pop(key)
        elif parent is None:
            if kind == "junk":
                document = draw(junk)
        elif kind == "drop":
            del parent[path[-1]]
        elif kind == "wrap":
            parent[path[-1]] = target[0] if isinstance(target, list) and target else [target]
        else:
            parent[path[-1]] = draw(junk if kind == "junk" else st.sampled_from(BAD_TEXTS))
    return document


@st.composite
def policies(draw: st.DrawFn) -> Any:
    doc: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        doc["Version"] = draw(st.sampled_from(["2012-10-17", "2008-10-17"]))
    if draw(st.integers(0, 5)) == 1:
        doc["Id"] = draw(st.text(max_size=10))
    stmts = draw(st.lists(statements(), min_size=1, max_size=4))
    doc["Statement"] = stmts[0] if len(stmts) == 1 and draw(st.booleans()) else stmts
    return draw(corrupted(doc))


request_texts = st.one_of(
    st.sampled_from([v for vs in VALUES_BY_FAMILY.values() for v in vs]),
    st.sampled_from(PRINCIPAL_ARNS),
    st.text(max_size=20),
    st.just("a" * 3000),
)
requests = st.builds(
    Request,
    st.one_of(st.none(), st.sampled_from(ACCOUNTS + PRINCIPAL_ARNS), st.text(max_size=20)),
    st.one_of(st.sampled_from(ACTIONS), st.text(max_size=20)),
    st.one_of(
        st.sampled_from(
            [f"{ARN}/prod/GET/pets", f"{ARN}/prod/GET/pets/7", f"{ARN}/test/POST/x/y", f"{ARN}/"]
        ),
        st.sampled_from(RESOURCES),
        st.text(max_size=30),
    ),
    st.dictionaries(
        st.one_of(st.sampled_from(CONDITION_KEYS), st.text(max_size=10)),
        st.one_of(request_texts, st.lists(request_texts, max_size=3)),
        max_size=6,
    ),
)


# --- (a) bytes, (b) text, (c) JSON values ---------------------------------------------------------
@hang_guard(60)
@fuzz_settings(400)
@given(
    data=st.one_of(st.binary(max_size=300), json_texts().map(lambda t: t.encode("utf-8", "surrogatepass")))
)
@example(b"\xef\xbb\xbf{}")
@example(b"\xff\xfe{\x00}\x00")
@example(b'{"Version": "\xed\xa0\x80"}')  # a UTF-8-encoded surrogate is not UTF-8
def test_bytes_yield_a_policy_or_diagnostics(data: bytes) -> None:
    prepare_checked(data)
    prepare_checked(data, api=API, max_chars=None)


@hang_guard(60)
@fuzz_settings(400)
@given(text=st.one_of(any_text, json_texts()))
@example('{"\ud800": 1}')
@example('{"Version": "2012-10-17", "Statement": {"Effect": "\udfff"}}')
@example('"\\ud800"')
@example("[1\u0663]")
def test_text_yields_a_policy_or_diagnostics(text: str) -> None:
    prepare_checked(text)
    prepare_checked(text, api=API, strict=True)


@hang_guard(60)
@fuzz_settings(300)
@given(value=json_values)
@example({"\ud800": 1})  # regression: a lone surrogate in a key reached rendered messages
@example({"Version": 10**5000})  # regression: str() of a huge int raised ValueError
@example({"Statement": [{"Condition": {"NumericEquals": {"a:b": -(10**4400)}}}]})
def test_json_values_yield_a_policy_or_diagnostics(value: Any) -> None:
    prepare_checked(value)
    try:
        text = json.dumps(value)
    except ValueError:  # the int the interpreter will not print; only the Python form applies
        return
    prepare_checked(text)


def _cyclic() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (_cyclic(), "policy.read.too-deep"),
        ({1: "x"}, "policy.read.syntax"),
        ({"a": {1, 2}}, "policy.read.syntax"),
        ({"a": b"x"}, "policy.read.syntax"),
        ({"a": object()}, "policy.read.syntax"),
        ({"a": 10**5000}, "policy.read.syntax"),
        ({"a\udc80": 1}, "policy.read.invalid-string"),
        ({"a": ["\ud800"]}, "policy.read.invalid-string"),
    ],
    ids=["cyclic", "int-key", "set", "bytes", "object", "huge-int", "surrogate-key", "surrogate-value"],
)
def test_python_values_json_cannot_hold(value: Any, code: str) -> None:
    result = prepare_checked(value)
    assert result.ast is None
    assert code in {d.code for d in result.errors}


def test_a_json_node_with_a_huge_integer_is_diagnosed_not_raised() -> None:
    # regression: JsonNode.to_python() (prepare's size check for a node from a case file) called
    # int() on 5,001 digits and raised ValueError
    node = read_json('{"Version": 1' + "0" * 5000 + "}").root
    assert node is not None
    result = prepare_checked(node)
    assert [d.code for d in result.errors] == ["policy.parse.wrong-type", "policy.parse.missing-element"]


@pytest.mark.parametrize(
    ("policy_date", "request_date", "effect"),
    [
        ("9999-12-31T23:00:00-23:00", "9999-12-31T23:59:59Z", DecisionEffect.ALLOW),
        ("0001-01-01T00:00+01:00", "0001-01-01T00:00:00Z", DecisionEffect.IMPLICIT_DENY),
        ("2026-01-15T12:00:00Z", "0001-01-01T00:00+01:00", DecisionEffect.ALLOW),
    ],
)
def test_dates_past_the_datetime_range_are_read_not_raised(
    policy_date: str, request_date: str, effect: DecisionEffect
) -> None:
    # regression: an offset that moves a date past datetime.min/max raised OverflowError, out of
    # prepare (policy value) and as an engine fault from evaluate (request value)
    doc = {
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:CurrentTime": policy_date}},
        },
    }
    result = prepare_checked(doc)
    assert result.policy is not None
    request = Request(None, "execute-api:Invoke", f"{ARN}/prod/GET/pets", {"aws:CurrentTime": request_date})
    for explain in (False, True):
        decision = result.policy.evaluate(request, explain=explain)
        assert decision.errors == ()
        assert decision.effect is effect


# --- the reader accepts exactly JSON (differential against the standard library) -----------------
def _stdlib(text: str) -> Any:
    def no_constants(name: str) -> Any:
        raise ValueError(name)

    return json.loads(
        text,
        object_pairs_hook=lambda pairs: ("object", _first_wins(pairs)),
        parse_int=lambda s: ("number", s),
        parse_float=lambda s: ("number", s),
        parse_constant=no_constants,
    )


def _first_wins(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return list(out.items())


def _ours(node: JsonNode) -> Any:
    if node.kind == "object":
        return ("object", [(k, _ours(n)) for k, _, n in node.members()])
    if node.kind == "array":
        return [_ours(n) for n in node.items()]
    if node.kind == "number":
        return ("number", node.value)
    return node.value


def _depth_and_surrogates(value: Any) -> tuple[int, bool]:
    if isinstance(value, str):
        return 0, any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, tuple) and value[0] == "object":
        results = [_depth_and_surrogates(k) for k, _ in value[1]] + [
            _depth_and_surrogates(v) for _, v in value[1]
        ]
        return 1 + max((d for d, _ in results), default=0), any(s for _, s in results)
    if isinstance(value, list):
        results = [_depth_and_surrogates(v) for v in value]
        return 1 + max((d for d, _ in results), default=0), any(s for _, s in results)
    return 0, False


@hang_guard(60)
@fuzz_settings(500)
@given(text=st.one_of(json_texts(), any_text))
@example("[1\u0663]")  # regression: json.scanner.NUMBER_RE's \d took Arabic-Indic digits
@example("[" * MAX_DEPTH + "]" * MAX_DEPTH)
@example("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
@example('{"a": 1, "a": 2}')
def test_reader_accepts_exactly_json(text: str) -> None:
    result = read_json(text)
    codes = {d.code for d in result.diagnostics}
    try:
        expected = _stdlib(text)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        assert result.root is None, f"the reader accepted what json.loads refuses: {text!r}"
        assert codes & {"policy.read.syntax", "policy.read.empty", "policy.read.trailing-data"} or (
            codes & {"policy.read.too-deep", "policy.read.invalid-string"}
        )
        return
    depth, surrogates = _depth_and_surrogates(expected)
    if depth > MAX_DEPTH:
        assert result.root is None
        assert "policy.read.too-deep" in codes
    elif surrogates:
        assert result.root is None
        assert "policy.read.invalid-string" in codes
    else:
        assert result.root is not None, [d.render() for d in result.diagnostics]
        assert codes <= {"policy.read.duplicate-key"}
        assert _ours(result.root) == expected


# --- (d) policy-shaped documents, then evaluation -----------------------------------------------
@hang_guard(120)
@fuzz_settings(300)
@given(
    doc=policies(),
    api=st.sampled_from([None, API]),
    strict=st.booleans(),
    batch=st.lists(requests, min_size=1, max_size=4),
)
def test_policy_shaped_documents_prepare_and_evaluate_cleanly(
    doc: Any, api: ApiRef | None, strict: bool, batch: list[Request]
) -> None:
    # the document as data and as JSON text is refused or accepted alike, for the same reasons
    # (a corruption may leave a bare string, which prepare() would take for policy text)
    text = prepare_checked(json.dumps(doc), api=api, strict=strict, max_chars=None)
    result = text if isinstance(doc, str) else prepare_checked(doc, api=api, strict=strict, max_chars=None)
    assert sorted(d.code for d in text.diagnostics) == sorted(d.code for d in result.diagnostics)
    if result.policy is None:
        return
    assert text.policy is not None
    for request in batch:
        fast = result.policy.evaluate(request)
        assert_decide_agrees(result.policy, request, fast)
        slow = result.policy.evaluate(request, explain=True)
        assert fast.errors == (), fast.errors
        assert slow.errors == (), slow.errors
        assert fast.effect is slow.effect, (request, fast, slow)
        assert fast.determining == slow.determining
        assert slow.trace is not None
        assert len(slow.trace) == len(result.policy.statements)
        json.dumps(slow.to_dict())
        assert text.policy.evaluate(request) == fast


def test_policy_strategy_reaches_compiled_policies() -> None:
    """The generator is only useful if most documents compile: check it still does."""
    compiled = 0
    total = 0

    @settings(max_examples=150, deadline=None, database=None)
    @given(doc=policies())
    def count(doc: dict[str, Any]) -> None:
        nonlocal compiled, total
        total += 1
        compiled += prepare(doc, api=API, max_chars=None).ok

    count()
    assert compiled >= total // 10, (compiled, total)


# --- (e) deep nesting and huge input --------------------------------------------------------------
def _nested_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@hang_guard(20)
@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("[" * 10**5, "policy.read.too-deep"),
        ("[" * 10**5 + "]" * 10**5, "policy.read.too-deep"),
        ('{"a":' * 10**5 + "1" + "}" * 10**5, "policy.read.too-deep"),
        ('{"Statement": ' + "[" * 10**5, "policy.read.too-deep"),
        ('[{"a":' * 50_000, "policy.read.too-deep"),
        (_nested_list(10**5), "policy.read.too-deep"),
        ({"Statement": _nested_list(10**5)}, "policy.read.too-deep"),
        (_cyclic(), "policy.read.too-deep"),
        ('"' + "a" * (HARD_MAX_CHARS - 2) + '"', "policy.read.too-large"),
        ('{"Version": "' + "\\u0041" * 170_000 + '"}', "policy.read.too-large"),
        ('{"Effect": "' + "x" * 900_000 + '"}', "policy.read.too-large"),
        ("[" + "1," * 300_000 + "1]", "policy.read.too-large"),
        ("\n" * 900_000, "policy.read.empty"),
    ],
    ids=[
        "open-arrays",
        "closed-arrays",
        "objects",
        "deep-statement",
        "arrays-and-objects",
        "python-lists",
        "python-statement",
        "python-cycle",
        "huge-string",
        "huge-escapes",
        "huge-effect",
        "huge-array",
        "only-newlines",
    ],
)
def test_deep_or_huge_input_gives_a_diagnostic(source: Any, code: str) -> None:
    result = prepare_checked(source)
    assert not result.ok
    assert code in {d.code for d in result.diagnostics}


@hang_guard(20)
@pytest.mark.parametrize("size", [HARD_MAX_CHARS + 1, 10 * HARD_MAX_CHARS])
def test_nothing_over_the_hard_cap_is_read(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    prepare_module = importlib.import_module("iamgate.policy.prepare")

    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError("read_json was called on input over the hard cap")

    monkeypatch.setattr(prepare_module, "read_json", refuse)
    for source in ("[" * size, ("x" * size).encode()):
        result = prepare_checked(source, max_chars=None)
        assert [d.code for d in result.diagnostics] == ["policy.read.too-large"]


@pytest.mark.parametrize("levels", range(MAX_DEPTH - 2, MAX_DEPTH + 3))
def test_depth_limit_is_the_same_for_text_and_data(levels: int) -> None:
    # regression: from_python let one level more through than read_json (65 nested lists)
    too_deep = levels > MAX_DEPTH
    text = read_json("[" * levels + "]" * levels)
    data = from_python(_nested_list(levels - 1))
    objects = read_json('{"a":' * levels + "1" + "}" * levels)
    for result in (text, data, objects):
        assert (result.root is None) is too_deep
        assert [d.code for d in result.diagnostics] == (["policy.read.too-deep"] if too_deep else [])


# --- (f) pathological wildcards -------------------------------------------------------------------
class ChunkCalls:
    """Counts every anchored test and search of a glob chunk: the work a glob match does."""

    def __init__(self) -> None:
        self.calls = 0
        self._patch = pytest.MonkeyPatch()

    def __enter__(self) -> ChunkCalls:
        chunk = patterns_module._Chunk
        at, find = chunk.at, chunk.find

        @functools.wraps(at)
        def counted_at(this: Any, s: str, pos: int) -> bool:
            self.calls += 1
            return at(this, s, pos)

        @functools.wraps(find)
        def counted_find(this: Any, s: str, pos: int, end: int) -> int:
            self.calls += 1
            return find(this, s, pos, end)

        self._patch.setattr(chunk, "at", counted_at)
        self._patch.setattr(chunk, "find", counted_find)
        return self

    def __exit__(self, *exc: object) -> None:
        self._patch.undo()


def _chunks(matcher: ArnMatcher | GlobMatcher) -> int:
    if isinstance(matcher, GlobMatcher):
        return len(matcher.chunks)
    return len(matcher.whole.chunks) + sum(len(p.chunks) for p in matcher.parts)


def _stars(n: int, fill: str = "a", last: str = "b") -> str:
    """``*a*a*...*a*b*z``: every ``a`` is found at once, then the search for ``b`` runs to the end
    of a subject ``aaaa...z``; a backtracking matcher would retry each star (exponential)."""
    return "*" + f"{fill}*" * n + f"{last}*z"


@hang_guard(20)
@pytest.mark.parametrize("stars", [10, 300, 2000])
@pytest.mark.parametrize("subject_len", [100, 5000, 50_000])
def test_star_patterns_are_matched_without_backtracking(stars: int, subject_len: int) -> None:
    cases: list[tuple[ArnMatcher | GlobMatcher, str]] = [
        (GlobMatcher(glob_from_text(_stars(stars))), "a" * subject_len + "z"),
        (GlobMatcher(glob_from_text(_stars(stars, "a?"))), "a" * subject_len + "z"),
        (GlobMatcher(glob_from_text(_stars(stars, "ab", "abc"))), "ab" * (subject_len // 2) + "z"),
        (ArnMatcher(glob_from_text(f"{ARN}/" + _stars(stars))), f"{ARN}/" + "a" * subject_len + "z"),
        (
            ArnMatcher(glob_from_text("arn:*:*:*:*:" + _stars(stars))),
            "arn:a:b:c:d:" + "a" * subject_len + "z",
        ),
    ]
    for matcher, subject in cases:
        with ChunkCalls() as counter:
            assert matcher.match(subject) is False
        # each chunk is tested or searched at most once: no backtracking over the stars
        assert counter.calls <= _chunks(matcher)


def _glob_oracle(pattern: str, subject: str) -> bool:
    """Textbook dynamic programming over (pattern, subject) prefixes: obviously right, O(n*m)."""
    row = [True] + [False] * len(subject)
    for p in pattern:
        new = [row[0] and p == "*"] + [False] * len(subject)
        for j, ch in enumerate(subject, 1):
            if p == "*":
                new[j] = new[j - 1] or row[j]
            else:
                new[j] = row[j - 1] and (p in ("?", ch))
        row = new
    return row[-1]


@hang_guard(60)
@fuzz_settings(500)
@given(
    pattern=st.text(st.sampled_from("ab*?:"), max_size=40),
    subject=st.text(st.sampled_from("ab:"), max_size=40),
)
def test_globs_match_like_the_textbook_definition(pattern: str, subject: str) -> None:
    assert GlobMatcher(glob_from_text(pattern)).match(subject) is _glob_oracle(pattern, subject)


@hang_guard(60)
@fuzz_settings(200)
@given(
    pattern=st.text(st.sampled_from("ab*?"), min_size=1, max_size=400).map(lambda p: "*" + p + "*b"),
    subject=st.integers(0, 20_000).map(lambda n: "a" * n),
)
def test_glob_work_is_bounded_by_the_number_of_chunks(pattern: str, subject: str) -> None:
    matcher = GlobMatcher(glob_from_text(pattern))
    with ChunkCalls() as counter:
        assert matcher.match(subject) is False  # the subject has no "b"
    assert counter.calls <= len(matcher.chunks)


def _pathological_policy(stars: int) -> dict[str, Any]:
    pattern = _stars(stars)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": f"{ARN}/" + pattern,
            },
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "execute-api:*",
                "Resource": f"{ARN}/*",
                "Condition": {
                    "StringLike": {"aws:UserAgent": pattern},
                    "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:" + pattern},
                },
            },
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "NotResource": f"{ARN}/" + pattern,
                "Condition": {"ForAllValues:StringNotLike": {"aws:TagKeys": pattern}},
            },
        ],
    }


@hang_guard(20)
@pytest.mark.parametrize("stars", [50, 500, 3000])
def test_pathological_wildcards_evaluate_with_bounded_work(stars: int) -> None:
    result = prepare_checked(_pathological_policy(stars), max_chars=None)
    assert result.policy is not None
    policy = result.policy
    total_chunks = sum(
        _chunks(entry.matcher) for st_ in policy.statements for entry in st_.resources if entry.matcher
    ) + sum(
        _chunks(value.glob or value.arn)
        for st_ in policy.statements
        for atom in st_.atoms
        for value in atom.values
        if value.glob or value.arn
    )
    long = "a" * 20_000 + "z"
    request = Request(
        "arn:aws:iam::111122223333:role/" + long,
        "execute-api:Invoke",
        f"{ARN}/{long}",
        {
            "aws:UserAgent": long,
            "aws:PrincipalArn": "arn:aws:iam::111122223333:" + long,
            "aws:TagKeys": [long] * 3,
        },
    )
    with ChunkCalls() as counter:
        fast = policy.evaluate(request)
        explained = policy.evaluate(request, explain=True)
    assert fast.errors == explained.errors == ()
    # nothing matches (no "b" anywhere): statement 2 applies through NotResource
    assert fast.effect is explained.effect is DecisionEffect.ALLOW
    assert [r.index for r in fast.determining] == [2]
    # every matcher runs a bounded number of times per evaluation, each chunk touched at most once
    assert counter.calls <= 6 * total_chunks
