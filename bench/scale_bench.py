"""Scale: many APIs in one gateway (issue 19). Figures, not pass/fail; docs/benchmarks.md.

    python bench/scale_bench.py load --apis 100 1000        # validate, serve to first answer, RSS
    python bench/scale_bench.py redeploy --apis 1000 --redeploys 100 --workers 2
    python bench/scale_bench.py management --apis 1000      # paged lists, per call
    python bench/scale_bench.py load --apis 10000 --runs 1  # the large case

``load``: ``iamgate config validate`` and ``iamgate serve`` (one worker) on a generated
configuration (bench/scale_config.py: 10 routes and a 5-statement policy per API), each run
``--runs`` times, medians; the interpreter's start with ``import iamgate.cli`` is measured alone
and reported, so that it can be subtracted. RSS of the serving process after its first answer
and after one request to every API.

``redeploy``: the APIs applied to a SQLite store, the gateway serving that store with
``--workers N``; then, ``--redeploys`` times, one API's policy is changed and deployed through the
management API with boto3 (``update-rest-api``, then ``create-deployment``), and the time is taken
from ``create-deployment``'s return until every worker serves the new version (``/readyz``:
``workers_current``) and a request to that API sees the change. Workers' RSS before and after.

``management``: ``get-rest-apis``, ``get-resources`` and ``get-deployments`` through boto3 at
``--apis`` APIs, a first page (``limit`` 25) and a page in the middle (``position``), medians.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import scale_config  # noqa: E402

BIN = Path(sys.executable).parent
IAMGATE = str(BIN / "iamgate")
_ports = itertools.count(24000 + os.getpid() % 2000)  # below the kernel's ephemeral range


def port() -> int:
    return next(_ports)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], check=False, capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def get(port_: int, path: str, host: str | None = None, timeout: float = 5) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port_, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host} if host else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def host_of(index: int) -> str:
    return f"{scale_config.api_id(index)}.execute-api.localhost"


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


@contextlib.contextmanager
def serving(config: Path, *, workers: int = 1) -> Iterator[tuple[subprocess.Popen[bytes], int, int, float]]:
    """A gateway on ``config``: (process, port, admin port, seconds from start to its first answer)."""
    data, admin = port(), port()
    start = time.perf_counter()
    args = [
        "--config",
        str(config),
        "--port",
        str(data),
        "--admin-port",
        str(admin),
        "--workers",
        str(workers),
    ]
    # the log to a file: a pipe nobody reads fills up (64 KB) and the gateway then waits on it
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([IAMGATE, "serve", *args], stdout=subprocess.DEVNULL, stderr=log)
        try:
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(log.read().decode())
                try:
                    status, _ = get(data, "/prod/health", host_of(0), timeout=30)
                except OSError:
                    time.sleep(0.005)
                    continue
                if status == 200:
                    break
            yield proc, data, admin, time.perf_counter() - start
        finally:
            proc.terminate()
            proc.wait(30)


def load(args: argparse.Namespace) -> None:
    """Each figure at N APIs, and the same figure at one API: the difference is what the APIs
    cost, without the interpreter's start and the imports (reported on their own)."""
    python = [sys.executable, "-c", "import iamgate.cli"]
    start_import = statistics.median(timed(python) for _ in range(max(args.runs, 3)))
    print(f"interpreter start + import iamgate.cli: {start_import:.2f} s")
    base: tuple[float, float] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted({1, *args.apis}):
            config = scale_config.write(Path(tmp) / f"apis-{n}.yaml", n)
            validate = [timed([IAMGATE, "config", "validate", str(config)]) for _ in range(args.runs)]
            firsts, rss_first, rss_all = [], [], []
            for _ in range(args.runs):
                with serving(config) as (proc, data, _admin, first):
                    firsts.append(first)
                    rss_first.append(rss_mb(proc.pid))
                    for i in range(n):
                        status, _ = get(data, "/prod/items/7", host_of(i))
                        assert status == 200, (i, status)
                    rss_all.append(rss_mb(proc.pid))
            v, f = statistics.median(validate), statistics.median(firsts)
            if base is None:
                base = (v, f)
            r_first, r_all = statistics.median(rss_first), statistics.median(rss_all)
            print(
                f"{n:>6} APIs ({config.stat().st_size / 1e6:.1f} MB of YAML): "
                f"config validate {v:.2f} s (+{v - base[0]:.2f} s over 1 API), "
                f"serve to first answer {f:.2f} s (+{f - base[1]:.2f} s), "
                f"RSS {r_first:.0f} MB at the first answer, {r_all:.0f} MB after a request to every API"
            )


def _client(admin: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "apigateway",
        endpoint_url=f"http://127.0.0.1:{admin}",
        region_name="us-east-1",
        aws_access_key_id="AKIAIAMGATEBENCH0001",
        aws_secret_access_key="bench",
        config=Config(retries={"max_attempts": 1}),
    )


