"""``iamgate apply`` and ``iamgate export`` (the real CLI, in a subprocess, on real SQLite stores):
export(apply(F)) parses to F's configuration, export is a fixed point after one round, and the
drafts apply writes are what the management API then serves (read with boto3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from iamgate.config.load import load_config, parse_config
from iamgate.config.model import GatewayConfig
from iamgate.management.convert import definition_to_draft, draft_to_definition
from iamgate.management.entries import api_definition
from iamgate.store import open_store

from .conftest import ACCOUNT, AdminHandle

IAMGATE = str(Path(sys.executable).parent / "iamgate")
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SECRETS = {
    "PETS_READER_SECRET": "reader-secret",
    "PETS_READER_TOKEN": "reader-token",
    "PETS_INTERN_SECRET": "intern-secret",
    "PETS_INTERN_TOKEN": "intern-token",
}

TWO_DEPLOYMENTS = f"""
gateway: {{region: eu-west-1, account_id: "{ACCOUNT}"}}
api_keys:
  - {{id: k-mobile, name: mobile app, value: abcdefghijklmnopqrstuvwxyz0123}}
  - {{id: k-old, value: zyxwvutsrqponmlkjihgfedcba9876, enabled: false}}
usage_plans:
  - id: basic
    api_stages: [{{api: a1b2c3d4e5, stage: prod, throttle: {{"/pets/GET": {{rate: 1, burst: 2}}}}}}]
    throttle: {{rate: 10, burst: 20}}
    quota: {{limit: 1000, period: WEEK, offset: 1}}
    keys: [k-mobile]
