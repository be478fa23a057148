"""Making the HTTP fuzzer's inputs (fuzz/http_inputs.py) from a :class:`Chooser`.

:func:`build_input` takes every decision through a chooser: Hypothesis draws in the test suite
(:func:`inputs`, which then shrinks a failing input), or a seeded ``random.Random`` in the long
runs of fuzz/fuzz_http.py (:class:`RandomChooser`: about 50 times faster than going through
Hypothesis, and a seed names its input).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol, TypeVar

from fuzz.http_inputs import BEHAVIOURS, BIG_HEADER, Await, Close, Input, Junk, Pause, Request, Send
from hypothesis import strategies as st

__all__ = ["Chooser", "RandomChooser", "build_input", "inputs"]

T = TypeVar("T")


class Chooser(Protocol):
    """Where an input's choices come from."""

    def pick(self, options: Sequence[T]) -> T: ...

    def integer(self, low: int, high: int) -> int: ...

    def binary(self, max_size: int) -> bytes: ...

    def fraction(self) -> float: ...


class RandomChooser:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def binary(self, max_size: int) -> bytes:
        return self.rng.randbytes(self.rng.randint(0, max_size))

    def fraction(self) -> float:
        return self.rng.random()


class _DrawChooser:
    """Choices drawn by Hypothesis (which then knows how to shrink them)."""

    _sampled: dict[tuple[object, ...], st.SearchStrategy[object]] = {}  # noqa: RUF012 (a cache)

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def pick(self, options: Sequence[T]) -> T:
        key = tuple(options)
        strategy = self._sampled.get(key)
        if strategy is None:
            strategy = self._sampled[key] = st.sampled_from(key)
        return self.draw(strategy)  # type: ignore[return-value]

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def binary(self, max_size: int) -> bytes:
        return self.draw(st.binary(max_size=max_size))

    def fraction(self) -> float:
        return self.draw(st.floats(0.0, 1.0))


def inputs() -> st.SearchStrategy[Input]:
    """Inputs for Hypothesis (see :func:`build_input`)."""
    return st.composite(lambda draw: build_input(_DrawChooser(draw)))()


# Vocabularies are weighted by repetition, the most common choice first (Hypothesis draws the
# first element, and small integers, more often than the rest). Most requests are ones the
# gateway forwards, so backend connections are reused (and poisoned) often; the others are
# denied, refused or malformed.

METHODS = (
    "GET",
    "GET",
    "GET",
    "POST",
    "POST",
    "PUT",
    "DELETE",
    "DELETE",
    "PATCH",
    "HEAD",
    "OPTIONS",
    "PURGE",
)
PREFIXES = (
    *("/prod",) * 12,
    "//prod",
    "/%70rod",
    "/x/../prod",
    "/./prod",
    "/prod/a/..",
    "/dev",
    "/PROD",
    "http://gw/prod",
)
SEGMENTS = (
    *("a", "items", "x") * 4,
    *("admin", "secret") * 2,
    # other spellings of denied segments
    "%61dmin",
    "adm%69n",
    "secr%65t",
    "Admin",
    "\uff41dmin",  # a fullwidth 'a' (NFKC would make it "admin"; the policy matches it as it is)
    # dot and empty segments
    "..",
    "%2e%2e",
    "%2E.",
    ".",
    "%2e",
    "",
    # refused by the gateway
    "x;y",
    "a%2Fb",
    "%252e",
    "%C0%AF",
    "%00",
    # allowed oddities
    "caf%C3%A9",
    "*",
    "~user",
)
LAST = (*BEHAVIOURS * 2, "admin", "secret", "items", "%6fk", "%65arly", "ok;x")
QUERIES = (*("",) * 6, "?q=1", "?a=%2F&b", "?x=/../admin", "?early")
HEADERS = (
    ("Content-Type", "application/json"),
    ("X-Forwarded-For", "203.0.113.9"),
    ("Expect", "100-continue"),
    ("X-Original-URL", "/admin"),
    ("X-HTTP-Method-Override", "DELETE"),
    ("Transfer-Encoding", "chunked"),
    ("Transfer-Encoding", "gzip, chunked"),
    ("Content-Length", "3"),
    ("Host", "other"),
    ("Connection", "keep-alive"),
    ("Upgrade", "websocket"),
    ("X-Big", BIG_HEADER),
    ("TE", "trailers"),
    ("Keep-Alive", "timeout=5"),
)
# body fragments that look like framing or like another request
FRAGMENTS = (
    b"0\r\n\r\n",
    b"\r\n\r\n",
    b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"5\r\nhello\r\n",
    b"0123456789",
)
# bytes that are no request (none can complete one, with or without what follows)
JUNK = (
    b"\x00\x01\x02",
    b"GET",
    b"\r\n",
    b"HTTP/1.1 200 OK\r\n\r\n",
    b"0\r\n\r\n",
    b"G E T / HTTP/1.1\r\n\r\n",
    b"GET /prod/ok HTTP/9.9\r\n\r\n",
    b"\xff\xfe junk\r\n\r\n",
)


