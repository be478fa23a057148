"""OpenAPI import and export of gateway responses, models, request validators and the CORS
objects API Gateway's console writes, through the real AWS CLI and boto3 (SQLite and
PostgreSQL): what an import stores, what an export writes, and import(export(X)) == X, for
OpenAPI 3 and Swagger 2 documents.
Some exports go through a real deployment (read back by the configuration readers), the same
round trips also without one (the deployment's conversion in process).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError

from iamgate.config.load import parse_config
from iamgate.config.model import GatewaySettings
from iamgate.management.convert import definition_to_draft, draft_to_definition
from iamgate.management.openapi import draft_to_openapi

from .conftest import ACCOUNT, REGION, AdminHandle, draft_of

CORS_HEADERS = {
    "method.response.header.Access-Control-Allow-Headers": (
        "'Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token'"
    ),
    "method.response.header.Access-Control-Allow-Methods": "'GET,POST,OPTIONS'",
    "method.response.header.Access-Control-Allow-Origin": "'https://app.example.com'",
}
DEFAULT_TEMPLATE = '{"message":$context.error.messageString}'

OAS3 = {
    "openapi": "3.0.1",
    "info": {"title": "validated pets", "version": "1"},
    "x-amazon-apigateway-request-validators": {
        "all": {"validateRequestBody": True, "validateRequestParameters": True},
        "params-only": {"validateRequestBody": False, "validateRequestParameters": True},
    },
    "x-amazon-apigateway-request-validator": "params-only",
    "x-amazon-apigateway-gateway-responses": {
        "DEFAULT_4XX": {
            "responseParameters": {
                "gatewayresponse.header.Access-Control-Allow-Origin": "'https://app.example.com'"
            },
            "responseTemplates": {"application/json": DEFAULT_TEMPLATE},
        },
        "DEFAULT_5XX": {
            "responseParameters": {
                "gatewayresponse.header.Access-Control-Allow-Origin": "'https://app.example.com'"
            },
            "responseTemplates": {"application/json": DEFAULT_TEMPLATE},
        },
        "BAD_REQUEST_BODY": {
            "statusCode": 422,
            "responseTemplates": {"application/json": '{"message": "$context.error.validationErrorString"}'},
        },
    },
    "paths": {
        "/pets": {
            "get": {
                "parameters": [
                    {"name": "limit", "in": "query", "required": True, "schema": {"type": "integer"}},
                    {"name": "x-token", "in": "header", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {"200": {"description": "ok"}},
                "x-amazon-apigateway-integration": {
                    "type": "http_proxy",
                    "httpMethod": "GET",
                    "uri": "http://127.0.0.1:9000/pets",
                },
            },
            "post": {
                "x-amazon-apigateway-request-validator": "all",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}},
                },
                "responses": {"200": {"description": "ok"}},
                "x-amazon-apigateway-integration": {
                    "type": "http_proxy",
                    "httpMethod": "POST",
                    "uri": "http://127.0.0.1:9000/pets",
                },
            },
            "options": {
                "responses": {
                    "200": {
                        "description": "200 response",
                        "headers": {
                            "Access-Control-Allow-Origin": {"schema": {"type": "string"}},
                            "Access-Control-Allow-Methods": {"schema": {"type": "string"}},
                            "Access-Control-Allow-Headers": {"schema": {"type": "string"}},
                        },
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Empty"}}},
                    }
                },
                "x-amazon-apigateway-integration": {
                    "type": "mock",
                    "requestTemplates": {"application/json": '{"statusCode": 200}'},
                    "passthroughBehavior": "when_no_match",
                    "responses": {"default": {"statusCode": "200", "responseParameters": CORS_HEADERS}},
                },
            },
        },
        "/owners": {
            "put": {
                "x-amazon-apigateway-request-validator": "all",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Owner"}}
                        }
                    }
                },
                "responses": {"200": {"description": "ok"}},
                "x-amazon-apigateway-integration": {
                    "type": "http_proxy",
                    "httpMethod": "PUT",
                    "uri": "http://127.0.0.1:9000/owners",
                },
            }
        },
    },
    "components": {
        "schemas": {
            "Empty": {"title": "Empty Schema", "type": "object"},
            "Pet": {
                "type": "object",
                "description": "a pet",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
            },
            "Owner": {
                "type": "object",
                "properties": {"pets": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}},
            },
        }
    },
}


def swagger_of(oas3: dict[str, Any]) -> dict[str, Any]:
    """The same API as a Swagger 2.0 document."""
    doc = json.loads(json.dumps(oas3).replace("#/components/schemas/", "#/definitions/"))
    out = {k: v for k, v in doc.items() if k not in ("openapi", "components")}
    out["swagger"] = "2.0"
    out["definitions"] = doc["components"]["schemas"]
    for item in out["paths"].values():
        for op in item.values():
            for param in op.get("parameters", []):
                param["type"] = param.pop("schema")["type"]
            body = op.pop("requestBody", None)
            if body is not None:
                schema = body["content"]["application/json"]["schema"]
                op.setdefault("parameters", []).append({"in": "body", "name": "body", "schema": schema})
            for response in op.get("responses", {}).values():
                for header in response.get("headers", {}).values():
                    header["type"] = header.pop("schema")["type"]
                content = response.pop("content", None)
                if content:
                    response["schema"] = content["application/json"]["schema"]
    return out


@pytest.fixture
def admin(admin_on_each_store: AdminHandle) -> AdminHandle:
    """The management API over a SQLite store, then over a PostgreSQL one."""
    return admin_on_each_store


def validation_of(draft: dict[str, Any]) -> dict[str, Any]:
    """What an import must reproduce, without ids: models by name (schemas as data, the API's
    own id replaced), validators by name, gateway responses, each method's validation fields
    (validator by name) and the OPTIONS method's integration and method responses."""
    api_id = draft["restApi"]["id"]
    validators = {vid: v["name"] for vid, v in draft["requestValidators"].items()}
    methods = {}
    for resource in draft["resources"].values():
        for verb, method in (resource.get("resourceMethods") or {}).items():
            entry = {
                "validator": validators.get(method.get("requestValidatorId")),
                "models": method.get("requestModels"),
                "parameters": {
                    k: v for k, v in (method.get("requestParameters") or {}).items() if v
                },  # the required ones: an export drops the others without a validator
            }
            if verb == "OPTIONS":
                integration = method["methodIntegration"]
                entry["integration"] = {
                    k: integration.get(k) for k in ("type", "requestTemplates", "integrationResponses")
                }
                entry["method_responses"] = {
                    code: sorted((r.get("responseParameters") or {}).items())
                    for code, r in method["methodResponses"].items()
                }
            methods[(resource["path"], verb)] = entry
    return {
        "models": {
            m["name"]: (
                m.get("contentType"),
                m.get("description"),
                json.loads(m["schema"].replace(api_id, "API")),
            )
            for m in draft["models"].values()
        },
        "validators": {
            v["name"]: (v["validateRequestBody"], v["validateRequestParameters"])
            for v in draft["requestValidators"].values()
        },
        "gateway_responses": draft["gatewayResponses"],
        "methods": methods,
    }


