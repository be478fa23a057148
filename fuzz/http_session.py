"""One HTTP fuzzing session: a real ``iamgate serve`` in front of the scripted backend, and the
client side that plays :class:`~fuzz.http_inputs.Input` values against it.

The gateway is started once per session (it takes about half a second) and the scripted backend
(tests/gateway/hostile.py) runs in this process. Each input gets fresh client connections; at its
end the session waits for the answers due, closes the clients, checks that the gateway still
answers ``GET /prod/ok``, then closes every backend connection, so that no input inherits a
pooled connection from the one before (an input fails or passes on its own, which Hypothesis
needs to shrink it) and the backend's transcripts of the input are complete. The oracle
(fuzz/http_oracle.py) then judges the records.

All client I/O is one thread over non-blocking sockets, so a gateway that stops reading or a
client that writes a large body never blocks the others.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from fuzz.http_inputs import Await, Close, Input, Junk, Pause, Send, render
from fuzz.http_oracle import POLICY, ClientLog, Origin, Violation, check
from fuzz.http_wire import due, parse_responses, parse_transcript
from tests.gateway.hostile import ScriptedBackend

__all__ = ["DEFAULT_IAMGATE", "Outcome", "Session", "gateway_config"]

DEFAULT_IAMGATE = str(Path(sys.executable).parent / "iamgate")
INTEGRATION_TIMEOUT = 5  # seconds: a request the backend never gets in whole is answered 504 by then
DUE_SECONDS = 6.0  # how long a client waits for the answers it is owed (past INTEGRATION_TIMEOUT)


def gateway_config(backend_url: str) -> dict[str, object]:
    """The gateway under test: one API, stage prod, a greedy proxy route, the fuzz policy. Only
    settings that every gateway version since the backend-connection fixes reads, so the same
    session can run an older build (docs/fuzzing.md)."""
    return {
        "gateway": {
            "region": "us-east-1",
            "account_id": "111122223333",
            "access_log": None,
            "max_request_body": 131072,
            "max_header_bytes": 2048,
            "upstream": {"max_connections": 4, "connect_timeout": 1},
        },
        "apis": [
            {
                "id": "a1b2c3d4e5",
                "stages": {"prod": {}},
                "policy": POLICY,
                "routes": [
                    {
                        "path": "/{proxy+}",
                        "method": "ANY",
                        "integration": {
                            "type": "HTTP_PROXY",
                            "uri": f"{backend_url}/{{proxy}}",
                            "timeout": INTEGRATION_TIMEOUT,
                        },
                    }
                ],
            }
        ],
    }


@dataclass
class Outcome:
    """What one input did and what the oracle found."""

    violations: list[Violation]
    seconds: float
    requests: int  # requests the clients wrote (tagged ones, smuggling attempts included)
    backend_messages: int  # requests the backend read (or began to)
    statuses: Counter[int] = field(default_factory=Counter)  # of the responses clients read
    behaviours: Counter[str] = field(default_factory=Counter)  # backend behaviours the requests chose
    reused: int = 0  # backend connections that carried more than one request
    waited_out: int = 0  # connections still owed answers when the wait for them ended
    clients: list[ClientLog] = field(default_factory=list)  # what each client sent and read
    transcripts: dict[int, bytes] = field(default_factory=dict)  # what each backend connection read
    origins: dict[str, Origin] = field(default_factory=dict)  # each tag: its connection and request


class _Conn:
    def __init__(self, index: str, port: int) -> None:
        self.index = index
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setblocking(False)
        self.out = bytearray()
        self.sent = bytearray()
        self.received = bytearray()
        self.planned = 0  # bytes written so far, sent or still in ``out``
        self.requests: list[tuple[str, int]] = []
        self.clean = True
        self.cut = False  # a write was cut short: the client writes nothing more
        self.open = True
        self.eof = False  # the gateway closed (or reset) the connection
        self._answered = (-1, 0)  # (received length, final responses in it)

    def answered(self, head_tags: frozenset[str]) -> int:
        if self._answered[0] != len(self.received):
            # every final response begun counts: its head is the gateway's answer (an untagged
            # answer to HEAD cannot be told complete until more bytes come)
            responses, _ = parse_responses(bytes(self.received), eof=False, head_tags=head_tags)
            count = sum(1 for r in responses if r.status >= 200)
            self._answered = (len(self.received), count)
        return self._answered[1]

    def close(self, *, reset: bool = False) -> None:
        if not self.open:
            return
        self.open = False
        with contextlib.suppress(OSError):
            if reset:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()


class Session:
    """A gateway process and a scripted backend, kept for many inputs."""

    def __init__(
        self,
        home: Path,
        iamgate: str = DEFAULT_IAMGATE,
        *,
        slow_seconds: float = 0.05,
        liveness_seconds: float = 5.0,
    ) -> None:
        self.home = home
        self.liveness_seconds = liveness_seconds
        self.iamgate = iamgate
        self.backend = ScriptedBackend(slow_seconds=slow_seconds, slowread_piece=4096, slowread_pause=0.001)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.admin_port = 0
        self.tags = 0
        self.inputs = 0
        self.restarts = 0
        self._stderr_seen = 0
        # the tags and client bytes of the last inputs: a request of theirs may reach the backend
        # in the next one (oracle.check's ``earlier``)
        self._earlier: deque[tuple[dict[str, Origin], dict[str, bytes]]] = deque(maxlen=4)

    # --- the gateway --------------------------------------------------------------------------
    def __enter__(self) -> Session:
        self.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    @property
    def stderr_path(self) -> Path:
        return self.home / "gateway.err"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.backend.start()
        self._launch()

    def _launch(self) -> None:
        self.port, self.admin_port = _free_port(), _free_port()
        config_path = self.home / "gateway.yaml"
        config_path.write_text(json.dumps(gateway_config(self.backend.url), indent=1))  # JSON is YAML
        with (self.home / "gateway.out").open("ab") as out, self.stderr_path.open("ab") as err:
            self._stderr_seen = err.tell()
            self.proc = subprocess.Popen(  # noqa: S603 (the iamgate executable the session was given)
                [
                    self.iamgate,
                    "serve",
                    "--config",
                    str(config_path),
                    "--port",
                    str(self.port),
                    "--admin-port",
                    str(self.admin_port),
                    "--workers",
                    "1",
                ],
                stdout=out,
                stderr=err,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"iamgate exited with {self.proc.returncode}: {self.new_stderr()}")
            with contextlib.suppress(OSError):
                url = f"http://127.0.0.1:{self.admin_port}/readyz"
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            time.sleep(0.05)
        raise RuntimeError(f"iamgate did not become ready: {self.new_stderr()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.backend.drop_connections()
        self.backend.stop()

    def restart(self) -> None:
        """A new gateway process (after one died or stopped answering)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.backend.drop_connections()
        self.backend.take_records()
        self.restarts += 1
        self._launch()

    def new_stderr(self) -> str:
        """What the gateway wrote to stderr since the last call."""
        with self.stderr_path.open("rb") as f:
            f.seek(self._stderr_seen)
            data = f.read()
        self._stderr_seen += len(data)
        return data.decode("utf-8", "replace")

    # --- one input ----------------------------------------------------------------------------
    def run(self, case: Input) -> Outcome:
        started = time.monotonic()
        self.inputs += 1
        origins: dict[str, Origin] = {}
        assert self.proc is not None
        if self.proc.poll() is not None:  # died after the last input was judged
            died = Violation("gateway-died", f"before the input, exit status {self.proc.returncode}")
            self.restart()
            return Outcome([died], time.monotonic() - started, 0, 0)
        try:
            conns = [_Conn(f"{self.inputs}.{i}", self.port) for i in range(case.connections)]
        except OSError as exc:
            self.restart()
            return Outcome(
                [Violation("liveness", f"a connection failed: {exc}")], time.monotonic() - started, 0, 0
            )
        head_tags: set[str] = set()
        for action in case.actions:
            if isinstance(action, Send):
                self._send(conns, action, origins, head_tags)
            elif isinstance(action, Await):
                self._wait(conns, [conns[action.conn]], frozenset(head_tags))
            elif isinstance(action, Close):
                conns[action.conn].close(reset=action.reset)
            elif isinstance(action, Pause):
                self._pump_for(conns, action.ms / 1000)
        waited_out = self._wait(conns, conns, frozenset(head_tags))
        self._pump(conns, 0)
        for conn in conns:
            conn.close()
        logs = [ClientLog(c.index, bytes(c.sent), bytes(c.received), c.requests, c.clean) for c in conns]
        violations: list[Violation] = []
        live = self._liveness(origins)
        logs.append(live[0])
        if live[1] is not None:
            violations.append(live[1])
        if not self.backend.drop_connections():
            violations.append(Violation("backend-stuck", "a backend connection did not close within 5 s"))
        _, transcripts, _ = self.backend.take_records()
        host = f"127.0.0.1:{self.backend.port}"
        earlier_origins: dict[str, Origin] = {}
        earlier_streams: dict[str, bytes] = {}
        for then_origins, then_streams in self._earlier:
            earlier_origins.update(then_origins)
            earlier_streams.update(then_streams)
        violations += check(logs, origins, transcripts, host, earlier=(earlier_origins, earlier_streams))
        self._earlier.append((origins, {log.index: log.sent for log in logs}))
        violations += self._process_problems()
        if any(v.kind in ("gateway-died", "liveness") for v in violations):
            self.restart()
        statuses: Counter[int] = Counter()
        for log in logs:
            responses, _ = parse_responses(log.received, eof=True, head_tags=frozenset(head_tags))
            statuses.update(r.status for r in responses if r.status >= 200)
        behaviours: Counter[str] = Counter()
        messages = reused = 0
        for data in transcripts.values():
            read = [m for m in parse_transcript(data) if m.method]
            messages += len(read)
            reused += len(read) > 1
            behaviours.update(m.target.split(b"?")[0].rsplit(b"/", 1)[-1].decode("latin-1") for m in read)
        return Outcome(
            violations,
            time.monotonic() - started,
            len(origins),
            messages,
            statuses,
            behaviours,
            reused,
            waited_out,
            logs,
            transcripts,
            origins,
        )

    def _new_tag(self, embedded: bool) -> str:
        self.tags += 1
        return f"{'s' if embedded else 't'}{self.tags}"

    def _send(
        self, conns: list[_Conn], action: Send, origins: dict[str, Origin], head_tags: set[str]
    ) -> None:
        conn = conns[action.conn]
        if not conn.open or conn.cut:
            return
        data = b""
        for item in action.items:
            if isinstance(item, Junk):
                conn.clean = False
                data += item.data
                continue
            raw, sent = render(item, self._new_tag)
            for s in sent:
                origins[s.tag] = Origin(conn.index, s.method, s.target)
                if s.method == "HEAD":
                    head_tags.add(s.tag)
            data += raw
            if not item.honest:
                conn.clean = False
            conn.requests.append((sent[0].tag, conn.planned + len(data)))
        if action.keep < 1.0:
            conn.clean = False
            conn.cut = True  # (what it wrote next would complete the cut line: a header's value)
            data = data[: int(len(data) * action.keep)]
        conn.planned += len(data)
        size = -(-len(data) // max(1, action.writes)) or 1
        for i in range(0, len(data), size):
            if i and action.gap_ms:
                self._pump_for(conns, action.gap_ms / 1000)
            conn.out += data[i : i + size]
            self._pump(conns, 0)

    def _wait(self, conns: list[_Conn], waiting: list[_Conn], head_tags: frozenset[str]) -> int:
        """Pump until each of ``waiting`` has its due answers (or the gateway closed it); the
        number still owed some when :data:`DUE_SECONDS` ran out."""
        deadline = time.monotonic() + DUE_SECONDS
        while True:
            owed = [
                c
                for c in waiting
                if c.open and not c.eof and (c.out or c.answered(head_tags) < due(bytes(c.sent)))
            ]
            left = deadline - time.monotonic()
            if not owed or left <= 0:
                return len(owed)
            self._pump(conns, min(left, 0.05))

    def _pump_for(self, conns: list[_Conn], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._pump(conns, left)

    def _pump(self, conns: list[_Conn], timeout: float) -> None:
        """One round of I/O: write what the sockets take, read what arrived (waiting up to
        ``timeout`` for something to happen)."""
        live = [c for c in conns if c.open and not c.eof]
        if not live:
            if timeout:
                time.sleep(timeout)
            return
        readable, writable, _ = select.select(
            [c.sock for c in live], [c.sock for c in live if c.out], [], timeout
        )
        for c in live:
            if c.sock in writable:
                try:
                    n = c.sock.send(c.out)
                except (BrokenPipeError, ConnectionResetError):
                    c.eof = True
                    continue
                except BlockingIOError:
                    n = 0
                c.sent += c.out[:n]
                del c.out[:n]
            if c.sock in readable:
                try:
                    chunk = c.sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                except BlockingIOError:
                    continue
                if chunk:
                    c.received += chunk
                else:
                    c.eof = True

    # --- after the input ----------------------------------------------------------------------
    def _liveness(self, origins: dict[str, Origin]) -> tuple[ClientLog, Violation | None]:
        """A plain GET /prod/ok must be answered 200, with its own answer, within 5 s."""
        tag = self._new_tag(False)
        index = f"{self.inputs}.live"
        origins[tag] = Origin(index, "GET", "/prod/ok")
        raw = f"GET /prod/ok HTTP/1.1\r\nHost: gw\r\nX-Tag: {tag}\r\n\r\n".encode()
        received = b""
        problem: str | None = f"no answer within {self.liveness_seconds:g} s"
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=self.liveness_seconds) as s:
                s.sendall(raw)
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        problem = "the connection closed"
                        break
                    received += chunk
                    responses, _ = parse_responses(received, eof=False)
                    if responses and responses[0].complete:
                        r = responses[0]
                        ok = r.status == 200 and r.header("x-tag") == tag
                        problem = None if ok else f"{r.status} {r.header('x-tag')} {r.body[:100]!r}"
                        break
        except OSError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        log = ClientLog(index, raw, received, [(tag, len(raw))], True)
        if problem is None:
            return log, None
        return log, Violation("liveness", f"GET /prod/ok after the input: {problem}")

    def _process_problems(self) -> list[Violation]:
        found = []
        assert self.proc is not None
        err = self.new_stderr()
        if "Traceback" in err:
            found.append(Violation("gateway-traceback", err[err.index("Traceback") :][:2000]))
        if self.proc.poll() is not None:
            found.append(Violation("gateway-died", f"exit status {self.proc.returncode}"))
        return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
