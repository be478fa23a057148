"""Request validation's cost (issue 17): the same POST route, validated and not, side by side.

One API "petapi" with the small policy of bench/policies (plus the statements that let 127.0.0.1
GET /pets/* and POST /pets), a model of 20 properties (strings with lengths and patterns,
integers with bounds, enums, arrays of strings; 10 required) and the route POST /pets ->
HTTP_PROXY. The two gateways differ in one key: the validated one's route has a request
validator that checks the body (``request_validator: body``); the other has none, so its request
is streamed to the backend as any POST. The body is a valid JSON object of about 1 KB for that
model, so every validated request is buffered, parsed, validated and forwarded.

    python bench/validation_bench.py inprocess [-n 20000] [--rounds 9] [--log off|on]
    python bench/validation_bench.py instructions [--n1 500] [--n2 2500] [--log off|on]
    python bench/validation_bench.py socket [--rounds 5] [-d 8] [--sut-cpus 1] [--load-cpus 0]

``inprocess`` drives the real connection objects without sockets (as bench/hotpath.py does) and
reports process CPU per request; rounds alternate between the two gateways. ``instructions``
counts the instructions of that in-process request with callgrind (as bench/instructions.py
does): deterministic, for a busy machine. ``socket`` runs
``iamgate serve`` (one worker, log off) pinned to --sut-cpus, an nginx backend answering
``200 ok`` and ``wrk -t1 -c64`` POSTing the body, both pinned to --load-cpus, as
bench/proxy_bench.py does for GET; rounds alternate the two rows, each row's server started
afresh, warmed up 2 s, its CPU read from /proc before and after. Both modes print each round and
then the medians, and the ratio validated ÷ plain computed within each round (median, range).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
import yaml

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from gateway_row import policy_for  # noqa: E402
from hotpath import RESPONSE, FakeTransport  # noqa: E402
from iamgate.config.load import parse_config  # noqa: E402
from iamgate.config.snapshot import build_snapshot  # noqa: E402
from iamgate.serving.connection import DownstreamConnection  # noqa: E402
from iamgate.serving.state import GatewayState  # noqa: E402
from iamgate.upstream.pool import UpstreamConnection  # noqa: E402
from proxy_bench import BACKEND_CONF, LUA, sample, start, stop, temp_paths, wait_port_free  # noqa: E402

ROWS = ("plain", "validated")


def schema() -> dict[str, Any]:
    """A model of 20 properties, 10 of them required."""
    props: dict[str, Any] = {}
    for i in range(20):
        name = f"field{i:02d}"
        if i % 4 == 0:
            props[name] = {"type": "string", "minLength": 1, "maxLength": 80}
        elif i % 4 == 1:
            props[name] = {"type": "integer", "minimum": 0, "maximum": 1_000_000}
        elif i % 4 == 2:
            props[name] = {"type": "string", "enum": ["red", "green", "blue", "yellow"]}
        else:
            props[name] = {
                "type": "array",
                "maxItems": 10,
                "items": {"type": "string", "pattern": "^[a-z]+$"},
            }
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "Order",
        "type": "object",
        "required": sorted(props)[:10],
        "properties": props,
        "additionalProperties": False,
    }


def body() -> bytes:
    """A valid body of about 1 KB for :func:`schema`."""
    doc: dict[str, Any] = {}
    for i in range(20):
        name = f"field{i:02d}"
        if i % 4 == 0:
            doc[name] = f"value {i} of the order, written out at some length"
        elif i % 4 == 1:
            doc[name] = 123_456 + i
        elif i % 4 == 2:
            doc[name] = "green"
        else:
            doc[name] = ["alpha", "bravo", "charlie", "delta", "echo"]
    return json.dumps(doc, indent=1).encode()


def config(validated: bool, upstream: str, log: str | None = None) -> str:
    policy = policy_for("small")
    assert policy is not None
    policy["Statement"].append(
        {
            "Sid": "AllowLocalhostPostPets",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "arn:aws:execute-api:us-east-1:123456789012:petapi/prod/POST/pets",
            "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.1/32"]}},
        }
    )
    post: dict[str, Any] = {
        "path": "/pets",
        "method": "POST",
        "integration": {"type": "HTTP_PROXY", "uri": f"{upstream}/pets"},
        "request_models": {"application/json": "Order"},
    }
    if validated:
        post["request_validator"] = "body"
    api = {
        "id": "petapi",
        "stages": {"prod": {}},
        "policy": policy,
        "models": {"Order": {"schema": schema()}},
        "request_validators": {"body": {"validate_request_body": True}},
        "routes": [
            {
                "path": "/pets/{id}",
                "method": "GET",
                "integration": {"type": "HTTP_PROXY", "uri": f"{upstream}/pets/{{id}}"},
            },
            post,
        ],
    }
    gateway = {
        "region": "us-east-1",
        "account_id": "123456789012",
        "max_policy_chars": None,
        "access_log": {"destination": log} if log else None,
    }
    return yaml.safe_dump({"gateway": gateway, "apis": [api]}, sort_keys=False)


def request_bytes() -> bytes:
    data = body()
    return (
        b"POST /prod/pets HTTP/1.1\r\nHost: 127.0.0.1:18101\r\nUser-Agent: wrk\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%b" % (len(data), data)
    )


# --- in process -------------------------------------------------------------------------------


class _Rig:
    """One gateway's connection objects, as bench/hotpath.py builds them."""

    def __init__(self, validated: bool, log: str | None) -> None:
        parsed, diags = parse_config(config(validated, "http://127.0.0.1:18080", log))
        assert parsed is not None, [d.render() for d in diags]
        self.state = GatewayState(build_snapshot(parsed))
        self.down = DownstreamConnection(self.state)
        self.client = FakeTransport(("127.0.0.1", 40000))
        self.down.connection_made(self.client)
        pool = self.state.pools.get("http", "127.0.0.1", 18080)
        self.up = UpstreamConnection(pool)
        self.backend = FakeTransport(("127.0.0.1", 18080))
        self.up.connection_made(self.backend)
        pool._members.add(self.up)
        pool.release(self.up)

    def run(self, request: bytes, n: int) -> float:
        start = time.process_time()
        for _ in range(n):
            self.down.data_received(request)
            self.up.data_received(RESPONSE)
        cost = (time.process_time() - start) / n * 1e6
        assert self.client.written[-1].endswith(b"ok"), self.client.written[-1][:200]
        sent = b"".join(self.backend.written[-3:])
        assert sent.endswith(body()), sent[-200:]  # the backend got the body, whole
        self.client.written.clear()
        self.backend.written.clear()
        return cost

    def close(self) -> None:
        self.state.access_log.close()
        self.state.stop_ticker()


