"""The control protocol between the supervisor and a worker: both ends, in one place.

**Start-up.** The supervisor starts a worker as ``python -m iamgate.process.worker`` with the
arguments :func:`command` writes and :func:`parse_command` reads: the configuration path, the
inherited listening socket (``--listen-fd``), the worker's end of a socket pair
(``--control-fd``), the drain timeout, the shared throttle state file and ``--store``.

**Messages.** Supervisor -> worker, one JSON object per line, each with an ``id`` that the reply
echoes:

* ``{"op": "load", "version": N, "files": {path: base64}}`` -> ``{"ok": bool, "version": N}``:
  the configuration files as the supervisor read and validated them (the store's state among
  them). The first, read before the worker starts (:func:`read_first_load`), is answered once the
  worker serves: that answer is its "ready" (or ``{"ok": false, "error": ...}`` before it exits);
* ``{"op": "metrics"}`` -> the worker's metrics export;
* ``{"op": "usage", "query": {...}}`` -> ``{"ok": true, "usage": {...}}`` or ``{"ok": false,
  "status": N, "error": ...}``;
* ``{"op": "reopen"}`` -> ``{"ok": true}``;
* ``{"op": "decisions", "since": N, "max": M}`` -> ``{"ok": true, "pid": ..., "totals": {...},
  "events": [...], "cursor": N, "missed": N, ...}``: the console's decision stream, the events the
  worker kept after its cursor ``since`` (at most ``M``; 0: the totals only);
* ``{"op": "explain", "seq": N}`` -> ``{"ok": true, "found": {...} | null}``: one kept event's
  explanation, computed by the worker with the policy that decided it.

A request that cannot be read or answered gets ``{"ok": false, "error": ...}``. The worker's end
is :func:`answer_supervisor` (what it does is a :class:`Handler`); the supervisor's end is a
:class:`Channel` per worker. A worker whose supervisor goes away (end of file on its socket)
drains and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from iamgate.process.options import ServeOptions
from iamgate.throttle.usage import UsageError

__all__ = [
    "WORKER_MODULE",
    "Channel",
    "Handler",
    "Message",
    "WorkerArgs",
    "answer_supervisor",
    "command",
    "encode",
    "load_request",
    "parse_command",
    "read_first_load",
    "refused_first_load",
]

WORKER_MODULE: Final = "iamgate.process.worker"
LIMIT: Final = 1 << 28  # a load message carries the configuration and its policy files

Message = dict[str, Any]


# -- start-up: the worker's command line


@dataclass(frozen=True, slots=True)
class WorkerArgs:
    config: Path
    listen_fd: int
    control_fd: int
    drain_timeout: float
    throttle_state: str | None
    store: str | None


def command(options: ServeOptions, *, listen_fd: int, control_fd: int, throttle_state: str) -> list[str]:
    """The command line that starts a worker."""
    return [
        sys.executable,
        "-m",
        WORKER_MODULE,
        "--config",
        str(options.config),
        "--listen-fd",
        str(listen_fd),
        "--control-fd",
        str(control_fd),
        "--drain-timeout",
        str(options.drain_timeout),
        "--throttle-state",
        throttle_state,
        *(["--store", options.store] if options.store else []),
    ]


def parse_command(argv: list[str]) -> WorkerArgs:
    """The worker's reading of :func:`command`'s arguments."""
    parser = argparse.ArgumentParser(prog="iamgate-worker")
    parser.add_argument("--config", required=True)
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--drain-timeout", type=float, default=30.0)
    parser.add_argument("--throttle-state")
    parser.add_argument("--store")
    args = parser.parse_args(argv)
    return WorkerArgs(
        config=Path(args.config),
        listen_fd=args.listen_fd,
        control_fd=args.control_fd,
        drain_timeout=args.drain_timeout,
        throttle_state=args.throttle_state,
        store=args.store,
    )


# -- messages


def encode(message: Message) -> bytes:
    return json.dumps(message).encode() + b"\n"


def load_request(version: int, files: dict[str, bytes]) -> Message:
    encoded = {name: base64.b64encode(data).decode() for name, data in files.items()}
    return {"op": "load", "version": version, "files": encoded}


def _files(request: Message) -> dict[str, bytes]:
    return {name: base64.b64decode(data) for name, data in request["files"].items()}


# -- the worker's end


class Handler(Protocol):
    """What a worker does when its supervisor asks."""

    @property
    def version(self) -> int:
        """The version of the configuration it serves."""

    def load(self, version: int, files: dict[str, bytes]) -> bool:
        """Serve these files as ``version``; False (and the old version serving) if refused."""

    def metrics_export(self) -> dict[str, Any]: ...

    async def usage(self, query: dict[str, str]) -> dict[str, Any]:
        """A usage report; raises :class:`UsageError`."""

    def reopen_log(self) -> None: ...

    def decisions_batch(self, cursor: int, limit: int) -> dict[str, Any]:
        """The console's decision stream: :meth:`iamgate.observe.decisions.DecisionLog.batch`."""

    def explain_decision(self, seq: int) -> dict[str, Any] | None:
        """One kept event's explanation (None when it is no longer kept)."""


