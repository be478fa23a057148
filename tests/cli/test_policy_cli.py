"""`iamgate policy validate|simulate|test`: output formats and exit codes are a contract."""

from __future__ import annotations

import json
import subprocess
import sys
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


def test_validate_ok_and_errors(tmp_path: Path) -> None:
    ok = run("policy", "validate", str(EXAMPLE))
    assert ok.exit_code == 0
    assert ok.output.strip().endswith("valid (0 error(s), 0 warning(s))")
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"Version": "2012-10-17",\n "Statement": [{"Effect": "allow", "Principal": "*",'
        ' "Action": "execute-api:Invoke", "Resource": "*"}]}'
    )
    result = run("policy", "validate", str(bad), str(EXAMPLE))
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first.startswith(f"{bad}:2:27: error policy.parse.invalid-effect: ")
    assert result.output.splitlines()[1].startswith("    help: did you mean 'Allow'?")
    as_json = run("policy", "validate", "--format", "json", str(bad))
    assert as_json.exit_code == 1
    payload = json.loads(as_json.output)
    assert payload["files"][0]["valid"] is False
    assert payload["files"][0]["diagnostics"][0]["code"] == "policy.parse.invalid-effect"
    assert payload["files"][0]["diagnostics"][0]["line"] == 2


def test_validate_stdin_strict_and_max_chars() -> None:
    doc = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "a",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "execute-api:Invoke",
                    "Resource": "*",
                },
                {
                    "Sid": "a",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "execute-api:Invoke",
                    "Resource": "*",
                },
            ],
        }
    )
    assert run("policy", "validate", "-", stdin=doc).exit_code == 0
    assert run("policy", "validate", "--strict", "-", stdin=doc).exit_code == 1
    assert run("policy", "validate", "--max-chars", "50", "-", stdin=doc).exit_code == 1
    assert run("policy", "validate", "--max-chars", "0", "-", stdin=doc).exit_code == 0


def test_missing_file_is_a_usage_error() -> None:
    result = run("policy", "validate", "/nonexistent/policy.json")
    assert result.exit_code == 2
    assert "/nonexistent/policy.json" in result.output


def test_simulate_cases_writes_one_line_per_case_in_order(tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Everyone",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/*",
            }
        ],
    }
    lines = [
        {
            "name": "one",
            "policy": policy,
            "request": {
                "principal": None,
                "action": "execute-api:Invoke",
                "resource": f"{ARN}/prod/GET/pets",
                "context": {},
            },
        },
        {"name": "two", "policy": "{not json", "expect": "Invalid"},
        {
            "name": "three",
            "policy": json.dumps(policy),
            "request": {
                "principal": None,
                "action": "execute-api:Invoke",
                "resource": "arn:aws:execute-api:us-east-1:111122223333:other/prod/GET/pets",
            },
        },
    ]
    cases.write_text("\n".join(json.dumps(x) for x in lines) + "\n\nnot a case\n")
    result = run("policy", "simulate", "--cases", str(cases))
    assert result.exit_code == 0
    out = [json.loads(line) for line in result.output.splitlines()]
    assert [(o["name"], o["decision"]) for o in out] == [
        ("one", "Allow"),
        ("two", "Invalid"),
        ("three", "Allow"),
        (None, "Invalid"),
    ]
    assert out[0]["statements"] == [{"index": 0, "sid": "Everyone"}]
    assert out[1]["diagnostics"][0]["code"] == "policy.read.syntax"
    assert out[3]["diagnostics"][0]["code"] == "cases.invalid-line"
    assert set(out[0]) == {"name", "decision", "statements", "diagnostics"}


def test_simulate_cases_duplicate_key_in_object_policy_is_invalid(tmp_path: Path) -> None:
    line = (
        '{"name": "dup", "policy": {"Version": "2012-10-17", "Statement": {"Effect": "Allow", '
        '"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "*"}}, '
        f'"request": {{"principal": null, "action": "execute-api:Invoke", "resource": "{ARN}/prod/GET/"}}}}'
    )
    result = run("policy", "simulate", "--cases", "-", stdin=line + "\n")
    out = json.loads(result.output)
    assert out["decision"] == "Invalid"
    assert out["diagnostics"][0]["code"] == "policy.read.duplicate-key"
    assert out["diagnostics"][0]["line"] == 1
    assert out["diagnostics"][0]["pointer"] == "/policy/Statement/Effect"


