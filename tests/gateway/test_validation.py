"""Request validation end to end (issue 17): the real `iamgate serve` on loopback in front of a
real backend that records what it receives. A request refused by validation never reaches the
backend; one that passes reaches it byte for byte."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.conftest import ROOT_DIR, Backend, Gateway, read_request, start_gateway, wait_for_log

API = "a1b2c3d4e5"
# the gateway imports the authorizer from tests/ (and keeps whatever PYTHONPATH this run has)
ENV = {"PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT_DIR)) if p)}
MODELS = f"https://apigateway.amazonaws.com/restapis/{API}/models"
PET = {
    "type": "object",
    "required": ["name", "price"],
    "properties": {
        "name": {"type": "string"},
        "price": {"type": "number", "minimum": 0},
        "owner": {"$ref": f"{MODELS}/Owner"},
    },
}
OWNER = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}
LOOSE = {"type": "object", "properties": {"name": {"type": "string"}}}  # {} is valid
GOOD = b'{"name": "Rex", "price": 12.5, "owner": {"id": 7}}'
PARAMS = "?limit=5"
TOKEN = {"X-Token": "t"}
JSON = {"Content-Type": "application/json"}


def _route(path: str, validator: str, models: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    route: dict[str, Any] = {
        "path": path,
        "method": "POST",
        "integration": {"type": "HTTP_PROXY", "uri": "BACKEND" + path},
        "request_validator": validator,
        **extra,
    }
    if models is not None:
        route["request_models"] = models
    return route


def config(backend_url: str) -> dict[str, Any]:
    routes = [
        _route(
            "/pets/{id}",
            "all",
            {"application/json": "Pet"},
            request_parameters={
                "method.request.querystring.limit": True,
                "method.request.header.X-Token": True,
                "method.request.path.id": True,
                "method.request.querystring.optional": False,
            },
        ),
        _route("/any", "body", {"$default": "Pet"}),
        _route("/typed", "body", {"application/json": "Pet"}),
        _route(
            "/params",
            "params",
            {"application/json": "Pet"},
            request_parameters={"method.request.header.X-Token": True},
        ),
        _route("/denied", "all", {"application/json": "Pet"}),
        _route("/iam", "all", {"application/json": "Pet"}, authorization="AWS_IAM"),
        _route("/slow", "body", {"application/json": "Loose"}, authorization="CUSTOM", authorizer="slow"),
    ]
    for route in routes:
        route["integration"]["uri"] = route["integration"]["uri"].replace("BACKEND", backend_url)
    return {
        "gateway": {
            "region": "us-east-1",
            "account_id": "111122223333",
            "max_buffered_body": 16384,
            "max_request_body": 65536,
        },
        "apis": [
            {
                "id": API,
                "stages": {"prod": {}},
                "policy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": "*",
                            "Action": "execute-api:Invoke",
                            "Resource": "execute-api:/*",
                        },
                        {
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "execute-api:Invoke",
                            "Resource": "execute-api:/*/POST/denied",
                        },
                    ],
                },
                "authorizers": [
                    {
                        "name": "slow",
                        "type": "TOKEN",
                        "function": "tests.gateway.validation_support:slow_allow",
                        "result_ttl": 0,
                    }
                ],
                "models": {
                    "Pet": {"schema": PET},
                    "Owner": {"schema": json.dumps(OWNER)},  # a schema as a JSON string
                    "Loose": {"schema": LOOSE},
                },
                "request_validators": {
                    "all": {"validate_request_body": True, "validate_request_parameters": True},
                    "body": {"validate_request_body": True},
                    "params": {"validate_request_parameters": True},
                },
                "routes": routes,
            }
        ],
    }


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Backend]]:
    tmp: Path = tmp_path_factory.mktemp("validation")
    backend = Backend().start()
    try:
        gw = start_gateway(tmp, config(backend.url), env=ENV)
    except Exception:
        backend.stop()
        raise
    yield gw, backend
    gw.stop()
    backend.stop()


def send(
    parts: tuple[Gateway, Backend],
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes, list[Any]]:
    """POST through the gateway: status, headers, body, and what the backend received for it."""
    gw, backend = parts
    before = len(backend.requests)
    status, hdrs, data = gw.request("POST", f"/prod{path}", body=body, headers=headers)
    return status, hdrs, data, backend.requests[before:]


@pytest.mark.parametrize(
    ("path", "headers", "missing"),
    [
        (f"/pets/1{PARAMS}", {}, "X-Token"),
        ("/pets/1", TOKEN, "limit"),
        ("/pets/1", {}, "X-Token, limit"),
        ("/pets/1?limit=", TOKEN, "limit"),  # empty values count as missing
        (f"/pets/1{PARAMS}", {"X-Token": ""}, "X-Token"),
        ("/params", {}, "X-Token"),
    ],
)
def test_missing_or_empty_required_parameters(
    parts: tuple[Gateway, Backend], path: str, headers: dict[str, str], missing: str
) -> None:
    status, hdrs, data, received = send(parts, path, GOOD, {**JSON, **headers})
    assert status == 400
    assert json.loads(data) == {"message": f"Missing required request parameters: [{missing}]"}
    assert hdrs["x-amzn-errortype"] == "BadRequestException"
    assert received == []
    logged = wait_for_log(parts[0], hdrs["x-amzn-requestid"])
    assert logged["error.responseType"] == "BAD_REQUEST_PARAMETERS"


def test_a_valid_request_passes_through_unchanged(parts: tuple[Gateway, Backend]) -> None:
    headers = {**JSON, "x-token": "t"}  # header names are case-insensitive
    status, _, data, received = send(parts, f"/pets/42{PARAMS}", GOOD, headers)
    assert (status, data) == (200, b"ok")
    (request,) = received
    assert request.body == GOOD
    assert request.target == f"/pets/42{PARAMS}"
    assert request.header("content-type") == "application/json"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"name": "Rex"}', '[object has missing required properties (["price"])]'),
        (
            b'{"name": "Rex", "price": -1}',
            "[numeric instance is lower than the required minimum (minimum: 0, found: -1)]",
        ),
        (b'{"name": "Rex", "price": 1, "owner": {}}', '[object has missing required properties (["id"])]'),
        (b'{"name": "Rex", "price": ', None),  # not JSON
        (b"", '[object has missing required properties (["name","price"])]'),  # empty: {}
        (b"[" * 5000 + b"]" * 5000, None),  # deeper than the parser reads
    ],
)
def test_an_invalid_body_is_refused_and_never_forwarded(
    parts: tuple[Gateway, Backend], body: bytes, why: str | None
) -> None:
    status, hdrs, data, received = send(parts, f"/pets/1{PARAMS}", body, {**JSON, **TOKEN})
    assert status == 400
    assert json.loads(data) == {"message": "Invalid request body"}
    assert hdrs["x-amzn-errortype"] == "BadRequestException"
    assert received == []
    logged = wait_for_log(parts[0], hdrs["x-amzn-requestid"])
    assert logged["error.responseType"] == "BAD_REQUEST_BODY"
    if why is not None:
        assert logged["error.validationErrorString"] == why
    else:
        assert logged["error.validationErrorString"].startswith("[Invalid JSON: ")


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON;charset=UTF-8"]
)
def test_content_type_parameters_and_case_do_not_change_the_model(
    parts: tuple[Gateway, Backend], content_type: str
) -> None:
    headers = {"Content-Type": content_type, **TOKEN}
    assert send(parts, f"/pets/1{PARAMS}", b'{"name": 1}', headers)[0] == 400
    status, _, _, received = send(parts, f"/pets/1{PARAMS}", GOOD, headers)
    assert status == 200
    assert received[0].body == GOOD


def test_the_default_model_applies_to_any_content_type(parts: tuple[Gateway, Backend]) -> None:
    status, _, _, received = send(
        parts, "/any", b"name=Rex", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert (status, received) == (400, [])
    status, _, _, received = send(parts, "/any", GOOD, {"Content-Type": "text/plain"})
    assert status == 200
    assert received[0].body == GOOD


def test_no_model_for_the_content_type_is_not_validated(parts: tuple[Gateway, Backend]) -> None:
    status, _, _, received = send(parts, "/typed", b"not json at all", {"Content-Type": "text/plain"})
    assert status == 200
    assert received[0].body == b"not json at all"
    # without a Content-Type, API Gateway assumes application/json: the model applies
    status, _, _, received = send(parts, "/typed", b"not json at all")
    assert (status, received) == (400, [])


def test_a_chunked_body_is_validated_whole(parts: tuple[Gateway, Backend]) -> None:
    gw, backend = parts
    before = len(backend.requests)
    chunks = [GOOD[:10], GOOD[10:30], GOOD[30:]]
    payload = b"".join(b"%x\r\n%b\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(
            b"POST /prod/typed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + payload
        )
        answer = _read_all(s)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert backend.requests[before].body == GOOD


def _read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def test_validation_comes_after_authorization(parts: tuple[Gateway, Backend]) -> None:
    # both unauthorized and invalid (no parameters, a body that is not JSON): the 403, not the 400
    status, hdrs, data, received = send(parts, "/denied", b"not json", JSON)
    assert status == 403
    assert hdrs["x-amzn-errortype"] == "AccessDeniedException"
    assert "explicit deny" in json.loads(data)["Message"]
    assert received == []
    status, hdrs, _, received = send(parts, "/iam", b"not json", JSON)  # AWS_IAM, unsigned
    assert status == 403
    assert hdrs["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert received == []


def test_a_body_too_large_is_413_not_400(parts: tuple[Gateway, Backend]) -> None:
    big = b'{"name": "' + b"x" * 20000 + b'", "price": 1}'  # valid, but above max_buffered_body
    status, hdrs, _, received = send(parts, "/typed", big, JSON)
    assert status == 413
    assert hdrs["x-amzn-errortype"] == "RequestTooLargeException"
    assert received == []
    huge = b"[" + b"1," * 40000 + b"1]"  # above max_request_body
    status, _, _, received = send(parts, "/typed", huge, JSON)
    assert (status, received) == (413, [])


def test_a_parameters_only_validator_does_not_buffer_the_body(parts: tuple[Gateway, Backend]) -> None:
    # a 20 KB body, which a body-validating route refuses as too large to buffer, is streamed
    big = b'{"name": "' + b"x" * 20000 + b'"}'
    status, _, _, received = send(parts, "/params", big, {**JSON, **TOKEN})
    assert status == 200
    assert received[0].body == big
    # and the backend has the request before its body is complete: nothing waits for it
    gw = parts[0]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        cfg = config(f"http://127.0.0.1:{port}")
        tmp = Path(gw.config_path).parent / "streaming"
        tmp.mkdir(exist_ok=True)
        other = start_gateway(tmp, cfg, env=ENV)
        try:
            with socket.create_connection(("127.0.0.1", other.port), timeout=10) as client:
                client.sendall(
                    b"POST /prod/params HTTP/1.1\r\nHost: x\r\nX-Token: t\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n" + b"{" * 10
                )
                listener.settimeout(10)
                conn, _ = listener.accept()
                with conn:
                    head, _ = read_request(conn)  # arrives with 90 bytes of the body still unsent
                    assert head.startswith(b"POST /params HTTP/1.1")
        finally:
            other.stop()


def test_a_body_that_arrives_while_the_authorizer_answers_is_the_one_validated(
    parts: tuple[Gateway, Backend],
) -> None:
    # {} would pass the Loose model; {"name": 5} does not. The body arrives while the slow
    # authorizer (0.4 s) is still answering, so the validate stage asks for it once it is all read.
    gw, backend = parts
    for body, expected in ((b'{"name": 5}', 400), (b'{"name": "Rex"}', 200)):
        before = len(backend.requests)
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
            s.sendall(
                b"POST /prod/slow HTTP/1.1\r\nHost: x\r\nAuthorization: allow\r\n"
                b"Content-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                % len(body)
            )
            time.sleep(0.1)
            s.sendall(body)
            answer = _read_all(s)
        assert answer.startswith(b"HTTP/1.1 %d " % expected)
        if expected == 400:
            assert backend.requests[before:] == []
        else:
            assert backend.requests[before].body == body