def read_first_load(sock: socket.socket) -> tuple[int, dict[str, bytes], object] | None:
    """The first load request, read from the still blocking control socket (nothing past it: the
    supervisor sends nothing more until it is answered): ``(version, files, id)``, or ``None``
    when the supervisor went away before sending the configuration."""
    buf = bytearray()
    while not buf.endswith(b"\n"):
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
    request = json.loads(bytes(buf) or b"{}")
    if request.get("op") != "load":
        return None
    return int(request["version"]), _files(request), request.get("id")


def refused_first_load(first_id: object) -> bytes:
    """The answer to the first load when the worker cannot serve it (sent before it exits)."""
    return encode({"ok": False, "error": "the configuration did not load", "id": first_id})


async def answer_supervisor(sock: socket.socket, handler: Handler, first_id: object) -> None:
    """Answer the supervisor, one JSON line per request line, until it goes away (then return).
    The first answer is the one to the first load: the worker is ready."""
    reader, writer = await asyncio.open_connection(sock=sock, limit=LIMIT)
    writer.write(encode({"ok": True, "version": handler.version, "id": first_id}))
    await writer.drain()
    while True:
        line = await reader.readline()
        if not line:
            return
        try:
            request = json.loads(line)
            reply = await _reply(handler, request)
            reply["id"] = request.get("id")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            reply = {"ok": False, "error": f"bad control request: {exc}"}
        writer.write(encode(reply))
        await writer.drain()


async def _reply(handler: Handler, request: Message) -> Message:
    op = request.get("op")
    if op == "usage":
        try:
            return {"ok": True, "usage": await handler.usage(request["query"])}
        except UsageError as exc:
            return {"ok": False, "status": exc.status, "error": str(exc)}
    if op == "metrics":
        return handler.metrics_export()
    if op == "load":
        ok = handler.load(int(request["version"]), _files(request))
        return {"ok": ok, "version": handler.version}
    if op == "reopen":
        handler.reopen_log()
        return {"ok": True}
    if op == "decisions":
        batch = handler.decisions_batch(int(request["since"]), min(int(request["max"]), 5000))
        return {"ok": True, **batch}
    if op == "explain":
        return {"ok": True, "found": handler.explain_decision(int(request["seq"]))}
    return {"ok": False, "error": f"unknown control operation {op!r}"}


# -- the supervisor's end


class Channel:
    """The supervisor's end of one worker's control socket: one request at a time, each answer
    matched to its request by ``id``. An answer that does not come (the worker is gone or too
    slow, or it is not JSON) is ``{}``."""

    def __init__(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        self.conn = conn
        self.lock = asyncio.Lock()
        self.seq = 0
        self.buffer = b""

    def close(self) -> None:
        self.conn.close()

    async def load(self, request: Message, *, timeout: float) -> str | None:
        """Send a :func:`load_request`: ``None`` once the worker serves it, else why not."""
        reply = await self._ask(request, timeout=timeout)
        return None if reply.get("ok") else str(reply.get("error", "no answer"))

    async def metrics(self, *, timeout: float) -> dict[str, Any]:
        return await self._ask({"op": "metrics"}, timeout=timeout)

    async def usage(self, query: dict[str, str], *, timeout: float) -> dict[str, Any] | None:
        """The worker's usage report; raises the :class:`UsageError` it answered; ``None`` when
        it did not answer."""
        reply = await self._ask({"op": "usage", "query": query}, timeout=timeout)
        if reply.get("ok"):
            usage: dict[str, Any] = reply["usage"]
            return usage
        if "status" in reply:
            raise UsageError(str(reply.get("error")), int(reply["status"]))
        return None

    async def reopen(self, *, timeout: float) -> None:
        await self._ask({"op": "reopen"}, timeout=timeout)

    async def decisions(self, since: int, limit: int, *, timeout: float) -> dict[str, Any] | None:
        """The worker's decision-stream batch (``None`` when it did not answer)."""
        reply = await self._ask({"op": "decisions", "since": since, "max": limit}, timeout=timeout)
        return reply if reply.get("ok") else None

    async def explain(self, seq: int, *, timeout: float) -> dict[str, Any] | None:
        reply = await self._ask({"op": "explain", "seq": seq}, timeout=timeout)
        found = reply.get("found")
        return found if isinstance(found, dict) else None

    async def _ask(self, request: Message, *, timeout: float) -> Message:
        loop = asyncio.get_running_loop()
        async with self.lock:
            self.seq += 1
            request = {**request, "id": self.seq}
            try:
                await loop.sock_sendall(self.conn, encode(request))
                async with asyncio.timeout(timeout):
                    while True:
                        line = await self._line()
                        if line is None:
                            return {}
                        reply: Message = json.loads(line)
                        if reply.get("id") == self.seq:
                            return reply
            except (OSError, TimeoutError, ValueError):
                return {}

    async def _line(self) -> bytes | None:
        loop = asyncio.get_running_loop()
        while b"\n" not in self.buffer:
            chunk = await loop.sock_recv(self.conn, 1 << 16)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line