def test_simulate_policy_explains_and_json(tmp_path: Path) -> None:
    args = [
        "policy",
        "simulate",
        "--policy",
        str(EXAMPLE),
        "--method",
        "GET",
        "--path",
        "/pets",
        "--stage",
        "prod",
        *API_FLAGS,
    ]
    denied = run(*args, "--context", "aws:SourceIp=192.0.2.200")
    assert denied.exit_code == 0
    assert "Decision: ExplicitDeny: denied by #2 (BlockKnownBadRange)" in denied.output
    assert f"{ARN}/prod/GET/pets" in denied.output
    allowed = run(*args, "--context", "aws:SourceIp=192.0.2.10", "--json")
    payload = json.loads(allowed.output)
    assert payload["decision"] == "Allow"
    assert payload["statements"] == [{"index": 0, "sid": "PublicReadFromOffice"}]
    assert payload["request"]["context"]["aws:securetransport"] == "true"
    assert len(payload["trace"]) == 3
    root = run(
        "policy",
        "simulate",
        "--policy",
        str(EXAMPLE),
        "--method",
        "get",
        "--path",
        "/",
        "--stage",
        "prod",
        *API_FLAGS,
        "--json",
    )
    assert json.loads(root.output)["request"]["resource"] == f"{ARN}/prod/GET/"


def test_simulate_policy_invalid_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"Statement": []}')
    result = run("policy", "simulate", "--policy", str(bad), "--resource", f"{ARN}/prod/GET/")
    assert result.exit_code == 1
    assert "Decision: Invalid" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["policy", "simulate"],
        ["policy", "simulate", "--policy", str(EXAMPLE)],
        ["policy", "simulate", "--policy", str(EXAMPLE), "--method", "GET", "--path", "/", "--stage", "p"],
        ["policy", "simulate", "--policy", str(EXAMPLE), "--resource", "x", "--api-id", "a"],
        ["policy", "simulate", "--policy", str(EXAMPLE), "--resource", "x", "--context", "novalue"],
    ],
)
def test_simulate_usage_errors(args: list[str]) -> None:
    assert run(*args).exit_code == 2


def test_test_command_passes_and_fails(tmp_path: Path) -> None:
    good = run("policy", "test", str(ROOT / "examples" / "pets-policy-tests.jsonl"))
    assert good.exit_code == 0
    assert good.output.strip().splitlines()[-1] == "4 passed, 0 failed"
    cases = tmp_path / "t.jsonl"
    failing = {
        "name": "wrong",
        "policy_file": str(EXAMPLE),
        "request": {
            "principal": None,
            "action": "execute-api:Invoke",
            "resource": f"{ARN}/prod/GET/pets",
            "context": {"aws:SourceIp": "198.51.100.1"},
        },
        "expect": "Allow",
    }
    no_expect = {**failing, "name": "no expect"}
    del no_expect["expect"]
    cases.write_text(json.dumps(failing) + "\n" + json.dumps(no_expect) + "\n")
    result = run("policy", "test", str(cases))
    assert result.exit_code == 1
    assert f"FAIL {cases}:1: wrong: expected Allow, got ImplicitDeny" in result.output
    assert "NO  Condition IpAddress aws:SourceIp: request 198.51.100.1" in result.output
    assert "FAIL" in result.output.splitlines()[-2] or "no valid" in result.output
    assert result.output.strip().splitlines()[-1] == "0 passed, 2 failed"


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "iamgate"
    result = subprocess.run(
        [str(exe), "policy", "test", str(ROOT / "examples" / "pets-policy-tests.jsonl")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("4 passed, 0 failed")
    assert subprocess.run(
        [str(exe), "--version"], capture_output=True, text=True, check=False
    ).stdout.startswith("iamgate, version")
