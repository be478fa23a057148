"""Stage and route policies in the configuration file: read and compiled for the API, each
problem located at the stage or route (then inside the policy), nothing served from a file with
one; the same policy text compiled once."""

from __future__ import annotations

from pathlib import Path

import pytest

from iamgate.config.load import load_config, parse_config

STATEMENT = '{Effect: Allow, Principal: "*", Action: "execute-api:Invoke", Resource: "execute-api:/*"}'
ALLOW = f'{{Version: "2012-10-17", Statement: [{STATEMENT}]}}'
TYPO = ALLOW.replace("Effect: Allow", "Effect: Alow")


def _config(stage: str = "{}", route: str = "") -> str:
    return f"""
gateway: {{region: us-east-1, account_id: "111122223333"}}
apis:
  - id: a1b2c3d4e5
    stages:
      prod: {stage}
    routes:
      - {{path: /pets, method: GET, integration: {{type: MOCK}}{route}}}
      - {{path: /open, method: GET, integration: {{type: MOCK}}}}
"""


def test_stage_and_route_policies_are_read() -> None:
    config, diags = parse_config(
        _config(f"{{policy: {ALLOW}, policy_mode: report}}", f", policy: {ALLOW}"), source="<t>"
    )
    assert config is not None, [d.render() for d in diags]
    api = config.apis[0]
    stage = api.stages["prod"].policy
    assert stage is not None
    assert (stage.label, stage.mode) == ("stage:prod", "report")
    route = next(r for r in api.routes if r.path == "/pets").policy
    assert route is not None
    assert (route.label, route.mode) == ("route:GET /pets", "enforce")
    assert next(r for r in api.routes if r.path == "/open").policy is None
    # the shorthand resolved for the API
    assert route.policy.decide(
        None, "execute-api:Invoke", "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/prod/GET/pets", {}
    ).allowed


@pytest.mark.parametrize(
    ("stage", "route", "code", "pointer"),
    [
        (
            "{}",
            f", policy: {TYPO}",
            "policy.parse.invalid-effect",
            "/apis/0/routes/0/policy/Statement/0/Effect",
        ),
        ("{policy_file: missing.json}", "", "config.policy-file", "/apis/0/stages/prod/policy_file"),
        ("{policy_mode: report}", "", "config.invalid-value", "/apis/0/stages/prod/policy_mode"),
        (
            "{}",
            f", policy: {ALLOW}, policy_file: x.json",
            "config.conflicting-keys",
            "/apis/0/routes/0/policy_file",
        ),
        ("{}", ", policy: 42", "config.wrong-type", "/apis/0/routes/0/policy"),
        ("{}", ", policy_mode: audit", "config.invalid-value", "/apis/0/routes/0/policy_mode"),
    ],
    ids=[
        "bad-effect-in-route",
        "missing-stage-file",
        "mode-without-policy",
        "two-policies",
        "not-a-policy",
        "bad-mode",
    ],
)
def test_a_bad_stage_or_route_policy_is_a_located_error(
    stage: str, route: str, code: str, pointer: str
) -> None:
    config, diags = parse_config(_config(stage, route), source="<t>")
    assert config is None  # nothing of the file is served
    found = [(d.code, d.location.pointer) for d in diags if d.is_error]
    assert (code, pointer) in found, found
    assert all(d.location.line is not None for d in diags if d.is_error)


def test_the_same_policy_file_is_compiled_once(tmp_path: Path) -> None:
    (tmp_path / "office.json").write_text(
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",'
        ' "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]}'
    )
    routes = "\n".join(
        f"      - {{path: /r{i}, method: GET, integration: {{type: MOCK}}, policy_file: office.json}}"
        for i in range(5)
    )
    (tmp_path / "gateway.yaml").write_text(
        f"""
gateway: {{region: us-east-1, account_id: "111122223333"}}
apis:
  - id: a1b2c3d4e5
    stages: {{prod: {{policy_file: office.json}}}}
    routes:
{routes}
"""
    )
    config, diags = load_config(tmp_path / "gateway.yaml")
    assert config is not None, [d.render() for d in diags]
    api = config.apis[0]
    compiled = {id(r.policy.policy) for r in api.routes if r.policy is not None}
    assert len(compiled) == 1
    assert api.stages["prod"].policy is not None
    assert id(api.stages["prod"].policy.policy) in compiled
