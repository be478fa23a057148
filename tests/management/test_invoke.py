"""TestInvokeMethod against the draft, through boto3 and the AWS CLI: a real backend on loopback
for HTTP_PROXY methods (what it receives is recorded), MOCK answers, failures, errors."""

from __future__ import annotations

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
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
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
