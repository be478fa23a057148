"""Operating the gateway: reload, drain, workers, the admin port, log rotation, startup errors.

Everything runs for real: ``iamgate serve`` as a subprocess on loopback ports, recording
backends, real signals and real files. Waits poll for a condition with a generous hang guard
(``wait_for``); nothing asserts how long anything took.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.conftest import (
    ALLOW_ALL,
    IAMGATE,
    Backend,
    Gate,
    Gateway,
    admin_json,
    alive,
    child_pids,
    config_version,
    process_of,
    replace_file,
    rewrite_config,
    simple_config,
    start_gateway,
    wait_for,
    write_config,
)

API = "a1b2c3d4e5"
DENY_SECRET = {
    "Version": "2012-10-17",
    "Statement": [
        *ALLOW_ALL["Statement"],
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/*/GET/secret",
        },
    ],
}


def config(
    body: str = "v1",
    backend: Backend | None = None,
    *,
    policy: dict[str, Any] | None = ALLOW_ALL,
    policy_file: str | None = None,
    gateway: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One API: GET /v answers ``body`` (MOCK), GET /secret answers "secret", /p/... proxies to
    ``backend``."""
    routes: list[dict[str, Any]] = [
        {"path": "/v", "method": "GET", "integration": {"type": "MOCK", "body": body}},
        {"path": "/secret", "method": "GET", "integration": {"type": "MOCK", "body": "secret"}},
    ]
    if backend is not None:
        routes.append(
            {
                "path": "/p/{proxy+}",
                "method": "ANY",
                "integration": {"type": "HTTP_PROXY", "uri": f"{backend.url}/{{proxy}}"},
            }
        )
    api: dict[str, Any] = {"id": API, "stages": {"prod": {}}, "routes": routes}
    if policy_file is not None:
        api["policy_file"] = policy_file
    elif policy is not None:
        api["policy"] = policy
    return {
        "gateway": {"region": "us-east-1", "account_id": "111122223333", **(gateway or {})},
        "apis": [api],
    }


# --- metrics ------------------------------------------------------------------------------------


def scrape(gw: Gateway) -> list[Any]:
    """The admin port's /metrics, parsed by prometheus_client's own text-format parser."""
    status, body = gw.admin("/metrics")
    assert status == 200
    return list(text_string_to_metric_families(body.decode()))


def metric(gw: Gateway, sample: str, **labels: str) -> float:
    """The sum of every sample named ``sample`` whose labels include ``labels`` (0 if none)."""
    return sum(
        s.value
        for family in scrape(gw)
        for s in family.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


def reloads(gw: Gateway, result: str) -> float:
    return metric(gw, "iamgate_config_reloads_total", result=result)


# --- load ---------------------------------------------------------------------------------------


class Load:
    """A few client threads sending GET requests in a loop on keep-alive connections, recording
    (status, body) per thread in order, and every exception as a failure."""

    def __init__(self, gw: Gateway, path: str, threads: int = 4) -> None:
        self.gw = gw
        self.path = path
        self.stop = threading.Event()
        self.results: list[list[tuple[int, bytes]]] = [[] for _ in range(threads)]
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _run(self, i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=10)
        while not self.stop.is_set():
            try:
                conn.request("GET", self.path)
                resp = conn.getresponse()
                self.results[i].append((resp.status, resp.read()))
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=10)
        conn.close()

    def saw(self, body: bytes, per_thread: int = 1) -> bool:
        """Every thread has received ``body`` at least ``per_thread`` times."""
        return all(sum(1 for _, b in r if b == body) >= per_thread for r in self.results)


def run_in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    box: list[Any] = []

    def target() -> None:
        try:
            box.append(fn())
        except Exception as exc:
            box.append(exc)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, box


def assert_switched_once(results: list[list[tuple[int, bytes]]], old: bytes, new: bytes) -> None:
    """Each thread saw only 200s, first ``old`` then ``new``, never ``old`` after ``new``."""
    for seq in results:
        assert seq, "a client thread sent no request"
        assert {s for s, _ in seq} == {200}
        bodies = [b for _, b in seq]
        assert set(bodies) <= {old, new}
        first_new = bodies.index(new)
        assert old not in bodies[first_new:], "a request after the swap was served by the old config"


