"""The HTTP proxy integration: one request to its backend over a pooled connection, the response
streamed back to the client, with a retry on a fresh connection for a request that may be
replayed, and the integration's timeout.

One :class:`HttpProxy` per client connection serves that connection's requests one at a time.
It writes the backend request's head (the gateway's header rules: hop-by-hop and dropped
headers out, mapped parameters in, ``X-Forwarded-*``), gets a backend connection from the
process's pools (:mod:`iamgate.upstream.pool`), relays the body as the client connection hands
it over, and, as the backend connection's :class:`~iamgate.upstream.pool.ResponseSink`, writes
the response to the client: as it arrives, re-framed for the client when needed. What it needs
of the client connection is the small :class:`Client` trait.

A backend connection goes back to the pool only when the request was sent whole and the
response read whole by its framing (upstream/pool.py); anything else closes it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final

import httptools
from mypy_extensions import trait

from iamgate.clock import date_header, monotonic, perf_counter
from iamgate.pipeline import responses as R
from iamgate.pipeline.mapping import request_parameter
from iamgate.upstream.headers import connection_tokens
from iamgate.upstream.pool import PoolTimeout, ResponseSink, UpstreamConnection, UpstreamHead

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from iamgate.config.snapshot import ProxyTarget
    from iamgate.pipeline.exchange import Exchange
    from iamgate.pipeline.services import Services

__all__ = ["LAST_CHUNK", "Client", "HttpProxy"]

log: Final = logging.getLogger("iamgate")

LAST_CHUNK: Final = b"0\r\n\r\n"
# request bodies up to this size are kept so a stale-connection retry can replay
_RETRY_BUFFER: Final = 64 * 1024
_PENDING_LIMIT: Final = 256 * 1024  # body held before a backend connection before reading pauses
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_SIGNATURE_HEADERS: Final = frozenset({b"authorization", b"x-amz-security-token"})


@trait
class Client:
    """The client connection a proxied request came from, as the proxy sees it. A trait:
    compiled, these are direct native calls."""

    def write(self, data: bytes) -> None:
        """Write response bytes to the client."""
        raise NotImplementedError

    def send_continue(self, ex: Exchange) -> None:
        """Answer ``Expect: 100-continue`` if the client waits for it: the body is wanted."""
        raise NotImplementedError

    def response_begins(self, ex: Exchange) -> None:
        """The backend's response head is about to be written: decide whether the connection
        stays open after it."""
        raise NotImplementedError

    def proxied(self, ex: Exchange) -> None:
        """The backend's response was written whole: the request is done."""
        raise NotImplementedError

    def fail(self, ex: Exchange, response: R.GatewayResponse) -> None:
        """Nothing of a response was written: answer with this gateway response instead."""
        raise NotImplementedError

    def cut(self, ex: Exchange, detail: str) -> None:
        """A response is partly written and cannot be completed: cut the client connection."""
        raise NotImplementedError

    def pause_request(self) -> None:
        """Stop reading the client: the backend cannot take more of the body for now."""
        raise NotImplementedError

    def resume_request(self) -> None:
        """Read the client again."""
        raise NotImplementedError


