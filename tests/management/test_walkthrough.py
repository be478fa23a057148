"""The walkthrough of docs/management.md with the real boto3 and AWS CLI, up to the deployment and stage,
and what the store then holds: the draft, an immutable deployment, the stage pointing at it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from iamgate.config.load import parse_config

from .conftest import ACCOUNT, REGION, AdminHandle

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"},
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/*",
            "Condition": {"NotIpAddress": {"aws:SourceIp": ["203.0.113.0/24"]}},
        },
    ],
}


def build_walkthrough_api(apigw: Any) -> tuple[str, str]:
    """The walkthrough up to (not including) the deployment: the API id and the proxy resource id."""
    api = apigw.create_rest_api(name="demo", endpointConfiguration={"types": ["REGIONAL"]})
    api_id = api["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    proxy = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="{proxy+}")["id"]
    apigw.put_method(
        restApiId=api_id,
        resourceId=proxy,
        httpMethod="ANY",
        authorizationType="AWS_IAM",
        requestParameters={"method.request.path.proxy": True},
    )
    apigw.put_integration(
        restApiId=api_id,
        resourceId=proxy,
        httpMethod="ANY",
        type="HTTP_PROXY",
        integrationHttpMethod="ANY",
        uri="https://httpbin.org/{proxy}",
        requestParameters={"integration.request.path.proxy": "method.request.path.proxy"},
    )
    apigw.update_rest_api(
        restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": json.dumps(POLICY)}]
    )
    return api_id, proxy


def test_boto3_walkthrough_to_a_deployed_stage(admin_server: AdminHandle) -> None:
    apigw = admin_server.boto3()
    api_id, proxy = build_walkthrough_api(apigw)

    api = apigw.get_rest_api(restApiId=api_id)
    assert api["name"] == "demo"
    assert api["endpointConfiguration"]["types"] == ["REGIONAL"]
    # stored as AWS returns it: shorthand expanded, slashes escaped, still the same JSON
    arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}"
    assert f"{arn}\\/*" in api["policy"]
    stored = json.loads(api["policy"])
    assert stored["Statement"][0]["Resource"] == f"{arn}/*"
    assert stored["Statement"][1]["Condition"] == POLICY["Statement"][1]["Condition"]

    method = apigw.get_method(restApiId=api_id, resourceId=proxy, httpMethod="ANY")
    assert method["authorizationType"] == "AWS_IAM"
    assert method["methodIntegration"]["uri"] == "https://httpbin.org/{proxy}"
    assert method["methodIntegration"]["timeoutInMillis"] == 29000

    deployment = apigw.create_deployment(restApiId=api_id, stageName="prod")
    assert deployment["ResponseMetadata"]["HTTPStatusCode"] == 201
    stage = apigw.get_stage(restApiId=api_id, stageName="prod")
    assert stage["deploymentId"] == deployment["id"]
    assert [d["id"] for d in apigw.get_deployments(restApiId=api_id)["items"]] == [deployment["id"]]

    with admin_server.store.transaction() as tx:
        stored_deployment = tx.get("deployment", api_id, deployment["id"])
        stage_doc = tx.get("stage", api_id, "prod")
    assert stored_deployment is not None
    assert stage_doc is not None
    definition = stored_deployment["definition"]
    assert definition["routes"] == [
        {
            "path": "/{proxy+}",
            "method": "ANY",
            "authorization": "AWS_IAM",
            "integration": {"type": "HTTP_PROXY", "uri": "https://httpbin.org/{proxy}"},
        }
    ]
    assert definition["policy"]["Statement"][0]["Resource"] == f"{arn}/*"
    assert stage_doc["deploymentId"] == deployment["id"]
    assert stage_doc["config"] == {}
    # what the gateway would serve from it passes the gateway's own loader
    served = {**definition, "deployment": deployment["id"], "stages": {"prod": stage_doc["config"]}}
    config, diags = parse_config(json.dumps({"gateway": {"account_id": ACCOUNT}, "apis": [served]}))
    assert config is not None, [d.render() for d in diags]
    assert config.apis[0].routes[0].authorization == "AWS_IAM"

    summary = apigw.get_deployment(restApiId=api_id, deploymentId=deployment["id"], embed=["apisummary"])
    assert summary["apiSummary"] == {
        "/{proxy+}": {"ANY": {"authorizationType": "AWS_IAM", "apiKeyRequired": False}}
    }


def test_aws_cli_replaces_the_policy(admin_server: AdminHandle) -> None:
    api = admin_server.aws("create-rest-api", "--name", "cli-demo")
    value = f"'{json.dumps(POLICY)}'"  # quoted: the CLI's shorthand syntax reads commas and braces
    admin_server.aws(
        "update-rest-api",
        "--rest-api-id",
        api["id"],
        "--patch-operations",
        f"op=replace,path=/policy,value={value}",
    )
    got = admin_server.aws("get-rest-api", "--rest-api-id", api["id"])
    assert (
        json.loads(got["policy"])["Statement"][0]["Resource"]
        == f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api['id']}/*"
    )
    # and the CLI's JSON form of the same call
    patch = json.dumps([{"op": "remove", "path": "/policy"}])
    admin_server.aws("update-rest-api", "--rest-api-id", api["id"], "--patch-operations", patch)
    assert "policy" not in admin_server.aws("get-rest-api", "--rest-api-id", api["id"])


def test_deployments_are_immutable(admin_server: AdminHandle) -> None:
    apigw = admin_server.boto3()
    api_id, proxy = build_walkthrough_api(apigw)
    first = apigw.create_deployment(restApiId=api_id, stageName="prod")["id"]
    apigw.update_integration(
        restApiId=api_id,
        resourceId=proxy,
        httpMethod="ANY",
        patchOperations=[{"op": "replace", "path": "/uri", "value": "https://example.org/{proxy}"}],
    )
    apigw.update_rest_api(restApiId=api_id, patchOperations=[{"op": "remove", "path": "/policy"}])
    with admin_server.store.transaction() as tx:
        before = tx.get("deployment", api_id, first)
    assert before is not None
    assert before["definition"]["routes"][0]["integration"]["uri"] == "https://httpbin.org/{proxy}"
    assert "policy" in before["definition"]
    assert admin_server.boto3().get_stage(restApiId=api_id, stageName="prod")["deploymentId"] == first

    second = apigw.create_deployment(restApiId=api_id, stageName="prod", description="v2")["id"]
    with admin_server.store.transaction() as tx:
        after = tx.get("deployment", api_id, second)
        unchanged = tx.get("deployment", api_id, first)
    assert after is not None
    assert unchanged == before
    assert after["definition"]["routes"][0]["integration"]["uri"] == "https://example.org/{proxy}"
    assert "policy" not in after["definition"]
    assert apigw.get_stage(restApiId=api_id, stageName="prod")["deploymentId"] == second

    # the first is no longer served: it may go; the second is: it may not
    with pytest.raises(ClientError) as exc:
        apigw.delete_deployment(restApiId=api_id, deploymentId=second)
    assert exc.value.response["Error"]["Code"] == "BadRequestException"
    assert (
        exc.value.response["Error"]["Message"]
        == "Active stages pointing to this deployment must be moved or deleted"
    )
    assert (
        apigw.delete_deployment(restApiId=api_id, deploymentId=first)["ResponseMetadata"]["HTTPStatusCode"]
        == 202
    )
    assert [d["id"] for d in apigw.get_deployments(restApiId=api_id)["items"]] == [second]


def test_stage_settings_through_patch_paths(admin_server: AdminHandle) -> None:
    apigw = admin_server.boto3()
    api_id, _ = build_walkthrough_api(apigw)
    dep = apigw.create_deployment(restApiId=api_id)["id"]
    apigw.create_stage(
        restApiId=api_id, stageName="beta", deploymentId=dep, variables={"backend": "10.0.0.1"}
    )
    fmt = "$context.requestId $context.status"
    stage = apigw.update_stage(
        restApiId=api_id,
        stageName="beta",
        patchOperations=[
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "100"},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "200"},
            {"op": "replace", "path": "/~1pets/GET/throttling/burstLimit", "value": "5"},
            {"op": "replace", "path": "/*/*/logging/loglevel", "value": "INFO"},
            {"op": "replace", "path": "/accessLogSettings/format", "value": fmt},
            {"op": "replace", "path": "/variables/color", "value": "blue"},
            {"op": "remove", "path": "/variables/backend"},
            {"op": "replace", "path": "/description", "value": "the beta stage"},
        ],
    )
    assert stage["methodSettings"]["*/*"]["throttlingRateLimit"] == 100.0
    assert stage["methodSettings"]["*/*"]["throttlingBurstLimit"] == 200
    assert stage["methodSettings"]["*/*"]["loggingLevel"] == "INFO"
    assert stage["methodSettings"]["pets/GET"]["throttlingBurstLimit"] == 5
    assert stage["variables"] == {"color": "blue"}
    assert stage["accessLogSettings"] == {"format": fmt}
    with admin_server.store.transaction() as tx:
        doc = tx.get("stage", api_id, "beta")
    assert doc is not None
    # the configuration entry the gateway serves: the method's rate falls back to the stage's
    assert doc["config"] == {
        "variables": {"color": "blue"},
        "access_log_format": fmt,
        "throttling": {"rate": 100, "burst": 200},
        "method_throttling": {"/pets/GET": {"rate": 100, "burst": 5}},
    }
    listed = apigw.get_stages(restApiId=api_id)["item"]
    assert [s["stageName"] for s in listed] == ["beta"]
    with pytest.raises(ClientError) as exc:
        apigw.update_stage(
            restApiId=api_id,
            stageName="beta",
            patchOperations=[{"op": "replace", "path": "/cacheClusterSize", "value": "0.5"}],
        )
    assert exc.value.response["Error"]["Code"] == "BadRequestException"
    assert exc.value.response["Error"]["Message"].startswith(
        "Invalid method setting path: /cacheClusterSize. Must be one of: ["
    )
    assert apigw.delete_stage(restApiId=api_id, stageName="beta")["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert apigw.get_stages(restApiId=api_id)["item"] == []


def test_authorizers_map_to_the_configuration(admin_server: AdminHandle) -> None:
    apigw = admin_server.boto3()
    api_id = apigw.create_rest_api(name="auth")["id"]
    root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]
    pets = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="pets")["id"]
    token = apigw.create_authorizer(
        restApiId=api_id,
        name="tokens",
        type="TOKEN",
        authorizerUri="http://127.0.0.1:9001/",
        identitySource="method.request.header.Authorization",
        identityValidationExpression="[a-z]+-token",
        authorizerResultTtlInSeconds=60,
    )
    pool = apigw.create_authorizer(
        restApiId=api_id,
        name="pool",
        type="COGNITO_USER_POOLS",
        providerARNs=[f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{REGION}_AbCdEf123"],
    )
    assert [a["name"] for a in apigw.get_authorizers(restApiId=api_id)["items"]] == sorted(
        ["tokens", "pool"], key=lambda n: {"tokens": token["id"], "pool": pool["id"]}[n]
    )
    apigw.put_method(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="GET",
        authorizationType="CUSTOM",
        authorizerId=token["id"],
        apiKeyRequired=True,
    )
    apigw.put_method(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="POST",
        authorizationType="COGNITO_USER_POOLS",
        authorizerId=pool["id"],
        authorizationScopes=["pets/write"],
    )
    oidc = apigw.create_authorizer(
        restApiId=api_id,
        name="oidc",
        type="JWT",
        identitySource="method.request.header.Authorization",
        jwtConfiguration={
            "issuers": [{"issuer": "https://idp.example.com", "audiences": ["aud1"]}],
            "defaultAlgorithms": ["ES256"],
        },
    )
    assert oidc["jwtConfiguration"]["issuers"][0]["issuer"] == "https://idp.example.com"
    apigw.put_method(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="DELETE",
        authorizationType="JWT",
        authorizerId=oidc["id"],
    )
    for verb in ("GET", "POST", "DELETE"):
        apigw.put_integration(
            restApiId=api_id,
            resourceId=pets,
            httpMethod=verb,
            type="MOCK",
            requestTemplates={"application/json": '{"statusCode": 201}'},
        )
    apigw.put_integration_response(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="GET",
        statusCode="201",
        responseTemplates={"application/json": '{"ok": true}'},
        responseParameters={"method.response.header.Content-Type": "'application/json'"},
    )
    dep = apigw.create_deployment(restApiId=api_id, stageName="prod")["id"]
    with admin_server.store.transaction() as tx:
        definition = tx.get("deployment", api_id, dep)["definition"]  # type: ignore[index]
    assert definition["authorizers"][0] == {
        "name": "oidc",
        "type": "JWT",
        "issuer": "https://idp.example.com",
        "audiences": ["aud1"],
        "algorithms": ["ES256"],
    }
    assert definition["authorizers"][1:] == [
        {
            "name": "pool",
            "type": "COGNITO_USER_POOLS",
            "issuer": f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_AbCdEf123",
        },
        {
            "name": "tokens",
            "type": "TOKEN",
            "url": "http://127.0.0.1:9001/",
            "identity_validation_expression": "[a-z]+-token",
            "result_ttl": 60,
        },
    ]
    delete, get, post = definition["routes"]
    assert (delete["authorization"], delete["authorizer"]) == ("COGNITO_USER_POOLS", "oidc")
    assert get == {
        "path": "/pets",
        "method": "GET",
        "authorization": "CUSTOM",
        "authorizer": "tokens",
        "api_key_required": True,
        "integration": {
            "type": "MOCK",
            "status": 201,
            "headers": {"Content-Type": "application/json"},
            "body": '{"ok": true}',
        },
    }
    assert post["authorizer"] == "pool"
    assert post["authorization_scopes"] == ["pets/write"]
    assert post["integration"] == {"type": "MOCK", "status": 201}
    # an authorizer a method uses cannot go
    with pytest.raises(ClientError) as exc:
        apigw.delete_authorizer(restApiId=api_id, authorizerId=token["id"])
    assert exc.value.response["Error"]["Code"] == "ConflictException"
    assert "GET /pets" in exc.value.response["Error"]["Message"]


def test_resources_paths_and_nested_delete(admin_server: AdminHandle) -> None:
    apigw = admin_server.boto3()
    api_id = apigw.create_rest_api(name="tree")["id"]
    root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]
    pets = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="pets")["id"]
    pet = apigw.create_resource(restApiId=api_id, parentId=pets, pathPart="{id}")["id"]
    toys = apigw.create_resource(restApiId=api_id, parentId=pet, pathPart="toys")
    assert toys["path"] == "/pets/{id}/toys"
    renamed = apigw.update_resource(
        restApiId=api_id,
        resourceId=pets,
        patchOperations=[{"op": "replace", "path": "/pathPart", "value": "dogs"}],
    )
    assert renamed["path"] == "/dogs"
    paths = [r["path"] for r in apigw.get_resources(restApiId=api_id)["items"]]
    assert paths == ["/", "/dogs", "/dogs/{id}", "/dogs/{id}/toys"]
    page = apigw.get_resources(restApiId=api_id, limit=2)
    assert len(page["items"]) == 2
    assert "position" in page
    rest = apigw.get_resources(restApiId=api_id, limit=2, position=page["position"])
    assert [r["path"] for r in page["items"] + rest["items"]] == paths
    paginated = [
        r["path"]
        for p in apigw.get_paginator("get_resources").paginate(
            restApiId=api_id, PaginationConfig={"PageSize": 1}
        )
        for r in p["items"]
    ]
    assert paginated == paths
    assert (
        apigw.delete_resource(restApiId=api_id, resourceId=pets)["ResponseMetadata"]["HTTPStatusCode"] == 202
    )
    assert [r["path"] for r in apigw.get_resources(restApiId=api_id)["items"]] == ["/"]
    apis = apigw.get_rest_apis()["items"]
    assert [a["id"] for a in apis] == [api_id]
    assert apigw.delete_rest_api(restApiId=api_id)["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert apigw.get_rest_apis()["items"] == []
