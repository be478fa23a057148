"""HTTP_PROXY and MOCK integrations against real backends on loopback.

Acceptance points (issue 3, "Integrations" and "Tests"): request and response bodies of any size
streamed in both directions (Content-Length and chunked, uploads and a 20 MB download, and
proof that bytes flow before either side has finished); keep-alive pooling; hop-by-hop header
rules both ways (Connection-listed headers too); ``Host`` set to the integration's host;
``X-Forwarded-For`` appended; backend ``Server``/``Date`` remapped to ``x-amzn-Remapped-*``;
HEAD, 204 and 304 without bodies; ``Expect: 100-continue``; timeout -> 504 ``Endpoint request
timed out`` (per-route ``integration.timeout``); backend down, resetting, closing, or answering
garbage -> 502 ``Internal server error``; a backend that dies mid-body cuts the client
connection; a stale pooled connection is retried once for idempotent requests only; MOCK
integrations with status, headers and body.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.gateway.conftest import (
    Backend,
    Gateway,
    Recorded,
    free_port,
    metric_value,
    read_request,
    reply,
    start_gateway,
)

MB = 1024 * 1024
PATTERN = bytes(range(256)) * 4096  # 1 MiB of known bytes


def pattern_bytes(n: int) -> bytes:
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


# --- the dispatching backend: the first path segment chooses the behaviour ---------------------

STALL = threading.Event()  # set at teardown, releases stalled handlers
_served_on: dict[tuple[str, int], int] = {}


def h_echo(req: Recorded, sock: socket.socket) -> None:
    body = json.dumps(
        {
            "method": req.method,
            "target": req.target,
            "length": len(req.body),
            "sha256": hashlib.sha256(req.body).hexdigest(),
            "headers": req.headers,
        }
    ).encode()
    reply(sock, 200, body, [("Content-Type", "application/json")])


def h_big(req: Recorded, sock: socket.socket) -> None:
    size = int(req.target.split("/")[2])
    sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nContent-Type: text/plain\r\n\r\n".encode())
    sent = 0
    while sent < size:
        piece = PATTERN[: min(len(PATTERN), size - sent)]
        sock.sendall(piece)
        sent += len(piece)


def h_chunked(req: Recorded, sock: socket.socket) -> None:
    size = int(req.target.split("/")[2])
    sock.sendall(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    data = pattern_bytes(size)
    step, i = 1, 0
    while i < size:  # chunks of growing, odd sizes
        piece = data[i : i + step]
        sock.sendall(b"%x\r\n%b\r\n" % (len(piece), piece))
        i += len(piece)
        step = min(step * 3 + 1, 300_000)
    sock.sendall(b"0\r\n\r\n")


def h_hop(req: Recorded, sock: socket.socket) -> None:
    reply(
        sock,
        200,
        b"hop",
        [
            ("Connection", "X-Backend-Hop"),
            ("X-Backend-Hop", "1"),
            ("Keep-Alive", "timeout=5, max=100"),
            ("Proxy-Authenticate", 'Basic realm="backend"'),
            ("Upgrade", "h2c"),
            ("X-Backend-End", "yes"),
            ("Server", "test-backend/1.0"),
            ("Date", "Mon, 01 Jan 2001 00:00:00 GMT"),
            ("Set-Cookie", "a=1"),
        ],
    )


def h_head(req: Recorded, sock: socket.socket) -> None:
    body = b"x" * 1234
    head = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/plain\r\n\r\n"
    sock.sendall(head.encode() + (b"" if req.method == "HEAD" else body))


def h_status(req: Recorded, sock: socket.socket) -> None:
    code = int(req.target.split("/")[2].split("?")[0])
    if code == 204:
        sock.sendall(b"HTTP/1.1 204 No Content\r\nX-Kind: none\r\n\r\n")
    elif code == 304:
        sock.sendall(b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n')
    else:
        reply(sock, code, b'{"backend":"error"}', [("Content-Type", "application/json")], reason="Whatever")


def h_reset(req: Recorded, sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def h_close(req: Recorded, sock: socket.socket) -> None:
    sock.close()


def h_midbody(req: Recorded, sock: socket.socket) -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"a" * 1000)
    sock.close()


def h_midchunk(req: Recorded, sock: socket.socket) -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + b"a" * 1000 + b"\r\n")
    sock.close()


def h_garbage(req: Recorded, sock: socket.socket) -> None:
    sock.sendall(b"HELLO WORLD\r\n\r\n")


def h_badlength(req: Recorded, sock: socket.socket) -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nxyz")


def h_closedelim(req: Recorded, sock: socket.socket) -> None:
    sock.sendall(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n" + b"until-eof" * 1000
    )
    sock.close()


def h_flaky(req: Recorded, sock: socket.socket) -> None:
    """Answers the first request on a connection; closes the connection on the second (the race of
    a backend dropping an idle keep-alive connection just as the gateway reuses it)."""
    key = sock.getpeername()
    _served_on[key] = _served_on.get(key, 0) + 1
    if _served_on[key] > 1:
        sock.close()
        return
    reply(sock, 200, f"{req.method} ok".encode())


def h_slow(req: Recorded, sock: socket.socket) -> None:
    what = req.target.split("/")[2]
    if what == "never":
        STALL.wait(20)
    elif what == "stall-mid-body":
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"a" * 10)
        STALL.wait(20)
    else:
        reply(sock, 200, b"fast enough")


HANDLERS: dict[str, Callable[[Recorded, socket.socket], None]] = {
    "echo": h_echo,
    "big": h_big,
    "chunked": h_chunked,
    "hop": h_hop,
    "head": h_head,
    "status": h_status,
    "reset": h_reset,
    "close": h_close,
    "midbody": h_midbody,
    "midchunk": h_midchunk,
    "garbage": h_garbage,
    "badlength": h_badlength,
    "closedelim": h_closedelim,
    "flaky": h_flaky,
    "slow": h_slow,
}


def dispatch(req: Recorded, sock: socket.socket) -> None:
    HANDLERS[req.target.split("/")[1].split("?")[0]](req, sock)


class RawBackend:
    """A backend whose test-chosen ``serve(conn)`` owns each accepted connection entirely."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.serve: Callable[[socket.socket], None] = lambda conn: None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        conn.settimeout(20)
        with contextlib.suppress(OSError), conn:
            self.serve(conn)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def backend_m() -> Iterator[Backend]:
    b = Backend(dispatch).start()
    yield b
    STALL.set()
    b.stop()


