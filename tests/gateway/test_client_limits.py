"""Hostile clients: heads that never end, floods of connections, bytes after a request.

The attack review's findings 5-8 (issue 14). Each test plays the attacker on real sockets
against ``iamgate serve``, and checks both that the attack is refused early and that a normal
client is served meanwhile:

5. a head is bounded while it is read (request target, header count, header bytes, and a single
   header still being received): 414/431 at once, and nothing more is read;
6. a header name repeated thousands of times is joined once, in order;
7. a malformed request after an exchange still gets its 400; a request followed by bytes after
   ``Connection: close`` gets its own answer; framing the gateway does not read is refused before
   any backend sees the request;
8. connections that send nothing, send slowly, or idle between requests are closed after the
   ``gateway.client`` timeouts; past ``gateway.client.max_connections`` the connection that waited
   longest is closed to make room; the open-file limit caps the number too.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.conftest import (
    Backend,
    Gateway,
    Recorded,
    metric_value,
    reply,
    simple_config,
    start_gateway,
    wait_for,
)
from tests.gateway.hostile import Client, exchange

GET_OK = b"GET /prod/ok HTTP/1.1\r\nHost: gw\r\n\r\n"


def _echo_headers(req: Recorded, sock: socket.socket) -> None:
    lines = "\n".join(f"{k}: {v}" for k, v in req.headers)
    reply(sock, 200, lines.encode(), [("Content-Type", "text/plain")])


@pytest.fixture
def gw_factory(tmp_path: Path) -> Iterator[Callable[..., tuple[Gateway, Backend]]]:
    started: list[tuple[Gateway, Backend]] = []

    def make(gateway: dict[str, Any] | None = None, **kw: Any) -> tuple[Gateway, Backend]:
        backend = Backend(handler=_echo_headers).start()
        config = simple_config(backend.url, gateway=gateway, **kw)
        home = tmp_path / f"gw{len(started)}"  # each gateway its own config and log files
        home.mkdir()
        gw = start_gateway(home, config)
        started.append((gw, backend))
        return gw, backend

    yield make
    for gw, backend in started:
        gw.stop()
        backend.stop()


def _served(gw: Gateway) -> bool:
    return exchange(gw.port, GET_OK, timeout=5).status == 200


def _sends_until_answered(client: Client, first: bytes, piece: bytes, most: int) -> tuple[int, bytes]:
    """Send ``first`` then ``piece`` after ``piece`` until the gateway answers or closes, at most
    ``most`` bytes: how many bytes it took, and what the gateway sent back."""
    sent = 0
    client.sock.settimeout(0.001)
    data = first
    while sent < most:
        try:
            client.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            break
        except TimeoutError:
            pass
        sent += len(data)
        data = piece
        try:
            got = client.sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        client.reader.buf += got
        break
    client.sock.settimeout(10)
    with contextlib.suppress(OSError):
        client.reader.buf += client.sock.recv(65536)
    return sent, client.reader.buf


# --- 5. heads are bounded while they are read -----------------------------------------------------


def test_an_endless_header_value_is_refused_431_after_its_limit_while_others_are_served(
    gw_factory: Callable[..., tuple[Gateway, Backend]],
) -> None:
    gw, backend = gw_factory()
    stop = threading.Event()
    served: list[bool] = []

    def others() -> None:
        while not stop.is_set():
            served.append(_served(gw))

    t = threading.Thread(target=others)
    t.start()
    try:
        with Client(gw.port) as attacker:
            sent, answer = _sends_until_answered(
                attacker, b"GET /prod/ok HTTP/1.1\r\nHost: gw\r\nX-Big: ", b"a" * 16384, 64 << 20
            )
    finally:
        stop.set()
        t.join(10)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"Request Header Fields Too Large" in answer
    assert sent < 2 << 20, f"the gateway read {sent} bytes of one head before refusing it"
    assert served, "no other client was served during the attack"
    assert all(served), "other clients were refused during the attack"
    assert backend.requests == [] or all(r.header("x-big") is None for r in backend.requests)


def test_a_long_request_target_is_refused_414_before_the_head_ends(
    gw_factory: Callable[..., tuple[Gateway, Backend]],
) -> None:
    gw, backend = gw_factory({"max_url_bytes": 1024})
    with Client(gw.port) as attacker:
        sent, answer = _sends_until_answered(attacker, b"GET /prod/", b"a" * 1024, 8 << 20)
    assert answer.startswith(b"HTTP/1.1 414 "), answer[:200]
    assert b"RequestUriTooLongException" in answer
    assert sent < 1 << 20
    # exactly at the limit is fine (a target that long stays under the 1,600-byte method ARN)
    target = b"/prod/" + b"a" * (1024 - 6)
    assert exchange(gw.port, b"GET " + target + b" HTTP/1.1\r\nHost: gw\r\n\r\n").status == 200
    assert backend.requests[-1].target.endswith("a" * 100)


@pytest.mark.parametrize(
    ("limits", "header"),
    [
        ({"max_header_count": 20}, lambda i: f"X-H{i}: v\r\n".encode()),
        ({"max_header_bytes": 4096}, lambda i: f"X-H{i}: {'v' * 200}\r\n".encode()),
    ],
    ids=["count", "bytes"],
)
def test_too_many_or_too_large_headers_are_refused_431_before_the_head_ends(
    gw_factory: Callable[..., tuple[Gateway, Backend]],
    limits: dict[str, int],
    header: Callable[[int], bytes],
) -> None:
    gw, backend = gw_factory(limits)
    with Client(gw.port) as attacker:
        attacker.send(b"GET /prod/ok HTTP/1.1\r\nHost: gw\r\n")
        for i in range(200):  # never the blank line that ends the head
            try:
                attacker.send(header(i))
            except (BrokenPipeError, ConnectionResetError):
                break
        response = attacker.response()
        assert response.status == 431
        assert response.headers["x-amzn-errortype"] == "RequestHeaderFieldsTooLargeException"
        assert response.headers["connection"] == "close"
        assert attacker.closed_by_peer()
    assert backend.requests == []
    assert _served(gw)


# --- 6. repeated header names ---------------------------------------------------------------------


def test_a_header_repeated_thousands_of_times_is_joined_once_in_order(
    gw_factory: Callable[..., tuple[Gateway, Backend]],
) -> None:
    n = 5000
    gw, backend = gw_factory({"max_header_count": 10000, "max_header_bytes": 1 << 20})
    hops = b"".join(b"X-Forwarded-For: 10.0.%d.%d\r\n" % divmod(i, 256) for i in range(n))
    response = exchange(gw.port, b"GET /prod/ok HTTP/1.1\r\nHost: gw\r\n" + hops + b"\r\n", timeout=30)
    assert response.status == 200
    forwarded = backend.requests[-1].header("x-forwarded-for")
    assert forwarded is not None
    entries = [e.strip() for e in forwarded.split(",")]
    assert len(entries) == n + 1
    assert entries[:3] == ["10.0.0.0", "10.0.0.1", "10.0.0.2"]
    assert entries[-2:] == ["10.0.19.135", "127.0.0.1"]


# --- 7. parse errors after an exchange, data after close, framing ---------------------------------


def test_a_malformed_request_on_a_kept_alive_connection_gets_its_400(
    gw_factory: Callable[..., tuple[Gateway, Backend]],
) -> None:
    gw, _ = gw_factory()
    with Client(gw.port) as c:
        c.send(GET_OK)
        assert c.response().status == 200
        c.send(b"GET /prod/ok HTTP/1.1\r\nHost: gw\r\nBad Header\r\n\r\n")
        response = c.response()
        assert response.status == 400
        assert response.headers["x-amzn-errortype"] == "BadRequestException"
        assert c.closed_by_peer()


@pytest.mark.parametrize(
    "first",
    [
        b"GET /prod/ok HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        b"GET /prod/ok HTTP/1.0\r\nHost: gw\r\n\r\n",
    ],
    ids=["connection-close", "http-1.0"],
)
@pytest.mark.parametrize(
    "after", [GET_OK, b"\x00\x01junk that is no request\r\n\r\n"], ids=["request", "junk"]
)
def test_bytes_after_a_closing_request_do_not_cost_it_its_answer(
    gw_factory: Callable[..., tuple[Gateway, Backend]], first: bytes, after: bytes
) -> None:
    gw, backend = gw_factory()
    with Client(gw.port) as c:
        c.send(first + after)
        response = c.response()
        assert response.status == 200
        assert c.rest() == b""  # and nothing else: the bytes after it are not read as a request
    assert len(backend.requests) == 1


def test_junk_after_a_kept_alive_request_is_answered_after_it(
    gw_factory: Callable[..., tuple[Gateway, Backend]],
) -> None:
    gw, backend = gw_factory()
    with Client(gw.port) as c:
        c.send(GET_OK + b"junk junk\r\n\r\n")
        assert c.response().status == 200
        second = c.response()
        assert second.status == 400
        assert c.closed_by_peer()
    assert len(backend.requests) == 1


@pytest.mark.parametrize(
    "framing",
    [
        b"Transfer-Encoding: chunked;q=1\r\n",
        b"Transfer-Encoding: gzip, chunked\r\n",
        b"Transfer-Encoding: gzip\r\n",
        b"Transfer-Encoding: identity\r\n",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        b"Content-Length: 5\r\nContent-Length: 6\r\n",
        b"Content-Length: 5, 5\r\n",
        b"Content-Length: +5\r\n",
    ],
)
def test_framing_the_gateway_does_not_read_is_refused_before_any_backend(
    gw_factory: Callable[..., tuple[Gateway, Backend]], framing: bytes
) -> None:
    gw, backend = gw_factory()
    with Client(gw.port) as c:
        c.send(b"POST /prod/ok HTTP/1.1\r\nHost: gw\r\n" + framing + b"\r\n5\r\nhello\r\n0\r\n\r\n")
        response = c.response()
        assert response.status == 400, response.body
        assert c.closed_by_peer()
    assert backend.connections == 0
    assert backend.requests == []


def test_chunked_in_http_1_0_is_refused(gw_factory: Callable[..., tuple[Gateway, Backend]]) -> None:
    gw, backend = gw_factory()
    raw = b"POST /prod/ok HTTP/1.0\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    assert exchange(gw.port, raw).status == 400
    assert backend.connections == 0


def test_a_malformed_chunk_mid_body_is_answered_400_and_the_backend_connection_dropped(
    gw_factory: Callable[..., tuple[Gateway, Backend]],
) -> None:
    gw, backend = gw_factory()
    with Client(gw.port) as c:
        c.send(b"POST /prod/ok HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        wait_for(lambda: backend.connections == 1, "the backend connection")
        c.send(b"zz\r\nnot a chunk\r\n")
        response = c.response()
        assert response.status == 400
        assert c.closed_by_peer()
    assert backend.requests == []  # it never got a complete request
    assert _served(gw)


# --- 8. idle and slow connections -----------------------------------------------------------------

FAST = {"client": {"header_timeout": 1, "keepalive_timeout": 1, "body_timeout": 1}}


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    gw_factory: Callable[..., tuple[Gateway, Backend]],
) -> None:
    gw, _ = gw_factory(FAST)
    with Client(gw.port, timeout=10) as idle:
        started = time.monotonic()
        assert idle.closed_by_peer()
        assert time.monotonic() - started < 8
    assert metric_value(gw, "iamgate_client_connections_closed_total", reason="header-timeout") >= 1


def test_a_slowloris_head_is_closed_after_the_header_timeout_though_bytes_keep_coming(
    gw_factory: Callable[..., tuple[Gateway, Backend]],
) -> None:
    gw, backend = gw_factory(FAST)
    with Client(gw.port, timeout=10) as slow:
        slow.send(b"GET /prod/ok HTTP/1.1\r\nHost: gw\r\n")
        closed = False
        for i in range(60):  # a header line every 0.2 s, for up to 12 s
            try:
                slow.send(b"X-%d: v\r\n" % i)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.2)
        assert closed or slow.closed_by_peer()
        assert i < 40, "the slow head was read for longer than the header timeout allows"
    assert backend.requests == []


def test_an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout(
    gw_factory: Callable[..., tuple[Gateway, Backend]],
) -> None:
    gw, _ = gw_factory(FAST)
    with Client(gw.port, timeout=10) as c:
        c.send(GET_OK)
        assert c.response().status == 200
        assert c.closed_by_peer()
    assert metric_value(gw, "iamgate_client_connections_closed_total", reason="keepalive-timeout") >= 1


def test_a_body_the_gateway_waits_for_is_timed_408(
    gw_factory: Callable[..., tuple[Gateway, Backend]],
) -> None:
    routes = [
        {
            "path": "/{proxy+}",
            "method": "ANY",
            "authorization": "AWS_IAM",
            "integration": {"type": "HTTP_PROXY", "uri": "http://127.0.0.1:9/{proxy}"},
        }
    ]
    gw, _ = gw_factory(FAST, routes=routes)
    with Client(gw.port, timeout=10) as c:
        # a well-formed signature whose payload hash needs the body: the gateway buffers it, and
        # the body stalls (a header that is no SigV4 header is refused without reading the body)
        c.send(
            b"POST /prod/x HTTP/1.1\r\nHost: gw\r\nX-Amz-Date: 20261204T120000Z\r\n"
            b"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261204/us-east-1/execute-api/"
            b"aws4_request, SignedHeaders=host;x-amz-date, Signature=" + b"0" * 64 + b"\r\n"
            b"Content-Length: 100\r\n\r\n0123456789"
        )
        response = c.response()
        assert response.status == 408
        assert response.headers["x-amzn-errortype"] == "RequestTimeoutException"
        assert c.closed_by_peer()
    with Client(gw.port, timeout=10) as c:
        c.send(
            b"POST /prod/x HTTP/1.1\r\nHost: gw\r\nAuthorization: AWS4-HMAC-SHA256 nonsense\r\n"
            b"Content-Length: 100\r\n\r\n0123456789"
        )
        response = c.response()  # at once, not after the body timeout
        assert response.status == 403
        assert response.headers["x-amzn-errortype"] == "IncompleteSignatureException"


def test_past_the_connection_limit_the_longest_waiting_connection_makes_room(
    gw_factory: Callable[..., tuple[Gateway, Backend]],
) -> None:
    gw, _ = gw_factory({"client": {"max_connections": 20}})
    idle = [Client(gw.port) for _ in range(60)]  # three times the limit, never a byte
    try:
        for _ in range(5):
            assert _served(gw)
        assert metric_value(gw, "iamgate_client_connections_closed_total", reason="evicted") >= 40
        assert sum(1 for c in idle if c.closed_by_peer()) >= 40
    finally:
        for c in idle:
            c.close()
    assert "client connections at the limit (20 per process" in gw.stderr()
    assert gw.stderr().count("client connections at the limit") <= 2  # logged once per interval


def test_when_every_connection_is_busy_new_ones_are_refused_and_the_gateway_recovers(
    tmp_path: Path,
) -> None:
    release = threading.Event()

    def stall(req: Recorded, sock: socket.socket) -> None:
        release.wait(20)
        reply(sock, 200, b"late")

    backend = Backend(handler=stall).start()
    gw = start_gateway(tmp_path, simple_config(backend.url, gateway={"client": {"max_connections": 16}}))
    busy: list[Client] = []
    try:
        for _ in range(16):
            c = Client(gw.port)
            c.send(GET_OK)
            busy.append(c)
        wait_for(lambda: len(backend.requests) == 16, "16 requests at the backend")
        with Client(gw.port, timeout=5) as extra:
            assert extra.closed_by_peer()  # refused: every connection is being answered
        assert metric_value(gw, "iamgate_client_connections_closed_total", reason="limit") >= 1
        release.set()
        for c in busy:
            assert c.response().status == 200
        wait_for(lambda: exchange(gw.port, GET_OK, timeout=5).status == 200, "service after the flood")
    finally:
        release.set()
        for c in busy:
            c.close()
        gw.stop()
        backend.stop()


def _low_file_limit(n: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))

    return apply


def test_more_idle_connections_than_open_files_do_not_stop_service(tmp_path: Path) -> None:
    backend = Backend().start()
    gw = start_gateway(tmp_path, simple_config(backend.url), preexec=_low_file_limit(256))
    idle: list[Client] = []
    try:
        found = wait_for(lambda: re.search(r"up to (\d+) client connections", gw.stderr()), "the limit")
        limit = int(found[1])
        assert 64 < limit < 128  # what 256 files leave room for, two each
        for _ in range(600):  # more than the gateway can hold open
            with contextlib.suppress(OSError):
                idle.append(Client(gw.port, timeout=5))
        for _ in range(5):
            assert _served(gw)
        assert f"client connections at the limit ({limit} per process" in gw.stderr()
    finally:
        for c in idle:
            c.close()
        gw.stop()
        backend.stop()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_files_on_accept_neither_spins_nor_stops_the_gateway_for_good(tmp_path: Path) -> None:
    """The open-file limit runs out before the configured connection limit does (accept fails
    with EMFILE): the gateway must not busy-loop on the listening socket, and must serve again as
    soon as files are free."""
    backend = Backend().start()
    config = simple_config(backend.url, gateway={"client": {"max_connections": 1000}})
    gw = start_gateway(tmp_path, config, preexec=_low_file_limit(40))
    flood: list[socket.socket] = []
    try:
        for _ in range(200):
            with contextlib.suppress(OSError):
                flood.append(socket.create_connection(("127.0.0.1", gw.port), timeout=2))
        before, started = _cpu_seconds(gw.proc.pid), time.monotonic()
        time.sleep(2)  # a window of time in which to measure the CPU it uses
        used = _cpu_seconds(gw.proc.pid) - before
        assert used < 0.5 * (time.monotonic() - started), f"{used:.2f} s of CPU in 2 s: spinning on accept"
        assert gw.proc.poll() is None
    finally:
        for s in flood:
            s.close()
    try:
        wait_for(lambda: _served(gw), "service once files are free again")
    finally:
        gw.stop()
        backend.stop()
