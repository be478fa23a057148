"""Parse and validate: every problem at once, with stable codes, locations and help."""

from __future__ import annotations

import json

import pytest

from iamgate.policy import PolicyKind, prepare, read_document

GOOD = {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "*"}


def codes(doc: object, **kw: object) -> list[str]:
    _, diags = read_document(doc if isinstance(doc, str) else json.dumps(doc), **kw)  # type: ignore[arg-type]
    return [d.code for d in diags]


def test_all_problems_are_reported_at_once_with_locations() -> None:
    text = """{
  "Version": "2012-10-18",
  "Statement": [
    {"Effect": "allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "*"},
    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::*:root"}, "Action": "Invoke", "Resource": "pets"},
    {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "*",
     "Condition": {"StringEqualz": {"aws:SourceIp": "x"}, "IpAddress": {"aws:SourceIp": "999.0.0.0/8"}}}
  ]
}"""
    _, diags = read_document(text)
    got = {(d.code, d.location.line) for d in diags}
    assert got == {
        ("policy.parse.invalid-version", 2),
        ("policy.parse.invalid-effect", 4),
        ("policy.validate.principal-partial-wildcard", 5),
        ("policy.validate.invalid-action", 5),
        ("policy.validate.invalid-resource", 5),
        ("policy.parse.unknown-operator", 7),
        ("policy.validate.invalid-ip", 7),
    }
    effect = next(d for d in diags if d.code == "policy.parse.invalid-effect")
    assert effect.location.pointer == "/Statement/0/Effect"
    assert effect.location.column == 16
    assert effect.help is not None
    assert "Allow" in effect.help
    operator = next(d for d in diags if d.code == "policy.parse.unknown-operator")
    assert operator.help is not None
    assert "StringEquals" in operator.help


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        ({"Statement": [GOOD], "Statements": []}, "policy.parse.unknown-element"),
        ({"Version": "2012-10-17"}, "policy.parse.missing-element"),
        ({"Statement": [{**GOOD, "effect": "Allow"}]}, "policy.parse.unknown-element"),
        ({"Statement": [{**GOOD, "NotAction": "x:y"}]}, "policy.parse.conflicting-elements"),
        ({"Statement": [{**GOOD, "NotResource": "*"}]}, "policy.parse.conflicting-elements"),
        ({"Statement": [{**GOOD, "NotPrincipal": "*"}]}, "policy.parse.conflicting-elements"),
        (
            {"Statement": [{k: v for k, v in GOOD.items() if k != "Principal"}]},
            "policy.parse.missing-element",
        ),
        ({"Statement": [{**GOOD, "Principal": {"Aws": "*"}}]}, "policy.parse.invalid-principal-type"),
        ({"Statement": [{**GOOD, "Principal": {}}]}, "policy.parse.empty-principal"),
        ({"Statement": [{**GOOD, "Principal": "111122223333"}]}, "policy.parse.invalid-principal"),
        ({"Statement": [{**GOOD, "Action": []}]}, "policy.parse.empty-array"),
        ({"Statement": []}, "policy.parse.empty-array"),
        ({"Statement": [{**GOOD, "Action": 5}]}, "policy.parse.wrong-type"),
        ({"Statement": [{**GOOD, "Sid": 5}]}, "policy.parse.wrong-type"),
        ({"Statement": [{**GOOD, "Condition": {"Null": {"k:x": None}}}]}, "policy.parse.null-value"),
        (
            {"Statement": [{**GOOD, "Condition": {"NullIfExists": {"k:x": "true"}}}]},
            "policy.parse.unknown-operator",
        ),
        (
            {"Statement": [{**GOOD, "Condition": {"ForAllValues:Null": {"k:x": "true"}}}]},
            "policy.parse.unknown-operator",
        ),
        (
            {"Statement": [{**GOOD, "Condition": {"ForSomeValues:StringEquals": {"k:x": "a"}}}]},
            "policy.parse.unknown-operator",
        ),
        ({"Statement": [{**GOOD, "Condition": {"StringEquals": "x"}}]}, "policy.parse.wrong-type"),
        (
            {"Statement": [{**GOOD, "Condition": {"DateEquals": {"aws:CurrentTime": "2026-13-01"}}}]},
            "policy.validate.invalid-date",
        ),
        (
            {"Statement": [{**GOOD, "Condition": {"NumericEquals": {"aws:EpochTime": "1e"}}}]},
            "policy.validate.invalid-number",
        ),
        (
            {"Statement": [{**GOOD, "Condition": {"BinaryEquals": {"k:x": "!!"}}}]},
            "policy.validate.invalid-base64",
        ),
        (
            {"Statement": [{**GOOD, "Condition": {"Null": {"k:x": "yes"}}}]},
            "policy.validate.invalid-null-value",
        ),
        (
            {"Statement": [{**GOOD, "Condition": {"StringEquals": {"SourceIp": "x"}}}]},
            "policy.validate.invalid-condition-key",
        ),
        ({"Statement": [{**GOOD, "Action": "execute-api:Invoke:x"}]}, "policy.validate.invalid-action"),
        ({"Statement": [{**GOOD, "Action": ":Invoke"}]}, "policy.validate.invalid-action"),
        (
            {"Statement": [{**GOOD, "Principal": {"AWS": "arn:aws:iam::111122223333:group/g"}}]},
            "policy.validate.invalid-principal",
        ),
        ({"Statement": [{**GOOD, "Principal": {"AWS": "bob"}}]}, "policy.validate.invalid-principal"),
        (
            {"Statement": [{**GOOD, "Principal": {"Service": "*.amazonaws.com"}}]},
            "policy.validate.principal-partial-wildcard",
        ),
    ],
)
def test_error_codes(doc: object, code: str) -> None:
    found = codes(doc)
    assert code in found
    assert prepare(json.dumps(doc)).policy is None