async def _inprocess(n: int, rounds: int, log: str, only: str | None = None) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        rows = ROWS if only is None else (only,)
        rigs = {row: _Rig(row == "validated", f"{tmp}/{row}.log" if log == "on" else None) for row in rows}
        request = request_bytes()
        for rig in rigs.values():
            rig.run(request, max(1, n // 10))  # warm-up: memos, the first buffers
        out: dict[str, list[float]] = {row: [] for row in ROWS}
        for r in range(rounds):
            order = rows if r % 2 == 0 else rows[::-1]
            for row in order:
                out[row].append(rigs[row].run(request, n))
            if only is not None:
                continue
            print(
                f"round {r + 1}: plain {out['plain'][-1]:.2f} µs, validated {out['validated'][-1]:.2f} µs, "
                f"ratio {out['validated'][-1] / out['plain'][-1]:.3f}",
                flush=True,
            )
        for rig in rigs.values():
            rig.close()
        return out


# --- instructions ----------------------------------------------------------------------------


def _count(row: str, n: int, log: str) -> int:
    """Instructions of an in-process run of ``n`` requests on one row, counted by callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__]
        cmd += ["inprocess", "--only", row, "-n", str(n), "--rounds", "1", "--log", log]
        subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no totals in callgrind output")


def _instructions(n1: int, n2: int, log: str) -> dict[str, float]:
    """Instructions per request of each row: (count(n2) - count(n1)) / (n2 - n1), as
    bench/instructions.py counts them (start-up and warm-up cancel out)."""
    return {row: (_count(row, n2, log) - _count(row, n1, log)) / (n2 - n1) for row in ROWS}


# --- sockets ------------------------------------------------------------------------------------

WRK_POST = """\
-- bench/validation_bench.py: POST the body, then bench/wrk_report.lua's one line
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""


def _socket(args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    run = Path(args.out or tempfile.mkdtemp(prefix="iamgate-validation-bench-"))
    run.mkdir(parents=True, exist_ok=True)
    backend_port, port = 18080, 18101
    (run / "backend.conf").write_text(
        BACKEND_CONF.format(run=run, port=backend_port, temp=temp_paths(run, backend_port))
    )
    lua = run / "post.lua"
    lua.write_text(WRK_POST.format(body=json.dumps(body().decode())) + LUA.read_text())
    exe = Path(sys.executable).parent / "iamgate"
    backend = start(f"nginx -c {run}/backend.conf", run / "backend.log", args.load_cpus)
    out: dict[str, list[dict[str, float]]] = {row: [] for row in ROWS}
    try:
        time.sleep(0.5)
        for r in range(args.rounds):
            order = ROWS if r % 2 == 0 else ROWS[::-1]
            for row in order:
                cfg = run / f"{row}.yaml"
                cfg.write_text(config(row == "validated", f"http://127.0.0.1:{backend_port}"))
                if not wait_port_free(port):
                    raise SystemExit(f"port {port} is busy")
                serve = ["serve", "--config", str(cfg), "--port", str(port), "--admin-port", "0"]
                command = shlex.join([str(exe), *serve, "--workers", "1", "--no-watch"])
                pg = start(command, run / f"{row}-r{r}.log", args.sut_cpus)
                try:
                    _wait_post(port)
                    wrk = ["taskset", "-c", args.load_cpus, "wrk", "-t1", "-c64", "--latency", "-s", str(lua)]
                    url = f"http://127.0.0.1:{port}/prod/pets"
                    subprocess.run([*wrk, "-d2s", url], capture_output=True, check=False)
                    before = sample([pg])
                    done = subprocess.run(
                        [*wrk, f"-d{args.duration}s", url], capture_output=True, text=True, check=False
                    )
                    after = sample([pg])
                finally:
                    stop(pg)
                line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH ")), None)
                if line is None:
                    raise SystemExit(f"wrk gave no result: {done.stdout} {done.stderr}")
                kv = dict(item.split("=", 1) for item in line.split()[1:])
                requests = int(kv["requests"])
                errors = sum(int(v) for k, v in kv.items() if k.startswith("err_"))
                cpu = (after.groups[0] - before.groups[0]) / os.sysconf("SC_CLK_TCK")
                result = {
                    "rps": float(kv["rps"]),
                    "cpu_us": cpu * 1e6 / max(1, requests),
                    "p99_ms": int(kv["p99_us"]) / 1000,
                    "errors": errors,
                }
                out[row].append(result)
                print(
                    f"round {r + 1} {row:<9} {result['rps']:>9,.0f} req/s  "
                    f"{result['cpu_us']:6.1f} µs CPU/request  p99 {result['p99_ms']:.2f} ms  errors {errors}",
                    flush=True,
                )
    finally:
        stop(backend)
    return out


def _wait_post(port: int, seconds: float = 15) -> None:
    import http.client

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("POST", "/prod/pets", body=body(), headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            if response.status == 200 and response.read() == b"ok":
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("the gateway never answered 200 ok to the POST")


def _summary(label: str, plain: list[float], validated: list[float]) -> str:
    ratios = [v / p for p, v in zip(plain, validated, strict=True)]
    return (
        f"{label}: plain {statistics.median(plain):,.2f}, "
        f"validated {statistics.median(validated):,.2f} (medians); "
        f"validated ÷ plain per round: median {statistics.median(ratios):.3f} "
        f"(range {min(ratios):.3f}-{max(ratios):.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    inproc = sub.add_parser("inprocess")
    inproc.add_argument("-n", type=int, default=20000)
    inproc.add_argument("--rounds", type=int, default=9)
    inproc.add_argument("--log", choices=["on", "off"], default="off")
    inproc.add_argument("--only", choices=ROWS, default=None, help="one row (for the instruction count)")
    count = sub.add_parser("instructions")
    count.add_argument("--n1", type=int, default=500)
    count.add_argument("--n2", type=int, default=2500)
    count.add_argument("--log", choices=["on", "off"], default="off")
    sock = sub.add_parser("socket")
    sock.add_argument("--rounds", type=int, default=5)
    sock.add_argument("-d", "--duration", type=int, default=8)
    sock.add_argument("--sut-cpus", default="1")
    sock.add_argument("--load-cpus", default="0")
    sock.add_argument("--out", default=None)
    args = parser.parse_args()
    print(f"body: {len(body())} bytes; schema: {len(schema()['properties'])} properties", flush=True)
    if args.mode == "inprocess":
        found = uvloop.run(_inprocess(args.n, args.rounds, args.log, args.only))
        if args.only is None:
            print(_summary("CPU µs/request", found["plain"], found["validated"]))
        return
    if args.mode == "instructions":
        counts = _instructions(args.n1, args.n2, args.log)
        plain, validated = counts["plain"], counts["validated"]
        print(
            f"instructions/request (log {args.log}): plain {plain:,.0f}, validated {validated:,.0f}, "
            f"validated ÷ plain {validated / plain:.3f} (+{validated - plain:,.0f})"
        )
        return
    rows = _socket(args)
    plain, validated = rows["plain"], rows["validated"]
    print(_summary("CPU µs/request", [r["cpu_us"] for r in plain], [r["cpu_us"] for r in validated]))
    print(_summary("req/s", [r["rps"] for r in plain], [r["rps"] for r in validated]))


if __name__ == "__main__":
    main()
