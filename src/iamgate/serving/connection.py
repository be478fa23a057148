"""One client connection: HTTP/1.1 read with llhttp (through httptools), requests answered one
at a time in order (pipelined ones wait their turn), bodies streamed on, the client timeouts.

Built directly on asyncio protocols and uvloop: the measurements in docs/benchmarks.md show that
the request path's overhead, not the policy, decides a Python proxy's throughput, so each request
is handled with callbacks and no task or coroutine unless a stage has to wait.

A request, once its head is complete (:meth:`DownstreamConnection.on_headers_complete`): an
:class:`~iamgate.pipeline.exchange.Exchange` is made, the stages run
(:func:`~iamgate.pipeline.runner.run_stages`, with this connection as their host), then the
gateway answers itself (an error, a denial, MOCK) or the HTTP proxy
(:class:`~iamgate.integrations.proxy.HttpProxy`) takes it; either way the request ends in
:meth:`DownstreamConnection._finish`, which records it (metrics, access log) and goes on with the
next one. While a request is answered, the connection reads no further requests: a pipelined
request whose head was read meanwhile is queued (:class:`_Queued`), and started in turn.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Final

import httptools

from iamgate.clock import date_header, perf_counter
from iamgate.config.model import ClientSettings, MockIntegration
from iamgate.integrations.mock import mock_response
from iamgate.integrations.proxy import LAST_CHUNK, Client, HttpProxy
from iamgate.pipeline import responses as R
from iamgate.pipeline.exchange import Exchange
from iamgate.pipeline.later import Later
from iamgate.pipeline.runner import StageHost, run_stages
from iamgate.policy.memo import SecondSight
from iamgate.serving.gateway_responses import customise
from iamgate.tls.session import TlsSession
from iamgate.upstream.headers import NAME_MEMO_MAX

if TYPE_CHECKING:
    from collections.abc import Callable

    from iamgate.config.domains import TlsChoice
    from iamgate.serving.state import GatewayState

__all__ = ["DownstreamConnection", "connection_factory", "tls_connection"]

log: Final = logging.getLogger("iamgate")

# what the connection is doing with the request being answered
_IDLE: Final = 0  # no request, or its answer is written
_RESPONDED: Final = 1  # answered (or failed); the request's end is near
_PROXY: Final = 2  # the HTTP proxy has it
_WAITING: Final = 3  # a stage answers later
_BUFFERING: Final = 4  # a stage needs the whole body: reading it
_HEAD_SLACK: Final = 4096  # request-line and whitespace bytes a head may hold beyond its limits
_METHOD_NAMES: Final = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}
_VERSIONS: Final = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}
_UUID: Final = re.compile(rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# header names as clients spell them -> lower case: a dictionary hit costs less than bytes.lower()
# called from compiled code
_LOWER_NAMES: Final[SecondSight[bytes, bytes]] = SecondSight()


def _lower_name(name: bytes) -> bytes:
    lname = name.lower()
    if len(name) <= NAME_MEMO_MAX:
        _LOWER_NAMES.keep(name, lname)
    return lname


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request the gateway refuses as it reads
    it (the refusal itself is kept on the connection: httptools wraps what a callback raises)."""


class _Head:
    """A request head as parsed: what an exchange begins from."""

    __slots__ = ("duplicate_host", "headers", "hmap", "keep_alive", "method", "upgrade", "url", "version")

    def __init__(
        self,
        url: bytes,
        headers: list[tuple[bytes, bytes]],
        hmap: dict[bytes, bytes],
        duplicate_host: bool,
        method: str,
        version: str,
        keep_alive: bool,
        upgrade: bool,
    ) -> None:
        self.url = url
        self.headers = headers  # (lower-case name, raw line)
        self.hmap = hmap
        self.duplicate_host = duplicate_host
        self.method = method
        self.version = version
        self.keep_alive = keep_alive
        self.upgrade = upgrade


class _Queued:
    """A pipelined request whose head was complete while the one before it was still being
    answered: its head, the body read so far, whether all of it was read."""

    __slots__ = ("body", "complete", "head")

    def __init__(self, head: _Head) -> None:
        self.head = head
        self.body: list[bytes] = []
        self.complete = False


def connection_factory(state: GatewayState, *, secure: bool = False) -> Callable[[], DownstreamConnection]:
    """The protocol factory of a listening socket (``loop.create_server``)."""
    return lambda: DownstreamConnection(state, secure)


