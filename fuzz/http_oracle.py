"""The HTTP fuzzer's oracle: what must hold after any input, judged without asking the gateway.

After each input the session hands over every byte each client sent and read, and every byte
the scripted backend received on each of its connections. The oracle re-reads them and reports
a :class:`Violation` when:

1. **the backend** parsed a request the gateway did not write (no ``Host`` of the backend and
   ``X-Forwarded-Proto`` of the gateway's own: a request smuggled in a body), or one whose tag
   no client sent, or whose method and decoded path are not exactly those its client asked for,
   or that the policy's intent (:func:`authorized`) denies, or whose body is not its client's
   body (another request's bytes read as its body), or that reached it twice (once more is
   allowed for a replayable request: the stale-connection retry), or with a header some backends
   take as the path; or bytes the backend could not read as a request;
2. **a client** read bytes that are not responses, the answer to a request of another connection
   or out of order, a second response to one request (``SECOND``), a response that is neither
   the backend's (tagged) nor the gateway's own error, a 500, or, on a connection whose requests
   were all framed honestly and sent whole, a 504 (its request was swallowed on the way) or the
   answer to another of its requests;
3. the gateway answers a plain ``GET /prod/ok`` after the input and its process lives (checked
   by the session).

The policy denies paths by their decoded segments; :func:`authorized` says the same in Python,
written from the intent rather than from the policy's patterns.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from fuzz.http_wire import BackendMessage, Response, dechunk, parse_responses, parse_transcript

__all__ = [
    "POLICY",
    "ClientLog",
    "Origin",
    "Violation",
    "authorized",
    "backend_segments",
    "canonical_segments",
    "check",
]

# Allow everything, then deny: any path with a segment "admin" or "secret" (any method), and
# DELETE on /items and below. The method position is literal or the patterns are anchored on a
# segment name, so a '*' that spans '/' cannot widen or narrow them (docs/fuzzing.md).
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"},
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": [
                "execute-api:/prod/*/admin",
                "execute-api:/prod/*/admin/*",
                "execute-api:/prod/*/secret",
                "execute-api:/prod/*/secret/*",
                "execute-api:/prod/DELETE/items",
                "execute-api:/prod/DELETE/items/*",
            ],
        },
    ],
}

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# headers some backends read as the path or the method instead of the request line
OVERRIDE_HEADERS = frozenset(
    {
        "x-original-url",
        "x-original-uri",
        "x-rewrite-url",
        "x-forwarded-uri",
        "x-forwarded-path",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    }
)


def authorized(method: str, segments: tuple[str, ...]) -> bool:
    """The policy's intent, for a request to stage prod: its method and decoded path segments."""
    if "admin" in segments or "secret" in segments:
        return False
    return not (method == "DELETE" and segments[:1] == ("items",))


@dataclass(frozen=True)
class Violation:
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


# --- paths ----------------------------------------------------------------------------------------


def canonical_segments(target: str) -> tuple[str, ...] | None:
    """The decoded segments a client's request target names: escapes decoded once, then '.'
    and '..' resolved and empty segments dropped (None: not UTF-8 once decoded)."""
    path = target.split("?", 1)[0]
    if path.startswith(("http://", "https://")):
        rest = path.split("//", 1)[1]
        path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    segments: list[str] = []
    for piece in path.split("/"):
        try:
            text = unquote_to_bytes(piece).decode("utf-8")
        except UnicodeDecodeError:
            return None
        if text in ("", "."):
            continue
        if text == "..":
            if segments:
                segments.pop()
            continue
        segments.append(text)
    return tuple(segments)


def backend_segments(target: bytes) -> tuple[tuple[str, ...] | None, str | None]:
    """The decoded segments of the path the backend received, and what is wrong with its form
    (the gateway sends a canonical path: no empty, '.' or '..' segment, valid escapes)."""
    path = target.split(b"?", 1)[0]
    if not path.startswith(b"/"):
        return None, f"not an absolute path: {target[:80]!r}"
    pieces = path[1:].split(b"/")
    if pieces == [b""]:
        return (), None
    segments = []
    for piece in pieces:
        try:
            text = unquote_to_bytes(piece.decode("latin-1")).decode("utf-8")
        except UnicodeDecodeError:
            return None, f"a segment that is not UTF-8 once decoded: {piece[:40]!r}"
        if text in ("", ".", ".."):
            return None, f"an empty or dot segment: {target[:80]!r}"
        segments.append(text)
    return tuple(segments), None


