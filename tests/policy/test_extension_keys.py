"""iamgate's own condition keys in the engine: named, validated (what AWS would decide, the
strict-AWS refusal, typos), listed per policy, and read from request parts as the gateway does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from iamgate.policy import Request, Severity, prepare
from iamgate.policy.extension_keys import (
    Source,
    claim_values,
    condition_text,
    extension_context,
    key_problem,
    source_of,
)

IAMGATE = str(Path(sys.executable).parent / "iamgate")
ARN = "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5"


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _st(effect: str, condition: dict[str, Any], resource: str = "*") -> dict[str, Any]:
    return {
        "Effect": effect,
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": resource,
        "Condition": condition,
    }


def _codes(text: str, **kw: Any) -> list[tuple[str, Severity]]:
    return [(d.code, d.severity) for d in prepare(text, **kw).diagnostics]


@pytest.mark.parametrize(
    ("effect", "operator", "severity"),
    [
        ("Allow", "StringEquals", Severity.INFO),  # false on AWS: the Allow never applies (stricter)
        ("Allow", "StringNotEquals", Severity.INFO),  # true on AWS: restricts nothing there
        ("Deny", "StringNotEquals", Severity.INFO),  # true on AWS: the Deny applies (stricter)
        ("Deny", "StringEquals", Severity.WARNING),  # false on AWS: the Deny never applies (looser)
        ("Deny", "ForAnyValue:StringEquals", Severity.WARNING),
        ("Deny", "StringEqualsIfExists", Severity.INFO),
    ],
)
def test_validation_says_what_aws_would_decide(effect: str, operator: str, severity: Severity) -> None:
    text = _policy(_st(effect, {operator: {"iamgate:RequestHeader/X-Tenant": "blue"}}))
    assert _codes(text, aws_notes=True) == [("policy.validate.iamgate-key", severity)]
    assert prepare(text, aws_notes=True).policy is not None  # a note, never an error
    assert _codes(text) == []  # a gateway loading it is not told (only `policy validate` asks)


def test_strict_aws_refuses_iamgate_keys() -> None:
    text = _policy(_st("Allow", {"StringEquals": {"iamgate:JwtClaim/tenant": "blue"}}))
    assert _codes(text, strict_aws=True) == [("policy.validate.not-an-aws-key", Severity.ERROR)]
    assert prepare(text, strict_aws=True).policy is None


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("iamgate:RequestHeaders/X", "iamgate:RequestHeader/NAME"),
        ("iamgate:Stagee", "iamgate:Stage"),
        ("iamgate:JwtClaim/", None),  # the name is missing
        ("IAMGATE:nothing", None),
    ],
)
def test_an_unknown_iamgate_key_is_an_error(key: str, hint: str | None) -> None:
    problem = key_problem(key)
    assert problem is not None
    diags = prepare(_policy(_st("Allow", {"StringEquals": {key: "x"}}))).diagnostics
    assert [d.code for d in diags] == ["policy.validate.unknown-iamgate-key"]
    assert diags[0].location.line is not None
    if hint is not None:
        assert hint in (diags[0].help or "")


def test_keys_are_classified_by_who_chooses_them() -> None:
    assert source_of("iamgate:RequestHeader/x") is Source.CLIENT
    assert source_of("IAMGATE:QUERYSTRING/a") is Source.CLIENT
    assert source_of("iamgate:PathParameter/id") is Source.CLIENT
    assert source_of("iamgate:JwtClaim/sub") is Source.VERIFIED
    assert source_of("iamgate:ClientCert/SAN") is Source.VERIFIED
    assert source_of("iamgate:ApiKeyId") is Source.VERIFIED
    assert source_of("iamgate:Stage") is Source.GATEWAY
    assert source_of("aws:SourceIp") is None
    assert source_of("iamgate:JwtClaim/") is None


def test_a_policy_lists_the_keys_it_reads_and_which_as_one_value() -> None:
    text = _policy(
        _st(
            "Allow",
            {
                "StringEquals": {"iamgate:RequestHeader/X-Tenant": "${iamgate:JwtClaim/tenant}"},
                "ForAnyValue:StringLike": {"iamgate:QueryString/tag": "a*"},
                "Null": {"iamgate:ClientCert/SubjectDN": "false"},
                "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
            },
            resource=f"{ARN}/prod/GET/${{iamgate:PathParameter/id}}",
        )
    )
    compiled = prepare(text).policy
    assert compiled is not None
    assert compiled.extension_keys == (
        "iamgate:clientcert/subjectdn",
        "iamgate:jwtclaim/tenant",
        "iamgate:pathparameter/id",
        "iamgate:querystring/tag",
        "iamgate:requestheader/x-tenant",
    )
    # ForAnyValue: reads a set, Null only presence; the rest one value each
    assert compiled.single_valued_keys == (
        "iamgate:jwtclaim/tenant",
        "iamgate:pathparameter/id",
        "iamgate:requestheader/x-tenant",
    )


def test_a_policy_without_iamgate_keys_lists_none() -> None:
    compiled = prepare(_policy(_st("Allow", {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))).policy
    assert compiled is not None
    assert compiled.extension_keys == ()
    assert compiled.single_valued_keys == ()


@pytest.mark.parametrize(
    ("claims", "name", "expected"),
    [
        ({"tenant": "blue"}, "tenant", "blue"),
        ({"Tenant": "blue"}, "tenant", "blue"),  # key names are lower-cased: matched regardless of case
        ({"a": {"b": {"c": "deep"}}}, "a.b.c", "deep"),
        ({"a.b": "whole", "a": {"b": "path"}}, "a.b", "whole"),  # a top-level name wins
        ({"roles": ["r1", "r2"]}, "roles", ("r1", "r2")),
        ({"roles": []}, "roles", None),
        ({"n": 5, "f": 1.5, "t": True}, "n", "5"),
        ({"t": False}, "t", "false"),
        ({"o": {"y": 1, "x": 2}}, "o", '{"x":2,"y":1}'),
        ({"x": None}, "x", None),
        ({"a": "text"}, "a.b", None),  # a path through a non-object finds nothing
        ("not claims", "a", None),
    ],
)
def test_claims_are_read_as_documented(claims: Any, name: str, expected: object) -> None:
    assert claim_values(claims, name) == expected


def test_condition_text_keeps_text_and_writes_json_for_the_rest() -> None:
    assert condition_text("x") == "x"
    assert condition_text(None) is None
    assert condition_text([1, "a"]) == '[1,"a"]'


def test_request_parts_become_condition_keys() -> None:
    context = extension_context(
        ("iamgate:jwtclaim/tenant",),
        headers={"X-Tenant": "blue", "X-Twice": ["a", "b"]},
        query={"debug": "1"},
        claims={"tenant": "blue", "unread": "x"},
        client_cert={"subjectDN": "CN=c", "SAN": ["a.example"]},
        stage="prod",
    )
    assert context == {
        "iamgate:requestheader/x-tenant": "blue",
        "iamgate:requestheader/x-twice": ("a", "b"),
        "iamgate:querystring/debug": "1",
        "iamgate:jwtclaim/tenant": "blue",  # claims: only those the policy reads
        "iamgate:clientcert/subjectdn": "CN=c",
        "iamgate:clientcert/san": "a.example",
        "iamgate:stage": "prod",
    }


def test_a_plain_operator_on_a_repeated_value_never_matches() -> None:
    """The engine's rule for multivalued keys (the gateway refuses such requests before: 400)."""
    compiled = prepare(
        _policy(_st("Deny", {"StringEquals": {"iamgate:QueryString/debug": "1"}}), _st("Allow", {}))
    ).policy
    assert compiled is not None
    context = {"iamgate:querystring/debug": ("1", "1")}
    twice = Request(None, "execute-api:Invoke", f"{ARN}/prod/GET/x", context)
    assert compiled.evaluate(twice).effect.value == "Allow"