def check_imported(draft: dict[str, Any]) -> None:
    api_id = draft["restApi"]["id"]
    got = validation_of(draft)
    pet_url = f"https://apigateway.amazonaws.com/restapis/{api_id}/models/Pet"
    models = {m["name"]: m for m in draft["models"].values()}
    assert json.loads(models["Owner"]["schema"])["properties"]["pets"]["items"] == {"$ref": pet_url}
    assert json.loads(models["Pet"]["schema"])["required"] == ["name"]
    assert models["Pet"]["description"] == "a pet"
    assert set(models) == {"Empty", "Error", "Pet", "Owner", "PutOwnersBody"}
    assert json.loads(models["PutOwnersBody"]["schema"]) == {
        "type": "array",
        "items": {"$ref": pet_url.replace("/Pet", "/Owner")},
    }
    assert got["validators"] == {"all": (True, True), "params-only": (False, True)}
    assert got["gateway_responses"] == {
        "BAD_REQUEST_BODY": {
            "statusCode": "422",
            "responseTemplates": {"application/json": '{"message": "$context.error.validationErrorString"}'},
        },
        "DEFAULT_4XX": {
            "responseParameters": {
                "gatewayresponse.header.Access-Control-Allow-Origin": "'https://app.example.com'"
            },
            "responseTemplates": {"application/json": DEFAULT_TEMPLATE},
        },
        "DEFAULT_5XX": {
            "responseParameters": {
                "gatewayresponse.header.Access-Control-Allow-Origin": "'https://app.example.com'"
            },
            "responseTemplates": {"application/json": DEFAULT_TEMPLATE},
        },
    }
    methods = got["methods"]
    assert methods[("/pets", "GET")] == {
        "validator": "params-only",  # the API's default validator
        "models": None,
        "parameters": {"method.request.querystring.limit": True, "method.request.header.x-token": True},
    }
    assert methods[("/pets", "POST")]["validator"] == "all"
    assert methods[("/pets", "POST")]["models"] == {"application/json": "Pet"}
    assert methods[("/owners", "PUT")]["models"] == {"application/json": "PutOwnersBody"}
    options = methods[("/pets", "OPTIONS")]
    assert options["integration"]["integrationResponses"] == {
        "200": {"statusCode": "200", "responseParameters": CORS_HEADERS}
    }
    assert options["method_responses"] == {"200": [(k, False) for k in sorted(CORS_HEADERS)]}


