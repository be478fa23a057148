"""Differential tests: the indexed evaluator, its explain walk and the reference evaluator agree.

Policies and requests are drawn from a small overlapping vocabulary so that statements mostly
*match* (random pairs almost never would), as cedar-spec does. Properties:
shuffling statements never changes a decision; adding a matching Deny never yields Allow.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from iamgate.policy import ApiRef, DecisionEffect, Request, prepare, reference
from iamgate.policy.operators import BASE_OPERATORS
from tests.policy.agreement import assert_decide_agrees

API = ApiRef("us-east-1", "111122223333", "a1b2c3d4e5")
A = API.arn_prefix
ALICE = "arn:aws:iam::111122223333:user/alice"
DEV_SESSION = "arn:aws:sts::111122223333:assumed-role/Dev/s1"

CALLERS = [
    None,
    ALICE,
    "arn:aws:iam::111122223333:user/bob",
    DEV_SESSION,
    "arn:aws:sts::111122223333:assumed-role/Ops/s2",
    "arn:aws:sts::444455556666:assumed-role/Dev/x",
    "arn:aws:iam::444455556666:user/alice",
    "arn:aws:iam::111122223333:root",
    "arn:aws:sts::111122223333:federated-user/fred",
    "arn:aws:iam::111122223333:role/Dev",
]
PRINCIPAL_VALUES = [
    "*",
    "111122223333",
    "444455556666",
    "arn:aws:iam::111122223333:root",
    ALICE,
    "arn:aws:iam::111122223333:user/Alice",
    "arn:aws:iam::111122223333:role/Dev",
    "arn:aws:iam::111122223333:role/path/Dev",
    "arn:aws:iam::444455556666:role/Dev",
    DEV_SESSION,
    "arn:aws:sts::111122223333:federated-user/fred",
]
ACTIONS = [
    "execute-api:Invoke",
    "execute-api:*",
    "*",
    "execute-api:Inv*",
    "EXECUTE-API:invoke",
    "execute-api:InvalidateCache",
    "execute-api:In?oke",
    "s3:GetObject",
    "execute-api:",
]
REQUEST_ACTIONS = ["execute-api:Invoke", "execute-api:InvalidateCache", "Execute-API:INVOKE"]
STAGES = ["prod", "Prod", "*", "?rod"]
VERBS = ["GET", "POST", "*", "G?T"]
PATHS = [
    "pets",
    "pets/*",
    "pets/?",
    "*",
    "",
    "pets*",
    "users/${aws:username}",
    "teams/${aws:PrincipalTag/team, 'shared'}",
    "teams/${iamgate:JwtClaim/tenant}",
    "x/${*}",
]
OTHER_RESOURCES = [
    "*",
    "arn:aws:execute-api:us-east-1:*",
    "arn:aws:execute-api:*:*:*",
    "arn:aws:execute-api:us-east-1:111122223333:*",
    "arn:aws:execute-api:us-*:111122223333:a1b2c3d4e5/*",
    "arn:aws:execute-api:*:a1b2c3d4e5/*",
    "arn:aws:execute-api:us-east-1:111122223333:other/*",
    "execute-api:/*",
    "execute-api:/prod/GET/pets",
    "arn:aws:EXECUTE-API:us-east-1:111122223333:a1b2c3d4e5/*",
    "arn:aws:execute-api:eu-west-1:111122223333:a1b2c3d4e5/*",
]
REQUEST_PATHS = [
    "pets",
    "pets/7",
    "pets/77",
    "users/alice",
    "users/",
    "teams/shared",
    "teams/blue",
    "",
    "x/*",
    "petshop",
]

CONTEXT_VALUES: dict[str, list[Any]] = {
    "aws:SourceIp": ["203.0.113.9", "192.0.2.10", "10.1.2.3", "2001:db8::1", "::ffff:192.0.2.1", "bogus"],
    "aws:UserAgent": ["curl/8.5.0", "curl*", "Curl/8", "", "${aws:username}"],
    "aws:CurrentTime": [
        "2026-01-15T12:00:00Z",
        "2024-05-01T00:00:00+02:00",
        "garbage",
        "2026-01-15T13:00:00+01:00",
    ],
    "aws:EpochTime": ["1768478400", "1700000000", "x", "1768478400.5"],
    "aws:PrincipalTag/team": ["blue", "shared", "BLUE", "a*"],
    "aws:username": ["alice", "bob"],
    "aws:PrincipalArn": [
        "arn:aws:iam::111122223333:role/Dev",
        ALICE,
        "not-an-arn",
        "arn:aws:iam::111122223333:role/ci-x",
    ],
    "aws:PrincipalAccount": ["111122223333", "444455556666"],
    "aws:PrincipalOrgPaths": [["o-abc/r-1/ou-1/"], ["o-abc/r-1/", "o-xyz/r-2/"], []],
    "aws:SecureTransport": ["true", "false", "TRUE", "maybe"],
    "aws:MultiFactorAuthAge": ["9", "100", "1.5", "abc", "-3"],
    "aws:SourceVpce": ["vpce-1", "vpce-2"],
    "aws:PrincipalTag/blob": ["aGVsbG8=", "bm9wZQ==", "!!"],
    # iamgate's own keys (docs/policy-semantics.md): single and multivalued, as the gateway fills them
    "iamgate:RequestHeader/X-Tenant": ["blue", "BLUE", ["blue", "red"], ""],
    "iamgate:QueryString/debug": ["1", "true", ["1", "1"]],
    "iamgate:JwtClaim/tenant": ["blue", "shared", "alice"],
    "iamgate:JwtClaim/groups": [["admins", "blue"], ["o-abc/r-1/ou-1/"], []],
    "iamgate:AuthorizerContext/level": ["9", "100", "true"],
    "iamgate:ClientCert/SAN": [["alice", "curl/8.5.0"], ["spiffe://x"]],
    "iamgate:Stage": ["prod", "Prod"],
}
KEYS = list(CONTEXT_VALUES)
POLICY_VALUES = {
    "string": [
        "curl/8.5.0",
        "curl/*",
        "*",
        "Curl/8",
        "blue",
        "shared",
        "alice",
        "${aws:username}",
        "${aws:PrincipalTag/team, 'shared'}",
        "${iamgate:JwtClaim/tenant}",
        "curl${*}",
        "vpce-1",
        "o-abc/*",
        "o-abc/r-1/ou-1/",
        "",
        "b?ue",
    ],
    "numeric": ["10", "1.5", 100, "1768478400", "-3", "9"],
    "date": ["2026-01-01T00:00:00Z", "2024", "2026-01-15T13:00:00+01:00", "1768478400", "2026-01-15"],
    "bool": ["true", "false", True, "${aws:PrincipalTag/team}", "TRUE"],
    "ip": [
        "203.0.113.0/24",
        "192.0.2.0/24",
        "10.0.0.0/8",
        "2001:db8::/32",
        "0.0.0.0/0",
        "203.0.113.9",
        "::ffff:192.0.2.0/120",
    ],
    "arn": [
        "arn:aws:iam::111122223333:role/*",
        "arn:aws:iam::${aws:PrincipalAccount}:role/*",
        "*",
        ALICE,
        "arn:aws:iam::*:role/Dev",
        "arn:aws:iam::111122223333:role/ci-*",
        "arn:*",
    ],
    "binary": ["aGVsbG8=", "bm9wZQ=="],
    "null": ["true", "false", True],
}


def _family(base: str) -> str:
    return BASE_OPERATORS[base].family.value


@st.composite
def operator_names(draw: st.DrawFn) -> str:
    base = draw(st.sampled_from(sorted(BASE_OPERATORS)))
    if base == "Null":
        return base
    prefix = draw(st.sampled_from(["", "", "", "ForAnyValue:", "ForAllValues:"]))
    suffix = draw(st.sampled_from(["", "", "IfExists"]))
    return prefix + base + suffix


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _ in range(draw(st.integers(0, 2))):
        op = draw(operator_names())
        base = op.split(":")[-1].removesuffix("IfExists") if op != "Null" else "Null"
        block = out.setdefault(op, {})
        key = draw(st.sampled_from(KEYS))
        if draw(st.booleans()):
            key = key.upper() if draw(st.booleans()) else key.lower()
        values = draw(st.lists(st.sampled_from(POLICY_VALUES[_family(base)]), min_size=0, max_size=3))
        block[key] = values[0] if len(values) == 1 and draw(st.booleans()) else values
    return out


@st.composite
def principals(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 2)) == 0:
        return "*"
    values = draw(st.lists(st.sampled_from(PRINCIPAL_VALUES), min_size=1, max_size=3))
    aws: Any = values[0] if len(values) == 1 else values
    out: dict[str, Any] = {"AWS": aws}
    if draw(st.integers(0, 5)) == 0:
        out["Service"] = "lambda.amazonaws.com"
    return out


@st.composite
def resources(draw: st.DrawFn) -> Any:
    def one() -> str:
        pick = draw(st.integers(0, 5))
        if pick == 0:
            return draw(st.sampled_from(OTHER_RESOURCES))
        if pick == 1:
            return f"{A}/*"
        stage = draw(st.sampled_from(STAGES))
        verb = draw(st.sampled_from(VERBS))
        path = draw(st.sampled_from(PATHS))
        return f"{A}/{stage}/{verb}/{path}"

    items = [one() for _ in range(draw(st.integers(1, 3)))]
    return items[0] if len(items) == 1 else items


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    s: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Allow", "Deny"]))}
    if draw(st.integers(0, 4)) == 0:
        s["NotPrincipal"] = draw(principals())
    else:
        s["Principal"] = draw(principals())
    actions = draw(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=2))
    s["NotAction" if draw(st.integers(0, 5)) == 0 else "Action"] = actions
    s["NotResource" if draw(st.integers(0, 5)) == 0 else "Resource"] = draw(resources())
    if draw(st.booleans()):
        s["Condition"] = draw(conditions())
    if draw(st.booleans()):
        s["Sid"] = f"S{draw(st.integers(0, 99))}"
    return s


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"Statement": draw(st.lists(statements(), min_size=1, max_size=5))}
    version = draw(st.sampled_from(["2012-10-17", "2012-10-17", "2008-10-17", None]))
    if version:
        doc["Version"] = version
    return doc


@st.composite
def requests(draw: st.DrawFn) -> Request:
    ctx: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=6)):
        ctx[key] = draw(st.sampled_from(CONTEXT_VALUES[key]))
    stage = draw(st.sampled_from(["prod", "Prod"]))
    verb = draw(st.sampled_from(["GET", "POST"]))
    path = draw(st.sampled_from(REQUEST_PATHS))
    resource = f"{A}/{stage}/{verb}/{path}"
    if draw(st.integers(0, 9)) == 0:
        resource = "arn:aws:execute-api:us-east-1:111122223333:other/prod/GET/pets"
    return Request.build(
        draw(st.sampled_from(CALLERS)),
        draw(st.sampled_from(REQUEST_ACTIONS)),
        resource,
        ctx,
        derive_principal_keys=draw(st.booleans()),
    )


# IAMGATE_EXAMPLES_SCALE=20 runs a long differential session (docs/fuzzing.md).
SCALE = int(os.environ.get("IAMGATE_EXAMPLES_SCALE", "1"))
SETTINGS = settings(
    max_examples=600 * SCALE, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)
SMALL = settings(max_examples=300 * SCALE, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


def _both(doc: dict[str, Any], request: Request):
    prepared = prepare(doc, api=API)
    assume(prepared.policy is not None)
    assert prepared.policy is not None
    assert prepared.ast is not None
    fast = prepared.policy.evaluate(request)
    assert_decide_agrees(prepared.policy, request, fast)
    walked = prepared.policy.evaluate(request, explain=True)
    ref = reference.evaluate(prepared.ast, request, (API.region, API.account, API.api_id))
    return fast, walked, ref


@SETTINGS
@given(policies(), requests())
def test_fast_walk_and_reference_agree(doc: dict[str, Any], request: Request) -> None:
    fast, walked, ref = _both(doc, request)
    assert not fast.errors
    assert not walked.errors
    assert fast.effect == ref.effect, (fast, ref)
    assert fast.determining == ref.determining
    assert fast.principal_match == ref.principal_match
    assert walked.effect == fast.effect
    assert walked.determining == fast.determining
    assert walked.principal_match == fast.principal_match


@SMALL
@given(policies(), requests(), st.randoms(use_true_random=False))
def test_shuffling_statements_never_changes_the_effect(doc: dict[str, Any], request: Request, rnd) -> None:
    prepared = prepare(doc, api=API)
    assume(prepared.policy is not None)
    assert prepared.policy is not None
    before = prepared.policy.evaluate(request)
    shuffled = dict(doc)
    shuffled["Statement"] = list(doc["Statement"])
    rnd.shuffle(shuffled["Statement"])
    again = prepare(shuffled, api=API)
    assert again.policy is not None
    after = again.policy.evaluate(request)
    assert after.effect == before.effect
    assert after.principal_match == before.principal_match
    assert len(after.determining) == len(before.determining)


@SMALL
@given(policies(), requests())
def test_adding_a_matching_deny_never_yields_allow(doc: dict[str, Any], request: Request) -> None:
    deny = {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}
    extended = {**doc, "Statement": [*doc["Statement"], deny]}
    prepared = prepare(extended, api=API)
    assume(prepared.policy is not None)
    assert prepared.policy is not None
    decision = prepared.policy.evaluate(request)
    assert decision.effect is DecisionEffect.EXPLICIT_DENY
    assert decision.determining[-1].index == len(extended["Statement"]) - 1


@SMALL
@given(policies(), requests())
def test_allow_means_some_allow_applies_and_no_deny_does(doc: dict[str, Any], request: Request) -> None:
    """The decision and the per-statement trace tell the same story."""
    prepared = prepare(doc, api=API)
    assume(prepared.policy is not None)
    assert prepared.policy is not None
    walked = prepared.policy.evaluate(request, explain=True)
    assert walked.trace is not None
    applying = [t for t in walked.trace if t.applies]
    if walked.effect is DecisionEffect.ALLOW:
        assert applying
        assert all(t.effect == "Allow" for t in applying)
    elif walked.effect is DecisionEffect.EXPLICIT_DENY:
        assert any(t.effect == "Deny" for t in applying)
    else:
        assert not applying
    assert [t.ref for t in applying if t.effect == ("Deny" if walked.explicit_deny else "Allow")] == list(
        walked.determining
    )


@st.composite
def condition_policies(draw: st.DrawFn) -> dict[str, Any]:
    """Statements that always match but for their conditions: stresses the condition rules."""
    stmts = []
    for _ in range(draw(st.integers(1, 4))):
        cond: dict[str, Any] = {}
        for _ in range(draw(st.integers(1, 2))):
            op = draw(operator_names())
            base = op.split(":")[-1].removesuffix("IfExists") if op != "Null" else "Null"
            values = draw(st.lists(st.sampled_from(POLICY_VALUES[_family(base)]), min_size=0, max_size=3))
            cond.setdefault(op, {})[draw(st.sampled_from(KEYS))] = values
        stmts.append(
            {
                "Effect": draw(st.sampled_from(["Allow", "Deny"])),
                "Principal": "*",
                "Action": "*",
                "Resource": "*",
                "Condition": cond,
            }
        )
    return {"Version": draw(st.sampled_from(["2012-10-17", "2008-10-17"])), "Statement": stmts}


@SETTINGS
@given(condition_policies(), requests())
def test_conditions_agree_with_reference(doc: dict[str, Any], request: Request) -> None:
    fast, walked, ref = _both(doc, request)
    assert fast.effect == ref.effect, (fast, ref)
    assert fast.determining == ref.determining
    assert walked.determining == fast.determining


def _listed_layer(values: Any, caller: str | None) -> bool:
    """Independently of both evaluators: does a NotPrincipal list the caller, its account or
    its role (any layer of it)?"""
    if values == "*":
        return True
    aws = values.get("AWS", []) if isinstance(values, dict) else []
    listed = [aws] if isinstance(aws, str) else list(aws)
    if "*" in listed:
        return True
    if caller is None:
        return False
    if caller in listed:
        return True
    account = caller.split(":")[4]
    if account in listed or f"arn:aws:iam::{account}:root" in listed:
        return True
    rest = caller.split(":", 5)[5]
    role = None
    if rest.startswith("assumed-role/"):
        role = rest.split("/")[1]
    elif rest.startswith("role/"):
        role = rest.rsplit("/", 1)[1]
    return role is not None and any(
        v.startswith(f"arn:aws:iam::{account}:role/") and v.rsplit("/", 1)[1] == role for v in listed
    )


@SETTINGS
@given(policies(), requests())
def test_an_allow_with_not_principal_never_grants_a_listed_layer(
    doc: dict[str, Any], request: Request
) -> None:
    """Issue 14 item 9: whatever else the policy says, an Allow + NotPrincipal statement is never
    among the statements that grant a caller any layer of whom it lists."""
    fast, walked, ref = _both(doc, request)
    assert fast.effect == walked.effect == ref.effect
    if fast.effect is not DecisionEffect.ALLOW:
        return
    for granted in fast.determining:
        statement = doc["Statement"][granted.index]
        if "NotPrincipal" in statement:
            assert not _listed_layer(statement["NotPrincipal"], request.principal), (statement, request)


@SETTINGS
@given(principals(), st.sampled_from(CALLERS))
def test_allow_with_not_principal_grants_exactly_the_unlisted(listed: Any, caller: str | None) -> None:
    doc = {"Statement": [{"Effect": "Allow", "NotPrincipal": listed, "Action": "*", "Resource": "*"}]}
    fast, walked, ref = _both(doc, Request.build(caller, "execute-api:Invoke", f"{A}/prod/GET/pets"))
    expected = DecisionEffect.IMPLICIT_DENY if _listed_layer(listed, caller) else DecisionEffect.ALLOW
    assert fast.effect is walked.effect is ref.effect is expected, (listed, caller)
