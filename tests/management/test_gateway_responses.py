"""Gateway responses through the real boto3 and AWS CLI, on SQLite and PostgreSQL: the 21 types
listed as AWS lists them, customisation, patch operations, deletion back to the default, and
refusals that leave the store as it was."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from iamgate.pipeline.responses import RESPONSE_TYPES

from .conftest import READER, AdminHandle, draft_of
from .conftest import client_error as error

DEFAULT_TEMPLATE = {"application/json": '{"message":$context.error.messageString}'}


@pytest.fixture
def admin(admin_on_each_store: AdminHandle) -> AdminHandle:
    """The management API over a SQLite store, then over a PostgreSQL one."""
    return admin_on_each_store


def listed(apigw: Any, api_id: str) -> dict[str, dict[str, Any]]:
    items = apigw.get_gateway_responses(restApiId=api_id)["items"]
    return {item["responseType"]: item for item in items}


def test_a_new_api_lists_all_21_defaults_as_aws_does(admin: AdminHandle) -> None:
    apigw = admin.boto3()
    api_id = apigw.create_rest_api(name="gr")["id"]
    items = listed(apigw, api_id)
    assert sorted(items) == sorted(RESPONSE_TYPES)
    assert len(items) == 21
    assert items["ACCESS_DENIED"] == {
        "responseType": "ACCESS_DENIED",
        "statusCode": "403",
        "responseParameters": {},
        "responseTemplates": DEFAULT_TEMPLATE,
        "defaultResponse": True,
    }
    assert items["INTEGRATION_FAILURE"]["statusCode"] == "504"
    assert items["BAD_REQUEST_BODY"]["statusCode"] == "400"
    assert "statusCode" not in items["DEFAULT_4XX"]  # DEFAULT_4XX and DEFAULT_5XX have none
    assert "statusCode" not in items["DEFAULT_5XX"]
    assert all(item["defaultResponse"] for item in items.values())
    one = apigw.get_gateway_response(restApiId=api_id, responseType="THROTTLED")
    assert (one["statusCode"], one["defaultResponse"]) == ("429", True)
    # the AWS CLI reads the same list
    assert len(admin.aws("get-gateway-responses", "--rest-api-id", api_id)["items"]) == 21
    # paging as AWS pages
    first = apigw.get_gateway_responses(restApiId=api_id, limit=20)
    assert len(first["items"]) == 20
    rest = apigw.get_gateway_responses(restApiId=api_id, limit=20, position=first["position"])
    assert [i["responseType"] for i in rest["items"]] == ["WAF_FILTERED"]


def test_put_get_update_delete(admin: AdminHandle) -> None:
    apigw = admin.boto3()
    api_id = apigw.create_rest_api(name="gr")["id"]
    put = apigw.put_gateway_response(
        restApiId=api_id,
        responseType="ACCESS_DENIED",
        statusCode="404",
        responseParameters={
            "gatewayresponse.header.Access-Control-Allow-Origin": "'*'",
            "gatewayresponse.header.x-request": "method.request.header.x-request",
        },
        responseTemplates={"application/json": '{"denied": "$context.error.messageString"}'},
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 201
    expected = {
        "responseType": "ACCESS_DENIED",
        "statusCode": "404",
        "responseParameters": {
            "gatewayresponse.header.Access-Control-Allow-Origin": "'*'",
            "gatewayresponse.header.x-request": "method.request.header.x-request",
        },
        "responseTemplates": {"application/json": '{"denied": "$context.error.messageString"}'},
        "defaultResponse": False,
    }
    assert {k: v for k, v in put.items() if k != "ResponseMetadata"} == expected
    got = apigw.get_gateway_response(restApiId=api_id, responseType="ACCESS_DENIED")
    assert {k: v for k, v in got.items() if k != "ResponseMetadata"} == expected
    assert listed(apigw, api_id)["ACCESS_DENIED"]["defaultResponse"] is False
    assert draft_of(admin, api_id)["gatewayResponses"] == {
        "ACCESS_DENIED": {
            "statusCode": "404",
            "responseParameters": expected["responseParameters"],
            "responseTemplates": expected["responseTemplates"],
        }
    }

    updated = apigw.update_gateway_response(
        restApiId=api_id,
        responseType="ACCESS_DENIED",
        patchOperations=[
            {"op": "replace", "path": "/statusCode", "value": "403"},
            {"op": "remove", "path": "/responseParameters/gatewayresponse.header.x-request"},
            {
                "op": "add",
                "path": "/responseParameters/gatewayresponse.header.x-stage",
                "value": "stageVariables.s",
            },
            {"op": "replace", "path": "/responseTemplates/application~1json", "value": '{"m":"no"}'},
            {"op": "add", "path": "/responseTemplates/text~1plain", "value": "no"},
        ],
    )
    assert updated["statusCode"] == "403"
    assert updated["responseParameters"] == {
        "gatewayresponse.header.Access-Control-Allow-Origin": "'*'",
        "gatewayresponse.header.x-stage": "stageVariables.s",
    }
    assert updated["responseTemplates"] == {"application/json": '{"m":"no"}', "text/plain": "no"}

    # updating a default customises it, starting from what it shows
    default4xx = apigw.update_gateway_response(
        restApiId=api_id,
        responseType="DEFAULT_4XX",
        patchOperations=[
            {
                "op": "add",
                "path": "/responseParameters/gatewayresponse.header.Access-Control-Allow-Origin",
                "value": "'https://app.example.com'",
            }
        ],
    )
    assert default4xx["defaultResponse"] is False
    assert default4xx["responseTemplates"] == DEFAULT_TEMPLATE
    assert "statusCode" not in default4xx

    deleted = apigw.delete_gateway_response(restApiId=api_id, responseType="ACCESS_DENIED")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    back = apigw.get_gateway_response(restApiId=api_id, responseType="ACCESS_DENIED")
    assert (back["defaultResponse"], back["statusCode"], back["responseParameters"]) == (True, "403", {})
    assert sorted(draft_of(admin, api_id)["gatewayResponses"]) == ["DEFAULT_4XX"]


def test_aws_cli_put_and_update(admin: AdminHandle) -> None:
    api_id = admin.aws("create-rest-api", "--name", "cli")["id"]
    out = admin.aws(
        "put-gateway-response",
        "--rest-api-id",
        api_id,
        "--response-type",
        "MISSING_AUTHENTICATION_TOKEN",
        "--status-code",
        "404",
        "--response-parameters",
        json.dumps({"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"}),
    )
    assert out["statusCode"] == "404"
    assert out["defaultResponse"] is False
    out = admin.aws(
        "update-gateway-response",
        "--rest-api-id",
        api_id,
        "--response-type",
        "MISSING_AUTHENTICATION_TOKEN",
        "--patch-operations",
        "op=replace,path=/statusCode,value=410",
    )
    assert out["statusCode"] == "410"
    # docs/management.md's command: a JSON template, in the CLI's JSON form
    out = admin.aws(
        "update-gateway-response",
        "--rest-api-id",
        api_id,
        "--response-type",
        "BAD_REQUEST_BODY",
        "--patch-operations",
        '[{"op": "add", "path": "/responseTemplates/application~1json", '
        '"value": "{\\"message\\":\\"$context.error.validationErrorString\\"}"}]',
    )
    assert out["responseTemplates"] == {
        "application/json": '{"message":"$context.error.validationErrorString"}'
    }
    got = admin.aws(
        "get-gateway-response", "--rest-api-id", api_id, "--response-type", "MISSING_AUTHENTICATION_TOKEN"
    )
    assert got["responseParameters"] == {"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"}
    admin.aws(
        "delete-gateway-response", "--rest-api-id", api_id, "--response-type", "MISSING_AUTHENTICATION_TOKEN"
    )
    assert sorted(draft_of(admin, api_id)["gatewayResponses"]) == ["BAD_REQUEST_BODY"]


def test_refusals_leave_the_store_unchanged(admin: AdminHandle) -> None:
    apigw = admin.boto3()
    api_id = apigw.create_rest_api(name="gr")["id"]
    apigw.put_gateway_response(restApiId=api_id, responseType="THROTTLED", statusCode="429")
    before = draft_of(admin, api_id)
    bad_puts: list[tuple[dict[str, Any], str]] = [
        ({"responseType": "NOT_A_TYPE"}, "Value 'NOT_A_TYPE' at 'responseType' failed to satisfy constraint"),
        ({"responseType": "THROTTLED", "statusCode": "99"}, "Value '99' at 'statusCode'"),
        ({"responseType": "THROTTLED", "statusCode": "600"}, "[1-5]\\d\\d"),
        (
            {"responseType": "THROTTLED", "responseParameters": {"method.response.header.x": "'a'"}},
            "Invalid mapping expression specified",
        ),
        (
            {"responseType": "THROTTLED", "responseParameters": {"gatewayresponse.header.x": "unquoted"}},
            "'unquoted' is not a valid source for gatewayresponse.header.x",
        ),
        (
            {
                "responseType": "THROTTLED",
                "responseParameters": {"gatewayresponse.header.x": "method.request.body.x"},
            },
            "method.request.body.x",
        ),
        (
            {"responseType": "THROTTLED", "responseParameters": {"gatewayresponse.querystring.x": "'a'"}},
            "gatewayresponse.querystring.x",
        ),
        ({"responseType": "THROTTLED", "responseTemplates": {"json": "x"}}, "'json' is not a content type"),
        # the configuration reader's own rules, applied on save: what the gateway could not serve
        ({"responseType": "THROTTLED", "statusCode": "101"}, "200 to 599"),
        (
            {
                "responseType": "THROTTLED",
                "responseParameters": {"gatewayresponse.header.Content-Length": "'1'"},
            },
            "the gateway writes the Content-Length header itself",
        ),
    ]
    for kwargs, expected in bad_puts:
        with pytest.raises(ClientError) as exc:
            apigw.put_gateway_response(restApiId=api_id, **kwargs)
        code, message, status = error(exc)
        assert (code, status) == ("BadRequestException", 400), message
        assert expected in message
    # every accepted source form
    for source in (
        "'literal'",
        "method.request.header.h",
        "method.request.querystring.q",
        "method.request.path.p",
        "method.request.multivalueheader.h",
        "method.request.multivaluequerystring.q",
        "stageVariables.v",
        "context.requestId",
        "context.authorizer.principalId",
    ):
        apigw.put_gateway_response(
            restApiId=api_id,
            responseType="QUOTA_EXCEEDED",
            responseParameters={"gatewayresponse.header.x": source},
        )
    apigw.delete_gateway_response(restApiId=api_id, responseType="QUOTA_EXCEEDED")
    bad_patches = [
        ([{"op": "replace", "path": "/statusCode", "value": "1000"}], "Value '1000' at 'statusCode'"),
        ([{"op": "add", "path": "/responseType", "value": "X"}], "Invalid patch path  '/responseType'"),
        (
            [{"op": "remove", "path": "/responseParameters/gatewayresponse.header.none"}],
            "no responseParameters entry",
        ),
        (
            [
                {"op": "replace", "path": "/statusCode", "value": "418"},  # fine alone: all or nothing
                {"op": "add", "path": "/responseParameters/bad", "value": "'x'"},
            ],
            "Invalid mapping expression specified",
        ),
    ]
    for ops, expected in bad_patches:
        with pytest.raises(ClientError) as exc:
            apigw.update_gateway_response(restApiId=api_id, responseType="THROTTLED", patchOperations=ops)
        code, message, status = error(exc)
        assert (code, status) == ("BadRequestException", 400), message
        assert expected in message
    with pytest.raises(ClientError) as exc:
        apigw.delete_gateway_response(restApiId=api_id, responseType="ACCESS_DENIED")
    assert error(exc)[:2] == ("NotFoundException", "Invalid Gateway Response identifier specified")
    with pytest.raises(ClientError) as exc:
        apigw.get_gateway_responses(restApiId="nope")
    assert error(exc)[0] == "NotFoundException"
    # a reader may read, not write
    reader = admin.boto3(READER)
    assert len(reader.get_gateway_responses(restApiId=api_id)["items"]) == 21
    with pytest.raises(ClientError) as exc:
        reader.put_gateway_response(restApiId=api_id, responseType="THROTTLED")
    assert error(exc)[0] == "AccessDeniedException"
    assert draft_of(admin, api_id) == before
