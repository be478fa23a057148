"""The configuration loader: every problem is a located diagnostic, all at once, and a file with
any error yields no configuration at all.

Cases compare codes and (line, column), never wording (wording may improve). Each case is a complete YAML
document so that the expected positions can be read off the text.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from iamgate.config.load import load_config, parse_config
from iamgate.config.model import (
    GatewayConfig,
    GatewaySettings,
    HttpProxyIntegration,
    MockIntegration,
    UpstreamSettings,
)
from iamgate.policy import Diagnostic
from tests.gateway.conftest import IAMGATE

ROOT = Path(__file__).resolve().parents[2]

Found = tuple[str, int | None, int | None]  # (code, line, column)


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    expected: list[Found]  # every diagnostic, errors and warnings, in any order
    valid: bool = False  # True: only warnings, a configuration is produced


def api(routes: str = "      - {path: /pets, method: GET, integration: {type: MOCK}}\n", **extra: str) -> str:
    """A one-API document; ``extra`` lines are inserted after the id (at line 3)."""
    lines = "".join(f"    {k}: {v}\n" for k, v in extra.items())
    return f"apis:\n  - id: a1b2c3d4e5\n{lines}    stages: {{prod: {{}}}}\n    routes:\n{routes}"


def route(text: str) -> str:
    return api(f"      - {text}\n")


POLICY = (
    '{Version: "2012-10-17", Statement: [{Effect: Allow, Principal: "*", Action: "execute-api:Invoke", '
    'Resource: "execute-api:/*"}]}'
)

POLICY_JSON = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "*"}],
    }
)

CASES = [
    # --- the document itself ---------------------------------------------------------------------
    Case("empty", "", [("config.empty", None, None)]),
    Case("only-a-comment", "# nothing here\n", [("config.empty", None, None)]),
    Case("not-a-mapping", "- 1\n- 2\n", [("config.wrong-type", 1, 1)]),
    Case("yaml-syntax", "apis:\n  - id: a1b2c3d4e5\n   stages: {}\n", [("config.yaml.syntax", 3, 4)]),
    Case("yaml-unclosed-flow", "apis: [\n  {id: x\n", [("config.yaml.syntax", 3, 1)]),
    Case("yaml-tab-indent", "apis:\n\t- id: x\n", [("config.yaml.syntax", 2, 1)]),
    Case(
        "yaml-duplicate-key",
        "gateway:\n  region: us-east-1\n  region: eu-west-1\napis: []\n",
        [("config.yaml.duplicate-key", 3, 3), ("config.no-apis", 4, 7)],
    ),
    Case(
        "yaml-duplicate-top-key",
        "apis: []\napis: []\n",
        [("config.yaml.duplicate-key", 2, 1), ("config.no-apis", 1, 7)],
    ),
    Case("yaml-unknown-tag", "apis: !foo bar\n", [("config.yaml.value", 1, 7), ("config.wrong-type", 1, 7)]),
    Case(
        "yaml-too-deep",
        "apis: " + "[" * 70 + "]" * 70 + "\n",
        [("config.yaml.too-deep", 1, 71), ("config.wrong-type", 1, 8)],
    ),
    # --- keys ---------------------------------------------------------------------------------------
    Case(
        "unknown-top-key", "gatway: {}\napis: []\n", [("config.unknown-key", 1, 1), ("config.no-apis", 2, 7)]
    ),
    Case(
        "unknown-gateway-key",
        "gateway:\n  regoin: us-east-1\napis: []\n",
        [("config.unknown-key", 2, 3), ("config.no-apis", 3, 7)],
    ),
    Case("unknown-api-key", api(stagess="{}"), [("config.unknown-key", 3, 5)]),
    Case(
        "unknown-route-key",
        route("{path: /pets, method: GET, integration: {type: MOCK}, auth: NONE}"),
        [("config.unknown-key", 5, 63)],
    ),
    Case("missing-apis", "gateway: {}\n", [("config.missing-key", 1, 1)]),
    Case("missing-api-id", "apis:\n  - stages: {prod: {}}\n    routes: []\n", [("config.missing-key", 2, 5)]),
    Case("missing-stages", "apis:\n  - id: a1b2c3d4e5\n    routes: []\n", [("config.missing-key", 2, 5)]),
    Case(
        "missing-route-method",
        route("{path: /pets, integration: {type: MOCK}}"),
        [("config.missing-key", 5, 9)],
    ),
    Case(
        "missing-integration-type",
        route("{path: /pets, method: GET, integration: {}}"),
        [("config.missing-key", 5, 49)],
    ),
    Case(
        "missing-uri",
        route("{path: /pets, method: GET, integration: {type: HTTP_PROXY}}"),
        [("config.missing-key", 5, 49)],
    ),
    # --- types --------------------------------------------------------------------------------------
    Case(
        "gateway-list", "gateway: [1]\napis: []\n", [("config.wrong-type", 1, 10), ("config.no-apis", 2, 7)]
    ),
    Case("apis-mapping", "apis: {a: 1}\n", [("config.wrong-type", 1, 7)]),
    Case("api-not-mapping", "apis: [1]\n", [("config.wrong-type", 1, 8)]),
    Case(
        "account-id-number",
        "gateway:\n  account_id: 111122223333\napis: []\n",
        [("config.wrong-type", 2, 15), ("config.no-apis", 3, 7)],
    ),
    Case(
        "max-policy-chars-string",
        "gateway:\n  max_policy_chars: big\napis: []\n",
        [("config.wrong-type", 2, 21), ("config.no-apis", 3, 7)],
    ),
    Case(
        "trusted-proxies-string",
        "gateway:\n  trusted_proxies: 10.0.0.0/8\napis: []\n",
        [("config.wrong-type", 2, 20), ("config.no-apis", 3, 7)],
    ),
    Case(
        "semicolon-flag-string",
        "gateway:\n  allow_semicolon_in_path: 'yes'\napis: []\n",
        [("config.wrong-type", 2, 28), ("config.no-apis", 3, 7)],
    ),
    Case(
        "stages-empty",
        "apis:\n  - id: a1b2c3d4e5\n    stages: {}\n    routes: []\n",
        [("config.wrong-type", 3, 13)],
    ),
    Case(
        "stage-variables-list",
        "apis:\n  - id: a1b2c3d4e5\n    stages: {prod: {variables: [a]}}\n    routes: []\n",
        [("config.wrong-type", 3, 32)],
    ),
    Case(
        "stage-variable-bool",
        "apis:\n  - id: a1b2c3d4e5\n    stages: {prod: {variables: {a: true}}}\n    routes: []\n",
        [("config.wrong-type", 3, 36)],
    ),
    Case(
        "routes-mapping",
        "apis:\n  - id: a1b2c3d4e5\n    stages: {prod: {}}\n    routes: {}\n",
        [("config.wrong-type", 4, 13)],
    ),
    Case("policy-number", api(policy="5"), [("config.wrong-type", 3, 13)]),
    Case(
        "mock-headers-list",
        route("{path: /pets, method: GET, integration: {type: MOCK, headers: [a]}}"),
        [("config.wrong-type", 5, 71)],
    ),
    Case(
        "timeout-string",
        route("{path: /pets, method: GET, integration: {type: HTTP_PROXY, uri: 'http://h/', timeout: soon}}"),
        [("config.wrong-type", 5, 95)],
    ),
    # --- values with choices ------------------------------------------------------------------------
    Case("endpoint-type", api(endpoint_type="REGIONALL"), [("config.invalid-value", 3, 20)]),
    Case("policy-mode", api(policy_mode="audit"), [("config.invalid-value", 3, 18)]),
    Case(
        "method",
        route("{path: /pets, method: FETCH, integration: {type: MOCK}}"),
        [("config.invalid-value", 5, 31)],
    ),
    Case(
        "integration-type",
        route("{path: /pets, method: GET, integration: {type: HTTP}}"),
        [("config.invalid-value", 5, 56)],
    ),
    Case(
        "authorization",
        route("{path: /pets, method: GET, integration: {type: MOCK}, authorization: SIGV4}"),
        [("config.invalid-value", 5, 78)],
    ),
    Case(
        "anonymous-principal-keys",
        "gateway:\n  anonymous_principal_keys: anonymous\napis: []\n",
        [("config.invalid-value", 2, 29), ("config.no-apis", 3, 7)],
    ),
    Case(
        "unmatched-status",
        "gateway:\n  unmatched_status: 500\napis: []\n",
        [("config.invalid-value", 2, 21), ("config.no-apis", 3, 7)],
    ),
    Case(
        "denial-messages",
        "gateway:\n  denial_messages: modern\napis: []\n",
        [("config.invalid-value", 2, 20), ("config.no-apis", 3, 7)],
    ),
    Case(
        "region",
        "gateway:\n  region: US-EAST-1\napis: []\n",
        [("config.invalid-value", 2, 11), ("config.no-apis", 3, 7)],
    ),
    Case(
        "account-id-short",
        "gateway:\n  account_id: '1234'\napis: []\n",
        [("config.invalid-value", 2, 15), ("config.no-apis", 3, 7)],
    ),
    Case(
        "trusted-proxy-cidr",
        "gateway:\n  trusted_proxies: [10.0.0.0/33, 'fe80::/200', proxy.local]\napis: []\n",
        [
            ("config.invalid-value", 2, 21),
            ("config.invalid-value", 2, 34),
            ("config.invalid-value", 2, 48),
            ("config.no-apis", 3, 7),
        ],
    ),
    Case(
        "network-cidr-vpc-vpce",
        "gateway:\n  networks:\n    - {cidr: 10.0.0.0/99, vpc_id: vpc_1, vpce_id: endpoint-1}\napis: []\n",
        [
            ("config.invalid-value", 3, 14),
            ("config.invalid-value", 3, 35),
            ("config.invalid-value", 3, 51),
            ("config.no-apis", 4, 7),
        ],
    ),
    Case(
        "network-without-vpce",
        "gateway:\n  networks:\n    - {cidr: 10.0.0.0/8, vpc_id: vpc-0a1b2c3d}\napis: []\n",
        [("config.missing-key", 3, 7), ("config.no-apis", 4, 7)],
    ),
    Case(
        "network-without-cidr",
        "gateway:\n  networks:\n    - {vpce_id: vpce-0123}\napis: []\n",
        [("config.missing-key", 3, 7), ("config.no-apis", 4, 7)],
    ),
    Case(
        "api-id",
        "apis:\n  - id: My_API\n    stages: {prod: {}}\n    routes: []\n",
        [("config.invalid-value", 2, 9)],
    ),
    Case(
        "stage-name",
        "apis:\n  - id: a1b2c3d4e5\n    stages: {'pr od': {}}\n    routes: []\n",
        [("config.invalid-value", 3, 23)],
    ),
    Case(
        "stage-variable-name",
        "apis:\n  - id: a1b2c3d4e5\n    stages: {prod: {variables: {my-var: x}}}\n    routes: []\n",
        [("config.invalid-value", 3, 41)],
    ),
    Case(
        "mock-header-name",
        route("{path: /pets, method: GET, integration: {type: MOCK, headers: {'Bad Header': x}}}"),
        [("config.invalid-value", 5, 86)],
    ),
    Case(
        "mock-header-value-newline",
        route('{path: /pets, method: GET, integration: {type: MOCK, headers: {X-A: "a\\r\\nb: c"}}}'),
        [("config.invalid-value", 5, 77)],
    ),
    Case(
        "mock-status",
        route("{path: /pets, method: GET, integration: {type: MOCK, status: 99}}"),
        [("config.invalid-value", 5, 70)],
    ),
    Case(
        "mock-has-uri",
        route("{path: /pets, method: GET, integration: {type: MOCK, uri: 'http://h/'}}"),
        [("config.unknown-key", 5, 67)],
    ),
    Case(
        "proxy-has-body",
        route("{path: /pets, method: GET, integration: {type: HTTP_PROXY, uri: 'http://h/', body: x}}"),
        [("config.unknown-key", 5, 92)],
    ),
    Case(
        "timeout-range",
        route("{path: /pets, method: GET, integration: {type: HTTP_PROXY, uri: 'http://h/', timeout: 0}}"),
        [("config.invalid-value", 5, 95)],
    ),
    Case(
        "path-no-slash",
        route("{path: pets, method: GET, integration: {type: MOCK}}"),
        [("config.invalid-value", 5, 16)],
    ),
    Case(
        "path-empty-segment",
        route("{path: /a//b, method: GET, integration: {type: MOCK}}"),
        [("config.invalid-value", 5, 16)],
    ),
    Case(
        "path-greedy-not-last",
        route("{path: '/{proxy+}/x', method: GET, integration: {type: MOCK}}"),
        [("config.invalid-value", 5, 16)],
    ),
    Case(
        "path-mixed-segment",
        route("{path: '/x{id}', method: GET, integration: {type: MOCK}}"),
        [("config.invalid-value", 5, 16)],
    ),
    Case(
        "path-param-twice",
        route("{path: '/{id}/{id}', method: GET, integration: {type: MOCK}}"),
        [("config.invalid-value", 5, 16)],
    ),
    Case(
        "path-dot-segment",
        route("{path: /a/../b, method: GET, integration: {type: MOCK}}"),
        [("config.invalid-value", 5, 16)],
    ),
    Case(
        "uri-undefined-param",
        route(
            "{path: '/pets/{id}', method: GET, integration: {type: HTTP_PROXY, uri: 'http://h/pets/{petId}'}}"
        ),
        [("config.invalid-value", 5, 80)],
    ),
    Case(
        "uri-not-http",
        route("{path: /pets, method: GET, integration: {type: HTTP_PROXY, uri: 'ftp://h/pets'}}"),
        [("config.invalid-value", 5, 73)],
    ),
    Case(
        "uri-with-query",
        route("{path: /pets, method: GET, integration: {type: HTTP_PROXY, uri: 'http://h/pets?a=1'}}"),
        [("config.invalid-value", 5, 73)],
    ),
    Case(
        "uri-bad-port",
        route("{path: /pets, method: GET, integration: {type: HTTP_PROXY, uri: 'http://h:99999/'}}"),
        [("config.invalid-value", 5, 73)],
    ),
    Case(
        "access-log-format-without-request-id",
        "gateway:\n  access_log: {format: '$context.status'}\napis: []\n",
        [("config.invalid-value", 2, 24), ("config.no-apis", 3, 7)],
    ),
    Case(
        "stage-access-log-format-without-request-id",
        "apis:\n  - id: a1b2c3d4e5\n"
        "    stages: {prod: {access_log_format: '$context.status'}}\n    routes: []\n",
        [("config.invalid-value", 3, 40)],
    ),
    Case(
        "max-header-bytes-range",
        "gateway:\n  max_header_bytes: 10\napis: []\n",
        [("config.invalid-value", 2, 21), ("config.no-apis", 3, 7)],
    ),
    Case(
        "upstream-unknown-and-range",
        "gateway:\n  upstream: {max_connections: 0, retries: 2}\napis: []\n",
        [("config.invalid-value", 2, 31), ("config.unknown-key", 2, 34), ("config.no-apis", 3, 7)],
    ),
    # --- cross-checks ---------------------------------------------------------------------------------
    Case(
        "duplicate-api-id",
        "apis:\n  - id: a1b2c3d4e5\n    stages: {prod: {}}\n    routes: []\n"
        "  - id: a1b2c3d4e5\n    stages: {prod: {}}\n    routes: []\n",
        [("config.duplicate-id", 5, 9)],
    ),
    Case(
        "duplicate-route",
        api(
            "      - {path: '/pets/{id}', method: GET, integration: {type: MOCK}}\n"
            "      - {path: '/pets/{petId}', method: get, integration: {type: MOCK}}\n"
        ),
        [("config.duplicate-route", 6, 9)],
    ),
    Case(
        "conflicting-param-names",
        api(
            "      - {path: '/pets/{id}', method: GET, integration: {type: MOCK}}\n"
            "      - {path: '/pets/{name}', method: POST, integration: {type: MOCK}}\n"
        ),
        [("config.conflicting-route", 6, 16)],
    ),
    Case(
        "conflicting-greedy-names",
        api(
            "      - {path: '/{proxy+}', method: GET, integration: {type: MOCK}}\n"
            "      - {path: '/{path+}', method: POST, integration: {type: MOCK}}\n"
        ),
        [("config.conflicting-route", 6, 16)],
    ),
    Case("private-without-policy", api(endpoint_type="PRIVATE"), [("config.missing-key", 2, 5)]),
    Case(
        "policy-and-policy-file",
        api(policy=POLICY, policy_file="pets-policy.json"),
        [("config.conflicting-keys", 4, 18)],
    ),
    Case("unreadable-policy-file", api(policy_file="no-such-policy.json"), [("config.policy-file", 3, 18)]),
    Case(
        "policy-error-relocated",
        "apis:\n"
        "  - id: a1b2c3d4e5\n"
        "    stages: {prod: {}}\n"
        "    routes: []\n"
        "    policy:\n"
        "      Version: '2012-10-17'\n"
        "      Statement:\n"
        "        - Effect: allow\n"
        "          Principal: '*'\n"
        "          Action: execute-api:Invoke\n"
        "          Resource: execute-api:/*\n"
        "          Condition: {IpAddress: {aws:SourceIp: not-an-ip}}\n",
        [("policy.parse.invalid-effect", 8, 19), ("policy.validate.invalid-ip", 12, 49)],
    ),
    Case(
        "policy-json-string-error-at-the-yaml-node",
        api(policy="'" + POLICY_JSON.replace("Allow", "Allw") + "'"),
        [("policy.parse.invalid-effect", 3, 13)],
    ),
    Case(
        "policy-too-large",
        api(policy=POLICY.replace("Effect: Allow", "Sid: " + "x" * 9000 + ", Effect: Allow")),
        [("policy.read.too-large", 3, 13)],
    ),
    # --- warnings only: a configuration is produced ---------------------------------------------------
    Case("no-apis", "apis: []\n", [("config.no-apis", 1, 7)], valid=True),
    Case(
        "stage-variable-missing-in-a-stage",
        "apis:\n"
        "  - id: a1b2c3d4e5\n"
        "    stages:\n"
        "      prod: {variables: {backend: '127.0.0.1:9000'}}\n"
        "      beta: {}\n"
        "    routes:\n"
        "      - {path: /p, method: GET, integration: {type: HTTP_PROXY, uri: 'http://${stageVariables.backend}/'}}\n",
        [("config.undefined-stage-variable", 7, 70)],
        valid=True,
    ),
]


def found(text: str, base_dir: Path) -> tuple[GatewayConfig | None, list[Found], list[Diagnostic]]:
    config, diags = parse_config(text, source="gateway.yaml", base_dir=base_dir)
    return config, [(d.code, d.location.line, d.location.column) for d in diags], diags


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_problem_is_located(case: Case) -> None:
    config, got, diags = found(case.text, ROOT / "examples")
    assert sorted(got, key=str) == sorted(case.expected, key=str)
    assert all(d.source == "gateway.yaml" for d in diags)
    if case.valid:
        assert config is not None
        assert not any(d.is_error for d in diags)
    else:
        assert config is None  # never half-configured


@pytest.mark.parametrize(
    ("case_id", "choice"),
    [
        ("unknown-gateway-key", "'region'"),
        ("unknown-top-key", "'gateway'"),
        ("unknown-api-key", "'stages'"),
        ("endpoint-type", "'REGIONAL'"),
        ("method", "PATCH"),
        ("integration-type", "HTTP_PROXY"),
        ("denial-messages", "policy-type"),
        ("policy-mode", "report"),
        ("unmatched-status", "404"),
        ("anonymous-principal-keys", "omit, iam"),
        ("uri-undefined-param", "id"),
    ],
)
def test_help_names_the_valid_choices(case_id: str, choice: str) -> None:
    case = next(c for c in CASES if c.id == case_id)
    _, _, diags = found(case.text, ROOT / "examples")
    helps = [d.help or "" for d in diags if d.is_error]
    assert any(choice in h for h in helps), helps


def test_all_problems_are_reported_at_once() -> None:
    text = (
        "gateway:\n"
        "  region: Mars\n"
        "  unmatched_status: 418\n"
        "apis:\n"
        "  - id: a1b2c3d4e5\n"
        "    endpoint_type: PUBLIC\n"
        "    stages: {prod: {}}\n"
        "    routes:\n"
        "      - {path: pets, method: GET, integration: {type: MOCK}}\n"
        "      - {path: /ok, method: GET, integration: {type: MOCK, status: 1000}}\n"
        "  - id: second\n"
        "    stages: {prod: {}}\n"
        "    routes: [{path: /x, method: GOT, integration: {type: MOCK}}]\n"
    )
    config, got, _ = found(text, ROOT)
    assert config is None
    assert sorted(got, key=str) == sorted(
        [
            ("config.invalid-value", 2, 11),
            ("config.invalid-value", 3, 21),
            ("config.invalid-value", 6, 20),
            ("config.invalid-value", 9, 16),
            ("config.invalid-value", 10, 68),
            ("config.invalid-value", 13, 33),
        ],
        key=str,
    )


def test_billion_laughs_is_refused_without_expanding() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append("apis: *a9")
    config, got, _ = found("\n".join(lines) + "\n", ROOT)
    assert config is None
    assert got == [("config.yaml.too-large", None, None)]


def test_policy_file_errors_keep_the_policy_files_own_positions(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text('{\n  "Version": "2012-10-17",\n  "Statement": [\n    {"Effect": "Allw"}\n  ]\n}\n')
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(api(policy_file="policy.json"))  # relative to the configuration file
    config, diags = load_config(config_path)
    assert config is None
    assert [(d.code, d.source, d.location.line, d.location.column) for d in diags if d.is_error] == [
        ("policy.parse.invalid-effect", str(policy), 4, 16),
        ("policy.parse.missing-element", str(policy), 4, 5),  # Principal, Action, Resource
        ("policy.parse.missing-element", str(policy), 4, 5),
        ("policy.parse.missing-element", str(policy), 4, 5),
    ]


def test_policy_file_that_is_not_json(tmp_path: Path) -> None:
    (tmp_path / "policy.json").write_text("{\n  nope\n}\n")
    (tmp_path / "gateway.yaml").write_text(api(policy_file="policy.json"))
    config, diags = load_config(tmp_path / "gateway.yaml")
    assert config is None
    assert [(d.code.split(".")[1], d.location.line) for d in diags] == [("read", 2)]


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_bytes(b"apis: []\n# caf\xe9\n")
    config, diags = load_config(path)
    assert config is None
    assert [d.code for d in diags] == ["config.invalid-utf8"]


def test_unreadable_file(tmp_path: Path) -> None:
    config, diags = load_config(tmp_path / "missing.yaml")
    assert config is None
    assert [d.code for d in diags] == ["config.unreadable"]


def test_every_setting_lands_in_the_model(tmp_path: Path) -> None:
    (tmp_path / "policy.json").write_text(json.dumps(_allow_all()))
    text = """\
