"""Pooled keep-alive HTTP/1.1 connections to backends, on asyncio protocols and httptools.

Written by hand (not aiohttp or httpx) because the upstream client dominates a Python proxy's
cost (measured with aiohttp's and httpx's clients: 0.01-0.13 of nginx; docs/benchmarks.md); this one works at
the protocol level, streams both bodies with flow control in both directions, and does what a
production client must: connect and response timeouts, pool limits with waiting, idle expiry,
and a single retry of a request that failed on a *reused* connection before any response byte
arrived (the stale keep-alive race), only when the request can be replayed.

A connection serves one exchange at a time. The exchange is a :class:`ResponseSink`: the
connection calls it with the response head, body chunks and completion, or with the failure.

A connection goes back to the idle pool only when **both messages on it ended by their
framing**: the whole request was written (the exchange says so: ``start(..., complete=True)``
or :meth:`UpstreamConnection.end_request`) and the response was read to the end its framing
gives, with no byte after it, and the backend keeps it alive. Anything else -- an answer that
came before the request body was sent, a second response or junk after the first, a response cut
short, a parse error, a byte arriving while idle -- closes it. Reusing such a connection would
let the next request's bytes be read as the rest of the last one's body (a request smuggled past
the policy) or a client read another's answer (docs/security.md, "Backend connections").
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Final

import httptools
from mypy_extensions import trait

from iamgate.clock import monotonic
from iamgate.policy.memo import SecondSight
from iamgate.upstream.headers import HOP_BY_HOP, NAME_MEMO_MAX, REMAPPED_RESPONSE, connection_tokens

__all__ = [
    "PoolTimeout",
    "ResponseSink",
    "UpstreamConnection",
    "UpstreamHead",
    "UpstreamPool",
    "UpstreamPools",
]


class PoolTimeout(Exception):
    """No connection could be had within the connect timeout (pool full or connect slow)."""


class UpstreamHead:
    """A backend response head, classified as it is parsed: the lines to pass on (hop-by-hop
    headers and Content-Length already left out, Server and Date renamed) with their lower-case
    names, the framing, and the extra hop-by-hop names a Connection header lists."""

    __slots__ = ("chunked", "length", "lines", "names", "tokens")

    def __init__(self) -> None:
        self.lines: list[bytes] = []  # raw lines ("Name: value\r\n"), in arrival order
        self.names: list[bytes] = []  # the lower-case (original) name of each line
        self.length: bytes | None = None
        self.chunked = False
        self.tokens: frozenset[bytes] = _NO_TOKENS

    def reset(self) -> None:
        """Empty again, for the connection's next exchange (new lists: a sink may keep the old)."""
        self.lines = []
        self.names = []
        self.length = None
        self.chunked = False
        self.tokens = _NO_TOKENS


_NO_TOKENS: Final[frozenset[bytes]] = frozenset()
_PLAIN_CONNECTION: Final = frozenset({b"keep-alive", b"close"})

# what to do with a response header, by its name as the backend spelled it: (kind, lower-case
# name, the start of the line to pass on); memoised, the same few names come back every time
_PASS: Final = 0
_HOP: Final = 1
_CHUNKED: Final = 2
_CONNECTION: Final = 3
_LENGTH: Final = 4
_NAMES: Final[SecondSight[bytes, tuple[int, bytes, bytes]]] = SecondSight()


def _classify(name: bytes) -> tuple[int, bytes, bytes]:
    lname = name.lower()
    if lname in HOP_BY_HOP:
        kind = _CHUNKED if lname == b"transfer-encoding" else _CONNECTION if lname == b"connection" else _HOP
    elif lname == b"content-length":
        kind = _LENGTH
    else:
        kind = _PASS
    found = (kind, lname, (REMAPPED_RESPONSE.get(lname) or name) + b": ")
    if len(name) <= NAME_MEMO_MAX:  # long names are classified each time, not kept
        _NAMES.keep(name, found)
    return found


