"""The admin port: ``/healthz``, ``/readyz`` and ``/metrics`` (Prometheus text format).

A deliberately tiny HTTP/1.1 responder (one request per connection is enough for probes and
scrapers). ``metrics`` is a coroutine function returning the text to serve, so a supervisor can
merge the metrics of its workers before answering.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable

import httptools

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
        path = self.url.split(b"?", 1)[0]
        method = self.parser.get_method()
        if method not in (b"GET", b"HEAD"):
            self._send(405, b'{"message":"Method Not Allowed"}\n', "application/json")
            return
        task = asyncio.ensure_future(self._route(path))
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)

    async def _route(self, path: bytes) -> None:
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
            500: "Internal Server Error",
            503: "Service Unavailable",
        }[status]
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        self.transport.write(head + (b"" if self.parser.get_method() == b"HEAD" else body))
        self.transport.close()


class AdminServer:
    def __init__(
        self, readiness: Callable[[], tuple[bool, dict[str, object]]], metrics: Callable[[], Awaitable[str]]
    ) -> None:
        self.readiness = readiness
        self.metrics = metrics
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
