"""``iamgate export --redact`` (issue 14, item 13e): no secret of the store is in the output; the
output still validates once its API key variables are set and the redacted values put back, and
applies to the same store contents; until then ``config validate`` and ``apply`` refuse it, each
redacted place located, and nothing is written. The real CLI on real SQLite stores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from iamgate.cli.redact import REDACTED, redact
from iamgate.config.load import parse_config

IAMGATE = str(Path(sys.executable).parent / "iamgate")

SECRETS = {
    "key-mobile": "mobileKEYvalue0123456789abcdef",
    "key-partner": "partnerKEYvalue0123456789abcde",
    "uri-password": "UriPassw0rd",
    "bearer": "Bearer tok-SECRET-1",
    "backend-token": "tok-SECRET-2",
    "authorizer-password": "AuthPassw0rd",
    "jwks-token": "jwksUSERINFOtoken",
}

CONFIG = f"""
gateway: {{region: eu-west-1, account_id: "111122223333"}}
api_keys:
  - {{id: k-mobile, name: mobile app, value: {SECRETS["key-mobile"]}}}
  - {{id: K.Mobile, value: {SECRETS["key-partner"]}, enabled: false}}
usage_plans:
  - id: basic
    api_stages: [{{api: a1b2c3d4e5, stage: prod}}]
    throttle: {{rate: 10, burst: 20}}
    keys: [k-mobile]
apis:
  - id: a1b2c3d4e5
    name: pets
    stages:
      prod: {{variables: {{backend: "127.0.0.1:9000"}}}}
    authorizers:
      - {{name: tokens, type: TOKEN, url: "http://authuser:{SECRETS["authorizer-password"]}@127.0.0.1:9001/"}}
      - name: oidc
        type: JWT
        issuer: "https://idp.example.com"
        audiences: [aud1]
        jwks_url: "https://{SECRETS["jwks-token"]}@idp.example.com/jwks"
    routes:
      - path: /pets
        method: GET
        authorization: CUSTOM
        authorizer: tokens
        api_key_required: true
        integration:
          type: HTTP_PROXY
          uri: "http://svc:{SECRETS["uri-password"]}@${{stageVariables.backend}}/pets"
          request_parameters:
            integration.request.header.Authorization: "'{SECRETS["bearer"]}'"
            integration.request.header.X-Backend-Token: "'{SECRETS["backend-token"]}'"
            integration.request.header.X-Env: "'production'"
            integration.request.header.X-User: context.authorizer.principalId
      - {{path: /health, method: GET, integration: {{type: MOCK, body: ok}}}}
