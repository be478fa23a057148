"""What no store can keep, through boto3 and raw signed requests, on SQLite and PostgreSQL alike
(issue 14, item 13d): a NUL or a lone surrogate anywhere a request can put one (a JSON body, a
policy document inside it, a path parameter, a query value) is a 400 ``BadRequestException``
naming the place, never a 503 or 500 from the store, and nothing is written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import AdminHandle


@pytest.fixture
def handle(admin_on_each_store: AdminHandle) -> AdminHandle:
    """The management API over a SQLite store, then over a PostgreSQL one."""
    return admin_on_each_store


def policy(sid: str) -> str:
    """A valid policy whose Sid is ``sid`` (JSON-escaped, as a client sends it)."""
    statement = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": "execute-api:/*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def refused(handle: AdminHandle, method: str, target: str, body: bytes = b"") -> str:
    status, headers, answer = handle.signed(method, target, body)
    assert (status, headers.get("x-amzn-errortype")) == (400, "BadRequestException"), answer
    message: str = json.loads(answer)["message"]
    return message


def apis(handle: AdminHandle) -> list[str]:
    return sorted(a["name"] for a in handle.boto3().get_rest_apis()["items"])


def test_a_lone_surrogate_in_a_body(handle: AdminHandle) -> None:
    message = refused(handle, "POST", "/restapis", b'{"name": "a\\ud800b"}')
    assert message == "Invalid request body: the string at '/name' contains a lone surrogate (\\ud800)"
    message = refused(handle, "POST", "/restapis", b'{"name": "n", "tags": {"\\udfff": "x"}}')
    assert message == "Invalid request body: a name in '/tags' contains a lone surrogate (\\udfff)"
    assert apis(handle) == []


def test_a_nul_inside_a_policy_document(handle: AdminHandle) -> None:
    """The policy is JSON text inside the JSON body: its ``\\u0000`` is a NUL only once the
    policy is read, and the deployment would store the policy as an object."""
    apigw = handle.boto3()
    with pytest.raises(ClientError) as exc:
        apigw.create_rest_api(name="p", policy=policy("a\x00b"))
    err = exc.value.response["Error"]
    assert err["Code"] == "BadRequestException"
    assert err["Message"] == (
        "Invalid request body: the policy's string at '/Statement/0/Sid' contains a NUL character (\\u0000)"
    )
    api_id = apigw.create_rest_api(name="kept", policy=policy("ok"))["id"]
    with pytest.raises(ClientError) as exc:
        apigw.update_rest_api(
            restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": policy("\x00")}]
        )
    assert exc.value.response["Error"]["Code"] == "BadRequestException"
    assert "'/Statement/0/Sid' contains a NUL character" in exc.value.response["Error"]["Message"]
    assert json.loads(apigw.get_rest_api(restApiId=api_id)["policy"])["Statement"][0]["Sid"] == "ok"
    assert apis(handle) == ["kept"]


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/restapis/ab%00c"),
        ("GET", "/restapis/ab%00c/stages/prod"),
        ("DELETE", "/apikeys/a%00b"),
        ("GET", "/usageplans/p%00"),
        ("GET", "/apikeys?nameQuery=a%00b"),
        ("GET", "/restapis?position=%00"),
    ],
)
def test_a_nul_in_the_path_or_query(handle: AdminHandle, method: str, target: str) -> None:
    message = refused(handle, method, target)
    assert "contains a NUL character (\\u0000)" in message, message
    assert message.startswith("Invalid request ")


def test_a_deployment_of_what_no_store_keeps_is_400_on_every_store(handle: AdminHandle) -> None:
    """A draft whose policy text holds an escaped NUL (put straight into the store, as a bug
    elsewhere might): the deployment stores the policy as an object, so it is refused with a
    400 naming the place (PostgreSQL answered 503, SQLite stored it), and nothing is written."""
    apigw = handle.boto3()
    api_id = apigw.create_rest_api(name="x")["id"]
    with handle.store.transaction() as tx:
        draft: dict[str, Any] = tx.get("restapi", "", api_id) or {}
        draft["restApi"]["policy"] = policy("ok").replace('"ok"', '"\\u0000"')
        tx.put("restapi", "", api_id, draft)
    root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]
    apigw.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
    with pytest.raises(ClientError) as exc:
        apigw.create_deployment(restApiId=api_id, stageName="prod")
    err = exc.value.response["Error"]
    assert (err["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "BadRequestException",
        400,
    )
    assert "policy/Statement/0/Sid" in err["Message"]
    assert "NUL character" in err["Message"]
    assert apigw.get_deployments(restApiId=api_id)["items"] == []
    assert apigw.get_stages(restApiId=api_id)["item"] == []
