"""Real parts for the stage and runner tests: a snapshot from a configuration text, the services
of a process (memory throttle backend, backend pools, metrics), exchanges built as the client
connection builds them, requests signed by botocore, and an in-process authorizer whose answer
the test gives when it chooses.

The request path is compiled with mypyc: it checks the types of what it is given, so everything
here is the real object, never a stand-in.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from iamgate.config.load import parse_config
from iamgate.config.snapshot import Snapshot, build_snapshot
from iamgate.observe.metrics import Metrics
from iamgate.pipeline.chain import NAMES, run_stage
from iamgate.pipeline.exchange import Exchange
from iamgate.pipeline.later import StageResult
from iamgate.pipeline.services import Services
from iamgate.throttle.memory import MemoryBackend
from iamgate.upstream.pool import UpstreamPools

__all__ = [
    "GATE",
    "REGION",
    "Gate",
    "authorizer",
    "gate",
    "make_exchange",
    "make_services",
    "make_snapshot",
    "run_before",
    "run_to",
    "signed_headers",
    "stage_index",
]

REGION = "us-east-1"


def make_snapshot(text: str) -> Snapshot:
    """The snapshot of a configuration text (the configuration must be valid)."""
    config, diagnostics = parse_config(text)
    assert config is not None, [d.render() for d in diagnostics]
    return build_snapshot(config)


def make_services() -> Services:
    """A process's services: a fresh memory throttle backend (no bucket used yet), pools, metrics."""
    pools = UpstreamPools(max_connections=4, max_idle=2, idle_timeout=5.0, connect_timeout=1.0)
    return Services(pools, MemoryBackend(), Metrics())


def make_exchange(
    snapshot: Snapshot,
    services: Services,
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    *,
    peer: str = "192.0.2.10",
    secure: bool = False,
) -> Exchange:
    """An exchange as the client connection makes one: raw header lines, a map of lower-case
    names (repeated names are not used here), the path and query split at the first ``?``."""
    raw = target.encode("latin-1")
    path, _, query = raw.partition(b"?")
    lines: list[tuple[bytes, bytes]] = []
    hmap: dict[bytes, bytes] = {}
    for name, value in (headers or {}).items():
        lname = name.lower().encode("latin-1")
        lines.append((lname, f"{name}: {value}\r\n".encode("latin-1")))
        hmap[lname] = value.encode("latin-1")
    ex = Exchange(snapshot, method, path, query, lines, hmap, "HTTP/1.1", True, peer, secure)
    ex.services = services
    return ex


def stage_index(name: str) -> int:
    return NAMES.index(name)


def run_before(name: str, ex: Exchange) -> None:
    """Run the stages before ``name``, each of which must let the request through: the exchange
    is then in the state stage ``name`` sees."""
    for i in range(stage_index(name)):
        result = run_stage(i, ex)
        assert result is None, f"stage {NAMES[i]} answered {result!r} before {name} ran"


def run_to(name: str, ex: Exchange) -> StageResult:
    """Run the stages before ``name``, then ``name`` itself: its answer."""
    run_before(name, ex)
    return run_stage(stage_index(name), ex)


def signed_headers(
    access_key: str,
    secret: str,
    method: str,
    host: str,
    target: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    unsigned_payload: bool = False,
) -> dict[str, str]:
    """The headers botocore's ``SigV4Auth`` signs a request with (Host included)."""
    all_headers = dict(headers or {})
    if unsigned_payload:
        all_headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    request = AWSRequest(method, f"http://{host}{target}", data=body, headers=all_headers)
    SigV4Auth(Credentials(access_key, secret), "execute-api", REGION).add_auth(request)
    prepared = request.prepare()
    out = {"Host": host}
    out.update((name, value) for name, value in prepared.headers.items() if name.lower() != "host")
    return out


@dataclass
class Gate:
    """What the in-process authorizer answers, given by the test: each call waits until the test
    opens the gate (:meth:`open`), then answers the output (or raises what it is told to)."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    opened: asyncio.Event | None = None
    output: dict[str, Any] | None = None
    error: Exception | None = None

    def reset(self) -> None:
        self.calls.clear()
        self.opened = asyncio.Event()
        self.output = None
        self.error = None

    def open(self, output: dict[str, Any] | None = None, error: Exception | None = None) -> None:
        self.output = output
        self.error = error
        assert self.opened is not None
        self.opened.set()


GATE = Gate()


def gate() -> Gate:
    """The authorizer's gate, reset (call it inside the running event loop)."""
    GATE.reset()
    return GATE


async def authorizer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A Lambda-style authorizer (``function: tests.pipeline.stage_support:authorizer``): answers
    what the test opens :data:`GATE` with."""
    GATE.calls.append(event)
    assert GATE.opened is not None, "the test did not set up the gate"
    await GATE.opened.wait()
    if GATE.error is not None:
        raise GATE.error
    assert GATE.output is not None
    return GATE.output
