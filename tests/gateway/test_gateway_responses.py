"""Customised gateway responses on the wire (issue 17, part 1): a real gateway on loopback, a real
backend, and the API's ``gateway_responses`` applied to the gateway's own refusals.

What a hostile client could try is here too: a query string that decodes to a line break must
never split the response, and the defaults of an API without customisations stay byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.gateway.conftest import Backend, Gateway, free_port, raw_request, simple_config

ACCOUNT = "111122223333"
DENY_ADMIN = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"},
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/*/*/admin/*",
        },
    ],
}
DENIED_TEXT = (
    "User: anonymous is not authorized to perform: execute-api:Invoke on resource: "
    "arn:aws:execute-api:us-east-1:********3333:a1b2c3d4e5/prod/GET/admin/x with an explicit deny"
)
CORS_4XX = {
    "response_parameters": {
        "gatewayresponse.header.Access-Control-Allow-Origin": "'https://app.example.test'",
        "gatewayresponse.header.x-echo": "method.request.header.x-echo",
        "gatewayresponse.header.x-query": "method.request.querystring.q",
        "gatewayresponse.header.x-stage-colour": "stageVariables.colour",
        "gatewayresponse.header.x-request": "context.requestId",
        "gatewayresponse.header.x-type": "context.error.responseType",
    },
    "response_templates": {
        "application/json": '{"error":$context.error.messageString,"type":"$context.error.responseType",'
        '"id":"$context.requestId","ip":"$context.identity.sourceIp","colour":"$stageVariables.colour"}'
    },
}


def start(factory: Callable[..., Gateway], backend: Backend, **api: Any) -> Gateway:
    """The API: everything proxied to the backend but /dead/..., whose backend port is closed
    (502 INTEGRATION_FAILURE); the policy denies /admin/*."""
    routes = [
        {
            "path": "/dead/{proxy+}",
            "method": "ANY",
            "integration": {"type": "HTTP_PROXY", "uri": f"http://127.0.0.1:{free_port()}/{{proxy}}"},
        },
        {
            "path": "/{proxy+}",
            "method": "ANY",
            "integration": {"type": "HTTP_PROXY", "uri": f"{backend.url}/{{proxy}}"},
        },
    ]
    config = simple_config(backend.url, policy=DENY_ADMIN, routes=routes, **api)
    config["apis"][0]["stages"] = {"prod": {"variables": {"colour": "teal"}}}
    return factory(config)


def test_an_api_without_customisations_answers_the_defaults_byte_for_byte(
    gateway_factory: Callable[..., Gateway], backend: Backend
) -> None:
    gw = start(gateway_factory, backend)
    status, headers, body = gw.request("GET", "/prod/admin/x")
    assert status == 403
    assert body == json.dumps({"Message": DENIED_TEXT}, separators=(",", ":")).encode()
    assert headers["x-amzn-errortype"] == "AccessDeniedException"
    assert "access-control-allow-origin" not in headers
    status, headers, body = gw.request("GET", "/nowhere")
    assert (status, body) == (403, b'{"message":"Missing Authentication Token"}')


def test_default_4xx_reaches_every_4xx_the_api_did_not_customise(
    gateway_factory: Callable[..., Gateway], backend: Backend
) -> None:
    gw = start(gateway_factory, backend, gateway_responses={"DEFAULT_4XX": CORS_4XX})
    status, headers, body = gw.request("GET", "/prod/admin/x?q=term", headers={"x-echo": "hello"})
    assert status == 403  # the type's own status: DEFAULT_4XX sets none
    assert headers["access-control-allow-origin"] == "https://app.example.test"
    assert headers["x-echo"] == "hello"
    assert headers["x-query"] == "term"
    assert headers["x-stage-colour"] == "teal"
    assert headers["x-request"] == headers["x-amzn-requestid"]
    assert headers["x-type"] == "ACCESS_DENIED"
    assert headers["x-amzn-errortype"] == "AccessDeniedException"  # still the error's own
    assert headers["content-type"] == "application/json"
    doc = json.loads(body)
    assert doc == {
        "error": DENIED_TEXT,
        "type": "ACCESS_DENIED",
        "id": headers["x-amzn-requestid"],
        "ip": "127.0.0.1",
        "colour": "teal",
    }
    # an unknown path on the API is MISSING_AUTHENTICATION_TOKEN: a 4XX too
    status, headers, body = gw.request("GET", "/prod")
    assert status == 403
    assert headers["access-control-allow-origin"] == "https://app.example.test"
    assert json.loads(body)["type"] == "MISSING_AUTHENTICATION_TOKEN"
    # what a request does not carry adds no header
    assert "x-echo" not in headers
    assert "x-query" not in headers
    # allowed requests are the backend's, untouched
    status, headers, _ = gw.request("GET", "/prod/pets")
    assert status == 200
    assert "access-control-allow-origin" not in headers
    # a 5XX is not a 4XX: the backend is down, and DEFAULT_4XX says nothing of it
    status, headers, body = gw.request("GET", "/prod/dead/pets")
    assert status == 502
    assert "access-control-allow-origin" not in headers
    assert body == b'{"message":"Internal server error"}'


def test_a_customised_type_wins_over_default_4xx_and_a_status_moves_the_whole_class(
    gateway_factory: Callable[..., Gateway], backend: Backend
) -> None:
    gw = start(
        gateway_factory,
        backend,
        gateway_responses={
            "DEFAULT_4XX": {"status_code": 400, "response_templates": {"application/json": '{"d4":true}'}},
            "MISSING_AUTHENTICATION_TOKEN": {
                "status_code": 404,
                "response_templates": {"application/json": '{"message":"No $context.httpMethod here"}'},
            },
            "DEFAULT_5XX": {
                "status_code": "503",
                "response_parameters": {"gatewayresponse.header.Retry-After": "'7'"},
            },
        },
    )
    status, headers, body = gw.request("GET", "/beta/pets")  # no such stage
    assert (status, json.loads(body)) == (404, {"message": "No GET here"})
    assert headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    status, _, body = gw.request("GET", "/prod/admin/x")  # ACCESS_DENIED: not customised itself
    assert (status, body) == (400, b'{"d4":true}')
    status, headers, body = gw.request("GET", "/prod/dead/pets")
    assert status == 503
    assert headers["retry-after"] == "7"
    assert body == b'{"message":"Internal server error"}'  # no template: the default body


def test_the_template_follows_the_accept_header(
    gateway_factory: Callable[..., Gateway], backend: Backend
) -> None:
    gw = start(
        gateway_factory,
        backend,
        gateway_responses={
            "ACCESS_DENIED": {
                "response_templates": {
                    "application/json": '{"denied":true}',
                    "text/html": "<p>$context.error.message</p>",
                }
            }
        },
    )
    status, headers, body = gw.request("GET", "/prod/admin/x", headers={"Accept": "text/html, */*;q=0.1"})
    assert status == 403
    assert headers["content-type"] == "text/html"
    assert body == f"<p>{DENIED_TEXT}</p>".encode()
    status, headers, body = gw.request("GET", "/prod/admin/x", headers={"Accept": "image/png"})
    assert headers["content-type"] == "application/json"
    assert body == b'{"denied":true}'