"""

# in the order export writes them (authorizers, routes and keys sorted)
REDACTED_PLACES = [
    "/apis/0/authorizers/0/jwks_url",
    "/apis/0/authorizers/1/url",
    "/apis/0/routes/1/integration/uri",
    "/apis/0/routes/1/integration/request_parameters/integration.request.header.Authorization",
    "/apis/0/routes/1/integration/request_parameters/integration.request.header.X-Backend-Token",
]
VARIABLES = {"IAMGATE_API_KEY_K_MOBILE": "key-partner", "IAMGATE_API_KEY_K_MOBILE_2": "key-mobile"}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("IAMGATE_API_KEY_")}
    return subprocess.run(
        [IAMGATE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**environment, **(env or {})},
    )


@pytest.fixture
def exported(tmp_path: Path) -> tuple[str, str]:
    """(plain export, redacted export) of a store the configuration was applied to."""
    source = tmp_path / "gateway.yaml"
    source.write_text(CONFIG, encoding="utf-8")
    store = f"sqlite:///{tmp_path / 'first.db'}"
    done = run("apply", str(source), "--store", store)
    assert done.returncode == 0, done.stderr
    plain = run("export", "--store", store)
    assert plain.returncode == 0, plain.stderr
    redacted = run("export", "--store", store, "--redact")
    assert redacted.returncode == 0, redacted.stderr
    return plain.stdout, redacted.stdout


def test_no_secret_is_in_the_redacted_output(exported: tuple[str, str]) -> None:
    plain, redacted = exported
    for name, secret in SECRETS.items():
        assert secret in plain, name  # the control: the plain export has every one
        assert secret not in redacted, name
    # what is not secret stays as it was
    for kept in ("'production'", "context.authorizer.principalId", "authuser", "svc", "mobile app"):
        assert kept in redacted
    assert redacted.count(REDACTED) == len(REDACTED_PLACES) + 1  # and once in the header


def test_the_header_says_what_to_set_and_put_back(exported: tuple[str, str]) -> None:
    _, redacted = exported
    header = [line for line in redacted.splitlines() if line.startswith("#")]
    for variable in VARIABLES:
        assert any(variable in line for line in header), variable
    for place in REDACTED_PLACES:
        assert f"#   {place}" in header


def test_as_it_is_the_redacted_file_is_refused_at_every_redacted_place(
    tmp_path: Path, exported: tuple[str, str]
) -> None:
    _, redacted = exported
    config, diags = parse_config(redacted, source="<redacted>")
    assert config is None
    codes = sorted((d.code, d.location.pointer) for d in diags if d.is_error)
    expected = [("config.missing-secret", f"/api_keys/{i}/value_env") for i in (0, 1)]
    expected += [("config.redacted-secret", p) for p in REDACTED_PLACES]
    # a key without its value is left out, so the plan that names it is reported too
    expected.append(("config.invalid-value", "/usage_plans/0/keys/0"))
    assert codes == sorted(expected)
    assert all(d.location.line is not None for d in diags)
    path = tmp_path / "redacted.yaml"
    path.write_text(redacted, encoding="utf-8")
    done = run("config", "validate", str(path))
    assert done.returncode == 1
    assert "config.redacted-secret" in done.stdout
    # apply refuses it as it is: no placeholder is ever stored as a secret, nothing is written
    db = tmp_path / "second.db"
    done = run("apply", str(path), "--store", f"sqlite:///{db}", env=dict.fromkeys(VARIABLES, "x" * 30))
    assert done.returncode == 1, done.stderr
    assert "nothing applied" in done.stderr
    assert not db.exists()


def test_with_the_secrets_given_back_it_validates_and_applies_to_the_same_store(
    tmp_path: Path, exported: tuple[str, str]
) -> None:
    plain, redacted = exported
    originals = [
        SECRETS["jwks-token"],
        SECRETS["authorizer-password"],
        SECRETS["uri-password"],
        SECRETS["bearer"],
        SECRETS["backend-token"],
    ]
    body = "".join(line for line in redacted.splitlines(keepends=True) if not line.startswith("#"))
    parts = body.split(REDACTED)
    restored = parts[0] + "".join(o + p for o, p in zip(originals, parts[1:], strict=True))
    path = tmp_path / "restored.yaml"
    path.write_text(restored, encoding="utf-8")
    env = {variable: SECRETS[name] for variable, name in VARIABLES.items()}
    done = run("config", "validate", str(path), env=env)
    assert done.returncode == 0, done.stdout
    store = f"sqlite:///{tmp_path / 'second.db'}"
    done = run("apply", str(path), "--store", store, env=env)
    assert done.returncode == 0, done.stderr
    again = run("export", "--store", store)
    assert again.returncode == 0, again.stderr
    assert again.stdout == plain


def test_a_redacted_file_can_be_shared(tmp_path: Path) -> None:
    """-o writes a plain export readable by its owner only; a redacted one as any new file."""
    source = tmp_path / "gateway.yaml"
    source.write_text(CONFIG, encoding="utf-8")
    store = f"sqlite:///{tmp_path / 's.db'}"
    assert run("apply", str(source), "--store", store).returncode == 0
    plain, shared = tmp_path / "plain.yaml", tmp_path / "shared.yaml"
    assert run("export", "--store", store, "-o", str(plain)).returncode == 0
    assert run("export", "--store", store, "--redact", "-o", str(shared)).returncode == 0
    assert plain.stat().st_mode & 0o777 == 0o600
    assert shared.stat().st_mode & 0o044 == 0o044 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_variable_names_do_not_collide() -> None:
    document = {
        "apis": [],
        "api_keys": [
            {"id": "a-b", "value": "v" * 20},
            {"id": "A.B", "value": "w" * 20},
            {"id": "a_b", "value": "x" * 20, "enabled": False},
            {"id": "other"},
        ],
    }
    out, redacted = redact(document)
    assert [k.get("value_env") for k in out["api_keys"]] == [
        "IAMGATE_API_KEY_A_B",
        "IAMGATE_API_KEY_A_B_2",
        "IAMGATE_API_KEY_A_B_3",
        None,
    ]
    assert list(out["api_keys"][2]) == ["id", "value_env", "enabled"]  # value_env where value was
    assert document["api_keys"][0]["value"] == "v" * 20  # the input is left alone
    assert redacted.key_variables == {
        "a-b": "IAMGATE_API_KEY_A_B",
        "A.B": "IAMGATE_API_KEY_A_B_2",
        "a_b": "IAMGATE_API_KEY_A_B_3",
    }


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://u:p@h/x", f"http://u:{REDACTED}@h/x"),
        ("http://token@h:8080/x", f"http://{REDACTED}@h:8080/x"),
        ("http://h/x@y", None),  # an @ in the path is no userinfo
        ("http://h/x", None),
        ("http://u:p:q@${stageVariables.host}/x", f"http://u:{REDACTED}@${{stageVariables.host}}/x"),
    ],
)
def test_passwords_in_urls(url: str, expected: str | None) -> None:
    document = {"apis": [{"routes": [{"integration": {"type": "HTTP_PROXY", "uri": url}}]}]}
    out, redacted = redact(document)
    assert out["apis"][0]["routes"][0]["integration"]["uri"] == (expected or url)
    assert redacted.places == ([] if expected is None else ["/apis/0/routes/0/integration/uri"])
