"""The gateway's HTTP/1.1 server: client connections, the stage chain, and the integrations.

Built directly on asyncio protocols, llhttp (through httptools) and uvloop: the measurements in
docs/benchmarks.md show that the request path's overhead, not the policy, decides a Python
proxy's throughput, so each request is handled with callbacks and no task or coroutine unless a
stage has to wait. A client connection serves one request at a time (pipelined requests wait,
reading is paused, so responses keep their order); a request body streams to the backend as it
arrives and the response streams back, with flow control both ways.

Per request: the head is parsed -> the stages run (route, context, authorize) -> a gateway
response is written (error, denial, MOCK) or the request is proxied -> the access log line is
written and the metrics updated, whatever happened.
"""

from __future__ import annotations

import asyncio
import functools
import http
import logging
import os
import re
import resource
from typing import TYPE_CHECKING, Any, Final, cast

import httptools

from iamgate.clock import date_header as _date_header
from iamgate.clock import monotonic as _monotonic
from iamgate.clock import perf_counter as _perf_counter
from iamgate.config.model import ClientSettings, MockIntegration
from iamgate.config.snapshot import ProxyTarget, Snapshot
from iamgate.observe.accesslog import AccessLog
from iamgate.observe.metrics import Metrics
from iamgate.pipeline import responses as R
from iamgate.pipeline.auth_stages import NEED_BODY
from iamgate.pipeline.chain import NAMES, run_stage
from iamgate.pipeline.exchange import Exchange
from iamgate.pipeline.later import Later, Resumer
from iamgate.pipeline.mapping import request_parameter
from iamgate.policy.memo import SecondSight
from iamgate.throttle.backend import Backend
from iamgate.throttle.factory import make_throttler
from iamgate.upstream.headers import NAME_MEMO_MAX, connection_tokens
from iamgate.upstream.pool import (
    PoolTimeout,
    ResponseSink,
    UpstreamConnection,
    UpstreamHead,
    UpstreamPool,
    UpstreamPools,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

__all__ = ["TICK", "DownstreamConnection", "GatewayState"]

log: Final = logging.getLogger("iamgate")

_IDLE: Final = 0
_RESPONDED: Final = 1
_PENDING: Final = 2
_PROXY: Final = 3
_WAITING: Final = 4
_BUFFERING: Final = 5
TICK: Final = 0.05  # seconds between deadline sweeps
_SWEEP_TICKS: Final = 20  # client connections are checked for timeouts every 20 ticks (1 s)
_HEAD_SLACK: Final = 4096  # request-line and whitespace bytes a head may hold beyond its limits
_LIMIT_LOG_INTERVAL: Final = 10.0  # seconds between two "connection limit reached" log lines
# request bodies up to this size are kept so a stale-connection retry can replay
_RETRY_BUFFER: Final = 64 * 1024
_PENDING_LIMIT: Final = 256 * 1024  # body buffered while connecting before reading pauses
_STAGE_COUNT: Final = len(NAMES)
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_REASONS: Final = {s.value: s.phrase for s in http.HTTPStatus}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n".encode()
    return line


_STATUS_LINES: Final = {
    status: f"HTTP/1.1 {status} {reason}\r\n".encode() for status, reason in _REASONS.items()
}
_METHOD_NAMES: Final = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}
_VERSIONS: Final = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}