def export_in_process(draft: dict[str, Any], kind: str) -> dict[str, Any]:
    """What GetExport writes for a stage serving a deployment of ``draft`` (without one)."""
    definition = draft_to_definition(draft, GatewaySettings())
    deployed = definition_to_draft(definition, draft["restApi"]["id"], previous=draft)
    return draft_to_openapi(
        deployed, stage="prod", kind=kind, extensions={"apigateway"}, region=REGION, account=ACCOUNT
    )


@pytest.mark.parametrize("kind", ["oas30", "swagger"])
def test_import_then_export_round_trip_in_process(admin: AdminHandle, tmp_path: Path, kind: str) -> None:
    apigw = admin.boto3()
    source = OAS3 if kind == "oas30" else swagger_of(OAS3)
    path = tmp_path / "api.yaml"
    path.write_text(yaml.safe_dump(source))
    imported = admin.aws("import-rest-api", "--body", f"fileb://{path}", "--fail-on-warnings")
    assert "warnings" not in imported
    draft = draft_of(admin, imported["id"])
    check_imported(draft)

    document = export_in_process(draft, kind)
    check_exported(document, kind)
    again = apigw.import_rest_api(body=json.dumps(document).encode(), failOnWarnings=True)
    assert validation_of(draft_of(admin, again["id"])) == validation_of(draft)
    # put-rest-api overwrite with the export gives the same objects again
    apigw.put_rest_api(restApiId=again["id"], mode="overwrite", body=json.dumps(document).encode())
    assert validation_of(draft_of(admin, again["id"])) == validation_of(draft)


def check_exported(document: dict[str, Any], kind: str) -> None:
    oas3 = kind == "oas30"
    prefix = "#/components/schemas/" if oas3 else "#/definitions/"
    schemas = document["components"]["schemas"] if oas3 else document["definitions"]
    assert set(schemas) == {"Empty", "Pet", "Owner", "PutOwnersBody"}  # Error: default, unused
    assert schemas["Owner"]["properties"]["pets"]["items"] == {"$ref": prefix + "Pet"}
    assert document["x-amazon-apigateway-request-validators"] == {
        "all": {"validateRequestBody": True, "validateRequestParameters": True},
        "params-only": {"validateRequestBody": False, "validateRequestParameters": True},
    }
    assert document["x-amazon-apigateway-gateway-responses"]["BAD_REQUEST_BODY"]["statusCode"] == "422"
    post = document["paths"]["/pets"]["post"]
    assert post["x-amazon-apigateway-request-validator"] == "all"
    if oas3:
        assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": prefix + "Pet"}
    else:
        body = next(p for p in post["parameters"] if p["in"] == "body")
        assert body["schema"] == {"$ref": prefix + "Pet"}
        assert post["consumes"] == ["application/json"]
    get = document["paths"]["/pets"]["get"]
    assert {(p["name"], p["in"], p["required"]) for p in get["parameters"]} == {
        ("limit", "query", True),
        ("x-token", "header", True),
    }
    options = document["paths"]["/pets"]["options"]
    assert set(options["responses"]["200"]["headers"]) == {
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Methods",
        "Access-Control-Allow-Headers",
    }
    assert options["x-amazon-apigateway-integration"]["responses"] == {
        "default": {"statusCode": "200", "responseParameters": CORS_HEADERS}
    }


