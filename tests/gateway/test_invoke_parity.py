"""test-invoke-method sends a backend what the gateway sends it for the same request.

One API is built and deployed through the real gateway's management API (boto3, SQLite store);
the same request then goes once through the gateway (a raw HTTP/1.1 request on its port) and
once through ``test-invoke-method`` on the admin port, and the recording backend's two copies
are compared: method, target, body and every header line. The request carries what the header
rules are about: a repeated header, a header of the default drop list (``X-Original-URI``), a
header its ``Connection`` header lists, hop-by-hop and replaced headers, a client header a
mapping replaces, a mapping whose source has no value. Run with the default
``gateway.drop_request_headers`` and with a configured one (which forwards ``X-Original-URI``
and drops ``X-Internal-Token``).

What differs by design is left out, each for its reason: ``X-Forwarded-For`` (the gateway adds
its client's address; a test invocation has no client connection), and the context values that
name the invocation itself (``$context.stage``, ``requestId``, ``identity.sourceIp``: covered by
tests/management/test_invoke.py).
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from iamgate.config.load import parse_config
from iamgate.config.snapshot import build_snapshot
from iamgate.pipeline.exchange import Exchange
from iamgate.pipeline.mapping import request_parameter
from tests.gateway.conftest import Backend, Gateway, Recorded, start_gateway, wait_for
from tests.management.conftest import ADMIN

REGION = "us-east-1"
ACCOUNT = "123456789012"
STAGE_VARIABLES = {"tier": "gold"}
# the parity mappings: sources whose value is the same for both (context values naming the
# invocation itself differ by design; method.request.* sources: REQUEST_MAPPINGS)
MAPPINGS = {
    "integration.request.header.X-Literal": "'lit'",
    "integration.request.header.X-Tier": "stageVariables.tier",
    "integration.request.header.X-Verb": "context.httpMethod",
    "integration.request.header.X-Resource": "context.resourcePath",
    "integration.request.header.X-Api": "context.apiId",
    "integration.request.header.X-Client": "'mapped'",  # replaces the client's X-Client
    "integration.request.header.X-Absent": "stageVariables.nothing",  # no value: no header at all
}
REQUEST_MAPPINGS = {
    "integration.request.header.X-Q": "method.request.querystring.q",  # q=a&q=b: joined "a,b"
    "integration.request.header.X-H": "method.request.header.X-Multi",  # repeated: "one, two"
    "integration.request.header.X-P": "method.request.path.id",
}
# one request, as (name, value) lines in order; Host and Content-Length are the gateway's to set
HEADERS = [
    ("Host", "api.example.com"),
    ("Content-Type", "text/plain"),
    ("Content-Length", "5"),
    ("X-Multi", "one"),
    ("X-Multi", "two"),
    ("X-Original-URI", "/admin"),  # in the default drop list
    ("X-Internal-Token", "t0ken"),  # in the configured drop list
    ("Connection", "X-Hop"),  # X-Hop is hop-by-hop for this request
    ("X-Hop", "secret"),
    ("Keep-Alive", "timeout=5"),
    ("Max-Forwards", "3"),
    ("X-Forwarded-Port", "8443"),
    ("Authorization", "Bearer abc"),  # NONE authorization: passed on by both
    ("X-Client", "c1"),
    ("X-Absent", "client's"),
    ("X-Plain", "kept"),
]
BODY = b"hello"
QUERY = "q=a&q=b&x=1"

DROP_LISTS: dict[str, list[str] | None] = {
    "default-drop-list": None,
    "configured-drop-list": ["x-internal-token"],
}


@dataclass
class Served:
    gateway: Gateway
    backend: Backend
    client: Any
    api_id: str
    ids: dict[str, str]


def _config(drop: list[str] | None) -> dict[str, Any]:
    gateway: dict[str, Any] = {"region": REGION, "account_id": ACCOUNT}
    if drop is not None:
        gateway["drop_request_headers"] = drop
    return {
        "gateway": gateway,
        "store": "sqlite:///store.db",
        "identities": {
            "users": [
                {
                    "arn": ADMIN.arn,
                    "policies": [
                        {
                            "Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Action": "apigateway:*", "Resource": "*"}],
                        }
                    ],
                }
            ],
            "access_keys": [{"id": ADMIN.access_key, "secret": ADMIN.secret, "owner": ADMIN.arn}],
        },
    }


def _build(c: Any, backend: Backend) -> tuple[str, dict[str, str]]:
    """/items/{id} POST (the parity mappings), /raw/{id} POST (method.request.* mappings),
    /ready GET (MOCK: tells when the deployment is served)."""
    api_id = c.create_rest_api(name="parity", endpointConfiguration={"types": ["REGIONAL"]})["id"]
    root = c.get_rest_api(restApiId=api_id)["rootResourceId"]
    ids: dict[str, str] = {}
    for name, mappings in (("items", MAPPINGS), ("raw", REQUEST_MAPPINGS)):
        parent = c.create_resource(restApiId=api_id, parentId=root, pathPart=name)["id"]
        rid = c.create_resource(restApiId=api_id, parentId=parent, pathPart="{id}")["id"]
        ids[name] = rid
        c.put_method(
            restApiId=api_id,
            resourceId=rid,
            httpMethod="POST",
            authorizationType="NONE",
            requestParameters={
                "method.request.path.id": True,
                "method.request.querystring.q": False,
                "method.request.header.X-Multi": False,
            },
        )
        c.put_integration(
            restApiId=api_id,
            resourceId=rid,
            httpMethod="POST",
            type="HTTP_PROXY",
            integrationHttpMethod="ANY",
            uri=f"{backend.url}/seen/{{id}}",
            requestParameters=mappings,
        )
    ready = c.create_resource(restApiId=api_id, parentId=root, pathPart="ready")["id"]
    c.put_method(restApiId=api_id, resourceId=ready, httpMethod="GET", authorizationType="NONE")
    c.put_integration(
        restApiId=api_id,
        resourceId=ready,
        httpMethod="GET",
        type="MOCK",
        requestTemplates={"application/json": '{"statusCode": 200}'},
    )
    c.put_integration_response(restApiId=api_id, resourceId=ready, httpMethod="GET", statusCode="200")
    return api_id, ids


@pytest.fixture(scope="module", params=list(DROP_LISTS))
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    backend = Backend().start()
    where: Path = tmp_path_factory.mktemp(request.param)
    gw = start_gateway(where, _config(DROP_LISTS[request.param]))
    try:
        c = boto3.client(
            "apigateway",
            endpoint_url=f"http://127.0.0.1:{gw.admin_port}",
            region_name=REGION,
            aws_access_key_id=ADMIN.access_key,
            aws_secret_access_key=ADMIN.secret,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )
        api_id, ids = _build(c, backend)
        c.create_deployment(restApiId=api_id, stageName="prod", variables=STAGE_VARIABLES)
        wait_for(lambda: gw.request("GET", "/prod/ready")[0] == 200, "the deployment")
        yield Served(gw, backend, c, api_id, ids)
    finally:
        gw.stop()
        backend.stop()


def _through_gateway(s: Served, path: str) -> Recorded:
    """The request on the gateway's port, its head written line by line (repeats kept)."""
    seen = len(s.backend.requests)
    conn = http.client.HTTPConnection("127.0.0.1", s.gateway.port, timeout=10)
    try:
        conn.putrequest("POST", f"/prod{path}?{QUERY}", skip_host=True, skip_accept_encoding=True)
        for name, value in HEADERS:
            conn.putheader(name, value)
        conn.endheaders(BODY)
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
    finally:
        conn.close()
    assert len(s.backend.requests) == seen + 1
    return s.backend.requests[-1]


