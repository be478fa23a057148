"""The console's decision stream's cost on the data plane (issue 18): the same gateway with the
stream off, on with nobody watching, and on with one console watching over server-sent events.

One API "petapi" with the small policy of bench/policies (plus the statements that let 127.0.0.1
GET /pets/*) and the route GET /pets/{id} -> MOCK ``ok`` (no backend: the gateway's own work is
all there is to measure, so the stream's share is as large as it can be). Three rows differ in
one setting and one client:

* ``off``: ``management.console.decisions: false`` (requests are counted per kind, not kept);
* ``on``: the default, the last 1,000 requests kept, nobody watching;
* ``watched``: the same, and a console signed in reading ``/console/decisions/stream`` for the
  whole run (a separate process, pinned with the load generator), every event sent to it.

    python bench/console_stream_bench.py [--rounds 5] [-d 8] [--sut-cpus 1] [--load-cpus 0]
    python bench/console_stream_bench.py inprocess [-n 20000] [--rounds 9]
    python bench/console_stream_bench.py instructions [--n1 500] [--n2 2500]

Each measurement starts ``iamgate serve`` (one worker, access log off) pinned to --sut-cpus,
warms it up 2 s with wrk, reads its CPU from /proc, runs ``wrk -t1 -c64`` (pinned to
--load-cpus) for -d seconds, reads the CPU again, stops it. Rows alternate in every round
(round 1: off, on, watched; round 2 reversed, ...), so a machine that speeds up or slows down
affects every row alike, and the ratios are taken within each round. Prints each measurement,
then medians and the ratios on ÷ off and watched ÷ off (median and range over the rounds). For
the watched row it also prints how many events the viewer received and how many the gateway
dropped or missed (``iamgate_console_decisions_dropped_total``).

``inprocess`` drives the real connection objects without sockets (as bench/hotpath.py does) for
the rows off and on (nobody watches in process) and reports process CPU per request;
``instructions`` counts that request's instructions with callgrind (as bench/instructions.py):
deterministic, for a busy machine.

``watch`` (used by the harness) is the viewer: sign in, read the stream, count its bytes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import uvloop
import yaml

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from gateway_row import policy_for  # noqa: E402
from hotpath import FakeTransport  # noqa: E402
from iamgate.config.load import parse_config  # noqa: E402
from iamgate.config.snapshot import build_snapshot  # noqa: E402
from iamgate.serving.connection import DownstreamConnection  # noqa: E402
from iamgate.serving.state import GatewayState  # noqa: E402
from proxy_bench import LUA, sample, start, stop, wait_port_free  # noqa: E402

ROWS = ("off", "on", "watched")
KEY, SECRET = "AKIABENCHWATCHER0001", "bench/Watcher+Secret000000000000000000"
ARN = "arn:aws:iam::123456789012:user/watcher"
URL_PATH = "/prod/pets/42"


def config(decisions: bool) -> str:
    policy = policy_for("small")
    api = {
        "id": "petapi",
        "stages": {"prod": {}},
        "policy": policy,
        "routes": [{"path": "/pets/{id}", "method": "GET", "integration": {"type": "MOCK", "body": "ok"}}],
    }
    doc: dict[str, Any] = {
        "gateway": {
            "region": "us-east-1",
            "account_id": "123456789012",
            "max_policy_chars": None,
            "access_log": {"destination": None},  # off: the stream's cost is not hidden by the log's
        },
        "identities": {
            "users": [
                {
                    "arn": ARN,
                    "policies": [
                        {
                            "Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Action": "apigateway:GET", "Resource": "*"}],
                        }
                    ],
                }
            ],
            "access_keys": [{"id": KEY, "secret": SECRET, "owner": ARN}],
        },
        "apis": [api],
    }
    if not decisions:
        doc["management"] = {"console": {"decisions": False}}
    return yaml.safe_dump(doc, sort_keys=False)


# --- in process ----------------------------------------------------------------------------------

REQUEST = b"GET /prod/pets/42 HTTP/1.1\r\nHost: 127.0.0.1:18111\r\nUser-Agent: wrk\r\n\r\n"


class _Rig:
    """One gateway's connection objects, as bench/hotpath.py builds them (MOCK: no backend)."""

    def __init__(self, decisions: bool) -> None:
        parsed, diags = parse_config(config(decisions))
        assert parsed is not None, [d.render() for d in diags]
        self.state = GatewayState(build_snapshot(parsed))
        self.down = DownstreamConnection(self.state)
        self.client = FakeTransport(("127.0.0.1", 40000))
        self.down.connection_made(self.client)

    def run(self, n: int) -> float:
        start_cpu = time.process_time()
        for _ in range(n):
            self.down.data_received(REQUEST)
        cost = (time.process_time() - start_cpu) / n * 1e6
        assert self.client.written[-1].endswith(b"ok"), self.client.written[-1][:200]
        self.client.written.clear()
        return cost

    def close(self) -> None:
        self.state.access_log.close()
        self.state.stop_ticker()


