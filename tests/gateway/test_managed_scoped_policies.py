"""Stage and method policies through the management API (iamgate's extension: the patch paths
``/x-iamgate-policy`` and ``/x-iamgate-policyMode`` of UpdateMethod and UpdateStage, the OpenAPI
extension ``x-iamgate-policy`` on an operation), served after a deployment, and carried by
``iamgate apply`` / ``iamgate export``. Real ``iamgate serve`` with a SQLite store, boto3 and the
AWS CLI as clients."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError

from iamgate.config.load import parse_config
from tests.gateway.conftest import Backend, Gateway, start_gateway, wait_for
from tests.gateway.test_managed import ACCOUNT, REGION, build_api, client, gateway_yaml, invoke
from tests.management.conftest import ADMIN
from tests.policies import document as _policy
from tests.policies import statement as _st

IAMGATE = str(Path(sys.executable).parent / "iamgate")


def ONLY_FROM(cidr: str) -> dict[str, Any]:
    return _policy(_st("Allow", condition={"IpAddress": {"aws:SourceIp": cidr}}, sid="OnlyFrom"))


def _method(gw: Gateway, api_id: str, resource_id: str) -> dict[str, Any]:
    """GetMethod as JSON, signed as boto3 signs (boto3 and the AWS CLI drop the members their
    model does not have, iamgate's x-iamgate-* among them)."""
    url = f"http://127.0.0.1:{gw.admin_port}/restapis/{api_id}/resources/{resource_id}/methods/GET"
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(BotoCredentials(ADMIN.access_key, ADMIN.secret), "apigateway", REGION).add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", gw.admin_port, timeout=10)
    try:
        conn.request("GET", url.split(str(gw.admin_port), 1)[1], headers=dict(request.headers.items()))
        response = conn.getresponse()
        assert response.status == 200
        found: dict[str, Any] = json.loads(response.read())
        return found
    finally:
        conn.close()


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    gateway = start_gateway(tmp_path, gateway_yaml("sqlite:///store.db"))
    yield gateway
    gateway.stop()


def _pets(c: Any, api_id: str) -> str:
    return next(r["id"] for r in c.get_resources(restApiId=api_id)["items"] if r["path"] == "/pets")


def test_a_method_policy_set_with_boto3_is_served_after_a_deployment(gw: Gateway, backend: Backend) -> None:
    c = client(gw)
    api_id = build_api(gw, backend)
    pets = _pets(c, api_id)
    c.update_rest_api(
        restApiId=api_id,
        patchOperations=[{"op": "replace", "path": "/policy", "value": json.dumps(_policy(_st("Allow")))}],
    )
    c.create_deployment(restApiId=api_id, stageName="prod")
    wait_for(lambda: invoke(gw, api_id, "/prod/pets", "192.0.2.10")[0] == 200, "the first deployment")
    # only from 10.0.0.0/8 on GET /pets: the route's own policy
    c.update_method(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="GET",
        patchOperations=[
            {"op": "replace", "path": "/x-iamgate-policy", "value": json.dumps(ONLY_FROM("10.0.0.0/8"))}
        ],
    )
    raw = _method(gw, api_id, pets)
    stored = json.loads(raw["x-iamgate-policy"])
    assert stored["Statement"][0]["Resource"] == f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*"
    assert invoke(gw, api_id, "/prod/pets", "192.0.2.10")[0] == 200  # a draft is never served
    c.create_deployment(restApiId=api_id, stageName="prod")
    wait_for(lambda: invoke(gw, api_id, "/prod/pets", "192.0.2.10")[0] == 403, "the route policy")
    assert invoke(gw, api_id, "/prod/pets", "10.1.2.3")[0] == 200
    # report-only: evaluated, never refusing
    c.update_method(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="GET",
        patchOperations=[{"op": "replace", "path": "/x-iamgate-policyMode", "value": "report"}],
    )
    c.create_deployment(restApiId=api_id, stageName="prod")
    wait_for(lambda: invoke(gw, api_id, "/prod/pets", "192.0.2.10")[0] == 200, "report mode")
    # removed
    c.update_method(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="GET",
        patchOperations=[{"op": "remove", "path": "/x-iamgate-policy"}],
    )
    raw = _method(gw, api_id, pets)
    assert "x-iamgate-policy" not in raw
    assert "x-iamgate-policyMode" not in raw


def test_a_stage_policy_is_served_at_once(gw: Gateway, backend: Backend) -> None:
    c = client(gw)
    api_id = build_api(gw, backend)
    c.create_deployment(restApiId=api_id, stageName="prod")
    wait_for(lambda: invoke(gw, api_id, "/prod/pets", "192.0.2.10")[0] == 200, "the deployment")
    c.update_stage(
        restApiId=api_id,
        stageName="prod",
        patchOperations=[
            {"op": "replace", "path": "/x-iamgate-policy", "value": json.dumps(ONLY_FROM("10.0.0.0/8"))}
        ],
    )
    wait_for(lambda: invoke(gw, api_id, "/prod/pets", "192.0.2.10")[0] == 403, "the stage policy")
    assert invoke(gw, api_id, "/prod/pets", "10.9.9.9")[0] == 200


@pytest.mark.parametrize(
    ("path", "value", "says"),
    [
        (
            "/x-iamgate-policy",
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Alow"}]}',
            "Invalid policy document",
        ),
        ("/x-iamgate-policy", "not json", "Invalid policy document"),
        ("/x-iamgate-policyMode", "audit", "enforce or report"),
        ("/x-iamgate-policyMode", "report", "needs a policy"),
    ],
    ids=["bad-effect", "not-json", "bad-mode", "mode-without-policy"],
)
def test_a_bad_policy_patch_is_refused_and_changes_nothing(
    gw: Gateway, backend: Backend, path: str, value: str, says: str
) -> None:
    c = client(gw)
    api_id = build_api(gw, backend)
    pets = _pets(c, api_id)
    before = c.get_method(restApiId=api_id, resourceId=pets, httpMethod="GET")
    with pytest.raises(ClientError) as refused:
        c.update_method(
            restApiId=api_id,
            resourceId=pets,
            httpMethod="GET",
            patchOperations=[{"op": "replace", "path": path, "value": value}],
        )
    assert refused.value.response["Error"]["Code"] == "BadRequestException"
    assert says in refused.value.response["Error"]["Message"]
    after = c.get_method(restApiId=api_id, resourceId=pets, httpMethod="GET")
    assert {k: v for k, v in after.items() if k != "ResponseMetadata"} == {
        k: v for k, v in before.items() if k != "ResponseMetadata"
    }


def test_openapi_x_iamgate_policy_is_imported_and_exported(
    gw: Gateway, backend: Backend, tmp_path: Path
) -> None:
    document = {
        "openapi": "3.0.1",
        "info": {"title": "scoped", "version": "1"},
        "paths": {
            "/pets": {
                "get": {
                    "responses": {"200": {"description": "ok"}},
                    "x-amazon-apigateway-integration": {
                        "type": "http_proxy",
                        "httpMethod": "GET",
                        "uri": f"{backend.url}/pets",
                    },
                    "x-iamgate-policy": ONLY_FROM("10.0.0.0/8"),
                    "x-iamgate-policy-mode": "report",
                }
            },
            "/open": {
                "get": {
                    "responses": {"200": {"description": "ok"}},
                    "x-amazon-apigateway-integration": {
                        "type": "http_proxy",
                        "httpMethod": "GET",
                        "uri": f"{backend.url}/open",
                    },
                }
            },
        },
    }
    c = client(gw)
    api_id = c.import_rest_api(body=json.dumps(document).encode())["id"]
    method = _method(gw, api_id, _pets(c, api_id))
    assert method["x-iamgate-policyMode"] == "report"
    assert json.loads(method["x-iamgate-policy"])["Statement"][0]["Sid"] == "OnlyFrom"
    c.create_deployment(restApiId=api_id, stageName="prod")
    exported = json.loads(
        c.get_export(restApiId=api_id, stageName="prod", exportType="oas30", accepts="application/json")[
            "body"
        ].read()
    )
    operation = exported["paths"]["/pets"]["get"]
    assert operation["x-iamgate-policy"] == ONLY_FROM("10.0.0.0/8")  # the shorthand written back
    assert operation["x-iamgate-policy-mode"] == "report"
    assert "x-iamgate-policy" not in exported["paths"]["/open"]["get"]
    # a bad one is refused at its place in the document
    document["paths"]["/pets"]["get"]["x-iamgate-policy"] = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Maybe"}],
    }
    with pytest.raises(ClientError) as refused:
        c.import_rest_api(body=json.dumps(document).encode())
    assert "/paths/~1pets/get/x-iamgate-policy" in refused.value.response["Error"]["Message"]