@trait
class ResponseSink:
    """What a connection reports an exchange's response to (the client connection, or the
    collector of a gateway's own call). A trait: compiled, the connection calls these methods
    through the trait's table, not by name; an interpreted class cannot take it as a base."""

    def upstream_head(self, status: int, head: UpstreamHead) -> None:
        raise NotImplementedError

    def upstream_body(self, data: bytes) -> None:
        raise NotImplementedError

    def upstream_done(self) -> None:  # writes what is pending and finishes the exchange
        raise NotImplementedError

    def upstream_failed(self, exc: BaseException | None, retriable: bool) -> None:
        raise NotImplementedError

    def upstream_flush(self) -> None:  # end of one read: write what head/body produced
        raise NotImplementedError

    def upstream_pause_request(self) -> None:
        raise NotImplementedError

    def upstream_resume_request(self) -> None:
        raise NotImplementedError


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "beyond",
        "closed",
        "ended",
        "got_response",
        "head",
        "head_request",
        "idle_since",
        "keep_alive",
        "parser",
        "paused",
        "pool",
        "request_sent",
        "reused",
        "sink",
        "transport",
        "uses",
    )

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.sink: ResponseSink | None = None
        self.head = UpstreamHead()
        self.got_response = False
        self.keep_alive = False
        self.head_request = False
        self.closed = False
        self.reused = False
        self.uses = 0
        self.idle_since = 0.0
        self.request_sent = False  # the exchange has written its whole request
        self.ended = False  # the response ended by its framing
        self.beyond = False  # bytes came after the response's end
        self.paused = False  # reading paused for a slow client

    # --- driving ------------------------------------------------------------------------------
    def start(self, sink: ResponseSink, data: bytes, *, head_request: bool, complete: bool) -> None:
        """Begin an exchange by writing the request head (and any body already at hand);
        ``complete``: ``data`` is the whole request (else :meth:`end_request` says when it is)."""
        self.sink = sink
        self.head.reset()
        self.got_response = False
        self.ended = False
        self.beyond = False
        self.request_sent = complete
        self.head_request = head_request
        self.reused = self.uses > 0
        self.uses += 1
        assert self.transport is not None
        self.transport.write(data)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def end_request(self) -> None:
        """The exchange has written the last byte of its request."""
        self.request_sent = True

    def abort(self) -> None:
        """Drop the connection (the exchange gave up on it)."""
        self.sink = None
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    # --- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is None:  # bytes while idle: the backend is confused; drop the connection
            self.abort()
            self.pool.forget(self)
            return
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if not self.ended:
                self.sink = None
                self.closed = True
                if self.transport is not None:
                    self.transport.abort()
                self.pool.forget(self)
                sink.upstream_failed(exc, False)
                return
            self.beyond = True  # what followed the response is not even HTTP
        if self.ended:
            self._settle(sink)
        elif self.sink is sink:  # still mid-response: write what this read produced
            sink.upstream_flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        sink, self.sink = self.sink, None
        if sink is None:
            return
        if self.got_response and self._close_delimited():
            sink.upstream_done()  # the body ends with the connection
            return
        retriable = self.reused and not self.got_response
        sink.upstream_failed(exc, retriable)

    def pause_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_pause_request()

    def resume_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_resume_request()

    # --- httptools callbacks ------------------------------------------------------------------
    # Any callback after the response ended means bytes beyond its framing: noted, and the
    # connection is closed once the read is parsed (_settle).
    def on_message_begin(self) -> None:
        if self.ended:
            self.beyond = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.ended:
            self.beyond = True
            return
        found = _NAMES.found.get(name)
        if found is None:
            found = _classify(name)
        kind, lname, start = found
        head = self.head
        if kind == _PASS:
            head.lines.append(start + value + b"\r\n")
            head.names.append(lname)
        elif kind == _LENGTH:
            head.length = value.strip()
        elif kind == _CHUNKED:
            head.chunked = True
        elif kind == _CONNECTION:
            tokens = connection_tokens(value)
            if not tokens <= _PLAIN_CONNECTION:
                head.tokens = head.tokens | tokens

    def on_headers_complete(self) -> None:
        if self.ended:
            self.beyond = True
            return
        status = self.parser.get_status_code()
        if status < 200:  # 1xx interim responses are not forwarded
            self.head = UpstreamHead()
            return
        self.got_response = True
        self.keep_alive = self.parser.should_keep_alive()
        if self.sink is not None:
            self.sink.upstream_head(status, self.head)
        if self.head_request:
            # a response to HEAD has no body whatever its Content-Length says; httptools cannot be
            # told so, hence a fresh parser for the next exchange (the old one still parses the
            # rest of this read: anything it finds there is beyond the response)
            self.parser = httptools.HttpResponseParser(self)
            self.ended = True

    def on_body(self, body: bytes) -> None:
        if self.ended:
            self.beyond = True
        elif self.sink is not None:
            self.sink.upstream_body(body)

    def on_message_complete(self) -> None:
        if self.ended:
            self.beyond = True
        elif self.got_response:
            self.ended = True

    def _settle(self, sink: ResponseSink) -> None:
        """The response ended: keep the connection only if both messages ended cleanly."""
        self.sink = None
        if self.keep_alive and self.request_sent and not self.beyond and not self.closed:
            if self.paused:  # the last read ended the response while its client was slow
                self.resume_reading()  # else the next request on it is never read (a 504)
            self.pool.release(self)
        else:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            self.pool.forget(self)
        sink.upstream_done()

    def _close_delimited(self) -> bool:
        return self.head.length is None and not self.head.chunked