@pytest.mark.parametrize(
    ("statement", "version", "code"),
    [
        ({**GOOD, "Sid": "a"}, "2012-10-17", None),
        ({**GOOD, "Action": "execute-api:Invok"}, "2012-10-17", "policy.validate.unknown-action"),
        ({**GOOD, "Action": "execute-*:Invoke"}, "2012-10-17", "policy.validate.wildcard-service"),
        ({**GOOD, "Action": "execute-api:"}, "2012-10-17", "policy.validate.empty-action"),
        (
            {**GOOD, "Condition": {"Bool": {"aws:SecureTransport": "yes"}}},
            "2012-10-17",
            "policy.validate.invalid-bool",
        ),
        (
            {**GOOD, "Condition": {"StringEquals": {"aws:UserAgent": []}}},
            "2012-10-17",
            "policy.validate.empty-values",
        ),
        (
            {**GOOD, "Resource": "arn:aws:execute-api:us-east-1:1:a/${aws:username"},
            "2012-10-17",
            "policy.validate.malformed-variable",
        ),
        (
            {**GOOD, "Resource": "arn:aws:execute-api:us-east-1:1:a/${aws:username}"},
            "2008-10-17",
            "policy.validate.variables-ignored",
        ),
        (
            {**GOOD, "Resource": "arn:aws:execute-api:${aws:username}:111122223333:a/x"},
            "2012-10-17",
            "policy.validate.variable-outside-resource-part",
        ),
        (
            {
                **GOOD,
                "Condition": {
                    "NumericEquals": {"aws:EpochTime": "1"},
                    "ArnLike": {"aws:PrincipalArn": "role/x"},
                },
            },
            "2012-10-17",
            "policy.validate.not-an-arn",
        ),
        (
            {**GOOD, "Principal": {"AWS": "AROAEXAMPLEID1234567"}},
            "2012-10-17",
            "policy.validate.unique-id-principal",
        ),
    ],
)
def test_warnings_do_not_invalidate_but_strict_does(statement: dict, version: str, code: str | None) -> None:
    doc = json.dumps({"Version": version, "Statement": [statement, {**statement, "Sid": "b"}]})
    prepared = prepare(doc)
    assert prepared.policy is not None
    found = [d.code for d in prepared.diagnostics]
    if code is None:
        assert found == []
        return
    assert code in found
    assert all(not d.is_error for d in prepared.diagnostics)
    strict = prepare(doc, strict=True)
    if code in {
        "policy.validate.wildcard-service",
        "policy.validate.empty-action",
        "policy.validate.variable-outside-resource-part",
    }:
        assert strict.policy is not None
    else:
        assert strict.policy is None


def test_duplicate_sid_is_a_warning() -> None:
    doc = {"Version": "2012-10-17", "Statement": [{**GOOD, "Sid": "A"}, {**GOOD, "Sid": "A"}]}
    assert codes(doc) == ["policy.validate.duplicate-sid"]
    assert prepare(json.dumps(doc), strict=True).policy is None


def test_size_limit_is_a_setting() -> None:
    doc = json.dumps({"Version": "2012-10-17", "Statement": [GOOD] * 120})
    assert len(doc) > 8192
    assert codes(doc) == ["policy.read.too-large"]
    assert prepare(doc, max_chars=None).policy is not None
    assert prepare(doc, max_chars=len(doc)).policy is not None
    assert prepare(doc, max_chars=len(doc) - 1).policy is None


def test_identity_policies_take_no_principal() -> None:
    doc = {"Version": "2012-10-17", "Statement": [GOOD]}
    assert "policy.parse.principal-not-allowed" in codes(doc, kind=PolicyKind.IDENTITY)
    identity = {"Version": "2012-10-17", "Statement": [{k: v for k, v in GOOD.items() if k != "Principal"}]}
    assert codes(identity, kind=PolicyKind.IDENTITY) == []


def test_bytes_that_are_not_utf8() -> None:
    _, diags = read_document(b'{"Statement": "\xff"}')
    assert [d.code for d in diags] == ["policy.read.invalid-utf8"]
    assert "offset 15" in diags[0].message


def test_render_and_json_forms() -> None:
    prepared = prepare('{"Statement": [{"Effect": "Allow"}]}', source_name="p.json")
    rendered = [d.render() for d in prepared.diagnostics]
    assert rendered[0].startswith("p.json:1:16: error policy.parse.missing-element:")
    assert "\n    help: " in rendered[0]
    as_dict = prepared.diagnostics[0].to_dict()
    assert as_dict["source"] == "p.json"
    assert as_dict["line"] == 1
