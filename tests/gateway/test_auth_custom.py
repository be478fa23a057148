"""Lambda-style (``CUSTOM``) authorizers end to end: TOKEN and REQUEST, over HTTP and in-process.

Issue 4, "Lambda-style (CUSTOM) authorizers". Every behaviour runs against three servings of the
same Lambda handler (``tests/gateway/authorizers.py``): an HTTP endpoint on loopback (the test
counts the events it receives), an in-process synchronous function and an in-process coroutine
function (they append their events to a file the test reads). Covered:

* identity sources and ``identity_validation_expression`` checked before the call: 401 without
  invoking anything (counted);
* ``Unauthorized`` -> 401; any other error, bad output (no principalId, no policy, an invalid
  policy, an object in the context), HTTP 500, an answer that is not JSON, a timeout -> 500
  ``{"message":null}`` AuthorizerConfigurationException, never cached;
* the resource policy's explicit deny checked *before* the authorizer (not invoked), its allow
  not skipping the authorizer;
* the authorizer policy's explicit / implicit deny messages;
* caching per token with the policy re-evaluated per method ARN (the ``event.methodArn``
  pitfall), TTL 0 disabling it;
* context values reaching the integration (``request_parameters``) and the access log
  (``authorizer.principalId``, ``authorizer.tier``);
* the TOKEN and REQUEST event shapes (AWS's Lambda authorizer input).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway import authorizers
from tests.gateway.auth_support import AuthorizerEndpoint, Response, send
from tests.gateway.conftest import ROOT_DIR, Backend, Gateway, start_gateway, wait_for_log

ACCOUNT = "111122223333"
API = "custom0001"
POLICY_API = "custompol1"
REGEX = "[a-z0-9]+:[A-Za-z0-9_-]+"
FN = "tests.gateway.authorizers:"
SOURCES = "method.request.header.X-Token, method.request.querystring.q, stageVariables.tier"
CONTEXT_HEADERS = {
    "integration.request.header.X-User": "context.authorizer.principalId",
    "integration.request.header.X-Tier": "context.authorizer.tier",
    "integration.request.header.X-Count": "context.authorizer.count",
    "integration.request.header.X-Admin": "context.authorizer.admin",
}
KINDS = ["http", "fn", "afn"]  # HTTP endpoint, sync function, async function


def _route(path: str, authorizer: str, backend_url: str, method: str = "ANY") -> dict[str, Any]:
    target = "{proxy}" if "{proxy+}" in path else "x"
    return {
        "path": path,
        "method": method,
        "authorization": "CUSTOM",
        "authorizer": authorizer,
        "integration": {
            "type": "HTTP_PROXY",
            "uri": f"{backend_url}/{target}",
            "request_parameters": CONTEXT_HEADERS,
        },
    }


def _token_authorizers(endpoint_url: str) -> list[dict[str, Any]]:
    common = {"type": "TOKEN", "identity_validation_expression": REGEX, "timeout": 0.5}
    return [
        {"name": "http", "url": endpoint_url, **common},
        {"name": "fn", "function": FN + "token_handler", **common},
        {"name": "afn", "function": FN + "async_token_handler", **common},
    ]


def config(endpoint_url: str, backend_url: str) -> dict[str, Any]:
    request = {"type": "REQUEST", "identity_source": SOURCES}
    return {
        "gateway": {"region": "us-east-1", "account_id": ACCOUNT},
        "apis": [
            {
                "id": API,
                "stages": {"prod": {"variables": {"tier": "gold", "region": "north"}}},
                "authorizers": [
                    *_token_authorizers(endpoint_url),
                    {"name": "http0", "type": "TOKEN", "url": endpoint_url, "result_ttl": 0},
                    {"name": "fn0", "type": "TOKEN", "function": FN + "token_handler", "result_ttl": 0},
                    {"name": "hreq", "url": endpoint_url, **request},
                    {"name": "freq", "function": FN + "request_handler", **request},
                    {"name": "freq0", "function": FN + "request_handler", "result_ttl": 0, **request},
                ],
                "routes": [
                    *(_route(f"/{k}/{{proxy+}}", k, backend_url) for k in KINDS),
                    _route("/http0/{proxy+}", "http0", backend_url),
                    _route("/fn0/{proxy+}", "fn0", backend_url),
                    *(_route(f"/{k}/{{id}}", k, backend_url, "GET") for k in ("hreq", "freq", "freq0")),
                ],
            },
            {
                "id": POLICY_API,
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
                            "Resource": "execute-api:/*/*/*/blocked",
                        },
                    ],
                },
                "stages": {"prod": {}},
                "authorizers": _token_authorizers(endpoint_url),
                "routes": [_route(f"/{k}/{{proxy+}}", k, backend_url) for k in KINDS],
            },
        ],
    }


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp: Path = tmp_path_factory.mktemp("custom")
    log = tmp / "authorizer-calls.jsonl"
    log.touch()
    endpoint = AuthorizerEndpoint()
    backend = Backend().start()
    env = {"PYTHONPATH": str(ROOT_DIR), authorizers.LOG_ENV: str(log)}
    try:
        gw = start_gateway(tmp, config(endpoint.url("/authorize"), backend.url), env=env)
    except Exception:
        endpoint.stop()
        backend.stop()
        raise
    yield {"gw": gw, "endpoint": endpoint, "backend": backend, "log": log}
    gw.stop()
    endpoint.stop()
    backend.stop()


class World:
    """The gateway, the backend and a way to count a token's authorizer invocations."""

    def __init__(self, parts: dict[str, Any]) -> None:
        self.gw: Gateway = parts["gw"]
        self.endpoint: AuthorizerEndpoint = parts["endpoint"]
        self.backend: Backend = parts["backend"]
        self.log: Path = parts["log"]

    def logged_events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def calls(self, kind: str, token: str) -> int:
        if kind.startswith("http") or kind == "hreq":
            return self.endpoint.calls(token)
        return sum(1 for e in self.logged_events() if authorizers.token_of(e["event"]) == token)

    def event(self, kind: str, token: str) -> dict[str, Any]:
        if kind.startswith("http") or kind == "hreq":
            return self.endpoint.last(token)
        return [e["event"] for e in self.logged_events() if authorizers.token_of(e["event"]) == token][-1]

    def get(
        self,
        path: str,
        token: str | None = None,
        *,
        api: str = API,
        headers: list[tuple[str, str]] | None = None,
        method: str = "GET",
    ) -> Response:
        pairs = [("x-apigw-api-id", api), *(headers or [])]
        if token is not None:
            pairs.append(("Authorization", token))
        return send(self.gw.port, method, path, headers=pairs)


