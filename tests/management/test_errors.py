"""Bad input of every kind gets API Gateway's error shape (status, x-amzn-ErrorType, message),
read back through botocore as ``ClientError`` codes; and who may call is decided by SigV4 and
the caller's identity policies."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import (
    ACCOUNT,
    ADMIN,
    NOBODY,
    READER,
    AdminHandle,
    Credentials,
    gateway_config,
    serve_admin,
)
from .conftest import client_error as error


def api_with_method(apigw: Any) -> tuple[str, str]:
    api_id = apigw.create_rest_api(name="errors")["id"]
    root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]
    apigw.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    return api_id, root


def test_unknown_ids_are_not_found_with_aws_messages(admin_server: AdminHandle) -> None:
    apigw = admin_server.boto3()
    api_id, root = api_with_method(apigw)
    cases = [
        (lambda: apigw.get_rest_api(restApiId="nope"), f"Invalid API identifier specified {ACCOUNT}:nope"),
        (lambda: apigw.delete_rest_api(restApiId="nope"), f"Invalid API identifier specified {ACCOUNT}:nope"),
        (
            lambda: apigw.get_resource(restApiId=api_id, resourceId="nope"),
            "Invalid Resource identifier specified",
        ),
        (
            lambda: apigw.create_resource(restApiId=api_id, parentId="nope", pathPart="x"),
            "Invalid Resource identifier specified",
        ),
        (
            lambda: apigw.get_method(restApiId=api_id, resourceId=root, httpMethod="POST"),
            "Invalid Method identifier specified",
        ),
        (
            lambda: apigw.get_integration(restApiId=api_id, resourceId=root, httpMethod="GET"),
            "Invalid Integration identifier specified",
        ),
        (
            lambda: apigw.get_authorizer(restApiId=api_id, authorizerId="nope"),
            "Invalid Authorizer identifier specified",
        ),
        (
            lambda: apigw.get_deployment(restApiId=api_id, deploymentId="nope"),
            "Invalid Deployment identifier specified",
        ),
        (lambda: apigw.get_stage(restApiId=api_id, stageName="nope"), "Invalid Stage identifier specified"),
        (lambda: apigw.get_stages(restApiId="nope"), f"Invalid API identifier specified {ACCOUNT}:nope"),
    ]
    for call, message in cases:
        with pytest.raises(ClientError) as exc:
            call()
        assert error(exc) == ("NotFoundException", message, 404)
        assert exc.value.response["ResponseMetadata"]["RequestId"]  # x-amzn-RequestId on errors too


def test_invalid_policies_are_refused_with_their_location(admin_server: AdminHandle) -> None:
    apigw = admin_server.boto3()
    api_id = apigw.create_rest_api(name="p")["id"]
    text = (
        '{"Version": "2012-10-17",\n "Statement": [{"Effect": "Allw", "Principal": "*", '
        '"Action": "execute-api:Invoke", "Resource": "*"}]}'
    )
    with pytest.raises(ClientError) as exc:
        apigw.update_rest_api(
            restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": text}]
        )
    code, message, status = error(exc)
    assert (code, status) == ("BadRequestException", 400)
    assert message.startswith("Invalid policy document. Please check the policy syntax")
    assert "line 2, column 27" in message
    assert "/Statement/0/Effect" in message
    assert "Allw" in message
    # not JSON at all, at creation
    with pytest.raises(ClientError) as exc:
        apigw.create_rest_api(name="q", policy='{"Version": "2012-10-17", "Statement": [}')
    code, message, _ = error(exc)
    assert code == "BadRequestException"
    assert "line 1, column 41" in message
    # nothing was stored
    assert "policy" not in apigw.get_rest_api(restApiId=api_id)
    assert [a["name"] for a in apigw.get_rest_apis()["items"]] == ["p"]


def test_bad_patch_paths_and_values(admin_server: AdminHandle) -> None:
    apigw = admin_server.boto3()
    api_id, root = api_with_method(apigw)
    with pytest.raises(ClientError) as exc:
        apigw.update_rest_api(
            restApiId=api_id, patchOperations=[{"op": "replace", "path": "/nope", "value": "x"}]
        )
    code, message, _ = error(exc)
    assert code == "BadRequestException"
    assert message.startswith(
        "Invalid patch path  '/nope' specified for op 'replace'. Must be one of: [/name,"
    )
    with pytest.raises(ClientError) as exc:
        apigw.update_rest_api(
            restApiId=api_id, patchOperations=[{"op": "add", "path": "/name", "value": "x"}]
        )
    assert error(exc)[1] == "Invalid patch operation specified. Must be one of: [replace]"
    with pytest.raises(ClientError) as exc:
        apigw.update_method(
            restApiId=api_id,
            resourceId=root,
            httpMethod="GET",
            patchOperations=[{"op": "replace", "path": "/httpMethod", "value": "POST"}],
        )
    assert "Invalid patch path  '/httpMethod'" in error(exc)[1]
    with pytest.raises(ClientError) as exc:
        apigw.update_method(
            restApiId=api_id,
            resourceId=root,
            httpMethod="GET",
            patchOperations=[{"op": "replace", "path": "/apiKeyRequired", "value": "maybe"}],
        )
    assert error(exc)[1] == "Invalid value for /apiKeyRequired: 'maybe' (true or false)"
    with pytest.raises(ClientError) as exc:
        apigw.update_rest_api(
            restApiId=api_id,
            patchOperations=[
                {"op": "replace", "path": "/endpointConfiguration/types/EDGE", "value": "SPACE"}
            ],
        )
    assert "Invalid endpoint type 'SPACE'" in error(exc)[1]
    # a refused operation changes nothing, even after earlier ones that were fine
    with pytest.raises(ClientError):
        apigw.update_rest_api(
            restApiId=api_id,
            patchOperations=[
                {"op": "replace", "path": "/name", "value": "renamed"},
                {"op": "replace", "path": "/nope"},
            ],
        )
    assert apigw.get_rest_api(restApiId=api_id)["name"] == "errors"
    changed = apigw.update_rest_api(
        restApiId=api_id,
        patchOperations=[
            {"op": "replace", "path": "/endpointConfiguration/types/EDGE", "value": "REGIONAL"},
            {"op": "replace", "path": "/apiKeySource", "value": "AUTHORIZER"},
            {"op": "replace", "path": "/description", "value": "described"},
        ],
    )
    assert changed["endpointConfiguration"]["types"] == ["REGIONAL"]
    assert (changed["apiKeySource"], changed["description"]) == ("AUTHORIZER", "described")


def test_validation_of_resources_methods_and_integrations(admin_server: AdminHandle) -> None:
    apigw = admin_server.boto3()
    api_id, root = api_with_method(apigw)
    proxy = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="{proxy+}")["id"]
    refusals = [
        (
            lambda: apigw.create_resource(restApiId=api_id, parentId=proxy, pathPart="x"),
            "BadRequestException",
            "greedy path variable",
        ),
        (
            lambda: apigw.create_resource(restApiId=api_id, parentId=root, pathPart="{id}"),
            "BadRequestException",
            "only one is allowed",
        ),
        (
            lambda: apigw.create_resource(restApiId=api_id, parentId=root, pathPart="{proxy+}"),
            "ConflictException",
            "already has this name",
        ),
        (
            lambda: apigw.create_resource(restApiId=api_id, parentId=root, pathPart="a b"),
            "BadRequestException",
            "path part only allow",
        ),
        (
            lambda: apigw.put_method(
                restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE"
            ),
            "ConflictException",
            "Method already exists",
        ),
        (
            lambda: apigw.put_method(
                restApiId=api_id, resourceId=root, httpMethod="FETCH", authorizationType="NONE"
            ),
            "BadRequestException",
            "Invalid HttpMethod",
        ),
        (
            lambda: apigw.put_method(
                restApiId=api_id, resourceId=root, httpMethod="POST", authorizationType="CUSTOM"
            ),
            "BadRequestException",
            "requires a valid authorizer",
        ),
        (
            lambda: apigw.put_integration(
                restApiId=api_id,
                resourceId=root,
                httpMethod="GET",
                type="AWS_PROXY",
                integrationHttpMethod="POST",
                uri="arn:aws:apigateway:x",
            ),
            "BadRequestException",
            "iamgate supports integration types HTTP_PROXY and MOCK; AWS_PROXY is not supported",
        ),
        (
            lambda: apigw.put_integration(
                restApiId=api_id,
                resourceId=root,
                httpMethod="GET",
                type="HTTP_PROXY",
                integrationHttpMethod="GET",
                uri="ftp://x/",
            ),
            "BadRequestException",
            "is not an http:// or https:// URL",
        ),
        (
            lambda: apigw.put_integration(
                restApiId=api_id,
                resourceId=root,
                httpMethod="GET",
                type="HTTP_PROXY",
                integrationHttpMethod="GET",
                uri="http://x/{id}",
            ),
            "BadRequestException",
            "has no such path parameter",
        ),
        (
            lambda: apigw.create_authorizer(
                restApiId=api_id,
                name="l",
                type="TOKEN",
                authorizerUri="arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/f/invocations",
                identitySource="method.request.header.Authorization",
            ),
            "BadRequestException",
            "iamgate calls Lambda-style authorizers over HTTP",
        ),
    ]
    for call, code, text in refusals:
        with pytest.raises(ClientError) as exc:
            call()
        assert error(exc)[0] == code, text
        assert text in error(exc)[1]


def test_deployments_the_gateway_would_refuse_are_refused(admin_server: AdminHandle) -> None:
    apigw = admin_server.boto3()
    empty = apigw.create_rest_api(name="empty")["id"]
    with pytest.raises(ClientError) as exc:
        apigw.create_deployment(restApiId=empty, stageName="prod")
    assert error(exc)[:2] == ("BadRequestException", "The REST API doesn't contain any methods")
    api_id, root = api_with_method(apigw)
    with pytest.raises(ClientError) as exc:
        apigw.create_deployment(restApiId=api_id, stageName="prod")
    assert error(exc)[1] == "No integration defined for method: GET /"
    apigw.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
    apigw.update_rest_api(
        restApiId=api_id,
        patchOperations=[{"op": "replace", "path": "/endpointConfiguration/types/EDGE", "value": "PRIVATE"}],
    )
    with pytest.raises(ClientError) as exc:
        apigw.create_deployment(restApiId=api_id, stageName="prod")
    code, message, _ = error(exc)
    assert code == "BadRequestException"
    assert message.startswith("The API cannot be deployed: the API: a PRIVATE API needs a resource policy")
    with admin_server.store.transaction() as tx:
        assert tx.list("deployment") == []
        assert tx.list("stage") == []


def test_wrong_json_unknown_paths_and_methods(admin_server: AdminHandle) -> None:
    status, headers, body = admin_server.signed("POST", "/restapis", b'{"name": ')
    assert status == 400
    assert headers["x-amzn-errortype"] == "BadRequestException"
    assert json.loads(body)["message"].startswith("Invalid JSON in the request body")
    status, headers, body = admin_server.signed("POST", "/restapis", b'["name"]')
    assert (status, json.loads(body)["message"]) == (400, "The request body must be a JSON object")
    status, _, body = admin_server.signed("POST", "/restapis", b'{"name": 5}')
    assert status == 400
    assert "'name' must be a string" in json.loads(body)["message"]
    status, headers, body = admin_server.signed("GET", "/nothing/here")
    assert (status, headers["x-amzn-errortype"]) == (404, "NotFoundException")
    assert "No API Gateway management operation matches GET /nothing/here" in json.loads(body)["message"]
    status, headers, body = admin_server.signed("POST", "/restapis/abc/resources")
    assert (status, headers["x-amzn-errortype"], headers["allow"]) == (
        405,
        "MethodNotAllowedException",
        "GET",
    )
    assert "x-amzn-requestid" in headers


def test_unsigned_badly_signed_and_unknown_callers(admin_server: AdminHandle) -> None:
    status, headers, body = admin_server.request("GET", "/restapis")
    assert (status, headers["x-amzn-errortype"]) == (403, "MissingAuthenticationTokenException")
    assert json.loads(body) == {"message": "Missing Authentication Token"}
    forged = Credentials(ADMIN.access_key, "not-the-secret", ADMIN.arn)
    with pytest.raises(ClientError) as exc:
        admin_server.boto3(forged).get_rest_apis()
    code, message, status = error(exc)
    assert (code, status) == ("InvalidSignatureException", 403)
    assert message.startswith(
        "The request signature we calculated does not match the signature you provided."
    )
    stranger = Credentials("AKIAUNKNOWNKEY000001", "x", "")
    with pytest.raises(ClientError) as exc:
        admin_server.boto3(stranger).get_rest_apis()
    assert error(exc) == (
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
        403,
    )
    status, headers, _ = admin_server.request("GET", "/restapis", headers={"Authorization": "Bearer x"})
    assert (status, headers["x-amzn-errortype"]) == (403, "IncompleteSignatureException")
    done = admin_server.aws_run("get-rest-apis", credentials=forged)
    assert done.returncode != 0
    assert "InvalidSignatureException" in done.stderr


def test_identity_policies_decide(admin_server: AdminHandle) -> None:
    api_id = admin_server.boto3().create_rest_api(name="owned")["id"]
    reader = admin_server.boto3(READER)
    assert [a["id"] for a in reader.get_rest_apis()["items"]] == [api_id]
    with pytest.raises(ClientError) as exc:
        reader.create_rest_api(name="nope")
    assert error(exc) == (
        "AccessDeniedException",
        f"User: {READER.arn} is not authorized to perform: apigateway:POST on resource: "
        "arn:aws:apigateway:us-east-1::/restapis",
        403,
    )
    with pytest.raises(ClientError) as exc:
        admin_server.boto3(NOBODY).get_rest_api(restApiId=api_id)
    assert error(exc)[1] == (
        f"User: {NOBODY.arn} is not authorized to perform: apigateway:GET on resource: "
        f"arn:aws:apigateway:us-east-1::/restapis/{api_id}"
    )
    # authorization comes before lookup: an unauthorized caller learns nothing of what exists
    with pytest.raises(ClientError) as exc:
        admin_server.boto3(NOBODY).get_rest_api(restApiId="missing")
    assert error(exc)[0] == "AccessDeniedException"
    done = admin_server.aws_run("delete-rest-api", "--rest-api-id", api_id, credentials=READER)
    assert done.returncode != 0
    assert "AccessDeniedException" in done.stderr
    assert admin_server.boto3().get_rest_api(restApiId=api_id)["name"] == "owned"


def test_policy_changes_need_update_rest_api_policy(tmp_path: Path) -> None:
    editor = Credentials("AKIAIAMGATEEDITOR001", "editor-secret", f"arn:aws:iam::{ACCOUNT}:user/editor")
    users = f"""    - arn: {editor.arn}
      policies:
        - Version: "2012-10-17"
          Statement:
            - {{Effect: Allow, Action: "apigateway:*", Resource: "*"}}
            - {{Effect: Deny, Action: "apigateway:UpdateRestApiPolicy", Resource: "*"}}"""
    keys = f'    - {{id: {editor.access_key}, secret: "{editor.secret}", owner: {editor.arn}}}'
    with serve_admin(tmp_path, gateway_config(users=users, keys=keys)) as handle:
        apigw = handle.boto3(editor)
        api_id = apigw.create_rest_api(name="x")["id"]
        assert (
            apigw.update_rest_api(
                restApiId=api_id, patchOperations=[{"op": "replace", "path": "/name", "value": "y"}]
            )["name"]
            == "y"
        )
        with pytest.raises(ClientError) as exc:
            apigw.update_rest_api(restApiId=api_id, patchOperations=[{"op": "remove", "path": "/policy"}])
        assert error(exc)[1] == (
            f"User: {editor.arn} is not authorized to perform: apigateway:UpdateRestApiPolicy on resource: "
            f"arn:aws:apigateway:us-east-1::/restapis/{api_id} with an explicit deny"
        )
        with pytest.raises(ClientError) as exc:
            apigw.create_rest_api(name="z", policy='{"Version":"2012-10-17","Statement":[]}')
        assert error(exc)[0] == "AccessDeniedException"


def test_authentication_none_only_on_loopback(tmp_path: Path) -> None:
    with serve_admin(tmp_path, gateway_config(authentication="none")) as handle:
        status, _, body = handle.request("POST", "/restapis", b'{"name": "open"}')
        assert status == 201
        assert json.loads(body)["name"] == "open"
        handle.app.bound("192.0.2.10")  # as if the admin port listened on a public address
        status, headers, body = handle.request("GET", "/restapis")
        assert (status, headers["x-amzn-errortype"]) == (403, "AccessDeniedException")
        assert "allows only when the admin port listens on a loopback address" in json.loads(body)["message"]
        # turning authentication on (a reload) serves signed callers again
        handle.config = gateway_config()
        assert handle.boto3().get_rest_apis()["items"][0]["name"] == "open"
        disabled = gateway_config()
        handle.config = replace(disabled, management=replace(disabled.management, enabled=False))
        with pytest.raises(ClientError) as exc:
            handle.boto3().get_rest_apis()
        assert error(exc)[:2] == (
            "NotFoundException",
            "The management API is turned off (management.enabled: false)",
        )


@pytest.fixture
def on_each_store(admin_on_each_store: AdminHandle) -> AdminHandle:
    """The management API over a SQLite store, then over a PostgreSQL one."""
    return admin_on_each_store


def test_what_no_store_can_keep_is_refused_alike_on_every_store(on_each_store: AdminHandle) -> None:
    """NUL characters and non-finite numbers: 400 naming the place (PostgreSQL answered 503 for
    them, SQLite stored them), and nothing is written."""
    apigw = on_each_store.boto3()
    with pytest.raises(ClientError) as exc:
        apigw.create_rest_api(name="nul", description="a\x00b")
    code, message, status = error(exc)
    assert (code, status) == ("BadRequestException", 400)
    assert message == "Invalid request body: the string at '/description' contains a NUL character (\\u0000)"
    raw = [
        (b'{"name": "n", "minimumCompressionSize": NaN}', "NaN is not a JSON number"),
        (b'{"name": "n", "tags": {"a\\u0000": "x"}}', "a name in '/tags' contains a NUL character"),
    ]
    for body, expected in raw:
        status, headers, answer = on_each_store.signed("POST", "/restapis", body)
        assert (status, headers["x-amzn-errortype"]) == (400, "BadRequestException"), answer
        assert expected in json.loads(answer)["message"]
    api_id = apigw.create_rest_api(name="kept")["id"]
    with pytest.raises(ClientError) as exc:
        apigw.update_rest_api(
            restApiId=api_id, patchOperations=[{"op": "replace", "path": "/description", "value": "\x00"}]
        )
    assert error(exc)[2] == 400
    openapi = b'openapi: "3.0.1"\ninfo: {title: "t\\0", version: "1"}\npaths: {}\n'
    status, _, answer = on_each_store.signed("POST", "/restapis?mode=import", openapi)
    assert status == 400, answer
    message = json.loads(answer)["message"]  # valid YAML, located like any other problem of the text
    assert message.startswith("Invalid OpenAPI input:\n\tline 2, column 15: at '/info/title': ")
    assert "a NUL character (U+0000), which no store can keep" in message
    assert [(a["name"], a.get("description")) for a in apigw.get_rest_apis()["items"]] == [("kept", None)]
