"""Decision values: determining statements, principal-match kinds, explanations, fail-closed."""

from __future__ import annotations

import json

import pytest

from iamgate.policy import ApiRef, DecisionEffect, MatchKind, Request, StatementRef, prepare
from iamgate.policy.explain import render_decision, summary

API = ApiRef("us-east-1", "111122223333", "a1b2c3d4e5")
ARN = API.arn_prefix + "/prod/GET/pets"
ALICE = "arn:aws:iam::111122223333:user/alice"


def compiled(*statements: dict, version: str = "2012-10-17"):
    prepared = prepare(json.dumps({"Version": version, "Statement": list(statements)}), api=API)
    assert prepared.policy is not None, [d.render() for d in prepared.diagnostics]
    return prepared.policy


def allow(principal: object = "*", **extra: object) -> dict:
    return {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "execute-api:Invoke",
        "Resource": "execute-api:/*",
        **extra,
    }


def test_determining_statements_are_all_applicable_denies() -> None:
    policy = compiled(
        allow(Sid="A"),
        {**allow(Sid="D1"), "Effect": "Deny"},
        allow(Sid="B"),
        {**allow(Sid="D2"), "Effect": "Deny"},
    )
    decision = policy.evaluate(Request(None, "execute-api:Invoke", ARN))
    assert decision.effect is DecisionEffect.EXPLICIT_DENY
    assert decision.determining == (StatementRef(1, "D1"), StatementRef(3, "D2"))


def test_determining_statements_of_an_allow_and_match_kinds() -> None:
    policy = compiled(allow({"AWS": "111122223333"}, Sid="Account"), allow({"AWS": ALICE}, Sid="Alice"))
    alice = policy.evaluate(Request(ALICE, "execute-api:Invoke", ARN))
    assert alice.effect is DecisionEffect.ALLOW
    assert alice.determining == (StatementRef(0, "Account"), StatementRef(1, "Alice"))
    assert alice.principal_match is MatchKind.FULL
    bob = policy.evaluate(Request("arn:aws:iam::111122223333:user/bob", "execute-api:Invoke", ARN))
    assert bob.effect is DecisionEffect.ALLOW
    assert bob.principal_match is MatchKind.ACCOUNT
    stranger = policy.evaluate(Request("arn:aws:iam::444455556666:user/bob", "execute-api:Invoke", ARN))
    assert stranger.effect is DecisionEffect.IMPLICIT_DENY
    assert stranger.determining == ()


def test_shorthand_is_expanded_with_the_api() -> None:
    policy = compiled(allow(Resource="execute-api:/prod/GET/pets"))
    assert policy.is_allowed(Request(None, "execute-api:Invoke", ARN))
    other_api = ApiRef("us-east-1", "111122223333", "zzzzzzzzzz").arn_prefix + "/prod/GET/pets"
    assert not policy.is_allowed(Request(None, "execute-api:Invoke", other_api))


def test_shorthand_without_an_api_warns_and_matches_nothing() -> None:
    prepared = prepare(json.dumps({"Version": "2012-10-17", "Statement": [allow()]}))
    assert prepared.policy is not None
    assert [d.code for d in prepared.diagnostics] == ["policy.compile.shorthand-unexpanded"]
    assert not prepared.policy.is_allowed(Request(None, "execute-api:Invoke", ARN))


def test_partition_follows_the_region() -> None:
    api = ApiRef("cn-north-1", "111122223333", "abc")
    assert api.arn_prefix == "arn:aws-cn:execute-api:cn-north-1:111122223333:abc"
    assert ApiRef("us-gov-west-1", "1", "a").partition == "aws-us-gov"
    assert ApiRef.from_arn(API.arn_prefix + "/prod/GET/") == API
    assert ApiRef.from_arn("arn:aws:s3:::bucket") is None


