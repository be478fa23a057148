"""The admin port: ``/healthz``, ``/readyz``, ``/metrics`` (Prometheus text format), ``/usage``
(API Gateway's ``GetUsage`` report: ``/usage?plan=ID&from=YYYY-MM-DD&to=YYYY-MM-DD[&key=KEY]``),
the web console under ``/console/`` (:class:`iamgate.console.app.ConsoleApp`) and, when a store
is configured, the management API (:class:`iamgate.management.app.ManagementApp`) on every other
path.

A small HTTP/1.1 server on httptools' parser: keep-alive, pipelined requests answered in order
(one at a time per connection, with reading paused while too many wait), request bodies with
``Content-Length`` or chunked encoding up to :data:`MAX_BODY` (larger: 413), ``Expect:
100-continue``, ``HEAD``, an idle timeout, and 400 for anything the parser refuses, never a
traceback. Written here rather than taken from an ASGI server because the admin port must share
the gateway's event loop and process model (workers, a supervisor) without a second framework,
and what it needs is a few hundred lines over the parser the gateway already uses.

``metrics`` is a coroutine function returning the text to serve, so a supervisor can merge the
metrics of its workers before answering.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import http
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import httptools

from iamgate.config.domains import TlsChoice
from iamgate.config.model import TlsSettings
from iamgate.observe.metrics import Metrics
from iamgate.serving.tls import TlsListener
from iamgate.throttle.usage import UsageError
from iamgate.tls.contexts import SECURITY_POLICIES, cached_context

if TYPE_CHECKING:
    from iamgate.console.app import ConsoleApp
    from iamgate.management.app import ManagementApp
    from iamgate.management.core import Reply

__all__ = ["MAX_BODY", "MAX_HEADER_BYTES", "STREAM_BUFFER", "AdminServer", "StreamSink", "Streamed"]

log = logging.getLogger("iamgate.admin")

MAX_BODY = 10 * 1024 * 1024  # the management API's largest request body (API Gateway: 10 MB)
MAX_HEADER_BYTES = 64 * 1024  # request line + headers
IDLE_TIMEOUT = 75.0  # seconds an idle keep-alive connection is kept open
MAX_QUEUED = 16  # pipelined requests waiting before reading pauses
LINGER = 2.0  # seconds a closing connection's remaining input is read and dropped
BUILTIN = (b"/healthz", b"/readyz", b"/metrics")
STREAM_BUFFER = 256 * 1024  # bytes a streamed reply may have waiting for a slow reader
STREAM_SOCKET_BUFFER = 64 * 1024  # and its socket's send buffer (fixed: no autotuning)


class StreamSink:
    """Where a :class:`Streamed` reply writes: never waits for the client. A chunk that would
    go past :data:`STREAM_BUFFER` bytes waiting to be sent is refused (``write`` is False): the
    producer drops it and counts it, and a client that stops reading costs at most that much."""

    __slots__ = ("limit", "transport")

    def __init__(self, transport: asyncio.Transport, limit: int = STREAM_BUFFER) -> None:
        self.transport = transport
        self.limit = limit

    @property
    def open(self) -> bool:
        return not self.transport.is_closing()

    def room(self) -> int:
        """Bytes that may still be written before :data:`STREAM_BUFFER` is reached."""
        transport = self.transport
        if transport.is_closing():
            return 0
        return max(0, self.limit - transport.get_write_buffer_size())

    def write(self, data: bytes) -> bool:
        transport = self.transport
        if transport.is_closing() or transport.get_write_buffer_size() + len(data) > self.limit:
            return False
        transport.write(data)
        return True


@dataclass(slots=True)
class Streamed:
    """A reply whose body is produced as it goes (server-sent events): the head (no
    ``Content-Length``; ``Connection: close``, the body ends when the connection does), then
    ``produce(sink)`` writes to the sink until it returns or the client goes away (the task is
    then cancelled)."""

    produce: Callable[[StreamSink], Awaitable[None]]
    content_type: str = "text/event-stream; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    status: int = 200


@dataclass(slots=True)
class _Request:
    method: str
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool
    error: tuple[int, str] | None = None  # answered with this status and message, then closed


@dataclass(slots=True)
class _Partial:
    url: bytearray = field(default_factory=bytearray)
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    header_bytes: int = 0
    body: bytearray = field(default_factory=bytearray)


class _AdminConnection(asyncio.Protocol):
    """One client connection: parse, queue complete requests, answer them in order."""

    def __init__(self, server: AdminServer) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.peer: str | None = None
        self.partial = _Partial()
        self.queue: collections.deque[_Request] = collections.deque()
        self.worker: asyncio.Task[None] | None = None
        self.closing = False  # no more requests are read (an error, or Connection: close)
        self.paused = False
        self.idle: asyncio.TimerHandle | None = None
        self.eof = False  # the client half-closed while requests were still to be answered

    # --- transport events ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) and peer else None
        self.server.connections.add(self)
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.closing = True
        if self.idle is not None:
            self.idle.cancel()
        if self.worker is not None and not self.worker.done():
            self.worker.cancel()

    def eof_received(self) -> bool:
        """The client will send nothing more: answer what it sent, then close."""
        self.closing = True
        if self.queue or (self.worker is not None and not self.worker.done()):
            self.eof = True
            return True  # keep the connection open for the responses still to come
        return False

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self._disarm_idle()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not supported on the admin port")
        except httptools.HttpParserError as exc:
            if not self.closing:  # a callback may already have refused the request
                self._fail(400, f"malformed HTTP request: {_reason(exc)}")

    # --- parser callbacks ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.partial = _Partial()

    def on_url(self, url: bytes) -> None:
        self.partial.url += url
        self._count_header_bytes(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.partial.headers.append((name, value))
        self._count_header_bytes(len(name) + len(value) + 4)

    def on_headers_complete(self) -> None:
        if self.closing:
            return
        length = _content_length(self.partial.headers)
        if length is not None and length > MAX_BODY:
            self._fail(413, f"the request body is larger than {MAX_BODY} bytes")
            return
        expect = _header(self.partial.headers, b"expect")
        idle = not self.queue and (self.worker is None or self.worker.done())
        if expect is not None and expect.lower() == b"100-continue" and idle and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # never between two responses

    def on_body(self, body: bytes) -> None:
        if self.closing:
            return
        if len(self.partial.body) + len(body) > MAX_BODY:
            self._fail(413, f"the request body is larger than {MAX_BODY} bytes")
            return
        self.partial.body += body

    def on_message_complete(self) -> None:
        if self.closing:
            return
        p = self.partial
        request = _Request(
            self.parser.get_method().decode("ascii", "replace"),
            bytes(p.url),
            p.headers,
            bytes(p.body),
            bool(self.parser.should_keep_alive()),
        )
        if not request.keep_alive:
            self.closing = True  # answer it, then close; anything pipelined after it is ignored
        self._enqueue(request)

    # --- internals ----------------------------------------------------------------------------
    def _count_header_bytes(self, n: int) -> None:
        self.partial.header_bytes += n
        if self.partial.header_bytes > MAX_HEADER_BYTES and not self.closing:
            self._fail(431, f"the request line and headers are larger than {MAX_HEADER_BYTES} bytes")

    def _fail(self, status: int, message: str) -> None:
        """Answer ``status`` after the requests already queued, then close."""
        self.closing = True
        self._enqueue(_Request("GET", b"", [], b"", False, (status, message)))

    def _enqueue(self, request: _Request) -> None:
        self.queue.append(request)
        if len(self.queue) >= MAX_QUEUED and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        if self.worker is None or self.worker.done():
            self.worker = asyncio.ensure_future(self._work())
            self.server.tasks.add(self.worker)
            self.worker.add_done_callback(self.server.tasks.discard)

    async def _work(self) -> None:
        while self.queue:
            request = self.queue.popleft()
            if self.paused and len(self.queue) < MAX_QUEUED // 2 and self.transport is not None:
                self.paused = False
                self.transport.resume_reading()
            try:
                await self._answer(request)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug: never a traceback to the client, and the port keeps serving
                log.exception("admin request %s %r failed", request.method, request.target)
                self._send(request, 500, _message("Internal server error"), "application/json", [])
            if not request.keep_alive or request.error is not None:
                self._linger()
                return
        if self.eof and self.transport is not None:
            self.transport.close()
        elif not self.closing:
            self._arm_idle()

    async def _answer(self, request: _Request) -> None:
        if request.error is not None:
            status, message = request.error
            self._send(request, status, _message(message), "application/json", [])
            return
        path, _, query = request.target.partition(b"?")
        server = self.server
        if server.console is not None and (path == b"/console" or path.startswith(b"/console/")):
            reply = await server.console.handle(
                request.method,
                request.target,
                request.headers,
                request.body,
                peer=self.peer,
                management=server.management,
                secure=server.secure,
            )
            if isinstance(reply, Streamed):
                await self._stream(request, reply)
            else:
                self._reply(request, reply)
            return
        claimed = path in BUILTIN or (path == b"/usage" and server.usage is not None)
        if not claimed:
            if server.management is None:
                self._send(request, 404, b'{"message":"Not Found"}\n', "application/json", [])
                return
            reply = await server.management.handle(
                request.method,
                request.target,
                request.headers,
                request.body,
                peer=self.peer,
                secure=server.secure,
            )
            self._reply(request, reply)
            return
        if request.method not in ("GET", "HEAD"):
            self._send(
                request,
                405,
                b'{"message":"Method Not Allowed"}\n',
                "application/json",
                [("Allow", "GET, HEAD")],
            )
            return
        if path == b"/healthz":
            self._send(request, 200, b'{"status":"ok"}\n', "application/json", [])
        elif path == b"/readyz":
            ready, detail = server.readiness()
            body = json.dumps({"status": "ready" if ready else "not ready", **detail}).encode() + b"\n"
            self._send(request, 200 if ready else 503, body, "application/json", [])
        elif path == b"/metrics":
            try:
                text = await server.metrics()
            except Exception as exc:
                self._send(request, 500, f"metrics unavailable: {exc}\n".encode(), "text/plain", [])
                return
            self._send(request, 200, text.encode(), "text/plain; version=0.0.4; charset=utf-8", [])
        elif server.usage is not None:
            params = dict(parse_qsl(query.decode("latin-1")))
            try:
                report = await server.usage(params)
            except UsageError as exc:
                self._send(request, exc.status, _message(str(exc)), "application/json", [])
                return
            except (ConnectionError, TimeoutError, OSError) as exc:
                failure = _message(f"the throttle backend did not answer: {exc}")
                self._send(request, 503, failure, "application/json", [])
                return
            self._send(request, 200, json.dumps(report).encode() + b"\n", "application/json", [])

    async def _stream(self, request: _Request, reply: Streamed) -> None:
        """Send a :class:`Streamed` reply's head, then let it write until it ends; the
        connection closes after it (nothing pipelined behind a stream is answered)."""
        request.keep_alive = False
        self.closing = True
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        headers = [("Cache-Control", "no-store"), ("X-Accel-Buffering", "no"), *reply.headers]
        lines = [f"HTTP/1.1 {reply.status} {http.HTTPStatus(reply.status).phrase}"]
        lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
        lines.append(f"Content-Type: {reply.content_type}")
        lines.extend(f"{k}: {v}" for k, v in headers if not any(c in k + v for c in "\r\n"))
        lines.append("Connection: close")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace"))
        if request.method == "HEAD":
            return
        sock = transport.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError):  # a fixed kernel buffer: no autotuning
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SOCKET_BUFFER)
        await reply.produce(StreamSink(transport))

    def _reply(self, request: _Request, reply: Reply) -> None:
        body = reply.body
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data = body
        else:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        content_type = reply.content_type if data or reply.body is not None else ""
        self._send(request, reply.status, data, content_type, reply.headers)

    def _send(
        self,
        request: _Request,
        status: int,
        body: bytes,
        content_type: str,
        headers: list[tuple[str, str]],
    ) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}", f"Date: {email.utils.formatdate(usegmt=True)}"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        if status >= 200 and status not in (204, 304):
            lines.append(f"Content-Length: {len(body)}")
        for name, value in headers:
            if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
                continue  # never let a value split the response
            lines.append(f"{name}: {value}")
        if not request.keep_alive or request.error is not None:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        send_body = request.method != "HEAD" and status not in (204, 304)
        transport.write(head + body if send_body else head)

    def _linger(self) -> None:
        """Close after the last response without losing it: send FIN, read (and drop) what the
        client is still sending for up to :data:`LINGER` seconds, then close. Closing at once with
        unread input would send a reset, which can destroy the response before it is read."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.closing = True
        self._disarm_idle()
        if self.paused:
            self.paused = False
            transport.resume_reading()
        if transport.can_write_eof():
            transport.write_eof()
            self.idle = asyncio.get_running_loop().call_later(LINGER, transport.close)
        else:
            transport.close()

    def _arm_idle(self) -> None:
        self._disarm_idle()
        self.idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self._idle_timeout)

    def _disarm_idle(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None

    def _idle_timeout(self) -> None:
        if self.transport is not None and not self.queue and (self.worker is None or self.worker.done()):
            self.transport.close()


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value.strip()
    return None


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    value = _header(headers, b"content-length")
    if value is None or not value.isdigit():
        return None  # the parser refuses a malformed one itself
    return int(value)


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:200]


