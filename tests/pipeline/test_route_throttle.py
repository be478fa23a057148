"""The route stage finds the route's static throttle levels in the snapshot (built with it) and
hands them to the throttle stage; a method no route entry was built for is worked out per request."""

from __future__ import annotations

import yaml

from iamgate.config.load import parse_config
from iamgate.config.snapshot import Snapshot, build_snapshot, static_throttle
from iamgate.pipeline.stages import resolve
from tests.config.test_snapshot import CONFIG


def _snapshot() -> Snapshot:
    config, diags = parse_config(yaml.safe_dump(CONFIG))
    assert config is not None, [d.render() for d in diags]
    return build_snapshot(config)


def test_the_routed_request_carries_the_levels_built_for_its_stage_and_method() -> None:
    snap = _snapshot()
    routed = resolve(snap, b"/prod/pets/7", "DELETE", {})
    assert routed.problem is None
    assert routed.route is not None
    assert routed.throttle is routed.route.throttle["prod"]["DELETE"]
    beta = resolve(snap, b"/beta/pets", "GET", {})
    assert beta.route is not None
    assert beta.throttle is beta.route.throttle["beta"]["GET"]


def test_a_method_outside_the_table_is_worked_out_the_same_way() -> None:
    snap = _snapshot()
    routed = resolve(snap, b"/prod/pets/7", "PROPFIND", {})  # an ANY route answers it
    assert routed.problem is None
    assert routed.route is not None
    assert routed.throttle is None
    assert snap.limits is not None
    assert routed.stage is not None
    buckets, levels = static_throttle(
        snap.limits, "a1b2c3d4e5", routed.stage, routed.route.resource_path, routed.route.method, "PROPFIND"
    )
    assert levels == ("stage", "account")
    assert buckets[0].key == "stage:a1b2c3d4e5:prod:/pets/{id}/PROPFIND"