_SIGNATURE_HEADERS: Final = frozenset({b"authorization", b"x-amz-security-token"})
_UUID: Final = re.compile(rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


# header names as clients spell them -> lower case: a dictionary hit costs less than bytes.lower()
# called from compiled code
_LOWER_NAMES: Final[SecondSight[bytes, bytes]] = SecondSight()


# the header names the request path looks up, as the very objects its literals are (compiled, one
# literal table serves every module): a stored name that *is* the looked-up key matches without
# comparing bytes
_KNOWN_NAMES: Final = {
    name: name
    for name in (
        b"authorization",
        b"connection",
        b"content-length",
        b"date",
        b"expect",
        b"forwarded",
        b"host",
        b"idempotency-key",
        b"referer",
        b"transfer-encoding",
        b"upgrade",
        b"user-agent",
        b"x-amz-date",
        b"x-amzn-requestid",
        b"x-api-key",
        b"x-apigw-api-id",
        b"x-forwarded-for",
        b"x-forwarded-proto",
    )
}


def _lower_name(name: bytes) -> bytes:
    lname = name.lower()
    lname = _KNOWN_NAMES.get(lname, lname)
    if len(name) <= NAME_MEMO_MAX:
        _LOWER_NAMES.keep(name, lname)
    return lname


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request the gateway refuses as it reads
    it (the refusal itself is kept on the connection: httptools wraps what a callback raises)."""


def file_room() -> int:
    """How many client connections the open-file limit leaves room for: one file for the client
    and one for its backend connection each, after the files open now and a reserve of 16."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError:
        used = 64
    return max(1, (soft - used - 16) // 2)


class _Queued:
    """A pipelined request parsed while the one before it is still being answered."""

    __slots__ = ("body", "complete", "head")

    def __init__(self) -> None:
        self.head: tuple[Any, ...] = ()
        self.body: list[bytes] = []
        self.complete = False


def _backend_settings(snapshot: Snapshot) -> tuple[object, ...]:
    t = snapshot.config.throttling
    return (t.backend, t.redis_url, t.redis_timeout, t.redis_prefix)


class GatewayState:
    """What the connections of one process share. ``snapshot`` is swapped atomically on reload."""

    def __init__(self, snapshot: Snapshot, *, shared_state: str | None = None) -> None:
        self.snapshot = snapshot
        self.shared_state = shared_state
        self.throttler: Backend = make_throttler(snapshot.config.throttling, shared_state)
        self.pools = self._pools(snapshot)
        self.access_log = AccessLog(snapshot.settings.access_log.destination)
        self.metrics = Metrics()
        self.metrics.set("iamgate_config_version", snapshot.version)
        self.connections: set[DownstreamConnection] = set()
        self.timed: set[DownstreamConnection] = set()  # proxying, with a deadline
        self._ticker: asyncio.TimerHandle | None = None
        self.in_flight = 0
        self.draining = False
        self.ready = True
        self.now = _monotonic()  # updated every tick: the clock of client-connection timeouts
        self._ticks = 0
        self.file_room = file_room()
        self.max_clients = snapshot.settings.client.max_connections or self.file_room
        self._limit_logged = -_LIMIT_LOG_INTERVAL

    @staticmethod
    def _pools(snapshot: Snapshot) -> UpstreamPools:
        up = snapshot.settings.upstream
        return UpstreamPools(
            max_connections=up.max_connections,
            max_idle=up.max_idle,
            idle_timeout=up.idle_timeout,
            connect_timeout=up.connect_timeout,
        )

    def swap(self, snapshot: Snapshot) -> None:
        old = self.snapshot
        self.snapshot = snapshot
        self.metrics.set("iamgate_config_version", snapshot.version)
        if old.settings.upstream != snapshot.settings.upstream:
            self.pools.retire()
            self.pools = self._pools(snapshot)
        if _backend_settings(old) != _backend_settings(snapshot):
            self.throttler.close()
            self.throttler = make_throttler(snapshot.config.throttling, self.shared_state)
        if old.settings.access_log.destination != snapshot.settings.access_log.destination:
            self.access_log.close()
            self.access_log = AccessLog(snapshot.settings.access_log.destination)
        self.max_clients = snapshot.settings.client.max_connections or self.file_room

    def start_ticker(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._ticker is None:
            self._ticker = loop.call_later(TICK, self._tick, loop)

    def stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self._ticker = loop.call_later(TICK, self._tick, loop)
        now = _monotonic()
        self.now = now
        if self.timed:
            self.check_deadlines(now)
        self._ticks += 1
        if self._ticks >= _SWEEP_TICKS:
            self._ticks = 0
            self.check_clients(now)

    def check_deadlines(self, now: float) -> None:
        """Time out backend exchanges past their deadline. Run every ``TICK`` seconds: one sweep
        instead of a timer per request (deadlines are met within a tick)."""
        for conn in [c for c in self.timed if c.deadline <= now]:
            conn._on_timeout()

    def check_clients(self, now: float) -> None:
        """Close client connections that waited too long for a request head, the next request
        or more of a body (``gateway.client`` timeouts); one sweep a second."""
        client = self.snapshot.settings.client
        for conn in list(self.connections):
            conn.check_idle(now, client)

    def make_room(self) -> bool:
        """At the connection limit: close the connection that has waited longest for a request
        (one that never sent a byte, a slow head, an idle keep-alive). False if all are busy."""
        victim: DownstreamConnection | None = None
        for conn in self.connections:
            transport = conn.transport
            if conn.ex is not None or transport is None or transport.is_closing():
                continue
            if victim is None or conn.since < victim.since:
                victim = conn
        if victim is None:
            return False
        self.dropped(victim, "evicted")
        return True

    def dropped(self, conn: DownstreamConnection, reason: str) -> None:
        """Close a client connection that is not being answered (count it by reason)."""
        self.metrics.inc("iamgate_client_connections_closed_total", (("reason", reason),))
        conn.refused = True
        transport = conn.transport
        if transport is not None:
            transport.abort()

    def at_limit(self, refused: bool) -> None:
        """Log (at most every 10 s) that the connection limit was reached."""
        if refused:
            self.metrics.inc("iamgate_client_connections_closed_total", (("reason", "limit"),))
        if self.now - self._limit_logged >= _LIMIT_LOG_INTERVAL:
            self._limit_logged = self.now
            log.warning(
                "client connections at the limit (%d per process: gateway.client.max_connections, "
                "or what the open-file limit leaves room for): %s",
                self.max_clients,
                "refusing new connections, every one is busy"
                if refused
                else "closing the ones that waited longest for a request",
            )

    def protocol_factory(self, *, secure: bool = False) -> Callable[[], DownstreamConnection]:
        return lambda: DownstreamConnection(self, secure)


class DownstreamConnection(asyncio.Protocol, ResponseSink, Resumer):
    """One client connection."""

    def __init__(self, state: GatewayState, secure: bool = False) -> None:
        self.state = state
        self.secure = secure
        self.transport: asyncio.Transport | None = None
        self.parser = self._new_parser()
        self.peer_ip = ""
        self.forwarded_line = b""
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []  # (lower-case name, raw line)
        self.hmap: dict[bytes, bytes] = {}
        self.header_bytes = 0
        self.duplicate_host = False
        self.repeated: dict[bytes, list[bytes]] | None = None  # values of names seen twice or more
        self.settings = state.snapshot.settings  # of the request being read (its limits)
        self.in_head = False  # a request head has begun and is not complete
        self.head_received = 0  # bytes of a head that spans reads (see data_received)
        self.fresh = True  # no request answered yet on this connection
        self.since = state.now  # when the current wait (for a head, a request, a body) began
        self.refused = False  # reading has ended: a refusal is answered, or the connection dropped
        self.refusal: R.GatewayResponse | None = None  # what a parser callback refused the request with
        self.after: R.GatewayResponse | None = None  # a refusal waiting for the exchange ahead of it
        self.ex: Exchange | None = None
        self.queued: _Queued | None = None  # a pipelined request being parsed while another is answered
        self.pipeline: list[_Queued] = []  # pipelined requests waiting their turn
        self.mode = _IDLE
        self.request_complete = False
        self.closing = False
        self.paused_for_response = False
        self.paused_for_backend = False
        # proxying
        self.upstream: UpstreamConnection | None = None
        self.target: ProxyTarget | None = None  # of the request being proxied
        # the pool of the last target, while the process keeps the same pools (a reload with new
        # upstream settings replaces them): a keep-alive client calling one route again skips
        # building and hashing the (scheme, host, port) key
        self.target_pools: UpstreamPools | None = None
        self.target_pool: UpstreamPool | None = None
        self.pending: list[bytes] = []  # body (framed for the backend) that arrived before a backend
        self.pending_size = 0
        self.body_raw: list[bytes] = []  # body kept whole for a stage (SigV4's payload hash)
        self.resume_at = 0
        self.replay: list[bytes] | None = None
        self.replay_size = 0
        self.request_head = b""
        self.chunked_in = False
        self.chunked_out = False
        self.close_delimited = False
        self.response_started = False
        self.continued = False
        self.out: list[bytes] = []
        self.deadline = 0.0
        self.retried = False
        self.body_bytes = 0

    # --- asyncio.Protocol ---------------------------------------------------------------------
    def _new_parser(self) -> httptools.HttpRequestParser:
        parser = httptools.HttpRequestParser(self)
        # bytes after a request that ends the connection (Connection: close, HTTP/1.0) are never
        # read as a request: that request is answered and the connection closed, as nginx does
        parser.set_dangerous_leniencies(lenient_data_after_close=True)
        return parser

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        state = self.state
        state.start_ticker(asyncio.get_running_loop())
        self.since = state.now
        if len(state.connections) >= state.max_clients:
            room = state.make_room()
            state.at_limit(not room)
            if not room:
                self.refused = True
                transport.close()
                return
        peer = transport.get_extra_info("peername")
        ip = peer[0] if isinstance(peer, tuple) and peer else "127.0.0.1"
        if ip.startswith("::ffff:") and "." in ip:
            ip = ip[7:]
        self.peer_ip = ip
        self.forwarded_line = b"X-Forwarded-For: %b\r\n" % ip.encode()  # when the client sent none
        self.state.connections.add(self)
        self.state.metrics.set("iamgate_connections", len(self.state.connections))
        if self.state.draining:
            self.closing = True

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return  # reading ended: the refusal is being answered, the connection closed
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # answered in on_headers_complete
        except httptools.HttpParserError as exc:
            self._parse_error(exc)
            return
        if self.in_head:  # a head spans reads: bound what the parser holds of it
            self._head_spans(len(data))

    def _head_spans(self, n: int) -> None:
        """A head is still incomplete after a read of ``n`` bytes. httptools keeps a header
        that is not complete yet to itself, so its size is only known from the bytes read: every
        read after the one the head began in counts (that one may end another request's body),
        and the head is refused once they pass its limits."""
        if self.head_received < 0:
            self.head_received = 0
            return
        self.head_received += n
        settings = self.settings
        if self.head_received > settings.max_url_bytes + settings.max_header_bytes + _HEAD_SLACK:
            self.refusal = R.gateway_error(R.HEADERS_TOO_LARGE, close=True)
            self._parse_error(None)

    def connection_lost(self, exc: Exception | None) -> None:
        state = self.state
        state.connections.discard(self)
        state.metrics.set("iamgate_connections", len(state.connections))
        self._cancel_timer()
        if self.upstream is not None:
            self.upstream.abort()
            self.upstream = None
        ex = self.ex
        if ex is not None:
            if not ex.status or not self.response_started:
                ex.status = ex.status or 499  # the client went away before the response
            ex.extra = {**(ex.extra or {}), "error.clientClosed": True}
            self._finish(ex, aborted=True)
        self.transport = None

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    # --- httptools callbacks ------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.hmap = {}
        self.header_bytes = 0
        self.duplicate_host = False
        self.repeated = None
        self.in_head = True
        self.head_received = -1  # began in this read (see _head_spans)
        self.settings = self.state.snapshot.settings
        if not self.fresh:  # a first request's head is timed from the connection's start
            self.since = self.state.now
        if self.ex is not None:  # a pipelined request behind one still being answered: queue it
            self.queued = _Queued()
            return
        self.queued = None
        self.request_complete = False
        self.body_bytes = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.settings.max_url_bytes:
            self._refuse_head(R.gateway_error(R.URI_TOO_LONG, close=True))

    def on_header(self, name: bytes, value: bytes) -> None:
        lname = _LOWER_NAMES.found.get(name)
        if lname is None:
            lname = _lower_name(name)
        headers = self.headers
        headers.append((lname, name + b": " + value + b"\r\n"))  # the raw line, for forwarding
        self.header_bytes += len(name) + len(value) + 4
        settings = self.settings
        if self.header_bytes > settings.max_header_bytes or len(headers) > settings.max_header_count:
            self._refuse_head(R.gateway_error(R.HEADERS_TOO_LARGE, close=True))
        prev = self.hmap.get(lname)
        if prev is None:
            self.hmap[lname] = value
        else:  # a repeated name: its values are joined once the head is complete (linear time)
            if lname == b"host":
                self.duplicate_host = True
            repeated = self.repeated
            if repeated is None:
                self.repeated = {lname: [prev, value]}
            elif lname in repeated:
                repeated[lname].append(value)
            else:
                repeated[lname] = [prev, value]

    def _refuse_head(self, response: R.GatewayResponse) -> None:
        """Stop parsing: the request is refused while its head is read (answered by _parse_error)."""
        self.refusal = response
        raise _Refused

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.repeated is not None:
            hmap = self.hmap
            for lname, values in self.repeated.items():
                hmap[lname] = b", ".join(values)
        parser = self.parser
        raw_method = parser.get_method()
        method = _METHOD_NAMES.get(raw_method) or raw_method.decode("ascii")
        keep_alive = parser.should_keep_alive()
        hmap = self.hmap
        # llhttp accepts HTTP/0.9, 1.0, 1.1 and 2.0, and keeps a request without a Connection
        # header alive only for 1.1: then the version is known without get_http_version(),
        # which formats a new string on every call (a tenth of the parser's cost per request)
        if keep_alive and b"connection" not in hmap:
            version = "HTTP/1.1"
        else:
            raw_version = parser.get_http_version()
            version = _VERSIONS.get(raw_version) or "HTTP/" + raw_version
        # llhttp's upgrade flag needs an Upgrade header or CONNECT
        upgrade = (b"upgrade" in hmap or method == "CONNECT") and parser.should_upgrade()
        queued = self.queued
        if queued is not None:
            queued.head = (
                self.url,
                self.headers,
                self.hmap,
                self.header_bytes,
                self.duplicate_host,
                method,
                version,
                keep_alive,
                upgrade,
            )
            self.pipeline.append(queued)
            if self.transport is not None and not self.paused_for_response:
                self.transport.pause_reading()  # one queued request is enough; the rest waits in the socket
                self.paused_for_response = True
            return
        self._begin(method, version, keep_alive, upgrade)

    def _begin(self, method: str, version: str, keep_alive: bool, upgrade: bool) -> None:
        state = self.state
        url = self.url
        # (a first byte other than '/' is rare: the test before startswith() skips a method call)
        if url and url[0] != 47 and url.startswith((b"http://", b"https://")):  # absolute-form: keep the path
            start = url.find(b"//") + 2
            end = min(
                (i for i in (url.find(c, start) for c in (b"/", b"?", b"#")) if i != -1), default=len(url)
            )
            url = url[end:] if url[end : end + 1] == b"/" else b"/" + url[end:]
        if b"?" in url:  # an operator, not a method call (partition), on the common path
            path, _, query = url.partition(b"?")
        else:
            path, query = url, b""
        keep_alive = keep_alive and not self.closing and not state.draining
        ex = Exchange(
            state.snapshot,
            method,
            path,
            query,
            self.headers,
            self.hmap,
            version,
            keep_alive,
            self.peer_ip,
            self.secure,
        )
        ex.gateway = state
        self.ex = ex
        self.response_started = False
        self.continued = False
        hmap = self.hmap
        self.chunked_in = b"transfer-encoding" in hmap
        state.in_flight += 1
        client_id = hmap.get(b"x-amzn-requestid")
        if client_id is not None and _UUID.fullmatch(client_id):  # a client may set its own UUID
            ex.request_id = client_id.decode("ascii").lower()
        if (
            upgrade or self.duplicate_host or b"host" not in hmap or self.chunked_in
        ):  # only then can there be a problem (the common case skips a call)
            problem = self._head_problem(version, upgrade)
            if problem is not None:
                ex.keep_alive = False
                self._respond(ex, problem)
                return
        self._run_stages(ex, 0)

    def _run_stages(self, ex: Exchange, start: int) -> None:
        """Run the stages from ``start``: on to the integration, or a response, or wait (for the
        body, or for an asynchronous stage) and come back here."""
        for i in range(start, _STAGE_COUNT):
            try:
                result = run_stage(i, ex)
            except Exception:  # a bug must never take the connection down silently or allow
                log.exception("stage failed for request %s", ex.request_id)
                result = R.gateway_error(R.API_CONFIGURATION_ERROR)
            if result is None:
                continue
            if type(result) is R.GatewayResponse:
                self._respond(ex, result)
                return
            if result is NEED_BODY:
                if ex.body is not None:  # a stage must not ask twice
                    log.error("stage %s asked for the body twice (request %s)", NAMES[i], ex.request_id)
                    self._respond(ex, R.gateway_error(R.API_CONFIGURATION_ERROR))
                    return
                if self.request_complete:
                    ex.body = b""
                    self._run_stages(ex, i)
                    return
                self.mode = _BUFFERING
                self.since = self.state.now
                self.resume_at = i
                self._continue()  # a client waiting for 100 Continue sends the body only then
                return
            self.mode = _WAITING
            if isinstance(result, Later):  # the Redis throttle: answers by calling stage_answered
                result.attach(self, i)
                return
            # what is left of a stage's answers: an awaitable (an authorizer)
            task = asyncio.ensure_future(cast("Awaitable[R.GatewayResponse | None]", result))
            task.add_done_callback(functools.partial(self._stage_done, ex, i))
            return
        self._integrate(ex)

    def _stage_done(self, ex: Exchange, index: int, task: asyncio.Future[R.GatewayResponse | None]) -> None:
        if task.cancelled():
            result: R.GatewayResponse | None = R.gateway_error(R.API_CONFIGURATION_ERROR)
        elif (exc := task.exception()) is not None:
            if ex is self.ex and self.mode == _WAITING:
                log.error("stage failed for request %s", ex.request_id, exc_info=exc)
            result = R.gateway_error(R.API_CONFIGURATION_ERROR)
        else:
            result = task.result()
        self.stage_answered(ex, index, result)

    def stage_answered(self, ex: Exchange, index: int, result: R.GatewayResponse | None) -> None:
        """(Resumer) stage ``index`` answered later: go on from there."""
        if ex is not self.ex or self.mode != _WAITING:
            return  # the client went away, or the request was already answered
        self.mode = _IDLE
        if result is not None:
            self._respond(ex, result)
            return
        self._run_stages(ex, index + 1)

    def _integrate(self, ex: Exchange) -> None:
        route = ex.route
        assert route is not None
        integration = route.integration
        if isinstance(integration, MockIntegration):
            self._respond(ex, R.GatewayResponse(integration.status, integration.body, integration.headers))
            return
        self._start_proxy(ex)

    def on_body(self, body: bytes) -> None:
        if self.queued is not None:
            self.queued.body.append(body)
            return
        self.body_bytes += len(body)
        settings = self.ex.snapshot.settings if self.ex is not None else self.state.snapshot.settings
        limit = settings.max_request_body
        mode = self.mode
        if limit is not None and self.body_bytes > limit and mode in (_PENDING, _PROXY, _WAITING, _BUFFERING):
            self._fail_request(R.gateway_error(R.REQUEST_TOO_LARGE), "request-too-large")
            return
        if mode == _BUFFERING:
            self.since = self.state.now  # gateway.client.body_timeout runs between reads
            if self.body_bytes > settings.max_buffered_body:
                self._fail_request(R.gateway_error(R.REQUEST_TOO_LARGE), "request-too-large")
                return
            self.body_raw.append(body)
            mode = _PENDING  # and keep it for the backend too
        if mode == _PROXY:
            data = b"%x\r\n%b\r\n" % (len(body), body) if self.chunked_in else body
            self._keep_for_replay(data)
            assert self.upstream is not None
            self.upstream.write(data)
        elif mode in (_PENDING, _WAITING):
            data = b"%x\r\n%b\r\n" % (len(body), body) if self.chunked_in else body
            self.pending.append(data)
            self.pending_size += len(data)
            if self.pending_size > _PENDING_LIMIT and self.mode != _BUFFERING and self.transport is not None:
                self.transport.pause_reading()
                self.paused_for_backend = True

    def on_message_complete(self) -> None:
        if self.queued is not None:
            self.queued.complete = True
            self.queued = None
            return
        self.request_complete = True
        if self.mode == _PROXY:
            upstream = self.upstream
            assert upstream is not None
            if self.chunked_in:
                self._keep_for_replay(b"0\r\n\r\n")
                upstream.write(b"0\r\n\r\n")
            upstream.end_request()
        elif self.mode in (_PENDING, _WAITING, _BUFFERING) and self.chunked_in:
            self.pending.append(b"0\r\n\r\n")
        if self.mode == _BUFFERING and self.ex is not None:
            ex = self.ex
            ex.body = b"".join(self.body_raw)
            self.body_raw = []
            self.mode = _IDLE
            self._run_stages(ex, self.resume_at)
        if self.ex is not None and self.transport is not None:
            # the response is still being produced: read no further request until it is done
            self.transport.pause_reading()
            self.paused_for_response = True

    # --- requests we refuse before the stages ------------------------------------------------
    def _head_problem(self, version: str, upgrade: bool) -> R.GatewayResponse | None:
        if upgrade:
            return R.gateway_error(
                R.BAD_REQUEST, "Bad Request: protocol upgrades are not supported", close=True
            )
        if self.duplicate_host or (version == "HTTP/1.1" and b"host" not in self.hmap):
            return R.gateway_error(
                R.BAD_REQUEST, "Bad Request: exactly one Host header is required", close=True
            )
        transfer = self.hmap.get(b"transfer-encoding")
        if transfer is not None and (transfer.strip().lower() != b"chunked" or version != "HTTP/1.1"):
            # only chunked framing is read; any other coding (gzip, "chunked;q=1", "gzip, chunked")
            # or chunked in HTTP/1.0 would be forwarded as something the backend frames otherwise
            shown = transfer.decode("latin-1")[:64]
            return R.gateway_error(
                R.BAD_REQUEST,
                f"Bad Request: Transfer-Encoding {shown!r} is not supported (only chunked, in HTTP/1.1)",
                close=True,
            )
        return None

    def _parse_error(self, exc: Exception | None) -> None:
        """The bytes read are not a request the gateway accepts (malformed, or refused by a limit
        while read): nothing more is read from this connection; the refusal is answered in turn
        (after the responses still owed to earlier pipelined requests) and the connection closed."""
        transport = self.transport
        if self.refused or transport is None or transport.is_closing():
            return  # already ending: the request was refused on its head, or the client left
        self.refused = True
        refusal = self.refusal
        self.refusal = None
        if refusal is None:
            refusal = R.gateway_error(R.BAD_REQUEST, f"Bad Request: {exc}", close=True)
        self.parser = self._new_parser()  # drops whatever the parser held of the bad request
        ex = self.ex
        if ex is not None and not self.request_complete and self.queued is None:
            self._fail_request(refusal, "malformed request body")  # the request being answered
        elif ex is not None:  # an earlier request is still being answered: this one's turn comes
            self.after = refusal
            if not self.paused_for_response:
                transport.pause_reading()
                self.paused_for_response = True
        else:
            self._refuse(refusal)

    def _refuse(self, response: R.GatewayResponse) -> None:
        """Answer a request refused before it became an exchange, and close."""
        ex = Exchange(
            self.state.snapshot, "-", b"", b"", [], {}, "HTTP/1.1", False, self.peer_ip, self.secure
        )
        self.ex = ex
        self.response_started = False
        self.state.in_flight += 1
        self._respond(ex, response)

    # --- gateway responses ----------------------------------------------------------------------
    def _respond(self, ex: Exchange, response: R.GatewayResponse) -> None:
        transport = self.transport
        if (
            response.close
            or self.closing
            or self.state.draining
            or (not self.request_complete and self._body_outstanding())
        ):
            ex.keep_alive = False
        status = response.status
        parts = [_status_line(status), _date_header()]
        for name, value in response.headers:
            parts.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
        body = response.body
        bodiless = status in (204, 304) or status < 200
        if bodiless:
            body = b""
        else:
            parts.append(b"Content-Length: %d\r\n" % len(body))
        parts.append(
            b"x-amzn-RequestId: %b\r\nx-amz-apigw-id: %b\r\n"
            % (ex.request_id.encode(), ex.extended_id.encode())
        )
        if response.error_type:
            parts.append(b"x-amzn-ErrorType: %b\r\n" % response.error_type.encode())
        if not ex.keep_alive:
            parts.append(b"Connection: close\r\n")
        parts.append(b"\r\n")
        if ex.method != "HEAD":
            parts.append(body)
        ex.status = response.status
        ex.response_length = len(body)
        ex.error_message = response.message
        ex.response_type = response.response_type
        ex.error_type = response.error_type
        self.mode = _RESPONDED
        self.response_started = True
        if transport is not None:
            transport.write(b"".join(parts))
        self._finish(ex)

    def _body_outstanding(self) -> bool:
        """Whether much of the request body is still to come (then closing beats reading it)."""
        if self.hmap.get(b"transfer-encoding") is not None:
            return True
        length = self.hmap.get(b"content-length")
        try:
            return length is not None and int(length) - self.body_bytes > 65536
        except ValueError:
            return True

    def _finish(self, ex: Exchange, *, aborted: bool = False) -> None:
        """The response is complete (or abandoned): log, count, and get ready for the next."""
        if ex is not self.ex:
            return
        state = self.state
        ex.end = _perf_counter()
        self.ex = None
        self.mode = _IDLE
        self.upstream = None
        if self.pending:
            self.pending = []
        self.pending_size = 0
        if self.body_raw:
            self.body_raw = []
        self.replay = None
        state.in_flight -= 1
        try:
            self._record(ex)
        except Exception:  # logging must never break serving
            log.exception("access log failed for request %s", ex.request_id)
        self.response_started = False
        transport = self.transport
        if transport is None or aborted:
            return
        if not ex.keep_alive or self.closing or state.draining:
            self.refused = True
            transport.close()
            return
        self.fresh = False
        self.since = state.now  # now waiting for the next request
        if self.paused_for_backend:
            self.paused_for_backend = False
            transport.resume_reading()
        if self.pipeline:
            self._start_queued(self.pipeline.pop(0))
            return
        if self.after is not None:  # a refused request waited for the ones before it
            refusal, self.after = self.after, None
            self._refuse(refusal)
            return
        if self.paused_for_response:
            self.paused_for_response = False
            transport.resume_reading()

    def _start_queued(self, queued: _Queued) -> None:
        """Answer the next pipelined request, as if its bytes had just been parsed."""
        (
            self.url,
            self.headers,
            self.hmap,
            self.header_bytes,
            self.duplicate_host,
            method,
            version,
            keep_alive,
            upgrade,
        ) = queued.head
        self.request_complete = False
        self.body_bytes = 0
        self._begin(method, version, keep_alive, upgrade)
        for chunk in queued.body:
            if self.ex is None:
                break
            self.on_body(chunk)
        if queued.complete:
            self.on_message_complete()

    def _record(self, ex: Exchange) -> None:
        state = self.state
        api = ex.api.id if ex.api is not None else "-"
        stage = ex.stage.name if ex.stage is not None else "-"
        # _value_: Enum.value is a descriptor call on CPython 3.11, the attribute behind it is not
        decision = ex.decision.effect._value_ if ex.decision is not None else "none"
        state.metrics.request(api, stage, ex.status, decision, ex.end - ex.start, ex.integration_latency)
        if ex.would_deny:
            state.metrics.inc("iamgate_policy_would_deny_total", (("api", api), ("stage", stage)))
            log.warning(
                "report-only policy would deny request %s: %s %s (%s)",
                ex.request_id,
                ex.method,
                ex.arn,
                ", ".join(str(r) for r in ex.decision.determining) if ex.decision else "",
            )
        if state.access_log.enabled:
            template = ex.stage.access_log_format if ex.stage is not None else None
            state.access_log.log(ex, template or ex.snapshot.settings.access_log.format)

    # --- proxying ------------------------------------------------------------------------------
    def _continue(self) -> None:
        """Answer ``Expect: 100-continue`` once, when the gateway is ready for the body."""
        if (
            not self.continued
            and not self.request_complete
            and b"100-continue" in (self.hmap.get(b"expect") or b"").lower()
            and self.transport is not None
        ):
            self.continued = True
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _start_proxy(self, ex: Exchange) -> None:
        route, stage = ex.route, ex.stage
        assert route is not None  # route ran first
        assert stage is not None
        target = route.target(stage)
        if target.error is not None:
            log.error(
                "request %s: integration of %s %s: %s",
                ex.request_id,
                route.method,
                route.resource_path,
                target.error,
            )
            self._respond(ex, R.gateway_error(R.API_CONFIGURATION_ERROR))
            return
        path = target.path(ex.params or {}, route.greedy)
        self.request_head = self._request_head(ex, target, path)
        self.retried = False
        self.response_started = False
        self.chunked_out = False
        self.close_delimited = False
        self.out = []
        self.replay = [] if ex.method in _IDEMPOTENT or b"idempotency-key" in ex.hmap else None
        self.replay_size = 0
        ex.integration_start = _perf_counter()
        self.deadline = _monotonic() + route.timeout
        state = self.state
        state.timed.add(self)
        if b"expect" in ex.hmap:
            self._continue()
        pools = state.pools
        pool = self.target_pool
        if pool is None or target is not self.target or pools is not self.target_pools:
            pool = pools.get(target.scheme, target.host, target.port)
            self.target_pools = pools
            self.target_pool = pool
        self.target = target
        conn = pool.take()
        if conn is not None:
            self._attach(conn)
        else:
            self.mode = _PENDING
            self._connect(pool.open())

    def _request_head(self, ex: Exchange, target: ProxyTarget, path: str) -> bytes:
        hmap = ex.hmap
        target_line = path if not ex.query else path + "?" + ex.query.decode("latin-1")
        parts = [f"{ex.method} {target_line} HTTP/1.1\r\nHost: {target.host_header}\r\n".encode("latin-1")]
        dropped = ex.snapshot.request_drop
        connection = hmap.get(b"connection")
        if connection is not None:
            dropped = dropped | connection_tokens(connection)
        if ex.identity is not None:  # a verified SigV4 signature is not passed on (as AWS)
            dropped = dropped | _SIGNATURE_HEADERS
        mapped = ex.route.integration.request_parameters if ex.route is not None else ()  # type: ignore[union-attr]
        if mapped:
            dropped = dropped | {name.lower().encode() for name, _ in mapped}
        for lname, line in ex.headers:
            if lname not in dropped:
                parts.append(line)
        for name, source in mapped:
            value = request_parameter(ex, source)
            if value is not None and "\r" not in value and "\n" not in value:
                parts.append(f"{name}: {value}\r\n".encode("utf-8", "replace"))
        forwarded = hmap.get(b"x-forwarded-for")
        if forwarded:
            parts.append(b"X-Forwarded-For: %b, %b\r\n" % (forwarded, self.peer_ip.encode()))
        else:
            parts.append(self.forwarded_line)
        parts.append(b"X-Forwarded-Proto: https\r\n" if ex.secure else b"X-Forwarded-Proto: http\r\n")
        transfer = hmap.get(b"transfer-encoding")
        length = hmap.get(b"content-length")
        self.chunked_in = transfer is not None
        if self.chunked_in:
            parts.append(b"Transfer-Encoding: chunked\r\n")
        elif length is not None:
            parts.append(b"Content-Length: %b\r\n" % length.strip())
        parts.append(b"\r\n")
        return b"".join(parts)

    def _connect(self, opening: Coroutine[Any, Any, UpstreamConnection]) -> None:
        task = asyncio.ensure_future(opening)
        ex = self.ex
        task.add_done_callback(lambda t: self._connected(t, ex))

    def _connected(self, task: asyncio.Future[UpstreamConnection], ex: Exchange | None) -> None:
        if ex is None or ex is not self.ex or self.mode != _PENDING:  # gave up meanwhile
            if not task.cancelled() and task.exception() is None:
                conn = task.result()
                conn.pool.release(conn)  # nobody needs it now: keep it for the next request
            return
        if task.cancelled():
            self._integration_failed(ex, "connect", "connection attempt cancelled")
            return
        exc = task.exception()
        if exc is not None:
            kind = "pool-timeout" if isinstance(exc, PoolTimeout) else "connect"
            self._integration_failed(ex, kind, str(exc) or type(exc).__name__)
            return
        self._attach(task.result())

    def _attach(self, conn: UpstreamConnection) -> None:
        ex = self.ex
        assert ex is not None
        self.upstream = conn
        if self.replay is not None and self.retried:
            data = b"".join([self.request_head, *self.replay])
        elif self.pending:
            for chunk in self.pending:
                self._keep_for_replay(chunk)
            data = b"".join([self.request_head, *self.pending])
            self.pending = []
        else:  # the usual case: a request without a body, or whose body is still to come
            data = self.request_head
        self.pending_size = 0
        self.mode = _PROXY
        # complete: the body (if any) was all parsed and is in ``data``; otherwise
        # on_message_complete tells the connection when its last byte is written
        conn.start(self, data, head_request=ex.method == "HEAD", complete=self.request_complete)
        if self.paused_for_backend and self.transport is not None:
            self.paused_for_backend = False
            self.transport.resume_reading()

    def _keep_for_replay(self, data: bytes) -> None:
        replay = self.replay
        if replay is None:
            return
        self.replay_size += len(data)
        if self.replay_size > _RETRY_BUFFER:
            self.replay = None  # too big to keep: this request will not be retried
        else:
            replay.append(data)

    # upstream -> client (ResponseSink)
    def upstream_head(self, status: int, head: UpstreamHead) -> None:
        ex = self.ex
        if ex is None:
            return
        if self.closing or self.state.draining or (not self.request_complete and self._body_outstanding()):
            ex.keep_alive = False  # (an early answer with much body to come: closing beats reading it)
        self.deadline = _monotonic() + self._idle_timeout()  # now an idle timeout between reads
        # the head's pieces go straight into ``out``: one join when the read is written
        parts = self.out
        parts.append(_status_line(status))
        parts.append(_date_header())
        if head.tokens:  # a Connection header names more hop-by-hop headers
            tokens = head.tokens
            parts.extend(
                [line for lname, line in zip(head.names, head.lines, strict=True) if lname not in tokens]
            )
        else:
            parts.extend(head.lines)
        if head.length is not None and not head.chunked:
            parts.append(b"Content-Length: " + head.length + b"\r\n")
        elif not (ex.method == "HEAD" or status in (204, 304)):
            if ex.http_version == "HTTP/1.1":
                parts.append(b"Transfer-Encoding: chunked\r\n")
                self.chunked_out = True
            else:
                self.close_delimited = True
                ex.keep_alive = False
        parts.append(b"x-amzn-RequestId: ")
        parts.append(ex.request_id.encode())
        parts.append(b"\r\nx-amz-apigw-id: ")
        parts.append(ex.extended_id.encode())
        parts.append(b"\r\n\r\n" if ex.keep_alive else b"\r\nConnection: close\r\n\r\n")
        self.response_started = True
        ex.status = status
        ex.integration_status = status

    def upstream_body(self, data: bytes) -> None:
        ex = self.ex
        if ex is None or not data:
            return
        ex.response_length += len(data)
        if self.chunked_out:
            self.out.append(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self.out.append(data)

    def upstream_flush(self) -> None:
        if self.out and self.transport is not None:
            self.transport.write(b"".join(self.out) if len(self.out) > 1 else self.out[0])
        self.out = []
        if self.response_started:
            self.deadline = _monotonic() + self._idle_timeout()

    def upstream_done(self) -> None:
        ex = self.ex
        if ex is None:
            return
        self.state.timed.discard(self)
        out = self.out
        if self.chunked_out:
            out.append(b"0\r\n\r\n")
        if out:
            if self.transport is not None:
                self.transport.write(b"".join(out) if len(out) > 1 else out[0])
            self.out = []
        ex.integration_latency = _perf_counter() - ex.integration_start
        self.upstream = None
        self._finish(ex)

    def upstream_failed(self, exc: BaseException | None, retriable: bool) -> None:
        ex = self.ex
        if ex is None:
            return
        self.upstream = None
        if self.response_started:
            self._abort(ex, f"backend connection lost mid-response: {exc or 'closed'}")
            return
        target = self.target
        if retriable and not self.retried and self.replay is not None and target is not None:
            self.retried = True
            self.state.metrics.inc("iamgate_upstream_retries_total")
            self.mode = _PENDING
            pool = self.state.pools.get(target.scheme, target.host, target.port)
            self._connect(pool.open())
            return
        kind = "reset" if exc is not None else "closed"
        if isinstance(exc, httptools.HttpParserError):
            kind = "invalid-response"
        self._integration_failed(ex, kind, str(exc) if exc else "backend closed the connection")

    def upstream_pause_request(self) -> None:
        if self.transport is not None and not self.paused_for_backend:
            self.paused_for_backend = True
            self.transport.pause_reading()

    def upstream_resume_request(self) -> None:
        if self.transport is not None and self.paused_for_backend:
            self.paused_for_backend = False
            if not self.paused_for_response:
                self.transport.resume_reading()

    # --- failures and timeouts ------------------------------------------------------------------
    def _integration_failed(self, ex: Exchange, kind: str, detail: str) -> None:
        self._cancel_timer()
        api = ex.api.id if ex.api is not None else "-"
        self.state.metrics.inc("iamgate_upstream_errors_total", (("api", api), ("kind", kind)))
        ex.integration_latency = _perf_counter() - ex.integration_start
        ex.extra = {**(ex.extra or {}), "integrationErrorMessage": detail}
        self._drop_upstream()
        response = R.gateway_error(R.INTEGRATION_TIMEOUT if kind == "timeout" else R.INTEGRATION_FAILURE)
        if ex.snapshot.settings.expose_integration_errors:  # a debugging aid: why, for the caller
            reason = f"{kind}: {detail}".replace("\r", " ").replace("\n", " ")[:256]
            response = R.GatewayResponse(
                response.status,
                response.body,
                (*response.headers, ("x-iamgate-integration-error", reason)),
                response.response_type,
                response.error_type,
                response.message,
                response.close,
            )
        self._respond(ex, response)

    def _fail_request(self, response: R.GatewayResponse, kind: str) -> None:
        ex = self.ex
        if ex is None:
            return
        self._cancel_timer()
        self._drop_upstream()
        if self.response_started:
            self._abort(ex, kind)
            return
        ex.keep_alive = False
        self._respond(ex, response)

    def _drop_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.abort()
            self.upstream = None
        self.mode = _RESPONDED

    def _abort(self, ex: Exchange, detail: str) -> None:
        """Past the point of a clean error response: cut the client connection."""
        self._cancel_timer()
        self._drop_upstream()
        ex.extra = {**(ex.extra or {}), "integrationErrorMessage": detail}
        ex.keep_alive = False
        transport = self.transport
        self._finish(ex, aborted=True)
        if transport is not None:
            transport.abort()

    def _idle_timeout(self) -> float:
        ex = self.ex
        return ex.route.timeout if ex is not None and ex.route is not None else 29.0

    def _on_timeout(self) -> None:
        """The exchange's deadline passed (checked by :meth:`GatewayState.check_deadlines`)."""
        self.state.timed.discard(self)
        ex = self.ex
        if ex is None:
            return
        if self.response_started:
            self.state.metrics.inc(
                "iamgate_upstream_errors_total", (("api", ex.api.id if ex.api else "-"), ("kind", "timeout"))
            )
            self._abort(ex, "backend stalled mid-response")
            return
        self._integration_failed(ex, "timeout", "Endpoint request timed out")

    def _cancel_timer(self) -> None:
        self.state.timed.discard(self)

    def check_idle(self, now: float, client: ClientSettings) -> None:
        """Close this connection if it waited too long: for a request head (from the connection's
        start, or from the head's first byte), for the next request on a kept-alive connection,
        or for more of a body the gateway holds. Requests being answered have their own deadline."""
        ex = self.ex
        if ex is None:
            if self.in_head or self.fresh:
                if now - self.since > client.header_timeout:
                    self.state.dropped(self, "header-timeout")
            elif now - self.since > client.keepalive_timeout:
                self.state.dropped(self, "keepalive-timeout")
        elif self.mode == _BUFFERING and now - self.since > client.body_timeout:
            self.state.metrics.inc("iamgate_client_connections_closed_total", (("reason", "body-timeout"),))
            self.refused = True
            self._fail_request(R.gateway_error(R.REQUEST_TIMEOUT, close=True), "body-timeout")

    # --- shutdown -----------------------------------------------------------------------------
    def drain(self) -> None:
        """Stop after the current request (or now, if idle)."""
        self.closing = True
        if self.ex is None and self.transport is not None:
            self.transport.close()
