"""Findings of the HTTP fuzzer (fuzz/fuzz_http.py, docs/fuzzing.md), each reduced to a minimal
reproduction on real sockets. A finding that is still open is ``xfail(strict=True)``: the day
it is fixed the test passes, strict xfail fails the suite, and the marker (and the fuzzer's
``avoid_known`` filter that keeps the bounded fuzz run clear of it) come off together.

Open (request path, src/iamgate/server.py; both also in the build of 3c3bc47):

1. A pipelined request (its head read while the request before it is answered) whose body is not
   all there when its turn comes hangs the gateway's process: ``self.queued`` still points at the
   queued request, so ``_start_queued`` replays ``queued.body`` through ``on_body``, which appends
   each chunk back to that same list: the loop never ends (100 % CPU, RSS +130 MB/s) and no client
   of the process is answered again.
2. If no byte of such a body had arrived, the body is never forwarded: ``_finish`` returns after
   ``_start_queued`` without resuming reading, and body bytes read later go to the stale queue
   entry: the request waits for the integration timeout (504) though its client sent it whole.
3. A pipelined request whose head began while the request before it was answered, but is only
   complete in a later read (after that answer), is queued (``on_message_begin`` decided so)
   with no exchange left to start it: a request read after it is answered first (the client
   reads each answer as the other's), and with none after it, it is never answered.
4. When a queued request is answered by the gateway itself (a denial, a 400, a 404), its
   ``_finish`` starts the next queued request from inside ``_start_queued``, which then goes on
   to call ``on_message_complete()`` for the request it started with: by then that completes the
   *next* request once more. A chunked one gets its last chunk (``0\r\n\r\n``) twice; the backend
   connection goes back to the pool with those bytes after the request, and the backend reads
   them as the start of the next client's request (here: that client's POST gets a 502).
"""

from __future__ import annotations

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


@pytest.mark.xfail(strict=True, reason="open finding 1: a queued request's partial body hangs the process")
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


@pytest.mark.xfail(strict=True, reason="open finding 2: a queued request's later body is never forwarded")
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


@pytest.mark.xfail(
    strict=True, reason="open finding 3: a head that spans the end of an exchange is answered late"
)
def test_pipelined_requests_are_answered_in_order_when_a_head_spans_reads(gateway: Gateway) -> None:
    with Client(gateway.port) as c:
        c.send(FIRST + b"GET /prod/ok HTTP/1.1\r\nHo")  # the second head begins in the first read
        assert c.response().headers["x-tag"] == "first"
        c.send(b"st: gw\r\nX-Tag: second\r\n\r\nGET /prod/ok HTTP/1.1\r\nHost: gw\r\nX-Tag: third\r\n\r\n")
        tags = [c.response().headers.get("x-tag") for _ in range(2)]
        assert tags == ["second", "third"]  # (["third", "second"]: each read as the other's answer)


@pytest.mark.xfail(
    strict=True, reason="open finding 3: a head that spans the end of an exchange is answered late"
)
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


@pytest.mark.xfail(
    strict=True, reason="open finding 4: a queued request after a gateway answer is completed twice"
)
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
