"""A buffered HTTP/1.1 request over the gateway's own connection pools.

For the gateway's own calls (Lambda-style authorizers served over HTTP): the whole request is
sent, the whole response collected (up to a size limit), all within one timeout.
"""

from __future__ import annotations

import asyncio
from typing import Final
from urllib.parse import urlsplit

from iamgate.upstream.pool import PoolTimeout, ResponseSink, UpstreamConnection, UpstreamHead, UpstreamPools

__all__ = ["FetchError", "Response", "fetch"]

MAX_RESPONSE: Final = 1 << 20


class FetchError(Exception):
    """The call failed: connection, timeout, a malformed or oversized response."""


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Collector(ResponseSink):
    def __init__(self, future: asyncio.Future[Response]) -> None:
        self.future = future
        self.status = 0
        self.lines: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.size = 0

    def upstream_head(self, status: int, head: UpstreamHead) -> None:
        self.status = status
        self.lines = list(zip(head.names, head.lines, strict=True))

    def upstream_body(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > MAX_RESPONSE and not self.future.done():
            self.future.set_exception(FetchError(f"response larger than {MAX_RESPONSE} bytes"))
        self.chunks.append(data)

    def upstream_done(self) -> None:
        if not self.future.done():
            self.future.set_result(Response(self.status, self.lines, b"".join(self.chunks)))

    def upstream_failed(self, exc: BaseException | None, retriable: bool) -> None:
        if not self.future.done():
            self.future.set_exception(FetchError(f"connection failed: {exc or 'closed by the server'}"))

    def upstream_flush(self) -> None:
        pass

    def upstream_pause_request(self) -> None:
        pass

    def upstream_resume_request(self) -> None:
        pass


async def fetch(
    pools: UpstreamPools,
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    timeout: float = 10.0,
) -> Response:
    """Send one request and return the complete response; raises :class:`FetchError`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"{url} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.netloc
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers or []]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    pool = pools.get(parts.scheme, parts.hostname, port)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Response] = loop.create_future()
    conn: UpstreamConnection | None = None
    try:
        async with asyncio.timeout(timeout):
            conn = pool.take() or await pool.open()
            conn.start(_Collector(future), data, head_request=method == "HEAD", complete=True)
            return await future
    except TimeoutError:
        if conn is not None:
            conn.abort()
        raise FetchError(f"no response within {timeout:g} s") from None
    except FetchError:
        if conn is not None:
            conn.abort()
        raise
    except (OSError, PoolTimeout) as exc:
        raise FetchError(f"cannot connect to {host}: {getattr(exc, 'strerror', None) or exc}") from None
