"""Real parts for gateway tests: a recording backend on loopback and the real `iamgate serve`.

* :class:`Backend` is a threaded HTTP/1.1 server on a real socket. It records every request it
  receives (method, raw target, headers, body) and answers through a handler the test chooses;
  handlers can stream, stall, reset or close, so failure modes are real socket behaviour.
* :func:`start_gateway` writes a YAML configuration and runs ``iamgate serve`` as a subprocess
  on free ports, waits for ``/readyz`` and stops it with SIGTERM (drain) at the end.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ports import free_port
from tests.waiting import wait_for

IAMGATE = str(Path(sys.executable).parent / "iamgate")
ROOT_DIR = Path(__file__).resolve().parents[2]


@dataclass
class Recorded:
    method: str
    target: str  # the raw request target, exactly as received
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


Handler = Callable[["Recorded", socket.socket], None]


def reply(
    sock: socket.socket,
    status: int = 200,
    body: bytes = b"ok",
    headers: list[tuple[str, str]] | None = None,
    reason: str = "OK",
) -> None:
    head = [f"HTTP/1.1 {status} {reason}"]
    names = {k.lower() for k, _ in headers or []}
    for k, v in headers or []:
        head.append(f"{k}: {v}")
    if "content-length" not in names and "transfer-encoding" not in names:
        head.append(f"Content-Length: {len(body)}")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


def ok_handler(req: Recorded, sock: socket.socket) -> None:
    reply(sock, 200, b"ok", [("Content-Type", "text/plain"), ("Server", "test-backend")])


@dataclass
class Backend:
    """A recording HTTP/1.1 backend. ``handler(request, socket)`` writes the response."""

    handler: Handler = ok_handler
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    connections: int = 0
    _sock: socket.socket | None = None
    _stop: bool = False
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Backend:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port = self._sock.getsockname()[1]
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._stop = True
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        buf = b""
        try:
            while not self._stop:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = [tuple(x.split(":", 1)) for x in lines[1:] if ":" in x]
                headers = [(k.strip(), v.strip()) for k, v in headers]
                names = {k.lower(): v for k, v in headers}
                body = b""
                if "content-length" in names:
                    n = int(names["content-length"])
                    while len(buf) < n:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buf += chunk
                    body, buf = buf[:n], buf[n:]
                elif names.get("transfer-encoding", "").lower() == "chunked":
                    while True:
                        while b"\r\n" not in buf:
                            buf += conn.recv(65536)
                        size_line, _, buf = buf.partition(b"\r\n")
                        size = int(size_line.split(b";")[0], 16)
                        while len(buf) < size + 2:
                            chunk = conn.recv(65536)
                            if not chunk:
                                return
                            buf += chunk
                        body += buf[:size]
                        buf = buf[size + 2 :]
                        if size == 0:
                            break
                req = Recorded(method, target, headers, body)
                self.requests.append(req)
                self.handler(req, conn)
                if names.get("connection", "").lower() == "close":
                    return
        except (OSError, ValueError):
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = Backend().start()
    yield b
    b.stop()


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    port: int
    admin_port: int
    config_path: Path
    stdout_path: Path
    stderr_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def admin(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def access_log(self) -> list[dict[str, Any]]:
        """The JSON access-log lines of the requests answered so far. Lines are flushed within
        100 ms: while the gateway runs, this waits until stdout holds a line for every request
        ``iamgate_requests_total`` counts (each counted request is logged); a gateway that has
        exited flushed its log as it stopped."""
        if self.proc.poll() is None:
            wait_for(
                lambda: len(log_lines(self)) >= metric_value(self, "iamgate_requests_total"),
                "the access log to hold every request counted",
            )
        return [json.loads(line) for line in log_lines(self) if line.startswith("{")]

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def loaded_cryptography(pid: int) -> bool:
    """Whether the process has the ``cryptography`` package's native library mapped (PyJWT and
    iamgate's certificate reader load it; a gateway with no TLS and no JWT authorizer should not:
    about 10 MB of RSS in every process)."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return any("/cryptography/" in line and ".so" in line for line in maps.splitlines())


def write_config(path: Path, config: dict[str, Any] | str) -> Path:
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False))
    return path


def start_gateway(
    tmp_path: Path,
    config: dict[str, Any] | str,
    *,
    workers: int = 1,
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    wait: bool = True,
    preexec: Callable[[], None] | None = None,
) -> Gateway:
    port, admin_port = free_port(), free_port()
    config_path = write_config(tmp_path / "gateway.yaml", config)
    stdout_path, stderr_path = tmp_path / "gateway.out", tmp_path / "gateway.err"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [
                IAMGATE,
                "serve",
                "--config",
                str(config_path),
                "--port",
                str(port),
                "--admin-port",
                str(admin_port),
                "--workers",
                str(workers),
                *extra_args,
            ],
            stdout=out,
            stderr=err,
            env={**os.environ, **(env or {})},
            preexec_fn=preexec,  # noqa: PLW1509 (only a resource limit, set before exec)
        )
    gw = Gateway(proc, port, admin_port, config_path, stdout_path, stderr_path)
    if wait:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"iamgate exited with {proc.returncode}: {stderr_path.read_text()}")
            with contextlib.suppress(OSError):
                status, _ = gw.admin("/readyz")
                if status == 200:
                    return gw
            time.sleep(0.05)
        gw.stop()
        raise RuntimeError(f"iamgate did not become ready: {stderr_path.read_text()}")
    return gw


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def make(config: dict[str, Any] | str, **kw: Any) -> Gateway:
        gw = start_gateway(tmp_path, config, **kw)
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop()


