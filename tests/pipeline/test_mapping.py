"""Request-parameter mapping: one routed request, the value of each kind of source."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from iamgate.config.load import parse_config
from iamgate.config.snapshot import build_snapshot
from iamgate.pipeline.exchange import Exchange
from iamgate.pipeline.mapping import request_parameter

CONFIG = """apis:
  - id: a1b2c3d4e5
    stages: {prod: {variables: {tier: gold}}}
    routes:
      - {path: "/items/{id}", method: GET, integration: {type: MOCK}}
"""
# GET /prod/items/42?q=a&q=b&x=&y=%20z with X-Multi twice and X-One once
HEADERS = [(b"x-multi", b"one"), (b"x-multi", b"two"), (b"x-one", b"1")]
HMAP = {b"x-multi": b"one, two", b"x-one": b"1"}  # as the parser joins a repeated name


def _exchange() -> Exchange:
    config, diags = parse_config(CONFIG, source="<test>")
    assert config is not None, diags
    snapshot = build_snapshot(config)
    api = snapshot.apis["a1b2c3d4e5"]
    match = api.tree.match(("items", "42"), "GET")
    assert match is not None
    ex = Exchange(
        snapshot,
        "GET",
        b"/prod/items/42",
        b"q=a&q=b&x=&y=%20z",
        HEADERS,
        HMAP,
        "HTTP/1.1",
        True,
        "10.0.0.9",
        False,
    )
    ex.api = api
    ex.stage = api.stages["prod"]
    ex.route = match.target
    ex.params = match.params
    ex.request_id = "rid-1"
    ex.authorizer = SimpleNamespace(principal_id="alice", context={"tenant": "t1"})  # type: ignore[assignment]
    ex.claims = SimpleNamespace(as_strings=lambda: {"sub": "u-7"})
    ex.api_key = SimpleNamespace(value="k3y")  # type: ignore[assignment]
    return ex


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("'a literal'", "a literal"),
        ("''", ""),
        ("method.request.header.X-One", "1"),
        ("method.request.header.x-one", "1"),  # header names are case-insensitive
        ("method.request.header.X-Multi", "one, two"),  # repeated: as the gateway joined it
        ("method.request.header.X-None", None),
        ("method.request.querystring.q", "a,b"),  # repeated key: the values joined by ","
        ("method.request.querystring.x", ""),  # present, empty
        ("method.request.querystring.y", " z"),  # percent-decoded
        ("method.request.querystring.none", None),
        ("method.request.path.id", "42"),
        ("method.request.path.none", None),
        ("method.request.body", None),  # not a source iamgate maps
        ("method.request.multivalueheader.X-Multi", None),  # nor these (the config refuses them)
        ("method.request.multivaluequerystring.q", None),
        ("request.querystring.q", None),  # without "method." it is no source
        ("header.X-One", None),
        ("stageVariables.tier", "gold"),
        ("stageVariables.none", None),
        ("context.requestId", "rid-1"),
        ("context.identity.sourceIp", "10.0.0.9"),
        ("context.identity.apiKey", "k3y"),
        ("context.stage", "prod"),
        ("context.apiId", "a1b2c3d4e5"),
        ("context.httpMethod", "GET"),
        ("context.resourcePath", "/items/{id}"),
        ("context.authorizer.principalId", "alice"),
        ("context.authorizer.tenant", "t1"),
        ("context.authorizer.claims.sub", "u-7"),
        ("context.authorizer.none", None),
        ("context.unknown", None),
    ],
)
def test_each_source_kind(source: str, value: str | None) -> None:
    assert request_parameter(_exchange(), source) == value


def test_sources_without_a_routed_request_have_no_value() -> None:
    ex = _exchange()
    ex.api = ex.stage = ex.route = ex.params = ex.authorizer = ex.claims = ex.api_key = None
    for source in (
        "method.request.path.id",
        "stageVariables.tier",
        "context.stage",
        "context.apiId",
        "context.resourcePath",
        "context.identity.apiKey",
        "context.authorizer.principalId",
    ):
        assert request_parameter(ex, source) is None, source
