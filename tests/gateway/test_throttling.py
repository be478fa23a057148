"""Throttling and quotas through the real gateway: 429 bodies and headers, the levels and their
order, usage plans, per-route limits, usage reports (admin endpoint and CLI), metrics, and a
limit that holds for the whole node with several workers."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.conftest import (
    ALLOW_ALL,
    IAMGATE,
    Backend,
    Gateway,
    metric_value,
    simple_config,
)

KEY1 = "k1-abcdefghijklmnopqrstuvwxyz"
KEY2 = "k2-abcdefghijklmnopqrstuvwxyz"
KEY3 = "k3-abcdefghijklmnopqrstuvwxyz"


def _route(backend: Backend, path: str, method: str, **extra: Any) -> dict[str, Any]:
    return {
        "path": path,
        "method": method,
        "integration": {"type": "HTTP_PROXY", "uri": f"{backend.url}{path}"},
        **extra,
    }


def _config(backend: Backend, *, stage: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    routes = [
        _route(backend, "/pets", "GET"),
        _route(backend, "/pets", "POST"),
        _route(backend, "/keyed", "GET", api_key_required=True),
        _route(backend, "/keyed", "POST", api_key_required=True),
    ]
    config = simple_config(policy=ALLOW_ALL, routes=routes)
    config["apis"][0]["stages"] = {"prod": stage or {}, "test": {}}
    config["api_keys"] = [
        {"id": "k1", "value": KEY1},
        {"id": "k2", "value": KEY2},
        {"id": "k3", "value": KEY3},
    ]
    config.update(top)
    return config


def _statuses(gw: Gateway, method: str, path: str, n: int, **kw: Any) -> list[int]:
    return [gw.request(method, path, **kw)[0] for _ in range(n)]


def test_a_stage_limit_answers_429_as_api_gateway_does(
    backend: Backend, gateway_factory: Callable[..., Gateway]
) -> None:
    gw = gateway_factory(_config(backend, stage={"throttling": {"rate": 0.001, "burst": 3}}))
    assert _statuses(gw, "GET", "/prod/pets", 3) == [200, 200, 200]
    status, headers, body = gw.request("GET", "/prod/pets")
    assert status == 429
    assert json.loads(body) == {"message": "Too Many Requests"}
    assert headers["x-amzn-errortype"] == "TooManyRequestsException"
    assert headers["content-type"] == "application/json"
    assert int(headers["retry-after"]) >= 900  # one token at 0.001/s: ~1000 s
    assert len(backend.requests) == 3  # the refused request never reached the backend
    # each method has its own bucket; another stage has no limit
    assert gw.request("POST", "/prod/pets")[0] == 200
    assert _statuses(gw, "GET", "/test/pets", 5) == [200] * 5
    assert metric_value(gw, "iamgate_throttled_total", api="a1b2c3d4e5", stage="prod", level="stage") == 1
    entries = [e for e in gw.access_log() if e.get("status") == 429]
    assert [(e["error.responseType"], e["throttle.level"]) for e in entries] == [("THROTTLED", "stage")]


def test_method_settings_override_the_stage_default(
    backend: Backend, gateway_factory: Callable[..., Gateway]
) -> None:
    stage = {
        "throttling": {"rate": 0.001, "burst": 5},
        "method_throttling": {"/pets/POST": {"rate": 0.001, "burst": 1}},
    }
    gw = gateway_factory(_config(backend, stage=stage))
    assert _statuses(gw, "POST", "/prod/pets", 3) == [200, 429, 429]
    assert _statuses(gw, "GET", "/prod/pets", 6) == [200] * 5 + [429]


def test_one_route_asked_for_other_stages_and_methods_in_turn_keeps_their_buckets_apart(
    backend: Backend, gateway_factory: Callable[..., Gateway]
) -> None:
    """An ANY route, its stage and method changing from one request to the next (the stage keeps
    the last one's buckets at hand): each (stage, method) still counts in its own bucket."""
    config = _config(
        backend,
        stage={
            "throttling": {"rate": 0.001, "burst": 100},
            "method_throttling": {"/any/GET": {"rate": 0.001, "burst": 2}},
        },
    )
    config["apis"][0]["routes"].append(_route(backend, "/any", "ANY"))
    config["apis"][0]["stages"]["test"] = {"throttling": {"rate": 0.001, "burst": 1}}
    gw = gateway_factory(config)
    turns = [("GET", "prod"), ("POST", "prod"), ("GET", "test"), ("GET", "prod"), ("POST", "test")]
    turns += [("GET", "prod"), ("GET", "test"), ("POST", "prod"), ("POST", "test")]
    got = [gw.request(method, f"/{stage}/any")[0] for method, stage in turns]
    assert got == [200, 200, 200, 200, 200, 429, 429, 200, 429]


def test_the_account_limit_covers_every_api_and_stage(
    backend: Backend, gateway_factory: Callable[..., Gateway]
) -> None:
    config = _config(backend, throttling={"account": {"rate": 0.001, "burst": 4}})
    gw = gateway_factory(config)
    assert _statuses(gw, "GET", "/prod/pets", 2) == [200, 200]
    assert _statuses(gw, "GET", "/test/pets", 3) == [200, 200, 429]
    assert gw.request("POST", "/prod/pets")[0] == 429
    assert metric_value(gw, "iamgate_throttled_total", api="a1b2c3d4e5", stage="test", level="account") == 1


def _plans(**plan: Any) -> list[dict[str, Any]]:
    base = {"id": "basic", "api_stages": [{"api": "a1b2c3d4e5", "stage": "prod"}], "keys": ["k1", "k2"]}
    return [{**base, **plan}]


def test_usage_plan_throttle_is_per_key(backend: Backend, gateway_factory: Callable[..., Gateway]) -> None:
    gw = gateway_factory(_config(backend, usage_plans=_plans(throttle={"rate": 0.001, "burst": 2})))
    k1, k2 = {"x-api-key": KEY1}, {"x-api-key": KEY2}
    assert _statuses(gw, "GET", "/prod/keyed", 3, headers=k1) == [200, 200, 429]
    assert _statuses(gw, "GET", "/prod/keyed", 2, headers=k2) == [200, 200]  # its own bucket
    # the plan's limit is shared by the key's methods (one bucket per key)
    assert gw.request("POST", "/prod/keyed", headers=k1)[0] == 429
    # a key in no plan for this stage is refused, as API Gateway does once plans exist
    status, _, body = gw.request("GET", "/prod/keyed", headers={"x-api-key": KEY3})
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    # methods that do not require a key are not metered by the plan
    assert _statuses(gw, "GET", "/prod/pets", 4, headers=k1) == [200] * 4
    assert (
        metric_value(gw, "iamgate_throttled_total", api="a1b2c3d4e5", stage="prod", level="usage-plan") == 2
    )


def test_a_per_method_plan_throttle_replaces_the_plan_throttle_for_that_method(
    backend: Backend, gateway_factory: Callable[..., Gateway]
) -> None:
    plans = _plans(
        throttle={"rate": 0.001, "burst": 3},
        api_stages=[
            {
                "api": "a1b2c3d4e5",
                "stage": "prod",
                "throttle": {"/keyed/POST": {"rate": 0.001, "burst": 1}},
            }
        ],
    )
    gw = gateway_factory(_config(backend, usage_plans=plans))
    k1 = {"x-api-key": KEY1}
    assert _statuses(gw, "POST", "/prod/keyed", 2, headers=k1) == [200, 429]
    assert _statuses(gw, "GET", "/prod/keyed", 4, headers=k1) == [200, 200, 200, 429]


def test_a_quota_answers_limit_exceeded_until_the_period_ends(
    backend: Backend, gateway_factory: Callable[..., Gateway]
) -> None:
    gw = gateway_factory(_config(backend, usage_plans=_plans(quota={"limit": 3, "period": "DAY"})))
    k1 = {"x-api-key": KEY1}
    assert _statuses(gw, "GET", "/prod/keyed", 3, headers=k1) == [200, 200, 200]
    status, headers, body = gw.request("POST", "/prod/keyed", headers=k1)
    assert status == 429
    assert json.loads(body) == {"message": "Limit Exceeded"}
    assert headers["x-amzn-errortype"] == "LimitExceededException"
    midnight = (int(time.time()) // 86400 + 1) * 86400
    assert abs(int(headers["retry-after"]) - (midnight - time.time())) <= 5
    assert gw.request("GET", "/prod/keyed", headers={"x-api-key": KEY2})[0] == 200  # k2's own quota
    assert metric_value(gw, "iamgate_quota_exceeded_total", api="a1b2c3d4e5", stage="prod", plan="basic") == 1

    # the usage report: per key and day, used and the quota left
    today = time.strftime("%Y-%m-%d", time.gmtime())
    status, raw = gw.admin(f"/usage?plan=basic&from={today}&to={today}")
    assert status == 200
    report = json.loads(raw)
    assert report == {
        "usagePlanId": "basic",
        "startDate": today,
        "endDate": today,
        "items": {"k1": [[3, 0]], "k2": [[1, 2]]},
        "position": None,
    }
    # the same through the CLI
    cli = subprocess.run(
        [IAMGATE, "usage", "--admin", f"http://127.0.0.1:{gw.admin_port}", "--key", "k1", "--from", today],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["items"] == {"k1": [[3, 0]]}
    table = subprocess.run(
        [
            IAMGATE,
            "usage",
            "--admin",
            f"http://127.0.0.1:{gw.admin_port}",
            "--from",
            today,
            "--format",
            "table",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert table.returncode == 0, table.stderr
    assert f"k2                       {today}          1          2" in table.stdout
    # refused queries say why
    status, raw = gw.admin(f"/usage?plan=nope&from={today}&to={today}")
    assert status == 404
    assert "there is no usage plan 'nope'" in json.loads(raw)["message"]
    status, raw = gw.admin("/usage?plan=basic&from=2026-13-01&to=2026-13-02")
    assert status == 400
    bad = subprocess.run(
        [IAMGATE, "usage", "--admin", f"http://127.0.0.1:{gw.admin_port}", "--key", "k3", "--from", today],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 1
    assert "API key 'k3' is in no usage plan" in bad.stderr


def test_usage_cli_without_a_gateway_says_so(tmp_path: Any) -> None:
    from tests.gateway.conftest import free_port

    cli = subprocess.run(
        [IAMGATE, "usage", "--admin", f"http://127.0.0.1:{free_port()}", "--from", "2026-11-01"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cli.returncode == 2
    assert "no gateway answered" in cli.stderr
    assert "Traceback" not in cli.stderr


def test_route_limits_by_client_address(backend: Backend, gateway_factory: Callable[..., Gateway]) -> None:
    config = _config(backend)
    config["gateway"] = {**config["gateway"], "trusted_proxies": ["127.0.0.0/8"]}
    config["apis"][0]["routes"].append(
        _route(backend, "/search", "GET", rate_limit={"by": "ip", "rate": 0.001, "burst": 2})
    )
    gw = gateway_factory(config)
    a, b = {"x-forwarded-for": "198.51.100.1"}, {"x-forwarded-for": "198.51.100.2"}
    assert _statuses(gw, "GET", "/prod/search", 3, headers=a) == [200, 200, 429]
    assert _statuses(gw, "GET", "/prod/search", 2, headers=b) == [200, 200]
    assert _statuses(gw, "GET", "/prod/pets", 3, headers=a) == [200] * 3  # other routes: unlimited
    assert metric_value(gw, "iamgate_throttled_total", api="a1b2c3d4e5", stage="prod", level="route-ip") == 1


def test_route_limits_by_principal(backend: Backend, gateway_factory: Callable[..., Gateway]) -> None:
    """Callers without an identity share the ``anonymous`` bucket; API-key callers are metered by
    their plan, not here."""
    config = _config(backend)
    config["apis"][0]["routes"].append(
        _route(backend, "/who", "GET", rate_limit={"by": "principal", "rate": 0.001, "burst": 1})
    )
    gw = gateway_factory(config)
    assert _statuses(gw, "GET", "/prod/who", 2) == [200, 429]


def test_limits_hold_for_the_whole_node_with_several_workers(
    backend: Backend, gateway_factory: Callable[..., Gateway]
) -> None:
    """Two workers, one stage limit of 20: concurrent requests on separate connections, until both
    workers have answered; exactly 20 pass in all (with a bucket per worker, the second worker
    would admit 20 more). Usage counted by either worker is reported once."""
    config = _config(backend, stage={"throttling": {"rate": 0.001, "burst": 20}}, usage_plans=_plans())
    before = _state_files()
    gw = gateway_factory(config, workers=2)
    assert len(_state_files() - before) == 1  # the workers' shared counters

    def one(_: int) -> tuple[int, str]:
        status, headers, _ = gw.request("GET", "/prod/pets")
        return status, headers["x-amzn-requestid"][:13]

    results: list[tuple[int, str]] = []
    with ThreadPoolExecutor(12) as pool:
        while len(results) < 600 and (len(results) < 60 or len({w for _, w in results}) < 2):
            results.extend(pool.map(one, range(60)))
    assert len({worker for _, worker in results}) == 2, "both workers answered"
    assert sum(status == 200 for status, _ in results) == 20
    refused = sum(status == 429 for status, _ in results)
    assert refused == len(results) - 20
    assert (
        metric_value(gw, "iamgate_throttled_total", api="a1b2c3d4e5", stage="prod", level="stage") == refused
    )

    # /keyed/GET has a bucket of its own: these six pass, whichever worker takes them
    with ThreadPoolExecutor(6) as pool:
        keyed = list(
            pool.map(lambda _: gw.request("GET", "/prod/keyed", headers={"x-api-key": KEY1})[0], range(6))
        )
    assert keyed == [200] * 6
    today = time.strftime("%Y-%m-%d", time.gmtime())
    status, raw = gw.admin(f"/usage?key=k1&from={today}&to={today}")
    assert status == 200
    assert json.loads(raw)["items"] == {"k1": [[6, None]]}
    assert gw.stop() == 0
    assert _state_files() - before == set(), "the supervisor removes the file when it exits"


def _state_files() -> set[str]:
    shm = Path("/dev/shm")
    where = shm if shm.is_dir() else Path(tempfile.gettempdir())
    return {p.name for p in where.glob("iamgate-throttle-*")}


def test_reloading_new_limits_applies_them(backend: Backend, gateway_factory: Callable[..., Gateway]) -> None:
    from tests.gateway.conftest import config_version, rewrite_config, wait_for

    gw = gateway_factory(_config(backend))
    assert _statuses(gw, "GET", "/prod/pets", 5) == [200] * 5
    before = config_version(gw)
    rewrite_config(gw, _config(backend, stage={"throttling": {"rate": 0.001, "burst": 1}}))
    wait_for(lambda: config_version(gw) > before, "the reload")
    assert _statuses(gw, "GET", "/prod/pets", 2) == [200, 429]


def test_bad_route_and_stage_limits_are_refused(backend: Backend, tmp_path: Any) -> None:
    from tests.gateway.conftest import write_config

    config = _config(backend, stage={"method_throttling": {"pets/GET": {"rate": 1, "burst": 1}}})
    config["apis"][0]["routes"][0]["rate_limit"] = {"by": "cookie", "rate": 1, "burst": 1}
    path = write_config(tmp_path / "bad.yaml", config)
    result = subprocess.run(
        [IAMGATE, "config", "validate", str(path)], check=False, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert "'pets/GET' is not a resource path and method" in result.stdout
    assert "/apis/0/routes/0/rate_limit/by" in result.stdout
    assert "ip, principal or context.authorizer.KEY" in result.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"throttling": {"backend": "redis"}}, "the redis backend needs redis"),
        ({"throttling": {"account": {"rate": -1, "burst": 5}}}, "/throttling/account/rate"),
        (
            {"usage_plans": [{"id": "p", "api_stages": [{"api": "a1b2c3d4e5", "stage": "nope"}]}]},
            "not a configured API stage",
        ),
        ({"usage_plans": _plans(keys=["zz"])}, "API key 'zz' is not defined"),
        (
            {"usage_plans": [*_plans(), *_plans(id="other", keys=["k1"])]},
            "API key 'k1' is already in usage plan 'basic' for a1b2c3d4e5/prod",
        ),
        ({"usage_plans": _plans(quota={"limit": 5, "period": "YEAR"})}, "/usage_plans/0/quota/period"),
        ({"usage_plans": _plans(quota={"limit": 5, "period": "WEEK", "offset": 7})}, "quota/offset"),
        ({"throttling": {"redis": {"url": "http://x"}}}, "/throttling/redis/url"),
    ],
)
def test_bad_throttling_configuration_is_refused_with_its_location(
    backend: Backend, tmp_path: Any, change: dict[str, Any], message: str
) -> None:
    from tests.gateway.conftest import write_config

    config = _config(backend, **change)
    path = write_config(tmp_path / "bad.yaml", config)
    result = subprocess.run(
        [IAMGATE, "config", "validate", str(path)], check=False, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert message in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
