"""Mistakes that used to pass silently (issue 14, item 12): resources no request can match are
warned about by ``policy validate`` (errors with ``--strict``) and ``policy lint``, and
``policy simulate`` refuses flags that are not what they claim to be (exit 2, naming the flag and
the value) instead of answering ImplicitDeny."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from iamgate.cli import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "pets-policy.json"
API_FLAGS = ["--api-id", "a1b2c3d4e5", "--region", "us-east-1", "--account", "111122223333"]
ARN = "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5"


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, list(args), input=stdin)


def policy(*resources: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "execute-api:Invoke",
                    "Resource": list(resources),
                }
            ],
        },
        indent=1,
    )


MISTAKES = [
    ("arn:aws:execute-api:us-east-1:11112222333:a1b2c3d4e5/*", "policy.validate.invalid-account-id"),
    ("arn:aws:execute-api:useast1:111122223333:a1b2c3d4e5/*", "policy.validate.invalid-region"),
    ("execute-api:/prod/GETT/pets", "policy.validate.unknown-method"),
]


@pytest.mark.parametrize(("resource", "code"), MISTAKES)
def test_validate_warns_and_strict_refuses(resource: str, code: str) -> None:
    doc = policy(resource)
    lenient = run("policy", "validate", "-", stdin=doc)
    assert lenient.exit_code == 0, lenient.output
    assert f"warning {code}: " in lenient.output
    assert "help: " in lenient.output
    strict = run("policy", "validate", "--strict", "--format", "json", "-", stdin=doc)
    assert strict.exit_code == 1
    (diag,) = json.loads(strict.output)["files"][0]["diagnostics"]
    assert (diag["code"], diag["severity"], diag["pointer"]) == (code, "error", "/Statement/0/Resource/0")
    assert diag["line"] is not None


def test_validate_with_the_api_reports_another_apis_resources() -> None:
    doc = policy("arn:aws:execute-api:us-east-1:111122223333:zzzzzzzzzz/*", "execute-api:/*")
    assert run("policy", "validate", "--strict", "-", stdin=doc).exit_code == 0  # the API is unknown
    result = run("policy", "validate", "--strict", *API_FLAGS, "-", stdin=doc)
    assert result.exit_code == 1
    assert "error policy.validate.other-api: " in result.output
    assert "zzzzzzzzzz" in result.output
    assert run("policy", "validate", "--api-id", "a1b2c3d4e5", "-", stdin=doc).exit_code == 2


def test_validate_flags_of_the_api_are_checked() -> None:
    result = run(
        "policy", "validate", "--api-id", "a1", "--region", "useast1", "--account", "1", str(EXAMPLE)
    )
    assert result.exit_code == 2
    assert "--region" in result.output
    assert "useast1" in result.output


def test_lint_reports_them_and_fails_on_warning() -> None:
    doc = policy("execute-api:/*/GETT/*", "arn:aws:execute-api:us-east-1:111122223333:other/*")
    result = run("policy", "lint", "--format", "json", *API_FLAGS, "-", stdin=doc)
    assert result.exit_code == 0
    codes = [f["code"] for f in json.loads(result.output)["files"][0]["findings"]]
    assert "policy.validate.unknown-method" in codes
    assert "policy.validate.other-api" in codes
    assert run("policy", "lint", "--fail-on", "warning", "-", stdin=doc).exit_code == 1


def test_wildcards_are_quiet() -> None:
    doc = policy("execute-api:/*", "execute-api:/*/GET/*", "arn:aws:execute-api:*:*:*", f"{ARN}/pro?/G*/x")
    result = run("policy", "validate", "--strict", *API_FLAGS, "-", stdin=doc)
    assert result.exit_code == 0, result.output
    assert "0 warning(s)" in result.output


# --- simulate -------------------------------------------------------------------------------
SIMULATE = ["policy", "simulate", "--policy", str(EXAMPLE)]
ROUTE = ["--method", "GET", "--path", "/pets", "--stage", "prod", *API_FLAGS]

BAD_FLAGS = [
    (["--context", "aws:SourceIp=999.1.1.1"], "--context", "999.1.1.1"),
    (["--context", "AWS:SOURCEIP=10.0.0.0/8"], "--context", "10.0.0.0/8"),
    (["--context", "aws:VpcSourceIp=here"], "--context", "here"),
    (["--context", "aws:EpochTime=soon"], "--context", "soon"),
    (["--context", "aws:CurrentTime=yesterday"], "--context", "yesterday"),
    (["--context", "aws:SecureTransport=maybe"], "--context", "maybe"),
    (["--context", "aws:MultiFactorAuthAge=old"], "--context", "old"),
    (["--context", "aws:PrincipalArn=alice"], "--context", "alice"),
    (["--context", "aws:SourceIp=192.0.2.1", "--context", "aws:SourceIp=x"], "--context", "'x'"),
    (["--method", "GETT"], "--method", "GETT"),
    (["--method", "ANY"], "--method", "ANY"),
    (["--path", "pets"], "--path", "pets"),
    (["--path", "/pets?x=1"], "--path", "/pets?x=1"),
    (["--stage", "pr od"], "--stage", "pr od"),
    (["--stage", "prod/v1"], "--stage", "prod/v1"),
    (["--region", "useast1"], "--region", "useast1"),
    (["--account", "11112222333"], "--account", "11112222333"),
    (["--api-id", "a1b2/c3"], "--api-id", "a1b2/c3"),
    (["--principal", "alice"], "--principal", "alice"),
    (["--principal", "arn:aws:iam::111122223333:group/devs"], "--principal", "group/devs"),
    (["--action", "Invoke"], "--action", "Invoke"),
    (["--action", "execute-api:Invok"], "--action", "Invok"),
    (["--action", "execute-api:*"], "--action", "execute-api:*"),
]


@pytest.mark.parametrize(
    ("flags", "flag", "value"), BAD_FLAGS, ids=lambda v: " ".join(v) if isinstance(v, list) else v
)
def test_simulate_refuses_flags_that_cannot_be_a_request(flags: list[str], flag: str, value: str) -> None:
    # later flags override the defaults of ROUTE
    result = run(*SIMULATE, *ROUTE, *flags)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{flag}'" in result.output
    assert value in result.output
    assert "Decision" not in result.output


def test_simulate_helps_with_a_did_you_mean() -> None:
    result = run(*SIMULATE, *ROUTE, "--method", "GETT")
    assert "did you mean 'GET'?" in result.output
    result = run(*SIMULATE, *ROUTE, "--region", "useast1")
    assert "did you mean 'us-east-1'?" in result.output


BAD_RESOURCES = [
    "x",
    "arn:aws:execute-api:us-east-1:111122223333",
    f"{ARN}/prod/GETT/pets",
    f"{ARN}/prod/GET",
    "arn:aws:execute-api:useast1:111122223333:a1b2c3d4e5/prod/GET/pets",
    "arn:aws:execute-api:us-east-1:1111:a1b2c3d4e5/prod/GET/pets",
    f"{ARN}/*/GET/pets",
]


@pytest.mark.parametrize("resource", BAD_RESOURCES)
def test_simulate_refuses_a_resource_that_is_not_a_method_arn(resource: str) -> None:
    result = run(*SIMULATE, "--resource", resource)
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--resource'" in result.output


@pytest.mark.parametrize(
    "flags",
    [
        ["--context", "aws:SourceIp=2001:db8::1"],
        ["--context", "aws:SourceIp=::ffff:192.0.2.1"],
        ["--context", "aws:CurrentTime=2026-01-15T12:00:00Z"],
        ["--context", "aws:EpochTime=1768478400"],
        ["--context", "aws:SecureTransport=TRUE"],
        ["--context", "aws:PrincipalTag/team=anything at all"],
        ["--context", "aws:UserAgent="],
        ["--method", "get"],
        ["--method", "OPTIONS"],
        ["--path", "/"],
        ["--stage", "dev_2-b"],
        ["--principal", "arn:aws:sts::111122223333:assumed-role/Dev/s1"],
        ["--principal", "111122223333"],
        ["--action", "execute-api:InvalidateCache"],
    ],
)
def test_simulate_accepts_what_a_request_can_carry(flags: list[str]) -> None:
    result = run(*SIMULATE, *ROUTE, *flags)
    assert result.exit_code == 0, result.output
    assert "Decision: " in result.output


def test_simulate_accepts_method_arns() -> None:
    result = run(*SIMULATE, "--resource", f"{ARN}/prod/GET/pets", "--context", "aws:SourceIp=192.0.2.10")
    assert result.exit_code == 0, result.output
    assert "Decision: Allow" in result.output
    root = run(*SIMULATE, "--resource", f"{ARN}/prod/GET/", "--context", "aws:SourceIp=192.0.2.10")
    assert root.exit_code == 0, root.output
    assert "Decision: ImplicitDeny" in root.output


def test_cases_do_not_blame_the_policy_for_a_request_to_another_api(tmp_path: Path) -> None:
    """A case file's API is guessed from each request's ARN; a case about a request to another
    API is no reason to report the policy's own resources as another API's."""
    case = {
        "name": "other api",
        "policy": json.loads(policy(f"{ARN}/prod/GET/pets")),
        "request": {
            "principal": None,
            "action": "execute-api:Invoke",
            "resource": "arn:aws:execute-api:us-east-1:111122223333:zzzzzzzzzz/prod/GET/pets",
        },
        "expect": "ImplicitDeny",
    }
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(case) + "\n")
    guessed = json.loads(run("policy", "simulate", "--cases", str(path)).output)
    assert guessed["decision"] == "ImplicitDeny"
    assert guessed["diagnostics"] == []
    given = json.loads(run("policy", "simulate", "--cases", str(path), *API_FLAGS).output)
    assert given["diagnostics"] == []  # the policy names the given API
    other = ["--api-id", "yyyyyyyyyy", "--region", "us-east-1", "--account", "111122223333"]
    told = json.loads(run("policy", "simulate", "--cases", str(path), *other).output)
    assert [d["code"] for d in told["diagnostics"]] == ["policy.validate.other-api"]
