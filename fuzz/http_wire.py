"""Reading HTTP/1.1 bytes for the HTTP fuzzer's oracle (fuzz/http_oracle.py), written here
rather than taken from a library so that they read exactly as the parties of a test do:

* :func:`parse_transcript` reads a backend connection's bytes as the lenient scripted backend
  (tests/gateway/hostile.py) reads them: a request smuggled in a body shows up as a request;
* :func:`parse_responses` reads what a client received, strictly: anything that is not a
  response is reported;
* :func:`due` reads what a client sent strictly, to count the answers it is owed.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["BackendMessage", "Response", "dechunk", "due", "parse_responses", "parse_transcript"]

# --- chunked bodies -------------------------------------------------------------------------------

_HEX = re.compile(rb"[0-9A-Fa-f]+")


def dechunk(data: bytes) -> tuple[bytes, int | None, bool]:
    """Decode a chunked body from the start of ``data``: (the data so far, where the message
    ends or None if it has not, whether the framing is broken)."""
    out = bytearray()
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return bytes(out), None, False
        size_text = data[pos:eol].split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size_text):
            return bytes(out), None, True
        size = int(size_text, 16)
        start = eol + 2
        if size == 0:
            end = data.find(b"\r\n", start)  # (no trailers are sent)
            return bytes(out), (None if end < 0 else end + 2), False
        out += data[start : start + size]
        if len(data) < start + size + 2:
            return bytes(out), None, False
        if data[start + size : start + size + 2] != b"\r\n":
            return bytes(out), None, True
        pos = start + size + 2


# --- what the backend received --------------------------------------------------------------------


@dataclass
class BackendMessage:
    """A request as the lenient backend reads it off its connection (tests/gateway/hostile.py)."""

    method: str = ""
    target: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    complete: bool = False
    error: str | None = None  # what made the backend stop reading
    head: bytes = b""

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    def header(self, name: str) -> str | None:
        found = self.values(name)
        return found[-1] if found else None


def parse_transcript(data: bytes) -> list[BackendMessage]:
    """Every request in one backend connection's bytes, read as the scripted backend reads them
    (a head to the blank line, a body by the last Content-Length or chunked, the next request
    right after). The last may be incomplete; one the backend cannot read ends the list."""
    out: list[BackendMessage] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            out.append(BackendMessage(error="an incomplete head", head=data[pos:]))
            return out
        head = data[pos : end + 4]
        lines = head[:-4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) != 3:
            out.append(BackendMessage(error="not a request line", head=head))
            return out
        message = BackendMessage(method=parts[0], target=parts[1].encode("latin-1"), head=head)
        for line in lines[1:]:
            name, _, value = line.partition(":")
            message.headers.append((name.strip().lower(), value.strip()))
        out.append(message)
        pos = end + 4
        if (message.header("transfer-encoding") or "").lower() == "chunked":
            body, stop, broken = dechunk(data[pos:])
            message.body = body
            if broken:
                message.error = "a chunk size that is no number"
                return out
            if stop is None:
                return out
            message.complete = True
            pos += stop
            continue
        try:
            length = int(message.header("content-length") or "0")
        except ValueError:
            message.error = "a Content-Length that is no number"
            return out
        message.body = data[pos : pos + length]
        if len(message.body) < length:
            return out
        message.complete = True
        pos += length
    return out


# --- what a client read ---------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    complete: bool

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})(?: [^\r\n]*)?")


def parse_responses(
    data: bytes, *, eof: bool, head_tags: frozenset[str] = frozenset()
) -> tuple[list[Response], str | None]:
    """The responses in what a client read, and what is wrong with the bytes (None: nothing).
    With ``eof`` the bytes are all there are: the last response may be cut short. A response
    answers HEAD when its tag is in ``head_tags`` or, untagged, when its body is not there
    (the gateway's own bodies are JSON: a status line where one would begin means none)."""
    out: list[Response] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            if not _STATUS_LINE.match(data, pos) and len(data) - pos >= 12:
                return out, f"bytes that are no response: {data[pos : pos + 60]!r}"
            if eof:
                out.append(Response(0, [], b"", False))  # a head cut short
            return out, None
        lines = data[pos:end].split(b"\r\n")
        m = _STATUS_LINE.fullmatch(lines[0])
        if m is None:
            return out, f"bytes that are no response: {data[pos : pos + 60]!r}"
        status = int(m.group(1))
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                return out, f"a header line without a colon: {line[:60]!r}"
            headers.append((name.strip().lower().decode("latin-1"), value.strip().decode("latin-1")))
        response = Response(status, headers, b"", True)
        pos = end + 4
        out.append(response)
        tag = response.header("x-tag")
        length_text = response.header("content-length")
        if status < 200 or status in (204, 304) or (tag is not None and tag in head_tags):
            continue
        if tag is None and length_text not in (None, "0") and not data.startswith(b"{", pos):
            if data.startswith(b"HTTP/1.", pos) or (eof and pos == len(data)):
                continue  # an answer to HEAD
            if pos == len(data):
                response.complete = False
                return out, None
        if (response.header("transfer-encoding") or "").lower() == "chunked":
            body, stop, broken = dechunk(data[pos:])
            response.body = body
            if broken:
                return out, "a broken chunked response body"
            if stop is None:
                response.complete = False
                return out, None
            pos += stop
        elif length_text is not None:
            if not length_text.isdigit():
                return out, f"a Content-Length that is no number: {length_text!r}"
            length = int(length_text)
            response.body = data[pos : pos + length]
            if len(response.body) < length:
                response.complete = False
                return out, None
            pos += length
        else:  # delimited by the end of the connection
            response.body = data[pos:]
            response.complete = eof
            return out, None
    return out, None


# --- what a client sent ---------------------------------------------------------------------------

_REQUEST_LINE = re.compile(rb"([A-Z]+) (\S+) HTTP/1\.([01])")
_FIELD = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*")


def due(data: bytes) -> int:
    """How many responses a client is owed for the bytes it sent, read strictly: one for each
    complete request, one for the first malformed one, none after a request that ends the
    connection; and one for a request still being sent to an ``early`` path (answered at once)."""
    count = 0
    pos = 0
    while pos < len(data):
        while data.startswith(b"\r\n", pos):
            pos += 2
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return count
        lines = data[pos:end].split(b"\r\n")
        m = _REQUEST_LINE.fullmatch(lines[0])
        fields = [_FIELD.fullmatch(line) for line in lines[1:]]
        if m is None or not all(fields):
            return count + 1
        names = Counter(f.group(1).lower() for f in fields if f is not None)
        values = {f.group(1).lower(): f.group(2).lower() for f in fields if f is not None}
        keep = (b"close" not in values.get(b"connection", b"")) and (
            m.group(3) == b"1" or b"keep-alive" in values.get(b"connection", b"")
        )
        pos = end + 4
        early = m.group(2).split(b"?", 1)[0].rstrip(b"/").endswith(b"/early")
        if names[b"transfer-encoding"]:
            if (
                names[b"transfer-encoding"] > 1
                or names[b"content-length"]
                or values[b"transfer-encoding"] != b"chunked"
            ):
                return count + 1
            _, stop, broken = dechunk(data[pos:])
            if broken:
                return count + 1
            if stop is None:
                return count + early
            pos += stop
        elif names[b"content-length"]:
            text = values[b"content-length"]
            if names[b"content-length"] > 1 or not text.isdigit():
                return count + 1
            if len(data) - pos < int(text):
                return count + early
            pos += int(text)
        count += 1
        if not keep:
            return count
    return count
