"""The floor: the least a uvloop + httptools reverse proxy in Python can do per request.

Parses the request with httptools, forwards the request line and the end-to-end headers (plus
``X-Forwarded-For``) to a keep-alive backend connection owned by the client connection, parses
the response only to find its end and writes the backend's bytes back unchanged (but for a
``Connection: close`` line after the status line when the request asked to close: the connection
is then closed after the response, the backend connection with it). No routing, no
policy, no timeouts, no pool, no logging: what is left is the event loop, the two parsers and
the system calls. iamgate's rows are compared with it to separate the cost of what iamgate
does from the cost of being a Python proxy at all.

    python bench/floor_proxy.py PORT UPSTREAM            # a bench/proxy_bench.py row
    python bench/floor_proxy.py PORT UPSTREAM --tls DIR  # the same over TLS (DIR/chain.pem, key.pem)
    python bench/floor_proxy.py --hotpath [-n 20000]     # in-process CPU per request, no sockets
                                                         # (as bench/hotpath.py does for iamgate)
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
import time
from urllib.parse import urlsplit

import httptools
import uvloop

_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)


class Upstream(asyncio.Protocol):
    def __init__(self, down: Downstream) -> None:
        self.down = down
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiting: list[bytes] = []
        self.at_start = True  # the next bytes begin a response

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.waiting:
            self.transport.write(b"".join(self.waiting))  # type: ignore[union-attr]
            self.waiting = []

    def send(self, data: bytes) -> None:
        if self.transport is None:
            self.waiting.append(data)
        else:
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        down = self.down.transport
        if down is not None:
            out = data
            if self.at_start and self.down.closing and (end := data.find(b"\r\n")) > 0:
                out = data[: end + 2] + b"Connection: close\r\n" + data[end + 2 :]
            down.write(out)
        self.at_start = False
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        self.at_start = True
        self.down.done()

    def connection_lost(self, exc: Exception | None) -> None:
        self.down.up = None
        if self.down.transport is not None:
            self.down.transport.close()


class Downstream(asyncio.Protocol):
    upstream: tuple[str, int, bytes] = ("127.0.0.1", 18080, b"127.0.0.1:18080")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.up: Upstream | None = None
        self.url = b""
        self.lines: list[bytes] = []
        self.peer = b"127.0.0.1"
        self.connecting: asyncio.Task[object] | None = None
        self.closing = False  # the request asked to close the connection after its response

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = peer[0].encode()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.up is not None and self.up.transport is not None:
            self.up.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.lines = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() not in _HOP:
            self.lines.append(name + b": " + value + b"\r\n")

    def on_headers_complete(self) -> None:
        self.closing = not self.parser.should_keep_alive()
        host, port, host_header = self.upstream
        head = b"%b %b HTTP/1.1\r\nHost: %b\r\n%bX-Forwarded-For: %b\r\n\r\n" % (
            self.parser.get_method(),
            self.url,
            host_header,
            b"".join(self.lines),
            self.peer,
        )
        if self.up is None:
            self.up = Upstream(self)
            loop = asyncio.get_running_loop()
            self.connecting = loop.create_task(loop.create_connection(lambda: self.up, host, port))  # type: ignore[arg-type,return-value]
        self.up.send(head)
        if self.transport is not None:
            self.transport.pause_reading()  # one request at a time (bodies are not forwarded)

    def done(self) -> None:
        if self.transport is not None:
            if self.closing:
                self.transport.close()
            else:
                self.transport.resume_reading()


def server_context(tls_dir: str) -> ssl.SSLContext:
    """TLS 1.2 and 1.3 with OpenSSL's defaults otherwise, as iamgate's server context sets it up
    (iamgate.tls.contexts: server cipher preference, no compression or renegotiation, ALPN)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.load_cert_chain(f"{tls_dir}/chain.pem", f"{tls_dir}/key.pem")
    return ctx


async def serve(port: int, upstream: str, tls_dir: str | None = None) -> None:
    parts = urlsplit(upstream)
    Downstream.upstream = (parts.hostname or "127.0.0.1", parts.port or 80, parts.netloc.encode())
    loop = asyncio.get_running_loop()
    tls = server_context(tls_dir) if tls_dir else None
    server = await loop.create_server(Downstream, "127.0.0.1", port, backlog=1024, ssl=tls)
    async with server:
        await server.serve_forever()


def hotpath(n: int, rounds: int) -> list[float]:
    """Per-request CPU with in-memory transports (the same bytes as bench/hotpath.py)."""
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
    from hotpath import REQUEST, RESPONSE, FakeTransport

    async def run() -> list[float]:
        down = Downstream()
        client = FakeTransport(("127.0.0.1", 40000))
        down.connection_made(client)
        up = Upstream(down)
        up.connection_made(FakeTransport(("127.0.0.1", 18080)))
        down.up = up
        out = []
        for _ in range(rounds):
            start = time.process_time()
            for _ in range(n):
                down.data_received(REQUEST)
                up.data_received(RESPONSE)
            out.append((time.process_time() - start) / n * 1e6)
            assert client.written[-1].endswith(b"ok")
            client.written.clear()
            up.transport.written.clear()  # type: ignore[union-attr]
        return out

    return uvloop.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("port", type=int, nargs="?")
    parser.add_argument("upstream", nargs="?", default="http://127.0.0.1:18080")
    parser.add_argument("--hotpath", action="store_true")
    parser.add_argument("--tls", metavar="DIR", help="serve TLS with DIR/chain.pem and DIR/key.pem")
    parser.add_argument("-n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.hotpath:
        results = hotpath(args.n, args.rounds)
        print(f"floor per-request CPU: best {min(results):.1f} us over {args.rounds} rounds of {args.n}")
        return
    if args.port is None:
        parser.error("PORT is required (or --hotpath)")
    uvloop.run(serve(args.port, args.upstream, args.tls))


if __name__ == "__main__":
    main()
