"""Running the gateway: sockets, worker processes, signals, reload and graceful drain.

``serve()`` validates the configuration, binds the listening socket and the admin port once
(either in use: exit 2 before anything starts), then runs one worker in-process or starts N
worker processes that inherit the one listening socket and accept on it. The process that owns
the admin port (the only worker, or the supervisor) answers ``/healthz``, ``/readyz`` and
``/metrics``; with workers it asks each over its control socket and merges their metrics.

Reload (``SIGHUP``, or a watched file changed): the configuration file and the policy files it
names are read once and validated completely; if anything is wrong the current configuration
keeps serving, the diagnostics are logged and ``iamgate_config_reloads_total{result="failed"}``
counts it. Otherwise the new snapshot is swapped in atomically; a request keeps the snapshot it
started with. With workers, the supervisor reads and validates, then sends the very bytes it
validated to every worker over its control socket: a worker never reads the files itself, so
workers cannot diverge, and a replacement worker starts from the last good configuration even
while the file on disk is broken.

``SIGTERM``/``SIGINT`` drain: stop accepting (the listening socket is closed), close idle
connections, finish in-flight requests (up to ``--drain-timeout``), then exit 0. ``SIGUSR1``
reopens the access log (log rotation). These signals are blocked until their handlers are in
place, so a signal that arrives while a process starts is handled once it is ready, never fatal.

Control protocol (supervisor -> worker, one JSON object per line, each with an ``id`` that the
reply echoes): ``{"op": "load", "version": N, "files": {path: base64}}`` -> ``{"ok": bool,
"version": N}`` (the first, read before the worker starts, is answered once it serves: that
answer is its "ready"); ``{"op": "metrics"}`` -> the worker's metrics export; ``{"op":
"reopen"}`` -> ``{"ok": true}``. A worker whose supervisor goes away drains and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import errno
import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

from iamgate._compiled import state as compiled_state
from iamgate.admin import AdminServer
from iamgate.config.load import load_config
from iamgate.config.model import GatewayConfig
from iamgate.config.snapshot import Snapshot, build_snapshot
from iamgate.management.app import ManagementApp
from iamgate.management.core import GatewayContext
from iamgate.observe.metrics import Metrics, merge, render
from iamgate.policy import Diagnostic, Location, Severity
from iamgate.server import GatewayState
from iamgate.store.base import mask
from iamgate.store.link import FLAG, StoreLink, extend_from_files
from iamgate.throttle.memory import SharedMemoryBackend
from iamgate.throttle.usage import UsageError, get_usage

__all__ = ["ServeOptions", "serve"]

log = logging.getLogger("iamgate")
WATCH_INTERVAL = 1.0
_SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1}
_CONTROL_LIMIT = 1 << 28  # a load message carries the configuration and its policy files

Stamp = tuple[float, int] | None


@dataclass(frozen=True, slots=True)
class ServeOptions:
    config: Path
    host: str = "127.0.0.1"
    port: int = 8080
    admin_host: str = "127.0.0.1"
    admin_port: int | None = 9901
    workers: int = 1
    drain_timeout: float = 30.0
    watch: bool = True
    store: str | None = None  # --store: overrides the configuration's store


def _report(diags: list[Diagnostic]) -> None:
    for d in diags:
        print(d.render(), file=sys.stderr)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket. No ``SO_REUSEPORT``: workers share this one socket, and a second
    gateway started on a port already served must fail, not silently share the traffic."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _stamp(name: str) -> Stamp:
    try:
        st = os.stat(name)
    except OSError:
        return None
    return (st.st_mtime, st.st_size)


class Sources:
    """Reads the configuration's files for the loader and remembers each one's bytes and its
    (mtime, size) taken *before* reading, so a change made while loading is still noticed.
    With ``given`` (a worker), the files come from the supervisor, not the disk."""

    def __init__(self, given: dict[str, bytes] | None = None) -> None:
        self.given = given
        self.data: dict[str, bytes] = {}
        self.stamps: dict[str, Stamp] = {}

    def __call__(self, path: Path) -> bytes:
        name = str(path)
        if self.given is not None:
            if name not in self.given:
                raise FileNotFoundError(errno.ENOENT, "not sent by the supervisor", name)
            data = self.given[name]
        else:
            self.stamps[name] = _stamp(name)
            data = path.read_bytes()
        self.data[name] = data
        return data


def _load(
    path: Path, given: dict[str, bytes] | None = None, link: StoreLink | None = None, store: str | None = None
) -> tuple[GatewayConfig | None, list[Diagnostic], Sources]:
    """Read and validate the configuration: from disk and the store (``link``), or (a worker)
    exactly as the supervisor read them (``given``)."""
    sources = Sources(given)
    if given is not None:
        extend = extend_from_files(given, store)
    else:
        extend = (link or StoreLink(store)).extend(path.parent, sources.data)
    config, diags = load_config(path, reader=sources, extend=extend)
    return config, diags, sources


def _blamed(diags: list[Diagnostic], path: Path) -> str:
    """What has the errors: the configuration file, or (when every error is its) --store."""
    errors = [d for d in diags if d.is_error]
    return FLAG if errors and all(d.source == FLAG for d in errors) else str(path)


def _build(config: GatewayConfig, path: Path) -> Snapshot | Diagnostic:
    """The runtime snapshot, or (a gap in validation) a diagnostic instead of a crash."""
    try:
        return build_snapshot(config)
    except Exception as exc:
        log.exception("building the configuration of %s failed", path)
        return Diagnostic(
            "config.internal",
            Severity.ERROR,
            f"cannot build the configuration: {exc}",
            Location(""),
            None,
            str(path),
        )


class _Watcher:
    """Polls the configuration file and the policy files it names (also those of a refused
    configuration, so that fixing the file it names reloads)."""

    def __init__(self, stamps: dict[str, Stamp]) -> None:
        self.seen = dict(stamps)

    def changed(self) -> bool:
        now = {name: _stamp(name) for name in self.seen}
        if now != self.seen:
            self.seen = now
            return True
        return False


def _follow_store(
    link: StoreLink | None,
    on_change: Callable[[int], None],
    admin: AdminServer | None,
    config: Callable[[], GatewayConfig],
    usage: Callable[[dict[str, str]], Awaitable[dict[str, Any]]],
    options: ServeOptions,
) -> None:
    """Reload when the store changes (its URL may have changed with the configuration): the
    store's watcher thread hands each new generation to the event loop; and keep the management
    API on the current store."""
    if link is None:
        return
    loop = asyncio.get_running_loop()

    def changed(generation: int) -> None:  # on the store's watcher thread
        loop.call_soon_threadsafe(on_change, generation)

    link.follow(changed)
    _attach_management(admin, link, config, usage, options)


def _attach_management(
    admin: AdminServer | None,
    link: StoreLink | None,
    config: Callable[[], GatewayConfig],
    usage: Callable[[dict[str, str]], Awaitable[dict[str, Any]]],
    options: ServeOptions,
) -> None:
    """Serve the management API on the admin port while a store is configured and the
    management API is enabled (follows reloads: a new store URL, management turned on or off)."""
    if admin is None:
        return
    store = link.store if link is not None else None
    if store is None or not config().management.enabled:
        if admin.management is not None:
            log.info("management API off")
        admin.management = None
        return
    if admin.management is not None and admin.management.store is store:
        return
    context = GatewayContext(config=config, usage=usage, base_dir=options.config.parent)
    admin.management = ManagementApp(store, context, admin_host=options.admin_host)
    log.info("management API on the admin port (store %s)", mask(link.url or "") if link else "")


def _unblock_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)


class Worker:
    """One serving process (or the only one)."""

    def __init__(
        self,
        options: ServeOptions,
        snapshot: Snapshot,
        sock: socket.socket,
        *,
        admin_sock: socket.socket | None,
        control: socket.socket | None,
        stamps: dict[str, Stamp] | None = None,
        first_id: object = None,
        shared_state: str | None = None,
        link: StoreLink | None = None,
    ) -> None:
        self.options = options
        self.link = link
        self.sock = sock
        self.admin_sock = admin_sock
        self.control = control
        self.first_id = first_id
        self.state = GatewayState(snapshot, shared_state=shared_state)
        supervised = control is not None
        self.watcher = _Watcher(stamps) if options.watch and not supervised and stamps is not None else None
        self.server: asyncio.AbstractServer | None = None
        self.admin: AdminServer | None = None
        self.stopped: asyncio.Event | None = None
        self._drain_task: asyncio.Task[None] | None = None

    def reload(self, reason: str) -> bool:
        """Read the files again (a process without a supervisor)."""
        config, diags, sources = _load(self.options.config, link=self.link, store=self.options.store)
        if self.options.watch:
            self.watcher = _Watcher(sources.stamps)
        ok = self._apply(config, diags, reason)
        if ok:
            self._follow_store()
        return ok

    def _follow_store(self) -> None:
        state = self.state
        _follow_store(
            self.link,
            self._store_changed,
            self.admin,
            lambda: state.snapshot.config,
            self.usage,
            self.options,
        )

    def _store_changed(self, generation: int) -> None:
        if not self.state.draining:
            self.reload(f"store generation {generation}")

    def _apply(
        self, config: GatewayConfig | None, diags: list[Diagnostic], reason: str, version: int | None = None
    ) -> bool:
        state = self.state
        snapshot = None if config is None else _build(config, self.options.config)
        if isinstance(snapshot, Diagnostic):
            diags = [*diags, snapshot]
            snapshot = None
        if snapshot is None:
            state.metrics.inc("iamgate_config_reloads_total", (("result", "failed"),))
            log.error(
                "reload (%s) refused: %s has errors; still serving version %d",
                reason,
                _blamed(diags, self.options.config),
                state.snapshot.version,
            )
            _report(diags)
            return False
        _report(diags)  # warnings
        if version is not None:
            snapshot.version = version
        state.swap(snapshot)
        if self.control is None:  # under a supervisor, the supervisor counts reloads
            state.metrics.inc("iamgate_config_reloads_total", (("result", "ok"),))
        log.info("configuration reloaded (%s): version %d", reason, state.snapshot.version)
        return True

    def reopen_log(self) -> None:
        self.state.access_log.reopen()  # looked up now: a reload may have replaced the log

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.stopped = asyncio.Event()
        self.server = await loop.create_server(self.state.protocol_factory(), sock=self.sock, backlog=2048)
        configured = self.state.snapshot.settings.client.max_connections
        log.info(
            "up to %d client connections in this process (%s)",
            self.state.max_clients,
            "gateway.client.max_connections" if configured else "what the open-file limit leaves room for",
        )
        if self.admin_sock is not None:
            self.admin = AdminServer(self.readiness, self.metrics_text, self.usage)
            await self.admin.start(self.admin_sock)
        if self.control is None:
            loop.add_signal_handler(signal.SIGHUP, lambda: self.reload("SIGHUP"))
        else:
            loop.add_signal_handler(
                signal.SIGHUP, lambda: log.info("SIGHUP ignored: send it to the supervisor")
            )
        loop.add_signal_handler(signal.SIGTERM, self.begin_drain)
        loop.add_signal_handler(signal.SIGINT, self.begin_drain)
        loop.add_signal_handler(signal.SIGUSR1, self.reopen_log)
        _unblock_signals()
        control = loop.create_task(self._serve_control()) if self.control is not None else None
        housekeeping = loop.create_task(self._housekeeping())
        self._follow_store()
        await self.stopped.wait()
        housekeeping.cancel()
        if control is not None:
            control.cancel()
        self.state.stop_ticker()
        self.state.access_log.close()
        self.state.pools.close()
        self.state.throttler.close()
        if self.admin is not None:
            self.admin.close()

    def readiness(self) -> tuple[bool, dict[str, object]]:
        snap = self.state.snapshot
        ready = self.state.ready and not self.state.draining
        return ready, {"config_version": snap.version, "apis": sorted(snap.apis)}

    def _gauges(self) -> None:
        self.state.metrics.set("iamgate_requests_in_flight", self.state.in_flight)

    async def metrics_text(self) -> str:
        self._gauges()
        return render(self.state.metrics)

    async def usage(self, query: dict[str, str]) -> dict[str, Any]:
        return await get_usage(self.state.snapshot, self.state.throttler, query)

    def begin_drain(self) -> None:
        state = self.state
        if state.draining:
            return
        state.draining = True
        log.info("draining: no new connections; %d request(s) in flight", state.in_flight)
        if self.server is not None:
            self.server.close()  # closes the listening socket: new connections are refused
        for conn in list(state.connections):
            conn.drain()
        self._drain_task = asyncio.get_running_loop().create_task(self._finish_drain())

    async def _finish_drain(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.drain_timeout
        while self.state.connections and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.state.connections):
            if conn.transport is not None:
                conn.transport.abort()
        if self.stopped is not None:
            self.stopped.set()

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            self.state.pools.sweep(time.monotonic())
            if self.watcher is not None and not self.state.draining and self.watcher.changed():
                self.reload("file changed")

    async def _serve_control(self) -> None:
        """Answer the supervisor, one JSON line per request line."""
        assert self.control is not None
        reader, writer = await asyncio.open_connection(sock=self.control, limit=_CONTROL_LIMIT)
        first = {"ok": True, "version": self.state.snapshot.version, "id": self.first_id}
        writer.write(json.dumps(first).encode() + b"\n")  # the answer to the first load: ready
        await writer.drain()
        while True:
            line = await reader.readline()
            if not line:
                log.warning("the supervisor is gone: draining")
                self.begin_drain()
                return
            try:
                request = json.loads(line)
                answer = await self._control(request)
                answer["id"] = request.get("id")
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                answer = {"ok": False, "error": f"bad control request: {exc}"}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()

    async def _control(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "usage":
            try:
                return {"ok": True, "usage": await self.usage(request["query"])}
            except UsageError as exc:
                return {"ok": False, "status": exc.status, "error": str(exc)}
        if op == "metrics":
            self._gauges()
            return self.state.metrics.export()
        if op == "load":
            files = {name: base64.b64decode(data) for name, data in request["files"].items()}
            config, diags, _ = _load(self.options.config, files, store=self.options.store)
            ok = self._apply(config, diags, "supervisor", int(request["version"]))
            return {"ok": ok, "version": self.state.snapshot.version}
        if op == "reopen":
            self.reopen_log()
            return {"ok": True}
        return {"ok": False, "error": f"unknown control operation {op!r}"}


@dataclass(eq=False)
class _Child:
    proc: subprocess.Popen[bytes]
    conn: socket.socket
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ready: bool = False
    seq: int = 0
    buffer: bytes = b""
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class Supervisor:
    """Several workers: starts them (fresh interpreters sharing the listening socket), replaces
    them, reloads them, drains them."""

    def __init__(
        self,
        options: ServeOptions,
        config: GatewayConfig,
        sources: Sources,
        sock: socket.socket,
        admin_sock: socket.socket | None,
        link: StoreLink | None = None,
    ) -> None:
        self.options = options
        self.link = link
        self.sock = sock
        self.admin_sock = admin_sock
        self.files = dict(sources.data)  # the last configuration that validated, as read
        self.config = config
        self.admin: AdminServer | None = None
        self.apis = sorted(api.id for api in config.apis)
        self.version = 1
        self.children: dict[int, _Child] = {}
        self.watcher = _Watcher(sources.stamps) if options.watch else None
        self.draining = False
        self.metrics = Metrics()
        self.metrics.set("iamgate_config_version", self.version)
        self.throttle_state = _state_file()  # the in-memory limits, shared by the workers

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.throttle_state)

    def spawn(self) -> None:
        parent_end, child_end = socket.socketpair()
        argv = [
            sys.executable,
            "-m",
            "iamgate.supervisor",
            "--config",
            str(self.options.config),
            "--listen-fd",
            str(self.sock.fileno()),
            "--control-fd",
            str(child_end.fileno()),
            "--drain-timeout",
            str(self.options.drain_timeout),
            "--throttle-state",
            self.throttle_state,
            *(["--store", self.options.store] if self.options.store else []),
        ]
        # the worker inherits the blocked signals and unblocks them once its handlers are in place
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            proc = subprocess.Popen(argv, pass_fds=(self.sock.fileno(), child_end.fileno()))  # noqa: S603
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        child_end.close()
        parent_end.setblocking(False)
        child = _Child(proc, parent_end)
        self.children[proc.pid] = child
        self._later(child, self._start(child))

    def _later(self, child: _Child, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        child.tasks.add(task)
        task.add_done_callback(child.tasks.discard)

    def _load_request(self) -> dict[str, Any]:
        files = {name: base64.b64encode(data).decode() for name, data in self.files.items()}
        return {"op": "load", "version": self.version, "files": files}

    async def _start(self, child: _Child) -> None:
        answer = await self._ask(child, self._load_request(), timeout=120)
        if answer.get("ok"):
            child.ready = True
        elif child.proc.poll() is None:
            log.error("worker %d did not start: %s", child.proc.pid, answer.get("error", "no answer"))

    async def _send_load(self, child: _Child, request: dict[str, Any]) -> None:
        answer = await self._ask(child, request, timeout=60)
        if not answer.get("ok") and child.proc.poll() is None:
            log.error("worker %d did not load version %s", child.proc.pid, request["version"])

    async def _ask(self, child: _Child, request: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        """Send one request and wait for its answer ({} if the worker is gone or too slow)."""
        loop = asyncio.get_running_loop()
        async with child.lock:
            child.seq += 1
            request = {**request, "id": child.seq}
            try:
                await loop.sock_sendall(child.conn, json.dumps(request).encode() + b"\n")
                async with asyncio.timeout(timeout):
                    while True:
                        line = await self._line(child)
                        if line is None:
                            return {}
                        answer: dict[str, Any] = json.loads(line)
                        if answer.get("id") == child.seq:
                            return answer
            except (OSError, TimeoutError, ValueError):
                return {}

    async def _line(self, child: _Child) -> bytes | None:
        loop = asyncio.get_running_loop()
        while b"\n" not in child.buffer:
            chunk = await loop.sock_recv(child.conn, 1 << 16)
            if not chunk:
                return None
            child.buffer += chunk
        line, _, child.buffer = child.buffer.partition(b"\n")
        return line

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.options.workers):
            self.spawn()
        if self.admin_sock is not None:
            self.admin = AdminServer(self.readiness, self.metrics_text, self.usage)
            await self.admin.start(self.admin_sock)
        loop.add_signal_handler(signal.SIGHUP, lambda: self.reload("SIGHUP"))
        loop.add_signal_handler(signal.SIGTERM, self.drain)
        loop.add_signal_handler(signal.SIGINT, self.drain)
        loop.add_signal_handler(signal.SIGUSR1, self.reopen_logs)
        _unblock_signals()
        self._follow_store()
        while True:
            await asyncio.sleep(WATCH_INTERVAL if not self.draining else 0.05)
            self.reap()
            if self.draining:
                if not self.children:
                    break
                continue
            while len(self.children) < self.options.workers:
                self.spawn()
            if self.watcher is not None and self.watcher.changed():
                self.reload("file changed")
        if self.admin is not None:
            self.admin.close()

    def reap(self) -> None:
        loop = asyncio.get_running_loop()
        for pid, child in list(self.children.items()):
            status = child.proc.poll()
            if status is None:
                continue
            for task in child.tasks:
                task.cancel()
            loop.call_soon(child.conn.close)  # after the cancelled tasks have let go of it
            del self.children[pid]
            if not self.draining:
                log.warning("a worker exited (pid %d, status %d); starting a new one", pid, status)

    def reload(self, reason: str) -> None:
        if self.draining:
            return
        config, diags, sources = _load(self.options.config, link=self.link, store=self.options.store)
        if self.options.watch:
            self.watcher = _Watcher(sources.stamps)
        built = None if config is None else _build(config, self.options.config)
        if isinstance(built, Diagnostic):
            diags, config = [*diags, built], None
        if config is None:
            self.metrics.inc("iamgate_config_reloads_total", (("result", "failed"),))
            log.error(
                "reload (%s) refused: %s has errors; workers keep version %d",
                reason,
                _blamed(diags, self.options.config),
                self.version,
            )
            _report(diags)
            return
        _report(diags)  # warnings
        self.files = dict(sources.data)
        self.config = config
        self.apis = sorted(api.id for api in config.apis)
        self.version += 1
        self.metrics.set("iamgate_config_version", self.version)
        self.metrics.inc("iamgate_config_reloads_total", (("result", "ok"),))
        log.info("configuration reloaded (%s): version %d, sent to the workers", reason, self.version)
        request = self._load_request()
        for child in self.children.values():
            self._later(child, self._send_load(child, request))
        self._follow_store()

    def _follow_store(self) -> None:
        _follow_store(
            self.link, self._store_changed, self.admin, lambda: self.config, self.usage, self.options
        )

    def _store_changed(self, generation: int) -> None:
        if not self.draining:
            self.reload(f"store generation {generation}")

    def reopen_logs(self) -> None:
        for child in self.children.values():
            self._later(child, self._reopen(child))

    async def _reopen(self, child: _Child) -> None:
        await self._ask(child, {"op": "reopen"}, timeout=10)

    def drain(self) -> None:
        if self.draining:
            return
        self.draining = True
        log.info("draining %d worker(s)", len(self.children))
        self.sock.close()
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGTERM)  # pending until the worker can handle it

    def readiness(self) -> tuple[bool, dict[str, object]]:
        ready = sum(child.ready for child in self.children.values())
        return (not self.draining and ready > 0), {
            "config_version": self.version,
            "apis": self.apis,
            "workers": self.options.workers,
            "workers_ready": ready,
        }

    async def metrics_text(self) -> str:
        children = [c for c in self.children.values() if c.ready]
        answers = await asyncio.gather(*(self._ask(c, {"op": "metrics"}, timeout=2) for c in children))
        return render(merge([self.metrics.export(), *answers]))

    async def usage(self, query: dict[str, str]) -> dict[str, Any]:
        """Asked of one worker: every worker sees the same counters (the node's shared file, or
        Redis)."""
        for child in [c for c in self.children.values() if c.ready]:
            answer = await self._ask(child, {"op": "usage", "query": query}, timeout=5)
            if answer.get("ok"):
                usage: dict[str, Any] = answer["usage"]
                return usage
            if "status" in answer:
                raise UsageError(str(answer.get("error")), int(answer["status"]))
        raise UsageError("no worker answered", 503)


def _state_file() -> str:
    """A new file for the workers' shared throttle counters: in /dev/shm when the machine has
    it (memory, never written to disk), else the temporary directory."""
    shm = "/dev/shm"  # noqa: S108 - mkstemp makes a private (0600), unpredictable name in it
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    fd, path = tempfile.mkstemp(prefix="iamgate-throttle-", suffix=".state", dir=base)
    os.close(fd)
    SharedMemoryBackend(path, create=True).close()
    return path


def _run(main: Coroutine[Any, Any, None]) -> None:
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(main)
    finally:
        loop.close()


def _read_line(sock: socket.socket) -> bytes:
    """One line from a blocking socket, reading nothing past it (nothing follows until answered)."""
    buf = bytearray()
    while not buf.endswith(b"\n"):
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def _worker_main(argv: list[str]) -> int:
    """Entry of a worker started by the supervisor (``python -m iamgate.supervisor ...``)."""
    parser = argparse.ArgumentParser(prog="iamgate-worker")
    parser.add_argument("--config", required=True)
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--drain-timeout", type=float, default=30.0)
    parser.add_argument("--throttle-state")
    parser.add_argument("--store")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    control = socket.socket(fileno=args.control_fd)
    request = json.loads(_read_line(control) or b"{}")
    if request.get("op") != "load":
        return 2  # the supervisor went away before sending the configuration
    files = {name: base64.b64decode(data) for name, data in request["files"].items()}
    config, diags, _ = _load(Path(args.config), files, store=args.store)
    built = None if config is None else _build(config, Path(args.config))
    if not isinstance(built, Snapshot):
        _report(diags if built is None else [*diags, built])
        answer = {"ok": False, "error": "the configuration did not load", "id": request.get("id")}
        control.sendall(json.dumps(answer).encode() + b"\n")
        return 2
    sock = socket.socket(fileno=args.listen_fd)
    sock.setblocking(False)
    control.setblocking(False)
    options = ServeOptions(
        Path(args.config), admin_port=None, drain_timeout=args.drain_timeout, watch=False, store=args.store
    )
    built.version = int(request["version"])  # the supervisor's numbering, the same in every worker
    worker = Worker(
        options,
        built,
        sock,
        admin_sock=None,
        control=control,
        first_id=request.get("id"),
        shared_state=args.throttle_state,
    )
    _run(worker.run())
    return 0


def serve(options: ServeOptions, *, on_ready: Callable[[], None] | None = None) -> int:
    """Run the gateway until drained. Returns the process exit status."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr
    )
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)  # until the handlers are in place
    try:
        return _serve(options, on_ready)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def _serve(options: ServeOptions, on_ready: Callable[[], None] | None) -> int:
    link = StoreLink(options.store)
    try:
        return _serve_with(options, on_ready, link)
    finally:
        link.close()


