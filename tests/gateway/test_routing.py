"""Which API, stage, resource and method a request reaches, and what the backend is sent.

Acceptance points (issue 3, "The request path"): API selection by ``Host``
(``{api-id}.execute-api.*`` and the ``{api-id}-vpce-*`` alias), by ``x-apigw-api-id``, by
LocalStack's ``/restapis/{id}/{stage}/_user_request_/...`` and ``/_aws/execute-api/{id}/{stage}/...``
paths and by default when exactly one API is configured; unknown API, stage, path or method ->
403 ``Missing Authentication Token`` (or 404 with ``gateway.unmatched_status: 404``); resources
with ``{param}`` and ``{proxy+}``, ``ANY``, most specific match first, no fall-back to a less
specific resource, HEAD not served by GET; HTTP_PROXY URI templates with ``{param}``, ``{proxy}``
and ``${stageVariables.x}``; the query string passed through.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.conftest import Backend, Gateway, Recorded, reply, start_gateway

MISSING_TOKEN = b'{"message":"Missing Authentication Token"}'


def echo_target(req: Recorded, sock: socket.socket) -> None:
    """The backend answers with the request line it received."""
    reply(sock, 200, f"{req.method} {req.target}".encode(), [("Content-Type", "text/plain")])


def assert_missing_token(response: tuple[int, dict[str, str], bytes]) -> None:
    status, headers, body = response
    assert status == 403, body
    assert body == MISSING_TOKEN
    assert headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert headers["content-type"] == "application/json"
    assert "x-amzn-requestid" in headers


def mock(body: str) -> dict[str, object]:
    return {"type": "MOCK", "status": 200, "body": body}


def proxy(uri: str, **extra: object) -> dict[str, object]:
    return {"type": "HTTP_PROXY", "uri": uri, **extra}


@pytest.fixture(scope="module")
def echo_backend() -> Iterator[Backend]:
    b = Backend(echo_target).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("routing")


# --- API selection ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_apis(module_tmp: Path, echo_backend: Backend) -> Iterator[Gateway]:
    """Two public APIs: a1b2c3d4e5 (MOCK /who + a proxy) and f6e5d4c3b2 (MOCK /who, two stages)."""
    config = {
        "gateway": {"region": "us-east-1", "account_id": "111122223333"},
        "apis": [
            {
                "id": "a1b2c3d4e5",
                "stages": {"prod": {}},
                "routes": [
                    {"path": "/who", "method": "GET", "integration": mock("A")},
                    {
                        "path": "/{proxy+}",
                        "method": "ANY",
                        "integration": proxy(f"{echo_backend.url}/{{proxy}}"),
                    },
                ],
            },
            {
                "id": "f6e5d4c3b2",
                "stages": {"prod": {}, "test": {}},
                "routes": [{"path": "/who", "method": "GET", "integration": mock("B")}],
            },
        ],
    }
    (module_tmp / "two").mkdir()
    gw = start_gateway(module_tmp / "two", config)
    yield gw
    gw.stop()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"}, b"A", id="aws-host"),
        pytest.param(
            {"Host": "f6e5d4c3b2.execute-api.localhost.localstack.cloud:4566"}, b"B", id="localstack-host"
        ),
        pytest.param({"Host": "F6E5D4C3B2.execute-api.example.internal"}, b"B", id="host-id-any-case"),
        pytest.param(
            {"Host": "a1b2c3d4e5-vpce-0123456789abcdef0.execute-api.us-east-1.amazonaws.com"},
            b"A",
            id="vpce-alias-host",
        ),
        pytest.param(
            {
                "Host": "vpce-0123456789abcdef0-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com",
                "x-apigw-api-id": "f6e5d4c3b2",
            },
            b"B",
            id="x-apigw-api-id-on-vpce-host",
        ),
        pytest.param({"x-apigw-api-id": "a1b2c3d4e5"}, b"A", id="x-apigw-api-id-plain-host"),
    ],
)
def test_api_is_chosen_by_host_or_header(two_apis: Gateway, headers: dict[str, str], expected: bytes) -> None:
    status, _, body = two_apis.request("GET", "/prod/who", headers=headers)
    assert (status, body) == (200, expected)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/restapis/f6e5d4c3b2/prod/_user_request_/who", b"B", id="restapis-user-request"),
        pytest.param("/restapis/a1b2c3d4e5/prod/_user_request_/who", b"A", id="restapis-other-api"),
        pytest.param("/_aws/execute-api/f6e5d4c3b2/test/who", b"B", id="aws-execute-api"),
        pytest.param("/_aws/execute-api/a1b2c3d4e5/prod/who", b"A", id="aws-execute-api-other"),
    ],
)
def test_api_is_chosen_by_localstack_paths(two_apis: Gateway, path: str, expected: bytes) -> None:
    status, _, body = two_apis.request("GET", path)
    assert (status, body) == (200, expected)


def test_localstack_paths_send_only_the_resource_path_to_the_backend(
    two_apis: Gateway, echo_backend: Backend
) -> None:
    status, _, body = two_apis.request("GET", "/restapis/a1b2c3d4e5/prod/_user_request_/pets/7?x=1")
    assert (status, body) == (200, b"GET /pets/7?x=1")
    status, _, body = two_apis.request("POST", "/_aws/execute-api/a1b2c3d4e5/prod/deep/er/path", body=b"{}")
    assert (status, body) == (200, b"POST /deep/er/path")


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        pytest.param("GET", "/prod/who", {}, id="two-apis-no-hint"),
        pytest.param(
            "GET",
            "/prod/who",
            {"Host": "zzzzzzzzzz.execute-api.us-east-1.amazonaws.com"},
            id="unknown-api-host",
        ),
        pytest.param("GET", "/prod/who", {"x-apigw-api-id": "zzzzzzzzzz"}, id="unknown-api-header"),
        pytest.param("GET", "/restapis/zzzzzzzzzz/prod/_user_request_/who", {}, id="unknown-api-restapis"),
        pytest.param("GET", "/restapis/f6e5d4c3b2/prod/who", {}, id="restapis-without-user-request"),
        pytest.param("GET", "/_aws/execute-api/zzzzzzzzzz/prod/who", {}, id="unknown-api-aws-path"),
        pytest.param("GET", "/test/who", {"x-apigw-api-id": "a1b2c3d4e5"}, id="stage-of-another-api"),
        pytest.param("GET", "/prod/nothing", {"x-apigw-api-id": "f6e5d4c3b2"}, id="unknown-path"),
        pytest.param("POST", "/prod/who", {"x-apigw-api-id": "f6e5d4c3b2"}, id="unknown-method"),
    ],
)
def test_unresolvable_requests_are_missing_authentication_token(
    two_apis: Gateway, echo_backend: Backend, method: str, path: str, headers: dict[str, str]
) -> None:
    before = len(echo_backend.requests)
    assert_missing_token(two_apis.request(method, path, headers=headers))
    assert len(echo_backend.requests) == before


# --- resources, methods and URI templates (one API, chosen by default) ---------------------------


@pytest.fixture(scope="module")
def tree(module_tmp: Path, echo_backend: Backend) -> Iterator[Gateway]:
    b = echo_backend.url
    routes = [
        {"path": "/", "method": "GET", "integration": mock("root")},
        {"path": "/pets", "method": "GET", "integration": mock("pets:list")},
        {"path": "/pets", "method": "POST", "integration": mock("pets:create")},
        {"path": "/pets/mine", "method": "GET", "integration": mock("pets:mine")},
        {"path": "/pets/{id}", "method": "GET", "integration": proxy(f"{b}/backend/pets/{{id}}")},
        {
            "path": "/pets/{id}/toys/{toy}",
            "method": "ANY",
            "integration": proxy(f"{b}/toys/{{toy}}/of/{{id}}"),
        },
        {"path": "/things/{name}", "method": "PUT", "integration": mock("things:put")},
        {"path": "/{proxy+}", "method": "ANY", "integration": proxy(f"{b}/greedy/{{proxy}}")},
    ]
    config = {
        "gateway": {"region": "us-east-1", "account_id": "111122223333"},
        "apis": [{"id": "a1b2c3d4e5", "stages": {"prod": {}}, "routes": routes}],
    }
    (module_tmp / "tree").mkdir()
    gw = start_gateway(module_tmp / "tree", config)
    yield gw
    gw.stop()


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        pytest.param("GET", "/prod/pets", b"pets:list", id="literal"),
        pytest.param("GET", "/prod/pets/", b"pets:list", id="trailing-slash-ignored"),
        pytest.param("POST", "/prod/pets", b"pets:create", id="method-picks-target"),
        pytest.param("GET", "/prod/pets/mine", b"pets:mine", id="literal-beats-param"),
        pytest.param("GET", "/prod/pets/42", b"GET /backend/pets/42", id="param"),
        pytest.param("GET", "/prod/pets/42/extra", b"GET /greedy/pets/42/extra", id="greedy-after-backtrack"),
        pytest.param("GET", "/prod/pets/42/toys/ball", b"GET /toys/ball/of/42", id="two-params"),
        pytest.param("DELETE", "/prod/pets/42/toys/ball", b"DELETE /toys/ball/of/42", id="any-delete"),
        pytest.param("PATCH", "/prod/pets/42/toys/ball", b"PATCH /toys/ball/of/42", id="any-patch"),
        pytest.param("OPTIONS", "/prod/zoo", b"OPTIONS /greedy/zoo", id="any-options-greedy"),
        pytest.param("PUT", "/prod/a/b/c/d", b"PUT /greedy/a/b/c/d", id="greedy-many-segments"),
        pytest.param("GET", "/prod/", b"root", id="root"),
        pytest.param("GET", "/prod", b"root", id="root-without-slash"),
        pytest.param("PUT", "/prod/things/x", b"things:put", id="put-only-resource"),
    ],
)
def test_most_specific_resource_and_method(tree: Gateway, method: str, path: str, expected: bytes) -> None:
    status, _, body = tree.request(method, path, body=b"" if method in ("POST", "PUT", "PATCH") else None)
    assert (status, body) == (200, expected)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("DELETE", "/prod/pets/42", id="param-resource-lacks-method-no-fallback-to-greedy"),
        pytest.param("PATCH", "/prod/pets", id="literal-resource-lacks-method"),
        pytest.param("HEAD", "/prod/pets", id="head-not-served-by-get"),
        pytest.param("GET", "/prod/things/x", id="get-on-put-only-resource"),
        pytest.param("GET", "/prod/pets/42/toys", id="intermediate-resource-has-no-method"),
        pytest.param("POST", "/prod/", id="greedy-does-not-match-bare-root"),
        pytest.param("GET", "/dev/pets", id="unknown-stage"),
        pytest.param("GET", "/", id="no-stage"),
        pytest.param("GET", "/PROD/pets", id="stage-is-case-sensitive"),
    ],
)
def test_unmatched_resource_or_method_does_not_fall_back(
    tree: Gateway, echo_backend: Backend, method: str, path: str
) -> None:
    before = len(echo_backend.requests)
    status, headers, body = tree.request(method, path, body=b"" if method in ("POST", "PATCH") else None)
    if method == "HEAD":  # no body on the wire; status and headers still say what happened
        assert status == 403
        assert headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
        assert body == b""
    else:
        assert_missing_token((status, headers, body))
    assert len(echo_backend.requests) == before


def test_head_is_served_by_any_on_the_greedy_resource(tree: Gateway, echo_backend: Backend) -> None:
    status, _, body = tree.request("HEAD", "/prod/zoo/keeper")
    assert (status, body) == (200, b"")
    assert echo_backend.requests[-1].method == "HEAD"
    assert echo_backend.requests[-1].target == "/greedy/zoo/keeper"


@pytest.mark.parametrize(
    ("path", "target"),
    [
        pytest.param("/prod/pets/a%20b", "/backend/pets/a%20b", id="encoded-space-in-param"),
        pytest.param("/prod/pets/caf%C3%A9", "/backend/pets/caf%C3%A9", id="utf8-in-param"),
        pytest.param("/prod/pets/a:b@c", "/backend/pets/a:b@c", id="pchar-kept"),
        pytest.param("/prod/zoo/a%20b/c", "/greedy/zoo/a%20b/c", id="encoded-in-greedy"),
        pytest.param("/prod//zoo//x/", "/greedy/zoo/x", id="doubled-slashes"),
        pytest.param("/prod/zoo/./x/../y", "/greedy/zoo/y", id="dot-segments"),
    ],
)
def test_path_parameter_values_reach_the_backend_through_the_template(
    tree: Gateway, echo_backend: Backend, path: str, target: str
) -> None:
    status, _, body = tree.request("GET", path)
    assert status == 200, body
    assert echo_backend.requests[-1].target == target


@pytest.mark.parametrize(
    "query",
    [
        "b=2&a=1&a=x%20y&flag",
        "q=a+b&empty=&x=%2F%3F%26",
        "utf=%C3%A9&dup=1&dup=2&z",
    ],
)
def test_query_string_is_passed_through_unchanged(tree: Gateway, echo_backend: Backend, query: str) -> None:
    status, _, body = tree.request("GET", f"/prod/pets/42?{query}")
    assert (status, body) == (200, f"GET /backend/pets/42?{query}".encode())
    status, _, body = tree.request("GET", f"/prod/zoo/keeper?{query}")
    assert (status, body) == (200, f"GET /greedy/zoo/keeper?{query}".encode())


def test_default_api_does_not_answer_for_another_api_id(tree: Gateway) -> None:
    status, _, body = tree.request("GET", "/prod/pets")
    assert (status, body) == (200, b"pets:list")
    status, _, body = tree.request("GET", "/prod/pets", headers={"Host": "a1b2c3d4e5.execute-api.x.y"})
    assert (status, body) == (200, b"pets:list")
    assert_missing_token(
        tree.request("GET", "/prod/pets", headers={"Host": "b2b2b2b2b2.execute-api.us-east-1.amazonaws.com"})
    )
    assert_missing_token(tree.request("GET", "/prod/pets", headers={"x-apigw-api-id": "b2b2b2b2b2"}))


# --- stage variables: two stages, two backends ------------------------------------------------


def test_stage_variables_pick_the_backend_per_stage(gateway_factory) -> None:
    one = Backend(echo_target).start()
    two = Backend(echo_target).start()
    try:
        config = {
            "gateway": {"region": "us-east-1", "account_id": "111122223333"},
            "apis": [
                {
                    "id": "a1b2c3d4e5",
                    "stages": {
                        "prod": {"variables": {"backend": f"127.0.0.1:{one.port}", "prefix": "live"}},
                        "beta": {"variables": {"backend": f"127.0.0.1:{two.port}", "prefix": "canary"}},
                        "gamma": {"variables": {"prefix": "none"}},
                    },
                    "routes": [
                        {
                            "path": "/sv/{id}",
                            "method": "GET",
                            "integration": proxy(
                                "http://${stageVariables.backend}/${stageVariables.prefix}/{id}"
                            ),
                        },
                        {
                            "path": "/{proxy+}",
                            "method": "ANY",
                            "integration": proxy("http://${stageVariables.backend}/{proxy}"),
                        },
                    ],
                }
            ],
        }
        gw = gateway_factory(config)
        for _ in range(2):
            status, _, body = gw.request("GET", "/prod/sv/1")
            assert (status, body) == (200, b"GET /live/1")
        assert [r.target for r in one.requests] == ["/live/1", "/live/1"]
        assert one.requests[-1].header("Host") == f"127.0.0.1:{one.port}"
        status, _, body = gw.request("GET", "/beta/sv/1")
        assert (status, body) == (200, b"GET /canary/1")
        status, _, body = gw.request("POST", "/beta/x/y?z=1", body=b"{}")
        assert (status, body) == (200, b"POST /x/y?z=1")
        assert [r.target for r in two.requests] == ["/canary/1", "/x/y?z=1"]
        assert two.requests[0].header("Host") == f"127.0.0.1:{two.port}"
        assert len(one.requests) == 2
        # a stage without the variable: the integration cannot be resolved -> 500, as API Gateway
        status, headers, body = gw.request("GET", "/gamma/sv/1")
        assert status == 500
        assert json.loads(body) == {"message": "Internal server error"}
        assert "x-amzn-errortype" in headers
        assert len(one.requests) + len(two.requests) == 4
    finally:
        one.stop()
        two.stop()


# --- unmatched_status: 404 -------------------------------------------------------------------------


def test_unmatched_status_404_turns_missing_token_into_not_found(gateway_factory) -> None:
    config = {
        "gateway": {"region": "us-east-1", "account_id": "111122223333", "unmatched_status": 404},
        "apis": [
            {
                "id": "a1b2c3d4e5",
                "stages": {"prod": {}},
                "routes": [{"path": "/pets", "method": "GET", "integration": mock("pets")}],
            }
        ],
    }
    gw = gateway_factory(config)
    assert gw.request("GET", "/prod/pets")[::2] == (200, b"pets")
    for method, path, headers in [
        ("GET", "/prod/cats", {}),
        ("POST", "/prod/pets", {}),
        ("GET", "/staging/pets", {}),
        ("GET", "/prod/pets", {"x-apigw-api-id": "zzzzzzzzzz"}),
    ]:
        status, got, body = gw.request(method, path, headers=headers, body=b"" if method == "POST" else None)
        assert status == 404, (method, path, body)
        assert set(json.loads(body)) == {"message"}
        assert got["content-type"] == "application/json"
        assert got["x-amzn-errortype"]
