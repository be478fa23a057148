"""The Redis wire format (RESP2): encoding commands, parsing replies, and Redis URLs.

Parsing is hiredis's (:class:`Parser` wraps its incremental reader): :meth:`Parser.feed` takes
whatever a read delivered (part of a reply, one, or many) and returns the replies it completes.
Bytes that are not RESP2 raise :class:`ProtocolError` (the connection is then dropped); an error
*reply* (``-ERR ...``) is a :class:`RespError` value, not raised. Commands are encoded here: the
hot path caches the encoded parts of each bucket (``iamgate.throttle.redis``), which no
library's encoder offers. The client built on it is in ``redis_client``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis

__all__ = [
    "Address",
    "Parser",
    "ProtocolError",
    "Reply",
    "RespError",
    "bulk",
    "encode",
    "parse_url",
]

Reply: TypeAlias = "int | bytes | RespError | list[Reply] | None"


class RespError(Exception):
    """An error reply from the server, e.g. ``NOSCRIPT No matching script``."""

    @property
    def code(self) -> str:
        """The first word of the message (``ERR``, ``NOSCRIPT``, ``WRONGTYPE``...)."""
        return str(self).split(" ", 1)[0]


class ProtocolError(Exception):
    """The server sent bytes that are not RESP2."""


# ---------------------------------------------------------------------------------------------
# encoding


def bulk(data: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%b\r\n" % (len(data), data)


def encode(*args: bytes | str | int | float) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, bool):  # a bool is an int; never what a caller means
            raise TypeError("a Redis argument cannot be a bool")
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            data = repr(float(arg)).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


# ---------------------------------------------------------------------------------------------
# parsing


class Parser:
    """Incremental RESP2 reply parsing, by ``hiredis`` (the Redis project's C parser):
    :meth:`feed` takes whatever the socket delivered and returns the replies it completes (none,
    one or many), keeping an incomplete tail. Error replies are :class:`RespError` values; bytes
    that are not RESP raise :class:`ProtocolError`. (hiredis trusts the server on what it cannot
    check without reading further: a bulk string's length and its closing CRLF; Redis is trusted
    infrastructure here, and a server that stops answering is dropped by the client.)"""

    __slots__ = ("_reader",)

    def __init__(self) -> None:
        self._reader = hiredis.Reader(protocolError=ProtocolError, replyError=RespError)

    def feed(self, data: bytes) -> list[Reply]:
        reader = self._reader
        reader.feed(data)
        out: list[Reply] = []
        while True:
            reply = reader.gets()
            if reply is False:
                return out
            out.append(reply)


# ---------------------------------------------------------------------------------------------
# addresses


@dataclass(frozen=True, slots=True)
class Address:
    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None  # a Unix socket instead of host and port
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False

    def __str__(self) -> str:  # for messages: never shows the password
        where = (
            f"unix://{self.path}"
            if self.path
            else f"{'rediss' if self.tls else 'redis'}://{self.host}:{self.port}"
        )
        return f"{where}/{self.db}"


def parse_url(url: str) -> Address:
    """``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS) or
    ``unix:///path/to/socket[?db=N]``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    query = parse_qs(parts.query)
    if scheme == "unix":
        if not parts.path:
            raise ValueError(f"{url!r}: a unix:// URL needs a socket path")
        db = int(query.get("db", ["0"])[0])
        return Address(path=parts.path, db=db, username=username, password=password)
    if scheme not in ("redis", "rediss"):
        raise ValueError(f"{url!r}: expected a redis://, rediss:// or unix:// URL")
    db_text = parts.path.strip("/") or query.get("db", ["0"])[0]
    try:
        db = int(db_text)
        port = parts.port or 6379
    except ValueError as exc:
        raise ValueError(f"{url!r}: {exc}") from None
    return Address(
        host=parts.hostname or "127.0.0.1",
        port=port,
        db=db,
        username=username,
        password=password,
        tls=scheme == "rediss",
    )