@pytest.mark.parametrize("kind", ["oas30", "swagger"])
def test_deploy_then_get_export_round_trip(admin: AdminHandle, tmp_path: Path, kind: str) -> None:
    """The same through a real deployment and get-export (needs the configuration readers)."""
    apigw = admin.boto3()
    api_id = apigw.import_rest_api(body=json.dumps(OAS3).encode(), failOnWarnings=True)["id"]
    draft = draft_of(admin, api_id)
    apigw.create_deployment(restApiId=api_id, stageName="prod")
    out = tmp_path / "export.yaml"
    admin.aws(
        "get-export",
        "--rest-api-id",
        api_id,
        "--stage-name",
        "prod",
        "--export-type",
        kind,
        "--parameters",
        "extensions=apigateway",
        "--accepts",
        "application/yaml",
        str(out),
        parse=False,
    )
    document = yaml.safe_load(out.read_text())
    check_exported(document, kind)
    again = apigw.import_rest_api(body=out.read_bytes(), failOnWarnings=True)
    assert validation_of(draft_of(admin, again["id"])) == validation_of(draft)


def test_served_config_of_a_deployment(admin: AdminHandle) -> None:
    """A deployment's definition is what the gateway serves: it passes the gateway's own loader,
    with the gateway responses, models and validators of the API (needs the readers)."""
    apigw = admin.boto3()
    api_id = apigw.import_rest_api(body=json.dumps(OAS3).encode())["id"]
    deployment = apigw.create_deployment(restApiId=api_id, stageName="prod")["id"]
    with admin.store.transaction() as tx:
        stored = tx.get("deployment", api_id, deployment)
    assert stored is not None
    definition = stored["definition"]
    served = {**definition, "deployment": deployment, "stages": {"prod": {}}}
    config, diagnostics = parse_config(json.dumps({"gateway": {"account_id": ACCOUNT}, "apis": [served]}))
    assert config is not None, [d.render() for d in diagnostics]
    api = config.apis[0]
    assert api.gateway_responses["BAD_REQUEST_BODY"].status_code == 422
    assert api.gateway_responses["DEFAULT_4XX"].response_parameters == (
        ("gatewayresponse.header.Access-Control-Allow-Origin", "'https://app.example.com'"),
    )
    assert set(api.models) == {"Empty", "Pet", "Owner", "PutOwnersBody"}
    assert api.request_validators["all"].validate_request_body is True
    post = next(r for r in api.routes if (r.path, r.method) == ("/pets", "POST"))
    assert post.request_validator == "all"
    assert post.request_models == (("application/json", "Pet"),)
    get = next(r for r in api.routes if (r.path, r.method) == ("/pets", "GET"))
    assert dict(get.request_parameters) == {
        "method.request.querystring.limit": True,
        "method.request.header.x-token": True,
    }


def bad(admin: AdminHandle, document: dict[str, Any]) -> str:
    before = {api["id"] for api in admin.boto3().get_rest_apis()["items"]}
    with pytest.raises(ClientError) as exc:
        admin.boto3().import_rest_api(body=json.dumps(document).encode())
    err = exc.value.response["Error"]
    assert err["Code"] == "BadRequestException"
    assert {api["id"] for api in admin.boto3().get_rest_apis()["items"]} == before  # nothing stored
    return str(err["Message"])


