"""The snapshot is complete when built and cannot be changed afterwards: each route holds its proxy
target for every stage and its static throttle levels for every stage and method it can be asked
for; the route memo comes with the snapshot, so a new snapshot starts with an empty one."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

from iamgate.config.load import parse_config
from iamgate.config.snapshot import RouteRuntime, Snapshot, build_snapshot
from iamgate.routing.tree import METHODS

API_ID = "a1b2c3d4e5"
CONFIG: dict[str, Any] = {
    "throttling": {"account": {"rate": 100, "burst": 50}},
    "apis": [
        {
            "id": API_ID,
            "stages": {
                "prod": {
                    "variables": {"backend": "prod.internal:8080"},
                    "throttling": {"rate": 10, "burst": 5},
                    "method_throttling": {"/pets/GET": {"rate": 2, "burst": 1}},
                },
                "beta": {"variables": {"backend": "beta.internal"}},
            },
            "routes": [
                {
                    "path": "/pets",
                    "method": "GET",
                    "integration": {
                        "type": "HTTP_PROXY",
                        "uri": "http://${stageVariables.backend}/v1/pets",
                    },
                },
                {
                    "path": "/pets/{id}",
                    "method": "ANY",
                    "integration": {"type": "HTTP_PROXY", "uri": "https://backend.example/pets/{id}"},
                },
                {"path": "/health", "method": "GET", "integration": {"type": "MOCK", "body": "ok"}},
            ],
        }
    ],
}


def _snapshot() -> Snapshot:
    config, diags = parse_config(yaml.safe_dump(CONFIG))
    assert config is not None, [d.render() for d in diags]
    return build_snapshot(config)


def _routes(snap: Snapshot) -> dict[tuple[str, str], RouteRuntime]:
    tree = snap.apis[API_ID].tree
    return {(path, method): route for path, methods in tree.resources() for method, route in methods.items()}


def test_each_route_holds_its_target_for_every_stage() -> None:
    routes = _routes(_snapshot())
    pets = routes[("/pets", "GET")]
    assert sorted(pets.targets) == ["beta", "prod"]
    assert (pets.targets["prod"].host, pets.targets["prod"].port) == ("prod.internal", 8080)
    assert (pets.targets["beta"].host, pets.targets["beta"].port) == ("beta.internal", 80)
    assert pets.targets["prod"].pieces == ("/v1/pets",)
    one = routes[("/pets/{id}", "ANY")]
    assert {t.host_header for t in one.targets.values()} == {"backend.example"}
    assert routes[("/health", "GET")].targets == {}  # MOCK: nothing to resolve


def test_each_route_holds_its_static_throttle_levels_per_stage_and_method() -> None:
    routes = _routes(_snapshot())
    pets = routes[("/pets", "GET")]
    assert sorted(pets.throttle) == ["beta", "prod"]
    assert list(pets.throttle["prod"]) == ["GET"]  # a GET route is only asked for GET
    buckets, levels = pets.throttle["prod"]["GET"]
    assert levels == ("stage", "account")
    assert (buckets[0].key, buckets[0].rate, buckets[0].burst) == (f"stage:{API_ID}:prod:/pets/GET", 2, 1)
    assert (buckets[1].key, buckets[1].rate, buckets[1].burst) == ("account", 100, 50)
    assert pets.throttle["beta"]["GET"][1] == ("account",)  # beta has no stage limit
    one = routes[("/pets/{id}", "ANY")]
    assert sorted(one.throttle["prod"]) == sorted(METHODS)  # ANY answers every method
    buckets, levels = one.throttle["prod"]["DELETE"]
    assert levels == ("stage", "account")
    assert buckets[0].key == f"stage:{API_ID}:prod:/pets/{{id}}/DELETE"
    assert (buckets[0].rate, buckets[0].burst) == (10, 5)


def test_nothing_throttled_means_no_throttle_levels() -> None:
    bare = dict(CONFIG["apis"][0], stages={"prod": {"variables": {"backend": "b"}}})
    config, diags = parse_config(yaml.safe_dump({"apis": [bare]}))
    assert config is not None, [d.render() for d in diags]
    snap = build_snapshot(config)
    assert snap.limits is None
    assert all(route.throttle == {} for route in _routes(snap).values())


def test_routes_and_snapshots_cannot_be_changed_after_build() -> None:
    snap = _snapshot()
    route = _routes(snap)[("/pets", "GET")]
    with pytest.raises(dataclasses.FrozenInstanceError):
        route.targets = {}  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        route.throttle = {}  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.version = 0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.route_memo = snap.route_memo  # type: ignore[misc]


def test_every_snapshot_starts_with_its_own_empty_route_memo() -> None:
    first = _snapshot()
    first.route_memo.offer((b"/prod/pets", "GET", None, None), object())
    first.route_memo.offer((b"/prod/pets", "GET", None, None), object())
    assert len(first.route_memo) == 1
    second = _snapshot()
    assert len(second.route_memo) == 0
    renumbered = dataclasses.replace(first, version=first.version + 100)  # as a worker does
    assert renumbered.version == first.version + 100
    assert renumbered.route_memo is not first.route_memo
    assert len(renumbered.route_memo) == 0
    assert renumbered.apis is first.apis
