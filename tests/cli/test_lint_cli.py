"""``iamgate policy lint`` through click's CliRunner: output formats, JSON shape, exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from iamgate.cli import cli

ALLOW_ALL = {
    "Effect": "Allow",
    "Principal": "*",
    "Action": "execute-api:Invoke",
    "Resource": "execute-api:/*",
}
NET = {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}

# a warning (public-allow) only
PUBLIC = {"Version": "2012-10-17", "Statement": [ALLOW_ALL]}
# an info (secure-transport-false) only
INFO_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {**ALLOW_ALL, "Condition": NET},
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ],
}
CLEAN = {"Version": "2012-10-17", "Statement": [{**ALLOW_ALL, "Condition": NET}]}
INVALID = {"Version": "2012-10-17", "Statement": [{**ALLOW_ALL, "Effect": "allow"}]}

LINE = re.compile(
    r"^(?P<file>.+?)(?::(?P<line>\d+):(?P<col>\d+))?: (?P<sev>error|warning|info) (?P<code>[a-z0-9.-]+): .+"
)


def write(tmp_path: Path, name: str, policy: dict[str, Any] | str) -> str:
    path = tmp_path / name
    path.write_text(policy if isinstance(policy, str) else json.dumps(policy, indent=2), encoding="utf-8")
    return str(path)


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["policy", "lint", *args], input=input)


def codes_of(result: Result) -> list[str]:
    return [m["code"] for line in result.stdout.splitlines() if (m := LINE.match(line))]


def test_text_output_renders_each_finding_then_a_summary(tmp_path: Path) -> None:
    path = write(tmp_path, "public.json", PUBLIC)
    result = run(path)
    lines = result.stdout.splitlines()
    first = LINE.match(lines[0])
    assert first is not None
    assert (first["file"], first["line"], first["col"], first["sev"], first["code"]) == (
        path,
        "6",  # the line of "Principal": "*" in the indented file
        "20",
        "warning",
        "policy.lint.public-allow",
    )
    assert lines[0].endswith("(at /Statement/0/Principal)")
    assert lines[1].startswith("    help: ")
    assert lines[-1] == f"{path}: 0 error(s), 1 warning(s), 0 info"
    assert len(lines) == 3


def test_json_output_shape(tmp_path: Path) -> None:
    public = write(tmp_path, "public.json", PUBLIC)
    invalid = write(tmp_path, "invalid.json", INVALID)
    result = run("--format", "json", public, invalid)
    out = json.loads(result.stdout)
    assert list(out) == ["files"]
    assert [(f["file"], f["valid"]) for f in out["files"]] == [(public, True), (invalid, False)]
    finding = out["files"][0]["findings"][0]
    assert set(finding) == {"code", "severity", "message", "pointer", "line", "column", "help", "source"}
    assert (finding["code"], finding["severity"], finding["pointer"], finding["source"]) == (
        "policy.lint.public-allow",
        "warning",
        "/Statement/0/Principal",
        public,
    )
    invalid_codes = [f["code"] for f in out["files"][1]["findings"]]
    assert invalid_codes == ["policy.parse.invalid-effect"]


def test_invalid_policy_is_reported_and_not_linted(tmp_path: Path) -> None:
    path = write(tmp_path, "invalid.json", INVALID)
    result = run(path)
    assert result.exit_code == 1
    assert codes_of(result) == ["policy.parse.invalid-effect"]
    assert result.stdout.splitlines()[-1].startswith(f"{path}: invalid, not linted (1 error(s)")


def test_validation_warnings_come_before_lint_findings(tmp_path: Path) -> None:
    policy = {"Version": "2012-10-17", "Statement": [{**ALLOW_ALL, "Sid": "a"}, {**ALLOW_ALL, "Sid": "a"}]}
    result = run(write(tmp_path, "dup.json", policy))
    found = codes_of(result)
    assert found[0] == "policy.validate.duplicate-sid"
    assert "policy.lint.duplicate-statement" in found[1:]
    assert all(c.startswith("policy.lint.") for c in found[1:])


@pytest.mark.parametrize(
    ("policy", "fail_on", "status"),
    [
        (PUBLIC, None, 0),  # default: error
        (PUBLIC, "error", 0),
        (PUBLIC, "warning", 1),
        (PUBLIC, "info", 1),
        (PUBLIC, "never", 0),
        (INFO_ONLY, "warning", 0),
        (INFO_ONLY, "info", 1),
        (CLEAN, "info", 0),
        (INVALID, None, 1),
        (INVALID, "warning", 1),
        (INVALID, "never", 0),
    ],
)
def test_exit_status_follows_fail_on(
    tmp_path: Path, policy: dict[str, Any], fail_on: str | None, status: int
) -> None:
    args = [write(tmp_path, "p.json", policy)]
    if fail_on is not None:
        args = ["--fail-on", fail_on, *args]
    assert run(*args).exit_code == status


def test_info_only_policy_reports_its_finding(tmp_path: Path) -> None:
    result = run(write(tmp_path, "p.json", INFO_ONLY))
    assert codes_of(result) == ["policy.lint.secure-transport-false"]


def test_any_file_reaching_fail_on_fails_the_run(tmp_path: Path) -> None:
    clean = write(tmp_path, "clean.json", CLEAN)
    public = write(tmp_path, "public.json", PUBLIC)
    result = run("--fail-on", "warning", clean, public)
    assert result.exit_code == 1
    summaries = [
        line for line in result.stdout.splitlines() if not LINE.match(line) and not line.startswith(" ")
    ]
    assert summaries == [
        f"{clean}: 0 error(s), 0 warning(s), 0 info",
        f"{public}: 0 error(s), 1 warning(s), 0 info",
    ]


def test_unreadable_file_exits_2(tmp_path: Path) -> None:
    result = run(str(tmp_path / "missing.json"))
    assert result.exit_code == 2
    assert "missing.json" in result.output


def test_bad_option_value_exits_2(tmp_path: Path) -> None:
    assert run("--fail-on", "sometimes", write(tmp_path, "p.json", CLEAN)).exit_code == 2


def test_stdin(tmp_path: Path) -> None:
    result = run("-", input=json.dumps(PUBLIC))
    assert codes_of(result) == ["policy.lint.public-allow"]
    assert result.stdout.startswith("<stdin>:")


def test_undecodable_input_is_a_finding_not_a_crash() -> None:
    result = CliRunner().invoke(cli, ["policy", "lint", "-"], input=b"\xff\xfe{}")
    assert result.exit_code == 1
    assert codes_of(result) == ["policy.read.invalid-utf8"]


@pytest.mark.parametrize("endpoint", ["PRIVATE", "private"])
def test_endpoint_type_enables_key_availability_checks(tmp_path: Path, endpoint: str) -> None:
    path = write(tmp_path, "p.json", CLEAN)
    assert codes_of(run(path)) == []
    assert codes_of(run("--endpoint-type", endpoint, path)) == ["policy.lint.source-ip-on-private-api"]
    assert codes_of(run("--endpoint-type", "REGIONAL", path)) == []


def test_max_chars(tmp_path: Path) -> None:
    path = write(tmp_path, "p.json", CLEAN)
    small = run("--max-chars", "20", path)
    assert small.exit_code == 1
    assert codes_of(small) == ["policy.read.too-large"]
    assert run("--max-chars", "0", "--fail-on", "info", path).exit_code == 0


def test_policy_group_lists_lint() -> None:
    result = CliRunner().invoke(cli, ["policy", "--help"])
    assert result.exit_code == 0
    assert re.search(r"^\s+lint\s", result.stdout, re.M)