def test_refusals_name_their_place(admin: AdminHandle) -> None:
    doc = json.loads(json.dumps(OAS3))
    doc["x-amazon-apigateway-gateway-responses"]["NOT_A_TYPE"] = {"statusCode": 400}
    assert "/x-amazon-apigateway-gateway-responses/NOT_A_TYPE" in bad(admin, doc)

    doc = json.loads(json.dumps(OAS3))
    doc["x-amazon-apigateway-gateway-responses"]["DEFAULT_4XX"]["responseParameters"] = {"x": "'y'"}
    message = bad(admin, doc)
    assert "/x-amazon-apigateway-gateway-responses/DEFAULT_4XX" in message
    assert "Invalid mapping expression specified" in message

    doc = json.loads(json.dumps(OAS3))
    doc["paths"]["/pets"]["post"]["x-amazon-apigateway-request-validator"] = "nope"
    assert "/paths/~1pets/post/x-amazon-apigateway-request-validator" in bad(admin, doc)

    doc = json.loads(json.dumps(OAS3))
    doc["x-amazon-apigateway-request-validator"] = "nope"
    assert "request validator 'nope' is not defined" in bad(admin, doc)

    doc = json.loads(json.dumps(OAS3))
    doc["components"]["schemas"]["Pet"]["properties"]["age"]["minimum"] = "zero"
    message = bad(admin, doc)
    assert "/components/schemas/Pet" in message
    assert "Invalid model schema specified: at '/properties/age/minimum'" in message

    doc = json.loads(json.dumps(OAS3))
    doc["components"]["schemas"]["Pet-Item"] = {"type": "object"}
    assert "model names are alphanumeric" in bad(admin, doc)

    doc = json.loads(json.dumps(OAS3))
    doc["paths"]["/pets"]["post"]["requestBody"]["content"]["application/json"]["schema"] = {
        "$ref": "#/components/schemas/Cat"
    }
    assert "'#/components/schemas/Cat' does not name a schema" in bad(admin, doc)


def test_put_rest_api_merge_and_overwrite(admin: AdminHandle) -> None:
    apigw = admin.boto3()
    api_id = apigw.create_rest_api(name="m")["id"]
    apigw.update_model(
        restApiId=api_id,
        modelName="Empty",
        patchOperations=[
            {"op": "replace", "path": "/schema", "value": '{"type": "object", "title": "mine"}'}
        ],
    )
    apigw.create_request_validator(restApiId=api_id, name="old")
    apigw.put_gateway_response(restApiId=api_id, responseType="THROTTLED", statusCode="503")
    ids = {m["name"]: m["id"] for m in apigw.get_models(restApiId=api_id)["items"]}
    apigw.put_rest_api(restApiId=api_id, mode="merge", body=json.dumps(OAS3).encode())
    draft = draft_of(admin, api_id)
    got = validation_of(draft)
    assert set(got["validators"]) == {"old", "all", "params-only"}
    assert set(got["gateway_responses"]) == {"THROTTLED", "BAD_REQUEST_BODY", "DEFAULT_4XX", "DEFAULT_5XX"}
    models = {m["name"]: m for m in draft["models"].values()}
    assert models["Empty"]["id"] == ids["Empty"]  # replaced by name, its id kept
    assert json.loads(models["Empty"]["schema"]) == {"title": "Empty Schema", "type": "object"}

    plain = {"openapi": "3.0.1", "info": {"title": "plain"}, "paths": {"/x": {"get": {}}}}
    apigw.update_model(
        restApiId=api_id,
        modelName="Empty",
        patchOperations=[
            {"op": "replace", "path": "/schema", "value": '{"type": "object", "title": "mine"}'}
        ],
    )
    apigw.put_rest_api(restApiId=api_id, mode="overwrite", body=json.dumps(plain).encode())
    draft = draft_of(admin, api_id)
    assert draft["requestValidators"] == {}
    assert draft["gatewayResponses"] == {}
    # only API Gateway's own models stay; Empty, changed, comes back as the default
    models = {m["name"]: m for m in draft["models"].values()}
    assert sorted(models) == ["Empty", "Error"]
    assert json.loads(models["Empty"]["schema"])["title"] == "Empty Schema"
    assert models["Error"]["id"] == ids["Error"]
