"""The seed's own steps against the real gateway, managed the AWS way: boto3 and the AWS CLI
build an API on the admin port, attach a resource policy with ``update-rest-api
--patch-operations``, deploy, and the gateway serves it: an allowed and a blocked source, a
policy change that takes effect only after a redeploy, an OpenAPI import carrying a policy; and
two gateways sharing one PostgreSQL store, each serving what was deployed through the other."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.config import Config

from tests.gateway.conftest import Backend, Gateway, metric_value, start_gateway, wait_for
from tests.management.conftest import ADMIN, aws_cli

ACCOUNT = "123456789012"
REGION = "us-east-1"
BLOCKED = "203.0.113.7"  # a source address the policy denies (sent through a trusted proxy)


def gateway_yaml(store: str) -> dict[str, Any]:
    return {
        "gateway": {"region": REGION, "account_id": ACCOUNT, "trusted_proxies": ["127.0.0.0/8"]},
        "store": store,
        "identities": {
            "users": [
                {
                    "arn": ADMIN.arn,
                    "policies": [
                        {
                            "Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Action": "apigateway:*", "Resource": "*"}],
                        }
                    ],
                }
            ],
            "access_keys": [{"id": ADMIN.access_key, "secret": ADMIN.secret, "owner": ADMIN.arn}],
        },
    }


def client(gw: Gateway) -> Any:
    return boto3.client(
        "apigateway",
        endpoint_url=f"http://127.0.0.1:{gw.admin_port}",
        region_name=REGION,
        aws_access_key_id=ADMIN.access_key,
        aws_secret_access_key=ADMIN.secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def aws(gw: Gateway, *args: str) -> Any:
    done = aws_cli(f"http://127.0.0.1:{gw.admin_port}", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def policy(cidr: str) -> dict[str, Any]:
    """The seed's policy: anyone may invoke, from ``cidr`` only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/*",
            },
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/*",
                "Condition": {"NotIpAddress": {"aws:SourceIp": cidr}},
            },
        ],
    }


def invoke(gw: Gateway, api_id: str, path: str, source: str | None = None) -> tuple[int, bytes]:
    headers = {"x-apigw-api-id": api_id}
    if source is not None:
        headers["x-forwarded-for"] = source
    status, _, body = gw.request("GET", path, headers=headers)
    return status, body


def build_api(gw: Gateway, backend: Backend) -> str:
    """create-rest-api, a /pets resource with GET -> HTTP_PROXY to the backend (boto3)."""
    c = client(gw)
    api_id = c.create_rest_api(name="pets", endpointConfiguration={"types": ["REGIONAL"]})["id"]
    root = next(r["id"] for r in c.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    pets = c.create_resource(restApiId=api_id, parentId=root, pathPart="pets")["id"]
    c.put_method(restApiId=api_id, resourceId=pets, httpMethod="GET", authorizationType="NONE")
    c.put_integration(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="GET",
        type="HTTP_PROXY",
        integrationHttpMethod="GET",
        uri=f"{backend.url}/pets",
    )
    return api_id


@pytest.fixture
def sqlite_gateway(tmp_path: Path) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path, gateway_yaml("sqlite:///store.db"))
    yield gw
    gw.stop()


def test_the_seed_walkthrough_with_boto3_and_the_aws_cli(sqlite_gateway: Gateway, backend: Backend) -> None:
    gw = sqlite_gateway
    api_id = build_api(gw, backend)
    # attach the policy with the AWS CLI, exactly as the seed does
    aws(
        gw,
        "update-rest-api",
        "--rest-api-id",
        api_id,
        "--patch-operations",
        f"op=replace,path=/policy,value='{json.dumps(policy('127.0.0.1/32'))}'",  # shorthand, quoted
    )
    stored = json.loads(client(gw).get_rest_api(restApiId=api_id)["policy"].replace('\\"', '"'))
    assert stored["Statement"][0]["Resource"].startswith(f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/")
    # nothing is served before a deployment
    assert invoke(gw, api_id, "/prod/pets")[0] == 403
    aws(gw, "create-deployment", "--rest-api-id", api_id, "--stage-name", "prod")
    wait_for(lambda: invoke(gw, api_id, "/prod/pets")[0] == 200, "the deployment")
    hits = len(backend.requests)
    # an allowed source reaches the backend; a blocked one gets AWS's explicit-deny 403
    assert invoke(gw, api_id, "/prod/pets", "127.0.0.1")[0] == 200
    status, body = invoke(gw, api_id, "/prod/pets", BLOCKED)
    assert status == 403
    assert json.loads(body)["Message"] == (
        "User: anonymous is not authorized to perform: execute-api:Invoke on resource: "
        f"arn:aws:execute-api:{REGION}:********9012:{api_id}/prod/GET/pets with an explicit deny"
    )
    assert len(backend.requests) == hits + 1  # the denied request never reached it

    # change the policy: nothing changes until the API is redeployed
    reloads = metric_value(gw, "iamgate_config_reloads_total")
    client(gw).update_rest_api(
        restApiId=api_id,
        patchOperations=[{"op": "replace", "path": "/policy", "value": json.dumps(policy(f"{BLOCKED}/32"))}],
    )
    wait_for(
        lambda: metric_value(gw, "iamgate_config_reloads_total") > reloads, "the store's change to be read"
    )
    assert invoke(gw, api_id, "/prod/pets", BLOCKED)[0] == 403
    assert invoke(gw, api_id, "/prod/pets", "127.0.0.1")[0] == 200
    client(gw).create_deployment(restApiId=api_id, stageName="prod", description="new policy")
    wait_for(lambda: invoke(gw, api_id, "/prod/pets", BLOCKED)[0] == 200, "the redeployed policy")
    assert invoke(gw, api_id, "/prod/pets", "127.0.0.1")[0] == 403

    # an invalid policy is refused on save, with where it is wrong
    bad = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke"}]}
    with pytest.raises(client(gw).exceptions.BadRequestException) as caught:
        client(gw).update_rest_api(
            restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": json.dumps(bad)}]
        )
    assert "/Statement/0" in str(caught.value)


def test_an_openapi_import_carrying_a_policy_is_served(
    sqlite_gateway: Gateway, backend: Backend, tmp_path: Path
) -> None:
    gw = sqlite_gateway
    document = {
        "openapi": "3.0.1",
        "info": {"title": "imported", "version": "1"},
        "paths": {
            "/items/{id}": {
                "get": {
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "x-amazon-apigateway-integration": {
                        "type": "http_proxy",
                        "httpMethod": "GET",
                        "uri": f"{backend.url}/items/{{id}}",
                        "requestParameters": {"integration.request.path.id": "method.request.path.id"},
                    },
                }
            }
        },
        "x-amazon-apigateway-policy": policy("127.0.0.1/32"),
    }
    path = tmp_path / "api.json"
    path.write_text(json.dumps(document))
    api_id = aws(gw, "import-rest-api", "--body", f"fileb://{path}")["id"]
    aws(gw, "create-deployment", "--rest-api-id", api_id, "--stage-name", "v1")
    wait_for(lambda: invoke(gw, api_id, "/v1/items/42")[0] == 200, "the imported API")
    assert backend.requests[-1].target == "/items/42"
    assert invoke(gw, api_id, "/v1/items/42", BLOCKED)[0] == 403


# --- a fleet: two gateways, one PostgreSQL store ------------------------------------------------


@pytest.fixture
def postgres_url() -> Iterator[str]:
    base = "postgresql://postgres@127.0.0.1:5432/test"
    schema = f"iamgate_fleet_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(base, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432: {exc}")
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def test_two_gateways_share_one_postgresql_store(postgres_url: str, backend: Backend, tmp_path: Path) -> None:
    gateways: list[Gateway] = []
    try:
        for name, workers in (("a", 1), ("b", 2)):
            where = tmp_path / name
            where.mkdir()
            gateways.append(start_gateway(where, gateway_yaml(postgres_url), workers=workers))
        a, b = gateways
        api_id = build_api(a, backend)  # through gateway a's management API
        client(a).update_rest_api(
            restApiId=api_id,
            patchOperations=[
                {"op": "replace", "path": "/policy", "value": json.dumps(policy("127.0.0.1/32"))}
            ],
        )
        made = time.monotonic()
        client(a).create_deployment(restApiId=api_id, stageName="prod")
        wait_for(
            lambda: invoke(a, api_id, "/prod/pets")[0] == 200 and invoke(b, api_id, "/prod/pets")[0] == 200,
            "both gateways serving the deployment",
            timeout=10,
        )
        assert time.monotonic() - made < 2.0  # the issue asks for 1 s: notification, not polling
        # and the other way round: a stage deployed through b is served by a
        client(b).create_deployment(restApiId=api_id, stageName="beta")
        wait_for(lambda: invoke(a, api_id, "/beta/pets")[0] == 200, "gateway a serving b's deployment")
        assert invoke(b, api_id, "/beta/pets", BLOCKED)[0] == 403
        assert {s["stageName"] for s in client(a).get_stages(restApiId=api_id)["item"]} == {"prod", "beta"}
    finally:
        for gw in gateways:
            gw.stop()
