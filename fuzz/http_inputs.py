"""What the HTTP fuzzer's clients do, as data: the inputs of fuzz/fuzz_http.py (docs/fuzzing.md).

An :class:`Input` is a few client connections and a list of actions over them: send bytes
(well-formed requests, requests with lying or broken framing, requests with another request
written inside their body, junk), wait for the answers due on a connection, close one (with a
FIN or a reset), or pause. Each request's path is drawn from a vocabulary that mixes paths the
policy allows with paths it denies (spelled plainly, percent-encoded, behind dot segments), and
its last segment picks what the scripted backend does (tests/gateway/hostile.py).

Tags are not part of an input: :func:`render` hands each request a fresh one when it is sent,
so the same input can run twice in a session (Hypothesis replays it while shrinking).

They are made in fuzz/http_generate.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "BEHAVIOURS",
    "BIG_HEADER",
    "Await",
    "Close",
    "Input",
    "Junk",
    "Pause",
    "Request",
    "Send",
    "Sent",
    "render",
]

# what the scripted backend does, by the last segment of the path it receives
BEHAVIOURS = ("ok", "early", "double", "trailing", "short", "reset", "close", "slow", "slowread")
BIG_HEADER = "<3000 bytes>"  # a header value written as 3,000 'v's (past max_header_bytes); short in a repr


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