def _often(c: Chooser, one_in: int) -> bool:
    """False, and True one time in ``one_in``."""
    return c.pick((False,) * (one_in - 1) + (True,))


def build_target(c: Chooser) -> str:
    middle = [c.pick(SEGMENTS) for _ in range(c.pick((0, 1, 1, 2, 3)))]
    path = "/".join([c.pick(PREFIXES), *middle, c.pick(LAST)])
    return path + ("/" if _often(c, 10) else "") + c.pick(QUERIES)


def build_body(c: Chooser) -> bytes:
    kind = c.pick(("empty",) * 8 + ("binary",) * 6 + ("fragments",) * 5 + ("large",))
    if kind == "empty":
        return b""
    if kind == "binary":
        return c.binary(48)
    if kind == "fragments":
        return b"".join(c.pick(FRAGMENTS) for _ in range(c.integer(1, 3)))
    # now and then a large body: under the gateway's max_request_body (128 KiB), or past it
    return b"b" * c.pick((40_000, 100_000, 160_000))


def build_request(c: Chooser, *, depth: int = 0) -> Request:
    """A request, with at ``depth`` 0 now and then another written at the end of its body."""
    framing = c.pick(("length",) * 7 + ("chunked",) * 2 + ("none",))
    body = build_body(c)
    if framing == "none" and not _often(c, 4):
        body = b""
    lie = 0
    if framing == "length" and _often(c, 4):
        lie = c.integer(1, 1200) if c.pick((True, False)) else c.integer(-40, -1)
    smuggle = None
    if depth == 0 and framing != "none" and _often(c, 5):
        smuggle = build_request(c, depth=1)
    headers = tuple(c.pick(HEADERS) for _ in range(c.pick((0,) * 13 + (1,) * 5 + (2,) * 2)))
    return Request(
        method=c.pick(METHODS),
        target=build_target(c),
        version="HTTP/1.0" if _often(c, 12) else "HTTP/1.1",
        headers=headers,
        body=body,
        framing=framing,
        lie=lie,
        chunks=c.integer(1, 3),
        chunk_end=c.pick(("ok",) * 8 + ("missing", "bad")),
        close=_often(c, 10),
        host=not _often(c, 30),
        smuggle=smuggle,
    )


def build_item(c: Chooser) -> Request | Junk:
    if not _often(c, 6):
        return build_request(c)
    return Junk(c.pick(JUNK) if c.pick((True, False)) else c.binary(24) or b"\x00")


def build_step(c: Chooser, connections: int) -> tuple[Send | Await | Close | Pause, ...]:
    """One step: mostly a send on some connection, often followed by waiting for its answers.
    Nothing keeps a send clear of a connection still being answered: requests are pipelined
    behind others with bodies of any size, dripped or cut short."""
    conn = c.integer(0, connections - 1)
    kind = c.pick(("send",) * 9 + ("await", "close", "pause"))
    if kind == "send":
        count = c.pick((1, 1, 1, 2, 3))
        items = tuple(build_item(c) for _ in range(count))
        writes = c.pick((1, 1, 1, 1, 2, 3, 4, 6))
        gap_ms = c.integer(0, 3) if writes > 1 else 0
        keep = c.fraction() if _often(c, 8) else 1.0
        send = Send(conn, items, writes=writes, gap_ms=gap_ms, keep=keep)
        if c.pick((True, True, True, False, False)):
            return (send, Await(conn))
        return (send,)
    if kind == "await":
        return (Await(conn),)
    if kind == "close":
        return (Close(conn, reset=c.pick((False, True))),)
    return (Pause(c.integer(0, 20)),)


def build_input(c: Chooser) -> Input:
    """One fuzz input: 1 to 4 client connections and 1 to 6 steps over them."""
    connections = c.integer(1, 4)
    steps = [build_step(c, connections) for _ in range(c.integer(1, 6))]
    return Input(connections, tuple(action for step in steps for action in step))
