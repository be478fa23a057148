"""The gateway serving what a store holds: stages and their deployments, composed with the file;
a new deployment served within a second, without a restart and without failing requests in
flight; bad store content refused while the last good state keeps serving.

Objects are written with the store API itself here (the management API's own tests drive it
through boto3 and the AWS CLI)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from iamgate.store import Store, open_store
from tests.gateway.conftest import ALLOW_ALL, Gateway, free_port, metric_value, start_gateway, wait_for

API = "s1t2o3r4e5"


def definition(body: str, *, policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """A deployment's definition: the configuration file's API entry without id and stages."""
    return {
        "name": "stored",
        "policy": policy or ALLOW_ALL,
        "routes": [
            {"path": "/pets", "method": "GET", "integration": {"type": "MOCK", "status": 200, "body": body}}
        ],
    }


def deploy(store: Store, dep: str, body: str, stages: list[str], **kw: Any) -> None:
    """Create deployment ``dep`` and point ``stages`` at it, in one transaction."""
    with store.transaction() as tx:
        tx.put(
            "deployment",
            API,
            dep,
            {"id": dep, "description": "", "createdDate": time.time(), "definition": definition(body, **kw)},
        )
        for stage in stages:
            tx.put("stage", API, stage, {"stageName": stage, "deploymentId": dep, "config": {}})


def _reloads(gw: Gateway, result: str = "") -> float:
    """Reloads so far (each change of the store's generation is one), of one result if given."""
    return metric_value(gw, "iamgate_config_reloads_total", **({"result": result} if result else {}))


def _served(gw: Gateway) -> float:
    return metric_value(gw, "iamgate_requests_total")


def body_of(gw: Gateway, path: str) -> tuple[int, bytes]:
    status, _, body = gw.request("GET", path)
    return status, body


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    yield url, store
    store.close()


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    gateways: list[Gateway] = []

    def start(config: dict[str, Any], *, name: str = "gw", **kw: Any) -> Gateway:
        where = tmp_path / name
        where.mkdir()
        gw = start_gateway(where, config, **kw)
        gateways.append(gw)
        return gw

    yield start
    for gw in gateways:
        gw.stop()


def test_a_stage_serves_its_deployment_and_follows_new_ones(
    sqlite_store: tuple[str, Store], started: Callable[..., Gateway]
) -> None:
    url, store = sqlite_store
    deploy(store, "dep1", "one", ["prod"])
    gw = started({"gateway": {"account_id": "111122223333"}, "store": url})
    assert body_of(gw, "/prod/pets") == (200, b"one")
    assert body_of(gw, "/beta/pets")[0] == 403  # no such stage

    # a new deployment, and requests running the whole time: none fails, the switch is quick
    failures: list[tuple[int, bytes]] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            status, body = body_of(gw, "/prod/pets")
            if status != 200 or body not in (b"one", b"two"):
                failures.append((status, body))

    runner = threading.Thread(target=load)
    runner.start()
    try:
        wait_for(lambda: _served(gw) >= 5, "the load to be served")
        written = time.monotonic()
        deploy(store, "dep2", "two", ["prod"])
        wait_for(lambda: body_of(gw, "/prod/pets")[1] == b"two", "the new deployment", timeout=5)
        took = time.monotonic() - written
    finally:
        stop.set()
        runner.join()
    assert failures == []
    assert took < 1.5, f"served {took:.2f} s after the commit"  # the issue asks for 1 s; slack for CI

    # stages of one API may serve different deployments
    with store.transaction() as tx:
        tx.put("stage", API, "beta", {"stageName": "beta", "deploymentId": "dep1", "config": {}})
    wait_for(lambda: body_of(gw, "/beta/pets") == (200, b"one"), "the beta stage")
    assert body_of(gw, "/prod/pets") == (200, b"two")
    # the draft is never served: a restapi document changes nothing
    reloads = _reloads(gw)
    with store.transaction() as tx:
        tx.put("restapi", "", API, {"restApi": {"id": API, "name": "draft"}})
    wait_for(lambda: _reloads(gw) > reloads, "the store's change to be read")
    assert body_of(gw, "/prod/pets") == (200, b"two")


def test_store_content_that_does_not_validate_is_refused_and_the_last_good_state_serves(
    sqlite_store: tuple[str, Store], started: Callable[..., Gateway]
) -> None:
    url, store = sqlite_store
    deploy(store, "dep1", "good", ["prod"])
    gw = started({"store": url})
    assert body_of(gw, "/prod/pets") == (200, b"good")
    bad_policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke"}]}
    deploy(store, "dep2", "bad", ["prod"], policy=bad_policy)
    wait_for(lambda: "refused" in gw.stderr(), "the refusal in the log")
    log = gw.stderr()
    assert f"the store's API {API}, deployment dep2 (stage(s) prod)" in log
    assert body_of(gw, "/prod/pets") == (200, b"good")
    # a stage pointing at a deployment that is not there is refused the same way
    refused = _reloads(gw, "failed")
    with store.transaction() as tx:
        tx.put("stage", API, "prod", {"stageName": "prod", "deploymentId": "gone", "config": {}})
    wait_for(lambda: _reloads(gw, "failed") > refused, "the reload of the missing deployment to be refused")
    assert body_of(gw, "/prod/pets") == (200, b"good")
    # and fixing the store is enough
    deploy(store, "dep3", "fixed", ["prod"])
    wait_for(lambda: body_of(gw, "/prod/pets") == (200, b"fixed"), "the fixed deployment")


def test_file_and_store_apis_are_served_together(
    sqlite_store: tuple[str, Store], started: Callable[..., Gateway]
) -> None:
    url, store = sqlite_store
    deploy(store, "dep1", "from the store", ["prod"])
    file_api = {
        "id": "f1i2l3e4a5",
        "policy": ALLOW_ALL,
        "stages": {"prod": {}},
        "routes": [
            {"path": "/x", "method": "GET", "integration": {"type": "MOCK", "status": 200, "body": "file"}}
        ],
    }
    gw = started({"store": url, "apis": [file_api]})
    assert gw.request("GET", "/prod/x", headers={"x-apigw-api-id": "f1i2l3e4a5"})[2] == b"file"
    assert gw.request("GET", "/prod/pets", headers={"x-apigw-api-id": API})[2] == b"from the store"
    # an API id in both is refused, and says which object clashes
    with store.transaction() as tx:
        tx.put("deployment", "f1i2l3e4a5", "d9", {"id": "d9", "definition": definition("x")})
        tx.put("stage", "f1i2l3e4a5", "prod", {"stageName": "prod", "deploymentId": "d9", "config": {}})
    wait_for(lambda: "API id 'f1i2l3e4a5' is already used" in gw.stderr(), "the clash in the log")
    assert "the store's API f1i2l3e4a5, deployment d9" in gw.stderr()
    assert gw.request("GET", "/prod/x", headers={"x-apigw-api-id": "f1i2l3e4a5"})[2] == b"file"


def test_store_flag_and_workers_serve_the_same_state(
    sqlite_store: tuple[str, Store], started: Callable[..., Gateway], tmp_path: Path
) -> None:
    """--store on the command line; with two workers, the supervisor reads the store and both
    workers serve what it read."""
    url, store = sqlite_store
    deploy(store, "dep1", "one", ["prod"])
    gw = started({"gateway": {}}, workers=2, extra_args=("--store", url))
    seen = {gw.request("GET", "/prod/pets")[2] for _ in range(20)}
    assert seen == {b"one"}
    deploy(store, "dep2", "two", ["prod"])
    wait_for(
        lambda: {gw.request("GET", "/prod/pets")[2] for _ in range(20)} == {b"two"},
        "both workers on the new deployment",
    )


def test_an_unreachable_store_stops_the_start_with_a_clear_error(tmp_path: Path) -> None:
    url = f"postgresql://iamgate:s3cret@127.0.0.1:{free_port()}/test"
    gw = start_gateway(tmp_path, {"store": url}, wait=False)
    assert gw.proc.wait(30) == 2
    err = gw.stderr()
    assert "cannot read the store: postgresql://iamgate:***@127.0.0.1" in err
    assert "s3cret" not in err
    assert "Traceback" not in err
