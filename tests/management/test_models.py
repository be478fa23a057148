"""Models, request validators and the methods that use them, through the real boto3 and AWS CLI
on SQLite and PostgreSQL: CRUD, AWS's default models, schemas checked when saved (located
errors), references between models, refusals that leave the store as it was, and what a
deployment snapshots."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from iamgate.config.model import GatewaySettings
from iamgate.management.convert import definition_to_draft, draft_to_definition

from .conftest import AdminHandle, draft_of
from .conftest import client_error as error

PET = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
}


@pytest.fixture
def admin(admin_on_each_store: AdminHandle) -> AdminHandle:
    """The management API over a SQLite store, then over a PostgreSQL one."""
    return admin_on_each_store


def body(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def api_with_post(apigw: Any) -> tuple[str, str]:
    api_id = apigw.create_rest_api(name="models")["id"]
    root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]
    pets = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="pets")["id"]
    return api_id, pets


def test_every_new_api_has_empty_and_error(admin: AdminHandle) -> None:
    apigw = admin.boto3()
    api_id = apigw.create_rest_api(name="m")["id"]
    models = apigw.get_models(restApiId=api_id)["items"]
    assert [(m["name"], m["contentType"], m["description"]) for m in models] == [
        ("Empty", "application/json", "This is a default empty schema model"),
        ("Error", "application/json", "This is a default error schema model"),
    ]
    assert json.loads(models[0]["schema"]) == {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "Empty Schema",
        "type": "object",
    }
    assert json.loads(models[1]["schema"])["properties"] == {"message": {"type": "string"}}
    assert all(len(m["id"]) == 6 for m in models)
    assert admin.aws("get-model", "--rest-api-id", api_id, "--model-name", "Error")["name"] == "Error"


def test_model_crud_and_schema_checks(admin: AdminHandle) -> None:
    apigw = admin.boto3()
    api_id = apigw.create_rest_api(name="m")["id"]
    created = apigw.create_model(
        restApiId=api_id,
        name="Pet",
        contentType="application/json",
        description="a pet",
        schema=json.dumps(PET),
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert body(created) == {
        "id": created["id"],
        "name": "Pet",
        "description": "a pet",
        "schema": json.dumps(PET),
        "contentType": "application/json",
    }
    assert body(apigw.get_model(restApiId=api_id, modelName="Pet")) == body(created)
    # a model may refer to another of the same API by API Gateway's URL
    url = f"https://apigateway.amazonaws.com/restapis/{api_id}/models/Pet"
    owner = {"type": "object", "properties": {"pets": {"type": "array", "items": {"$ref": url}}}}
    admin.aws(
        "create-model",
        "--rest-api-id",
        api_id,
        "--name",
        "Owner",
        "--content-type",
        "application/json",
        "--schema",
        json.dumps(owner),
    )
    assert [m["name"] for m in apigw.get_models(restApiId=api_id)["items"]] == [
        "Empty",
        "Error",
        "Owner",
        "Pet",
    ]

    changed = apigw.update_model(
        restApiId=api_id,
        modelName="Pet",
        patchOperations=[
            {"op": "replace", "path": "/description", "value": "a pet, again"},
            {"op": "replace", "path": "/schema", "value": json.dumps({**PET, "required": ["name", "age"]})},
        ],
    )
    assert changed["description"] == "a pet, again"
    assert json.loads(changed["schema"])["required"] == ["name", "age"]

    before = draft_of(admin, api_id)
    refused = [
        (
            lambda: apigw.create_model(restApiId=api_id, name="Pet", contentType="application/json"),
            "ConflictException",
            "Model name already exists for this REST API",
        ),
        (
            lambda: apigw.create_model(restApiId=api_id, name="bad-name", contentType="application/json"),
            "BadRequestException",
            "Model names must be alphanumeric",
        ),
        (
            lambda: apigw.create_model(
                restApiId=api_id, name="X", contentType="application/json", schema="{not json"
            ),
            "BadRequestException",
            "Invalid model schema specified: the schema is not valid JSON",
        ),
        (
            lambda: apigw.create_model(
                restApiId=api_id, name="X", contentType="application/json", schema="[1]"
            ),
            "BadRequestException",
            "the schema must be a JSON object, not list",
        ),
        (
            lambda: apigw.create_model(
                restApiId=api_id,
                name="X",
                contentType="application/json",
                schema=json.dumps({"type": "object", "properties": {"a": {"type": "strin"}}}),
            ),
            "BadRequestException",
            "Invalid model schema specified: at '/properties/a/type': not a valid JSON Schema (draft 4)",
        ),
        (
            lambda: apigw.create_model(
                restApiId=api_id,
                name="X",
                contentType="application/json",
                schema=json.dumps({"properties": {"a": {"minimum": "zero"}}}),
            ),
            "BadRequestException",
            "at '/properties/a/minimum'",
        ),
        (
            lambda: apigw.create_model(
                restApiId=api_id,
                name="X",
                contentType="application/json",
                schema=json.dumps({"properties": {"a": {"$ref": "#/definitions/Nope"}}}),
            ),
            "BadRequestException",
            "at '/properties/a/$ref': $ref '#/definitions/Nope' names nothing in this schema",
        ),
        (
            lambda: apigw.create_model(
                restApiId=api_id,
                name="X",
                contentType="application/json",
                schema=json.dumps({"$ref": "https://example.com/schema.json"}),
            ),
            "BadRequestException",
            "is neither a part of this schema ('#/...') nor a model of this API",
        ),
        (
            lambda: apigw.create_model(
                restApiId=api_id,
                name="X",
                contentType="application/json",
                schema=json.dumps({"$ref": url.replace("/Pet", "/Cat")}),
            ),
            "BadRequestException",
            "names model 'Cat', which is not defined",
        ),
        (
            lambda: apigw.update_model(
                restApiId=api_id,
                modelName="Pet",
                patchOperations=[{"op": "replace", "path": "/schema", "value": '{"type": 5}'}],
            ),
            "BadRequestException",
            "at '/type'",
        ),
        (
            lambda: apigw.update_model(
                restApiId=api_id,
                modelName="Pet",
                patchOperations=[{"op": "replace", "path": "/name", "value": "Cat"}],
            ),
            "BadRequestException",
            "Invalid patch path  '/name' specified for op 'replace'. Must be one of: [/schema, /description]",
        ),
        (
            lambda: apigw.get_model(restApiId=api_id, modelName="Cat"),
            "NotFoundException",
            "Invalid model name specified: Cat",
        ),
        (
            lambda: apigw.delete_model(restApiId=api_id, modelName="Pet"),
            "ConflictException",
            "Cannot delete model 'Pet', is referenced in model: Owner",
        ),
    ]
    for call, code, message in refused:
        with pytest.raises(ClientError) as exc:
            call()
        got = error(exc)
        assert got[0] == code, got
        assert message in got[1], got
    assert draft_of(admin, api_id) == before

    apigw.delete_model(restApiId=api_id, modelName="Owner")
    deleted = apigw.delete_model(restApiId=api_id, modelName="Pet")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert [m["name"] for m in apigw.get_models(restApiId=api_id)["items"]] == ["Empty", "Error"]


def test_request_validators_crud(admin: AdminHandle) -> None:
    apigw = admin.boto3()
    api_id = apigw.create_rest_api(name="v")["id"]
    both = apigw.create_request_validator(
        restApiId=api_id, name="body-and-params", validateRequestBody=True, validateRequestParameters=True
    )
    assert both["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert body(both) == {
        "id": both["id"],
        "name": "body-and-params",
        "validateRequestBody": True,
        "validateRequestParameters": True,
    }
    params = admin.aws(
        "create-request-validator",
        "--rest-api-id",
        api_id,
        "--name",
        "params-only",
        "--validate-request-parameters",
    )
    assert (params["validateRequestBody"], params["validateRequestParameters"]) == (False, True)
    listed = apigw.get_request_validators(restApiId=api_id)["items"]
    assert sorted(v["name"] for v in listed) == ["body-and-params", "params-only"]
    updated = apigw.update_request_validator(
        restApiId=api_id,
        requestValidatorId=params["id"],
        patchOperations=[
            {"op": "replace", "path": "/name", "value": "body-only"},
            {"op": "replace", "path": "/validateRequestBody", "value": "true"},
            {"op": "replace", "path": "/validateRequestParameters", "value": "false"},
        ],
    )
    assert body(updated) == {
        "id": params["id"],
        "name": "body-only",
        "validateRequestBody": True,
        "validateRequestParameters": False,
    }
    assert body(apigw.get_request_validator(restApiId=api_id, requestValidatorId=params["id"])) == body(
        updated
    )
    before = draft_of(admin, api_id)
    refused = [
        (
            lambda: apigw.create_request_validator(restApiId=api_id, name="body-only"),
            "ConflictException",
            "already exists",
        ),
        (
            lambda: apigw.create_request_validator(restApiId=api_id),
            "BadRequestException",
            "Invalid request validator name",
        ),
        (
            lambda: apigw.update_request_validator(
                restApiId=api_id,
                requestValidatorId=params["id"],
                patchOperations=[{"op": "replace", "path": "/validateRequestBody", "value": "maybe"}],
            ),
            "BadRequestException",
            "true or false",
        ),
        (
            lambda: apigw.update_request_validator(
                restApiId=api_id,
                requestValidatorId=params["id"],
                patchOperations=[{"op": "replace", "path": "/id", "value": "x"}],
            ),
            "BadRequestException",
            "Must be one of: [/name, /validateRequestBody, /validateRequestParameters]",
        ),
        (
            lambda: apigw.get_request_validator(restApiId=api_id, requestValidatorId="nope"),
            "NotFoundException",
            "Invalid Request Validator identifier specified",
        ),
    ]
    for call, code, message in refused:
        with pytest.raises(ClientError) as exc:
            call()
        got = error(exc)
        assert got[0] == code, got
        assert message in got[1], got
    assert draft_of(admin, api_id) == before
    assert (
        apigw.delete_request_validator(restApiId=api_id, requestValidatorId=params["id"])["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 202
    )
    assert [v["name"] for v in apigw.get_request_validators(restApiId=api_id)["items"]] == ["body-and-params"]


def test_methods_use_validators_models_and_parameters(admin: AdminHandle) -> None:
    apigw = admin.boto3()
    api_id, pets = api_with_post(apigw)
    apigw.create_model(restApiId=api_id, name="Pet", contentType="application/json", schema=json.dumps(PET))
    validator = apigw.create_request_validator(
        restApiId=api_id, name="all", validateRequestBody=True, validateRequestParameters=True
    )["id"]
    put = apigw.put_method(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="POST",
        authorizationType="NONE",
        requestValidatorId=validator,
        requestModels={"application/json": "Pet"},
        requestParameters={"method.request.querystring.limit": True, "method.request.header.x-token": False},
    )
    expected = {
        "requestValidatorId": validator,
        "requestModels": {"application/json": "Pet"},
        "requestParameters": {
            "method.request.querystring.limit": True,
            "method.request.header.x-token": False,
        },
    }
    assert {k: put[k] for k in expected} == expected
    got = apigw.get_method(restApiId=api_id, resourceId=pets, httpMethod="POST")
    assert {k: got[k] for k in expected} == expected
    # the AWS CLI's put-method flags
    cli = admin.aws(
        "put-method",
        "--rest-api-id",
        api_id,
        "--resource-id",
        pets,
        "--http-method",
        "PUT",
        "--authorization-type",
        "NONE",
        "--request-validator-id",
        validator,
        "--request-models",
        "application/json=Pet",
        "--request-parameters",
        "method.request.header.x-token=true",
    )
    assert (cli["requestValidatorId"], cli["requestModels"]) == (validator, {"application/json": "Pet"})

    updated = apigw.update_method(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="POST",
        patchOperations=[
            {"op": "add", "path": "/requestModels/text~1plain", "value": "Empty"},
            {"op": "remove", "path": "/requestModels/application~1json"},
            {"op": "add", "path": "/requestParameters/method.request.path.nope", "value": "false"},
            {"op": "remove", "path": "/requestParameters/method.request.path.nope"},
            {"op": "replace", "path": "/requestParameters/method.request.header.x-token", "value": "true"},
            {"op": "replace", "path": "/requestValidatorId", "value": ""},
        ],
    )
    assert updated["requestModels"] == {"text/plain": "Empty"}
    assert "requestValidatorId" not in updated
    assert updated["requestParameters"]["method.request.header.x-token"] is True

    before = draft_of(admin, api_id)
    refused = [
        (
            {"requestValidatorId": "nope"},
            "BadRequestException",
            "Invalid Request Validator identifier specified",
        ),
        (
            {"requestModels": {"application/json": "Cat"}},
            "BadRequestException",
            "Invalid model identifier specified: Cat",
        ),
        ({"requestModels": {"json": "Pet"}}, "BadRequestException", "Invalid content type specified"),
        (
            {"requestParameters": {"method.request.body.x": True}},
            "BadRequestException",
            "Invalid method request parameter",
        ),
    ]
    for kwargs, code, message in refused:
        with pytest.raises(ClientError) as exc:
            apigw.put_method(
                restApiId=api_id, resourceId=pets, httpMethod="GET", authorizationType="NONE", **kwargs
            )
        got = error(exc)
        assert (got[0], got[2]) == (code, 400), got
        assert message in got[1], got
    with pytest.raises(ClientError) as exc:
        apigw.update_method(
            restApiId=api_id,
            resourceId=pets,
            httpMethod="POST",
            patchOperations=[{"op": "replace", "path": "/requestValidatorId", "value": "nope"}],
        )
    assert error(exc)[1] == "Invalid Request Validator identifier specified"
    # in use: neither the model nor the validator can go
    with pytest.raises(ClientError) as exc:
        apigw.delete_model(restApiId=api_id, modelName="Pet")
    assert error(exc)[:2] == (
        "ConflictException",
        "Cannot delete model 'Pet', is referenced in method request: /pets/PUT",
    )
    with pytest.raises(ClientError) as exc:
        apigw.delete_model(restApiId=api_id, modelName="Empty")
    assert error(exc)[:2] == (
        "ConflictException",
        "Cannot delete model 'Empty', is referenced in method request: /pets/POST",
    )
    with pytest.raises(ClientError) as exc:
        apigw.delete_request_validator(restApiId=api_id, requestValidatorId=validator)
    assert error(exc)[:2] == (
        "ConflictException",
        "Cannot delete request validator 'all', is referenced in method: /pets/PUT",
    )
    assert draft_of(admin, api_id) == before


def test_a_deployment_snapshots_them_by_name(admin: AdminHandle) -> None:
    """What CreateDeployment stores: the YAML shape of issue 17 (validator and model by name)."""
    apigw = admin.boto3()
    api_id, pets = api_with_post(apigw)
    apigw.create_model(
        restApiId=api_id,
        name="Pet",
        contentType="application/json",
        description="a pet",
        schema=json.dumps(PET),
    )
    validator = apigw.create_request_validator(
        restApiId=api_id, name="all", validateRequestBody=True, validateRequestParameters=True
    )["id"]
    apigw.create_request_validator(restApiId=api_id, name="unused")
    apigw.put_method(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="POST",
        authorizationType="NONE",
        requestValidatorId=validator,
        requestModels={"application/json": "Pet"},
        requestParameters={"method.request.querystring.limit": True},
    )
    apigw.put_integration(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="POST",
        type="MOCK",
        requestTemplates={"application/json": '{"statusCode": 200}'},
    )
    apigw.put_gateway_response(
        restApiId=api_id,
        responseType="BAD_REQUEST_BODY",
        statusCode="422",
        responseParameters={"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"},
        responseTemplates={"application/json": '{"message": "$context.error.validationErrorString"}'},
    )
    draft = draft_of(admin, api_id)
    definition = draft_to_definition(draft, GatewaySettings())
    assert definition["gateway_responses"] == {
        "BAD_REQUEST_BODY": {
            "status_code": 422,
            "response_parameters": {"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"},
            "response_templates": {"application/json": '{"message": "$context.error.validationErrorString"}'},
        }
    }
    assert definition["models"] == {
        "Pet": {"schema": json.dumps(PET), "description": "a pet"}
    }  # Empty, Error unused
    assert definition["request_validators"] == {
        "all": {"validate_request_body": True, "validate_request_parameters": True},
        "unused": {},
    }
    route = definition["routes"][0]
    assert route["request_validator"] == "all"
    assert route["request_models"] == {"application/json": "Pet"}
    assert route["request_parameters"] == {"method.request.querystring.limit": True}
    # and back: the same draft objects, ids kept by name
    again = definition_to_draft(definition, api_id, previous=draft)
    assert again["gatewayResponses"] == draft["gatewayResponses"]
    assert {m["name"]: m for m in again["models"].values()} == {
        m["name"]: m for m in draft["models"].values()
    }
    assert again["requestValidators"] == draft["requestValidators"]
    method = next(r for r in again["resources"].values() if r["path"] == "/pets")["resourceMethods"]["POST"]
    assert {k: method[k] for k in ("requestValidatorId", "requestModels", "requestParameters")} == {
        "requestValidatorId": validator,
        "requestModels": {"application/json": "Pet"},
        "requestParameters": {"method.request.querystring.limit": True},
    }
    assert draft_to_definition(again, GatewaySettings()) == definition


def test_a_configuration_files_models_become_a_draft_and_back() -> None:
    """``iamgate apply``'s way in: a schema written as a YAML mapping is stored as JSON text (as the
    configuration reader holds it), API Gateway's default models are added, and the definition
    written back keeps the text."""
    definition = {
        "id": "a1b2c3d4e5",
        "name": "file",
        "models": {
            "Pet": {"schema": {"type": "object", "example": {"$ref": "not a reference"}}},
            "Owner": {
                "schema": '{"type": "object"}',
                "content_type": "application/x-owner",
                "description": "o",
            },
        },
        "request_validators": {"body": {"validate_request_body": True}},
        "routes": [
            {
                "path": "/pets/{id}",
                "method": "POST",
                "integration": {"type": "HTTP_PROXY", "uri": "http://127.0.0.1:9000/pets/{id}"},
                "request_validator": "body",
                "request_models": {"application/json": "Pet", "$default": "Empty"},
                "request_parameters": {"method.request.querystring.q": False},
            }
        ],
    }
    draft = definition_to_draft(definition, "a1b2c3d4e5")
    models = {m["name"]: m for m in draft["models"].values()}
    assert sorted(models) == ["Empty", "Error", "Owner", "Pet"]
    assert models["Pet"]["schema"] == '{"type": "object", "example": {"$ref": "not a reference"}}'
    assert (models["Owner"]["contentType"], models["Owner"]["description"]) == ("application/x-owner", "o")
    method = next(r for r in draft["resources"].values() if r["path"] == "/pets/{id}")["resourceMethods"][
        "POST"
    ]
    assert method["requestParameters"] == {
        "method.request.path.id": True,
        "method.request.querystring.q": False,
    }
    again = draft_to_definition(draft, GatewaySettings())
    assert again["models"] == {
        "Empty": {"schema": models["Empty"]["schema"], "description": "This is a default empty schema model"},
        "Owner": {"schema": '{"type": "object"}', "content_type": "application/x-owner", "description": "o"},
        "Pet": {"schema": '{"type": "object", "example": {"$ref": "not a reference"}}'},
    }  # Empty: a route uses it; Error: unused, left out
    assert again["request_validators"] == {"body": {"validate_request_body": True}}
    assert again["routes"][0]["request_parameters"] == {"method.request.querystring.q": False}
    assert again["routes"][0]["request_models"] == {"$default": "Empty", "application/json": "Pet"}
    # a path parameter the file declares itself comes back when the uri does not use it (the
    # ones the uri uses are declared again by reading the definition back)
    route = definition["routes"][0]
    route["path"] = "/pets/{id}/{tag}"
    route["request_parameters"] = {"method.request.path.tag": True, "method.request.querystring.q": False}
    draft = definition_to_draft(definition, "a1b2c3d4e5", previous=draft)
    assert draft_to_definition(draft, GatewaySettings())["routes"][0]["request_parameters"] == {
        "method.request.path.tag": True,
        "method.request.querystring.q": False,
    }


def test_a_draft_from_before_models_gets_the_default_models(admin: AdminHandle) -> None:
    """A draft an earlier iamgate stored has no models: it shows API Gateway's two, with the same
    ids on every read, and methods may use them."""
    apigw = admin.boto3()
    api_id, pets = api_with_post(apigw)
    with admin.store.transaction() as tx:
        draft = tx.get("restapi", "", api_id)
        assert draft is not None
        for key in ("models", "requestValidators", "gatewayResponses"):
            del draft[key]
        tx.put("restapi", "", api_id, draft)
    first = apigw.get_models(restApiId=api_id)["items"]
    assert [m["name"] for m in first] == ["Empty", "Error"]
    assert apigw.get_models(restApiId=api_id)["items"] == first
    assert len(apigw.get_gateway_responses(restApiId=api_id)["items"]) == 21
    assert apigw.get_request_validators(restApiId=api_id)["items"] == []
    apigw.put_method(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="POST",
        authorizationType="NONE",
        requestModels={"application/json": "Empty"},
    )
    assert {m["name"]: m["id"] for m in draft_of(admin, api_id)["models"].values()} == {
        m["name"]: m["id"] for m in first
    }


def test_test_invoke_method_takes_the_methods_validation_only(admin: AdminHandle) -> None:
    """test-invoke-method runs one method: the API's other models and validators do not come
    along (so an unvalidated method runs whatever the rest of the API holds), the method's own do
    (its request is validated, which needs the configuration reader of request validation)."""
    apigw = admin.boto3()
    api_id, pets = api_with_post(apigw)
    apigw.create_model(restApiId=api_id, name="Pet", contentType="application/json", schema=json.dumps(PET))
    validator = apigw.create_request_validator(restApiId=api_id, name="body", validateRequestBody=True)["id"]
    for verb, extra in (
        ("GET", {}),
        ("POST", {"requestValidatorId": validator, "requestModels": {"application/json": "Pet"}}),
    ):
        apigw.put_method(
            restApiId=api_id, resourceId=pets, httpMethod=verb, authorizationType="NONE", **extra
        )
        apigw.put_integration(
            restApiId=api_id,
            resourceId=pets,
            httpMethod=verb,
            type="MOCK",
            requestTemplates={"application/json": '{"statusCode": 200}'},
        )
        apigw.put_integration_response(
            restApiId=api_id,
            resourceId=pets,
            httpMethod=verb,
            statusCode="200",
            responseTemplates={"application/json": "ok"},
        )
    plain = apigw.test_invoke_method(restApiId=api_id, resourceId=pets, httpMethod="GET")
    assert (plain["status"], plain["body"]) == (200, "ok")

    headers = {"Content-Type": "application/json"}
    bad = apigw.test_invoke_method(
        restApiId=api_id, resourceId=pets, httpMethod="POST", body='{"age": 1}', headers=headers
    )
    assert (bad["status"], json.loads(bad["body"])) == (400, {"message": "Invalid request body"})
    good = apigw.test_invoke_method(
        restApiId=api_id, resourceId=pets, httpMethod="POST", body='{"name": "rex"}', headers=headers
    )
    assert (good["status"], good["body"]) == (200, "ok")
