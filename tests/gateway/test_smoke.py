"""The gateway end to end: a policy-checked proxy in front of a recording backend."""

from __future__ import annotations

import json

from tests.gateway.conftest import ALLOW_ALL, simple_config


def test_allowed_request_reaches_backend_and_denied_never_does(backend, gateway_factory) -> None:
    policy = {
        **ALLOW_ALL,
        "Statement": [
            *ALLOW_ALL["Statement"],
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/*/*/admin/*",
            },
        ],
    }
    gw = gateway_factory(simple_config(backend.url, policy=policy))
    status, headers, body = gw.request("GET", "/prod/pets/7?x=1")
    assert (status, body) == (200, b"ok")
    assert headers["x-amzn-remapped-server"] == "test-backend"
    assert len(backend.requests) == 1
    assert backend.requests[0].target == "/pets/7?x=1"
    assert backend.requests[0].header("X-Forwarded-For") == "127.0.0.1"
    status, headers, body = gw.request("GET", "/prod/admin/users")
    assert status == 403
    assert headers["x-amzn-errortype"] == "AccessDeniedException"
    assert json.loads(body) == {
        "Message": "User: anonymous is not authorized to perform: execute-api:Invoke on "
        "resource: arn:aws:execute-api:us-east-1:********3333:a1b2c3d4e5/prod/GET/admin/"
        "users with an explicit deny"
    }
    assert len(backend.requests) == 1
    log = gw.access_log()
    assert [(x["status"], x.get("decision")) for x in log] == [(200, "Allow"), (403, "ExplicitDeny")]
    assert log[1]["error.responseType"] == "ACCESS_DENIED"