# --- (a) reload under load, atomically ------------------------------------------------------------


def test_sighup_reload_under_load_fails_no_request(tmp_path: Path) -> None:
    a, b = Backend(ok_body(b"from A")).start(), Backend(ok_body(b"from B")).start()
    gw = start_gateway(tmp_path, config("v1", a), extra_args=("--no-watch",))
    try:
        version = config_version(gw)
        assert gw.request("GET", "/prod/p/x")[2] == b"from A"
        with Load(gw, "/prod/v") as load:
            wait_for(lambda: load.saw(b"v1", 20), "load before the reload")
            rewrite_config(gw, config("v2", b, policy=DENY_SECRET))
            gw.signal(signal.SIGHUP)
            wait_for(lambda: load.saw(b"v2", 20), "every client to see the new configuration")
        assert load.failures == []
        assert_switched_once(load.results, b"v1", b"v2")
        assert config_version(gw) == version + 1
        assert gw.request("GET", "/prod/p/x")[2] == b"from B"
        assert len(a.requests) == 1
        assert gw.request("GET", "/prod/secret")[0] == 403  # the new policy is in force
        assert reloads(gw, "ok") == 1
        assert reloads(gw, "failed") == 0
        assert "configuration reloaded (SIGHUP)" in gw.stderr()
    finally:
        gw.stop()
        a.stop()
        b.stop()


def test_file_change_reload_under_load_fails_no_request(tmp_path: Path) -> None:
    a, b = Backend(ok_body(b"from A")).start(), Backend(ok_body(b"from B")).start()
    gw = start_gateway(tmp_path, config("v1", a))
    try:
        version = config_version(gw)
        assert gw.request("GET", "/prod/secret")[0] == 200
        with Load(gw, "/prod/v") as load:
            wait_for(lambda: load.saw(b"v1", 20), "load before the change")
            rewrite_config(gw, config("v2", b, policy=DENY_SECRET))  # no signal: the watcher sees it
            wait_for(lambda: load.saw(b"v2", 20), "every client to see the new configuration")
        assert load.failures == []
        assert_switched_once(load.results, b"v1", b"v2")
        assert config_version(gw) == version + 1
        assert gw.request("GET", "/prod/secret")[0] == 403
        assert gw.request("GET", "/prod/p/x")[2] == b"from B"
        assert "configuration reloaded (file changed)" in gw.stderr()
    finally:
        gw.stop()
        a.stop()
        b.stop()


def test_policy_file_change_is_watched(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(ALLOW_ALL))
    gw = start_gateway(tmp_path, config(policy_file=str(policy)))
    try:
        version = config_version(gw)
        assert gw.request("GET", "/prod/secret")[0] == 200
        replace_file(policy, json.dumps(DENY_SECRET))
        wait_for(lambda: config_version(gw) == version + 1, "a reload after the policy file changed")
        status, headers, _ = gw.request("GET", "/prod/secret")
        assert (status, headers["x-amzn-errortype"]) == (403, "AccessDeniedException")
        assert gw.request("GET", "/prod/v")[0] == 200
    finally:
        gw.stop()


def test_in_flight_request_completes_under_the_config_it_started_with(tmp_path: Path) -> None:
    gate = Gate(b"from A")
    a, b = Backend(gate).start(), Backend(ok_body(b"from B")).start()
    gw = start_gateway(tmp_path, config("v1", a), extra_args=("--no-watch",))
    try:
        version = config_version(gw)
        thread, box = run_in_thread(lambda: gw.request("GET", "/prod/p/slow"))
        assert gate.arrived.wait(10)
        rewrite_config(gw, config("v2", b))
        gw.signal(signal.SIGHUP)
        wait_for(lambda: config_version(gw) == version + 1, "the reload")
        assert gw.request("GET", "/prod/p/new")[2] == b"from B"  # new requests: the new config
        gate.open()
        thread.join(10)
        status, _, body = box[0]
        assert (status, body) == (200, b"from A")  # the old request: the old config, to the end
        assert [r.target for r in a.requests] == ["/slow"]
        assert [r.target for r in b.requests] == ["/new"]
    finally:
        gate.open()
        gw.stop()
        a.stop()
        b.stop()