@pytest.fixture(scope="module")
def raw() -> Iterator[RawBackend]:
    r = RawBackend()
    yield r
    r.close()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, backend_m: Backend, raw: RawBackend) -> Iterator[Gateway]:
    closed = free_port()  # nothing listens there
    b = backend_m.url
    routes = [
        {
            "path": "/{proxy+}",
            "method": "ANY",
            "integration": {"type": "HTTP_PROXY", "uri": f"{b}/{{proxy}}"},
        },
        {
            "path": "/slow/{proxy+}",
            "method": "ANY",
            "integration": {"type": "HTTP_PROXY", "uri": f"{b}/slow/{{proxy}}", "timeout": 0.5},
        },
        {
            "path": "/raw/{proxy+}",
            "method": "ANY",
            "integration": {
                "type": "HTTP_PROXY",
                "uri": f"http://127.0.0.1:{raw.port}/{{proxy}}",
                "timeout": 10,
            },
        },
        {
            "path": "/down",
            "method": "ANY",
            "integration": {"type": "HTTP_PROXY", "uri": f"http://127.0.0.1:{closed}/"},
        },
        {
            "path": "/mock/created",
            "method": "ANY",
            "integration": {
                "type": "MOCK",
                "status": 201,
                "headers": {"Content-Type": "application/json", "X-Mock": "yes", "Cache-Control": "no-store"},
                "body": '{"created": true}',
            },
        },
        {"path": "/mock/empty", "method": "GET", "integration": {"type": "MOCK", "status": 204}},
    ]
    config = {
        "gateway": {"region": "us-east-1", "account_id": "111122223333"},
        "apis": [{"id": "a1b2c3d4e5", "stages": {"prod": {}}, "routes": routes}],
    }
    g = start_gateway(tmp_path_factory.mktemp("proxy"), config)
    yield g
    g.stop()


def connect(gw: Gateway, timeout: float = 30) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", gw.port, timeout=timeout)


def echoed(gw: Gateway, method: str, path: str, **kw: object) -> dict:
    status, _, body = gw.request(method, path, **kw)  # type: ignore[arg-type]
    assert status == 200, body
    return json.loads(body)


def header_names(echo: dict) -> list[str]:
    return [k.lower() for k, _ in echo["headers"]]


def header(echo: dict, name: str) -> list[str]:
    return [v for k, v in echo["headers"] if k.lower() == name.lower()]