def _through_test_invoke(s: Served, resource: str, path: str) -> tuple[Recorded, dict[str, Any]]:
    """The same request as test-invoke-method: single headers in ``headers``, the repeated one
    in ``multiValueHeaders``."""
    seen = len(s.backend.requests)
    multi: dict[str, list[str]] = {}
    for name, value in HEADERS:
        multi.setdefault(name, []).append(value)
    answer = s.client.test_invoke_method(
        restApiId=s.api_id,
        resourceId=s.ids[resource],
        httpMethod="POST",
        pathWithQueryString=f"{path}?{QUERY}",
        body=BODY.decode(),
        headers={k: v[0] for k, v in multi.items() if len(v) == 1},
        multiValueHeaders={k: v for k, v in multi.items() if len(v) > 1},
        stageVariables=STAGE_VARIABLES,
    )
    assert answer["status"] == 200, answer["log"]
    assert len(s.backend.requests) == seen + 1
    return s.backend.requests[-1], answer


def _lines(seen: Recorded) -> list[tuple[str, str]]:
    """The header lines a backend received, names lower-cased, in a comparable order, without
    the one the gateway adds for its client connection."""
    return sorted((k.lower(), v) for k, v in seen.headers if k.lower() != "x-forwarded-for")


def test_the_gateway_and_test_invoke_send_the_backend_the_same_request(served: Served) -> None:
    gateway = _through_gateway(served, "/items/42")
    tested, _ = _through_test_invoke(served, "items", "/items/42")
    assert (tested.method, tested.target, tested.body) == (gateway.method, gateway.target, gateway.body)
    assert gateway.target == f"/seen/42?{QUERY}"
    assert _lines(tested) == _lines(gateway)
    # and what the rules say, so that a change both make alike is still seen
    sent = dict(_lines(gateway))
    names = [name for name, _ in _lines(gateway)]
    configured = served.gateway.config_path.read_text().count("x-internal-token") > 0
    assert ("x-original-uri" in sent) is configured
    assert ("x-internal-token" in sent) is not configured
    for dropped in ("x-hop", "connection", "keep-alive", "max-forwards", "x-forwarded-port", "x-absent"):
        assert dropped not in sent
    assert names.count("x-multi") == 2
    assert names.count("x-client") == 1
    assert sent["x-client"] == "mapped"
    assert sent["x-plain"] == "kept"
    assert sent["authorization"] == "Bearer abc"
    assert sent["content-length"] == "5"
    assert sent["host"] == f"127.0.0.1:{served.backend.port}"
    assert sent["x-forwarded-proto"] == "http"
    assert {k: sent[k] for k in ("x-literal", "x-tier", "x-verb", "x-resource", "x-api")} == {
        "x-literal": "lit",
        "x-tier": "gold",
        "x-verb": "POST",
        "x-resource": "/items/{id}",
        "x-api": served.api_id,
    }


def test_test_invoke_maps_method_request_values_with_the_gateway_rules(served: Served) -> None:
    tested, _ = _through_test_invoke(served, "raw", "/raw/42")
    assert tested.header("X-Q") == "a,b"  # repeated query keys: joined by ","
    assert tested.header("X-H") == "one, two"  # a repeated header: joined by ", " as received
    assert tested.header("X-P") == "42"


def _exchange(query: bytes) -> Exchange:
    config, diags = parse_config("apis: []\n", source="<test>")
    assert config is not None, diags
    return Exchange(build_snapshot(config), "GET", b"/", query, [], {}, "HTTP/1.1", True, "127.0.0.1", False)


def test_the_gateway_maps_method_request_sources() -> None:
    assert request_parameter(_exchange(b"q=a&q=b"), "method.request.querystring.q") == "a,b"


def test_the_gateway_and_test_invoke_map_method_request_values_alike(served: Served) -> None:
    gateway = _through_gateway(served, "/raw/42")
    tested, _ = _through_test_invoke(served, "raw", "/raw/42")
    assert _lines(tested) == _lines(gateway)