class HttpProxy(ResponseSink):
    """Proxies the requests of one client connection, one at a time (see the module's text)."""

    def __init__(self, client: Client, timed: set[HttpProxy]) -> None:
        self.client = client
        self.timed = timed  # the process's requests being proxied, with a deadline
        self.forwarded_line = b""  # X-Forwarded-For for a client that sent none (its address)
        self.peer = b""
        self.ex: Exchange | None = None
        self.services: Services | None = None
        self.upstream: UpstreamConnection | None = None
        self.target: ProxyTarget | None = None
        self.connecting = False
        self.complete = False  # the client's body was all handed over
        self.started = False  # the response head was written to the client
        self.pending: list[bytes] = []  # body (framed for the backend) held before a backend
        self.pending_size = 0
        self.replay: list[bytes] | None = None
        self.replay_size = 0
        self.request_head = b""
        self.chunked_out = False
        self.out: list[bytes] = []
        self.deadline = 0.0
        self.retried = False

    def client_address(self, ip: str) -> None:
        self.peer = ip.encode()
        self.forwarded_line = b"X-Forwarded-For: %b\r\n" % self.peer

    # --- the request --------------------------------------------------------------------------
    def start(self, ex: Exchange, complete: bool) -> None:
        """Proxy ``ex`` (``complete``: its body was all read already, and handed over)."""
        route, stage = ex.route, ex.stage
        assert route is not None  # routed before the integration
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
            self.client.fail(ex, R.gateway_error(R.API_CONFIGURATION_ERROR))
            return
        services = ex.services
        assert services is not None  # set with the exchange
        self.ex = ex
        self.services = services
        self.complete = complete
        path = target.path(ex.params or {}, route.greedy)
        self.request_head = self._request_head(ex, target, path)
        self.retried = False
        self.started = False
        self.chunked_out = False
        self.out = []
        self.replay = [] if ex.method in _IDEMPOTENT or b"idempotency-key" in ex.hmap else None
        self.replay_size = 0
        ex.integration_start = perf_counter()
        self.deadline = monotonic() + route.timeout
        self.timed.add(self)
        if b"expect" in ex.hmap:
            self.client.send_continue(ex)
        self.target = target
        pool = services.pools.at(target.origin, target.scheme, target.host, target.port)
        conn = pool.take()
        if conn is not None:
            self._attach(conn)
        else:
            self.connecting = True
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
            parts.append(b"X-Forwarded-For: %b, %b\r\n" % (forwarded, self.peer))
        else:
            parts.append(self.forwarded_line)
        parts.append(b"X-Forwarded-Proto: https\r\n" if ex.secure else b"X-Forwarded-Proto: http\r\n")
        length = hmap.get(b"content-length")
        if b"transfer-encoding" in hmap:
            parts.append(b"Transfer-Encoding: chunked\r\n")
        elif length is not None:
            parts.append(b"Content-Length: %b\r\n" % length.strip())
        parts.append(b"\r\n")
        return b"".join(parts)

    def hold(self, data: bytes) -> bool:
        """Keep body bytes (framed for the backend) until there is a backend connection; True
        when so much is held that the client should not be read for now."""
        self.pending.append(data)
        self.pending_size += len(data)
        return self.pending_size > _PENDING_LIMIT

    def send(self, data: bytes) -> bool:
        """Body bytes (framed for the backend) for the request being proxied: written, or held
        while a connection is being opened (True: held so much that reading should pause)."""
        upstream = self.upstream
        if upstream is None:
            return self.hold(data)
        self._keep_for_replay(data)
        upstream.write(data)
        return False

    def end_body(self) -> None:
        """The client's body is all handed over."""
        self.complete = True
        if self.upstream is not None:
            self.upstream.end_request()

    def _connect(self, opening: Coroutine[Any, Any, UpstreamConnection]) -> None:
        task = asyncio.ensure_future(opening)
        ex = self.ex
        task.add_done_callback(lambda t: self._connected(t, ex))

    def _connected(self, task: asyncio.Future[UpstreamConnection], ex: Exchange | None) -> None:
        if ex is None or ex is not self.ex or not self.connecting:  # gave up meanwhile
            if not task.cancelled() and task.exception() is None:
                conn = task.result()
                conn.pool.release(conn)  # nobody needs it now: keep it for the next request
            return
        self.connecting = False
        if task.cancelled():
            self.fail_integration(ex, "connect", "connection attempt cancelled")
            return
        exc = task.exception()
        if exc is not None:
            kind = "pool-timeout" if isinstance(exc, PoolTimeout) else "connect"
            self.fail_integration(ex, kind, str(exc) or type(exc).__name__)
            return
        self._attach(task.result())

    def _attach(self, conn: UpstreamConnection) -> None:
        ex = self.ex
        assert ex is not None
        self.upstream = conn
        if self.replay is not None and self.retried:  # a retry: what was sent, and what came since
            data = b"".join([self.request_head, *self.replay, *self.pending])
            for chunk in self.pending:
                self._keep_for_replay(chunk)
            self.pending = []
        elif self.pending:
            for chunk in self.pending:
                self._keep_for_replay(chunk)
            data = b"".join([self.request_head, *self.pending])
            self.pending = []
        else:  # the usual case: a request without a body, or whose body is still to come
            data = self.request_head
        self.pending_size = 0
        # complete: the body (if any) was all handed over and is in ``data``; otherwise
        # end_body tells the connection when its last byte is written
        conn.start(self, data, head_request=ex.method == "HEAD", complete=self.complete)
        self.client.resume_request()

    def _keep_for_replay(self, data: bytes) -> None:
        replay = self.replay
        if replay is None:
            return
        self.replay_size += len(data)
        if self.replay_size > _RETRY_BUFFER:
            self.replay = None  # too big to keep: this request will not be retried
        else:
            replay.append(data)

    def clear(self) -> None:
        """The request is done (answered, proxied or abandoned): forget it."""
        self.ex = None
        self.upstream = None
        self.connecting = False
        if self.pending:
            self.pending = []
        self.pending_size = 0
        self.replay = None

    # --- the response (ResponseSink) -------------------------------------------------------------
    def upstream_head(self, status: int, head: UpstreamHead) -> None:
        ex = self.ex
        if ex is None:
            return
        self.client.response_begins(ex)
        self.deadline = monotonic() + self._idle_timeout()  # now an idle timeout between reads
        # the head's pieces go straight into ``out``: one join when the read is written
        parts = self.out
        parts.append(R.status_line(status))
        parts.append(date_header())
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
            else:  # an HTTP/1.0 client: the body ends with the connection
                ex.keep_alive = False
        parts.append(b"x-amzn-RequestId: ")
        parts.append(ex.request_id.encode())
        parts.append(b"\r\nx-amz-apigw-id: ")
        parts.append(ex.extended_id.encode())
        parts.append(b"\r\n\r\n" if ex.keep_alive else b"\r\nConnection: close\r\n\r\n")
        self.started = True
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
        out = self.out
        if out:
            self.client.write(b"".join(out) if len(out) > 1 else out[0])
            self.out = []
        if self.started:
            self.deadline = monotonic() + self._idle_timeout()

    def upstream_done(self) -> None:
        ex = self.ex
        if ex is None:
            return
        self.timed.discard(self)
        # the backend connection is the pool's again: a slow client's pause (called back by the
        # write below) must not reach it
        self.upstream = None
        out = self.out
        if self.chunked_out:
            out.append(LAST_CHUNK)
        if out:
            self.client.write(b"".join(out) if len(out) > 1 else out[0])
            self.out = []
        ex.integration_latency = perf_counter() - ex.integration_start
        self.client.proxied(ex)

    def upstream_failed(self, exc: BaseException | None, retriable: bool) -> None:
        ex = self.ex
        if ex is None:
            return
        self.upstream = None
        if self.started:
            self.client.cut(ex, f"backend connection lost mid-response: {exc or 'closed'}")
            return
        target = self.target
        services = self.services
        if retriable and not self.retried and self.replay is not None and target is not None and services:
            self.retried = True
            services.metrics.inc("iamgate_upstream_retries_total")
            self.connecting = True
            pool = services.pools.at(target.origin, target.scheme, target.host, target.port)
            self._connect(pool.open())
            return
        kind = "reset" if exc is not None else "closed"
        if isinstance(exc, httptools.HttpParserError):
            kind = "invalid-response"
        self.fail_integration(ex, kind, str(exc) if exc else "backend closed the connection")

    def upstream_pause_request(self) -> None:
        self.client.pause_request()

    def upstream_resume_request(self) -> None:
        self.client.resume_request()

    def pause_backend(self) -> None:
        """The client reads slower than the backend answers: stop reading the backend."""
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_backend(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    # --- failures and the deadline -----------------------------------------------------------------
    def fail_integration(self, ex: Exchange, kind: str, detail: str) -> None:
        """The backend could not be reached or gave no usable answer: 502 (504 for a timeout)."""
        self.drop()
        api = ex.api.id if ex.api is not None else "-"
        if self.services is not None:
            self.services.metrics.inc("iamgate_upstream_errors_total", (("api", api), ("kind", kind)))
        ex.integration_latency = perf_counter() - ex.integration_start
        ex.extra = {**(ex.extra or {}), "integrationErrorMessage": detail}
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
        self.client.fail(ex, response)

    def drop(self) -> None:
        """Give up the request's backend side: no deadline, the backend connection closed."""
        self.timed.discard(self)
        self.connecting = False
        if self.upstream is not None:
            self.upstream.abort()
            self.upstream = None

    def _idle_timeout(self) -> float:
        ex = self.ex
        return ex.route.timeout if ex is not None and ex.route is not None else 29.0

    def timed_out(self) -> None:
        """The deadline passed (checked by :meth:`~iamgate.serving.state.GatewayState.check_deadlines`)."""
        self.timed.discard(self)
        ex = self.ex
        if ex is None:
            return
        if self.started:
            if self.services is not None:
                api = ex.api.id if ex.api else "-"
                self.services.metrics.inc(
                    "iamgate_upstream_errors_total", (("api", api), ("kind", "timeout"))
                )
            self.client.cut(ex, "backend stalled mid-response")
            return
        self.fail_integration(ex, "timeout", "Endpoint request timed out")