def test_in_flight_request_body_keeps_the_limits_it_started_with(tmp_path: Path, backend: Backend) -> None:
    gw = start_gateway(tmp_path, config("v1", backend), extra_args=("--no-watch",))
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    try:
        version = config_version(gw)
        head = b"POST /prod/p/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        sock.sendall(head + b"a" * 10)
        wait_for(lambda: backend.connections, "the gateway to connect to the backend")
        rewrite_config(gw, config("v2", backend, gateway={"max_request_body": 50}))
        gw.signal(signal.SIGHUP)
        wait_for(lambda: config_version(gw) == version + 1, "the reload")
        sock.sendall(b"b" * 90)
        response = recv_response(sock)
        assert response.startswith(b"HTTP/1.1 200 ")
        assert backend.requests[0].body == b"a" * 10 + b"b" * 90
    finally:
        sock.close()
        gw.stop()


# --- (b) an invalid new configuration ---------------------------------------------------------------

BAD_CONFIGS = [
    # (name, text, line, column, code)
    (
        "yaml-syntax",
        "gateway:\n  region: us-east-1\napis: [\n  {id: a1b2c3d4e5\n",
        5,
        1,
        "config.yaml.syntax",
    ),
    (
        "bad-policy",
        """\
apis:
  - id: a1b2c3d4e5
    stages: {prod: {}}
    policy:
      Version: "2012-10-17"
      Statement:
        - Effect: allow
          Principal: "*"
          Action: execute-api:Invoke
          Resource: execute-api:/*
    routes:
      - {path: /v, method: GET, integration: {type: MOCK, body: v2}}
""",
        7,
        19,
        "policy.parse.invalid-effect",
    ),
    (
        "unknown-endpoint-type",
        """\
apis:
  - id: a1b2c3d4e5
    endpoint_type: REGIONALL
    stages: {prod: {}}
    routes:
      - {path: /v, method: GET, integration: {type: MOCK, body: v2}}
""",
        3,
        20,
        "config.invalid-value",
    ),
]


def test_invalid_config_on_sighup_keeps_the_old_one_serving(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, config("v1"), extra_args=("--no-watch",))
    try:
        version = config_version(gw)
        for n, (name, text, line, column, code) in enumerate(BAD_CONFIGS, start=1):
            rewrite_config(gw, text)
            gw.signal(signal.SIGHUP)
            wait_for(lambda n=n: reloads(gw, "failed") == n, f"the failed reload of {name}")
            assert gw.request("GET", "/prod/v")[2] == b"v1", name
            where = f"{gw.config_path}:{line}:{column}" if line else str(gw.config_path)
            assert f"{where}: error {code}" in gw.stderr(), name
        assert config_version(gw) == version
        assert reloads(gw, "ok") == 0
        assert "Traceback" not in gw.stderr()
        rewrite_config(gw, config("v2"))
        gw.signal(signal.SIGHUP)
        wait_for(lambda: config_version(gw) == version + 1, "the good reload")
        assert gw.request("GET", "/prod/v")[2] == b"v2"
        assert reloads(gw, "ok") == 1
        assert reloads(gw, "failed") == len(BAD_CONFIGS)
    finally:
        gw.stop()


def test_invalid_config_file_change_keeps_the_old_one_serving(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, config("v1"))
    try:
        version = config_version(gw)
        _, text, line, column, code = BAD_CONFIGS[1]
        rewrite_config(gw, text)
        wait_for(lambda: reloads(gw, "failed") == 1, "the failed reload")
        assert f"{gw.config_path}:{line}:{column}: error {code}" in gw.stderr()
        assert gw.request("GET", "/prod/v")[2] == b"v1"
        assert config_version(gw) == version
    finally:
        gw.stop()


