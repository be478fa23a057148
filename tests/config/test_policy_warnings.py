"""A configuration's resource policy with statements no request can match (issue 14, item 12) is
accepted with located warnings, by the loader and by ``iamgate config validate``."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from iamgate.cli import cli
from iamgate.config.load import parse_config

CONFIG = """\
gateway: {region: us-east-1, account_id: "111122223333"}
apis:
  - id: a1b2c3d4e5
    policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Principal: "*"
          Action: execute-api:Invoke
          Resource:
            - execute-api:/prod/GETT/*
            - arn:aws:execute-api:us-east-1:111122223333:f9e8d7c6b5/*
            - arn:aws:execute-api:useast1:11112222333:a1b2c3d4e5/*
            - execute-api:/*
    stages: {prod: {}}
    routes:
      - {path: /pets, method: GET, integration: {type: MOCK}}
"""

EXPECTED = [
    ("policy.validate.unknown-method", 11, 15),
    ("policy.validate.other-api", 12, 15),
    ("policy.validate.invalid-region", 13, 15),
    ("policy.validate.invalid-account-id", 13, 15),
]


def test_the_loader_warns_at_each_resource() -> None:
    config, diags = parse_config(CONFIG)
    assert config is not None
    found = [(d.code, d.location.line, d.location.column) for d in diags]
    assert sorted(found) == sorted(EXPECTED)
    assert all(d.help for d in diags)


def test_config_validate_prints_them_and_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG)
    result = CliRunner().invoke(cli, ["config", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}:11:15: warning policy.validate.unknown-method: " in result.output
    assert "did you mean 'GET'?" in result.output
    assert "f9e8d7c6b5" in result.output
