"""The stage runner (``pipeline.runner.run_stages``): what its host is told for each kind of
stage answer.

The host is a ``StageHost``, a mypyc trait: compiled, an interpreted class cannot subclass it
("interpreted classes cannot inherit from compiled traits"), and ``run_stages`` refuses any
other object, so a recording double of the host is impossible. The host here is the real one,
the client connection (``serving.connection.DownstreamConnection``), driven as
``bench/hotpath.py`` drives it: raw request bytes in through an in-memory transport, the raw
responses read back from it. What the runner told the connection shows in what was written, in
the request's metrics (``decision="none"``: the authorize stage never ran) and in the throttle
backend (no bucket: the throttle stage never ran).

One branch cannot be reached this way: a stage that answers ``NEED_BODY`` a second time, once
the body is there (500, logged). No stage of the chain does (the SigV4 stage asks only while
``Exchange.body`` is None), the chain calls its stages directly (compiled, they cannot be
replaced) and the host cannot be doubled; the case that can happen, the body asked for once and
the stages run again from the stage that asked, is tested below.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from iamgate.config.snapshot import Snapshot
from iamgate.pipeline.runner import run_stages
from iamgate.serving.connection import DownstreamConnection
from iamgate.serving.state import GatewayState
from iamgate.throttle.memory import MemoryBackend
from tests.pipeline.stage_support import Gate, gate, make_exchange, make_snapshot, signed_headers

ACCOUNT = "111122223333"
API = "a1b2c3d4e5"
HOST = f"{API}.execute-api.us-east-1.amazonaws.com"
ALICE = ("AKIAALICE00000000001", "alice-secret")
KEY = "good-key-0123456789abcdef"

CONFIG = """
gateway: {region: us-east-1, account_id: "111122223333"}
identities:
  accounts: [{id: "111122223333"}]
  users:
    - arn: "arn:aws:iam::111122223333:user/alice"
      policies:
        - Version: "2012-10-17"
          Statement: [{Effect: Allow, Action: "execute-api:Invoke", Resource: "*"}]
  access_keys:
    - {id: AKIAALICE00000000001, secret: alice-secret, owner: "arn:aws:iam::111122223333:user/alice"}
api_keys:
  - {id: k-good, value: good-key-0123456789abcdef}
apis:
  - id: a1b2c3d4e5
    stages: {prod: {}}
    policy:
      Version: "2012-10-17"
      Statement:
        - Sid: Everyone
          Effect: Allow
          Principal: "*"
          Action: "execute-api:Invoke"
          Resource: "execute-api:/*"
        - Sid: NoAdmin
          Effect: Deny
          Principal: "*"
          Action: "execute-api:Invoke"
          Resource: "execute-api:/*/*/admin"
    authorizers:
      - name: gate
        type: REQUEST
        identity_source: method.request.header.X-Token
        result_ttl: 0
        function: "tests.pipeline.stage_support:authorizer"
    routes:
      - {path: /open, method: GET, integration: {type: MOCK, body: ok}}
      - {path: /admin, method: GET, integration: {type: MOCK, body: ok}}
      - path: /signed
        method: ANY
        authorization: AWS_IAM
        rate_limit: {by: ip, rate: 0.001, burst: 1}
        integration: {type: MOCK, body: ok}
      - path: /custom
        method: GET
        authorization: CUSTOM
        authorizer: gate
        api_key_required: true
        integration: {type: MOCK, body: ok}