def _simulate(policy: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            IAMGATE,
            "policy",
            "simulate",
            "--policy",
            str(policy),
            "--api-id",
            "a1b2c3d4e5",
            "--region",
            "us-east-1",
            "--account",
            "111122223333",
            "--method",
            "GET",
            "--stage",
            "prod",
            "--json",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_simulate_reads_the_request_parts(tmp_path: Path) -> None:
    policy = tmp_path / "p.json"
    policy.write_text(
        _policy(
            {
                "Sid": "OwnTenant",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/prod/GET/tenants/${iamgate:JwtClaim/tenant}/*",
                "Condition": {
                    "ForAnyValue:StringEquals": {"iamgate:JwtClaim/realm_access.roles": "reader"},
                    "StringEquals": {"iamgate:Stage": "prod", "iamgate:HttpMethod": "GET"},
                    "StringLike": {"iamgate:ClientCert/IssuerDN": "CN=Example CA*"},
                },
            },
            _st("Deny", {"StringEquals": {"iamgate:RequestHeader/X-Debug": "1"}}) | {"Sid": "NoDebug"},
        )
    )
    common = (
        "--path",
        "/tenants/blue/orders",
        "--claims",
        '{"tenant": "blue"}',
        "--claim",
        'realm_access={"roles": ["reader", "x"]}',
        "--client-cert-issuer",
        "CN=Example CA,O=Example",
    )
    allowed = _simulate(policy, *common)
    assert allowed.returncode == 0, allowed.stderr
    out = json.loads(allowed.stdout)
    assert out["decision"] == "Allow"
    assert out["request"]["context"]["iamgate:jwtclaim/realm_access.roles"] == ["reader", "x"]
    denied = json.loads(_simulate(policy, *common, "--header", "X-Debug=1").stdout)
    assert denied["decision"] == "ExplicitDeny"
    assert [s["sid"] for s in denied["statements"]] == ["NoDebug"]
    other = json.loads(_simulate(policy, *common[:3], '{"tenant": "red"}', *common[4:]).stdout)
    assert other["decision"] == "ImplicitDeny"


def test_simulate_refuses_a_bad_claims_flag(tmp_path: Path) -> None:
    policy = tmp_path / "p.json"
    policy.write_text(_policy(_st("Allow", {"StringEquals": {"iamgate:JwtClaim/tenant": "blue"}})))
    done = _simulate(policy, "--path", "/x", "--claims", "[1, 2]")
    assert done.returncode == 2
    assert "--claims" in done.stderr
    assert "Traceback" not in done.stderr


def test_string_equals_on_an_iamgate_key_is_indexed_and_memoised() -> None:
    """The gateway's memoised entry covers StringEquals on iamgate: keys as on AWS's keys: the
    decision depends on the key's value only, and is the same as the evaluator's."""
    compiled = prepare(
        _policy(_st("Allow", {"StringEquals": {"iamgate:JwtClaim/tenant": ["blue", "green"]}}))
    ).policy
    assert compiled is not None
    assert compiled._memo_keys == ("iamgate:jwtclaim/tenant",)
    arn = f"{ARN}/prod/GET/x"
    for tenant, allowed in (("blue", True), ("green", True), ("red", False), ("BLUE", False)):
        context = Request(None, "execute-api:Invoke", arn, {"iamgate:jwtclaim/tenant": tenant}).context
        for _ in range(3):  # the third answer comes from the memo
            assert compiled.decide(None, "execute-api:Invoke", arn, context).allowed is allowed


def test_simulate_explains_by_default_and_brief_gives_the_decision_only(tmp_path: Path) -> None:
    policy = tmp_path / "p.json"
    policy.write_text(
        _policy(_st("Allow", {"StringEquals": {"iamgate:RequestHeader/X-Team": "blue"}}) | {"Sid": "Blue"})
    )
    flags = ("--path", "/x", "--header", "X-Team=blue")
    common = [IAMGATE, "policy", "simulate", "--policy", str(policy), "--api-id", "a1b2c3d4e5"]
    common += ["--region", "us-east-1", "--account", "111122223333", "--method", "GET", "--stage", "prod"]
    explained = subprocess.run([*common, "--explain", *flags], capture_output=True, text=True, check=False)
    brief = subprocess.run([*common, "--brief", *flags], capture_output=True, text=True, check=False)
    assert explained.returncode == brief.returncode == 0, explained.stderr + brief.stderr
    assert (
        "Condition StringEquals iamgate:RequestHeader/X-Team: request blue; policy blue; matched"
        in explained.stdout
    )
    assert brief.stdout.splitlines()[-1] == "Decision: Allow: allowed by #0 (Blue) (principal match: full)"
    assert len(brief.stdout.splitlines()) == 2
