"""The admin port's HTTP/1.1 on real sockets: keep-alive, pipelining, bodies (Content-Length and
chunked, the size cap), HEAD, malformed requests; the built-in endpoints beside the management API."""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path

import httptools

from iamgate.admin import MAX_BODY

from .conftest import AdminHandle, gateway_config, serve_admin


class _Responses:
    """Responses parsed off a socket with httptools (status, headers, body), in order."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.done: list[tuple[int, dict[str, str], bytes]] = []
        self.headers: dict[str, str] = {}
        self.body = b""

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done.append((self.parser.get_status_code(), self.headers, self.body))
        self.headers, self.body = {}, b""


def exchange(
    handle: AdminHandle, data: bytes, count: int, *, head: bool = False
) -> tuple[list[tuple[int, dict[str, str], bytes]], bool]:
    """Send ``data`` on one connection; read ``count`` responses; whether the server then closed."""
    with socket.create_connection(("127.0.0.1", handle.port), timeout=10) as sock:
        # the server may refuse part way (413): its answer is still there to read
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        responses = _Responses()
        if head:
            responses.parser.set_dangerous_leniencies(lenient_headers=True)
        closed = False
        while len(responses.done) < count:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            responses.parser.feed_data(chunk)
        if not closed:
            sock.settimeout(0.5)
            try:
                closed = sock.recv(1) == b""
            except TimeoutError:
                closed = False
            except ConnectionResetError:
                closed = True
        return responses.done, closed


def test_keep_alive_and_pipelined_requests_in_order(admin_server: AdminHandle) -> None:
    pipelined = (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /restapis HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /restapis HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    done, closed = exchange(admin_server, pipelined, 5)
    assert [status for status, _, _ in done] == [200, 403, 200, 403, 200]
    assert json.loads(done[0][2]) == {"status": "ok"}
    assert done[1][1]["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert json.loads(done[2][2])["status"] == "ready"
    assert not closed  # keep-alive: the connection stays open


def test_connection_close_and_http_1_0(admin_server: AdminHandle) -> None:
    done, closed = exchange(admin_server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1)
    assert done[0][0] == 200
    assert done[0][1]["connection"] == "close"
    assert closed
    done, closed = exchange(admin_server, b"GET /healthz HTTP/1.0\r\n\r\n", 1)
    assert done[0][0] == 200
    assert closed


def test_chunked_bodies_reach_the_management_api(tmp_path: Path) -> None:
    with serve_admin(tmp_path, gateway_config(authentication="none")) as handle:
        body = json.dumps({"name": "chunked"}).encode()
        chunks = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + 5]), body[i : i + 5]) for i in range(0, len(body), 5)
        )
        data = (
            b"POST /restapis HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunks
            + b"0\r\n\r\n"
        )
        done, _ = exchange(handle, data, 1)
        assert done[0][0] == 201
        assert json.loads(done[0][2])["name"] == "chunked"
        # Expect: 100-continue gets its interim answer, then the real one
        data = b"POST /restapis HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\nExpect: 100-continue\r\n\r\n"
        with socket.create_connection(("127.0.0.1", handle.port), timeout=10) as sock:
            sock.sendall(data)
            assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
            sock.sendall(b'{"name": "next"}')
            assert sock.recv(65536).startswith(b"HTTP/1.1 201 ")


def test_body_cap_is_413(admin_server: AdminHandle) -> None:
    head = b"POST /restapis HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1)
    done, closed = exchange(admin_server, head, 1)
    assert done[0][0] == 413
    assert closed
    assert "larger than" in json.loads(done[0][2])["message"]
    # chunked past the cap: refused as it arrives
    chunk = b"x" * (1 << 20)
    data = b"POST /restapis HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    data += (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 11
    done, closed = exchange(admin_server, data, 1)
    assert done[0][0] == 413
    assert closed


def test_malformed_requests_are_400_without_a_traceback(admin_server: AdminHandle) -> None:
    for data in (
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    ):
        done, closed = exchange(admin_server, data, 1)
        assert done, data
        assert done[0][0] == 400, data
        message = json.loads(done[0][2])["message"]
        assert message.startswith("malformed HTTP request")
        assert "Traceback" not in message
        assert closed
    # the port still serves afterwards
    assert admin_server.request("GET", "/healthz")[0] == 200


def test_head_and_builtin_endpoints_beside_management(admin_server: AdminHandle) -> None:
    status, headers, body = admin_server.request("HEAD", "/healthz")
    assert (status, body, headers["content-length"]) == (200, b"", str(len(b'{"status":"ok"}\n')))
    status, headers, _ = admin_server.request("POST", "/readyz")
    assert (status, headers["allow"]) == (405, "GET, HEAD")
    status, headers, body = admin_server.request("GET", "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    # every other path is the management API's
    status, headers, _ = admin_server.request("GET", "/")
    assert (status, headers["x-amzn-errortype"]) == (403, "MissingAuthenticationTokenException")
    status, headers, _ = admin_server.signed("GET", "/metricsx")
    assert (status, headers["x-amzn-errortype"]) == (404, "NotFoundException")