def simple_config(
    backend_url: str | None = None,
    *,
    policy: dict[str, Any] | None = None,
    routes: list[dict[str, Any]] | None = None,
    gateway: dict[str, Any] | None = None,
    **api: Any,
) -> dict[str, Any]:
    """One API (a1b2c3d4e5, account 111122223333, us-east-1), stage prod, a proxy route."""
    if routes is None:
        routes = [
            {
                "path": "/{proxy+}",
                "method": "ANY",
                "integration": {"type": "HTTP_PROXY", "uri": f"{backend_url}/{{proxy}}"},
            }
        ]
    spec: dict[str, Any] = {"id": "a1b2c3d4e5", "stages": {"prod": {}}, "routes": routes, **api}
    if policy is not None:
        spec["policy"] = policy
    return {
        "gateway": {"region": "us-east-1", "account_id": "111122223333", **(gateway or {})},
        "apis": [spec],
    }


ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}
    ],
}


# --- helpers added for the request-path tests (test_routing/context/proxy/responses) -------------


def log_lines(gw: Gateway) -> list[str]:
    """Every line the gateway has written to stdout so far (access-log lines, JSON or templated)."""
    return gw.stdout_path.read_text().splitlines()


def wait_for_log(gw: Gateway, request_id: str, *, timeout: float = 5.0) -> dict[str, Any]:
    """The JSON access-log line of one request (polls: lines are flushed within 100 ms)."""

    def entry() -> dict[str, Any] | None:
        for line in log_lines(gw):
            if line.startswith("{") and request_id in line:
                logged: dict[str, Any] = json.loads(line)
                if logged.get("requestId") == request_id:
                    return logged
        return None

    found: dict[str, Any] = wait_for(entry, f"the access-log line of request {request_id}", timeout, 0.02)
    return found


def wait_for_line(gw: Gateway, needle: str, *, timeout: float = 5.0) -> str:
    """The first stdout line containing ``needle`` (for templated access-log formats)."""
    found: str = wait_for(
        lambda: next((line for line in log_lines(gw) if needle in line), None),
        f"a stdout line containing {needle!r}",
        timeout,
        0.02,
    )
    return found


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """A small reader of the Prometheus text exposition: (name, labels) -> value."""
    import re

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    line_re = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
    label_re = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = line_re.match(line)
        assert m is not None, f"not a sample line: {line!r}"
        labels = frozenset(
            (k, v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"))
            for k, v in label_re.findall(m.group(2) or "")
        )
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def metric_value(gw: Gateway, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 when there are none)."""
    status, body = gw.admin("/metrics")
    assert status == 200
    want = set(labels.items())
    return sum(
        value for (n, have), value in parse_metrics(body.decode()).items() if n == name and want <= have
    )


def raw_request(port: int, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send raw bytes, read until the server closes (send ``Connection: close``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def read_request(conn: socket.socket) -> tuple[bytes, bytes]:
    """For hand-written backends: read one request head (and what followed it) from a socket."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a full request head")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


# --- helpers for operations tests (reload, drain, workers, signals) ---------------------------


def replace_file(path: Path, content: str | bytes) -> None:
    """Write ``path`` atomically (temp file + rename), so a watcher never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(content, bytes):
        tmp.write_bytes(content)
    else:
        tmp.write_text(content)
    os.replace(tmp, path)


def rewrite_config(gw: Gateway, config: dict[str, Any] | str) -> None:
    """Replace the running gateway's configuration file atomically."""
    text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
    replace_file(gw.config_path, text)


def admin_json(gw: Gateway, path: str) -> tuple[int, dict[str, Any]]:
    status, body = gw.admin(path)
    return status, json.loads(body)


def config_version(gw: Gateway) -> int:
    _, ready = admin_json(gw, "/readyz")
    return int(ready["config_version"])


def child_pids(pid: int) -> set[int]:
    """Live (non-zombie) child processes of ``pid``, read from /proc."""
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(entry.name))
    return out


def process_of(headers: dict[str, str]) -> str:
    """Which gateway process answered: request ids start with a random per-process prefix."""
    return headers["x-amzn-requestid"][:13]


@dataclass
class Gate:
    """A backend handler that holds each request until :meth:`open` (a slow backend, without
    sleeping): ``arrived`` is set when a request is being held."""

    body: bytes = b"held"
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def __call__(self, req: Recorded, sock: socket.socket) -> None:
        self.arrived.set()
        self.released.wait(30)
        reply(sock, 200, self.body, [("Content-Type", "text/plain")])

    def open(self) -> None:
        self.released.set()


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
