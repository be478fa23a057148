"""TLS on a listening port: accept, read the ClientHello's server name, then hand the socket to
the event loop's TLS transport with the context of that name's domain (docs/tls.md).

Each accepted connection goes through :meth:`TlsListener._open` before it becomes a
``DownstreamConnection`` (or an admin connection):

1. the first bytes are peeked (left in the socket for OpenSSL) until a whole ClientHello is
   there, within the handshake timeout;
2. plain HTTP is answered ``400`` with a message that says to use ``https://``; anything else
   that is not a ClientHello is closed;
3. the server name chooses the context (its certificate, security policy and, with mutual TLS,
   its truststore); a name no certificate covers is answered with TLS's ``unrecognized_name``
   alert;
4. the loop's TLS transport makes the handshake with that context, bounded by what is left of
   the handshake timeout; a client certificate that does not verify fails it there.

Every refusal is counted (``iamgate_tls_handshakes_total{result}``) and logged once, at most
:data:`LOG_PER_SECOND` lines a second (the rest are counted in the next line), so that a flood
of bad handshakes cannot flood the log. Pending handshakes count against the connection limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable
from typing import Final

from iamgate.config.domains import TlsChoice
from iamgate.config.model import GatewayConfig
from iamgate.observe.metrics import Metrics
from iamgate.tls.hello import MAX_HELLO, Hello, Incomplete, Malformed, NotTls, read_hello

__all__ = ["CERTIFICATE_EXPIRY", "LOG_PER_SECOND", "TlsListener", "certificate_gauges"]

log = logging.getLogger("iamgate")

LOG_PER_SECOND: Final = 10
CERTIFICATE_EXPIRY: Final = "iamgate_tls_certificate_expiry_timestamp_seconds"
_PLAIN_BODY: Final = b'{"message":"This port speaks TLS: send the request with https://"}'
_PLAIN_HTTP: Final = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: " + str(len(_PLAIN_BODY)).encode() + b"\r\n\r\n" + _PLAIN_BODY
)
# a fatal unrecognized_name alert (RFC 6066 3) in a TLS 1.2 record: what OpenSSL sends itself
_UNRECOGNIZED_NAME: Final = b"\x15\x03\x03\x00\x02\x02\x70"
_METHOD_START: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


class _Throttled:
    """Log lines about refused handshakes, at most LOG_PER_SECOND a second."""

    def __init__(self) -> None:
        self.second = 0
        self.count = 0
        self.dropped = 0

    def __call__(self, message: str, *args: object) -> None:
        now = int(time.monotonic())
        if now != self.second:
            if self.dropped:
                log.warning("%d more TLS refusal(s) not logged in the last second", self.dropped)
            self.second, self.count, self.dropped = now, 0, 0
        if self.count >= LOG_PER_SECOND:
            self.dropped += 1
            return
        self.count += 1
        log.warning(message, *args)


class TlsListener:
    """Serves TLS on a listening socket (the data port or the admin port)."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        choose: Callable[[str | None], TlsChoice | None],
        timeout: Callable[[], float],
        factory: Callable[[TlsChoice], asyncio.Protocol],
        metrics: Callable[[], Metrics],
        room: Callable[[int], bool],
        port: str = "data",
    ) -> None:
        self.sock = sock
        self.choose = choose  # server name -> context (read from the current snapshot)
        self.timeout = timeout
        self.factory = factory
        self.metrics = metrics
        self.room = room  # pending handshakes -> whether one more connection may be opened
        self.port = port
        self.pending: set[asyncio.Task[None]] = set()
        self._accepting: asyncio.Task[None] | None = None
        self._log = _Throttled()

    def start(self) -> None:
        self._accepting = asyncio.get_running_loop().create_task(self._accept())

    def close(self) -> None:
        """Stop accepting (new connections are refused) and drop handshakes in progress."""
        if self._accepting is not None:
            self._accepting.cancel()
            self._accepting = None
        self.sock.close()
        for task in list(self.pending):
            task.cancel()

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, addr = await loop.sock_accept(self.sock)
            except OSError as exc:  # EMFILE and the like: wait, as the loop's own server does
                log.warning("cannot accept a TLS connection on the %s port: %s", self.port, exc)
                await asyncio.sleep(0.1)
                continue
            if not self.room(len(self.pending)):
                self._count("refused")
                conn.close()
                continue
            task = loop.create_task(self._open(conn, addr))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    def _count(self, result: str) -> None:
        self.metrics().inc("iamgate_tls_handshakes_total", (("port", self.port), ("result", result)))

    async def _open(self, conn: socket.socket, addr: object) -> None:
        loop = asyncio.get_running_loop()
        peer = addr[0] if isinstance(addr, tuple) and addr else "?"
        deadline = loop.time() + self.timeout()
        handed = False
        try:
            conn.setblocking(False)
            hello = await self._hello(conn, peer, deadline)
            if hello is None:
                return
            if isinstance(hello, Hello):
                choice = self.choose(hello.server_name)
                if choice is None:
                    self._count("unknown_name")
                    name = hello.server_name
                    self._log("TLS refused from %s: no certificate for server name %r", peer, name)
                    with contextlib.suppress(OSError):
                        conn.recv(MAX_HELLO)  # read the hello: closing on unread bytes resets
                        conn.send(_UNRECOGNIZED_NAME)
                    return
                handed = True
                await self._handshake(conn, choice, peer, deadline)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug: the connection is closed, the gateway goes on
            log.exception("TLS connection from %s failed", peer)
        finally:
            if not handed:
                conn.close()

    async def _hello(self, conn: socket.socket, peer: str, deadline: float) -> Hello | None:
        """Peek until the ClientHello is whole; answer or close what is not one (None)."""
        loop = asyncio.get_running_loop()
        wait = 0.005
        while True:
            try:
                data = conn.recv(MAX_HELLO, socket.MSG_PEEK)
            except BlockingIOError:
                data = None
            except OSError:
                self._count("reset")
                return None
            if data == b"":
                self._count("closed")  # connected and closed without a byte: a port check
                return None
            if data is not None:
                found = read_hello(data)
                if isinstance(found, Hello):
                    return found
                if isinstance(found, NotTls):
                    if data[0] in _METHOD_START:
                        self._count("plain_http")
                        self._log("plain HTTP from %s on the TLS %s port: answered 400", peer, self.port)
                        with contextlib.suppress(OSError):
                            conn.recv(MAX_HELLO)  # read what was peeked: closing on unread bytes resets
                            conn.send(_PLAIN_HTTP)
                            conn.shutdown(socket.SHUT_WR)
                    else:
                        self._count("not_tls")
                        self._log("TLS refused from %s: the first bytes are not a TLS handshake", peer)
                    return None
                if isinstance(found, Malformed):
                    self._count("malformed")
                    self._log("TLS refused from %s: %s", peer, found.reason)
                    return None
                assert isinstance(found, Incomplete)
                if len(data) >= MAX_HELLO:
                    self._count("malformed")
                    self._log("TLS refused from %s: the ClientHello is too large", peer)
                    return None
            left = deadline - loop.time()
            if left <= 0:
                self._count("timeout")
                self._log("TLS refused from %s: no ClientHello within the handshake timeout", peer)
                return None
            if data is None:
                await self._readable(conn, left)
            else:
                # part of a ClientHello is waiting in the socket (so it stays readable): look
                # again a little later, less often the longer it takes
                await asyncio.sleep(min(wait, left))
                wait = min(wait * 2, 0.2)

    @staticmethod
    async def _readable(conn: socket.socket, left: float) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fd = conn.fileno()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, wake)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready, left)
        finally:
            loop.remove_reader(fd)

    async def _handshake(self, conn: socket.socket, choice: TlsChoice, peer: str, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        left = max(0.05, deadline - loop.time())
        try:
            await loop.connect_accepted_socket(
                lambda: self.factory(choice), conn, ssl=choice.context, ssl_handshake_timeout=left
            )
        except (TimeoutError, ConnectionAbortedError):  # uvloop aborts a handshake that is too long
            self._count("timeout")
            self._log("TLS refused from %s: the handshake did not finish in time", peer)
            conn.close()
        except ssl.SSLError as exc:
            result = "client_certificate" if choice.mtls and _about_client_cert(exc) else "failed"
            self._count(result)
            name = choice.domain or "the gateway's certificate"
            self._log("TLS handshake from %s (%s) failed: %s", peer, name, _reason(exc))
            conn.close()
        except OSError as exc:
            self._count("reset")
            self._log("TLS handshake from %s failed: %s", peer, exc.strerror or exc)
            conn.close()
        else:
            self._count("ok")


def _reason(exc: ssl.SSLError) -> str:
    reason = exc.reason or str(exc)
    return str(reason).lower().replace("_", " ")


def _about_client_cert(exc: ssl.SSLError) -> bool:
    reason = str(exc.reason or exc).upper()
    return "CERTIFICATE" in reason or "UNKNOWN_CA" in reason or "PEER DID NOT RETURN" in reason


def certificate_gauges(metrics: Metrics, config: GatewayConfig) -> None:
    """When each certificate served expires (Unix seconds), by port and domain ("" for the
    gateway's own), so that an alert can fire weeks before: set at start and at every reload,
    the gauges of certificates no longer served removed."""
    for key in [key for key in metrics.gauges if key[0] == CERTIFICATE_EXPIRY]:
        del metrics.gauges[key]
    settings = config.settings
    for port, tls in (("data", settings.tls), ("admin", settings.admin_tls)):
        if tls is not None and tls.certificate is not None:
            expiry = tls.certificate.not_after.timestamp()
            metrics.set(CERTIFICATE_EXPIRY, expiry, (("port", port), ("domain", "")))
    for domain in config.domains:
        if domain.certificate is not None:
            expiry = domain.certificate.not_after.timestamp()
            metrics.set(CERTIFICATE_EXPIRY, expiry, (("port", "data"), ("domain", domain.name)))