@pytest.fixture
def world(parts: dict[str, Any]) -> World:
    return World(parts)


def fresh(verb: str) -> str:
    return f"{verb}:{uuid.uuid4().hex[:12]}"


def unauthorized(response: Response) -> None:
    assert response.status == 401, response.body
    assert response.error_type == "UnauthorizedException"
    assert response.json() == {"message": "Unauthorized"}


def configuration_error(response: Response) -> None:
    assert response.status == 500, response.body
    assert response.error_type == "AuthorizerConfigurationException"
    assert response.json() == {"message": None}


# --- allowed: context to the integration and the access log ---------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_allowed_request_carries_the_authorizer_context(world: World, kind: str) -> None:
    token = fresh("allow")
    before = len(world.backend.requests)
    # a client cannot forge the mapped headers: the mapping replaces them
    response = world.get(f"/prod/{kind}/pets/1", token, headers=[("X-User", "admin"), ("X-Tier", "platinum")])
    assert response.status == 200, response.body
    assert len(world.backend.requests) == before + 1
    got = world.backend.requests[-1]
    nonce = token.split(":")[1]
    assert got.header("X-User") == f"user-{nonce}"
    assert got.header("X-Tier") == "gold"
    assert got.header("X-Count") == "3"  # numbers and booleans arrive as strings
    assert got.header("X-Admin") == "false"
    assert [k for k, _ in got.headers if k.lower() in ("x-user", "x-tier")] == ["X-User", "X-Tier"]
    entry = wait_for_log(world.gw, response.request_id)
    assert entry["authorizer.principalId"] == f"user-{nonce}"
    assert entry["authorizer.tier"] == "gold"
    assert entry["authorizer.count"] == "3"
    assert world.calls(kind, token) == 1


@pytest.mark.parametrize("kind", ["http", "fn"])
def test_token_event_shape(world: World, kind: str) -> None:
    token = fresh("allow")
    assert world.get(f"/prod/{kind}/pets/7", token).status == 200
    assert world.event(kind, token) == {
        "type": "TOKEN",
        "authorizationToken": token,
        "methodArn": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{API}/prod/GET/{kind}/pets/7",
    }
    if kind == "http":
        assert world.endpoint.content_types[-1] == "application/json"
    else:  # the in-process handler got a Lambda-like context object
        assert world.logged_events()[-1]["function"] == kind