SCOPED_YAML = f"""
gateway: {{region: {REGION}, account_id: "{ACCOUNT}"}}
apis:
  - id: a1b2c3d4e5
    name: scoped
    stages:
      prod:
        policy:
          Version: "2012-10-17"
          Statement:
            - Sid: NoDelete
              Effect: Deny
              Principal: "*"
              Action: execute-api:Invoke
              Resource: execute-api:/prod/DELETE/*
            - {{Sid: Rest, Effect: Allow, Principal: "*", Action: execute-api:Invoke,
               Resource: execute-api:/*}}
    routes:
      - path: /pets
        method: GET
        integration: {{type: MOCK, body: ok}}
        policy_mode: report
        policy:
          Version: "2012-10-17"
          Statement:
            - Sid: Office
              Effect: Allow
              Principal: "*"
              Action: execute-api:Invoke
              Resource: execute-api:/*
              Condition: {{IpAddress: {{aws:SourceIp: 10.0.0.0/8}}}}
"""


def test_apply_and_export_carry_stage_and_route_policies(tmp_path: Path) -> None:
    source = tmp_path / "scoped.yaml"
    source.write_text(SCOPED_YAML)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    done = subprocess.run(
        [IAMGATE, "apply", str(source), "--store", store], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    exported = subprocess.run(
        [IAMGATE, "export", "--store", store], capture_output=True, text=True, check=False
    )
    assert exported.returncode == 0, exported.stderr
    config, diags = parse_config(exported.stdout, source="exported")
    assert config is not None, [d.render() for d in diags]
    api = config.apis[0]
    stage = api.stages["prod"].policy
    assert stage is not None
    assert [s["Sid"] for s in json.loads(stage.text)["Statement"]] == ["NoDelete", "Rest"]
    route = api.routes[0].policy
    assert route is not None
    assert route.mode == "report"
    assert route.label == "route:GET /pets"
    assert json.loads(route.text)["Statement"][0]["Condition"] == {
        "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}
    }
    again = subprocess.run([IAMGATE, "export", "--store", store], capture_output=True, text=True, check=False)
    assert again.stdout == exported.stdout
