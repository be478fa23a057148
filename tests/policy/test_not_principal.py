"""``NotPrincipal``: who a statement excludes, in the fast evaluator, its explaining walk and the
reference evaluator alike (docs/policy-semantics.md, "Principals").

``Deny`` + ``NotPrincipal`` excludes a caller only when every layer of its identity is listed
(AWS checks the account, then the user or role, then the session): a forgotten layer denies more.
``Allow`` + ``NotPrincipal``, which AWS does not support, excludes a caller when *any* layer of it
is listed: a listed user, role, session or account is never granted by it (issue 14, item 9).
"""

from __future__ import annotations

import json

import pytest

from iamgate.policy import ApiRef, DecisionEffect, Request, prepare, reference
from tests.policy.agreement import assert_decide_agrees

API = ApiRef("us-east-1", "111122223333", "a1b2c3d4e5")
ARN = API.arn_prefix + "/prod/GET/pets"
ACCOUNT = "111122223333"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Dev"
ROLE_WITH_PATH = f"arn:aws:iam::{ACCOUNT}:role/team/Dev"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/Dev/s1"
OTHER_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/Dev/s9"
OPS_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/Ops/s2"
FRED = f"arn:aws:sts::{ACCOUNT}:federated-user/fred"
STRANGER = "arn:aws:iam::444455556666:user/alice"
STRANGER_SESSION = "arn:aws:sts::444455556666:assumed-role/Dev/s1"

ALLOW, IMPLICIT, DENY = DecisionEffect.ALLOW, DecisionEffect.IMPLICIT_DENY, DecisionEffect.EXPLICIT_DENY


def decide(statements: list[dict[str, object]], caller: str | None) -> DecisionEffect:
    """The effect, after checking that the three evaluators (and decide()) agree on it."""
    prepared = prepare(json.dumps({"Version": "2012-10-17", "Statement": statements}), api=API)
    assert prepared.policy is not None, prepared.diagnostics
    assert prepared.ast is not None
    request = Request.build(caller, "execute-api:Invoke", ARN)
    fast = prepared.policy.evaluate(request)
    assert_decide_agrees(prepared.policy, request, fast)
    walked = prepared.policy.evaluate(request, explain=True)
    ref = reference.evaluate(prepared.ast, request, (API.region, API.account, API.api_id))
    assert fast.effect == walked.effect == ref.effect, (fast, walked, ref)
    assert fast.determining == walked.determining == ref.determining
    assert fast.principal_match == walked.principal_match == ref.principal_match
    return fast.effect


def _id(value: object) -> str:
    if isinstance(value, DecisionEffect):
        return value.value
    if value is None:
        return "anonymous"
    return value.rsplit(":", 1)[-1] if isinstance(value, str) else json.dumps(value).replace("arn:aws:", "")


def allow_all_but(listed: object) -> list[dict[str, object]]:
    return [{"Effect": "Allow", "NotPrincipal": listed, "Action": "execute-api:Invoke", "Resource": "*"}]


ALLOW_CASES = [
    # the example: the user it names is not granted
    ({"AWS": ALICE}, ALICE, IMPLICIT),
    ({"AWS": ALICE}, BOB, ALLOW),
    ({"AWS": ALICE}, None, ALLOW),
    ({"AWS": ALICE}, STRANGER, ALLOW),
    ({"AWS": [ALICE, ROOT]}, ALICE, IMPLICIT),
    # an account, as an id or as its root ARN: every principal of it
    ({"AWS": ACCOUNT}, ALICE, IMPLICIT),
    ({"AWS": ACCOUNT}, ROOT, IMPLICIT),
    ({"AWS": ACCOUNT}, ACCOUNT, IMPLICIT),
    ({"AWS": ACCOUNT}, SESSION, IMPLICIT),
    ({"AWS": ACCOUNT}, ROLE, IMPLICIT),
    ({"AWS": ACCOUNT}, FRED, IMPLICIT),
    ({"AWS": ROOT}, BOB, IMPLICIT),
    ({"AWS": ACCOUNT}, STRANGER, ALLOW),
    ({"AWS": ACCOUNT}, None, ALLOW),  # IAM NotPrincipal page: anonymous callers are still granted
    # a role: the role and every session of it (paths aside), not other roles' sessions
    ({"AWS": ROLE}, SESSION, IMPLICIT),
    ({"AWS": ROLE}, OTHER_SESSION, IMPLICIT),
    ({"AWS": ROLE}, ROLE, IMPLICIT),
    ({"AWS": ROLE_WITH_PATH}, SESSION, IMPLICIT),
    ({"AWS": ROLE}, OPS_SESSION, ALLOW),
    ({"AWS": ROLE}, STRANGER_SESSION, ALLOW),
    ({"AWS": ROLE}, ALICE, ALLOW),
    # a session: only that session
    ({"AWS": SESSION}, SESSION, IMPLICIT),
    ({"AWS": SESSION}, OTHER_SESSION, ALLOW),
    ({"AWS": FRED}, FRED, IMPLICIT),
    # "*" excludes everyone; a service principal names no execute-api caller
    ("*", ALICE, IMPLICIT),
    ("*", None, IMPLICIT),
    ({"Service": "lambda.amazonaws.com"}, ALICE, ALLOW),
]


@pytest.mark.parametrize(("listed", "caller", "expected"), ALLOW_CASES, ids=_id)
def test_allow_with_not_principal_never_grants_a_listed_layer(
    listed: object, caller: str | None, expected: DecisionEffect
) -> None:
    assert decide(allow_all_but(listed), caller) is expected


def deny_all_but(listed: object) -> list[dict[str, object]]:
    return [
        {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "*"},
        {"Effect": "Deny", "NotPrincipal": listed, "Action": "execute-api:Invoke", "Resource": "*"},
    ]


DENY_CASES = [
    # unchanged: a Deny excludes only a caller all of whose layers are listed
    ({"AWS": ALICE}, ALICE, DENY),
    ({"AWS": [ALICE, ROOT]}, ALICE, ALLOW),
    ({"AWS": [ALICE, ROOT]}, BOB, DENY),
    ({"AWS": ACCOUNT}, ROOT, ALLOW),
    ({"AWS": ACCOUNT}, ALICE, DENY),
    ({"AWS": [ROLE, ACCOUNT]}, SESSION, DENY),
    ({"AWS": [SESSION, ROLE, ACCOUNT]}, SESSION, ALLOW),
    ({"AWS": [SESSION, ROLE, ACCOUNT]}, OTHER_SESSION, DENY),
    ({"AWS": [ROLE, ACCOUNT]}, None, DENY),
]


@pytest.mark.parametrize(("listed", "caller", "expected"), DENY_CASES, ids=_id)
def test_deny_with_not_principal_excludes_only_a_fully_listed_caller(
    listed: object, caller: str | None, expected: DecisionEffect
) -> None:
    assert decide(deny_all_but(listed), caller) is expected


def test_the_explanation_says_why_an_allow_excludes_the_caller() -> None:
    prepared = prepare(json.dumps({"Statement": allow_all_but({"AWS": ACCOUNT})}), api=API)
    assert prepared.policy is not None
    decision = prepared.policy.evaluate(Request(ALICE, "execute-api:Invoke", ARN), explain=True)
    assert decision.trace is not None
    (check, *_) = decision.trace[0].elements
    assert (check.element, check.matched) == ("NotPrincipal", False)
    assert "listed" in check.detail
    assert ACCOUNT in check.detail
