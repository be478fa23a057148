"""The admin port: ``/healthz``, ``/readyz``, ``/metrics`` (Prometheus text format) and ``/usage``
(API Gateway's ``GetUsage`` report: ``/usage?plan=ID&from=YYYY-MM-DD&to=YYYY-MM-DD[&key=KEY]``).

A deliberately tiny HTTP/1.1 responder (one request per connection is enough for probes and
scrapers). ``metrics`` is a coroutine function returning the text to serve, so a supervisor can
merge the metrics of its workers before answering.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import httptools

from iamgate.throttle.usage import UsageError

__all__ = ["AdminServer"]


class _AdminConnection(asyncio.Protocol):
    def __init__(self, server: AdminServer) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._send(400, b"bad request\n", "text/plain")

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        path, _, query = self.url.partition(b"?")
        method = self.parser.get_method()
        if method not in (b"GET", b"HEAD"):
            self._send(405, b'{"message":"Method Not Allowed"}\n', "application/json")
            return
        task = asyncio.ensure_future(self._route(path, query))
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)

    async def _route(self, path: bytes, query: bytes) -> None:
        server = self.server
        if path == b"/healthz":
            self._send(200, b'{"status":"ok"}\n', "application/json")
        elif path == b"/readyz":
            ready, detail = server.readiness()
            body = json.dumps({"status": "ready" if ready else "not ready", **detail}).encode() + b"\n"
            self._send(200 if ready else 503, body, "application/json")
        elif path == b"/metrics":
            try:
                text = await server.metrics()
            except Exception as exc:
                self._send(500, f"metrics unavailable: {exc}\n".encode(), "text/plain")
                return
            self._send(200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")
        elif path == b"/usage" and server.usage is not None:
            params = dict(parse_qsl(query.decode("latin-1")))
            try:
                report = await server.usage(params)
            except UsageError as exc:
                self._send(exc.status, _message(str(exc)), "application/json")
                return
            except (ConnectionError, TimeoutError, OSError) as exc:
                self._send(503, _message(f"the throttle backend did not answer: {exc}"), "application/json")
                return
            self._send(200, json.dumps(report).encode() + b"\n", "application/json")
        else:
            self._send(404, b'{"message":"Not Found"}\n', "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        reason = {
            200: "OK",
            400: "Bad Request",
            404: "Not Found",
            405: "Method Not Allowed",
            403: "Forbidden",
            500: "Internal Server Error",
            503: "Service Unavailable",
        }[status]
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        self.transport.write(head + (b"" if self.parser.get_method() == b"HEAD" else body))
        self.transport.close()


def _message(text: str) -> bytes:
    return json.dumps({"message": text}).encode() + b"\n"


class AdminServer:
    def __init__(
        self,
        readiness: Callable[[], tuple[bool, dict[str, object]]],
        metrics: Callable[[], Awaitable[str]],
        usage: Callable[[dict[str, str]], Awaitable[dict[str, Any]]] | None = None,
    ) -> None:
        self.readiness = readiness
        self.metrics = metrics
        self.usage = usage
        self.server: asyncio.AbstractServer | None = None
        self.tasks: set[asyncio.Future[None]] = set()

    async def start(self, sock: socket.socket) -> None:
        """Serve on ``sock``, a listening socket bound by the caller (so a port in use is found,
        and reported, before anything starts)."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _AdminConnection(self), sock=sock)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
