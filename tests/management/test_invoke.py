"""TestInvokeMethod against the draft, through boto3 and the AWS CLI: a real backend on loopback
for HTTP_PROXY methods (what it receives is recorded), MOCK answers, failures, errors."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.management.conftest import AdminHandle as Admin


class Backend:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_ANY(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                backend.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "lines": list(self.headers.items()),  # every header line, repeats kept
                        "body": body,
                    }
                )
                answer = json.dumps({"seen": self.path}).encode()
                self.send_response(207)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Backend", "one")
                self.send_header("Set-Cookie", "a=1")
                self.send_header("Set-Cookie", "b=2")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_ANY

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = Backend()
    yield b
    b.close()


def setup_api(c: Any, uri: str) -> tuple[str, dict[str, str]]:
    api = c.create_rest_api(name="invoke")["id"]
    root_id = c.get_rest_api(restApiId=api)["rootResourceId"]
    pets = c.create_resource(restApiId=api, parentId=root_id, pathPart="pets")["id"]
    pet = c.create_resource(restApiId=api, parentId=pets, pathPart="{id}")["id"]
    # AWS_IAM: the test invocation skips authorization, as on AWS
    c.put_method(
        restApiId=api,
        resourceId=pet,
        httpMethod="POST",
        authorizationType="AWS_IAM",
        requestParameters={"method.request.path.id": True},
    )
    c.put_integration(
        restApiId=api,
        resourceId=pet,
        httpMethod="POST",
        type="HTTP_PROXY",
        integrationHttpMethod="ANY",
        uri=uri,
        requestParameters={
            "integration.request.header.X-Caller": "'tester'",
            "integration.request.header.X-Stage": "context.stage",
            "integration.request.header.X-From-Query": "method.request.querystring.q",
        },
    )
    c.put_method(restApiId=api, resourceId=pets, httpMethod="GET", authorizationType="NONE")
    c.put_integration(
        restApiId=api,
        resourceId=pets,
        httpMethod="GET",
        type="MOCK",
        requestTemplates={"application/json": '{"statusCode": 202}'},
    )
    c.put_integration_response(
        restApiId=api,
        resourceId=pets,
        httpMethod="GET",
        statusCode="202",
        responseParameters={"method.response.header.X-Mock": "'yes'"},
        responseTemplates={"application/json": '{"mocked": true}'},
    )
    c.put_method(restApiId=api, resourceId=pets, httpMethod="DELETE", authorizationType="NONE")
    return api, {"pets": pets, "pet": pet}


def test_http_proxy_reaches_the_real_backend(admin_server: Admin, backend: Backend) -> None:
    c = admin_server.boto3()
    api, ids = setup_api(c, "http://${stageVariables.host}/things/{id}")
    answer = c.test_invoke_method(
        restApiId=api,
        resourceId=ids["pet"],
        httpMethod="POST",
        pathWithQueryString="/pets/a%20b?q=found&x=1",
        body='{"name": "rex"}',
        headers={"Content-Type": "application/json", "X-Client": "c1", "Connection": "close"},
        stageVariables={"host": backend.host},
    )
    assert len(backend.requests) == 1
    seen = backend.requests[0]
    assert seen["method"] == "POST"
    assert seen["path"] == "/things/a%20b?q=found&x=1"  # path parameter decoded then re-encoded
    assert seen["body"] == b'{"name": "rex"}'
    assert seen["headers"]["X-Client"] == "c1"
    assert seen["headers"]["X-Caller"] == "tester"
    assert seen["headers"]["X-Stage"] == "test-invoke-stage"
    assert seen["headers"]["X-From-Query"] == "found"
    assert seen["headers"]["Host"] == backend.host
    assert answer["status"] == 207
    assert json.loads(answer["body"]) == {"seen": "/things/a%20b?q=found&x=1"}
    assert answer["headers"]["X-Backend"] == "one"
    assert answer["multiValueHeaders"]["Set-Cookie"] == ["a=1", "b=2"]
    assert "x-amzn-Remapped-Server" in answer["headers"]
    assert "Server" not in answer["headers"]
    assert f"Endpoint request URI: http://{backend.host}/things/a%20b?q=found&x=1" in answer["log"]
    assert "Method completed with status: 207" in answer["log"]
    assert isinstance(answer["latency"], int)
    assert answer["latency"] >= 0


def test_mock_missing_integration_and_failures(admin_server: Admin) -> None:
    c = admin_server.boto3()
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    api, ids = setup_api(c, f"http://{dead}/things/{{id}}")
    mocked = c.test_invoke_method(restApiId=api, resourceId=ids["pets"], httpMethod="GET")
    assert mocked["status"] == 202
    assert json.loads(mocked["body"]) == {"mocked": True}
    assert mocked["headers"] == {"X-Mock": "yes"}
    none = c.test_invoke_method(restApiId=api, resourceId=ids["pets"], httpMethod="DELETE")
    assert none["status"] == 500
    assert "No integration defined for method" in none["log"]
    failed = c.test_invoke_method(
        restApiId=api, resourceId=ids["pet"], httpMethod="POST", pathWithQueryString="/pets/7"
    )
    assert failed["status"] == 502
    assert json.loads(failed["body"]) == {"message": "Internal server error"}
    assert dead in failed["log"]


def test_invoke_errors(admin_server: Admin) -> None:
    c = admin_server.boto3()
    api, ids = setup_api(c, "http://127.0.0.1:9/things/{id}")
    with pytest.raises(ClientError) as exc:
        c.test_invoke_method(restApiId=api, resourceId="nosuchres0", httpMethod="GET")
    assert exc.value.response["Error"]["Code"] == "NotFoundException"
    with pytest.raises(ClientError) as exc:
        c.test_invoke_method(restApiId=api, resourceId=ids["pets"], httpMethod="PUT")
    assert exc.value.response["Error"]["Code"] == "NotFoundException"
    assert "PUT" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        c.test_invoke_method(
            restApiId=api, resourceId=ids["pet"], httpMethod="POST", pathWithQueryString="/toys/1"
        )
    assert exc.value.response["Error"]["Code"] == "BadRequestException"
    assert "/pets/{id}" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        c.test_invoke_method(restApiId="nosuchapi0", resourceId=ids["pet"], httpMethod="POST")
    assert exc.value.response["Error"]["Code"] == "NotFoundException"


def test_cli_test_invoke(admin_server: Admin, backend: Backend) -> None:
    c = admin_server.boto3()
    api, ids = setup_api(c, f"http://{backend.host}/things/{{id}}")
    answer = admin_server.aws(
        "test-invoke-method",
        "--rest-api-id",
        api,
        "--resource-id",
        ids["pet"],
        "--http-method",
        "POST",
        "--path-with-query-string",
        "/pets/9",
        "--body",
        "hello",
    )
    assert answer["status"] == 207
    assert backend.requests[0]["path"] == "/things/9"
    assert backend.requests[0]["body"] == b"hello"


# --- the gateway's request: its header rules and request-parameter mapping ----------------------


def _mapped_api(c: Any, uri: str, mappings: dict[str, str]) -> tuple[str, str]:
    api = c.create_rest_api(name="mapped")["id"]
    root_id = c.get_rest_api(restApiId=api)["rootResourceId"]
    rid = c.create_resource(restApiId=api, parentId=root_id, pathPart="{id}")["id"]
    c.put_method(
        restApiId=api,
        resourceId=rid,
        httpMethod="GET",
        authorizationType="NONE",
        requestParameters={"method.request.path.id": True},
    )
    c.put_integration(
        restApiId=api,
        resourceId=rid,
        httpMethod="GET",
        type="HTTP_PROXY",
        integrationHttpMethod="ANY",
        uri=uri,
        requestParameters=mappings,
    )
    return api, rid


def _names(seen: dict[str, Any]) -> list[str]:
    return [name.lower() for name, _ in seen["lines"]]


def test_header_rules_and_mappings_are_the_gateways(admin_server: Admin, backend: Backend) -> None:
    c = admin_server.boto3()
    api, rid = _mapped_api(
        c,
        f"http://{backend.host}/x/{{id}}",
        {
            "integration.request.header.X-Q": "method.request.querystring.q",
            "integration.request.header.X-H": "method.request.header.X-Multi",
            "integration.request.header.X-Absent": "stageVariables.nothing",
            "integration.request.header.X-Request-Id": "context.requestId",
            "integration.request.header.X-Source-Ip": "context.identity.sourceIp",
        },
    )
    answer = c.test_invoke_method(
        restApiId=api,
        resourceId=rid,
        httpMethod="GET",
        pathWithQueryString="/7?q=a&q=b",
        headers={
            "X-Original-URI": "/admin",  # the default drop_request_headers
            "Connection": "X-Hop",  # names a header hop-by-hop for this request
            "X-Hop": "secret",
            "Trailers": "x",
            "X-Absent": "client's",  # a mapping sets X-Absent: the client's never goes
            "X-Kept": "  spaced\t",
        },
        multiValueHeaders={"X-Multi": ["one", "two"]},
    )
    assert answer["status"] == 207, answer["log"]
    seen = backend.requests[0]
    names = _names(seen)
    for dropped in ("x-original-uri", "connection", "x-hop", "trailers", "x-absent"):
        assert dropped not in names
    assert names.count("x-multi") == 2
    assert seen["headers"]["X-Kept"] == "spaced"
    assert seen["headers"]["X-Q"] == "a,b"  # repeated query keys joined by "," (the last one before)
    assert seen["headers"]["X-H"] == "one, two"  # a repeated header as the gateway joins it
    assert seen["headers"]["X-Source-Ip"] == "test-invoke-source-ip"  # as AWS's test invocations
    request_id = answer["log"].split("Execution log for request ", 1)[1].split("\n", 1)[0]
    assert seen["headers"]["X-Request-Id"] == request_id


def test_the_drop_list_is_the_one_the_gateway_runs_with(admin_server: Admin, backend: Backend) -> None:
    config = admin_server.config
    admin_server.config = dataclasses.replace(  # as after a reload with drop_request_headers: [...]
        config,
        settings=dataclasses.replace(config.settings, drop_request_headers=frozenset({b"x-internal-token"})),
    )
    c = admin_server.boto3()
    api, rid = _mapped_api(c, f"http://{backend.host}/x/{{id}}", {})
    c.test_invoke_method(
        restApiId=api,
        resourceId=rid,
        httpMethod="GET",
        pathWithQueryString="/7",
        headers={"X-Original-URI": "/admin", "X-Internal-Token": "t0ken"},
    )
    names = _names(backend.requests[0])
    assert "x-original-uri" in names
    assert "x-internal-token" not in names


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("headers", {"X-Bad": "a\r\nX-Injected: 1"}),
        ("headers", {"X-Bad": "nul\x00"}),
        ("headers", {"X-Bad": "beyond latin-1: \u20ac"}),
        ("headers", {"Bad Name": "v"}),
        ("multiValueHeaders", {"X-Bad": ["ok", "a\nb"]}),
        ("pathWithQueryString", "/7?q=a b"),
        ("pathWithQueryString", "/7?q=a\r\nX-Injected: 1"),
    ],
    ids=["crlf", "nul", "non-latin-1", "name", "multi-lf", "query-space", "query-crlf"],
)
def test_what_no_request_head_can_carry_is_refused(
    admin_server: Admin, backend: Backend, field: str, value: Any
) -> None:
    c = admin_server.boto3()
    api, rid = _mapped_api(c, f"http://{backend.host}/x/{{id}}", {})
    with pytest.raises(ClientError) as exc:
        c.test_invoke_method(restApiId=api, resourceId=rid, httpMethod="GET", **{field: value})
    assert exc.value.response["Error"]["Code"] == "BadRequestException"
    assert backend.requests == []