gateway:
  region: eu-west-1
  account_id: "012345678901"
  max_policy_chars: null
  trusted_proxies: [10.0.0.0/8, "2001:db8::/32"]
  networks:
    - {cidr: 172.31.0.0/16, vpc_id: vpc-0a1b2c3d, vpce_id: vpce-0123456789abcdef0}
  unmatched_status: 404
  denial_messages: policy-type
  allow_semicolon_in_path: true
  max_request_body: 1048576
  max_header_bytes: 4096
  access_log: {destination: logs/access.log, format: "$context.requestId $context.status"}
  upstream: {connect_timeout: 1, timeout: 10, max_connections: 8, max_idle: 2, idle_timeout: 5}
apis:
  - id: a1b2c3d4e5
    name: pets
    endpoint_type: PRIVATE
    policy_file: policy.json
    policy_mode: report
    stages:
      prod: {variables: {backend: "127.0.0.1:9000", n: 5}, access_log_format: "$context.requestId"}
    routes:
      - path: "/pets/{id}"
        method: get
        integration: {type: HTTP_PROXY, uri: "http://${stageVariables.backend}/p/{id}", timeout: 2.5}
      - {path: /health, method: ANY, integration: {type: MOCK, status: 204, headers: {X-A: 1}, body: "ok"}}
