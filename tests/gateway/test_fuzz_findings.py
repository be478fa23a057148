"""Findings of the HTTP fuzzer (fuzz/fuzz_http.py, docs/fuzzing.md), each reduced to a minimal
reproduction on real sockets, and cases of the same kind found while fixing them. An open finding
is ``xfail(strict=True)`` until fixed (its fix takes the marker off, and any filter that keeps the
suite's fuzz run clear of it). All of those below are fixed: findings 1 to 4, then the two at the
end (two requests queued at once), found once the fuzzer pipelined requests with bodies freely.

Findings 1 to 4 were all in how a client connection queued a pipelined request (one whose head is read
while the request before it is answered), all present since the first build:

1. A queued request whose body was not all there when its turn came hung the gateway's process
   (its body was replayed into the very list it was read from: 100 % CPU, memory growing).
2. If none of that body had arrived yet, the body read later was never forwarded (504).
3. A request whose head began while the request before it was answered, but was complete only
   after that answer, was queued with nothing left to start it: answered after the requests
   behind it (responses out of order), or never.
4. A queued request the gateway answered itself (a denial) started the next one from inside its
   own start, which then completed that next request a second time: a chunked request got its
   last chunk twice, and the pooled backend connection carried those bytes into the next
   client's request.

The rule now: a request is queued or begun when its head is *complete*; a queued request keeps
its own head (a typed object; the connection's head fields belong to the head being read);
when its turn comes it takes the body read so far and reads the rest as its own; queued
requests are started one after the other by a loop, never from inside each other; a queued
request takes its body directly, never through the parser callbacks that give what they read to
the request queued behind it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.conftest import Gateway, metric_value, simple_config, start_gateway, wait_for
from tests.gateway.hostile import Client, ScriptedBackend, exchange


@pytest.fixture
def backend() -> Iterator[ScriptedBackend]:
    b = ScriptedBackend().start()
    yield b
    b.stop()


@pytest.fixture
def gateway(backend: ScriptedBackend, tmp_path: Path) -> Iterator[Gateway]:
    config = simple_config(backend.url)
    config["apis"][0]["routes"][0]["integration"]["timeout"] = 2
    gw = start_gateway(tmp_path, config)
    yield gw
    if gw.proc.poll() is None:
        gw.proc.kill()  # a hung gateway does not drain (and grows while it spins)
        gw.proc.wait()


FIRST = b"GET /prod/ok HTTP/1.1\r\nHost: gw\r\nX-Tag: first\r\n\r\n"


def test_a_pipelined_request_with_part_of_its_body_does_not_hang_the_gateway(gateway: Gateway) -> None:
    with Client(gateway.port) as c:
        c.send(
            FIRST + b"POST /prod/ok HTTP/1.1\r\nHost: gw\r\nX-Tag: second\r\nContent-Length: 10\r\n\r\n12345"
        )
        assert c.response().status == 200
        started = time.monotonic()
        try:
            other = exchange(gateway.port, b"GET /prod/ok HTTP/1.1\r\nHost: gw\r\n\r\n", timeout=2)
        except TimeoutError:
            gateway.proc.kill()  # spinning: stop it before it takes much memory
            raise AssertionError("another client was not answered: the gateway's loop is stuck") from None
        assert other.status == 200
        assert time.monotonic() - started < 2
        c.send(b"67890")
        second = c.response()
        assert second.status == 200
        assert json.loads(second.body) == {"method": "POST", "target": "/ok", "tag": "second", "length": 10}


def test_a_pipelined_request_gets_the_body_sent_after_its_head(gateway: Gateway) -> None:
    with Client(gateway.port) as c:
        c.send(FIRST + b"POST /prod/ok HTTP/1.1\r\nHost: gw\r\nX-Tag: second\r\nContent-Length: 5\r\n\r\n")
        assert c.response().status == 200
        # the second request's head has been read and its exchange begun
        wait_for(lambda: metric_value(gateway, "iamgate_requests_in_flight") == 1, "the second exchange")
        c.send(b"hello")
        second = c.response()
        assert second.status == 200, second.body  # (504 after the route's 2 s: the body never left)
        assert json.loads(second.body) == {"method": "POST", "target": "/ok", "tag": "second", "length": 5}


def test_pipelined_requests_are_answered_in_order_when_a_head_spans_reads(gateway: Gateway) -> None:
    with Client(gateway.port) as c:
        c.send(FIRST + b"GET /prod/ok HTTP/1.1\r\nHo")  # the second head begins in the first read
        assert c.response().headers["x-tag"] == "first"
        c.send(b"st: gw\r\nX-Tag: second\r\n\r\nGET /prod/ok HTTP/1.1\r\nHost: gw\r\nX-Tag: third\r\n\r\n")
        tags = [c.response().headers.get("x-tag") for _ in range(2)]
        assert tags == ["second", "third"]  # (["third", "second"]: each read as the other's answer)


def test_a_pipelined_request_whose_head_spans_reads_is_answered(gateway: Gateway) -> None:
    with Client(gateway.port, timeout=4) as c:
        c.send(FIRST + b"GET /prod/ok HTTP/1.1\r\nHo")
        assert c.response().headers["x-tag"] == "first"
        c.send(b"st: gw\r\nX-Tag: second\r\n\r\n")
        try:
            second = c.response()
        except TimeoutError:
            raise AssertionError("the second request was never answered") from None
        assert second.headers["x-tag"] == "second"


def test_a_chunked_request_queued_behind_a_denied_one_is_sent_once(
    gateway: Gateway, backend: ScriptedBackend
) -> None:
    with Client(gateway.port) as c:
        c.send(
            FIRST
            + b"GET /dev/ok HTTP/1.1\r\nHost: gw\r\nX-Tag: refused\r\n\r\n"  # no such stage: 403
            + b"POST /prod/ok HTTP/1.1\r\nHost: gw\r\nX-Tag: third\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"5\r\nhello\r\n0\r\n\r\n"
        )
        assert [c.response().status for _ in range(3)] == [200, 403, 200]
    other = exchange(
        gateway.port, b"POST /prod/ok HTTP/1.1\r\nHost: gw\r\nX-Tag: other\r\nContent-Length: 2\r\n\r\nhi"
    )
    assert backend.errors == []  # (["conn 1: not a request line: '0'"]: five bytes beyond the request)
    assert other.status == 200, other.body  # (502: its request followed those bytes)
    assert json.loads(other.body)["tag"] == "other"


# --- found while fixing them ----------------------------------------------------------------------


def test_thousands_of_pipelined_requests_the_gateway_answers_itself_are_all_answered(
    gateway: Gateway, backend: ScriptedBackend
) -> None:
    """Each is answered as it starts (403: no such stage); the next ones are started by a loop,
    not from inside the previous one's end (which nested once per request: a deep enough
    pipeline would exhaust the stack)."""
    n = 3000
    denied = b"GET /dev/ok HTTP/1.1\r\nHost: gw\r\n\r\n"
    with Client(gateway.port, timeout=20) as c:
        c.send(FIRST + denied * n + b"GET /prod/ok HTTP/1.1\r\nHost: gw\r\nX-Tag: last\r\n\r\n")
        assert c.response().headers["x-tag"] == "first"
        assert all(c.response().status == 403 for _ in range(n))
        last = c.response()
        assert last.status == 200
        assert last.headers["x-tag"] == "last"
    assert backend.targets() == ["/ok", "/ok"]


def test_a_head_being_read_is_not_mixed_up_with_a_queued_request_that_starts(
    gateway: Gateway, backend: ScriptedBackend
) -> None:
    """A queued request starts while the next head is half read: each keeps its own headers."""
    backend.slow_seconds = 0.2  # the second and third requests are read while the first waits
    with Client(gateway.port) as c:
        c.send(
            b"GET /prod/slow HTTP/1.1\r\nHost: gw\r\nX-Tag: first\r\n\r\n"
            + b"GET /prod/ok HTTP/1.1\r\nHost: gw\r\nX-Tag: second\r\n\r\n"
            + b"GET /prod/ok HTTP/1.1\r\nHost: gw\r\nX-Ta"
        )
        assert c.response().headers["x-tag"] == "first"
        assert c.response().headers["x-tag"] == "second"
        c.send(b"g: third\r\n\r\n")
        assert c.response().headers["x-tag"] == "third"
    heads = [(p.headers.get("x-tag"), p.head_bytes) for p in backend.parsed]
    assert [tag for tag, _ in heads] == ["first", "second", "third"]
    assert heads[1][1] == heads[2][1] + len("second") - len("third")  # nothing of one in the other


def test_a_malformed_body_of_a_queued_request_is_refused_after_the_answers_owed(
    gateway: Gateway, backend: ScriptedBackend
) -> None:
    """The queued request whose chunked body is malformed is the one refused (400, close), after
    the request before it is answered; it is not started, to wait for a body that never comes."""
    backend.slow_seconds = 0.2
    with Client(gateway.port, timeout=4) as c:
        c.send(
            b"GET /prod/slow HTTP/1.1\r\nHost: gw\r\nX-Tag: first\r\n\r\n"
            + b"POST /prod/ok HTTP/1.1\r\nHost: gw\r\nX-Tag: second\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"5\r\nhello\r\nzz\r\n"
        )
        assert c.response().headers["x-tag"] == "first"
        refused = c.response()
        assert refused.status == 400
        assert refused.headers.get("connection", "").lower() == "close"
        assert c.closed_by_peer()


# --- found by the fuzzer once it pipelined requests with bodies freely (fixed) --------------------
# Two or more requests queued at once. ``self.queued`` names the *last* queued request (the one
# whose body is being read), and ``_start_queued`` handed an earlier one its body through
# ``on_body`` and ``on_message_complete``, which divert to ``self.queued`` while it is set: the
# earlier request's body and its end were given to the last one, and the earlier one, begun with
# no end, had reading resumed for it, so what the client sent next (the last request's body) was
# read as the body of the request being answered and written to its backend connection as it
# was: a request written in it was served past the policy. A queued request now takes its body
# directly (``_body``, ``_complete``), never through the callbacks that divert.

DENY_ADMIN = {
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


def test_each_of_two_queued_requests_gets_its_own_body(gateway: Gateway, backend: ScriptedBackend) -> None:
    backend.slow_seconds = 0.2  # the second and third requests are read while the first waits
    with Client(gateway.port, timeout=4) as c:
        c.send(
            b"GET /prod/slow HTTP/1.1\r\nHost: gw\r\nX-Tag: first\r\n\r\n"
            + b"POST /prod/ok HTTP/1.1\r\nHost: gw\r\nX-Tag: second\r\nContent-Length: 5\r\n\r\nhello"
            + b"POST /prod/ok HTTP/1.1\r\nHost: gw\r\nX-Tag: third\r\nContent-Length: 5\r\n\r\n"
        )
        assert c.response().headers["x-tag"] == "first"
        second = c.response()  # (504 after the route's 2 s: the backend waits for its 5 bytes)
        assert second.status == 200, second.body
        assert json.loads(second.body) == {"method": "POST", "target": "/ok", "tag": "second", "length": 5}
        c.send(b"world")
        third = c.response()
        assert json.loads(third.body) == {"method": "POST", "target": "/ok", "tag": "third", "length": 5}
    bodies = {p.headers.get("x-tag"): p.body for p in backend.parsed}
    assert bodies == {"first": b"", "second": b"hello", "third": b"world"}


def test_the_body_of_a_request_queued_behind_another_is_never_a_request_to_the_backend(
    backend: ScriptedBackend, tmp_path: Path
) -> None:
    gw = start_gateway(tmp_path, simple_config(backend.url, policy=DENY_ADMIN))
    smuggled = b"GET /admin HTTP/1.1\r\nHost: backend\r\nX-Tag: smuggled\r\n\r\n"
    backend.slow_seconds = 0.5  # the second request is being answered when the third's body comes
    try:
        assert exchange(gw.port, b"GET /prod/admin HTTP/1.1\r\nHost: gw\r\n\r\n").status == 403
        with Client(gw.port, timeout=4) as c:
            c.send(
                b"GET /prod/ok HTTP/1.1\r\nHost: gw\r\nX-Tag: first\r\n\r\n"
                + b"GET /prod/slow HTTP/1.1\r\nHost: gw\r\nX-Tag: second\r\n\r\n"
                + b"POST /prod/ok HTTP/1.1\r\nHost: gw\r\nX-Tag: third\r\n"
                + b"Content-Length: %d\r\n\r\n" % len(smuggled)
            )
            assert c.response().headers["x-tag"] == "first"
            time.sleep(0.1)  # the second request has begun
            c.send(smuggled)  # the third request's body
            with contextlib.suppress(TimeoutError, ConnectionError):
                c.response()
                c.response()
        time.sleep(0.3)
    finally:
        gw.proc.kill()
        gw.proc.wait()
    assert "/admin" not in backend.targets(), [(p.conn, p.method, p.target) for p in backend.parsed]