# --- bodies, both directions --------------------------------------------------------------------


def test_large_upload_with_content_length(gw: Gateway) -> None:
    data = pattern_bytes(8 * MB + 7)
    got = echoed(
        gw, "POST", "/prod/echo/upload", body=data, headers={"Content-Type": "application/octet-stream"}
    )
    assert got["length"] == len(data)
    assert got["sha256"] == hashlib.sha256(data).hexdigest()
    assert header(got, "Content-Length") == [str(len(data))]


def test_chunked_upload(gw: Gateway) -> None:
    data = pattern_bytes(6 * MB + 3)

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(data), 100_003):
            yield data[i : i + 100_003]

    conn = connect(gw)
    try:
        conn.request("PUT", "/prod/echo/chunked-upload", body=pieces(), encode_chunked=True)
        resp = conn.getresponse()
        got = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 200
    assert got["length"] == len(data)
    assert got["sha256"] == hashlib.sha256(data).hexdigest()
    assert header(got, "Transfer-Encoding") == ["chunked"]


def test_chunked_response_from_backend(gw: Gateway) -> None:
    size = 5 * MB + 11
    conn = connect(gw)
    try:
        conn.request("GET", f"/prod/chunked/{size}")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200
        assert resp.getheader("Transfer-Encoding") == "chunked"
        assert body == pattern_bytes(size)
        # the connection is still usable: the chunked framing ended where it should
        conn.request("GET", "/prod/echo/after")
        assert json.loads(conn.getresponse().read())["target"] == "/echo/after"
    finally:
        conn.close()


def test_20mb_download(gw: Gateway) -> None:
    size = 20 * MB
    conn = connect(gw)
    try:
        conn.request("GET", f"/prod/big/{size}")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Length") == str(size)
        digest, total = hashlib.sha256(), 0
        while chunk := resp.read(256 * 1024):
            digest.update(chunk)
            total += len(chunk)
    finally:
        conn.close()
    assert total == size
    assert digest.hexdigest() == hashlib.sha256(pattern_bytes(size)).hexdigest()


def test_request_body_streams_to_the_backend_before_it_is_complete(gw: Gateway, raw: RawBackend) -> None:
    """The backend sees the first chunk while the client still holds back the rest."""
    first_seen = threading.Event()
    received: list[bytes] = []

    def serve(conn: socket.socket) -> None:
        head, buf = read_request(conn)
        received.append(head)
        while b"first-part" not in buf:
            buf += conn.recv(65536)
        first_seen.set()
        while not buf.endswith(b"0\r\n\r\n"):
            buf += conn.recv(65536)
        received.append(buf)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    raw.serve = serve
    with socket.create_connection(("127.0.0.1", gw.port), timeout=15) as client:
        client.sendall(
            b"POST /prod/raw/upload HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\na\r\nfirst-part\r\n"
        )
        assert first_seen.wait(10), "the gateway held the request body back"
        client.sendall(b"b\r\nsecond-part\r\n0\r\n\r\n")
        response = b""
        while chunk := client.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(b"ok")
    assert b"second-part" in received[1]