def test_invalid_policy_file_keeps_the_old_policy_and_is_reported_at_its_own_line(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(ALLOW_ALL))
    gw = start_gateway(tmp_path, config(policy_file=str(policy)))
    try:
        version = config_version(gw)
        replace_file(
            policy, '{\n  "Version": "2012-10-17",\n  "Statement": [\n    {"Effect": "Allw"}\n  ]\n}\n'
        )
        wait_for(lambda: reloads(gw, "failed") == 1, "the failed reload")
        assert f"{policy}:4:16: error policy.parse.invalid-effect" in gw.stderr()
        assert gw.request("GET", "/prod/v")[0] == 200
        assert config_version(gw) == version
    finally:
        gw.stop()


def test_fixing_a_policy_file_named_by_a_refused_config_reloads(tmp_path: Path) -> None:
    good, other = tmp_path / "good.json", tmp_path / "other.json"
    good.write_text(json.dumps(ALLOW_ALL))
    other.write_text("{not json")
    gw = start_gateway(tmp_path, config(policy_file=str(good)))
    try:
        version = config_version(gw)
        rewrite_config(gw, config(policy_file=str(other)))
        wait_for(lambda: reloads(gw, "failed") == 1, "the refused reload")
        replace_file(other, json.dumps(DENY_SECRET))  # fixing the file the new config names
        wait_for(lambda: config_version(gw) == version + 1, "a reload once the policy file is fixed")
        assert gw.request("GET", "/prod/secret")[0] == 403
    finally:
        gw.stop()


# --- (c) graceful drain -----------------------------------------------------------------------------


def test_sigterm_drains_in_flight_requests_and_refuses_new_connections(tmp_path: Path) -> None:
    gate = Gate(b"slow but fine")
    backend = Backend(gate).start()
    gw = start_gateway(tmp_path, config("v1", backend))
    try:
        idle = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        idle.request("GET", "/prod/v")
        first = idle.getresponse()
        assert (first.status, first.read(), first.getheader("Connection")) == (200, b"v1", None)
        thread, box = run_in_thread(lambda: gw.request("GET", "/prod/p/slow"))
        assert gate.arrived.wait(10)
        gw.signal(signal.SIGTERM)
        wait_for(lambda: gw.admin("/readyz")[0] == 503, "/readyz to report draining")
        _, ready = admin_json(gw, "/readyz")
        assert ready["status"] == "not ready"
        assert refused(gw.port)  # the listening socket is closed as the drain starts
        assert idle.sock is not None
        idle.sock.settimeout(10)
        assert idle.sock.recv(1) == b""  # the idle keep-alive connection was closed
        idle.close()
        assert gw.proc.poll() is None  # still running: a request is in flight
        gate.open()
        thread.join(10)
        status, _, body = box[0]
        assert (status, body) == (200, b"slow but fine")
        assert gw.proc.wait(15) == 0
        assert [x["status"] for x in gw.access_log()] == [200, 200]
    finally:
        gate.open()
        gw.stop()
        backend.stop()


def test_a_response_finished_while_draining_says_connection_close(tmp_path: Path) -> None:
    gate = Gate(b"slow but fine")
    backend = Backend(gate).start()
    gw = start_gateway(tmp_path, config("v1", backend))
    try:
        thread, box = run_in_thread(lambda: gw.request("GET", "/prod/p/slow"))
        assert gate.arrived.wait(10)
        gw.signal(signal.SIGTERM)
        wait_for(lambda: gw.admin("/readyz")[0] == 503, "/readyz to report draining")
        gate.open()
        thread.join(10)
        status, headers, _ = box[0]
        assert status == 200
        assert headers.get("connection") == "close"  # the client must not reuse the connection
    finally:
        gate.open()
        gw.stop()
        backend.stop()


# --- (d) several workers ---------------------------------------------------------------------------


