"""A gateway whose stdout and stderr are pipes nobody reads (a log collector that hangs, a
supervisor that never drains them) keeps answering: its log lines wait in a bounded backlog and
are then dropped and counted (``iamgate_log_lines_dropped_total``), never written while the
event loop waits (docs/operations.md, "Logs").

The pipes are made one page small so that they fill after a few lines, and each access-log line
is about 2 KB (a long path and User-Agent), so 4,000 requests are 8 MB of log: twice the backlog."""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.gateway.conftest import IAMGATE, Backend, Gateway, metric_value, simple_config, write_config
from tests.ports import free_port
from tests.waiting import wait_for

F_SETPIPE_SZ = 1031
REQUESTS = 4000


def _start_unread(tmp_path: Path, backend: Backend, workers: int) -> Gateway:
    port, admin_port = free_port(), free_port()
    config = write_config(tmp_path / "gateway.yaml", simple_config(backend.url))
    ports = ["--port", str(port), "--admin-port", str(admin_port)]
    proc = subprocess.Popen(
        [IAMGATE, "serve", "--config", str(config), *ports, "--workers", str(workers)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    for pipe in (proc.stdout, proc.stderr):
        fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, 4096)
    gw = Gateway(proc, port, admin_port, config, tmp_path / "unread.out", tmp_path / "unread.err")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the gateway exited"
        with contextlib.suppress(OSError):
            if gw.admin("/readyz")[0] == 200:
                return gw
        time.sleep(0.05)
    gw.stop()
    raise AssertionError("the gateway did not become ready")


def _settled(gw: Gateway) -> Callable[[], float | None]:
    seen: list[float] = []

    def read() -> float | None:
        seen.append(metric_value(gw, "iamgate_log_lines_dropped_total", log="access"))
        time.sleep(0.2)
        return seen[-1] if len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3] else None

    return read


@pytest.mark.parametrize("workers", [1, 2])
def test_a_log_reader_that_stops_reading_stalls_no_request(
    tmp_path: Path, backend: Backend, workers: int
) -> None:
    gw = _start_unread(tmp_path, backend, workers)
    long = "/prod/" + "/".join(["p" * 99] * 12)  # 1.2 KB of path (the ARN quota is 1,600 bytes)
    agent = {"User-Agent": "a" * 800}  # logged as identity.userAgent: 2 KB a line with the path
    try:
        statuses = []
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        try:
            for i in range(REQUESTS):
                conn.request("GET", f"{long}/{i}", headers=agent)
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
        finally:
            conn.close()
        assert statuses == [200] * REQUESTS  # every request answered, none waited on the log
        # the last lines are handed over within the access log's 100 ms flush delay (in every
        # worker): read the count once it has stopped moving
        dropped = wait_for(_settled(gw), "the dropped-lines count to settle")
        assert dropped > 0
        assert gw.admin("/readyz")[0] == 200
    finally:
        gw.proc.terminate()
        out, _ = gw.proc.communicate(timeout=30)  # the reader reads again: the backlog drains
    assert gw.proc.returncode == 0
    lines = out.decode().splitlines()
    records = [json.loads(line) for line in lines]  # every line kept is whole JSON
    assert all(r["path"].startswith(long) for r in records)
    # what was not dropped was written, and nothing twice
    assert len(records) == REQUESTS - dropped
    assert len({r["path"] for r in records}) == len(records)
