"""Usage reports (GetUsage's shape) and quota windows, from a real configuration and the memory
backend driven on a fake clock."""

from __future__ import annotations

import asyncio
import calendar
import time
from typing import Any

import pytest
import yaml

from iamgate.config.load import parse_config
from iamgate.config.snapshot import Snapshot, build_snapshot
from iamgate.throttle.backend import Quota
from iamgate.throttle.memory import MemoryBackend
from iamgate.throttle.settings import QuotaSpec
from iamgate.throttle.usage import UsageError, get_usage

KEYS = [{"id": f"k{i}", "value": f"k{i}-abcdefghijklmnopqrstuvwxyz"} for i in (1, 2, 3)]


def _utc(day: str) -> int:
    return calendar.timegm(time.strptime(day, "%Y-%m-%d"))


def _snapshot(plans: list[dict[str, Any]]) -> Snapshot:
    config = {
        "apis": [
            {
                "id": "a1b2c3d4e5",
                "stages": {"prod": {}},
                "routes": [{"path": "/", "method": "GET", "integration": {"type": "MOCK"}}],
            }
        ],
        "api_keys": KEYS,
        "usage_plans": plans,
    }
    parsed, diags = parse_config(yaml.safe_dump(config))
    assert parsed is not None, [d.render() for d in diags]
    return build_snapshot(parsed)


def _plan(**kw: Any) -> dict[str, Any]:
    return {"id": "basic", "api_stages": [{"api": "a1b2c3d4e5", "stage": "prod"}], "keys": ["k1", "k2"], **kw}


def _use(backend: MemoryBackend, snapshot: Snapshot, key: str, day: str, n: int) -> None:
    plan = snapshot.config.usage_plans[0]
    for i in range(n):
        now = _utc(day) + 3600 + i
        quota = None
        if plan.quota is not None:
            start, end, limit = plan.quota.window(now)
            quota = Quota(f"quota:{plan.id}:{key}", limit, start, end)
        backend.check([], quota, now, f"usage:{plan.id}:{key}")


def _report(snapshot: Snapshot, backend: MemoryBackend, **query: str) -> dict[str, Any]:
    return asyncio.run(get_usage(snapshot, backend, query))


def test_daily_used_and_remaining_across_a_period_boundary() -> None:
    """A weekly quota of 10 starting on Mondays: remaining counts down within a week and starts
    again on Monday 2026-11-23."""
    snapshot = _snapshot([_plan(quota={"limit": 10, "period": "WEEK", "offset": 1})])
    backend = MemoryBackend()
    _use(backend, snapshot, "k1", "2026-11-20", 3)  # Friday
    _use(backend, snapshot, "k1", "2026-11-22", 9)  # Sunday: only 7 are left of the week
    _use(backend, snapshot, "k1", "2026-11-23", 2)  # Monday: a new week
    _use(backend, snapshot, "k2", "2026-11-23", 1)
    report = _report(snapshot, backend, plan="basic", **{"from": "2026-11-21", "to": "2026-11-24"})
    assert report["usagePlanId"] == "basic"
    assert (report["startDate"], report["endDate"]) == ("2026-11-21", "2026-11-24")
    assert report["items"] == {
        "k1": [[0, 7], [7, 0], [2, 8], [0, 8]],
        "k2": [[0, 10], [0, 10], [1, 9], [0, 9]],
    }


def test_one_key_and_plans_found_by_key() -> None:
    snapshot = _snapshot([_plan(), {**_plan(), "id": "gold", "keys": ["k3"], "api_stages": []}])
    backend = MemoryBackend()
    _use(backend, snapshot, "k1", "2026-11-28", 4)
    report = _report(snapshot, backend, key="k1", **{"from": "2026-11-28", "to": "2026-11-28"})
    assert report["items"] == {"k1": [[4, None]]}  # no quota: nothing "remaining"


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({"from": "2026-11-28"}, 400, "name a usage plan"),
        ({"plan": "basic"}, 400, "'from' is required"),
        ({"plan": "basic", "from": "28/11/2026", "to": "2026-11-28"}, 400, "must be a date like"),
        ({"plan": "basic", "from": "2026-02-30", "to": "2026-11-28"}, 400, "is not a date"),
        ({"plan": "basic", "from": "2026-11-28", "to": "2026-11-01"}, 400, "is before"),
        ({"plan": "basic", "from": "2020-01-01", "to": "2026-11-01"}, 400, "at most 366 days"),
        ({"plan": "nope", "from": "2026-11-28", "to": "2026-11-28"}, 404, "there is no usage plan 'nope'"),
        ({"plan": "basic", "key": "k3", "from": "2026-11-28", "to": "2026-11-28"}, 404, "not in usage plan"),
    ],
)
def test_refused_queries(query: dict[str, str], status: int, message: str) -> None:
    snapshot = _snapshot([_plan(), {**_plan(), "id": "gold", "keys": ["k3"], "api_stages": []}])
    with pytest.raises(UsageError, match=message) as caught:
        _report(snapshot, MemoryBackend(), **query)
    assert caught.value.status == status


def test_subtract_offset_applies_to_the_first_period_only() -> None:
    spec = QuotaSpec(100, "MONTH", 30, subtract=True, created=_utc("2026-11-10"))
    assert spec.window(_utc("2026-11-15")) == (_utc("2026-11-01"), _utc("2026-12-01"), 70)
    assert spec.window(_utc("2026-12-15")) == (_utc("2026-12-01"), _utc("2027-01-01"), 100)
    assert QuotaSpec(100, "MONTH", 9).window(_utc("2026-11-15")) == (
        _utc("2026-11-10"),
        _utc("2026-12-10"),
        100,
    )


def test_subtract_mode_needs_its_start_day() -> None:
    config = {
        "apis": [
            {
                "id": "a1b2c3d4e5",
                "stages": {"prod": {}},
                "routes": [{"path": "/", "method": "GET", "integration": {"type": "MOCK"}}],
            }
        ],
        "api_keys": KEYS,
        "usage_plans": [_plan(quota={"limit": 10, "period": "DAY", "offset": 3, "offset_mode": "subtract"})],
    }
    parsed, diags = parse_config(yaml.safe_dump(config))
    assert parsed is None
    assert any("created: YYYY-MM-DD" in d.render() for d in diags)
    config["usage_plans"][0]["quota"]["created"] = "2026-11-28"
    parsed, diags = parse_config(yaml.safe_dump(config))
    assert parsed is not None, [d.render() for d in diags]
    quota = parsed.usage_plans[0].quota
    assert quota is not None
    assert quota.window(_utc("2026-11-28") + 5)[2] == 7
