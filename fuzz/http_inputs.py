"""What the HTTP fuzzer's clients do, as data: the inputs of fuzz/fuzz_http.py (docs/fuzzing.md).

An :class:`Input` is a few client connections and a list of actions over them: send bytes
(well-formed requests, requests with lying or broken framing, requests with another request
written inside their body, junk), wait for the answers due on a connection, close one (with a
FIN or a reset), or pause. Each request's path is drawn from a vocabulary that mixes paths the
policy allows with paths it denies (spelled plainly, percent-encoded, behind dot segments), and
its last segment picks what the scripted backend does (tests/gateway/hostile.py).

Tags are not part of an input: :func:`render` hands each request a fresh one when it is sent,
so the same input can run twice in a session (Hypothesis replays it while shrinking).

:func:`build_input` makes an input from a :class:`Chooser`: Hypothesis draws in the test suite
(:func:`inputs`, which shrinks a failing input), or a seeded ``random.Random`` in the long runs
of fuzz/fuzz_http.py (:class:`RandomChooser`: about 50 times faster to generate, and a seed
reproduces its input).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from hypothesis import strategies as st

__all__ = [
    "BEHAVIOURS",
    "Await",
    "Chooser",
    "Close",
    "Input",
    "Junk",
    "Pause",
    "RandomChooser",
    "Request",
    "Send",
    "Sent",
    "build_input",
    "inputs",
    "render",
]

# what the scripted backend does, by the last segment of the path it receives
BEHAVIOURS = ("ok", "early", "double", "trailing", "short", "reset", "close", "slow", "slowread")


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # the request target exactly as sent
    version: str = "HTTP/1.1"
    headers: tuple[tuple[str, str], ...] = ()  # besides Host, X-Tag and the framing
    body: bytes = b""
    framing: str = "length"  # "length" (Content-Length), "chunked", or "none" (no framing header)
    lie: int = 0  # Content-Length minus the body's real length ("length" framing)
    chunks: int = 1  # "chunked": the body is cut into this many chunks
    chunk_end: str = "ok"  # "chunked": "ok", "missing" (no last chunk) or "bad" (a size that is no number)
    close: bool = False  # Connection: close
    host: bool = True  # send a Host header
    smuggle: Request | None = None  # a request written at the end of the body (an attempt to smuggle it)

    @property
    def honest(self) -> bool:
        """Framed as it is: the gateway reads exactly this request, body and all (or refuses it
        at its head)."""
        if any(name.lower() in ("content-length", "transfer-encoding") for name, _ in self.headers):
            return False
        if self.framing == "none":
            return not self.body
        if self.framing == "chunked":
            return self.chunk_end == "ok"
        return self.lie == 0


@dataclass(frozen=True)
class Junk:
    data: bytes


@dataclass(frozen=True)
class Send:
    conn: int
    items: tuple[Request | Junk, ...]
    writes: int = 1  # the bytes go out in this many writes (a drip) ...
    gap_ms: int = 0  # ... this far apart
    keep: float = 1.0  # the share of the bytes sent at all (the rest never is: a truncated request)


@dataclass(frozen=True)
class Await:
    """Wait for the answers due on a connection (those its complete requests are owed)."""

    conn: int


@dataclass(frozen=True)
class Close:
    conn: int
    reset: bool = False  # with a TCP reset rather than a FIN


@dataclass(frozen=True)
class Pause:
    ms: int


Action = Send | Await | Close | Pause


@dataclass(frozen=True)
class Input:
    connections: int
    actions: tuple[Action, ...]


# --- rendering ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """A request as it was rendered for sending: its tag, and what it asks for."""

    tag: str
    method: str
    target: str
    embedded: bool  # written inside another request's body (a smuggling attempt)


def render(
    request: Request, new_tag: Callable[[bool], str], *, embedded: bool = False
) -> tuple[bytes, list[Sent]]:
    """The bytes of ``request`` with a fresh tag (and of any request inside its body), and
    what each of those requests is."""
    tag = new_tag(embedded)
    sent = [Sent(tag, request.method, request.target, embedded)]
    body = request.body
    if request.smuggle is not None:
        inner, inner_sent = render(request.smuggle, new_tag, embedded=True)
        body += inner
        sent += inner_sent
    lines = [f"{request.method} {request.target} {request.version}"]
    if request.host:
        lines.append("Host: smuggled.internal" if embedded else "Host: gw")
    lines.append(f"X-Tag: {tag}")
    lines += [f"{name}: {'v' * 3000 if value == BIG_HEADER else value}" for name, value in request.headers]
    if request.close:
        lines.append("Connection: close")
    if request.framing == "length":
        lines.append(f"Content-Length: {max(0, len(body) + request.lie)}")
    elif request.framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        body = _chunked(body, request.chunks, request.chunk_end)
    head = "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n"
    return head + body, sent


def _chunked(body: bytes, pieces: int, end: str) -> bytes:
    size = max(1, -(-len(body) // max(1, pieces)))
    out = b"".join(
        b"%x\r\n%b\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)
    )
    if end == "ok":
        return out + b"0\r\n\r\n"
    if end == "bad":
        return out + b"zz\r\nnot a chunk\r\n"
    return out


# --- generating inputs ----------------------------------------------------------------------------

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


def inputs(*, avoid_known: bool = False) -> st.SearchStrategy[Input]:
    """Inputs for Hypothesis (see :func:`build_input`)."""
    return st.composite(lambda draw: build_input(_DrawChooser(draw), avoid_known=avoid_known))()


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
BIG_HEADER = "<3000 bytes>"  # written as 3,000 'v's (past max_header_bytes); short in a repr
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


def build_body(c: Chooser, *, small: bool = False) -> bytes:
    kind = c.pick(("empty",) * 8 + ("binary",) * 6 + ("fragments",) * 5 + ("large",))
    if small and kind == "large":
        kind = "binary"
    if kind == "empty":
        return b""
    if kind == "binary":
        return c.binary(48)
    if kind == "fragments":
        return b"".join(c.pick(FRAGMENTS) for _ in range(c.integer(1, 3)))
    # now and then a large body: under the gateway's max_request_body (128 KiB), or past it
    return b"b" * c.pick((40_000, 100_000, 160_000))


def build_request(
    c: Chooser, *, depth: int = 0, bodyless: bool = False, small: bool = False, avoid_known: bool = False
) -> Request:
    """A request; ``bodyless``: an honest one with no body (nor a header that would frame one);
    ``small``: no large body; ``avoid_known``: one written inside its body is bodyless (a lie
    may make it a request)."""
    framing = "length" if bodyless else c.pick(("length",) * 7 + ("chunked",) * 2 + ("none",))
    body = b"" if bodyless else build_body(c, small=small)
    if framing == "none" and not _often(c, 4):
        body = b""
    lie = 0
    if framing == "length" and not bodyless and _often(c, 4):
        lie = c.integer(1, 1200) if c.pick((True, False)) else c.integer(-40, -1)
    smuggle = None
    if depth == 0 and framing != "none" and not bodyless and _often(c, 5):
        smuggle = build_request(c, depth=1, bodyless=avoid_known)
    headers = tuple(c.pick(HEADERS) for _ in range(c.pick((0,) * 13 + (1,) * 5 + (2,) * 2)))
    if bodyless:
        headers = tuple(h for h in headers if h[0] not in ("Content-Length", "Transfer-Encoding"))
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


def build_item(c: Chooser, *, bodyless: bool, small: bool, avoid_known: bool) -> Request | Junk:
    if not _often(c, 6):
        return build_request(c, bodyless=bodyless, small=small, avoid_known=avoid_known)
    return Junk(c.pick(JUNK) if c.pick((True, False)) else c.binary(24) or b"\x00")


class _Known:
    """What :func:`build_input` tracks to keep clear of the open findings of
    tests/gateway/test_fuzz_findings.py (``avoid_known``): which connections may be answering a
    request when the next one is read (busy), and which had bytes whose framing the gateway
    reads otherwise than they were written (dirty: busy for good). What is sent on a busy
    connection, or behind another request in one send, is sent in one write, whole, and its
    requests carry no body (findings 1 and 2: a queued request's body in a later read) and no
    large one before them (finding 3: a queued request's head across two reads)."""

    def __init__(self, connections: int) -> None:
        self.busy = [False] * connections
        self.dirty = [False] * connections

    def sent(self, send: Send) -> None:
        for item in send.items:
            self.busy[send.conn] = True
            if isinstance(item, Junk) or not item.honest:
                self.dirty[send.conn] = True
        if send.keep < 1.0:
            self.dirty[send.conn] = True

    def awaited(self, conn: int) -> None:
        self.busy[conn] = self.dirty[conn]


def build_step(
    c: Chooser, connections: int, known: _Known | None
) -> tuple[Send | Await | Close | Pause, ...]:
    """One step: mostly a send on some connection, often followed by waiting for its answers."""
    conn = c.integer(0, connections - 1)
    kind = c.pick(("send",) * 9 + ("await", "close", "pause"))
    if kind == "send":
        count = c.pick((1, 1, 1, 2, 3))
        pipelined = known is not None and (known.busy[conn] or count > 1)
        items = []
        for i in range(count):
            bodyless = known is not None and (known.busy[conn] or i > 0)
            items.append(build_item(c, bodyless=bodyless, small=pipelined, avoid_known=known is not None))
        writes = c.pick((1, 1, 1, 1, 2, 3, 4, 6))
        gap_ms = c.integer(0, 3) if writes > 1 else 0
        keep = c.fraction() if _often(c, 8) else 1.0
        if pipelined:
            writes, gap_ms, keep = 1, 0, 1.0
        send = Send(conn, tuple(items), writes=writes, gap_ms=gap_ms, keep=keep)
        if known is not None:
            known.sent(send)
        if c.pick((True, True, True, False, False)):
            if known is not None:
                known.awaited(conn)
            return (send, Await(conn))
        return (send,)
    if kind == "await":
        if known is not None:
            known.awaited(conn)
        return (Await(conn),)
    if kind == "close":
        return (Close(conn, reset=c.pick((False, True))),)
    return (Pause(c.integer(0, 20)),)


def build_input(c: Chooser, *, avoid_known: bool = False) -> Input:
    """One fuzz input: 1 to 4 client connections and 1 to 6 steps over them. With
    ``avoid_known``, no request that could be pipelined behind another carries a body (the open
    findings of tests/gateway/test_fuzz_findings.py)."""
    connections = c.integer(1, 4)
    known = _Known(connections) if avoid_known else None
    steps = [build_step(c, connections, known) for _ in range(c.integer(1, 6))]
    return Input(connections, tuple(action for step in steps for action in step))