# --- the checks -----------------------------------------------------------------------------------


@dataclass
class ClientLog:
    """One client connection of an input, as the session saw it."""

    index: str  # "<input>.<connection>", unique in a session
    sent: bytes  # every byte handed to the socket, in order
    received: bytes
    requests: list[tuple[str, int]]  # top-level requests as written: (tag, offset just past their end)
    clean: bool  # every request on it framed honestly, no junk, nothing cut, not closed early


@dataclass(frozen=True)
class Origin:
    """Where a tag was sent: which connection, and what the request asked for."""

    conn: str  # the ClientLog.index of the connection
    method: str
    target: str


def check(
    clients: list[ClientLog],
    origins: dict[str, Origin],
    transcripts: dict[int, bytes],
    backend_host: str,
    *,
    earlier: tuple[dict[str, Origin], dict[str, bytes]] = ({}, {}),
) -> list[Violation]:
    """Every violation the oracle finds in one input's records (see the module's docstring).
    ``earlier``: the tags and client bytes of the inputs just before, for a request of theirs
    that reaches the backend only now (a client that has left is noticed late while the gateway
    does not read from it: its exchange may go on, and be retried, after the input's end)."""
    found: list[Violation] = []
    streams = {**earlier[1], **{c.index: c.sent for c in clients}}
    origins = {**earlier[0], **origins}
    seen: Counter[str] = Counter()
    for number, data in sorted(transcripts.items()):
        for message in parse_transcript(data):
            found += _check_backend_message(number, message, origins, streams, backend_host, seen)
    for tag, count in seen.items():
        origin = origins.get(tag)
        if origin is not None and count > (2 if origin.method in IDEMPOTENT else 1):
            found.append(
                Violation(
                    "sent-twice", f"{tag} ({origin.method} {origin.target}) reached the backend {count} times"
                )
            )
    for client in clients:
        found += _check_client(client, origins)
    return found


def _check_backend_message(
    number: int,
    message: BackendMessage,
    origins: dict[str, Origin],
    streams: dict[str, bytes],
    backend_host: str,
    seen: Counter[str],
) -> list[Violation]:
    where = f"backend connection {number}"
    if message.error is not None and not message.method:
        if message.error == "an incomplete head" and not message.head.strip(b"\r\n"):
            return []
        return [Violation("backend-unreadable", f"{where}: {message.error}: {message.head[:120]!r}")]
    found = []
    shown = f"{message.method} {message.target[:100].decode('latin-1')}"
    if message.values("host") != [backend_host] or message.values("x-forwarded-proto") != ["http"]:
        found.append(
            Violation("smuggled", f"{where}: a request the gateway did not write: {message.head[:200]!r}")
        )
    segments, problem = backend_segments(message.target)
    if problem is not None:
        found.append(Violation("non-canonical-path", f"{where}: {shown}: {problem}"))
    elif segments is not None and not authorized(message.method, segments):
        found.append(Violation("denied-request-served", f"{where}: {shown} is denied by the policy"))
    overrides = sorted({k for k, _ in message.headers} & OVERRIDE_HEADERS)
    if overrides:
        found.append(Violation("override-header", f"{where}: {shown} carries {', '.join(overrides)}"))
    if message.error is not None:
        found.append(Violation("backend-unreadable", f"{where}: {shown}: {message.error}"))
    tag = message.header("x-tag")
    origin = origins.get(tag or "")
    if tag is None or origin is None:
        found.append(Violation("unknown-tag", f"{where}: {shown} with tag {tag!r}, which no client sent"))
        return found
    seen[tag] += 1
    asked = canonical_segments(origin.target)
    if message.method != origin.method or asked is None or asked[:1] != ("prod",) or asked[1:] != segments:
        found.append(
            Violation(
                "wrong-request",
                f"{where}: {shown} for {tag}, whose client asked {origin.method} {origin.target}",
            )
        )
    problem = _body_problem(message, streams.get(origin.conn, b""), tag)
    if problem is not None:
        found.append(Violation("wrong-body", f"{where}: {shown} ({tag}): {problem}"))
    return found