def test_response_body_streams_to_the_client_before_it_is_complete(gw: Gateway, raw: RawBackend) -> None:
    """The client sees the first chunk while the backend still holds back the rest."""
    client_saw_first = threading.Event()
    outcome: list[bool] = []

    def serve(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nfirst-chunk\r\n")
        outcome.append(client_saw_first.wait(10))
        conn.sendall(b"a\r\nlast-chunk\r\n0\r\n\r\n")

    raw.serve = serve
    conn = connect(gw, timeout=15)
    try:
        conn.request("GET", "/prod/raw/download")
        resp = conn.getresponse()
        assert resp.status == 200
        first = resp.read1(65536)  # type: ignore[attr-defined]
        assert first.startswith(b"first-chunk")
        client_saw_first.set()
        rest = first + resp.read()
    finally:
        conn.close()
    assert rest == b"first-chunklast-chunk"
    assert outcome == [True]


# --- connections ----------------------------------------------------------------------------------


def test_keep_alive_pool_reuses_backend_connections(gw: Gateway, backend_m: Backend) -> None:
    before = backend_m.connections
    for i in range(50):  # a new client connection each time
        assert echoed(gw, "GET", f"/prod/echo/{i}")["target"] == f"/echo/{i}"
    conn = connect(gw)
    try:
        for i in range(50):  # and one client connection for many requests
            conn.request("GET", f"/prod/echo/k{i}")
            resp = conn.getresponse()
            assert json.loads(resp.read())["target"] == f"/echo/k{i}"
    finally:
        conn.close()
    assert backend_m.connections - before <= 5  # 100 requests: the pool reuses, it never opens one each


def test_stale_pooled_connection_is_retried_for_idempotent_requests_only(gw: Gateway) -> None:
    retries = metric_value(gw, "iamgate_upstream_retries_total")
    for _ in range(5):
        status, _, body = gw.request("GET", "/prod/flaky/x")
        assert (status, body) == (200, b"GET ok")
    status, _, body = gw.request("PUT", "/prod/flaky/x", body=b"same every time")
    assert (status, body) == (200, b"PUT ok")
    status, _, body = gw.request("POST", "/prod/flaky/x", body=b"{}", headers={"Idempotency-Key": "k1"})
    assert (status, body) == (200, b"POST ok")
    assert metric_value(gw, "iamgate_upstream_retries_total") - retries >= 6
    # a POST may have had effects: it is not replayed on a connection the backend dropped
    status, _, body = gw.request("POST", "/prod/flaky/x", body=b"{}")
    assert status == 502
    assert json.loads(body) == {"message": "Internal server error"}


# --- headers ----------------------------------------------------------------------------------------


def test_hop_by_hop_request_headers_are_not_forwarded(gw: Gateway) -> None:
    got = echoed(
        gw,
        "GET",
        "/prod/echo/hop",
        headers={
            "Connection": "X-Hop-Custom",
            "X-Hop-Custom": "secret-for-the-next-hop-only",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Trailer": "X-Checksum",
            "Proxy-Authorization": "Basic dXNlcjpwYXNz",
            "Proxy-Connection": "keep-alive",
            "Upgrade": "h2c",
            "X-End-To-End": "kept",
            "Authorization": "Bearer abc",
            "Cookie": "session=1",
        },
    )
    names = header_names(got)
    for gone in ("connection", "x-hop-custom", "keep-alive", "te", "trailer", "proxy-authorization"):
        assert gone not in names, gone
    assert "proxy-connection" not in names
    assert "upgrade" not in names
    assert header(got, "X-End-To-End") == ["kept"]
    assert header(got, "Authorization") == ["Bearer abc"]
    assert header(got, "Cookie") == ["session=1"]


def test_hop_by_hop_response_headers_are_not_forwarded_and_server_date_are_remapped(gw: Gateway) -> None:
    conn = connect(gw)
    try:
        conn.request("GET", "/prod/hop")
        resp = conn.getresponse()
        body = resp.read()
        headers = [(k.lower(), v) for k, v in resp.getheaders()]
    finally:
        conn.close()
    names = [k for k, _ in headers]
    values = dict(headers)
    assert (resp.status, body) == (200, b"hop")
    assert values["x-backend-end"] == "yes"
    assert values["set-cookie"] == "a=1"
    for gone in ("x-backend-hop", "keep-alive", "proxy-authenticate", "upgrade", "server"):
        assert gone not in names, gone
    assert "x-backend-hop" not in values.get("connection", "").lower()
    assert values["x-amzn-remapped-server"] == "test-backend/1.0"
    assert values["x-amzn-remapped-date"] == "Mon, 01 Jan 2001 00:00:00 GMT"
    assert names.count("date") == 1
    assert values["date"] != "Mon, 01 Jan 2001 00:00:00 GMT"
    assert "x-amzn-requestid" in values
    assert "x-amzn-errortype" not in values


def test_host_is_the_integration_host_and_x_forwarded_for_is_appended(
    gw: Gateway, backend_m: Backend
) -> None:
    got = echoed(
        gw, "GET", "/prod/echo/h", headers={"Host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"}
    )
    assert header(got, "Host") == [f"127.0.0.1:{backend_m.port}"]
    assert header(got, "X-Forwarded-For") == ["127.0.0.1"]
    assert header(got, "X-Forwarded-Proto") == ["http"]
    got = echoed(
        gw,
        "GET",
        "/prod/echo/h",
        headers={"X-Forwarded-For": "198.51.100.1, 192.0.2.2", "X-Forwarded-Proto": "https"},
    )
    assert header(got, "X-Forwarded-For") == ["198.51.100.1, 192.0.2.2, 127.0.0.1"]
    assert header(got, "X-Forwarded-Proto") == ["http"]  # the client cannot claim TLS


def test_expect_100_continue(gw: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(
            b"POST /prod/echo/expect HTTP/1.1\r\nHost: gw\r\nContent-Length: 11\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += s.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n"), interim
        rest = interim.split(b"\r\n\r\n", 1)[1]
        s.sendall(b"hello world")
        while chunk := s.recv(65536):
            rest += chunk
    head, _, body = rest.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), rest[:200]
    got = json.loads(body)
    assert got["length"] == 11
    assert got["sha256"] == hashlib.sha256(b"hello world").hexdigest()
    assert "expect" not in header_names(got)


# --- bodiless responses -------------------------------------------------------------------------


def test_head_response_has_no_body_and_framing_survives(gw: Gateway) -> None:
    conn = connect(gw)
    try:
        conn.request("HEAD", "/prod/head/x")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Length") == "1234"
        assert resp.read() == b""
        conn.request("GET", "/prod/head/x")  # same client connection, same pooled backend connection
        resp = conn.getresponse()
        assert resp.read() == b"x" * 1234
        conn.request("GET", "/prod/echo/after-head")
        assert json.loads(conn.getresponse().read())["target"] == "/echo/after-head"
    finally:
        conn.close()


def _read_head(s: socket.socket, buf: bytes = b"") -> tuple[bytes, bytes]:
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


@pytest.mark.parametrize("code", [204, 304])
def test_204_and_304_have_no_body(gw: Gateway, code: int) -> None:
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(f"GET /prod/status/{code} HTTP/1.1\r\nHost: gw\r\n\r\n".encode())
        head, rest = _read_head(s)
        s.sendall(b"GET /prod/echo/next HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        while chunk := s.recv(65536):
            rest += chunk
    assert head.startswith(f"HTTP/1.1 {code} ".encode()), head
    assert b"transfer-encoding" not in head.lower()
    assert b"\r\ncontent-length:" not in head.lower()
    # the very next bytes are the second response: no body was invented for the first
    assert rest.startswith(b"HTTP/1.1 200 "), rest[:300]
    assert b'"/echo/next"' in rest


def test_pipelined_requests_are_answered_in_order(gw: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        s.sendall(
            b"GET /prod/echo/first HTTP/1.1\r\nHost: gw\r\n\r\n"
            b"GET /prod/echo/second HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
        )
        data = b""
        with contextlib.suppress(TimeoutError):
            while chunk := s.recv(65536):
                data += chunk
    assert data.count(b"HTTP/1.1 200 ") == 2, data
    assert data.index(b'"/echo/first"') < data.index(b'"/echo/second"')


def test_backend_error_statuses_pass_through(gw: Gateway) -> None:
    status, headers, body = gw.request("GET", "/prod/status/418")
    assert (status, body) == (418, b'{"backend":"error"}')
    assert "x-amzn-errortype" not in headers
    status, _, body = gw.request("GET", "/prod/status/503")
    assert (status, body) == (503, b'{"backend":"error"}')


def test_close_delimited_backend_response_is_relayed_whole(gw: Gateway) -> None:
    status, _, body = gw.request("GET", "/prod/closedelim")
    assert (status, body) == (200, b"until-eof" * 1000)


# --- failures --------------------------------------------------------------------------------------


def test_backend_that_never_answers_times_out_with_504(gw: Gateway) -> None:
    status, headers, body = gw.request("GET", "/prod/slow/never", timeout=10)
    assert status == 504
    assert body == b'{"message":"Endpoint request timed out"}'
    assert headers["x-amzn-errortype"] == "InternalServerErrorException"
    assert headers["content-type"] == "application/json"
    # the per-route timeout applies to that route only; a prompt answer there is fine
    assert gw.request("GET", "/prod/slow/quick", timeout=10)[::2] == (200, b"fast enough")


def test_backend_stalling_mid_body_cuts_the_client_connection(gw: Gateway) -> None:
    conn = connect(gw, timeout=10)
    try:
        conn.request("GET", "/prod/slow/stall-mid-body")
        resp = conn.getresponse()
        assert resp.status == 200
        with pytest.raises((http.client.IncompleteRead, ConnectionError)):
            resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/prod/down", id="connection-refused"),
        pytest.param("/prod/reset/x", id="reset"),
        pytest.param("/prod/close/x", id="closed-without-answer"),
        pytest.param("/prod/garbage/x", id="not-http"),
        pytest.param("/prod/badlength/x", id="invalid-content-length"),
    ],
)
def test_backend_failures_are_502(gw: Gateway, path: str) -> None:
    status, headers, body = gw.request("GET", path, timeout=10)
    assert status == 502, body
    assert body == b'{"message":"Internal server error"}'
    assert headers["x-amzn-errortype"] == "InternalServerErrorException"
    assert headers["content-type"] == "application/json"
    # and the gateway still serves
    assert echoed(gw, "GET", "/prod/echo/alive")["target"] == "/echo/alive"


@pytest.mark.parametrize("path", ["/prod/midbody/x", "/prod/midchunk/x"])
def test_backend_closing_mid_body_cuts_the_client_connection(gw: Gateway, path: str) -> None:
    conn = connect(gw, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 200  # the head was already relayed
        with pytest.raises((http.client.IncompleteRead, ConnectionError)):
            resp.read()
    finally:
        conn.close()


# --- MOCK -----------------------------------------------------------------------------------------


def test_mock_integration_status_headers_and_body(gw: Gateway, backend_m: Backend) -> None:
    before = len(backend_m.requests)
    status, headers, body = gw.request("POST", "/prod/mock/created", body=b"ignored")
    assert status == 201
    assert body == b'{"created": true}'
    assert headers["content-type"] == "application/json"
    assert headers["x-mock"] == "yes"
    assert headers["cache-control"] == "no-store"
    assert headers["content-length"] == str(len(body))
    assert "x-amzn-requestid" in headers
    assert "x-amzn-errortype" not in headers
    status, headers, body = gw.request("HEAD", "/prod/mock/created")
    assert (status, body) == (201, b"")
    assert headers["x-mock"] == "yes"
    status, headers, body = gw.request("GET", "/prod/mock/empty")
    assert (status, body) == (204, b"")
    assert len(backend_m.requests) == before


def test_mock_204_has_no_content_length(gw: Gateway) -> None:
    """RFC 9110 8.6: no Content-Length in a 204 response."""
    data = b""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(b"GET /prod/mock/empty HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        while chunk := s.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 204 ")
    assert b"\r\ncontent-length:" not in head


# --- framing edge cases ---------------------------------------------------------------------------


def _raw_exchange(gw: Gateway, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(data)
        out = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := s.recv(65536):
                out += chunk
    return out


def test_http10_client_gets_a_chunked_backend_response_close_delimited(gw: Gateway) -> None:
    size = 100_000
    data = _raw_exchange(gw, f"GET /prod/chunked/{size} HTTP/1.0\r\nHost: gw\r\n\r\n".encode())
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith((b"HTTP/1.1 200 ", b"HTTP/1.0 200 ")), head
    assert b"transfer-encoding" not in head.lower()  # HTTP/1.0 has no chunked coding
    assert body == pattern_bytes(size)


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(
            b"POST /prod/echo/smuggle HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            b"GET /prod/echo/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n",
            id="content-length-and-chunked",
        ),
        pytest.param(
            b"POST /prod/echo/smuggle HTTP/1.1\r\nHost: gw\r\n"
            b"Content-Length: 4\r\nContent-Length: 40\r\n\r\nabcd",
            id="two-content-lengths",
        ),
        pytest.param(
            b"POST /prod/echo/smuggle HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip, chunked\r\n"
            b"Transfer-Encoding: identity\r\n\r\n0\r\n\r\n",
            id="chunked-not-last",
        ),
    ],
)
def test_ambiguous_request_framing_is_refused(gw: Gateway, backend_m: Backend, request_bytes: bytes) -> None:
    before = [r.target for r in backend_m.requests]
    data = _raw_exchange(gw, request_bytes)
    assert data.startswith(b"HTTP/1.1 400 "), data[:300]
    assert b"/echo/smuggled" not in data
    assert [r.target for r in backend_m.requests] == before


def test_one_client_connection_alternating_routes_reaches_each_routes_backend(gw: Gateway) -> None:
    """A client connection keeps the pool of the route it last proxied to: alternating between
    routes with different backends on one keep-alive connection must still reach each route's
    own backend (here, one that answers and one where nothing listens)."""
    c = connect(gw)
    try:
        c.connect()
        sock = c.sock
        for i in range(3):
            c.request("GET", f"/prod/echo/alt{i}")
            r = c.getresponse()
            assert r.status == 200
            assert json.loads(r.read())["target"] == f"/echo/alt{i}"
            c.request("GET", "/prod/down")
            r = c.getresponse()
            assert r.status == 502
            r.read()
        assert c.sock is sock  # all on one client connection
    finally:
        c.close()