apis:
  - id: a1b2c3d4e5
    deployment: d1
    name: pets
    policy:
      Version: "2012-10-17"
      Statement:
        - {{Effect: Allow, Principal: "*", Action: execute-api:Invoke, Resource: execute-api:/*}}
    stages:
      prod:
        variables: {{backend: "127.0.0.1:9000"}}
        throttling: {{rate: 50, burst: 100}}
        method_throttling: {{"/pets/GET": {{rate: 5.5, burst: 10}}}}
    authorizers:
      - {{name: tokens, type: TOKEN, url: "http://127.0.0.1:9001/", result_ttl: 0, timeout: 2}}
      - name: pool
        type: COGNITO_USER_POOLS
        issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc123"
        audiences: [client1]
      - name: oidc
        type: JWT
        issuer: "https://idp.example.com"
        audiences: [aud1]
        algorithms: [ES256]
        leeway: 30
    routes:
      - path: /pets
        method: GET
        authorization: CUSTOM
        authorizer: tokens
        api_key_required: true
        rate_limit: {{by: ip, rate: 3, burst: 6}}
        integration:
          type: HTTP_PROXY
          uri: "http://${{stageVariables.backend}}/pets"
          timeout: 2.5
          request_parameters: {{integration.request.header.X-User: context.authorizer.principalId}}
      - path: "/pets/{{id}}"
        method: POST
        authorization: COGNITO_USER_POOLS
        authorizer: pool
        authorization_scopes: [pets/write]
        integration: {{type: MOCK, status: 201, headers: {{X-Mock: "yes"}}, body: created}}
      - path: "/pets/{{id}}"
        method: DELETE
        authorization: COGNITO_USER_POOLS
        authorizer: oidc
        authorization_scopes: [pets/delete]
        integration: {{type: MOCK, status: 204}}
  - id: a1b2c3d4e5
    deployment: d2
    name: pets
    policy_mode: report
    stages:
      beta: {{access_log_format: "$context.requestId $context.status"}}
    routes:
      - {{path: "/{{proxy+}}", method: ANY, integration: {{type: HTTP_PROXY, uri: "http://127.0.0.1:9000/{{proxy}}"}}}}
  - id: zz9zz9zz9z
    endpoint_type: PRIVATE
    disable_execute_api_endpoint: true
    policy: '{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": "*",
      "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}}]}}'
    stages: {{v1: {{}}}}
    routes:
      - {{path: /, method: GET, integration: {{type: MOCK}}}}
"""


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IAMGATE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def store_parts(config: GatewayConfig) -> list[Any]:
    """What a store holds of a configuration, comparable: APIs (policies as JSON), keys, plans."""
    apis = [
        (
            api.id,
            api.deployment,
            api.name,
            api.endpoint_type,
            json.loads(api.policy_text) if api.policy_text else None,
            api.policy_mode,
            api.stages,
            sorted(api.routes, key=lambda r: (r.path, r.method)),
            api.authorizers,
            api.api_key_source,
            api.disable_execute_api_endpoint,
            api.gateway_responses,
            api.models,
            api.request_validators,
        )
        for api in config.apis
    ]
    return [sorted(apis, key=lambda a: (a[0], a[1] or "")), config.auth.api_keys, config.usage_plans]


def round_trip(tmp_path: Path, source: Path, env: dict[str, str] | None = None) -> tuple[str, str]:
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    done = run("apply", str(source), "--store", f"sqlite:///{first}", env=env)
    assert done.returncode == 0, done.stderr
    assert "applied" in done.stdout
    exported = tmp_path / "exported.yaml"
    done = run("export", "--store", f"sqlite:///{first}", "-o", str(exported))
    assert done.returncode == 0, done.stderr
    assert exported.stat().st_mode & 0o777 == 0o600  # it holds the API keys' values
    done = run("apply", str(exported), "--store", f"sqlite:///{second}")
    assert done.returncode == 0, done.stderr
    again = run("export", "--store", f"sqlite:///{second}")
    assert again.returncode == 0, again.stderr
    return exported.read_text(), again.stdout


@pytest.mark.parametrize("name", ["quickstart.yaml", "auth.yaml"])
def test_examples_round_trip(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in EXAMPLE_SECRETS.items():
        monkeypatch.setenv(key, value)
    source = ROOT / "examples" / name
    original, diags = load_config(source)
    assert original is not None, [d.render() for d in diags]
    once, twice = round_trip(tmp_path, source, EXAMPLE_SECRETS)
    assert once == twice  # a fixed point after one round
    exported, diags = parse_config(once, source="exported")
    assert exported is not None, [d.render() for d in diags]
    assert store_parts(exported) == store_parts(original)


def test_two_deployments_keys_and_plans_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "two.yaml"
    source.write_text(TWO_DEPLOYMENTS)
    original, diags = load_config(source)
    assert original is not None, [d.render() for d in diags]
    once, twice = round_trip(tmp_path, source)
    assert once == twice
    exported, diags = parse_config(once, source="exported")
    assert exported is not None, [d.render() for d in diags]
    assert store_parts(exported) == store_parts(original)
    assert "deployment: d1" in once
    assert "deployment: d2" in once
    assert once.count("- id: zz9zz9zz9z\n  name:") == 1  # one deployment: no deployment line
    assert once.count("disable_execute_api_endpoint: true") == 1  # kept by apply, not only by deployments
    assert "value: abcdefghijklmnopqrstuvwxyz0123" in once


def test_apply_is_idempotent_and_prune_removes_the_rest(tmp_path: Path, admin_server: AdminHandle) -> None:
    source = tmp_path / "two.yaml"
    source.write_text(TWO_DEPLOYMENTS)
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    apigw = admin_server.boto3()
    # something made through the API, in another store, plays no part; here, the same store
    admin_server.store.close()
    admin_server.store = open_store(store_url)
    admin_server.app.store = admin_server.store
    extra = apigw.create_rest_api(name="made-by-hand")["id"]
    assert run("apply", str(source), "--store", store_url).returncode == 0
    with admin_server.store.transaction() as tx:
        first = {(a, i): d for a, i, d in tx.list("deployment")}
        drafts = {i: d for _, i, d in tx.list("restapi")}
    done = run("apply", str(source), "--store", store_url)
    assert done.returncode == 0
    assert "(0 new)" in done.stdout
    with admin_server.store.transaction() as tx:
        assert {(a, i): d for a, i, d in tx.list("deployment")} == first
        again = {i: d for _, i, d in tx.list("restapi")}
    # resource and authorizer ids are kept across applies
    assert again["a1b2c3d4e5"]["resources"].keys() == drafts["a1b2c3d4e5"]["resources"].keys()
    assert again["a1b2c3d4e5"]["authorizers"].keys() == drafts["a1b2c3d4e5"]["authorizers"].keys()
    # the management API serves what apply wrote (the draft is the API's last entry)
    resources = apigw.get_resources(restApiId="a1b2c3d4e5", embed=["methods"])["items"]
    assert [r["path"] for r in resources] == ["/", "/{proxy+}"]
    assert (
        resources[1]["resourceMethods"]["ANY"]["methodIntegration"]["uri"] == "http://127.0.0.1:9000/{proxy}"
    )
    private = apigw.get_rest_api(restApiId="zz9zz9zz9z")
    assert private["endpointConfiguration"]["types"] == ["PRIVATE"]
    assert (
        json.loads(private["policy"])["Statement"][0]["Resource"]
        == f"arn:aws:execute-api:eu-west-1:{ACCOUNT}:zz9zz9zz9z/*"
    )
    assert {s["stageName"] for s in apigw.get_stages(restApiId="a1b2c3d4e5")["item"]} == {"prod", "beta"}
    assert apigw.get_rest_api(restApiId=extra)["name"] == "made-by-hand"
    done = run("apply", str(source), "--store", store_url, "--prune")
    assert done.returncode == 0
    assert "pruned" in done.stdout
    assert {a["id"] for a in apigw.get_rest_apis()["items"]} == {"a1b2c3d4e5", "zz9zz9zz9z"}


def test_apply_refuses_invalid_files_and_changed_deployments(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apis:\n  - id: a1\n    stages: {prod: {}}\n    routes:\n"
        "      - {path: /x, method: GETT, integration: {type: MOCK}}\n"
    )
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    done = run("apply", str(bad), "--store", store_url)
    assert done.returncode == 1
    assert f"{bad}:5:28: error config.invalid-value: method 'GETT' is not valid" in done.stderr
    assert "nothing applied" in done.stderr
    store = open_store(store_url)
    with store.transaction() as tx:
        assert tx.list("restapi") == []
        assert tx.list("deployment") == []
    store.close()
    source = tmp_path / "two.yaml"
    source.write_text(TWO_DEPLOYMENTS)
    assert run("apply", str(source), "--store", store_url).returncode == 0
    source.write_text(TWO_DEPLOYMENTS.replace("timeout: 2.5", "timeout: 3"))
    done = run("apply", str(source), "--store", store_url)
    assert done.returncode == 1
    assert "deployment d1 already exists with a different definition" in done.stderr
    done = run("apply", str(source))
    assert done.returncode == 2
    assert "no store" in done.stderr
    done = run("export", "--store", "mysql://nope")
    assert done.returncode == 2
    assert "not a store URL" in done.stderr


def test_definitions_survive_the_draft(tmp_path: Path) -> None:
    """definition -> draft -> definition is the identity for every API entry (the converters are
    each other's inverse on what configuration files can say, shorthand aside)."""
    source = tmp_path / "two.yaml"
    source.write_text(TWO_DEPLOYMENTS)
    config, _ = load_config(source)
    assert config is not None
    for api in config.apis:
        definition = api_definition(api)
        draft = definition_to_draft(definition, api.id, settings=config.settings)
        back = draft_to_definition(draft, config.settings)
        if "policy" in definition:  # stored expanded, as AWS returns it
            assert back.pop("policy")["Statement"][0]["Resource"].endswith(f":{api.id}/*")
            definition.pop("policy")
        assert back == definition


ISSUE_17 = """
apis:
  - id: v1v2v3v4v5
    stages: {prod: {}}
    gateway_responses:
      MISSING_AUTHENTICATION_TOKEN:
        status_code: 404
        response_templates: {application/json: '{"message":"No such resource"}'}
      BAD_REQUEST_BODY:
        response_templates: {application/json: '{"why":"$context.error.validationErrorString"}'}
    models:
      Owner:
        schema: {type: object, required: [id], properties: {id: {type: integer}}}
      Pet:
        description: a pet
        schema:
          type: object
          required: [name]
          properties:
            name: {type: string}
            owner: {$ref: "https://apigateway.amazonaws.com/restapis/v1v2v3v4v5/models/Owner"}
    request_validators:
      all: {validate_request_body: true, validate_request_parameters: true}
      params: {validate_request_parameters: true}
    cors: {allow_origin: "https://app.example.com"}
    routes:
      - path: /pets
        method: POST
        integration: {type: HTTP_PROXY, uri: "http://127.0.0.1:9000/pets"}
        request_validator: all
        request_models: {application/json: Pet}
        request_parameters: {method.request.querystring.owner: true, method.request.header.X-Trace: false}
      - path: /pets
        method: GET
        integration: {type: MOCK, body: "[]"}
        request_validator: params
        request_parameters: {method.request.multivaluequerystring.tag: true}
"""


def test_gateway_responses_models_validators_and_cors_survive_apply_and_export(tmp_path: Path) -> None:
    """What issue 17 added to an API is stored by apply and written back by export: applying a
    file used to drop it, and the store then served the API without its validation."""
    source = tmp_path / "issue17.yaml"
    source.write_text(ISSUE_17)
    original, diags = load_config(source)
    assert original is not None, [d.render() for d in diags]
    once, twice = round_trip(tmp_path, source)
    assert once == twice
    exported, diags = parse_config(once, source="exported")
    assert exported is not None, [d.render() for d in diags]
    assert store_parts(exported) == store_parts(original)
    api = exported.apis[0]
    assert set(api.gateway_responses) == {
        "MISSING_AUTHENTICATION_TOKEN",
        "BAD_REQUEST_BODY",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    }
    assert set(api.models) == {"Owner", "Pet"}
    assert "OPTIONS" in {r.method for r in api.routes if r.path == "/pets"}
    for definition in (api_definition(a) for a in original.apis):
        draft = definition_to_draft(definition, definition["id"], settings=original.settings)
        assert draft_to_definition(draft, original.settings) == definition