def raise_file_limit() -> None:
    """Raise the soft open-file limit to the hard one (as Go's runtime and nginx's
    worker_rlimit_nofile do): every client and backend connection is a file."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _serve_with(options: ServeOptions, on_ready: Callable[[], None] | None, link: StoreLink) -> int:
    raise_file_limit()  # before the workers start: they inherit it
    config, diags, sources = _load(options.config, link=link, store=options.store)
    built = None if config is None else _build(config, options.config)
    if isinstance(built, Diagnostic):
        diags = [*diags, built]
    _report(diags)
    if config is None or not isinstance(built, Snapshot):
        print(f"iamgate: {_blamed(diags, options.config)} has errors; not starting", file=sys.stderr)
        return 2
    try:
        sock = bind(options.host, options.port)
    except OSError as exc:
        print(
            f"iamgate: cannot listen on {options.host}:{options.port}: {exc.strerror or exc}", file=sys.stderr
        )
        return 2
    admin_sock = None
    if options.admin_port is not None:
        try:
            admin_sock = bind(options.admin_host, options.admin_port)
        except OSError as exc:
            sock.close()
            print(
                f"iamgate: cannot listen on {options.admin_host}:{options.admin_port} (--admin-port): "
                f"{exc.strerror or exc}",
                file=sys.stderr,
            )
            return 2
    log.info(
        "listening on http://%s:%d (%d worker(s), %d API(s)); request path: %s",
        options.host,
        sock.getsockname()[1],
        options.workers,
        len(config.apis),
        compiled_state(),
    )
    if on_ready is not None:
        on_ready()
    if options.workers <= 1:
        worker = Worker(
            options, built, sock, admin_sock=admin_sock, control=None, stamps=sources.stamps, link=link
        )
        _run(worker.run())
    else:
        supervisor = Supervisor(options, config, sources, sock, admin_sock, link)
        try:
            _run(supervisor.run())
        finally:
            supervisor.close()
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
