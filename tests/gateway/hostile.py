"""A backend that behaves as real servers may, and as hostile ones do, on a real socket.

:class:`ScriptedBackend` reads each connection the way a lenient HTTP/1.1 server does (Node,
Go's net/http and nginx all do this): a head up to the blank line, then a body framed by
``Content-Length`` or chunked encoding, then the *next* request on the same connection, from
whatever bytes come next. Every request it parses is recorded as it saw it, so a test can tell
when bytes the gateway sent as one request's body were read as a request of its own (a desync).

How it answers is chosen by the request path's last segment (``/prod/x/early`` -> ``early``):

* ``ok`` (and anything unknown): read the body, answer 200 with a body naming what was received
  (method, target, the ``x-tag`` header, body length), so a client can check it got *its* answer;
* ``early``: answer right after the head, then read the body as the framing says (the trigger of
  the backend-connection desync: the answer comes before the gateway has sent the whole body);
* ``double``: two complete responses to one request;
* ``trailing``: a response followed by junk bytes in the same write;
* ``short``: a head promising 100 body bytes, 10 of them, then close;
* ``reset``: close with a TCP reset before answering;
* ``close``: close without answering;
* ``slow``: wait ``slow_seconds`` before answering (a stalled backend);
* ``slowread``: read the body in small pieces with pauses (a backend that reads slowly, so the
  gateway's writes back up), then answer as ``ok``.

Every answer carries the request's ``x-tag`` header back as ``X-Tag`` (the early answer, both
responses of ``double`` and the cut ``short`` one too), so a client can tell whose answer it read.
Each connection's bytes are kept as received (:attr:`ScriptedBackend.transcripts`), for checks
that re-read them; :meth:`ScriptedBackend.drop_connections` closes every open connection (the
HTTP fuzzer, fuzz/fuzz_http.py, starts each input with none).
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

__all__ = ["Client", "Parsed", "Response", "ScriptedBackend", "exchange"]


@dataclass
class Parsed:
    """One request as the backend parsed it off its connection."""

    conn: int  # which backend connection (1, 2, ...)
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    head_bytes: int  # size of the head as received (request line + headers + blank line)


class _Closed(Exception):
    pass


@dataclass
class ScriptedBackend:
    slow_seconds: float = 3.0
    port: int = 0
    parsed: list[Parsed] = field(default_factory=list)
    connections: int = 0
    errors: list[str] = field(default_factory=list)  # what the backend could not parse
    transcripts: dict[int, bytearray] = field(default_factory=dict)  # connection -> bytes received
    slowread_piece: int = 1024  # ``slowread``: bytes per read, and the pause after each
    slowread_pause: float = 0.002
    _sock: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)  # ends ``slow`` waits early
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _open: dict[int, socket.socket] = field(default_factory=dict)
    _idle: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> ScriptedBackend:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(256)
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()

    def drop_connections(self, timeout: float = 5.0) -> bool:
        """Close every open connection (a ``slow`` wait ends at once) and wait until each one's
        thread has finished with it: afterwards :attr:`transcripts` and :attr:`parsed` hold all
        they will. False if a thread did not finish within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._idle:
            self._wake.set()
            done = False
            while not done and time.monotonic() < deadline:
                for conn in self._open.values():  # (again: one may be accepted meanwhile)
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_RDWR)
                done = self._idle.wait_for(lambda: not self._open, 0.05)
            if not self._stop.is_set():
                self._wake.clear()
        return done

    def take_records(self) -> tuple[list[Parsed], dict[int, bytes], list[str]]:
        """What was parsed, received and not understood since the last call (then forgotten)."""
        with self._lock:
            parsed, self.parsed = self.parsed, []
            errors, self.errors = self.errors, []
            finished = [n for n in self.transcripts if n not in self._open]
            transcripts = {n: bytes(self.transcripts.pop(n)) for n in finished}
        return parsed, transcripts, errors

    def targets(self) -> list[str]:
        with self._lock:
            return [p.target for p in self.parsed]

    # --- serving --------------------------------------------------------------------------------
    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._idle, self._lock:
                self.connections += 1
                number = self.connections
                self._open[number] = conn
                self.transcripts[number] = bytearray()
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        conn.settimeout(30)
        reader = _Reader(conn, self.transcripts[number])
        try:
            while not self._stop.is_set():
                try:
                    head = reader.until(b"\r\n\r\n")
                except _Closed:
                    return
                lines = head[:-4].decode("latin-1").split("\r\n")
                try:
                    method, target, _ = lines[0].split(" ", 2)
                except ValueError:
                    with self._lock:
                        self.errors.append(f"conn {number}: not a request line: {lines[0][:80]!r}")
                    return
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                action = target.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
                if action == "early":
                    _send(conn, _answer(200, f"early {method} {target}", headers))
                if action == "slowread":
                    reader.piece, reader.pause = self.slowread_piece, self.slowread_pause
                body = _read_body(reader, headers)
                reader.piece, reader.pause = 65536, 0.0
                with self._lock:
                    self.parsed.append(Parsed(number, method, target, headers, body, len(head)))
                if action == "early":
                    continue
                if not self._respond(conn, action, method, target, headers, body):
                    return
        except (OSError, ValueError, _Closed):
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            with self._idle:
                self._open.pop(number, None)
                self._idle.notify_all()

    def _respond(
        self, conn: socket.socket, action: str, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> bool:
        """Answer one request; False when the connection is finished."""
        text = json.dumps(
            {"method": method, "target": target, "tag": headers.get("x-tag"), "length": len(body)}
        )
        if action == "double":
            _send(conn, _answer(200, text, headers) + _answer(200, "SECOND " + text, headers))
        elif action == "trailing":
            _send(conn, _answer(200, text, headers) + b"HTTP/1.1 200 OK\r\nContent-Le")
        elif action == "short":
            cut = b"Content-Length: 100\r\n\r\n0123456789"
            _send(conn, b"HTTP/1.1 200 OK\r\n" + _tag_line(headers) + cut)
            return False
        elif action == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        elif action == "close":
            return False
        else:
            if action == "slow":
                self._wake.wait(self.slow_seconds)
            _send(conn, _answer(200, text, headers))
        return headers.get("connection", "").lower() != "close"


class _Reader:
    def __init__(self, conn: socket.socket, transcript: bytearray | None = None) -> None:
        self.conn = conn
        self.buf = b""
        self.transcript = transcript  # every byte received, when given
        self.piece = 65536  # bytes per recv, and a pause after each (a slow reader)
        self.pause = 0.0

    def _more(self) -> None:
        chunk = self.conn.recv(self.piece)
        if not chunk:
            raise _Closed
        if self.transcript is not None:
            self.transcript += chunk
        self.buf += chunk
        if self.pause:
            time.sleep(self.pause)  # the behaviour under test: a backend that reads slowly

    def until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._more()
        end = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:end], self.buf[end:]
        return out

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def _read_body(reader: _Reader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(reader.until(b"\r\n")[:-2].split(b";")[0], 16)
            body += reader.exactly(size)
            reader.exactly(2)
            if size == 0:
                return body
    length = int(headers.get("content-length", "0") or "0")
    return reader.exactly(length)


def _tag_line(headers: dict[str, str]) -> bytes:
    tag = headers.get("x-tag")
    return b"" if tag is None else f"X-Tag: {tag}\r\n".encode("latin-1")


def _answer(status: int, text: str, headers: dict[str, str]) -> bytes:
    body = text.encode()
    close = headers.get("connection", "").lower() == "close"
    head = (
        f"HTTP/1.1 {status} OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
        + ("Connection: close\r\n" if close else "")
    ).encode()
    return head + _tag_line(headers) + b"\r\n" + body


def _send(conn: socket.socket, data: bytes) -> None:
    conn.sendall(data)
    time.sleep(0)  # let the gateway read between writes of a test's several actions


# --- the client side: raw bytes in, parsed responses out ----------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class Client:
    """One client connection speaking raw bytes; responses are parsed as they come back."""

    def __init__(self, port: int, *, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.reader = _Reader(self.sock)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, raw: bytes) -> None:
        self.sock.sendall(raw)

    def response(self, *, head_request: bool = False) -> Response:
        """The next response (Content-Length, chunked, or until the connection closes)."""
        head = self.reader.until(b"\r\n\r\n")
        lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if head_request or status in (204, 304) or status < 200:
            body = b""
        elif "content-length" in headers or "transfer-encoding" in headers:
            body = _read_body(self.reader, headers)
        else:
            body = self.rest()
        return Response(status, headers, body)

    def rest(self) -> bytes:
        """Everything until the gateway closes the connection."""
        with contextlib.suppress(_Closed):
            while True:
                self.reader._more()
        out, self.reader.buf = self.reader.buf, b""
        return out

    def closed_by_peer(self) -> bool:
        """Whether the gateway has closed (EOF or reset) with nothing more to read."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def exchange(port: int, raw: bytes, *, timeout: float = 10.0) -> Response:
    """Open a connection, send ``raw``, read one response, close."""
    with Client(port, timeout=timeout) as client:
        client.send(raw)
        return client.response()