def many_requests(
    gw: Gateway, path: str, count: int, threads: int = 8
) -> list[tuple[int, dict[str, str], bytes]]:
    """``count`` requests, each on a new connection (so the kernel spreads them over workers)."""
    out: list[tuple[int, dict[str, str], bytes]] = []
    lock = threading.Lock()
    todo = iter(range(count))

    def worker() -> None:
        while True:
            with lock:
                if next(todo, None) is None:
                    return
            result = gw.request("GET", path, headers={"Connection": "close"})
            with lock:
                out.append(result)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    return out


def ready_workers(gw: Gateway, count: int) -> set[int]:
    """Wait until /readyz reports ``count`` workers ready; their PIDs (children of the supervisor)."""
    wait_for(lambda: admin_json(gw, "/readyz")[1].get("workers_ready") == count, f"{count} ready workers")
    pids = child_pids(gw.proc.pid)
    assert len(pids) == count
    return pids


def answers_by_process(gw: Gateway, path: str, want: int, limit: int = 2000) -> dict[str, set[bytes]]:
    """Bodies seen per answering process, sampling until ``want`` processes have answered."""
    seen: dict[str, set[bytes]] = {}
    for _ in range(limit // 50):
        for status, headers, body in many_requests(gw, path, 50):
            assert status == 200
            seen.setdefault(process_of(headers), set()).add(body)
        if len(seen) >= want:
            break
    return seen


def test_two_workers_share_the_port_and_merge_metrics(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, config("v1"), workers=2)
    try:
        workers = ready_workers(gw, 2)
        results = many_requests(gw, "/prod/v", 200)
        assert [(s, b) for s, _, b in results] == [(200, b"v1")] * 200
        assert len({process_of(h) for _, h, _ in results}) == 2  # both workers answered
        wait_for(lambda: metric(gw, "iamgate_requests_total") == 200, "the merged request count to reach 200")
        assert metric(gw, "iamgate_requests_total", api=API, stage="prod", status="200") == 200
        assert child_pids(gw.proc.pid) == workers
    finally:
        gw.stop()


def test_a_killed_worker_is_replaced(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, config("v1"), workers=2)
    try:
        workers = ready_workers(gw, 2)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        replaced = wait_for(
            lambda: (pids := child_pids(gw.proc.pid)) and len(pids) == 2 and victim not in pids and pids,
            "a new worker",
        )
        assert replaced - workers != set()
        seen = answers_by_process(gw, "/prod/v", want=2)
        assert len(seen) == 2
        assert all(bodies == {b"v1"} for bodies in seen.values())
        assert "a worker exited" in gw.stderr()
    finally:
        gw.stop()


def test_a_worker_replaced_while_the_file_is_broken_serves_the_last_good_config(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, config("v1"), workers=2)
    try:
        workers = ready_workers(gw, 2)
        rewrite_config(gw, "apis: [\n")  # refused by the watcher: the workers keep v1
        wait_for(lambda: reloads(gw, "failed") == 1, "the refused reload")
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda: (
                admin_json(gw, "/readyz")[1]["workers_ready"] == 2 and not child_pids(gw.proc.pid) & workers
            ),
            "two new workers",
        )
        seen = answers_by_process(gw, "/prod/v", want=2)
        assert len(seen) == 2
        assert all(bodies == {b"v1"} for bodies in seen.values())
    finally:
        gw.stop()


def test_workers_exit_when_the_supervisor_dies(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, config("v1"), workers=2)
    try:
        workers = ready_workers(gw, 2)
        gw.proc.kill()
        gw.proc.wait(10)
        wait_for(lambda: not any(alive(pid) for pid in workers), "the orphaned workers to exit")
        assert refused(gw.port)
    finally:
        gw.stop()