IN_PROCESS = ("off", "on")


async def _inprocess(n: int, rounds: int, only: str | None = None) -> dict[str, list[float]]:
    rows = IN_PROCESS if only is None else (only,)
    rigs = {row: _Rig(row == "on") for row in rows}
    for rig in rigs.values():
        rig.run(max(1, n // 10))  # warm-up: memos, the first buffers, the ring filled
    out: dict[str, list[float]] = {row: [] for row in IN_PROCESS}
    for r in range(rounds):
        for row in rows if r % 2 == 0 else rows[::-1]:
            out[row].append(rigs[row].run(n))
        if only is None:
            print(
                f"round {r + 1}: off {out['off'][-1]:.2f} µs, on {out['on'][-1]:.2f} µs, "
                f"ratio {out['on'][-1] / out['off'][-1]:.3f}",
                flush=True,
            )
    for rig in rigs.values():
        rig.close()
    return out


def _count(row: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__]
        cmd += ["inprocess", "--only", row, "-n", str(n), "--rounds", "1"]
        subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no totals in callgrind output")


# --- the viewer ---------------------------------------------------------------------------------


def _sign_in(admin_port: int) -> str:
    """A session cookie for the watcher, by the sign-in form as a browser posts it."""
    conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=10)
    conn.request("GET", "/console/signin")
    form = conn.getresponse()
    page = form.read().decode()
    token = re.search(r'name="csrf" value="([^"]*)"', page)
    cookie = next(v for k, v in form.getheaders() if k.lower() == "set-cookie").split(";", 1)[0]
    assert token is not None
    body = urlencode({"csrf": token.group(1), "login": KEY, "secret": SECRET})
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    conn.request("POST", "/console/signin", body=body, headers=headers)
    answer = conn.getresponse()
    answer.read()
    conn.close()
    session = next(
        v for k, v in answer.getheaders() if k.lower() == "set-cookie" and v.startswith("iamgate_console=")
    )
    return session.split(";", 1)[0]


def watch(admin_port: int) -> None:
    """Read the decision stream until stopped; print the bytes and events read every second."""
    cookie = _sign_in(admin_port)
    conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=60)
    conn.request("GET", "/console/decisions/stream", headers={"Cookie": cookie})
    response = conn.getresponse()
    assert response.status == 200, response.status
    total = events = 0
    last = time.monotonic()
    while True:
        chunk = response.read1(65536)
        if not chunk:
            break
        total += len(chunk)
        events += chunk.count(b"event: decision\n")
        if time.monotonic() - last >= 1:
            last = time.monotonic()
            print(f"WATCHED bytes={total} events={events}", flush=True)


# --- the runs -----------------------------------------------------------------------------------


def _ready(port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", URL_PATH)
            response = conn.getresponse()
            if response.status == 200 and response.read() == b"ok":
                conn.close()
                return
            conn.close()
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    raise SystemExit(f"the gateway never answered 200 ok to {URL_PATH}")


def _dropped(admin_port: int) -> dict[str, float]:
    conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("iamgate_console_decisions_dropped_total{"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0]
            out[reason] = float(line.rsplit(" ", 1)[1])
    return out


def _last_watched(log: Path) -> int:
    found = [ln for ln in log.read_text().splitlines() if ln.startswith("WATCHED ")]
    if not found:
        return 0
    return int(found[-1].split("events=", 1)[1])


def measure(
    args: argparse.Namespace, run: Path, row: str, r: int, port: int, admin_port: int
) -> dict[str, float]:
    cfg = run / f"{row}.yaml"
    cfg.write_text(config(row != "off"))
    for p in (port, admin_port):
        if not wait_port_free(p):
            raise SystemExit(f"port {p} is busy")
    exe = Path(sys.executable).parent / "iamgate"
    serve = ["serve", "--config", str(cfg), "--port", str(port), "--admin-port", str(admin_port)]
    command = shlex.join([str(exe), *serve, "--workers", "1", "--no-watch"])
    pg = start(command, run / f"{row}-r{r}.log", args.sut_cpus)
    viewer = None
    viewer_log = run / f"{row}-r{r}-viewer.log"
    try:
        _ready(port)
        if row == "watched":
            viewer_cmd = shlex.join([sys.executable, __file__, "watch", "--admin-port", str(admin_port)])
            viewer = start(viewer_cmd, viewer_log, args.viewer_cpus or args.load_cpus)
        wrk = ["taskset", "-c", args.load_cpus, "wrk", "-t1", "-c64", "--latency", "-s", str(LUA)]
        url = f"http://127.0.0.1:{port}{URL_PATH}"
        subprocess.run([*wrk, "-d2s", url], capture_output=True, check=False)
        seen_before = _last_watched(viewer_log) if viewer is not None else 0
        before = sample([pg])
        done = subprocess.run([*wrk, f"-d{args.duration}s", url], capture_output=True, text=True, check=False)
        after = sample([pg])
        time.sleep(1.2)  # the viewer prints its count every second: the last one after the run
        watched = (_last_watched(viewer_log) - seen_before) if viewer is not None else 0
        dropped = _dropped(admin_port)
    finally:
        if viewer is not None:
            stop(viewer)
        stop(pg)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"wrk gave no result: {done.stdout} {done.stderr}")
    kv = dict(item.split("=", 1) for item in line.split()[1:])
    requests = int(kv["requests"])
    cpu = (after.groups[0] - before.groups[0]) / os.sysconf("SC_CLK_TCK")
    return {
        "rps": float(kv["rps"]),
        "cpu_us": cpu * 1e6 / max(1, requests),
        "p99_ms": int(kv["p99_us"]) / 1000,
        "errors": sum(int(v) for k, v in kv.items() if k.startswith("err_")),
        "requests": requests,
        "watched": watched,
        "dropped": dropped.get("viewer", 0.0),
        "missed": dropped.get("missed", 0.0),
    }


