"""The HTTP fuzzer of fuzz/ (docs/fuzzing.md), bounded, and checks that its oracle has teeth.

* :func:`test_random_clients_and_backend_behaviours_break_no_rule` plays Hypothesis-generated
  client inputs against one real ``iamgate serve`` in front of the scripted backend for about
  45 s (``IAMGATE_FUZZ_SCALE`` multiplies it), and fails with the shrunk input on any violation of
  the oracle: every request the backend read was written by the gateway, is allowed by the
  policy for exactly its method and path and carries its own client's body; every client read
  only its own answers, in order, never a second response; the gateway kept answering.
* The oracle's rule of the policy is checked against the policy engine, and the oracle is shown
  to report each class of violation when a real input's records are altered to show it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest
from fuzz.http_generate import inputs
from fuzz.http_inputs import Await, Input, Pause, Request, Send
from fuzz.http_oracle import POLICY, ClientLog, authorized, check
from fuzz.http_session import DEFAULT_IAMGATE, Outcome, Session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iamgate.policy import ApiRef, DecisionEffect, prepare
from iamgate.policy import Request as PolicyRequest

SCALE = int(os.environ.get("IAMGATE_FUZZ_SCALE", "1"))
BUDGET = 45.0 * SCALE  # seconds of inputs
# another build to fuzz (docs/fuzzing.md: the control run against the build before the fixes)
GATEWAY = os.environ.get("IAMGATE_FUZZ_GATEWAY", DEFAULT_IAMGATE)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    with Session(tmp_path_factory.mktemp("http-fuzz"), GATEWAY, liveness_seconds=3.0) as s:
        yield s


# --- the fuzzer, bounded --------------------------------------------------------------------------


def _report(outcome: Outcome) -> str:
    lines = [str(v) for v in outcome.violations]
    for client in outcome.clients:
        lines.append(f"client {client.index} sent {client.sent[:600]!r}")
        lines.append(f"client {client.index} read {client.received[:600]!r}")
    for number, data in sorted(outcome.transcripts.items()):
        lines.append(f"backend connection {number} read {data[:600]!r}")
    return "\n".join(lines)


@pytest.mark.slow
@pytest.mark.timeout(600 * SCALE)  # the budget, then shrinking a failure (each try is a real input)
def test_random_clients_and_backend_behaviours_break_no_rule(session: Session) -> None:
    deadline = time.monotonic() + BUDGET
    ran = []

    @settings(
        max_examples=4000 * SCALE,  # more than the budget allows: time, not the count, ends the run
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(inputs())
    def fuzz(case: Input) -> None:
        if time.monotonic() > deadline:
            return  # the budget is spent: the examples left cost only their generation
        outcome = session.run(case)
        ran.append(outcome)
        assert not outcome.violations, _report(outcome)

    fuzz()
    requests = sum(o.requests for o in ran)
    reached = sum(sum(o.behaviours.values()) for o in ran)
    # the run was long enough to mean something (about 50 inputs/s on an idle 2-core machine)
    assert len(ran) >= 200 * SCALE, len(ran)
    assert reached > len(ran), (requests, reached)  # more than the one liveness request per input
    assert all(sum(o.behaviours[b] for o in ran) > 0 for b in ("early", "double", "short", "reset"))


# --- the oracle's policy is the policy ------------------------------------------------------------

ARN = "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5"
NAMES = (
    "a",
    "admin",
    "secret",
    "items",
    "Admin",
    "adm",
    "xadmin",
    "admin;x",
    "secrets",
    "\uff41dmin",
    "*",
    "",
)


@given(
    st.sampled_from(("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PURGE")),
    st.lists(st.sampled_from(NAMES), min_size=1, max_size=4).map(lambda s: tuple(x for x in s if x)),
)
@settings(max_examples=500, deadline=None)
def test_the_oracles_rule_decides_as_the_policy(method: str, segments: tuple[str, ...]) -> None:
    compiled = prepare(POLICY, api=ApiRef("us-east-1", "111122223333", "a1b2c3d4e5")).policy
    assert compiled is not None
    arn = f"{ARN}/prod/{method}/{'/'.join(segments)}"
    decision = compiled.evaluate(PolicyRequest(None, "execute-api:Invoke", arn, {}))
    assert (decision.effect is DecisionEffect.ALLOW) == authorized(method, segments), arn


# --- the oracle reports each class -----------------------------------------------------------------

TWO_CLIENTS = Input(
    2,
    (
        Send(0, (Request("POST", "/prod/ok", body=b"0123456789"), Request("GET", "/prod/a/ok"))),
        Await(0),
        Send(1, (Request("GET", "/prod/ok"), Request("PUT", "/prod/items/ok", body=b"xyz"))),
        Await(1),
    ),
)


@pytest.fixture(scope="module")
def clean_run(session: Session) -> Outcome:
    outcome = session.run(TWO_CLIENTS)
    assert outcome.violations == []  # (the control: a real run of honest clients is clean)
    assert outcome.statuses[200] == 5  # four requests and the liveness check
    assert outcome.reused  # a backend connection carried several requests (_swallowed needs one)
    return outcome


def _first_request(data: bytes) -> bytes:
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        (int(v) for k, _, v in (ln.partition(b": ") for ln in head.split(b"\r\n")) if k == b"Content-Length"),
        0,
    )
    return head + b"\r\n\r\n" + rest[:length]


def _smuggle(outcome: Outcome) -> None:
    number = min(outcome.transcripts)
    outcome.transcripts[number] += b"GET /admin HTTP/1.1\r\nHost: backend\r\n\r\n"


def _denied_with_marks(outcome: Outcome) -> None:
    number = min(outcome.transcripts)
    first = _first_request(outcome.transcripts[number])
    outcome.transcripts[number] += first.replace(b" /ok ", b" /admin ", 1)


def _swallowed(outcome: Outcome) -> None:
    """The backend reads the next request as the body of one whose body it still expects."""
    number = min(outcome.transcripts)
    data = outcome.transcripts[number]
    first = _first_request(data)
    longer = first.replace(b"Content-Length: 10", b"Content-Length: 80", 1)
    outcome.transcripts[number] = longer + data[len(first) :]


def _twice(outcome: Outcome) -> None:
    number = min(outcome.transcripts)
    data = outcome.transcripts[number]
    outcome.transcripts[number] = data + _first_request(data)  # a POST: not replayable


def _crossed(outcome: Outcome) -> None:
    a, b = outcome.clients[0], outcome.clients[1]
    a.received, b.received = b.received, a.received


def _second(outcome: Outcome) -> None:
    """A second response to the last request a client sent (as a backend that answers twice)."""
    client = outcome.clients[0]
    tag = client.requests[-1][0].encode()
    body = b"SECOND " + tag
    client.received += b"HTTP/1.1 200 OK\r\nX-Tag: %b\r\nContent-Length: %d\r\n\r\n%b" % (
        tag,
        len(body),
        body,
    )


def _lost(outcome: Outcome) -> None:
    client = outcome.clients[1]
    cut = client.received.index(b"HTTP/1.1", 1)
    body = b'{"message":"Endpoint request timed out"}'
    client.received = (
        client.received[:cut]
        + b"HTTP/1.1 504 Gateway Timeout\r\nx-amzn-RequestId: x\r\n"
        + b"x-amzn-ErrorType: InternalServerErrorException\r\n"
        + b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
    )


def _garbled(outcome: Outcome) -> None:
    outcome.clients[0].received += b"junk that is no response at all\r\n\r\n"


@pytest.mark.parametrize(
    ("alter", "kinds"),
    [
        pytest.param(_smuggle, {"smuggled", "unknown-tag", "denied-request-served"}, id="smuggled"),
        pytest.param(
            _denied_with_marks, {"denied-request-served", "wrong-request", "sent-twice"}, id="denied"
        ),
        pytest.param(_swallowed, {"wrong-body", "backend-unreadable"}, id="swallowed"),
        pytest.param(_twice, {"sent-twice"}, id="twice"),
        pytest.param(_crossed, {"crossed-response"}, id="crossed"),
        pytest.param(_second, {"second-response", "crossed-response"}, id="second"),
        pytest.param(_lost, {"lost-request"}, id="lost"),
        pytest.param(_garbled, {"garbled-response"}, id="garbled"),
    ],
)
def test_the_oracle_reports_an_altered_record(
    session: Session, clean_run: Outcome, alter: Callable[[Outcome], None], kinds: set[str]
) -> None:
    copy = Outcome(
        [],
        0.0,
        0,
        0,
        clients=[ClientLog(c.index, c.sent, c.received, c.requests, c.clean) for c in clean_run.clients],
        transcripts=dict(clean_run.transcripts),
        origins=dict(clean_run.origins),
    )
    alter(copy)
    found = check(copy.clients, copy.origins, copy.transcripts, f"127.0.0.1:{session.backend.port}")
    assert {v.kind for v in found} == kinds, [str(v) for v in found]


def test_a_gateway_that_stops_answering_is_a_violation_and_is_restarted(session: Session) -> None:
    assert session.proc is not None
    stopped = session.proc
    stopped.send_signal(signal.SIGSTOP)  # alive, but answering nothing
    try:
        outcome = session.run(Input(1, (Pause(0),)))  # (nothing owed: only the liveness check waits)
    finally:
        if stopped.poll() is None:  # (not restarted: the test failed)
            stopped.send_signal(signal.SIGCONT)
    assert "liveness" in {v.kind for v in outcome.violations}
    assert session.proc is not stopped
    assert session.run(TWO_CLIENTS).violations == []  # a new gateway serves the next input