def test_explanation_names_the_failing_element_and_values() -> None:
    policy = compiled(
        allow(Sid="Office", Condition={"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}),
        allow({"AWS": ALICE}, Sid="Alice"),
        {**allow(Sid="NoPosts"), "Effect": "Deny", "Resource": "execute-api:/*/POST/*"},
    )
    request = Request(None, "execute-api:Invoke", ARN, {"aws:SourceIp": "198.51.100.7"})
    decision = policy.evaluate(request, explain=True)
    assert decision.effect is DecisionEffect.IMPLICIT_DENY
    assert decision.trace is not None
    office, alice, no_posts = decision.trace
    assert office.failed == "Condition"
    ((op, key, atom),) = office.conditions
    assert (op, key, atom.request_values, atom.policy_values, atom.result) == (
        "IpAddress",
        "aws:SourceIp",
        ("198.51.100.7",),
        ("192.0.2.0/24",),
        False,
    )
    assert alice.failed == "Principal"
    assert alice.principal_match is MatchKind.NONE
    assert no_posts.failed == "Resource"
    text = render_decision(decision)
    assert "NO  Condition IpAddress aws:SourceIp: request 198.51.100.7; policy 192.0.2.0/24" in text
    assert text.splitlines()[-1] == "Decision: ImplicitDeny: no statement allows the request"
    assert decision.to_dict()["trace"][0]["failed"] == "Condition"


def test_explanation_shows_resolved_variables_and_missing_keys() -> None:
    policy = compiled(
        allow(Condition={"StringEquals": {"aws:PrincipalTag/team": "${aws:PrincipalTag/owner}"}})
    )
    decision = policy.evaluate(
        Request.build(ALICE, "execute-api:Invoke", ARN, {"aws:PrincipalTag/team": "x"}), explain=True
    )
    assert decision.trace is not None
    ((_, _, atom),) = decision.trace[0].conditions
    assert atom.policy_values == ("${aws:PrincipalTag/owner} (no value)",)
    assert "no value and no default" in atom.note
    missing = policy.evaluate(Request(None, "execute-api:Invoke", ARN), explain=True)
    assert missing.trace is not None
    ((_, _, atom),) = missing.trace[0].conditions
    assert not atom.present
    assert "not in the request" in atom.note


def test_summary_lines() -> None:
    policy = compiled(allow(Sid="Everyone"))
    decision = policy.evaluate(Request(None, "execute-api:Invoke", ARN))
    assert summary(decision) == "Allow: allowed by #0 (Everyone) (principal match: full)"


class _Exploding(dict):
    def get(self, key, default=None):
        raise RuntimeError("boom")


def test_engine_fault_fails_closed() -> None:
    policy = compiled(allow(Condition={"StringEquals": {"aws:UserAgent": "x"}}))
    request = Request(None, "execute-api:Invoke", ARN)
    request.context = _Exploding()  # type: ignore[assignment]
    decision = policy.evaluate(request)
    assert decision.effect is DecisionEffect.EXPLICIT_DENY
    assert decision.errors
    assert "engine fault" in decision.errors[0][1]
    explained = policy.evaluate(request, explain=True)
    assert explained.effect is not DecisionEffect.ALLOW
    assert explained.errors


def test_erroring_deny_counts_as_applicable_in_the_walk() -> None:
    policy = compiled(
        allow(), {**allow(Condition={"StringEquals": {"aws:UserAgent": "x"}}), "Effect": "Deny"}
    )
    request = Request(None, "execute-api:Invoke", ARN)
    request.context = _Exploding()  # type: ignore[assignment]
    decision = policy.evaluate(request, explain=True)
    assert decision.effect is DecisionEffect.EXPLICIT_DENY
    assert decision.determining == (StatementRef(1, None),)


def test_compiling_a_broken_policy_is_refused() -> None:
    from iamgate.policy import CompiledPolicy, read_document

    ast, diags = read_document(
        '{"Statement": [{"Effect": "allow", "Principal": "*", "Action": "a:b", "Resource": "*"}]}'
    )
    assert ast is not None
    assert diags
    with pytest.raises(ValueError, match="cannot be compiled"):
        CompiledPolicy(ast)


def test_memos_stay_bounded() -> None:
    policy = compiled(allow({"AWS": "111122223333"}))
    for i in range(10_000):
        policy.evaluate(Request(f"arn:aws:iam::111122223333:user/u{i}", f"execute-api:Invoke{i % 3}", ARN))
    assert len(policy._principal_memo) <= 4096
    assert len(policy._action_memo) <= 4096


def test_large_policy_indexes_agree_with_walk() -> None:
    statements = []
    for i in range(190):
        cidrs = [f"10.{i // 50}.{(i % 50) * 5 + k}.0/24" for k in range(5)]
        statements.append(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": f"execute-api:/prod/GET/svc/{i}/*",
                "Condition": {"IpAddress": {"aws:SourceIp": cidrs}},
            }
        )
    for d in range(5):
        statements.append(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/*",
                "Condition": {"IpAddress": {"aws:SourceIp": [f"172.16.{d}.{k + 1}/32" for k in range(10)]}},
            }
        )
    prepared = prepare(
        json.dumps({"Version": "2012-10-17", "Statement": statements}), api=API, max_chars=None
    )
    policy = prepared.policy
    assert policy is not None
    cases = [
        ("/prod/GET/svc/5/x", "10.0.25.7", DecisionEffect.ALLOW),
        ("/prod/GET/svc/180/x", "10.3.152.9", DecisionEffect.ALLOW),
        ("/prod/GET/svc/100/x", "8.8.8.8", DecisionEffect.IMPLICIT_DENY),
        ("/prod/GET/svc/100/x", "172.16.3.4", DecisionEffect.EXPLICIT_DENY),
        ("/prod/GET/nothing", "10.0.25.7", DecisionEffect.IMPLICIT_DENY),
    ]
    for path, ip, expected in cases:
        request = Request(None, "execute-api:Invoke", API.arn_prefix + path, {"aws:SourceIp": ip})
        assert policy.evaluate(request).effect is expected
        assert policy.evaluate(request, explain=True).effect is expected
