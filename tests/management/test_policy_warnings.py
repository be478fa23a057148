"""A resource policy that is valid but has statements no request can match (issue 14, item 12) is
saved, and the answer says so in ``warnings``: the ``RestApi`` member AWS fills on imports, which
boto3 and the AWS CLI parse and show. Invalid policies are still refused (test_errors.py)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from .conftest import ACCOUNT, AdminHandle


def policy(*resources: str) -> str:
    statement = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": list(resources),
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_create_rest_api_answers_the_policys_warnings(admin_server: AdminHandle) -> None:
    apigw = admin_server.boto3()
    created = apigw.create_rest_api(name="w", policy=policy("execute-api:/prod/GETT/pets"))
    (warning,) = created["warnings"]
    assert "policy.validate.unknown-method" in warning
    assert "GETT" in warning
    assert "did you mean 'GET'?" in warning
    assert "/Statement/0/Resource/0" in warning
    stored = apigw.get_rest_api(restApiId=created["id"])
    assert "GETT" in stored["policy"]  # saved all the same
    assert "warnings" not in stored  # a warning belongs to the answer that saved the policy
    clean = apigw.create_rest_api(name="c", policy=policy("execute-api:/prod/GET/pets"))
    assert "warnings" not in clean


def test_update_rest_api_answers_the_policys_warnings(admin_server: AdminHandle) -> None:
    apigw = admin_server.boto3()
    api_id = apigw.create_rest_api(name="u")["id"]
    text = policy(
        "arn:aws:execute-api:us-east-1:11112222333:x/*",
        "arn:aws:execute-api:useast1:" + ACCOUNT + ":" + api_id + "/*",
        "arn:aws:execute-api:us-east-1:" + ACCOUNT + ":someotherapi/*",
        "execute-api:/*",
    )
    updated = apigw.update_rest_api(
        restApiId=api_id,
        patchOperations=[
            {"op": "replace", "path": "/policy", "value": text},
            {"op": "replace", "path": "/description", "value": "d"},
        ],
    )
    warnings = updated["warnings"]
    assert any("policy.validate.invalid-account-id" in w and "11112222333" in w for w in warnings)
    assert any("policy.validate.invalid-region" in w and "'us-east-1'" in w for w in warnings)
    assert any("policy.validate.other-api" in w and "someotherapi" in w for w in warnings)
    assert not any("Resource/3" in w for w in warnings)  # execute-api:/* is this API
    assert updated["description"] == "d"
    again = apigw.update_rest_api(
        restApiId=api_id, patchOperations=[{"op": "replace", "path": "/description", "value": "e"}]
    )
    assert "warnings" not in again


def test_the_aws_cli_shows_the_warnings(admin_server: AdminHandle) -> None:
    api_id = admin_server.aws("create-rest-api", "--name", "cli")["id"]
    out = admin_server.aws(
        "update-rest-api",
        "--rest-api-id",
        api_id,
        "--patch-operations",
        json.dumps([{"op": "replace", "path": "/policy", "value": policy("execute-api:/*/ANY/*")}]),
    )
    assert any("policy.validate.unknown-method" in w for w in out["warnings"])


IMPORT = """\
openapi: 3.0.1
info: {title: imported, version: "1"}
x-amazon-apigateway-policy:
  Version: "2012-10-17"
  Statement:
    - {Effect: Allow, Principal: "*", Action: execute-api:Invoke, Resource: execute-api:/v1/PSOT/*}
paths: {}
"""


def test_imports_answer_policy_warnings_or_fail_on_them(admin_server: AdminHandle) -> None:
    apigw = admin_server.boto3()
    imported = apigw.import_rest_api(body=IMPORT.encode())
    (warning,) = imported["warnings"]
    assert warning.startswith("/x-amazon-apigateway-policy/Statement/0/Resource (line 6")
    assert "policy.validate.unknown-method" in warning
    assert "did you mean 'POST'?" in warning
    put = apigw.put_rest_api(restApiId=imported["id"], mode="overwrite", body=IMPORT.encode())
    assert any("PSOT" in w for w in put["warnings"])
    with pytest.raises(ClientError) as exc:
        apigw.import_rest_api(body=IMPORT.encode(), failOnWarnings=True)
    assert exc.value.response["Error"]["Code"] == "BadRequestException"
    assert "PSOT" in exc.value.response["Error"]["Message"]
