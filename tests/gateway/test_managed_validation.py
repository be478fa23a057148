"""Issue 17 end to end, managed the AWS way: boto3 builds an API on the admin port with gateway
responses, a model, a request validator and a CORS ``OPTIONS`` method, deploys it, and the real
gateway serves what was deployed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.conftest import Gateway, start_gateway, wait_for
from tests.gateway.test_managed import client, gateway_yaml

ORIGIN = "https://app.example.com"
PET = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path, gateway_yaml("sqlite:///store.db"))
    yield gw
    gw.stop()


def mock_api(c: Any) -> tuple[str, str]:
    """An API with GET /pets answered by a MOCK integration: (api id, /pets resource id)."""
    api_id = c.create_rest_api(name="managed", endpointConfiguration={"types": ["REGIONAL"]})["id"]
    root = next(r["id"] for r in c.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    pets = c.create_resource(restApiId=api_id, parentId=root, pathPart="pets")["id"]
    c.put_method(restApiId=api_id, resourceId=pets, httpMethod="GET", authorizationType="NONE")
    c.put_integration(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="GET",
        type="MOCK",
        requestTemplates={"application/json": '{"statusCode": 200}'},
    )
    c.put_integration_response(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="GET",
        statusCode="200",
        responseTemplates={"application/json": '["rex"]'},
    )
    return api_id, pets


def call(gw: Gateway, api_id: str, method: str, path: str, **kw: Any) -> tuple[int, dict[str, str], bytes]:
    headers = {"x-apigw-api-id": api_id, **kw.pop("headers", {})}
    return gw.request(method, path, headers=headers, **kw)


def test_gateway_responses_and_cors_deployed_through_the_management_api(gateway: Gateway) -> None:
    gw = gateway
    c = client(gw)
    api_id, pets = mock_api(c)
    # the console's "Enable CORS": an OPTIONS MOCK method setting the Access-Control-Allow-* headers
    c.put_method(restApiId=api_id, resourceId=pets, httpMethod="OPTIONS", authorizationType="NONE")
    c.put_integration(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="OPTIONS",
        type="MOCK",
        requestTemplates={"application/json": '{"statusCode": 200}'},
    )
    c.put_integration_response(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="OPTIONS",
        statusCode="200",
        responseParameters={
            "method.response.header.Access-Control-Allow-Origin": f"'{ORIGIN}'",
            "method.response.header.Access-Control-Allow-Methods": "'GET,OPTIONS'",
        },
    )
    # ...and gateway responses carrying the origin, so a browser can read the refusals
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
        c.put_gateway_response(
            restApiId=api_id,
            responseType=kind,
            responseParameters={"gatewayresponse.header.Access-Control-Allow-Origin": f"'{ORIGIN}'"},
            responseTemplates={"application/json": '{"message":$context.error.messageString}'},
        )
    c.put_gateway_response(
        restApiId=api_id,
        responseType="MISSING_AUTHENTICATION_TOKEN",
        statusCode="404",
        responseTemplates={"application/json": '{"message": "no such route: $context.path"}'},
    )
    # a method that needs an API key: called without one, an uncustomised 4XX (INVALID_API_KEY)
    root = next(r["id"] for r in c.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    keyed = c.create_resource(restApiId=api_id, parentId=root, pathPart="keyed")["id"]
    c.put_method(
        restApiId=api_id, resourceId=keyed, httpMethod="GET", authorizationType="NONE", apiKeyRequired=True
    )
    c.put_integration(restApiId=api_id, resourceId=keyed, httpMethod="GET", type="MOCK")
    c.create_deployment(restApiId=api_id, stageName="prod")
    wait_for(lambda: call(gw, api_id, "GET", "/prod/pets")[0] == 200, "the deployment")

    status, headers, body = call(gw, api_id, "OPTIONS", "/prod/pets", headers={"Origin": ORIGIN})
    assert status == 200
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-allow-methods"] == "GET,OPTIONS"
    status, headers, body = call(gw, api_id, "GET", "/prod/nothing-here")
    assert status == 404
    assert json.loads(body)["message"].startswith("no such route: ")
    # a customised type does not inherit DEFAULT_4XX's settings, as on API Gateway...
    assert "access-control-allow-origin" not in headers
    # ...the types left as they are do
    status, headers, body = call(gw, api_id, "GET", "/prod/keyed")
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    assert headers["access-control-allow-origin"] == ORIGIN


def test_request_validation_deployed_through_the_management_api(gateway: Gateway) -> None:
    gw = gateway
    c = client(gw)
    api_id, pets = mock_api(c)
    c.create_model(restApiId=api_id, name="Pet", contentType="application/json", schema=json.dumps(PET))
    validator = c.create_request_validator(
        restApiId=api_id, name="all", validateRequestBody=True, validateRequestParameters=True
    )["id"]
    c.put_method(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="POST",
        authorizationType="NONE",
        requestValidatorId=validator,
        requestModels={"application/json": "Pet"},
        requestParameters={"method.request.querystring.owner": True},
    )
    c.put_integration(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="POST",
        type="MOCK",
        requestTemplates={"application/json": '{"statusCode": 201}'},
    )
    c.put_integration_response(restApiId=api_id, resourceId=pets, httpMethod="POST", statusCode="201")
    c.put_gateway_response(
        restApiId=api_id,
        responseType="BAD_REQUEST_BODY",
        statusCode="422",
        responseTemplates={"application/json": '{"invalid": "$context.error.validationErrorString"}'},
    )
    c.create_deployment(restApiId=api_id, stageName="prod")
    wait_for(lambda: call(gw, api_id, "GET", "/prod/pets")[0] == 200, "the deployment")

    json_body = {"headers": {"content-type": "application/json"}}
    status, _, body = call(gw, api_id, "POST", "/prod/pets", body=b'{"name": "rex"}', **json_body)
    assert status == 400
    assert json.loads(body) == {"message": "Missing required request parameters: [owner]"}
    status, _, body = call(gw, api_id, "POST", "/prod/pets?owner=me", body=b'{"age": 3}', **json_body)
    assert status == 422
    assert body.startswith(b'{"invalid": "')
    assert b"name" in body
    status, _, _ = call(gw, api_id, "POST", "/prod/pets?owner=me", body=b'{"name": "rex"}', **json_body)
    assert status == 201
