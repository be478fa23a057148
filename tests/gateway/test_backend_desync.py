"""A backend connection is reused only when both messages on it ended by their framing.

The attack review's findings 1-3 (issue 14), against :class:`~tests.gateway.hostile.ScriptedBackend`,
which reads its connections as lenient servers do, so a request smuggled inside another's body
shows up in its record:

1. a backend that answers before the request body is complete must not get that connection's
   owed body bytes from the *next* client's request (the desync that served a denied path);
2. a request sent on such a connection must not be swallowed as the earlier request's body;
3. a backend that answers twice, or writes bytes after its response, must not put its
   connection into the idle pool (twice): no client may read another client's answer.

The oracle throughout: every request the backend parses is one the policy allows, and every
client reads the answer to its own request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.conftest import Gateway, simple_config, start_gateway
from tests.gateway.hostile import Client, ScriptedBackend, exchange

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"},
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/*/*/admin",
        },
    ],
}


@pytest.fixture(scope="module")
def backend() -> Iterator[ScriptedBackend]:
    b = ScriptedBackend(slow_seconds=1.0).start()
    yield b
    b.stop()


@pytest.fixture
def gateway(backend: ScriptedBackend, tmp_path: Path) -> Iterator[Gateway]:
    """A gateway of its own per test: a connection one test spoils cannot fail the next."""
    config = simple_config(backend.url, policy=POLICY)
    config["apis"][0]["routes"][0]["integration"]["timeout"] = 3
    gw = start_gateway(tmp_path, config)
    yield gw
    gw.stop()


def _request(method: str, path: str, *, body: bytes = b"", tag: str = "", extra: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: gw\r\nX-Tag: {tag}\r\n{extra}"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def _answer_of(client: Client) -> dict[str, object]:
    response = client.response()
    assert response.status == 200, (response.status, response.body)
    return dict(json.loads(response.body))


def _no_denied_request_reached(backend: ScriptedBackend) -> None:
    smuggled = [t for t in backend.targets() if t.rstrip("/").endswith("admin")]
    assert smuggled == [], f"the backend served a path the policy denies: {smuggled}"
    assert not [e for e in backend.errors if "admin" in e], backend.errors


def test_an_early_answer_does_not_let_the_next_request_smuggle_a_denied_path(
    gateway: Gateway, backend: ScriptedBackend
) -> None:
    # What the backend receives as the head of B's request, to size A's promised body so that
    # B's smuggled request starts exactly where the backend thinks A's body ends.
    smuggled = b"GET /admin HTTP/1.1\r\nHost: backend\r\nX-Tag: smuggled\r\n\r\n"
    probe = _request("POST", "/prod/ok", body=smuggled, tag="B")
    with Client(gateway.port) as c:
        c.send(probe)
        assert _answer_of(c)["length"] == len(smuggled)
    b_head = backend.parsed[-1].head_bytes

    for _ in range(3):  # the pool may hand B any idle connection: try a few times
        a = Client(gateway.port)
        sent = b"0123456789"
        a.send(_request("GET", "/prod/early", tag="A", extra=f"Content-Length: {10 + b_head}\r\n") + sent)
        early = a.response()
        assert early.status == 200
        assert early.body.startswith(b"early GET /early")
        with Client(gateway.port) as b:
            b.send(probe)
            answer = _answer_of(b)
        assert answer["tag"] == "B"
        assert answer["length"] == len(smuggled)  # the backend read B's body as B's body
        a.close()
    _no_denied_request_reached(backend)


def test_a_request_after_an_early_answer_is_not_read_as_its_body(gateway: Gateway) -> None:
    a = Client(gateway.port)
    a.send(_request("GET", "/prod/early", tag="A", extra="Content-Length: 1000\r\n") + b"0123456789")
    assert a.response().status == 200
    for tag in ("C1", "C2", "C3"):  # none of them may wait for the 990 bytes A still owes
        response = exchange(gateway.port, _request("GET", "/prod/ok", tag=tag), timeout=10)
        assert response.status == 200, response.body
        assert json.loads(response.body)["tag"] == tag
    a.close()


@pytest.mark.parametrize("action", ["double", "trailing"])
def test_bytes_beyond_a_response_close_the_backend_connection(
    gateway: Gateway, backend: ScriptedBackend, action: str
) -> None:
    for round_ in range(3):
        first = exchange(gateway.port, _request("GET", f"/prod/{action}", tag="D"))
        assert first.status == 200
        assert json.loads(first.body)["tag"] == "D"
        answers: dict[str, dict[str, object]] = {}

        def call(tag: str, answers: dict[str, dict[str, object]] = answers) -> None:
            response = exchange(gateway.port, _request("GET", "/prod/ok", tag=tag))
            answers[tag] = {"status": response.status, "body": response.body.decode()}

        tags = [f"{action}-{round_}-{i}" for i in range(4)]
        threads = [threading.Thread(target=call, args=(tag,)) for tag in tags]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        for tag in tags:
            assert answers[tag]["status"] == 200, answers[tag]
            body = str(answers[tag]["body"])
            assert not body.startswith("SECOND"), f"{tag} read the second answer to another request"
            assert json.loads(body)["tag"] == tag, f"{tag} read another client's answer: {body}"


def test_a_response_cut_short_is_not_reused(gateway: Gateway, backend: ScriptedBackend) -> None:
    with Client(gateway.port) as c:
        c.send(_request("GET", "/prod/short", tag="S"))
        head = c.reader.until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert len(c.rest()) < 100  # the client connection is cut, not padded
    assert exchange(gateway.port, _request("GET", "/prod/ok", tag="after")).status == 200


def test_the_desync_trigger_with_a_chunked_request_body(gateway: Gateway, backend: ScriptedBackend) -> None:
    a = Client(gateway.port)
    head = _request("POST", "/prod/early", tag="A", extra="Transfer-Encoding: chunked\r\n")
    a.send(head + b"5\r\nhello\r\n")
    assert a.response().status == 200
    smuggled = b"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: backend\r\n\r\n"
    for tag in ("E1", "E2"):
        response = exchange(gateway.port, _request("POST", "/prod/ok", tag=tag, body=smuggled))
        assert response.status == 200
        assert json.loads(response.body)["tag"] == tag
    a.close()
    _no_denied_request_reached(backend)