# --- refused before the call ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "token",
    [None, "", "no colon here", "allow:has space", "ALLOW:upper-verb"],
    ids=["missing", "empty", "regex-1", "regex-2", "regex-3"],
)
def test_missing_or_invalid_token_is_401_without_invoking(world: World, kind: str, token: str | None) -> None:
    before = (len(world.endpoint.events), len(world.logged_events()), len(world.backend.requests))
    unauthorized(world.get(f"/prod/{kind}/pets", token))
    assert (len(world.endpoint.events), len(world.logged_events()), len(world.backend.requests)) == before


# --- what the authorizer answers --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_authorizer_answering_unauthorized_is_401(world: World, kind: str) -> None:
    token = fresh("unauthorized")
    before = len(world.backend.requests)
    unauthorized(world.get(f"/prod/{kind}/pets", token))
    assert world.calls(kind, token) == 1
    assert len(world.backend.requests) == before


FAILURES = [
    pytest.param("boom", KINDS, id="raises"),
    pytest.param("noprincipal", KINDS, id="no-principal"),
    pytest.param("nopolicy", KINDS, id="no-policy"),
    pytest.param("badpolicy", KINDS, id="invalid-policy"),
    pytest.param("objcontext", KINDS, id="object-in-context"),
    pytest.param("http500", ["http"], id="http-500"),
    pytest.param("nonjson", ["http"], id="not-json"),
    pytest.param("sleep", KINDS, id="timeout"),
]


@pytest.mark.parametrize(("verb", "kinds"), FAILURES)
def test_authorizer_failure_is_500_and_never_cached(world: World, verb: str, kinds: list[str]) -> None:
    for kind in kinds:
        token = fresh(verb)
        before = len(world.backend.requests)
        for attempt in (1, 2):
            response = world.get(f"/prod/{kind}/pets", token)
            configuration_error(response)
            assert world.calls(kind, token) == attempt  # asked again: failures are not cached
        entry = wait_for_log(world.gw, response.request_id)
        assert entry["error.responseType"] == "AUTHORIZER_CONFIGURATION_ERROR"
        assert entry["authorizer.error"]
        assert len(world.backend.requests) == before


@pytest.mark.parametrize("kind", KINDS)
def test_authorizer_policy_denials(world: World, kind: str) -> None:
    before = len(world.backend.requests)
    response = world.get(f"/prod/{kind}/pets", fresh("deny"))
    assert response.status == 403
    assert response.error_type == "AccessDeniedException"
    assert response.json() == {
        "Message": "User is not authorized to access this resource with an explicit deny"
    }
    response = world.get(f"/prod/{kind}/pets", fresh("silent"))
    assert response.status == 403
    assert response.error_type == "AccessDeniedException"
    assert response.json() == {"Message": "User is not authorized to access this resource"}
    assert len(world.backend.requests) == before


# --- the resource policy around it ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_resource_policy_explicit_deny_is_checked_before_the_authorizer(world: World, kind: str) -> None:
    token = fresh("allow")
    before = len(world.backend.requests)
    response = world.get(f"/prod/{kind}/blocked", token, api=POLICY_API)
    assert response.status == 403
    assert response.error_type == "AccessDeniedException"
    assert response.json() == {
        "Message": "User: anonymous is not authorized to perform: execute-api:Invoke on resource: "
        f"arn:aws:execute-api:us-east-1:********3333:{POLICY_API}/prod/GET/{kind}/blocked"
        " with an explicit deny"
    }
    assert world.calls(kind, token) == 0  # never invoked
    # the resource policy's allow does not skip the authorizer: it runs, and its answer counts
    assert world.get(f"/prod/{kind}/open", token, api=POLICY_API).status == 200
    assert world.calls(kind, token) == 1
    unauthorized(world.get(f"/prod/{kind}/open", None, api=POLICY_API))
    assert len(world.backend.requests) == before + 1


