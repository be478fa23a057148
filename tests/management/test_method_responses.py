"""Method responses and UpdateIntegrationResponse with the real AWS CLI: the sequence API
Gateway's console "Enable CORS" amounts to, each call as AWS's documentation writes it, and
refusals that leave the draft as it was."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.management.conftest import AdminHandle

ALLOW = {
    "method.response.header.Access-Control-Allow-Headers": "'Content-Type,X-Amz-Date,Authorization'",
    "method.response.header.Access-Control-Allow-Methods": "'GET,OPTIONS'",
    "method.response.header.Access-Control-Allow-Origin": "'*'",
}


def cors_method(admin: AdminHandle) -> tuple[str, str]:
    """An API with /pets and the console's OPTIONS method on it: (api id, resource id)."""
    api = admin.aws("create-rest-api", "--name", "cors")["id"]
    root = admin.aws("get-resources", "--rest-api-id", api)["items"][0]["id"]
    pets = admin.aws("create-resource", "--rest-api-id", api, "--parent-id", root, "--path-part", "pets")[
        "id"
    ]
    base = ["--rest-api-id", api, "--resource-id", pets, "--http-method", "OPTIONS"]
    admin.aws("put-method", *base, "--authorization-type", "NONE")
    declared = dict.fromkeys(ALLOW, False)
    admin.aws(
        "put-method-response", *base, "--status-code", "200", "--response-parameters", json.dumps(declared)
    )
    admin.aws(
        "put-integration",
        *base,
        "--type",
        "MOCK",
        "--request-templates",
        '{"application/json": "{\\"statusCode\\": 200}"}',
    )
    admin.aws(
        "put-integration-response", *base, "--status-code", "200", "--response-parameters", json.dumps(ALLOW)
    )
    return api, pets


def draft(admin: AdminHandle, api: str, pets: str) -> Any:
    return admin.aws("get-method", "--rest-api-id", api, "--resource-id", pets, "--http-method", "OPTIONS")


def test_the_console_sequence_is_kept_and_shown(admin_server: AdminHandle) -> None:
    api, pets = cors_method(admin_server)
    method = draft(admin_server, api, pets)
    assert method["methodResponses"] == {
        "200": {"statusCode": "200", "responseParameters": dict.fromkeys(ALLOW, False)}
    }
    assert method["methodIntegration"]["integrationResponses"]["200"]["responseParameters"] == ALLOW
    base = ["--rest-api-id", api, "--resource-id", pets, "--http-method", "OPTIONS", "--status-code", "200"]
    assert admin_server.aws("get-method-response", *base)["responseParameters"] == dict.fromkeys(ALLOW, False)


def test_patches_change_method_and_integration_responses(admin_server: AdminHandle) -> None:
    api, pets = cors_method(admin_server)
    base = ["--rest-api-id", api, "--resource-id", pets, "--http-method", "OPTIONS", "--status-code", "200"]
    origin = "method.response.header.Access-Control-Allow-Origin"
    out = admin_server.aws(
        "update-method-response",
        *base,
        "--patch-operations",
        f"op=replace,path=/responseParameters/{origin},value=true",
        "op=add,path=/responseModels/application~1json,value=Empty",
    )
    assert out["responseParameters"][origin] is True
    assert out["responseModels"] == {"application/json": "Empty"}
    out = admin_server.aws(
        "update-integration-response",
        *base,
        "--patch-operations",  # JSON: the CLI's shorthand would take the quotes off the value
        json.dumps(
            [
                {
                    "op": "replace",
                    "path": f"/responseParameters/{origin}",
                    "value": "'https://app.example.test'",
                }
            ]
        ),
    )
    assert out["responseParameters"][origin] == "'https://app.example.test'"
    admin_server.aws("delete-method-response", *base, parse=False)
    assert "methodResponses" not in draft(admin_server, api, pets) or not draft(admin_server, api, pets).get(
        "methodResponses"
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["put-method-response", "--status-code", "2000"], "Invalid status code"),
        (
            [
                "put-method-response",
                "--status-code",
                "200",
                "--response-parameters",
                '{"method.response.body.x": true}',
            ],
            "Invalid mapping expression",
        ),
        (
            [
                "put-method-response",
                "--status-code",
                "200",
                "--response-models",
                '{"application/json": "Nope"}',
            ],
            "Nope",
        ),
        (["get-method-response", "--status-code", "404"], "Invalid Response status code specified"),
        (
            [
                "update-integration-response",
                "--status-code",
                "200",
                "--patch-operations",
                "op=replace,path=/responseParameters/method.response.header.X,value=method.request.header.x",
            ],
            "Invalid mapping expression",
        ),
        (
            [
                "update-method-response",
                "--status-code",
                "200",
                "--patch-operations",
                "op=replace,path=/statusCode,value=201",
            ],
            "Invalid patch path",
        ),
    ],
)
def test_refusals_leave_the_method_as_it_was(admin_server: AdminHandle, args: list[str], words: str) -> None:
    api, pets = cors_method(admin_server)
    before = draft(admin_server, api, pets)
    done = admin_server.aws_run(
        *args[:1], "--rest-api-id", api, "--resource-id", pets, "--http-method", "OPTIONS", *args[1:]
    )
    assert done.returncode != 0
    assert words in done.stderr
    assert draft(admin_server, api, pets) == before