"""

SNAPSHOT = make_snapshot(CONFIG)

ALLOW = {
    "principalId": "user-1",
    "policyDocument": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}],
    },
}
DENY = {
    "principalId": "user-1",
    "policyDocument": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": "*"}],
    },
}


class FakeTransport(asyncio.Transport):
    """An in-memory client socket (as bench/hotpath.py's)."""

    def __init__(self, peer: tuple[str, int]) -> None:
        super().__init__()
        self.peer = peer
        self.written: list[bytes] = []
        self.closing = False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self.peer if name == "peername" else default

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def error_type(self) -> str | None:
        return self.headers.get("x-amzn-errortype")

    def message(self) -> Any:
        doc = json.loads(self.body)
        return doc.get("message", doc.get("Message"))


def _parse(raw: bytes) -> Response:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Response(int(lines[0].split(" ")[1]), headers, body)


class Client:
    """One client connection to a gateway process serving ``snapshot``."""

    def __init__(self, snapshot: Snapshot = SNAPSHOT, peer: str = "192.0.2.10") -> None:
        self.state = GatewayState(snapshot)
        self.down = DownstreamConnection(self.state)
        self.transport = FakeTransport((peer, 40000))
        self.down.connection_made(self.transport)

    def send(self, data: bytes) -> None:
        self.down.data_received(data)

    def responses(self) -> list[Response]:
        return [_parse(raw) for raw in self.transport.written if not raw.startswith(b"HTTP/1.1 100 ")]

    def requests_counted(self) -> dict[tuple[str, str], float]:
        """(status, decision) -> requests, from the process's metrics."""
        out: dict[tuple[str, str], float] = {}
        for name, labels, value in self.state.metrics.export()["counters"]:
            if name == "iamgate_requests_total":
                found = dict(labels)
                out[(found["status"], found["decision"])] = value
        return out

    def buckets(self) -> int:
        backend = self.state.throttler
        assert isinstance(backend, MemoryBackend)
        return len(backend.buckets)

    def close(self) -> None:
        self.state.access_log.close()
        self.state.stop_ticker()


def request(method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items() if name.lower() != "host"]
    if (body or method in ("POST", "PUT")) and not any(n.lower() == "content-length" for n in headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def serve(test: Callable[[Client], Awaitable[None]]) -> None:
    """Run ``test`` on a fresh client connection inside an event loop."""

    async def main() -> None:
        client = Client()
        try:
            await test(client)
        finally:
            client.close()

    asyncio.run(main())


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Let the event loop run until ``condition`` holds (a stage's answer comes by a task)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never: {what}")


# --- every stage goes on: the integration ---------------------------------------------------------


def test_every_stage_goes_on_then_the_integration_answers() -> None:
    async def test(client: Client) -> None:
        client.send(request("GET", "/prod/open"))
        client.send(request("GET", "/prod/open"))  # the connection is ready for the next one
        responses = client.responses()
        assert [(r.status, r.body) for r in responses] == [(200, b"ok"), (200, b"ok")]
        assert all(r.error_type is None for r in responses)
        assert client.requests_counted() == {("200", "Allow"): 2}

    serve(test)


# --- a stage answers: the response, and no later stage runs ----------------------------------------


@pytest.mark.parametrize(
    ("target", "headers", "status", "error_type", "decision", "buckets"),
    [
        # route answers: nothing else runs (no decision, no bucket)
        ("/prod/nothing", {}, 403, "MissingAuthenticationTokenException", "none", 0),
        # authenticate answers: authorize and throttle never run
        ("/prod/signed", {}, 403, "MissingAuthenticationTokenException", "none", 0),
        # authorize answers: the throttle never runs
        ("/prod/a/../admin", {}, 403, "AccessDeniedException", "ExplicitDeny", 0),
    ],
    ids=["route", "authenticate", "authorize"],
)
def test_a_stage_that_answers_ends_the_request(
    target: str, headers: dict[str, str], status: int, error_type: str, decision: str, buckets: int
) -> None:
    async def test(client: Client) -> None:
        for _ in range(2):  # twice: a throttle stage that ran would refuse the second (burst 1)
            client.send(request("GET", target, headers))
        responses = client.responses()
        assert [(r.status, r.error_type) for r in responses] == [(status, error_type)] * 2
        assert client.requests_counted() == {(str(status), decision): 2}
        assert client.buckets() == buckets

    serve(test)


def test_the_throttle_stage_answers_last() -> None:
    """A signed request reaches the throttle stage (burst 1): the second one is refused there."""

    async def test(client: Client) -> None:
        for _ in range(2):
            headers = signed_headers(*ALICE, "GET", HOST, "/prod/signed", unsigned_payload=True)
            client.send(request("GET", "/prod/signed", headers))
        responses = client.responses()
        assert [(r.status, r.error_type) for r in responses] == [
            (200, None),
            (429, "TooManyRequestsException"),
        ]
        assert client.buckets() == 1

    serve(test)


# --- NEED_BODY: the body is read, then the stages go on from the one that asked ----------------------


def test_a_stage_that_needs_the_body_runs_again_once_it_has_arrived() -> None:
    async def test(client: Client) -> None:
        body = b'{"amount": 10}'
        headers = signed_headers(*ALICE, "POST", HOST, "/prod/signed", body=body)
        raw = request("POST", "/prod/signed", headers, body)
        client.send(raw[: -len(body)])  # the head: authenticate needs the body, nothing is answered
        assert client.responses() == []
        client.send(body)
        responses = client.responses()
        assert [(r.status, r.body) for r in responses] == [(200, b"ok")]
        assert client.buckets() == 1  # the stages after authenticate ran

    serve(test)


def test_a_body_that_does_not_match_its_signature_is_refused_once_read() -> None:
    async def test(client: Client) -> None:
        headers = signed_headers(*ALICE, "POST", HOST, "/prod/signed", body=b'{"amount": 10}')
        client.send(request("POST", "/prod/signed", headers, b'{"amount": 99}'))
        responses = client.responses()
        assert [(r.status, r.error_type) for r in responses] == [(403, "InvalidSignatureException")]
        assert client.buckets() == 0

    serve(test)


# --- a stage that raises: 500, logged, never an allow -------------------------------------------------


@pytest.mark.parametrize(
    "start", [1, 2, 3, 4, 5], ids=["context", "authenticate", "authorize", "api_key", "throttle"]
)
def test_a_stage_that_raises_answers_500_and_is_logged(start: int, caplog: pytest.LogCaptureFixture) -> None:
    """Each stage run on an exchange the route stage never saw (no API, no route) fails its own
    checks: the runner answers 500 API_CONFIGURATION_ERROR and logs the error; the integration
    is never reached."""

    async def test(client: Client) -> None:
        ex = make_exchange(SNAPSHOT, client.state.services, "GET", "/prod/open", {"Host": HOST})
        client.down.ex = ex  # the request the connection is answering
        with caplog.at_level(logging.ERROR, logger="iamgate"):
            run_stages(client.down, ex, start)
        responses = client.responses()
        assert [(r.status, r.error_type, r.message()) for r in responses] == [
            (500, "InternalServerErrorException", "Internal server error")
        ]
        assert ex.response_type == "API_CONFIGURATION_ERROR"
        failures = [
            r for r in caplog.records if r.getMessage() == f"stage failed for request {ex.request_id}"
        ]
        assert len(failures) == 1
        assert failures[0].exc_info is not None

    serve(test)


# --- a stage that answers later: the request goes on from the next stage ------------------------------


async def _custom(client: Client, the_gate: Gate, headers: dict[str, str]) -> None:
    client.send(request("GET", "/prod/custom", {"X-Token": "t-1", **headers}))
    await _until(lambda: len(the_gate.calls) == 1, "the authorizer is called")
    for _ in range(10):
        await asyncio.sleep(0)
    assert client.responses() == []  # waiting for the authorizer's answer


@pytest.mark.parametrize(
    ("headers", "output", "error", "status", "error_type"),
    [
        ({"x-api-key": KEY}, ALLOW, None, 200, None),
        # the next stages run once the authorizer has answered: api_key refuses
        ({}, ALLOW, None, 403, "ForbiddenException"),
        # the authorizer's policy denies: authorize (the next stage) answers
        ({"x-api-key": KEY}, DENY, None, 403, "AccessDeniedException"),
        # the authorizer's own answers: its later answer is the response
        ({"x-api-key": KEY}, None, Exception("Unauthorized"), 401, "UnauthorizedException"),
        ({"x-api-key": KEY}, None, RuntimeError("boom"), 500, "AuthorizerConfigurationException"),
    ],
    ids=["allowed", "then-api-key-refuses", "then-authorize-denies", "unauthorized", "authorizer-fails"],
)
def test_a_later_answer_goes_on_from_the_next_stage(
    headers: dict[str, str],
    output: dict[str, Any] | None,
    error: Exception | None,
    status: int,
    error_type: str | None,
) -> None:
    async def test(client: Client) -> None:
        the_gate = gate()
        await _custom(client, the_gate, headers)
        the_gate.open(output, error)
        await _until(lambda: bool(client.responses()), "the response")
        responses = client.responses()
        assert [(r.status, r.error_type) for r in responses] == [(status, error_type)]
        if status == 200:
            assert responses[0].body == b"ok"
        assert len(the_gate.calls) == 1  # authenticate ran once: the runner went on after it

    serve(test)


def test_a_later_answer_after_the_client_left_is_ignored() -> None:
    async def test(client: Client) -> None:
        the_gate = gate()
        await _custom(client, the_gate, {"x-api-key": KEY})
        client.down.connection_lost(None)
        the_gate.open(ALLOW)
        for _ in range(20):
            await asyncio.sleep(0)
        assert client.responses() == []

    serve(test)