"""
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    config, diags = load_config(path)
    assert diags == []
    assert config is not None
    s = config.settings
    assert (s.region, s.account_id, s.max_policy_chars) == ("eu-west-1", "012345678901", None)
    assert s.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32"))
    assert [(str(n.cidr), n.vpc_id, n.vpce_id) for n in s.networks] == [
        ("172.31.0.0/16", "vpc-0a1b2c3d", "vpce-0123456789abcdef0")
    ]
    assert (s.unmatched_status, s.denial_messages, s.allow_semicolon_in_path) == (404, "policy-type", True)
    assert (s.max_request_body, s.max_header_bytes) == (1048576, 4096)
    assert s.access_log.destination == str(tmp_path / "logs/access.log")  # relative to the config file
    assert s.access_log.format == "$context.requestId $context.status"
    assert s.upstream == UpstreamSettings(1, 10, 8, 2, 5)
    (a,) = config.apis
    assert (a.id, a.name, a.endpoint_type, a.policy_mode) == ("a1b2c3d4e5", "pets", "PRIVATE", "report")
    assert a.policy is not None
    assert a.stages["prod"].variables == {"backend": "127.0.0.1:9000", "n": "5"}
    assert a.stages["prod"].access_log_format == "$context.requestId"
    first, second = a.routes
    assert (first.path, first.method) == ("/pets/{id}", "GET")
    assert first.integration == HttpProxyIntegration("http://${stageVariables.backend}/p/{id}", 2.5)
    assert (second.method, second.integration) == ("ANY", MockIntegration(204, (("X-A", "1"),), b"ok"))
    assert set(config.watched) == {str(path), str(tmp_path / "policy.json")}


def test_defaults() -> None:
    config, diags = parse_config(api(), source="gateway.yaml")
    assert diags == []
    assert config is not None
    assert config.settings == GatewaySettings()
    (a,) = config.apis
    assert (a.name, a.endpoint_type, a.policy, a.policy_mode) == ("a1b2c3d4e5", "REGIONAL", None, "enforce")
    assert config.settings.access_log.destination == "-"


def test_access_log_off() -> None:
    for value in ("null", "false", "{destination: null}"):
        config, _ = parse_config(f"gateway:\n  access_log: {value}\napis: []\n")
        assert config is not None, value
        assert config.settings.access_log.destination is None


def test_quickstart_example_is_valid() -> None:
    config, diags = load_config(ROOT / "examples" / "quickstart.yaml")
    assert diags == []
    assert config is not None


# --- the CLI ----------------------------------------------------------------------------------------


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IAMGATE, "config", "validate", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_valid_file() -> None:
    proc = validate(ROOT / "examples" / "quickstart.yaml")
    assert proc.returncode == 0
    assert proc.stdout.strip().endswith("valid (0 error(s), 0 warning(s))")


def test_cli_reports_every_diagnostic_with_file_line_and_column(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == "trusted-proxy-cidr")
    bad = tmp_path / "bad.yaml"
    bad.write_text(case.text)
    good = tmp_path / "good.yaml"
    good.write_text("apis: []\n")
    proc = validate(bad, good)
    assert proc.returncode == 1
    for code, line, column in case.expected:
        assert f"{bad}:{line}:{column}: " in proc.stdout
        assert code in proc.stdout
    assert f"{bad}: invalid (3 error(s), 1 warning(s))" in proc.stdout
    assert f"{good}: valid (0 error(s), 1 warning(s))" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_cli_warnings_alone_exit_0(tmp_path: Path) -> None:
    path = tmp_path / "warn.yaml"
    path.write_text("apis: []\n")
    assert validate(path).returncode == 0


def test_cli_unreadable_file_exits_2(tmp_path: Path) -> None:
    proc = validate(tmp_path / "missing.yaml")
    assert proc.returncode == 2
    assert "config.unreadable" in proc.stdout


def _allow_all() -> dict[str, object]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "*"}],
    }
