"""ImportRestApi, PutRestApi and GetExport through the real AWS CLI and boto3.

The AWS CLI imports a YAML document from a file (``--body fileb://``) and exports a deployment
to a file; boto3 drives the rest. What an import produces is checked in the draft (the shared
contract) and through core's own operations (GetMethod, GetRestApi); the round trip
import(export(X)) must reproduce X's routes, policy and authorizers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.management.conftest import AdminHandle as Admin

ACCOUNT = "123456789012"
DOCUMENT = """\
openapi: 3.0.1
info: {title: pets, version: "1.2", description: the pet store}
x-amazon-apigateway-api-key-source: HEADER
x-amazon-apigateway-policy:
  Version: "2012-10-17"
  Statement:
    - {Effect: Allow, Principal: "*", Action: execute-api:Invoke, Resource: execute-api:/*}
    - Effect: Deny
      Principal: "*"
      Action: execute-api:Invoke
      Resource: execute-api:/*/DELETE/*
      Condition: {NotIpAddress: {aws:SourceIp: 192.0.2.0/24}}
components:
  securitySchemes:
    api_key: {type: apiKey, name: x-api-key, in: header}
    sigv4: {type: apiKey, name: Authorization, in: header, x-amazon-apigateway-authtype: awsSigv4}
    tokenAuth:
      type: apiKey
      name: Authorization
      in: header
      x-amazon-apigateway-authtype: custom
      x-amazon-apigateway-authorizer:
        type: token
        authorizerUri: http://127.0.0.1:9001/auth
        authorizerResultTtlInSeconds: 60
        identityValidationExpression: "^Bearer .+$"
    pool:
      type: apiKey
      name: Authorization
      in: header
      x-amazon-apigateway-authtype: cognito_user_pools
      x-amazon-apigateway-authorizer:
        type: cognito_user_pools
        providerARNs: [arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEf123]
paths:
  /pets:
    get:
      operationId: listPets
      security: [{api_key: []}]
      parameters: [{name: limit, in: query, schema: {type: integer}}]
      responses: {"200": {description: ok, headers: {X-Total: {schema: {type: string}}}}}
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: http://127.0.0.1:9000/pets
        timeoutInMillis: 5000
        requestParameters: {integration.request.header.X-Caller: "'pets'"}
  /pets/{id}:
    get:
      security: [{sigv4: []}]
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses: {"200": {description: ok}}
      x-amazon-apigateway-integration: {type: http_proxy, httpMethod: GET, uri: "http://127.0.0.1:9000/pets/{id}"}
    delete:
      security: [{pool: [pets/write]}]
      responses: {"204": {description: gone}}
      x-amazon-apigateway-integration: {type: http_proxy, httpMethod: ANY, uri: "http://127.0.0.1:9000/pets/{id}"}
  /admin:
    post:
      security: [{tokenAuth: [], api_key: []}]
      responses: {"200": {description: ok}}
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: {application/json: '{"statusCode": 201}'}
        responses:
          default:
            statusCode: "201"
            responseParameters: {method.response.header.X-Mock: "'yes'"}
            responseTemplates: {application/json: '{"created": true}'}
  /{proxy+}:
    x-amazon-apigateway-any-method:
      responses: {default: {description: any}}
      x-amazon-apigateway-integration: {type: http_proxy, httpMethod: ANY, uri: "http://127.0.0.1:9000/{proxy}"}
"""

# what DOCUMENT defines: (path, verb) -> (authorization, authorizer name, API key, integration)
EXPECTED_ROUTES = {
    ("/pets", "GET"): ("NONE", None, True, ("HTTP_PROXY", "http://127.0.0.1:9000/pets")),
    ("/pets/{id}", "GET"): ("AWS_IAM", None, False, ("HTTP_PROXY", "http://127.0.0.1:9000/pets/{id}")),
    ("/pets/{id}", "DELETE"): (
        "COGNITO_USER_POOLS",
        "pool",
        False,
        ("HTTP_PROXY", "http://127.0.0.1:9000/pets/{id}"),
    ),
    ("/admin", "POST"): ("CUSTOM", "tokenAuth", True, ("MOCK", None)),
    ("/{proxy+}", "ANY"): ("NONE", None, False, ("HTTP_PROXY", "http://127.0.0.1:9000/{proxy}")),
}


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def draft_of(admin: Admin, api_id: str) -> dict[str, Any]:
    with admin.store.transaction() as tx:
        draft = tx.get("restapi", "", api_id)
    assert draft is not None
    return draft


def routes_of(draft: dict[str, Any]) -> dict[tuple[str, str], tuple[Any, ...]]:
    names = {a["id"]: a["name"] for a in draft["authorizers"].values()}
    out = {}
    for res in draft["resources"].values():
        for verb, m in (res.get("resourceMethods") or {}).items():
            i = m.get("methodIntegration") or {}
            out[(res["path"], verb)] = (
                m["authorizationType"],
                names.get(m.get("authorizerId")),
                bool(m.get("apiKeyRequired")),
                (i.get("type"), i.get("uri")),
            )
    return out


def authorizers_of(draft: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["name"]: {k: v for k, v in a.items() if k != "id"} for a in draft["authorizers"].values()}


def policy_of(draft: dict[str, Any]) -> Any:
    """The stored policy with the API's own id replaced, to compare two APIs' policies."""
    text = draft["restApi"]["policy"]
    return json.loads(text.replace(draft["restApi"]["id"], "API"))


def test_cli_import_then_export_round_trip(admin_server: Admin, tmp_path: Path) -> None:
    source = tmp_path / "api.yaml"
    source.write_text(DOCUMENT)
    imported = admin_server.aws(
        "import-rest-api",
        "--body",
        f"fileb://{source}",
        "--parameters",
        "endpointConfigurationTypes=REGIONAL",
    )
    api_id = imported["id"]
    assert imported["name"] == "pets"
    assert imported["version"] == "1.2"
    assert imported["description"] == "the pet store"
    assert imported["endpointConfiguration"]["types"] == ["REGIONAL"]
    assert "warnings" not in imported
    draft = draft_of(admin_server, api_id)
    assert routes_of(draft) == EXPECTED_ROUTES
    # every prefix of a path is a resource, as on API Gateway
    assert sorted(r["path"] for r in draft["resources"].values()) == [
        "/",
        "/admin",
        "/pets",
        "/pets/{id}",
        "/{proxy+}",
    ]
    # the policy: validated, stored as AWS stores it, the shorthand expanded for this API
    policy = json.loads(imported["policy"])
    arn = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{api_id}"
    assert [s["Resource"] for s in policy["Statement"]] == [f"{arn}/*", f"{arn}/*/DELETE/*"]
    assert "\\/" in imported["policy"]  # AWS's escaped slashes, as core's UpdateRestApi stores it
    assert authorizers_of(draft) == {
        "tokenAuth": {
            "name": "tokenAuth",
            "type": "TOKEN",
            "authType": "custom",
            "authorizerUri": "http://127.0.0.1:9001/auth",
            "identitySource": "method.request.header.Authorization",
            "identityValidationExpression": "^Bearer .+$",
            "authorizerResultTtlInSeconds": 60,
        },
        "pool": {
            "name": "pool",
            "type": "COGNITO_USER_POOLS",
            "authType": "cognito_user_pools",
            "providerARNs": ["arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEf123"],
            "identitySource": "method.request.header.Authorization",
            "authorizerResultTtlInSeconds": 300,
        },
    }
    # core's GetMethod reads what the import wrote
    c = admin_server.boto3()
    pets = next(r for r in draft["resources"].values() if r["path"] == "/pets")
    method = c.get_method(restApiId=api_id, resourceId=pets["id"], httpMethod="GET")
    assert method["apiKeyRequired"] is True
    assert method["operationName"] == "listPets"
    assert method["requestParameters"] == {"method.request.querystring.limit": False}
    assert method["methodIntegration"]["timeoutInMillis"] == 5000
    assert method["methodIntegration"]["requestParameters"] == {
        "integration.request.header.X-Caller": "'pets'"
    }
    admin_ = next(r for r in draft["resources"].values() if r["path"] == "/pets/{id}")
    delete = c.get_method(restApiId=api_id, resourceId=admin_["id"], httpMethod="DELETE")
    assert delete["authorizationScopes"] == ["pets/write"]

    c.create_deployment(restApiId=api_id, stageName="prod")
    exported = tmp_path / "export.yaml"
    admin_server.aws(
        "get-export",
        "--rest-api-id",
        api_id,
        "--stage-name",
        "prod",
        "--export-type",
        "oas30",
        "--parameters",
        "extensions=apigateway",
        "--accepts",
        "application/yaml",
        str(exported),
        parse=False,
    )
    document = yaml.safe_load(exported.read_text())
    assert document["openapi"] == "3.0.1"
    assert document["info"]["title"] == "pets"
    assert document["servers"][0]["variables"]["basePath"]["default"] == "prod"
    # own-API ARNs are written back as the shorthand, so the export imports into any API
    assert document["x-amazon-apigateway-policy"]["Statement"][1]["Resource"] == "execute-api:/*/DELETE/*"
    schemes = document["components"]["securitySchemes"]
    assert schemes["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert schemes["tokenAuth"]["x-amazon-apigateway-authorizer"]["type"] == "token"
    assert "x-amazon-apigateway-any-method" in document["paths"]["/{proxy+}"]

    again = c.import_rest_api(body=exported.read_bytes())
    copy = draft_of(admin_server, again["id"])
    assert routes_of(copy) == EXPECTED_ROUTES
    assert authorizers_of(copy) == authorizers_of(draft)
    assert policy_of(copy) == policy_of(draft)
    assert again["apiKeySource"] == "HEADER"


def test_swagger_export_round_trip_and_json(admin_server: Admin) -> None:
    c = admin_server.boto3()
    api_id = c.import_rest_api(body=DOCUMENT.encode())["id"]
    c.create_deployment(restApiId=api_id, stageName="v1")
    exported = c.get_export(
        restApiId=api_id, stageName="v1", exportType="swagger", parameters={"extensions": "apigateway"}
    )
    assert exported["contentType"] == "application/json"
    assert "attachment" in exported["contentDisposition"]
    document = json.loads(exported["body"].read())
    assert document["swagger"] == "2.0"
    assert document["basePath"] == "/v1"
    assert "tokenAuth" in document["securityDefinitions"]
    copy = c.import_rest_api(body=json.dumps(document).encode())
    assert routes_of(draft_of(admin_server, copy["id"])) == EXPECTED_ROUTES
    # without extensions: plain OpenAPI, no API Gateway extensions
    plain = json.loads(c.get_export(restApiId=api_id, stageName="v1", exportType="oas30")["body"].read())
    assert "x-amazon-apigateway-integration" not in json.dumps(plain)
    assert "x-amazon-apigateway-policy" not in plain


def test_export_serves_the_deployment_not_the_draft(admin_server: Admin) -> None:
    c = admin_server.boto3()
    api_id = c.import_rest_api(body=DOCUMENT.encode())["id"]
    c.create_deployment(restApiId=api_id, stageName="prod")
    smaller = yaml.safe_load(DOCUMENT)
    del smaller["paths"]["/admin"]
    c.put_rest_api(restApiId=api_id, mode="overwrite", body=json.dumps(smaller).encode())
    assert ("/admin", "POST") not in routes_of(draft_of(admin_server, api_id))
    exported = json.loads(
        c.get_export(
            restApiId=api_id, stageName="prod", exportType="oas30", parameters={"extensions": "integrations"}
        )["body"].read()
    )
    assert "/admin" in exported["paths"]  # the stage still serves the old deployment


def test_put_rest_api_merge_and_overwrite(admin_server: Admin) -> None:
    c = admin_server.boto3()
    api_id = c.import_rest_api(body=DOCUMENT.encode())["id"]
    ids_before = {r["path"]: r["id"] for r in draft_of(admin_server, api_id)["resources"].values()}
    extra = {
        "openapi": "3.0.1",
        "info": {"title": "pets v2"},
        "paths": {
            "/pets": {"post": {"x-amazon-apigateway-integration": {"type": "mock"}}},
            "/toys": {"get": {"x-amazon-apigateway-integration": {"type": "mock"}}},
        },
    }
    merged = c.put_rest_api(restApiId=api_id, mode="merge", body=json.dumps(extra).encode())
    assert merged["name"] == "pets v2"
    assert merged["policy"]
    routes = routes_of(draft_of(admin_server, api_id))
    assert set(routes) == set(EXPECTED_ROUTES) | {("/pets", "POST"), ("/toys", "GET")}
    ids_after = {r["path"]: r["id"] for r in draft_of(admin_server, api_id)["resources"].values()}
    assert all(ids_after[p] == i for p, i in ids_before.items())  # resources keep their ids

    c.put_rest_api(restApiId=api_id, mode="overwrite", body=json.dumps(extra).encode())
    draft = draft_of(admin_server, api_id)
    assert set(routes_of(draft)) == {("/pets", "POST"), ("/toys", "GET")}
    assert "policy" not in draft["restApi"]
    assert draft["authorizers"] == {}
    assert {r["path"] for r in draft["resources"].values()} == {"/", "/pets", "/toys"}
    assert next(r["id"] for r in draft["resources"].values() if r["path"] == "/pets") == ids_before["/pets"]

    with pytest.raises(ClientError) as exc:
        c.put_rest_api(restApiId="nosuchapi0", body=DOCUMENT.encode())
    assert error_of(exc)[0] == "NotFoundException"
    assert "nosuchapi0" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        c.put_rest_api(restApiId=api_id, mode="replace", body=DOCUMENT.encode())  # type: ignore[arg-type]
    assert "merge or overwrite" in error_of(exc)[1]


def bad(admin: Admin, text: str, **kw: Any) -> str:
    with pytest.raises(ClientError) as exc:
        admin.boto3().import_rest_api(body=text.encode(), **kw)
    code, message = error_of(exc)
    assert code == "BadRequestException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return message


def test_broken_documents_are_refused_with_their_place(admin_server: Admin) -> None:
    assert "line 3" in bad(admin_server, "openapi: 3.0.1\ninfo: {title: x\npaths: {}\n")
    assert "neither 'openapi'" in bad(admin_server, "info: {title: x}\npaths: {}\n")
    assert "object" in bad(admin_server, "[1, 2]")
    assert "empty" in bad(admin_server, "")
    message = bad(admin_server, "openapi: 3.1.0\ninfo: {title: x}\npaths: {}\n")
    assert "/openapi (line 1" in message
    assert "3.0" in message

    broken_policy = DOCUMENT.replace("- {Effect: Allow,", "- {Effect: Alow,")
    message = bad(admin_server, broken_policy)
    assert "/x-amazon-apigateway-policy/Statement/0/Effect (line 7, column 16)" in message
    assert "did you mean 'Allow'" in message

    message = bad(admin_server, DOCUMENT.replace("/pets/{id}:", "/pets/x{id}:"))
    assert "/paths/~1pets~1x{id}" in message
    assert "whole segment" in message

    message = bad(admin_server, DOCUMENT.replace("security: [{sigv4: []}]", "security: [{nosuch: []}]"))
    assert "security scheme 'nosuch' is not defined" in message
    assert "/paths/~1pets~1{id}/get/security/0/nosuch (line 50, column 27)" in message

    message = bad(admin_server, DOCUMENT.replace("uri: http://127.0.0.1:9000/pets\n", "uri: ftp://x/pets\n"))
    assert "/paths/~1pets/get/x-amazon-apigateway-integration/uri" in message

    # core's PutIntegration rules, reported at the operation
    message = bad(admin_server, DOCUMENT.replace("httpMethod: GET, uri", "httpMethod: POST, uri"))
    assert "/paths/~1pets~1{id}/get (line" in message
    assert "must be ANY or GET" in message

    lambda_arn = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn/invocations"
    message = bad(admin_server, DOCUMENT.replace("http://127.0.0.1:9001/auth", lambda_arn))
    assert "/components/securitySchemes/tokenAuth" in message
    assert "Lambda function ARNs" in message

    message = bad(
        admin_server,
        DOCUMENT.replace("authorizerResultTtlInSeconds: 60", "authorizerResultTtlInSeconds: 7200"),
    )
    assert "0 to 3600" in message
    # several problems are reported at once
    both = DOCUMENT.replace("- {Effect: Allow,", "- {Effect: Alow,").replace("/pets/{id}:", "/pets/x{id}:")
    message = bad(admin_server, both)
    assert "Effect" in message
    assert "whole segment" in message
    assert message.startswith("Errors found during import:")


def test_warnings_are_returned_or_fail_on_request(admin_server: Admin) -> None:
    doc = yaml.safe_load(DOCUMENT)
    doc["paths"]["/lambda"] = {
        "get": {
            "x-amazon-apigateway-integration": {"type": "aws_proxy", "httpMethod": "POST", "uri": "arn:x"}
        }
    }
    doc["x-amazon-apigateway-documentation"] = {"version": "1", "documentationParts": []}
    body = json.dumps(doc).encode()
    c = admin_server.boto3()
    imported = c.import_rest_api(body=body)
    warnings = imported["warnings"]
    assert any(
        "/paths/~1lambda/get/x-amazon-apigateway-integration/type" in w and "aws_proxy" in w for w in warnings
    )
    assert any("documentation parts are not imported" in w for w in warnings)
    # imported without the unsupported integration
    assert routes_of(draft_of(admin_server, imported["id"]))[("/lambda", "GET")][3] == (None, None)
    message = bad(admin_server, json.dumps(doc), failOnWarnings=True)
    assert message.startswith("Warnings found during import")
    assert "aws_proxy" in message


def test_export_errors(admin_server: Admin) -> None:
    c = admin_server.boto3()
    api_id = c.import_rest_api(body=DOCUMENT.encode())["id"]
    with pytest.raises(ClientError) as exc:
        c.get_export(restApiId=api_id, stageName="nostage", exportType="oas30")
    assert error_of(exc)[0] == "NotFoundException"
    assert "nostage" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        c.get_export(restApiId="nosuchapi0", stageName="prod", exportType="oas30")
    assert error_of(exc)[0] == "NotFoundException"
    c.create_deployment(restApiId=api_id, stageName="prod")
    with pytest.raises(ClientError) as exc:
        c.get_export(restApiId=api_id, stageName="prod", exportType="postman")
    assert "oas30 or swagger" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        c.get_export(restApiId=api_id, stageName="prod", exportType="oas30", accepts="text/html")
    assert "application/yaml" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        c.get_export(restApiId=api_id, stageName="prod", exportType="oas30", parameters={"extensions": "x"})
    assert error_of(exc)[0] == "BadRequestException"


def test_base_path_and_policy_mode(admin_server: Admin) -> None:
    doc = {
        "swagger": "2.0",
        "info": {"title": "based"},
        "basePath": "/v1/api",
        "x-iamgate-policy-mode": "report",
        "x-amazon-apigateway-policy": json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "execute-api:Invoke",
                        "Resource": "execute-api:/*",
                    }
                ],
            }
        ),
        "paths": {"/items": {"get": {"x-amazon-apigateway-integration": {"type": "mock"}}}},
    }
    c = admin_server.boto3()
    for mode, path in (("ignore", "/items"), ("prepend", "/v1/api/items"), ("split", "/api/items")):
        api = c.import_rest_api(body=json.dumps(doc).encode(), parameters={"basepath": mode})
        draft = draft_of(admin_server, api["id"])
        assert set(routes_of(draft)) == {(path, "GET")}, mode
        assert draft["policyMode"] == "report"
        assert re.search(
            r"execute-api:us-east-1:\d+:" + api["id"], draft["restApi"]["policy"].replace("\\/", "/")
        )