def test_sighup_reloads_every_worker(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, config("v1"), workers=2, extra_args=("--no-watch",))
    try:
        version = config_version(gw)
        assert len(answers_by_process(gw, "/prod/v", want=2)) == 2
        rewrite_config(gw, config("v2", policy=DENY_SECRET))
        gw.signal(signal.SIGHUP)
        wait_for(lambda: config_version(gw) == version + 1, "the supervisor to accept the reload")

        def every_worker_serves_v2() -> bool:
            seen = answers_by_process(gw, "/prod/v", want=2)
            return len(seen) == 2 and all(bodies == {b"v2"} for bodies in seen.values())

        wait_for(every_worker_serves_v2, "both workers to serve the new configuration", interval=0.2)
        statuses = {s for s, _, _ in many_requests(gw, "/prod/secret", 100)}
        assert statuses == {403}
        assert reloads(gw, "ok") == 1  # one reload, however many workers
        rewrite_config(gw, "apis: [\n")
        gw.signal(signal.SIGHUP)
        wait_for(lambda: reloads(gw, "failed") == 1, "the refused reload")
        assert f"{gw.config_path}:" in gw.stderr()
        assert {b for _, _, b in many_requests(gw, "/prod/v", 50)} == {b"v2"}
    finally:
        gw.stop()


def test_sigterm_drains_every_worker(tmp_path: Path) -> None:
    gate = Gate(b"slow but fine")
    backend = Backend(gate).start()
    gw = start_gateway(tmp_path, config("v1", backend), workers=2)
    try:
        workers = ready_workers(gw, 2)
        thread, box = run_in_thread(lambda: gw.request("GET", "/prod/p/slow"))
        assert gate.arrived.wait(10)
        gw.signal(signal.SIGTERM)
        wait_for(lambda: gw.admin("/readyz")[0] == 503, "/readyz to report draining")
        wait_for(lambda: refused(gw.port), "every worker to stop accepting")  # signals are asynchronous
        assert gw.proc.poll() is None
        assert box == []  # the slow request is still in flight
        gate.open()
        thread.join(10)
        status, _, body = box[0]
        assert (status, body) == (200, b"slow but fine")
        assert gw.proc.wait(15) == 0
        assert not any(alive(pid) for pid in workers)
    finally:
        gate.open()
        gw.stop()
        backend.stop()


# --- (e) the admin port ---------------------------------------------------------------------------


def test_admin_endpoints(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, config("v1", gateway={"access_log": None}), extra_args=("--no-watch",))
    try:
        status, health = admin_json(gw, "/healthz")
        assert (status, health) == (200, {"status": "ok"})
        status, ready = admin_json(gw, "/readyz")
        assert status == 200
        assert ready["status"] == "ready"
        assert ready["apis"] == [API]
        version = ready["config_version"]
        assert isinstance(version, int)
        for path in ("/", "/metricsx", "/healthz/x", "/admin"):
            assert gw.admin(path)[0] == 404, path
        conn = http.client.HTTPConnection("127.0.0.1", gw.admin_port, timeout=10)
        conn.request("POST", "/readyz", body=b"")
        assert conn.getresponse().status == 405
        conn.close()

        assert gw.request("GET", "/prod/v")[0] == 200
        assert gw.request("GET", "/prod/nope")[0] == 403
        conn = http.client.HTTPConnection("127.0.0.1", gw.admin_port, timeout=10)
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        assert resp.getheader("Content-Type", "").startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
        conn.close()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert_valid_exposition(text)
        assert families["iamgate_requests"].type == "counter"
        samples = {tuple(sorted(s.labels.items())): s.value for s in families["iamgate_requests"].samples}
        assert samples == {
            (("api", API), ("decision", "Allow"), ("stage", "prod"), ("status", "200")): 1,
            (("api", API), ("decision", "none"), ("stage", "prod"), ("status", "403")): 1,
        }
        duration = families["iamgate_request_duration_seconds"]
        assert duration.type == "histogram"
        counts = [s.value for s in duration.samples if s.name.endswith("_count")]
        assert sum(counts) == 2
        assert families["iamgate_config_version"].samples[0].value == version
        assert families["iamgate_connections"].type == "gauge"
        in_flight = families["iamgate_requests_in_flight"]
        assert [s.value for s in in_flight.samples] == [0]

        rewrite_config(gw, config("v2"))
        gw.signal(signal.SIGHUP)
        wait_for(lambda: config_version(gw) == version + 1, "config_version to increase on reload")
        assert metric(gw, "iamgate_config_version") == version + 1
    finally:
        gw.stop()