@contextlib.contextmanager
def store_gateway(
    n: int, workers: int, decisions: str = "true"
) -> Iterator[tuple[subprocess.Popen[bytes], int, int, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        apis = scale_config.write(Path(tmp) / "apis.yaml", n)
        db = Path(tmp) / "store.db"
        started = time.perf_counter()
        subprocess.run(
            [IAMGATE, "apply", "--store", f"sqlite:///{db}", str(apis)], check=True, stdout=subprocess.DEVNULL
        )
        print(f"iamgate apply of {n} APIs: {time.perf_counter() - started:.1f} s")
        config = Path(tmp) / "gateway.yaml"
        config.write_text(
            "gateway: {region: us-east-1, account_id: '111122223333'}\n"
            f"store: sqlite:///{db}\n"
            f"management: {{authentication: none, console: {{decisions: {decisions}}}}}\n"
        )
        with serving(config, workers=workers) as (proc, data, admin, first):
            print(
                f"serving {n} APIs from the store with {workers} worker(s): first answer after {first:.2f} s"
            )
            yield proc, data, admin, _client(admin)


def _ready(admin: int) -> dict[str, Any]:
    _, body = get(admin, "/readyz")
    return dict(json.loads(body))


def redeploy(args: argparse.Namespace) -> None:
    n = args.apis[0]
    with store_gateway(n, args.workers, args.decisions) as (proc, data, admin, client):
        workers = children(proc.pid) if args.workers > 1 else [proc.pid]
        time.sleep(1)
        before = [rss_mb(pid) for pid in workers]
        apis = {item["name"]: item["id"] for item in _all_apis(client)}
        seconds = []
        rss: dict[int, list[float]] = {}
        for k in range(args.redeploys):
            index = 0 if args.same_api else (k * 37) % n  # another API each time, or always one
            api_id = apis[f"service-{index}"]
            deny = k % 2 == 0  # alternately deny everything and allow again
            policy = scale_config.policy(index)
            if deny:
                policy["Statement"].append(
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "execute-api:Invoke",
                        "Resource": "execute-api:/*",
                    }
                )
            client.update_rest_api(
                restApiId=api_id,
                patchOperations=[{"op": "replace", "path": "/policy", "value": json.dumps(policy)}],
            )
            version = _ready(admin)["config_version"]
            client.create_deployment(restApiId=api_id, stageName="prod")
            returned = time.perf_counter()
            want = 403 if deny else 200
            while True:
                ready = _ready(admin)
                current = ready.get("workers_current", 1 if ready["config_version"] > version else 0)
                if ready["config_version"] > version and current == args.workers:
                    status, _ = get(data, "/prod/items/7", host_of(index))
                    if status == want:
                        break
                time.sleep(0.002)
            seconds.append(time.perf_counter() - returned)
            if k + 1 in (1, 10, 50, 100, 200, 300, 400) or k + 1 == args.redeploys:
                rss[k + 1] = [rss_mb(pid) for pid in workers]
        seconds.sort()
        print(
            f"{args.redeploys} redeploys of one API among {n}, {args.workers} worker(s): "
            "from create-deployment's return to every worker serving it: "
            f"median {statistics.median(seconds) * 1000:.0f} ms, "
            f"p90 {seconds[int(len(seconds) * 0.9) - 1] * 1000:.0f} ms, max {seconds[-1] * 1000:.0f} ms"
        )
        print(
            "workers' RSS before: "
            + ", ".join(f"{r:.0f}" for r in before)
            + " MB; "
            + "; ".join(f"after {k}: " + ", ".join(f"{r:.0f}" for r in v) + " MB" for k, v in rss.items())
        )


def _all_apis(client: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("get_rest_apis").paginate(PaginationConfig={"PageSize": 500}):
        items += page["items"]
    return items


def _median_ms(call: Any, runs: int = 20) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def management(args: argparse.Namespace) -> None:
    n = args.apis[0]
    with store_gateway(n, 1) as (_proc, _data, _admin, client):
        apis = _all_apis(client)
        assert len(apis) == n, len(apis)
        middle = client.get_rest_apis(limit=25, position=sorted(a["id"] for a in apis)[n // 2])
        some = apis[n // 2]["id"]
        deployments = client.get_deployments(restApiId=some)["items"]
        resources = client.get_resources(restApiId=some, limit=5)
        rows = {
            "get-rest-apis, first page (limit 25)": lambda: client.get_rest_apis(limit=25),
            "get-rest-apis, a page in the middle": lambda: client.get_rest_apis(
                limit=25, position=middle.get("position") or ""
            ),
            "get-rest-apis, limit 500": lambda: client.get_rest_apis(limit=500),
            "get-resources of one API (limit 25)": lambda: client.get_resources(restApiId=some, limit=25),
            "get-resources, second page": lambda: client.get_resources(
                restApiId=some, limit=5, position=resources["position"]
            ),
            "get-deployments of one API": lambda: client.get_deployments(restApiId=some),
            "get-stages of one API": lambda: client.get_stages(restApiId=some),
        }
        assert deployments, "the API has a deployment"
        for name, call in rows.items():
            print(f"{name:<40} {_median_ms(call):7.1f} ms (median of 20, at {n} APIs)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=("load", "redeploy", "management"))
    parser.add_argument("--apis", type=int, nargs="+", default=[1000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--redeploys", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--same-api", action="store_true", help="redeploy one API every time (else another each time)"
    )
    parser.add_argument(
        "--decisions",
        choices=("true", "false"),
        default="true",
        help="management.console.decisions: whether each worker keeps its last 1,000 requests",
    )
    args = parser.parse_args()
    {"load": load, "redeploy": redeploy, "management": management}[args.what](args)


if __name__ == "__main__":
    main()