def test_a_value_that_would_split_the_response_is_dropped(
    gateway_factory: Callable[..., Gateway], backend: Backend
) -> None:
    gw = start(gateway_factory, backend, gateway_responses={"DEFAULT_4XX": CORS_4XX})
    answer = raw_request(
        gw.port,
        b"GET /prod/admin/x?q=a%0d%0aSet-Cookie:%20stolen=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert b"set-cookie" not in head
    assert b"x-query" not in head
    assert b"access-control-allow-origin: https://app.example.test" in head


def test_the_access_log_names_the_response_type(
    gateway_factory: Callable[..., Gateway], backend: Backend
) -> None:
    gw = start(gateway_factory, backend, gateway_responses={"ACCESS_DENIED": {"status_code": 401}})
    status, headers, _ = gw.request("GET", "/prod/admin/x")
    assert status == 401
    entry = next(e for e in gw.access_log() if e["requestId"] == headers["x-amzn-requestid"])
    assert entry["error.responseType"] == "ACCESS_DENIED"
    assert entry["status"] == 401


def test_throttled_answers_take_their_customisation(
    gateway_factory: Callable[..., Gateway], backend: Backend
) -> None:
    config = simple_config(
        backend.url,
        gateway_responses={
            "THROTTLED": {
                "response_parameters": {"gatewayresponse.header.Retry-After": "'1'"},
                "response_templates": {
                    "application/json": '{"slow":"down","message":$context.error.messageString}'
                },
            }
        },
    )
    config["apis"][0]["stages"] = {"prod": {"throttling": {"rate": 1, "burst": 1}}}
    gw = gateway_factory(config)
    answers = [gw.request("GET", "/prod/pets") for _ in range(4)]
    throttled = [a for a in answers if a[0] == 429]
    assert throttled, [a[0] for a in answers]
    _, headers, body = throttled[0]
    assert headers["retry-after"] == "1"
    assert json.loads(body) == {"slow": "down", "message": "Too Many Requests"}