def assert_valid_exposition(text: str) -> None:
    """What the text format requires beyond what the parser checks: one TYPE per family before
    its samples, histogram buckets cumulative and ending at +Inf == _count."""
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            assert name not in typed, f"TYPE given twice for {name}"
            typed.add(name)
        elif line and not line.startswith("#"):
            name = line.split("{")[0].split()[0]
            base = name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
            assert name in typed or base in typed, f"sample {name} before its TYPE"
    for family in text_string_to_metric_families(text):
        if family.type != "histogram":
            continue
        series: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
        totals: dict[tuple[tuple[str, str], ...], float] = {}
        for s in family.samples:
            key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            if s.name.endswith("_bucket"):
                series.setdefault(key, []).append((float(s.labels["le"]), s.value))
            elif s.name.endswith("_count"):
                totals[key] = s.value
        for key, buckets in series.items():
            assert buckets == sorted(buckets), f"{family.name}{key}: buckets not cumulative"
            assert buckets[-1][0] == float("inf")
            assert buckets[-1][1] == totals[key]


# --- (f) log rotation -------------------------------------------------------------------------------


def log_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_sigusr1_reopens_the_access_log(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    gw = start_gateway(tmp_path, config("v1", gateway={"access_log": {"destination": str(log)}}))
    try:
        assert gw.request("GET", "/prod/v")[0] == 200
        wait_for(lambda: len(log_lines(log)) == 1, "the first line")
        rotated = tmp_path / "access.log.1"
        log.rename(rotated)
        assert gw.request("GET", "/prod/v?before-reopen")[0] == 200
        wait_for(lambda: len(log_lines(rotated)) == 2, "a line in the renamed file (still open)")
        gw.signal(signal.SIGUSR1)
        wait_for(log.exists, "the access log to be reopened at its configured path")
        assert gw.request("GET", "/prod/secret")[0] == 200
        wait_for(lambda: len(log_lines(log)) == 1, "a line in the new file")
        assert log_lines(log)[0]["path"] == "/prod/secret"
        assert len(log_lines(rotated)) == 2
    finally:
        gw.stop()


def test_sigusr1_after_a_reload_reopens_the_new_destination(tmp_path: Path) -> None:
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    gw = start_gateway(
        tmp_path,
        config("v1", gateway={"access_log": {"destination": str(first)}}),
        extra_args=("--no-watch",),
    )
    try:
        version = config_version(gw)
        rewrite_config(gw, config("v2", gateway={"access_log": {"destination": str(second)}}))
        gw.signal(signal.SIGHUP)
        wait_for(lambda: config_version(gw) == version + 1, "the reload")
        assert gw.request("GET", "/prod/v")[0] == 200
        wait_for(lambda: len(log_lines(second)) == 1, "a line in the new destination")
        rotated = tmp_path / "second.log.1"
        second.rename(rotated)
        gw.signal(signal.SIGUSR1)
        wait_for(second.exists, "the new destination to be reopened")
        assert gw.request("GET", "/prod/v")[0] == 200
        wait_for(lambda: len(log_lines(second)) == 1, "a line in the reopened file")
        assert len(log_lines(rotated)) == 1
        assert not first.exists() or log_lines(first) == []
    finally:
        gw.stop()


def test_sigusr1_reopens_the_access_log_of_every_worker(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    gw = start_gateway(tmp_path, config("v1", gateway={"access_log": {"destination": str(log)}}), workers=2)
    try:
        assert len(answers_by_process(gw, "/prod/v", want=2)) == 2
        rotated = tmp_path / "access.log.1"
        wait_for(lambda: len(log_lines(log)) >= 2, "lines from the workers")
        log.rename(rotated)
        gw.signal(signal.SIGUSR1)
        wait_for(log.exists, "the access log to be reopened")
        before = len(log_lines(rotated))
        seen = answers_by_process(gw, "/prod/secret", want=2)
        assert len(seen) == 2
        wait_for(
            lambda: {x["requestId"][:13] for x in log_lines(log)} == set(seen),
            "lines from both workers in the new file",
        )
        assert len(log_lines(rotated)) == before
    finally:
        gw.stop()


# --- (g) startup errors -------------------------------------------------------------------------------


def serve_and_wait(tmp_path: Path, cfg: dict[str, Any] | str, *args: str) -> tuple[int, str]:
    gw = start_gateway(tmp_path, cfg, wait=False, extra_args=args)
    try:
        code = gw.proc.wait(20)
    finally:
        gw.stop()
    return code, gw.stderr()


def test_bad_config_exits_2_and_prints_every_diagnostic(tmp_path: Path) -> None:
    text = """\
gateway:
  regoin: us-east-1
  account_id: 111122223333
apis:
  - id: a1b2c3d4e5
    endpoint_type: PRIVATE
    stages: {prod: {}}
    routes:
      - {path: /v, method: GETT, integration: {type: MOCK}}
"""
    code, err = serve_and_wait(tmp_path, text)
    assert code == 2
    config_path = tmp_path / "gateway.yaml"
    for where, diag in [
        ("2:3", "error config.unknown-key"),
        ("3:15", "error config.wrong-type"),
        ("5:5", "error config.missing-key"),
        ("9:28", "error config.invalid-value"),
    ]:
        assert f"{config_path}:{where}: {diag}" in err
    assert "did you mean 'region'?" in err
    assert "Traceback" not in err
    assert "not starting" in err


def test_config_with_conflicting_routes_exits_2_without_traceback(tmp_path: Path) -> None:
    cfg = config("v1")
    cfg["apis"][0]["routes"] = [
        {"path": "/pets/{id}", "method": "GET", "integration": {"type": "MOCK"}},
        {"path": "/pets/{name}", "method": "POST", "integration": {"type": "MOCK"}},
    ]
    code, err = serve_and_wait(tmp_path, cfg)
    assert code == 2
    assert "error config.conflicting-route" in err
    assert "Traceback" not in err


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [IAMGATE, "serve", "--config", str(tmp_path / "nope.yaml"), "--port", "0", "--admin-port", "0"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert proc.returncode == 2
    assert "error config.unreadable" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_port_in_use_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, err = serve_and_wait(tmp_path, config("v1"), "--port", str(port))
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "in use" in err
    assert "Traceback" not in err


def test_port_held_by_another_gateway_exits_2(tmp_path: Path) -> None:
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = start_gateway(tmp_path / "first", config("v1"))
    try:
        code, err = serve_and_wait(tmp_path / "second", config("v2"), "--port", str(first.port))
        assert code == 2
        assert f"cannot listen on 127.0.0.1:{first.port}" in err
        assert first.request("GET", "/prod/v")[2] == b"v1"
    finally:
        first.stop()


def test_admin_port_in_use_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, err = serve_and_wait(tmp_path, config("v1"), "--admin-port", str(port))
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err


# --- small helpers ------------------------------------------------------------------------------------


def ok_body(body: bytes) -> Callable[..., None]:
    from tests.gateway.conftest import reply

    def handler(req: Any, sock: socket.socket) -> None:
        reply(sock, 200, body, [("Content-Type", "text/plain")])

    return handler


def refused(port: int) -> bool:
    """Whether a new connection to ``port`` is refused."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


def recv_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_reload_applies_new_pool_settings(tmp_path: Path, backend: Backend) -> None:
    """upstream.* follows a reload: the old pools are retired, new connections use the new ones."""
    base = simple_config(backend.url, gateway={"upstream": {"max_idle": 8}})
    gw = start_gateway(tmp_path, base)
    try:
        for _ in range(5):
            assert gw.request("GET", "/prod/a")[0] == 200
        before = backend.connections
        changed = simple_config(backend.url, gateway={"upstream": {"max_idle": 0}})
        write_config(gw.config_path, changed)
        gw.signal(signal.SIGHUP)
        wait_for(lambda: config_version(gw) == 2, "the reload")
        for _ in range(3):
            assert gw.request("GET", "/prod/a")[0] == 200
        # max_idle 0: no connection is kept, so every request opens a new one
        assert backend.connections - before == 3
    finally:
        gw.stop()