def _body_problem(message: BackendMessage, stream: bytes, tag: str) -> str | None:
    """Whether the body the backend read is the one the client sent after that request's head
    (all of it, or the start of it if the backend connection ended first)."""
    at = stream.find(b"\r\nX-Tag: " + tag.encode() + b"\r\n")
    if at < 0:
        return "its head is not in its client's bytes"
    start = stream.find(b"\r\n\r\n", at + 2) + 4
    if (message.header("transfer-encoding") or "").lower() == "chunked":
        sent, stop, _ = dechunk(stream[start:])
        whole = stop is not None
    else:
        length = int(message.header("content-length") or "0")
        sent = stream[start : start + length]
        whole = len(sent) == length
    if message.complete and not (whole and message.body == sent):
        got = f"{message.body[:80]!r} ({len(message.body)} bytes)"
        return f"read {got}; its client sent {sent[:80]!r} ({len(sent)})"
    if not sent.startswith(message.body):
        return f"began {message.body[:80]!r}; its client sent {sent[:80]!r}"
    return None


def _check_client(client: ClientLog, origins: dict[str, Origin]) -> list[Violation]:
    where = f"client {client.index}"
    head_tags = frozenset(t for t, o in origins.items() if o.method == "HEAD")
    responses, problem = parse_responses(client.received, eof=True, head_tags=head_tags)
    found = []
    if problem is not None:
        found.append(Violation("garbled-response", f"{where}: {problem}"))
    last = -1
    final = [r for r in responses if not 100 <= r.status < 200]
    for i, response in enumerate(final):
        if not response.complete:
            if i != len(final) - 1:
                found.append(Violation("garbled-response", f"{where}: a response cut short before another"))
            continue
        tag = response.header("x-tag")
        if tag is not None:
            found += _check_tagged(where, client, response, tag, origins, last)
            at = client.sent.find(b"\r\nX-Tag: " + tag.encode() + b"\r\n")
            last = max(last, at)
        elif response.header("x-amzn-errortype") is None or response.status < 400:
            found.append(
                Violation(
                    "unattributed-response", f"{where}: {response.status} without a tag or an error type"
                )
            )
        elif response.body and not _gateway_body(response.body):
            found.append(
                Violation("unattributed-response", f"{where}: {response.status} {response.body[:80]!r}")
            )
        if response.status == 500:
            found.append(Violation("internal-error", f"{where}: 500 {response.body[:120]!r}"))
        if client.clean and i < len(client.requests):
            own, end = client.requests[i]
            if tag is not None and tag != own:
                found.append(
                    Violation("crossed-response", f"{where}: response {i + 1} answers {tag}, not {own}")
                )
            if response.status == 504 and end <= len(client.sent):
                found.append(
                    Violation(
                        "lost-request",
                        f"{where}: {own} was sent whole, yet timed out (504): {response.body[:80]!r}",
                    )
                )
    return found


def _check_tagged(
    where: str, client: ClientLog, response: Response, tag: str, origins: dict[str, Origin], last: int
) -> list[Violation]:
    found = []
    origin = origins.get(tag)
    if response.body.startswith(b"SECOND"):
        found.append(
            Violation("second-response", f"{where}: read a second response to {tag}: {response.body[:80]!r}")
        )
    if origin is None or origin.conn != client.index:
        return [
            *found,
            Violation("crossed-response", f"{where}: read the answer to {tag}, sent on another connection"),
        ]
    at = client.sent.find(b"\r\nX-Tag: " + tag.encode() + b"\r\n")
    if at <= last:
        found.append(
            Violation("crossed-response", f"{where}: the answer to {tag} came out of order or twice")
        )
    if response.body.startswith(b"{"):
        try:
            echo = json.loads(response.body)
        except ValueError:
            echo = None
        if not isinstance(echo, dict) or echo.get("tag") != tag or echo.get("method") != origin.method:
            found.append(
                Violation("crossed-response", f"{where}: {tag}'s answer echoes {response.body[:120]!r}")
            )
    elif response.body.startswith(b"early ") and not response.body.startswith(
        f"early {origin.method} ".encode()
    ):
        found.append(
            Violation("crossed-response", f"{where}: {tag}'s early answer is {response.body[:80]!r}")
        )
    return found


def _gateway_body(body: bytes) -> bool:
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and ("message" in parsed or "Message" in parsed)
