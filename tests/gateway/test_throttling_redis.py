"""Redis-backed limits through real gateway processes: two gateways sharing one usage plan admit
the configured rate within 5 %; Redis stopped mid-load gives each request its fail mode (open or
closed) at once, and limits come back when Redis does."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.conftest import Gateway, metric_value, start_gateway, wait_for
from tests.throttle.test_redis import HOST, PORT, PrivateRedis, Raw, _unavailable, private_redis

KEY = "k1-abcdefghijklmnopqrstuvwxyz"
HANG_MARGIN = 0.5  # scheduling slack on a loaded machine: a hang guard, not a performance bound
__all__ = ["private_redis"]  # the backend tests' fixture (a redis-server of our own), used here too


@pytest.fixture
def shared_redis() -> Iterator[str]:
    """The machine's Redis, under a key prefix of the test's own (deleted afterwards)."""
    try:
        raw = Raw()
        pong = raw("PING")
    except OSError as exc:
        _unavailable(f"no Redis on {HOST}:{PORT}: {exc}")
        raise AssertionError("unreachable") from exc
    assert pong == b"PONG"
    prefix = f"iamgate-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    raw.delete_prefix(prefix)
    raw.close()


def config(
    url: str, prefix: str, *, plan: dict[str, Any], on_error: str = "open", stage: Any = None
) -> dict[str, Any]:
    def route(path: str, **extra: Any) -> dict[str, Any]:
        return {
            "path": path,
            "method": "GET",
            "integration": {"type": "MOCK", "status": 200, "body": "ok"},
            **extra,
        }

    return {
        "throttling": {"backend": "redis", "redis": {"url": url, "prefix": prefix, "on_error": on_error}},
        "api_keys": [{"id": "k1", "value": KEY}],
        "usage_plans": [
            {"id": "shared", "api_stages": [{"api": "a1b2c3d4e5", "stage": "prod"}], "keys": ["k1"], **plan}
        ],
        "apis": [
            {
                "id": "a1b2c3d4e5",
                "stages": {"prod": stage or {}},
                "routes": [route("/keyed", api_key_required=True), route("/open")],
            }
        ],
    }


def test_two_gateways_share_one_usage_plan(shared_redis: str, tmp_path: Path) -> None:
    rate, burst, seconds = 40.0, 10, 3.0
    cfg = config(f"redis://{HOST}:{PORT}/0", shared_redis, plan={"throttle": {"rate": rate, "burst": burst}})
    gateways: list[Gateway] = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            gateways.append(start_gateway(tmp_path / name, cfg))
        counts = {"ok": 0, "throttled": 0, "other": 0}
        lock = threading.Lock()
        stop = threading.Event()

        def load(gw: Gateway) -> None:
            while not stop.is_set():
                status = gw.request("GET", "/prod/keyed", headers={"x-api-key": KEY})[0]
                kind = "ok" if status == 200 else "throttled" if status == 429 else "other"
                with lock:
                    counts[kind] += 1

        threads = [threading.Thread(target=load, args=(gw,)) for gw in gateways for _ in range(3)]
        started = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(seconds)  # the load runs for this long: the test measures admissions over time
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
    finally:
        for gw in gateways:
            gw.stop()
    expected = burst + rate * elapsed
    assert counts["other"] == 0
    assert counts["throttled"] > counts["ok"], "the load must be well above the limit"
    assert abs(counts["ok"] - expected) <= 0.05 * expected, (counts, expected)


def test_redis_stopped_mid_load_gives_each_request_its_fail_mode(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    """/keyed is in a usage plan that fails open; /open has only the stage limit, whose fail mode
    is throttling.redis.on_error: closed. Limits are far above the load: only failures refuse."""
    never = {"rate": 1e6, "burst": 1_000_000}
    cfg = config(
        private_redis.url,
        "iamgate-test:",
        plan={"throttle": never, "on_backend_error": "open"},
        on_error="closed",
        stage={"throttling": never},
    )
    gw = start_gateway(tmp_path, cfg)
    try:

        def call(path: str) -> tuple[int, float, str | None]:
            t0 = time.monotonic()
            status, headers, _ = gw.request("GET", path, headers={"x-api-key": KEY})
            return status, time.monotonic() - t0, headers.get("retry-after")

        assert call("/prod/keyed")[0] == 200
        assert call("/prod/open")[0] == 200
        private_redis.stop()
        outage = [call("/prod/keyed") for _ in range(30)] + [call("/prod/open") for _ in range(30)]
        assert {status for status, _, _ in outage[:30]} == {200}  # the plan fails open
        assert {(status, retry) for status, _, retry in outage[30:]} == {(429, "1")}  # the rest closed
        slowest = max(took for _, took, _ in outage)
        assert slowest < 0.05 + HANG_MARGIN, f"a request waited {slowest:.3f} s"
        assert (
            metric_value(gw, "iamgate_throttle_backend_fallbacks_total", api="a1b2c3d4e5", mode="open") >= 30
        )
        assert (
            metric_value(gw, "iamgate_throttle_backend_fallbacks_total", api="a1b2c3d4e5", mode="closed")
            >= 30
        )
        # the log says so, not once per request
        failures = [line for line in gw.stderr().splitlines() if "redis" in line.lower()]
        assert 1 <= len(failures) <= 3, failures

        private_redis.start()  # the same port: the gateway reconnects by itself
        wait_for(lambda: call("/prod/open")[0] == 200, "recovery once Redis is back", timeout=15)
        assert call("/prod/keyed")[0] == 200
    finally:
        gw.stop()


def test_a_client_that_leaves_while_its_check_waits(private_redis: PrivateRedis, tmp_path: Path) -> None:
    """Redis frozen: the check of a request whose client then closes (half-way through the
    body) is settled by the timeout (fail-closed) after the client has gone. That late verdict
    is dropped: nothing is written to a closed connection, nothing raised, the request is logged
    once, as the client's (499), none stays in flight, and the gateway serves the next requests
    once Redis is back."""
    never = {"rate": 1e6, "burst": 1_000_000}
    cfg = config(private_redis.url, "iamgate-test:", plan={}, on_error="closed", stage={"throttling": never})
    gw = start_gateway(tmp_path, cfg)
    made: list[int] = []

    def call() -> tuple[int, str | None]:
        status, headers, _ = gw.request("GET", "/prod/open")
        made.append(status)
        return status, headers.get("retry-after")

    try:
        assert call() == (200, None)
        private_redis.freeze()
        try:
            with socket.create_connection(("127.0.0.1", gw.port)) as sock:
                # the body is still to come, so the gateway keeps reading and sees the client close
                sock.sendall(b"GET /prod/open HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\nabc")
                # the check is on its way to Redis, which does not answer
                wait_for(lambda: metric_value(gw, "iamgate_requests_in_flight") == 1, "the request's check")
            # past the 50 ms timeout: the fail mode's verdict for the gone client, logged as 499
            wait_for(lambda: metric_value(gw, "iamgate_requests_total") == 2, "the gone client's verdict")
            assert call() == (429, "1")  # while Redis is frozen: the fail mode, not a hang
        finally:
            private_redis.thaw()
        wait_for(lambda: call()[0] == 200, "serving once Redis answers again")
        statuses = [e["status"] for e in gw.access_log()]
        assert statuses == [made[0], 499, *made[1:]]
        wait_for(lambda: metric_value(gw, "iamgate_requests_in_flight") == 0, "no request left in flight")
        assert "Traceback" not in gw.stderr()
    finally:
        gw.stop()