class UpstreamPool:
    """Connections to one backend ``scheme://host:port``."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        *,
        max_connections: int,
        max_idle: int,
        idle_timeout: float,
        connect_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.scheme, self.host, self.port = scheme, host, port
        self.max_connections = max_connections
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.ssl_context = ssl_context
        self.idle: list[UpstreamConnection] = []
        self.size = 0  # open or opening
        self.waiters: deque[asyncio.Future[UpstreamConnection | None]] = deque()
        self._members: set[UpstreamConnection] = set()
        self.retired = False  # replaced after a reload changed the settings: keep nothing idle

    def take(self) -> UpstreamConnection | None:
        """An idle connection, without waiting, or None."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            transport = conn.transport
            if not conn.closed and transport is not None and not transport.is_closing():
                return conn
        return None

    async def open(self) -> UpstreamConnection:
        """A new connection (or one handed over by a release while waiting for a free slot)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        while self.size >= self.max_connections:
            waiter: asyncio.Future[UpstreamConnection | None] = loop.create_future()
            self.waiters.append(waiter)
            try:
                handed = await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise PoolTimeout(
                    f"no connection to {self.host}:{self.port} within "
                    f"{self.connect_timeout:g} s (pool of {self.max_connections} busy)"
                ) from None
            finally:
                if waiter in self.waiters:
                    self.waiters.remove(waiter)
            if handed is not None:
                return handed
        self.size += 1
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: UpstreamConnection(self),
                    self.host,
                    self.port,
                    ssl=self.ssl_context,
                    server_hostname=self.host if self.ssl_context is not None else None,
                ),
                max(0.001, deadline - loop.time()),
            )
        except TimeoutError:
            self._slot_freed()
            raise PoolTimeout(
                f"connecting to {self.host}:{self.port} took longer than {self.connect_timeout:g} s"
            ) from None
        except BaseException:
            self._slot_freed()
            raise
        self._members.add(conn)
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        if self.retired:
            conn.closed = True
            if conn.transport is not None:
                conn.transport.close()
            self.forget(conn)
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if len(self.idle) >= self.max_idle:
            conn.closed = True
            if conn.transport is not None:
                conn.transport.close()
            self.forget(conn)
            return
        transport = conn.transport
        conn.idle_since = monotonic() if transport is not None else 0.0
        self.idle.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        if conn in self._members:
            self._members.discard(conn)
            if conn in self.idle:
                self.idle.remove(conn)
            self._slot_freed()

    def _slot_freed(self) -> None:
        self.size -= 1
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # go and open a connection in the freed slot
                return

    def sweep(self, now: float) -> None:
        """Close connections idle for longer than the idle timeout."""
        keep = []
        for conn in self.idle:
            if now - conn.idle_since > self.idle_timeout:
                conn.closed = True
                if conn.transport is not None:
                    conn.transport.close()
                self._members.discard(conn)
                self.size -= 1
            else:
                keep.append(conn)
        self.idle = keep

    def close(self) -> None:
        for conn in list(self._members):
            conn.closed = True
            if conn.transport is not None:
                conn.transport.close()
        self.idle.clear()


def origin(scheme: str, host: str, port: int) -> str:
    """A backend's origin (``http://host:port``): the key of its pool."""
    return f"{scheme}://{host}:{port}"


class UpstreamPools:
    """One pool per backend origin; created on first use."""

    def __init__(
        self, *, max_connections: int, max_idle: int, idle_timeout: float, connect_timeout: float
    ) -> None:
        self.settings = (max_connections, max_idle, idle_timeout, connect_timeout)
        self.pools: dict[str, UpstreamPool] = {}
        self._ssl: ssl.SSLContext | None = None

    def get(self, scheme: str, host: str, port: int) -> UpstreamPool:
        return self.at(origin(scheme, host, port), scheme, host, port)

    def at(self, key: str, scheme: str, host: str, port: int) -> UpstreamPool:
        """The pool of origin ``key`` (:func:`origin` of the other three; a proxy target keeps
        its own, so a request looks its pool up by a string whose hash is known)."""
        pool = self.pools.get(key)
        if pool is None:
            if scheme == "https" and self._ssl is None:
                self._ssl = ssl.create_default_context()
            max_connections, max_idle, idle_timeout, connect_timeout = self.settings
            pool = UpstreamPool(
                scheme,
                host,
                port,
                max_connections=max_connections,
                max_idle=max_idle,
                idle_timeout=idle_timeout,
                connect_timeout=connect_timeout,
                ssl_context=self._ssl if scheme == "https" else None,
            )
            self.pools[key] = pool
        return pool

    def sweep(self, now: float) -> None:
        for pool in self.pools.values():
            pool.sweep(now)

    def retire(self) -> None:
        """New settings replaced these pools: close idle connections now and busy ones when their
        exchange ends (requests in flight finish on the connection they have)."""
        for pool in self.pools.values():
            pool.retired = True
            for conn in pool.idle:
                conn.closed = True
                if conn.transport is not None:
                    conn.transport.close()
                pool._members.discard(conn)
            pool.idle.clear()

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
