"""Many APIs in one gateway (issue 19): a generated configuration of a few hundred APIs routes
every request to its own API and decides it by that API's policy; a redeploy of one API through
the management API, with two workers, is served by both and rebuilds that API only.

The figures (load time, memory, redeploy latency at a thousand APIs) are in bench/scale_bench.py
and docs/benchmarks.md; here the behaviour is checked."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.gateway.conftest import IAMGATE, Gateway, start_gateway, wait_for
from tests.gateway.test_managed import client as management_client
from tests.policies import statement
from tests.scale import SCALE


def _get(gw: Gateway, index: int, path: str, **headers: str) -> tuple[int, bytes]:
    host = f"{SCALE.api_id(index)}.execute-api.localhost"
    status, _, body = gw.request("GET", path, headers={"Host": host, **headers})
    return status, body


def test_three_hundred_apis_each_route_to_their_own_api_and_policy(tmp_path: Path) -> None:
    count = 300
    gw = start_gateway(tmp_path, SCALE.config(count))
    try:
        for i in range(count):
            api = SCALE.api_id(i)
            # a route with a parameter, answered by this API's own integration
            assert _get(gw, i, f"/prod/items/{i}") == (200, f"{api} GET /items/{{id}}".encode())
            # this API's explicit deny
            status, body = _get(gw, i, "/prod/admin")
            assert status == 403
            assert body.endswith(b'with an explicit deny"}'), (i, body)
            assert f":{api}/prod/GET/admin ".encode() in body  # decided for this API
        # another API's policy is not this one's: a scanner is denied everywhere, by each policy
        for i in (0, 150, 299):
            assert _get(gw, i, "/prod/health", **{"User-Agent": "sqlmap/1.7"})[0] == 403
        # an API id nobody configured reaches nothing
        status, _, _ = gw.request("GET", "/prod/health", headers={"Host": "nosuchapi0.execute-api.localhost"})
        assert status in (403, 404)
    finally:
        gw.stop()


def _ready(gw: Gateway) -> dict[str, Any]:
    return dict(json.loads(gw.admin("/readyz")[1]))


def test_a_redeploy_of_one_api_is_served_by_every_worker_and_rebuilds_that_api_only(tmp_path: Path) -> None:
    count = 40
    apis = SCALE.write(tmp_path / "apis.yaml", count)
    db = tmp_path / "store.db"
    subprocess.run(
        [IAMGATE, "apply", "--store", f"sqlite:///{db}", str(apis)], check=True, capture_output=True
    )
    config = {
        "gateway": {"region": "us-east-1", "account_id": SCALE.ACCOUNT},
        "store": f"sqlite:///{db}",
        "management": {"authentication": "none"},
    }
    gw = start_gateway(tmp_path, config, workers=2)
    try:
        wait_for(lambda: _ready(gw).get("workers_current") == 2, "both workers serving")
        client = management_client(gw)
        ids = {a["name"]: a["id"] for a in client.get_rest_apis(limit=500)["items"]}
        target = 7
        policy = SCALE.policy(target)
        policy["Statement"].append(statement("Deny"))
        client.update_rest_api(
            restApiId=ids[f"service-{target}"],
            patchOperations=[{"op": "replace", "path": "/policy", "value": json.dumps(policy)}],
        )
        # the draft is not served until it is deployed
        assert _get(gw, target, "/prod/items/1")[0] == 200
        version = _ready(gw)["config_version"]
        client.create_deployment(restApiId=ids[f"service-{target}"], stageName="prod")

        def served() -> bool:
            ready = _ready(gw)
            return bool(ready["config_version"] > version and ready["workers_current"] == 2)

        wait_for(served, "both workers serving the new deployment")
        # every connection (either worker) sees the change, and only on that API
        for _ in range(6):
            assert _get(gw, target, "/prod/items/1")[0] == 403
        for i in range(count):
            if i != target:
                assert _get(gw, i, f"/prod/items/{i}")[0] == 200, i
        # the supervisor and each worker read and built that one API again, and reused the others
        log = gw.stderr()
        supervisor = re.findall(r"iamgate INFO configuration reloaded \(store generation \d+\): .*", log)
        workers = re.findall(r"iamgate\[\d+\] INFO configuration reloaded \(supervisor\): .*", log)
        assert supervisor
        assert f"(1 of {count} API(s) rebuilt)" in supervisor[-1], supervisor
        assert len(workers) >= 2
        assert all(f"(1 of {count} API(s) rebuilt)" in line for line in workers[-2:]), workers
    finally:
        gw.stop()