def _message(text: str) -> bytes:
    return json.dumps({"message": text}).encode() + b"\n"


class AdminServer:
    def __init__(
        self,
        readiness: Callable[[], tuple[bool, dict[str, object]]],
        metrics: Callable[[], Awaitable[str]],
        usage: Callable[[dict[str, str]], Awaitable[dict[str, Any]]] | None = None,
        management: ManagementApp | None = None,
        console: ConsoleApp | None = None,
    ) -> None:
        self.readiness = readiness
        self.metrics = metrics
        self.usage = usage
        self.management = management
        self.console = console
        if console is not None:  # the usage screen's throttled counts and usage (every worker's)
            console.metrics = metrics
            console.usage = usage
        self.secure = False  # the port speaks TLS (set by start)
        self.server: asyncio.AbstractServer | TlsListener | None = None
        self.tasks: set[asyncio.Future[None]] = set()
        self.connections: set[_AdminConnection] = set()

    async def start(
        self,
        sock: socket.socket,
        tls: Callable[[], TlsSettings | None] | None = None,
        metrics: Callable[[], Metrics] | None = None,
    ) -> None:
        """Serve on ``sock``, a listening socket bound by the caller (so a port in use is found,
        and reported, before anything starts). The management API is told the address it is
        served on (``management.authentication: none`` needs a loopback one). With ``tls``
        (the configuration's current ``gateway.admin_tls``, read at each handshake, so that a
        reload renews the certificate) the port speaks TLS."""
        if self.management is not None:
            address = sock.getsockname()
            self.management.bound(address[0] if isinstance(address, tuple) else str(address))
        loop = asyncio.get_running_loop()
        settings = tls() if tls is not None else None
        if tls is None or settings is None:
            self.server = await loop.create_server(lambda: _AdminConnection(self), sock=sock)
            return
        current = tls

        def choose(_name: str | None) -> TlsChoice | None:
            now = current()
            if now is None or now.certificate is None:
                return None
            return TlsChoice(
                cached_context(now.certificate, SECURITY_POLICIES[now.security_policy]), None, False
            )

        def timeout() -> float:
            now = current()
            return now.handshake_timeout if now is not None else 10.0

        own = Metrics()
        listener = TlsListener(
            sock,
            choose=choose,
            timeout=timeout,
            factory=lambda _choice: _AdminConnection(self),
            metrics=metrics or (lambda: own),
            room=lambda pending: pending < 256,
            port="admin",
        )
        listener.start()
        self.server = listener
        self.secure = True

    def close(self) -> None:
        """Stop accepting and close every connection (requests in progress are cut)."""
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
