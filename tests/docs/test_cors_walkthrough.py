"""docs/cors.md, as written: the walkthrough runs (tests/docs/walkthrough.py), the reference
example is a valid ``cors`` block, and the expanded objects the page shows are the ones the
configuration reader makes from the walkthrough's file."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from iamgate.config.load import parse_config
from iamgate.config.model import ApiConfig, HttpProxyIntegration, RouteConfig
from tests.docs.walkthrough import blocks, run_walkthrough

DOC = "cors.md"


def _block(heading: str, kind: str, args: str) -> str:
    found = [text for k, a, text in blocks(DOC, heading) if (k, a) == (kind, args)]
    assert len(found) == 1, (heading, kind, args)
    return found[0]


def _api(text: str) -> ApiConfig:
    config, diags = parse_config(text)
    assert diags == [], diags
    assert config is not None
    return config.apis[0]


def _route(route: RouteConfig) -> dict[str, Any]:
    """A route in the configuration file's shape, as the page writes it."""
    integration = route.integration
    shown: dict[str, Any]
    if isinstance(integration, HttpProxyIntegration):
        shown = {"type": "HTTP_PROXY", "uri": integration.uri}
    else:
        shown = {"type": "MOCK"}
        if integration.status != 200:
            shown["status"] = integration.status
        if integration.headers:
            shown["headers"] = dict(integration.headers)
        if integration.body:
            shown["body"] = integration.body.decode()
    entry: dict[str, Any] = {"path": route.path, "method": route.method, "integration": shown}
    if route.authorization != "NONE":
        entry["authorization"] = route.authorization
    return entry


def test_the_walkthrough_shows_its_outputs() -> None:
    kinds = [kind for kind, _, _ in blocks(DOC)]
    assert kinds.count("text") >= 3


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_cors_walkthrough_runs_as_written(tmp_path: Path) -> None:
    run_walkthrough(DOC, tmp_path)


def test_the_expanded_objects_shown_are_what_the_reader_makes() -> None:
    api = _api(_block("## A walkthrough", "yaml", "file=cors.yaml"))
    shown = yaml.safe_load(_block("## What it expands into", "yaml", "expanded"))
    assert [_route(r) for r in api.routes] == shown["routes"]
    made = {
        kind: {"response_parameters": dict(response.response_parameters)}
        for kind, response in api.gateway_responses.items()
    }
    assert made == shown["gateway_responses"]
    assert all(r.status_code is None and r.response_templates == () for r in api.gateway_responses.values())


def test_the_reference_example_is_a_valid_cors_block() -> None:
    example = yaml.safe_load(_block("## The `cors` block", "yaml", ""))
    api = example["apis"][0]
    api["stages"] = {"prod": {}}
    api["routes"] = [{"path": "/pets", "method": "GET", "integration": {"type": "MOCK"}}]
    expanded = _api(yaml.safe_dump(example))
    assert [(r.path, r.method) for r in expanded.routes] == [("/pets", "GET"), ("/pets", "OPTIONS")]
    assert set(expanded.gateway_responses) == {"DEFAULT_4XX", "DEFAULT_5XX"}