# --- caching ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_result_is_cached_per_token(world: World, kind: str) -> None:
    token = fresh("allow")
    for path in ("/pets", "/pets/1", "/owners"):
        response = world.get(f"/prod/{kind}{path}", token)
        assert response.status == 200
        assert world.backend.requests[-1].header("X-User") == f"user-{token.split(':')[1]}"  # from the cache
    assert world.calls(kind, token) == 1
    other = fresh("allow")
    assert world.get(f"/prod/{kind}/pets", other).status == 200
    assert world.calls(kind, other) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_cached_policy_is_evaluated_again_for_each_method_arn(world: World, kind: str) -> None:
    """The classic pitfall: an authorizer that allows only ``event.methodArn``
    allows the first path and then denies every other one for the TTL; the first path stays
    allowed."""
    token = fresh("only")
    assert world.get(f"/prod/{kind}/pets/1", token).status == 200
    response = world.get(f"/prod/{kind}/pets/2", token)
    assert response.status == 403
    assert response.json() == {"Message": "User is not authorized to access this resource"}
    assert world.get(f"/prod/{kind}/pets/1", token, method="DELETE").status == 403  # another verb
    assert world.get(f"/prod/{kind}/pets/1", token).status == 200
    assert world.calls(kind, token) == 1


@pytest.mark.parametrize("kind", ["http0", "fn0"])
def test_ttl_zero_disables_caching(world: World, kind: str) -> None:
    token = fresh("only")
    assert world.get(f"/prod/{kind}/pets/1", token).status == 200
    assert world.get(f"/prod/{kind}/pets/2", token).status == 200  # a fresh policy for this ARN
    assert world.calls(kind, token) == 2
    # and without a regex configured, any non-empty token is passed on
    assert world.get(f"/prod/{kind}/pets/1", "allow:with space").status == 200


# --- REQUEST authorizers ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["hreq", "freq"])
def test_request_event_shape(world: World, kind: str) -> None:
    token = fresh("allow")
    query = "q=one&extra=1&extra=2&empty=&sp=a+b"
    path = f"/prod/{kind}/42?{query}"
    headers = [("X-Token", token), ("X-Multi", "a"), ("X-Multi", "b"), ("User-Agent", "tests/1.0")]
    response = world.get(path, headers=headers)
    assert response.status == 200, response.body
    event = world.event(kind, token)
    assert event["type"] == "REQUEST"
    assert event["methodArn"] == f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{API}/prod/GET/{kind}/42"
    assert event["resource"] == f"/{kind}/{{id}}"
    assert event["path"] == f"/{kind}/42"
    assert event["httpMethod"] == "GET"
    assert event["headers"]["X-Token"] == token
    assert event["headers"]["User-Agent"] == "tests/1.0"
    assert event["multiValueHeaders"]["X-Multi"] == ["a", "b"]
    assert event["queryStringParameters"] == {"q": "one", "extra": "2", "empty": "", "sp": "a b"}
    assert event["multiValueQueryStringParameters"]["extra"] == ["1", "2"]
    assert event["pathParameters"] == {"id": "42"}
    assert event["stageVariables"] == {"tier": "gold", "region": "north"}
    ctx = event["requestContext"]
    assert ctx["accountId"] == ACCOUNT
    assert ctx["apiId"] == API
    assert ctx["stage"] == "prod"
    assert ctx["resourcePath"] == f"/{kind}/{{id}}"
    assert ctx["httpMethod"] == "GET"
    assert ctx["path"] == f"/prod/{kind}/42"
    assert ctx["requestId"] == response.request_id
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["identity"]["userAgent"] == "tests/1.0"


@pytest.mark.parametrize("kind", ["hreq", "freq"])
def test_request_authorizer_caches_per_identity_source_values(world: World, kind: str) -> None:
    token = fresh("allow")
    for path in ("/1?q=a", "/2?q=a&other=x"):
        assert world.get(f"/prod/{kind}{path}", headers=[("X-Token", token)]).status == 200
    assert world.calls(kind, token) == 1
    assert world.get(f"/prod/{kind}/1?q=b", headers=[("X-Token", token)]).status == 200  # q is a source
    assert world.calls(kind, token) == 2


@pytest.mark.parametrize("kind", ["hreq", "freq"])
def test_request_authorizer_with_caching_needs_every_identity_source(world: World, kind: str) -> None:
    token = fresh("allow")
    unauthorized(world.get(f"/prod/{kind}/1", headers=[("X-Token", token)]))  # no q
    unauthorized(world.get(f"/prod/{kind}/1?q=", headers=[("X-Token", token)]))  # empty q
    unauthorized(world.get(f"/prod/{kind}/1?q={token}"))  # no X-Token header
    assert world.calls(kind, token) == 0


def test_request_authorizer_without_caching_takes_missing_sources(world: World) -> None:
    """With TTL 0 identity sources are optional (as on AWS): the authorizer is called."""
    token = fresh("allow")
    assert world.get(f"/prod/freq0/1?q={token}").status == 200  # no X-Token header
    assert world.get(f"/prod/freq0/1?q={token}").status == 200
    assert world.calls("freq0", token) == 2