def _ratio_line(name: str, rows: dict[str, list[dict[str, float]]], key: str, row: str) -> str:
    ratios = [w[key] / o[key] for o, w in zip(rows["off"], rows[row], strict=True)]
    return (
        f"{name} {row} ÷ off: median {statistics.median(ratios):.3f} "
        f"(range {min(ratios):.3f}-{max(ratios):.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="mode")
    viewer = sub.add_parser("watch")
    viewer.add_argument("--admin-port", type=int, required=True)
    inproc = sub.add_parser("inprocess")
    inproc.add_argument("-n", type=int, default=20000)
    inproc.add_argument("--rounds", type=int, default=9)
    inproc.add_argument("--only", choices=IN_PROCESS, default=None)
    count = sub.add_parser("instructions")
    count.add_argument("--n1", type=int, default=500)
    count.add_argument("--n2", type=int, default=2500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-d", "--duration", type=int, default=8)
    parser.add_argument("--sut-cpus", default="1")
    parser.add_argument("--load-cpus", default="0")
    parser.add_argument("--viewer-cpus", default=None, help="where the viewer runs (default: --load-cpus)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.mode == "watch":
        watch(args.admin_port)
        return
    if args.mode == "inprocess":
        found = uvloop.run(_inprocess(args.n, args.rounds, args.only))
        if args.only is None:
            ratios = [b / a for a, b in zip(found["off"], found["on"], strict=True)]
            print(
                f"CPU µs/request medians: off {statistics.median(found['off']):.2f}, "
                f"on {statistics.median(found['on']):.2f}; on ÷ off per round: median "
                f"{statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f})"
            )
        return
    if args.mode == "instructions":
        per = {row: (_count(row, args.n2) - _count(row, args.n1)) / (args.n2 - args.n1) for row in IN_PROCESS}
        print(
            f"instructions/request: off {per['off']:,.0f}, on {per['on']:,.0f}, "
            f"on ÷ off {per['on'] / per['off']:.4f} (+{per['on'] - per['off']:,.0f})"
        )
        return
    run = Path(args.out or tempfile.mkdtemp(prefix="iamgate-console-bench-"))
    run.mkdir(parents=True, exist_ok=True)
    port, admin_port = 18111, 18112
    rows: dict[str, list[dict[str, float]]] = {row: [] for row in ROWS}
    for r in range(args.rounds):
        order = ROWS if r % 2 == 0 else ROWS[::-1]
        for row in order:
            result = measure(args, run, row, r, port, admin_port)
            rows[row].append(result)
            print(
                f"round {r + 1} {row:<8} {result['rps']:>8,.0f} req/s  "
                f"{result['cpu_us']:6.1f} µs CPU/request  "
                f"p99 {result['p99_ms']:.2f} ms  errors {result['errors']:.0f}"
                + (
                    f"  viewer got {result['watched']:,.0f} of {result['requests']:,.0f} events "
                    f"(dropped {result['dropped']:,.0f}, missed {result['missed']:,.0f})"
                    if row == "watched"
                    else ""
                ),
                flush=True,
            )
    for key, name in (("rps", "req/s"), ("cpu_us", "CPU µs/request")):
        medians = ", ".join(f"{row} {statistics.median(x[key] for x in rows[row]):,.2f}" for row in ROWS)
        print(f"{name} medians: {medians}")
        print(_ratio_line(name, rows, key, "on"))
        print(_ratio_line(name, rows, key, "watched"))
    (run / "results.json").write_text(json.dumps(rows, indent=1))
    print(f"results in {run}")


if __name__ == "__main__":
    main()
