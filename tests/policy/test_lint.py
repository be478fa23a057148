"""``policy.lint``: each finding fires on a bad policy and not on the corrected one.

Findings are compared by code, severity and location (JSON pointer), never by wording.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iamgate.cases import read_cases
from iamgate.policy import Context, Diagnostic, Policy, Severity, read_document
from iamgate.policy.compile import compile_statements
from iamgate.policy.lint import ENDPOINT_TYPES, LINT_CODES, _resource_covers, _when_absent, lint_policy
from iamgate.policy.operators import BASE_OPERATORS, Family, parse_operator
from iamgate.policy.patterns import ArnMatcher, GlobMatcher, fold_service, glob_from_text
from tests.conftest import CORPUS_FILES, ROOT

API = "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5"
W, INFO = Severity.WARNING, Severity.INFO


def stmt(**over: Any) -> dict[str, Any]:
    """A statement that triggers nothing by itself: an Allow for one account on its API."""
    base: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": "111122223333"},
        "Action": "execute-api:Invoke",
        "Resource": "execute-api:/prod/GET/*",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def cond(**blocks: Any) -> dict[str, Any]:
    return {"Condition": {op.replace("__", ":"): block for op, block in blocks.items()}}


def parse(policy: dict[str, Any]) -> Policy:
    text = json.dumps(policy, indent=2)
    ast_, diags = read_document(text)
    assert ast_ is not None
    assert not [d for d in diags if d.is_error], [d.render() for d in diags]
    return ast_


def lint(policy: dict[str, Any], endpoint: str | None = None) -> list[Diagnostic]:
    return lint_policy(parse(policy), endpoint_type=endpoint)


@dataclass(frozen=True)
class Case:
    id: str
    code: str
    bad: dict[str, Any]
    good: dict[str, Any]
    pointer: str  # where the finding on ``bad`` points
    severity: Severity = W
    endpoint: str | None = None
    good_endpoint: str | None = field(default=None)


def _c(id: str, name: str, bad: dict[str, Any], good: dict[str, Any], pointer: str, **kw: Any) -> Case:
    return Case(id, f"policy.lint.{name}", bad, good, pointer, **kw)


PUBLIC = {"Principal": "*"}
NET = cond(IpAddress={"aws:SourceIp": "203.0.113.0/24"})
ROLE_R = "arn:aws:iam::111122223333:role/R"
SESSION = "arn:aws:sts::111122223333:assumed-role/R/build"
USER = "arn:aws:iam::111122223333:user/alice"

CASES = [
    _c(
        "public-star",
        "public-allow",
        doc(stmt(**PUBLIC)),
        doc(stmt(**PUBLIC, **NET)),
        "/Statement/0/Principal",
    ),
    _c(
        "public-aws-star",
        "public-allow",
        doc(stmt(Principal={"AWS": ["111122223333", "*"]})),
        doc(stmt(Principal={"AWS": ["111122223333"]})),
        "/Statement/0/Principal/AWS/1",
    ),
    _c(
        "public-needs-an-execute-api-action",
        "public-allow",
        doc(stmt(**PUBLIC, Action=["s3:GetObject", "execute-api:*"])),
        doc(stmt(**PUBLIC, Action="s3:GetObject")),
        "/Statement/0/Principal",
    ),
    _c(
        "public-with-deny-guard",
        "public-allow",
        doc(stmt(**PUBLIC), stmt(Effect="Deny", **PUBLIC, Resource="execute-api:/prod/POST/*", **NET)),
        doc(
            stmt(**PUBLIC),
            stmt(
                Effect="Deny",
                **PUBLIC,
                Resource="execute-api:/*",
                **cond(NotIpAddress={"aws:SourceIp": "203.0.113.0/24"}),
            ),
        ),
        "/Statement/0/Principal",
    ),
    _c(
        "public-with-not-principal-guard",
        "public-allow",
        doc(stmt(**PUBLIC), stmt(Effect="Deny", Principal=None, NotPrincipal="*")),
        doc(stmt(**PUBLIC), stmt(Effect="Deny", Principal=None, NotPrincipal={"AWS": "111122223333"})),
        "/Statement/0/Principal",
    ),
    _c(
        "not-principal",
        "allow-not-principal",
        doc(stmt(Principal=None, NotPrincipal={"AWS": "111122223333"})),
        doc(stmt(Principal={"AWS": "111122223333"})),
        "/Statement/0/NotPrincipal/AWS",
    ),
    _c(
        "not-principal-star-names-nobody",
        "allow-not-principal",
        doc(stmt(Principal=None, NotPrincipal={"AWS": ["111122223333", USER]})),
        doc(stmt(Principal=None, NotPrincipal="*")),
        "/Statement/0/NotPrincipal/AWS/0",
    ),
    _c(
        "not-action",
        "allow-not-action",
        doc(stmt(Action=None, NotAction="execute-api:InvalidateCache")),
        doc(stmt(Effect="Deny", Action=None, NotAction="execute-api:InvalidateCache")),
        "/Statement/0/NotAction",
    ),
    _c(
        "not-resource",
        "allow-not-resource",
        doc(stmt(Resource=None, NotResource=["execute-api:/prod/GET/admin", "execute-api:/test/*"])),
        doc(stmt(Resource="execute-api:/prod/GET/*")),
        "/Statement/0/NotResource/0",
    ),
    _c(
        "private-ipv4",
        "private-source-ip",
        doc(stmt(**cond(IpAddress={"aws:SourceIp": ["203.0.113.0/24", "192.168.1.0/24"]}))),
        doc(stmt(**cond(IpAddress={"aws:SourceIp": ["203.0.113.0/24", "0.0.0.0/0"]}))),
        "/Statement/0/Condition/IpAddress/aws:SourceIp/1",
    ),
    _c(
        "private-ipv6-link-local",
        "private-source-ip",
        doc(stmt(**cond(NotIpAddress={"aws:SourceIp": "fe80::1"}))),
        doc(stmt(**cond(NotIpAddress={"aws:SourceIp": "2001:db8::/32"}))),
        "/Statement/0/Condition/NotIpAddress/aws:SourceIp",
    ),
    _c(
        "private-ipv4-mapped",
        "private-source-ip",
        doc(stmt(**cond(IpAddress={"aws:SOURCEIP": "::ffff:100.64.0.1"}))),
        doc(stmt(**cond(IpAddress={"aws:VpcSourceIp": "10.0.0.0/8"}))),
        "/Statement/0/Condition/IpAddress/aws:SOURCEIP",
    ),
    _c(
        "private-range-left-to-private-api-check",
        "private-source-ip",
        doc(stmt(**cond(IpAddress={"aws:SourceIp": "10.0.0.0/8"}))),
        doc(stmt(**cond(IpAddress={"aws:SourceIp": "10.0.0.0/8"}))),
        "/Statement/0/Condition/IpAddress/aws:SourceIp",
        endpoint="REGIONAL",
        good_endpoint="PRIVATE",
    ),
    _c(
        "source-ip-private-api",
        "source-ip-on-private-api",
        doc(stmt(**NET)),
        doc(stmt(**cond(IpAddress={"aws:VpcSourceIp": "10.0.0.0/8"}))),
        "/Statement/0/Condition/IpAddress/aws:SourceIp",
        endpoint="PRIVATE",
        good_endpoint="PRIVATE",
    ),
    _c(
        "source-ip-regional-api",
        "source-ip-on-private-api",
        doc(stmt(**NET)),
        doc(stmt(**NET)),
        "/Statement/0/Condition/IpAddress/aws:SourceIp",
        endpoint="private",
        good_endpoint="REGIONAL",
    ),
    _c(
        "vpc-key-public-api",
        "vpc-key-on-public-api",
        doc(stmt(Effect="Deny", **cond(StringNotEquals={"aws:SourceVpce": "vpce-1a2b3c4d"}))),
        doc(stmt(Effect="Deny", **cond(StringNotEquals={"aws:SourceVpce": "vpce-1a2b3c4d"}))),
        "/Statement/0/Condition/StringNotEquals/aws:SourceVpce",
        endpoint="EDGE",
        good_endpoint="PRIVATE",
    ),
    _c(
        "if-exists-allow",
        "if-exists-security-key",
        doc(stmt(**cond(StringEqualsIfExists={"aws:PrincipalOrgID": "o-abc123"}))),
        doc(stmt(**cond(StringEquals={"aws:PrincipalOrgID": "o-abc123"}))),
        "/Statement/0/Condition/StringEqualsIfExists/aws:PrincipalOrgID",
    ),
    _c(
        "if-exists-allow-tag",
        "if-exists-security-key",
        doc(stmt(**cond(StringEqualsIfExists={"aws:PrincipalTag/team": "ops"}))),
        doc(
            stmt(
                **cond(
                    StringEqualsIfExists={"aws:PrincipalTag/team": "ops"},
                    Null={"aws:principaltag/TEAM": "false"},
                )
            )
        ),
        "/Statement/0/Condition/StringEqualsIfExists/aws:PrincipalTag~1team",
    ),
    _c(
        "if-exists-deny-is-info",
        "if-exists-security-key",
        doc(stmt(Effect="Deny", **cond(StringNotEqualsIfExists={"aws:SourceVpc": "vpc-1a2b3c4d"}))),
        doc(stmt(Effect="Deny", **cond(StringNotEqualsIfExists={"aws:UserAgent": "curl/*"}))),
        "/Statement/0/Condition/StringNotEqualsIfExists/aws:SourceVpc",
        severity=INFO,
    ),
    _c(
        "for-all-values",
        "for-all-values-allow",
        doc(stmt(**PUBLIC, **cond(ForAllValues__StringEquals={"aws:PrincipalTag/team": ["a", "b"]}))),
        doc(stmt(**PUBLIC, **cond(ForAnyValue__StringEquals={"aws:PrincipalTag/team": ["a", "b"]}))),
        "/Statement/0/Condition/ForAllValues:StringEquals/aws:PrincipalTag~1team",
    ),
    _c(
        "for-all-values-null-guard",
        "for-all-values-allow",
        doc(stmt(**cond(ForAllValues__StringLike={"aws:PrincipalOrgPaths": "o-a/r-b/*"}))),
        doc(
            stmt(
                **cond(
                    ForAllValues__StringLike={"aws:PrincipalOrgPaths": "o-a/r-b/*"},
                    Null={"aws:PrincipalOrgPaths": "false"},
                )
            )
        ),
        "/Statement/0/Condition/ForAllValues:StringLike/aws:PrincipalOrgPaths",
    ),
    _c(
        "shadowed-shorthand",
        "shadowed-by-deny",
        doc(
            stmt(**NET), stmt(Effect="Deny", **PUBLIC, Action="execute-api:*", Resource="execute-api:/prod/*")
        ),
        doc(
            stmt(**NET), stmt(Effect="Deny", **PUBLIC, Action="execute-api:*", Resource="execute-api:/test/*")
        ),
        "/Statement/0",
    ),
    _c(
        "shadowed-arn",
        "shadowed-by-deny",
        doc(
            stmt(Resource=[f"{API}/prod/GET/pets", f"{API}/prod/GET/pets/*"]),
            stmt(Effect="Deny", **PUBLIC, Resource=f"{API}/*/GET/*"),
        ),
        doc(
            stmt(Resource=[f"{API}/prod/GET/pets", f"{API}/prod/POST/pets"]),
            stmt(Effect="Deny", **PUBLIC, Resource=f"{API}/*/GET/*"),
        ),
        "/Statement/0",
    ),
    _c(
        "shadowed-not-action",
        "shadowed-by-deny",
        doc(
            stmt(Action=None, NotAction="execute-api:InvalidateCache"),
            stmt(Effect="Deny", **PUBLIC, Action="*"),
        ),
        doc(
            stmt(Action=None, NotAction="execute-api:InvalidateCache"),
            stmt(Effect="Deny", **PUBLIC, Action="execute-api:InvalidateCache"),
        ),
        "/Statement/0",
    ),
    _c(
        "shadowed-only-when-unconditional",
        "shadowed-by-deny",
        doc(stmt(), stmt(Effect="Deny", Principal={"AWS": "*"}, Resource="*")),
        doc(stmt(), stmt(Effect="Deny", **PUBLIC, Resource="*", **NET)),
        "/Statement/0",
    ),
    _c(
        "shadowed-not-for-everyone",
        "shadowed-by-deny",
        doc(stmt(), stmt(Effect="Deny", **PUBLIC, Resource="execute-api:/*")),
        doc(stmt(), stmt(Effect="Deny", Resource="execute-api:/*")),
        "/Statement/0",
    ),
    _c(
        "shadowed-question-mark-not-sure",
        "shadowed-by-deny",
        doc(
            stmt(Resource="execute-api:/prod/GET/a"),
            stmt(Effect="Deny", **PUBLIC, Resource="execute-api:/prod/GET/?"),
        ),
        doc(
            stmt(Resource="execute-api:/prod/GET/*"),
            stmt(Effect="Deny", **PUBLIC, Resource="execute-api:/prod/GET/?"),
        ),
        "/Statement/0",
    ),
    _c(
        "shadowed-mixed-forms-not-sure",
        "shadowed-by-deny",
        doc(stmt(Resource=f"{API}/prod/GET/x"), stmt(Effect="Deny", **PUBLIC, Resource=f"{API}/prod/*")),
        doc(
            stmt(Resource="execute-api:/prod/GET/x"), stmt(Effect="Deny", **PUBLIC, Resource=f"{API}/prod/*")
        ),
        "/Statement/0",
    ),
    _c(
        "duplicate",
        "duplicate-statement",
        doc(
            stmt(Sid="A", Action=["execute-api:Invoke", "execute-api:InvalidateCache"], **NET),
            stmt(Sid="B", Action=["EXECUTE-API:invalidatecache", "execute-api:Invoke"], **NET),
        ),
        doc(
            stmt(Sid="A", Action=["execute-api:Invoke", "execute-api:InvalidateCache"], **NET),
            stmt(Sid="B", Action=["execute-api:Invoke"], **NET),
        ),
        "/Statement/1",
    ),
    _c(
        "duplicate-ignores-value-order",
        "duplicate-statement",
        doc(
            stmt(**cond(IpAddress={"aws:SourceIp": ["203.0.113.0/24", "198.51.100.0/24"]})),
            stmt(**cond(IpAddress={"aws:SourceIP": ["198.51.100.0/24", "203.0.113.0/24"]})),
        ),
        doc(
            stmt(**cond(IpAddress={"aws:SourceIp": ["203.0.113.0/24", "198.51.100.0/24"]})),
            stmt(**cond(NotIpAddress={"aws:SourceIp": ["198.51.100.0/24", "203.0.113.0/24"]})),
        ),
        "/Statement/1",
    ),
    _c(
        "unsupplied-key",
        "unsupplied-condition-key",
        doc(stmt(**cond(StringEquals={"aws:SourceAccount": "111122223333"}))),
        doc(stmt(**cond(StringEquals={"AWS:principalaccount": "111122223333"}))),
        "/Statement/0/Condition/StringEquals/aws:SourceAccount",
    ),
    _c(
        "unsupplied-service-key",
        "unsupplied-condition-key",
        doc(stmt(**cond(StringNotEquals={"s3:prefix": "x"}))),
        doc(stmt(**cond(StringNotEquals={"execute-api:viaDomainArn": "x", "aws:PrincipalTag/a": "b"}))),
        "/Statement/0/Condition/StringNotEquals/s3:prefix",
    ),
    _c(
        "wildcard-account-resource",
        "wildcard-account",
        doc(stmt(Resource="arn:aws:execute-api:us-east-1:*:a1b2c3d4e5/*")),
        doc(stmt(Resource="arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/*")),
        "/Statement/0/Resource",
    ),
    _c(
        "wildcard-account-absorbed",
        "wildcard-account",
        doc(stmt(Resource=["execute-api:/*", "arn:aws:execute-api:us-east-1:*"])),
        doc(stmt(Effect="Deny", Resource=["execute-api:/*", "arn:aws:execute-api:us-east-1:*"])),
        "/Statement/0/Resource/1",
    ),
    _c(
        "wildcard-account-principal-arn",
        "wildcard-account",
        doc(stmt(**PUBLIC, **cond(ArnLike={"aws:PrincipalArn": "arn:aws:iam::*:role/deploy"}))),
        doc(stmt(**PUBLIC, **cond(ArnLike={"aws:PrincipalArn": "arn:aws:iam::111122223333:role/*"}))),
        "/Statement/0/Condition/ArnLike/aws:PrincipalArn",
    ),
    _c(
        "wildcard-account-deny-exemption",
        "wildcard-account",
        doc(stmt(Effect="Deny", **PUBLIC, **cond(ArnNotLike={"aws:PrincipalArn": "arn:aws:iam::*:role/x"}))),
        doc(stmt(Effect="Deny", **PUBLIC, **cond(ArnLike={"aws:PrincipalArn": "arn:aws:iam::*:role/x"}))),
        "/Statement/0/Condition/ArnNotLike/aws:PrincipalArn",
    ),
    _c(
        "principal-arn-session",
        "principal-arn-session",
        doc(stmt(**PUBLIC, **cond(ArnEquals={"aws:PrincipalArn": SESSION}))),
        doc(stmt(**PUBLIC, **cond(ArnEquals={"aws:PrincipalArn": ROLE_R}))),
        "/Statement/0/Condition/ArnEquals/aws:PrincipalArn",
    ),
    _c(
        "org-paths-plain",
        "org-paths-plain-operator",
        doc(stmt(**cond(StringLike={"aws:PrincipalOrgPaths": "o-a/r-b/ou-c/*"}))),
        doc(stmt(**cond(ForAnyValue__StringLike={"aws:PrincipalOrgPaths": "o-a/r-b/ou-c/*"}))),
        "/Statement/0/Condition/StringLike/aws:PrincipalOrgPaths",
    ),
    _c(
        "date-epoch",
        "date-epoch-value",
        doc(stmt(**cond(DateGreaterThan={"aws:CurrentTime": "2024"}))),
        doc(stmt(**cond(DateGreaterThan={"aws:CurrentTime": ["2024-01-01T00:00:00Z", "1767225600"]}))),
        "/Statement/0/Condition/DateGreaterThan/aws:CurrentTime",
    ),
    _c(
        "numeric-current-time",
        "numeric-date-key",
        doc(stmt(**cond(NumericLessThan={"aws:CurrentTime": "1767225600"}))),
        doc(stmt(**cond(NumericLessThan={"aws:EpochTime": "1767225600"}))),
        "/Statement/0/Condition/NumericLessThan/aws:CurrentTime",
    ),
    _c(
        "secure-transport-false",
        "secure-transport-false",
        doc(stmt(Effect="Deny", **PUBLIC, **cond(Bool={"aws:SecureTransport": False}))),
        doc(stmt(Effect="Deny", **PUBLIC, **cond(Bool={"aws:SecureTransport": "true"}))),
        "/Statement/0/Condition/Bool/aws:SecureTransport",
        severity=INFO,
    ),
    _c(
        "not-principal-user-without-account",
        "not-principal-deny-layers",
        doc(stmt(Effect="Deny", Principal=None, NotPrincipal={"AWS": [USER]})),
        doc(
            stmt(
                Effect="Deny", Principal=None, NotPrincipal={"AWS": [USER, "arn:aws:iam::111122223333:root"]}
            )
        ),
        "/Statement/0/NotPrincipal/AWS/0",
    ),
    _c(
        "not-principal-session-without-role",
        "not-principal-deny-layers",
        doc(stmt(Effect="Deny", Principal=None, NotPrincipal={"AWS": ["111122223333", SESSION]})),
        doc(stmt(Effect="Deny", Principal=None, NotPrincipal={"AWS": ["111122223333", ROLE_R, SESSION]})),
        "/Statement/0/NotPrincipal/AWS/1",
    ),
    _c(
        "not-principal-role-without-session",
        "not-principal-deny-layers",
        doc(stmt(Effect="Deny", Principal=None, NotPrincipal={"AWS": ["111122223333", ROLE_R]})),
        doc(stmt(Effect="Deny", **PUBLIC, **cond(ArnNotEquals={"aws:PrincipalArn": ROLE_R}))),
        "/Statement/0/NotPrincipal/AWS/1",
    ),
    _c(
        "other-service-action",
        "non-execute-api-action",
        doc(stmt(Action=["execute-api:Invoke", "s3:GetObject"])),
        doc(stmt(Action=["execute-api:Invoke", "*"])),
        "/Statement/0/Action/1",
        severity=INFO,
    ),
    _c(
        "pattern-matching-no-action",
        "non-execute-api-action",
        doc(stmt(Action="execute-api:Get*")),
        doc(stmt(Action="execute-api:In*")),
        "/Statement/0/Action",
        severity=INFO,
    ),
    _c(
        "other-service-resource",
        "non-execute-api-resource",
        doc(stmt(Resource=["execute-api:/*", "arn:aws:s3:::bucket/*"])),
        doc(stmt(Resource=["execute-api:/*", "arn:aws:execute-api:*:111122223333:*"])),
        "/Statement/0/Resource/1",
        severity=INFO,
    ),
    _c(
        "allow-on-a-header-alone",
        "client-chosen-allow",
        doc(stmt(**PUBLIC, **cond(StringEquals={"iamgate:RequestHeader/X-Role": "admin"}))),
        doc(
            stmt(
                **PUBLIC,
                **cond(
                    StringEquals={"iamgate:RequestHeader/X-Role": "admin", "iamgate:JwtClaim/scope": "admin"}
                ),
            )
        ),
        "/Statement/0/Condition/StringEquals/iamgate:RequestHeader~1X-Role",
    ),
    _c(
        "allow-on-query-and-path-alone",
        "client-chosen-allow",
        doc(
            stmt(
                **PUBLIC,
                **cond(
                    StringEquals={"iamgate:QueryString/key": "k"},
                    StringLike={"iamgate:PathParameter/id": "a*"},
                ),
            )
        ),
        doc(
            stmt(
                **PUBLIC,
                **cond(StringEquals={"iamgate:QueryString/key": "k", "iamgate:ClientCert/IssuerDN": "CN=ca"}),
            )
        ),
        "/Statement/0/Condition/StringEquals/iamgate:QueryString~1key",
    ),
    _c(
        "if-exists-on-a-claim",
        "if-exists-security-key",
        doc(stmt(**PUBLIC, **cond(StringEqualsIfExists={"iamgate:JwtClaim/scope": "admin"}))),
        doc(stmt(**PUBLIC, **cond(StringEquals={"iamgate:JwtClaim/scope": "admin"}))),
        "/Statement/0/Condition/StringEqualsIfExists/iamgate:JwtClaim~1scope",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_finding_fires_on_bad_policy_only(case: Case) -> None:
    found = [d for d in lint(case.bad, case.endpoint) if d.code == case.code]
    assert [(d.severity, d.location.pointer) for d in found] == [(case.severity, case.pointer)]
    assert found[0].location.line is not None
    assert found[0].help
    assert case.code not in {d.code for d in lint(case.good, case.good_endpoint)}


def test_every_code_has_a_case() -> None:
    assert sorted({c.code for c in CASES}) == sorted(LINT_CODES)


def test_every_code_is_documented() -> None:
    text = (ROOT / "docs" / "lint.md").read_text(encoding="utf-8")
    missing = [code for code in LINT_CODES if f"`{code}`" not in text]
    assert not missing


def test_clean_policy_has_no_findings() -> None:
    policy = doc(
        stmt(**PUBLIC, **NET),
        stmt(Effect="Deny", **PUBLIC, Resource="execute-api:/*/DELETE/*", **NET),
    )
    assert lint(policy) == []


def test_findings_are_ordered_by_position() -> None:
    policy = doc(
        stmt(**PUBLIC, Action=["s3:GetObject", "execute-api:Invoke"]),
        stmt(**cond(DateLessThan={"aws:CurrentTime": "2024"})),
        stmt(**cond(DateLessThan={"aws:CurrentTime": "2024"})),
    )
    found = lint(policy)
    assert len(found) >= 4
    positions = [(d.location.line or 0, d.location.column or 0) for d in found]
    assert positions == sorted(positions)


def test_unsupplied_negated_key_explains_it_always_holds() -> None:
    # both fire the same code; the positive one is never true, the negated one always true
    found = lint(
        doc(
            stmt(
                **cond(StringEquals={"aws:RequestedRegion": "x"}, StringNotEquals={"aws:ViaAWSService": "y"})
            )
        )
    )
    assert [d.code for d in found] == ["policy.lint.unsupplied-condition-key"] * 2


@pytest.mark.parametrize("endpoint", ["private", "Private", "PRIVATE"])
def test_endpoint_type_is_case_insensitive(endpoint: str) -> None:
    found = lint(doc(stmt(**NET)), endpoint)
    assert "policy.lint.source-ip-on-private-api" in {d.code for d in found}


def test_unknown_endpoint_type_is_an_error() -> None:
    with pytest.raises(ValueError, match="endpoint_type"):
        lint_policy(parse(doc(stmt())), endpoint_type="GLOBAL")


def test_endpoint_types_match_the_cli_choices() -> None:
    assert ENDPOINT_TYPES == ("REGIONAL", "PRIVATE", "EDGE")


def test_policy_without_locations_is_linted() -> None:
    ast_, _ = read_document({"Version": "2012-10-17", "Statement": [stmt(**PUBLIC)]})
    assert ast_ is not None
    found = lint_policy(ast_)
    assert [d.code for d in found] == ["policy.lint.public-allow"]
    assert found[0].location.pointer == "/Statement/0/Principal"


def _corpus_policies() -> list[Policy]:
    out = []
    for path in CORPUS_FILES:
        for case in read_cases(path.read_text(encoding="utf-8"), source=path.name, base=path.parent):
            if case.policy is None or case.expect == "Invalid":
                continue
            policy, diags = read_document(case.policy, lines=case.lines)
            if policy is not None and not any(d.is_error for d in diags):
                out.append(policy)
    return out


def test_lints_the_whole_conformance_corpus() -> None:
    policies = _corpus_policies()
    assert len(policies) > 50
    seen: set[str] = set()
    for policy in policies:
        for d in lint_policy(policy, endpoint_type="REGIONAL"):
            assert d.code in LINT_CODES
            assert "/Statement" in d.location.pointer
            seen.add(d.code)
    assert "policy.lint.public-allow" in seen  # the corpus is full of Principal "*" allows


_SAMPLE = {
    Family.STRING: "x",
    Family.NUMERIC: "1",
    Family.DATE: "2020-01-01",
    Family.BOOL: "true",
    Family.BINARY: "YQ==",
    Family.IP: "203.0.113.0/24",
    Family.ARN: "arn:aws:iam::111122223333:role/x",
}
_OPERATORS = [
    f"{prefix}{name}{suffix}"
    for name in BASE_OPERATORS
    if name != "Null"
    for prefix in ("", "ForAnyValue:", "ForAllValues:")
    for suffix in ("", "IfExists")
]


@pytest.mark.parametrize(
    ("operator", "value"),
    [(op, None) for op in _OPERATORS] + [("Null", "true"), ("Null", "false")],
)
def test_absent_key_outcome_agrees_with_the_engine(operator: str, value: str | None) -> None:
    """The messages of unsupplied-condition-key and friends say what an absent key does; that
    must be what the evaluator does with an empty request context."""
    spec, _, _ = parse_operator(operator)
    assert spec is not None
    text = value if value is not None else _SAMPLE[spec.family]
    policy = parse(doc(stmt(Condition={operator: {"aws:SourceAccount": text}})))
    (clause,) = policy.statements[0].conditions
    (compiled,) = compile_statements(policy, None)
    assert _when_absent(clause) is compiled.conditions_hold(Context())


def test_broken_statements_are_not_linted() -> None:
    text = json.dumps(doc(stmt(**NET), stmt(**PUBLIC, Sid=7)))  # a Sid must be a string
    policy, diags = read_document(text)
    assert policy is not None
    assert [st.broken for st in policy.statements] == [False, True]
    assert any(d.is_error for d in diags)
    assert lint_policy(policy) == []


# --- coverage is sound: when it says "covered", every matching request is covered --------------
_CHARS = "ab:/*?"


def _expand(pattern: str, rng: random.Random) -> str:
    out = []
    for ch in pattern:
        if ch == "*":
            out.append("".join(rng.choice("ab:/") for _ in range(rng.randint(0, 3))))
        elif ch == "?":
            out.append(rng.choice("ab:/"))
        else:
            out.append(ch)
    return "".join(out)


@settings(max_examples=400, deadline=None)
@given(
    prefix=st.sampled_from(["", "arn:aws:execute-api:", "execute-api:/"]),
    cover=st.text(_CHARS, max_size=8),
    covered=st.text(_CHARS, max_size=8),
    seed=st.integers(0, 2**32),
)
def test_resource_coverage_is_sound(prefix: str, cover: str, covered: str, seed: int) -> None:
    cover, covered = prefix + cover, prefix + covered
    if not _resource_covers(cover, covered, variables=True):
        return
    short = "execute-api:/"
    rng = random.Random(seed)
    match_cover: Callable[[str], bool]
    match_covered: Callable[[str], bool]
    if cover.startswith(short) and covered.startswith(short):
        match_cover = GlobMatcher(glob_from_text(cover[len(short) :])).match
        match_covered = GlobMatcher(glob_from_text(covered[len(short) :])).match
        strip = len(short)
    else:
        match_cover = ArnMatcher(fold_service(glob_from_text(cover))).match
        match_covered = ArnMatcher(fold_service(glob_from_text(covered))).match
        strip = 0
    for _ in range(20):
        request = _expand(covered, rng)
        if match_covered(request[strip:]):
            assert match_cover(request[strip:]), (cover, covered, request)


@pytest.mark.parametrize(
    ("cover", "covered", "expected"),
    [
        ("*", "execute-api:/prod/*", True),
        ("arn:*", f"{API}/prod/GET/x", True),
        ("execute-api:/*", "execute-api:/prod/GET/*", True),
        ("execute-api:/prod/GET/*", "execute-api:/*", False),
        (f"{API}/*", f"{API}/prod/GET/*", True),
        ("arn:aws:execute-api:us-east-1:*", f"{API}/prod/*", True),
        ("arn:aws:execute-api:*:*:*", f"{API}/prod/*", True),
        (f"{API}/*", "arn:aws:execute-api:us-east-1:*:a1b2c3d4e5/*", False),
        ("arn:aws:EXECUTE-API:us-east-1:111122223333:a1b2c3d4e5/*", f"{API}/x", True),
        (f"{API}/prod/GET/${{aws:username}}", f"{API}/prod/GET/alice", False),
        ("execute-api:/*", f"{API}/prod/GET/x", False),  # which API the shorthand names is unknown
        (f"{API}/*", "execute-api:/prod/GET/x", False),
    ],
)
def test_resource_coverage_table(cover: str, covered: str, expected: bool) -> None:
    assert _resource_covers(cover, covered, variables=True) is expected
