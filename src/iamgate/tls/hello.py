"""The server name (SNI) of a TLS ClientHello, read from the bytes a client sent first.

The gateway reads it before the handshake starts (peeking, so the bytes stay in the socket for
OpenSSL), to give the handshake the context of that name's domain: its certificate, security
policy and, with mutual TLS, its truststore and client-certificate request. OpenSSL's own
server-name callback cannot do that: switching a connection's context there changes the
certificate but not the minimum version or whether a client certificate is asked for.
Written by hand because no maintained Python library reads a ClientHello without taking over
the connection (as Envoy's tls_inspector and nginx's ssl_preread do, in C); RFC 8446 4.1.2 and
RFC 6066 3 give the layout, and tests/tls/test_hello.py fuzzes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_HELLO", "Hello", "Incomplete", "Malformed", "NotTls", "read_hello"]

MAX_HELLO: Final = 16384 + 5  # one record: a ClientHello larger than that is refused
_HANDSHAKE: Final = 0x16
_CLIENT_HELLO: Final = 1
_SERVER_NAME: Final = 0


@dataclass(frozen=True, slots=True)
class Hello:
    server_name: str | None  # lower case, without a trailing dot; None when the client sent none


@dataclass(frozen=True, slots=True)
class Malformed:
    reason: str


class Incomplete:
    """More bytes are needed."""


class NotTls:
    """The first byte is not a TLS handshake record (plain HTTP, perhaps)."""


INCOMPLETE: Final = Incomplete()
NOT_TLS: Final = NotTls()


def _u16(data: bytes, at: int) -> int:
    return (data[at] << 8) | data[at + 1]


def read_hello(data: bytes) -> Hello | Malformed | Incomplete | NotTls:
    """Read the ClientHello at the start of ``data`` (what the client has sent so far)."""
    if not data:
        return INCOMPLETE
    if data[0] != _HANDSHAKE:
        return NOT_TLS
    if len(data) < 5:
        return INCOMPLETE
    if data[1] != 3:
        return Malformed(f"record version {data[1]}.{data[2]} is not TLS")
    length = _u16(data, 3)
    if length < 4 or length > 16384:
        return Malformed(f"record length {length} is out of range")
    if len(data) < 5 + length:
        return INCOMPLETE
    body = data[5 : 5 + length]
    if body[0] != _CLIENT_HELLO:
        return Malformed("the first handshake message is not a ClientHello")
    size = (body[1] << 16) | (body[2] << 8) | body[3]
    if size + 4 > len(body):
        # a ClientHello spread over several records: legal, never sent by real clients (theirs
        # fit one record); refused rather than reassembled
        return Malformed("the ClientHello does not fit in its first record")
    return _server_name(body[4 : 4 + size])


def _server_name(hello: bytes) -> Hello | Malformed:
    at = 2 + 32  # client_version, random
    if len(hello) < at + 1:
        return Malformed("the ClientHello is truncated")
    at += 1 + hello[at]  # session id
    if len(hello) < at + 2:
        return Malformed("the ClientHello is truncated")
    at += 2 + _u16(hello, at)  # cipher suites
    if len(hello) < at + 1:
        return Malformed("the ClientHello is truncated")
    at += 1 + hello[at]  # compression methods
    if at == len(hello):
        return Hello(None)  # no extensions at all
    if len(hello) < at + 2:
        return Malformed("the ClientHello is truncated")
    end = at + 2 + _u16(hello, at)
    if end > len(hello):
        return Malformed("the ClientHello's extensions overrun it")
    at += 2
    while at + 4 <= end:
        kind, size = _u16(hello, at), _u16(hello, at + 2)
        at += 4
        if at + size > end:
            return Malformed("an extension overruns the ClientHello")
        if kind == _SERVER_NAME:
            return _host_name(hello[at : at + size])
        at += size
    return Hello(None)


def _host_name(ext: bytes) -> Hello | Malformed:
    if len(ext) < 2 or _u16(ext, 0) != len(ext) - 2:
        return Malformed("the server_name extension is malformed")
    at = 2
    while at + 3 <= len(ext):
        kind, size = ext[at], _u16(ext, at + 1)
        at += 3
        if at + size > len(ext):
            return Malformed("the server_name extension is malformed")
        if kind == 0:  # host_name
            raw = ext[at : at + size]
            try:
                name = raw.decode("ascii")
            except UnicodeDecodeError:
                return Malformed("the server name is not ASCII")
            # checked once normalised: a fully qualified name of 253 characters is 254 with its
            # dot, and "." or "a.." must not pass as "" or "a."
            host = name.lower().removesuffix(".")
            if (
                not host
                or len(host) > 253
                or host.endswith(".")
                or not all(c.isalnum() or c in "-._*" for c in host)
            ):
                return Malformed(f"the server name {name[:80]!r} is not a host name")
            return Hello(host)
        at += size
    return Hello(None)