def tls_connection(state: GatewayState, choice: TlsChoice) -> DownstreamConnection:
    """A client connection whose TLS handshake was made with ``choice`` (serving.tls)."""
    conn = DownstreamConnection(state, True)
    conn.tls_choice = choice
    return conn


class DownstreamConnection(asyncio.Protocol, StageHost, Client):
    """One client connection."""

    def __init__(self, state: GatewayState, secure: bool = False) -> None:
        self.state = state
        self.secure = secure
        self.tls_choice: TlsChoice | None = None  # the context of a TLS handshake
        self.tls: TlsSession | None = None  # its domain and client certificate, for requests
        self.transport: asyncio.Transport | None = None
        self.parser = self._new_parser()
        self.peer_ip = ""
        self.proxy = HttpProxy(self, state.timed)
        # the head being read
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []  # (lower-case name, raw line)
        self.hmap: dict[bytes, bytes] = {}
        self.header_bytes = 0
        self.duplicate_host = False
        self.repeated: dict[bytes, list[bytes]] | None = None  # values of names seen twice or more
        self.settings = state.snapshot.settings  # of the request being read (its limits)
        self.in_head = False  # a request head has begun and is not complete
        self.head_received = 0  # bytes of a head that spans reads (see data_received)
        # the connection
        self.fresh = True  # no request answered yet on this connection
        self.since = state.now  # when the current wait (for a head, a request, a body) began
        self.refused = False  # reading has ended: a refusal is answered, or the connection dropped
        self.refusal: R.GatewayResponse | None = None  # what a parser callback refused the request with
        self.after: R.GatewayResponse | None = None  # a refusal waiting for the exchange ahead of it
        self.closing = False
        self.paused_for_response = False
        self.paused_for_backend = False
        # the request being answered, and the ones waiting
        self.ex: Exchange | None = None
        self.queued: _Queued | None = None  # a queued request whose body is being read
        self.pipeline: list[_Queued] = []  # pipelined requests waiting their turn
        self.starting = False  # in the loop that starts queued requests (see _next)
        self.mode = _IDLE
        self.request_complete = False
        self.response_started = False
        self.continued = False
        self.chunked_in = False
        self.body_bytes = 0
        # body kept whole for a stage (SigV4's payload hash, request validation)
        self.body_raw: list[bytes] = []
        self.resume_at = 0

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
        choice = self.tls_choice
        if choice is not None:
            der = None
            if choice.mtls:  # verified in the handshake: the truststore, dates, clientAuth
                ssl_object = transport.get_extra_info("ssl_object")
                der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
                if der is None:  # cannot happen with CERT_REQUIRED; fail closed if it ever does
                    self.refused = True
                    transport.close()
                    return
            self.tls = TlsSession(choice.domain, der)
        peer = transport.get_extra_info("peername")
        ip = peer[0] if isinstance(peer, tuple) and peer else "127.0.0.1"
        if ip.startswith("::ffff:") and "." in ip:
            ip = ip[7:]
        self.peer_ip = ip
        self.proxy.client_address(ip)
        state.connections.add(self)
        state.services.metrics.set("iamgate_connections", len(state.connections))
        if state.draining:
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
        state.services.metrics.set("iamgate_connections", len(state.connections))
        self.proxy.drop()
        ex = self.ex
        if ex is not None:
            if not ex.status or not self.response_started:
                ex.status = ex.status or 499  # the client went away before the response
            ex.extra = {**(ex.extra or {}), "error.clientClosed": True}
            self._finish(ex, aborted=True)
        self.transport = None

    def pause_writing(self) -> None:
        self.proxy.pause_backend()

    def resume_writing(self) -> None:
        self.proxy.resume_backend()

    # --- httptools callbacks: the head ----------------------------------------------------------
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
        hmap = self.hmap
        if self.repeated is not None:
            for lname, values in self.repeated.items():
                hmap[lname] = b", ".join(values)
        parser = self.parser
        raw_method = parser.get_method()
        method = _METHOD_NAMES.get(raw_method) or raw_method.decode("ascii")
        keep_alive = parser.should_keep_alive()
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
        # Whether this request waits its turn is decided now that its head is complete, not when
        # it began: a head that began while another request was answered may end after that one
        # is done, and then it is next.
        if self.ex is not None:  # a pipelined request behind one still being answered: queue it
            head = _Head(
                self.url, self.headers, hmap, self.duplicate_host, method, version, keep_alive, upgrade
            )
            queued = self.queued = _Queued(head)
            self.pipeline.append(queued)
            if self.transport is not None and not self.paused_for_response:
                self.transport.pause_reading()  # one queued request is enough; the rest waits in the socket
                self.paused_for_response = True
            return
        self.queued = None
        self.request_complete = False
        self.body_bytes = 0
        self._begin(self.url, self.headers, hmap, self.duplicate_host, method, version, keep_alive, upgrade)

    # --- a request begins ------------------------------------------------------------------------
    def _begin(
        self,
        url: bytes,
        headers: list[tuple[bytes, bytes]],
        hmap: dict[bytes, bytes],
        duplicate_host: bool,
        method: str,
        version: str,
        keep_alive: bool,
        upgrade: bool,
    ) -> None:
        """Begin answering a request whose head is complete (its parts as :class:`_Head` has
        them: passed one by one, the common case makes no head object)."""
        state = self.state
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
            headers,
            hmap,
            version,
            keep_alive,
            self.peer_ip,
            self.secure,
        )
        ex.services = state.services
        ex.tls = self.tls
        self.ex = ex
        self.response_started = False
        self.continued = False
        self.chunked_in = b"transfer-encoding" in hmap
        state.in_flight += 1
        client_id = hmap.get(b"x-amzn-requestid")
        if client_id is not None and _UUID.fullmatch(client_id):  # a client may set its own UUID
            ex.request_id = client_id.decode("ascii").lower()
        if (
            upgrade or duplicate_host or b"host" not in hmap or self.chunked_in
        ):  # only then can there be a problem (the common case skips a call)
            problem = _head_problem(hmap, version, upgrade, duplicate_host)
            if problem is not None:
                ex.keep_alive = False
                self.respond(ex, problem)
                return
        run_stages(self, ex, 0)

    # --- the stages' host (StageHost) ---------------------------------------------------------------
    def need_body(self, ex: Exchange, index: int) -> None:
        if self.request_complete:  # (read while a stage waited: kept in body_raw, see _body)
            if self.body_bytes > ex.snapshot.settings.max_buffered_body:
                self._fail_request(R.gateway_error(R.REQUEST_TOO_LARGE), "request-too-large")
                return
            ex.body = b"".join(self.body_raw)
            self.body_raw = []
            run_stages(self, ex, index)
            return
        self.mode = _BUFFERING
        self.since = self.state.now
        self.resume_at = index
        if b"expect" in ex.hmap:  # a client waiting for 100 Continue sends the body only then
            self.send_continue(ex)

    def wait(self, ex: Exchange, later: Later, index: int) -> None:
        self.mode = _WAITING
        later.attach(self, index)

    def stage_answered(self, ex: Exchange, index: int, result: R.GatewayResponse | None) -> None:
        """(Resumer) stage ``index`` answered later: go on from there."""
        if ex is not self.ex or self.mode != _WAITING:
            return  # the client went away, or the request was already answered
        self.mode = _IDLE
        if result is not None:
            self.respond(ex, result)
            return
        run_stages(self, ex, index + 1)

    def integrate(self, ex: Exchange) -> None:
        route = ex.route
        assert route is not None
        integration = route.integration
        if isinstance(integration, MockIntegration):
            self.respond(ex, mock_response(integration))
            return
        self.mode = _PROXY
        if self.body_raw:
            self.body_raw = []  # (kept while a stage waited; the proxy holds what it sends)
        self.proxy.start(ex, self.request_complete)

    # --- httptools callbacks: the body --------------------------------------------------------------
    def on_body(self, body: bytes) -> None:
        if self.queued is not None:  # the body of a request waiting its turn
            self.queued.body.append(body)
            return
        self._body(body)

    def _body(self, body: bytes) -> None:
        """Body bytes of the request being answered."""
        self.body_bytes += len(body)
        settings = self.ex.snapshot.settings if self.ex is not None else self.state.snapshot.settings
        limit = settings.max_request_body
        mode = self.mode
        if limit is not None and self.body_bytes > limit and mode in (_PROXY, _WAITING, _BUFFERING):
            self._fail_request(R.gateway_error(R.REQUEST_TOO_LARGE), "request-too-large")
            return
        if mode == _BUFFERING:
            self.since = self.state.now  # gateway.client.body_timeout runs between reads
            if self.body_bytes > settings.max_buffered_body:
                self._fail_request(R.gateway_error(R.REQUEST_TOO_LARGE), "request-too-large")
                return
            self.body_raw.append(body)  # for the stage, and below for the backend too
        elif mode == _WAITING:
            # kept too: a later stage may ask for the whole body (request validation after an
            # authorizer or a Redis throttle answered); the same objects the backend is held
            self.body_raw.append(body)
        elif mode != _PROXY:
            return  # answered already: the rest of the body is read and dropped
        data = b"%x\r\n%b\r\n" % (len(body), body) if self.chunked_in else body
        # proxying: sent, or held while a backend connection opens; else held for the backend
        held_much = self.proxy.send(data) if mode == _PROXY else self.proxy.hold(data)
        if held_much and mode != _BUFFERING:  # (a buffered body is bounded by max_buffered_body)
            self._pause_for_backend()

    def on_message_complete(self) -> None:
        if self.queued is not None:  # a request waiting its turn is all read
            self.queued.complete = True
            self.queued = None
            return
        self._complete()

    def _complete(self) -> None:
        """The request being answered is all read."""
        self.request_complete = True
        mode = self.mode
        if mode == _PROXY:
            if self.chunked_in:
                self.proxy.send(LAST_CHUNK)
            self.proxy.end_body()
        elif mode in (_WAITING, _BUFFERING) and self.chunked_in:
            self.proxy.hold(LAST_CHUNK)
        ex = self.ex
        if mode == _BUFFERING and ex is not None:
            ex.body = b"".join(self.body_raw)
            self.body_raw = []
            self.mode = _IDLE
            run_stages(self, ex, self.resume_at)
        if self.ex is not None and self.transport is not None:
            # the response is still being produced: read no further request until it is done
            self.transport.pause_reading()
            self.paused_for_response = True

    def _pause_for_backend(self) -> None:
        if self.transport is not None and not self.paused_for_backend:
            self.paused_for_backend = True
            self.transport.pause_reading()

    # --- requests refused as they are read ----------------------------------------------------------
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
            queued = self.queued
            if queued is not None:  # the malformed one is the queued request being read
                self.queued = None
                self.pipeline.remove(queued)
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
        self.respond(ex, response)

    # --- gateway responses ------------------------------------------------------------------------
    def respond(self, ex: Exchange, response: R.GatewayResponse) -> None:
        """Answer ``ex`` with a response the gateway makes itself (StageHost)."""
        if response.response_type is not None:
            api = ex.api
            if api is not None and api.responses is not None:  # the API's gateway responses
                response = customise(api.responses, ex, response)
        if (
            response.close
            or self.closing
            or self.state.draining
            or (not self.request_complete and _body_outstanding(ex, self.body_bytes))
        ):
            ex.keep_alive = False
        status = response.status
        parts = [R.status_line(status), date_header()]
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
        transport = self.transport
        if transport is not None:
            transport.write(b"".join(parts))
        self._finish(ex)

    # --- the HTTP proxy's client (Client) -------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def send_continue(self, ex: Exchange) -> None:
        """Answer ``Expect: 100-continue`` once, when the gateway is ready for the body."""
        if (
            not self.continued
            and not self.request_complete
            and b"100-continue" in (ex.hmap.get(b"expect") or b"").lower()
            and self.transport is not None
        ):
            self.continued = True
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def response_begins(self, ex: Exchange) -> None:
        if (
            self.closing
            or self.state.draining
            or (not self.request_complete and _body_outstanding(ex, self.body_bytes))
        ):
            ex.keep_alive = False  # (an early answer with much body to come: closing beats reading it)
        self.response_started = True

    def proxied(self, ex: Exchange) -> None:
        self._finish(ex)

    def fail(self, ex: Exchange, response: R.GatewayResponse) -> None:
        self.respond(ex, response)

    def cut(self, ex: Exchange, detail: str) -> None:
        self._abort(ex, detail)

    def pause_request(self) -> None:
        self._pause_for_backend()

    def resume_request(self) -> None:
        if self.transport is not None and self.paused_for_backend:
            self.paused_for_backend = False
            if not self.paused_for_response:
                self.transport.resume_reading()

    # --- a request ends ------------------------------------------------------------------------------
    def _finish(self, ex: Exchange, *, aborted: bool = False) -> None:
        """The response is complete (or abandoned): log, count, and get ready for the next."""
        if ex is not self.ex:
            return
        state = self.state
        ex.end = perf_counter()
        self.ex = None
        self.mode = _IDLE
        self.proxy.clear()
        if self.body_raw:
            self.body_raw = []
        state.in_flight -= 1
        try:
            state.record(ex)
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
        self._next()

    def _next(self) -> None:
        """No request is being answered: start the queued ones in turn (a loop, not a call from
        one request's end into the next's start: the gateway may answer a queued request as it
        starts it, and the requests behind it are then started here, one after the other), then
        answer a refusal that waited for them, then read on."""
        if self.starting:
            return  # called from a request started below, which the loop goes on from
        if self.pipeline or self.after is not None:
            self._start_waiting()
        # read on when no request is answered, or when the one answered has body still to come
        transport = self.transport
        if (
            transport is not None
            and self.paused_for_response
            and not self.refused
            and (self.ex is None or not self.request_complete)
        ):
            self.paused_for_response = False
            if not self.paused_for_backend:
                transport.resume_reading()

    def _start_waiting(self) -> None:
        """Start the queued requests in turn, then answer a refusal that waited for them."""
        self.starting = True
        try:
            # (after a malformed request, reading has ended but the requests before it are owed)
            while self.ex is None and self.pipeline and self._open():
                self._start_queued(self.pipeline.pop(0))
        finally:
            self.starting = False
        if self.ex is None and self.after is not None and self._open():
            refusal, self.after = self.after, None  # a refused request waited for the ones before it
            self._refuse(refusal)

    def _open(self) -> bool:
        transport = self.transport
        return transport is not None and not transport.is_closing()

    def _start_queued(self, queued: _Queued) -> None:
        """Answer the next pipelined request: begin it from its head, then give it the body read
        so far. The rest of its body, if some is still to come, is read as the request's own."""
        if self.queued is queued:
            self.queued = None  # what is read from now on is this request's, not the queue's
        self.request_complete = False
        self.body_bytes = 0
        head = queued.head
        self._begin(
            head.url,
            head.headers,
            head.hmap,
            head.duplicate_host,
            head.method,
            head.version,
            head.keep_alive,
            head.upgrade,
        )
        ex = self.ex
        # (its own body, not through the parser's callbacks: another request may be queued and
        # being read behind it, and those callbacks give what they read to that one)
        for chunk in queued.body:
            if self.ex is not ex or ex is None:
                return  # answered already (a denial, a body too large): the rest is not needed
            self._body(chunk)
        if queued.complete and ex is not None and self.ex is ex:
            self._complete()

    # --- failures and timeouts -----------------------------------------------------------------------
    def _fail_request(self, response: R.GatewayResponse, kind: str) -> None:
        """The request cannot go on (too large, malformed body, too slow): answer it if nothing of
        a response was written yet, else cut the connection."""
        ex = self.ex
        if ex is None:
            return
        self.proxy.drop()
        self.mode = _RESPONDED
        if self.response_started:
            self._abort(ex, kind)
            return
        ex.keep_alive = False
        self.respond(ex, response)

    def _abort(self, ex: Exchange, detail: str) -> None:
        """Past the point of a clean error response: cut the client connection."""
        self.proxy.drop()
        self.mode = _RESPONDED
        ex.extra = {**(ex.extra or {}), "integrationErrorMessage": detail}
        ex.keep_alive = False
        transport = self.transport
        self._finish(ex, aborted=True)
        if transport is not None:
            transport.abort()

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
            self.state.services.metrics.inc(
                "iamgate_client_connections_closed_total", (("reason", "body-timeout"),)
            )
            self.refused = True
            self._fail_request(R.gateway_error(R.REQUEST_TIMEOUT, close=True), "body-timeout")

    # --- shutdown -------------------------------------------------------------------------------------
    def drain(self) -> None:
        """Stop after the current request (or now, if idle)."""
        self.closing = True
        if self.ex is None and self.transport is not None:
            self.transport.close()


def _head_problem(
    hmap: dict[bytes, bytes], version: str, upgrade: bool, duplicate_host: bool
) -> R.GatewayResponse | None:
    """A head the gateway refuses before any stage (400, and the connection closed)."""
    if upgrade:
        return R.gateway_error(R.BAD_REQUEST, "Bad Request: protocol upgrades are not supported", close=True)
    if duplicate_host or (version == "HTTP/1.1" and b"host" not in hmap):
        return R.gateway_error(R.BAD_REQUEST, "Bad Request: exactly one Host header is required", close=True)
    transfer = hmap.get(b"transfer-encoding")
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


def _body_outstanding(ex: Exchange, received: int) -> bool:
    """Whether much of the request body is still to come (then closing beats reading it)."""
    if ex.hmap.get(b"transfer-encoding") is not None:
        return True
    length = ex.hmap.get(b"content-length")
    try:
        return length is not None and int(length) - received > 65536
    except ValueError:
        return True
