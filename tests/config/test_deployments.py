"""Several deployments of one API in a configuration (what a store composes): each entry has its
own ``deployment`` and its own stages; anything ambiguous is refused with its location."""

from __future__ import annotations

from typing import Any

import yaml

from iamgate.config.load import parse_config
from iamgate.config.snapshot import build_snapshot


def _api(deployment: str | None, stages: list[str], body: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": "a1b2c3d4e5",
        "stages": {s: {} for s in stages},
        "routes": [{"path": "/", "method": "GET", "integration": {"type": "MOCK", "body": body}}],
    }
    if deployment is not None:
        entry["deployment"] = deployment
    return entry


def _parse(apis: list[dict[str, Any]], **top: Any) -> tuple[Any, list[str]]:
    config, diags = parse_config(yaml.safe_dump({"apis": apis, **top}))
    return config, [d.render() for d in diags]


def test_each_deployment_serves_its_own_stages() -> None:
    config, diags = _parse([_api("d1", ["prod"], "one"), _api("d2", ["beta", "test"], "two")])
    assert config is not None, diags
    snap = build_snapshot(config)
    front = snap.apis["a1b2c3d4e5"]
    assert sorted(front.stages) == ["beta", "prod", "test"]
    assert {name: api.config.deployment for name, api in front.by_stage.items()} == {
        "prod": "d1",
        "beta": "d2",
        "test": "d2",
    }


def test_a_repeated_api_needs_deployments() -> None:
    config, diags = _parse([_api(None, ["prod"], "one"), _api(None, ["beta"], "two")])
    assert config is None
    assert any("/apis/1/id" in d and "already used by API 0" in d and "'deployment'" in d for d in diags)


def test_the_same_deployment_twice_is_refused() -> None:
    config, diags = _parse([_api("d1", ["prod"], "one"), _api("d1", ["beta"], "two")])
    assert config is None
    assert any("as deployment 'd1'" in d for d in diags)


def test_a_stage_served_by_two_deployments_is_refused() -> None:
    config, diags = _parse([_api("d1", ["prod", "beta"], "one"), _api("d2", ["beta"], "two")])
    assert config is None
    assert any("whose deployment 'd1' also serves stage(s) beta" in d for d in diags)


def test_deployment_ids_are_checked() -> None:
    config, diags = _parse([_api("no spaces", ["prod"], "one")])
    assert config is None
    assert any("/apis/0/deployment" in d for d in diags)


def test_apis_may_be_left_to_a_store() -> None:
    config, diags = parse_config(yaml.safe_dump({"gateway": {}}))
    assert config is None
    assert any("missing 'apis'" in d.render() for d in diags)
    config, diags = parse_config(yaml.safe_dump({"store": "sqlite:///x.db"}))
    assert config is not None, [d.render() for d in diags]
    assert config.store == "sqlite:///x.db"
    config, diags = parse_config(yaml.safe_dump({"store": "mysql://x"}))
    assert config is None
    assert any("/store" in d.render() for d in diags)
