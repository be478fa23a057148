"""Running the gateway: sockets, worker processes, signals, reload and graceful drain.

``serve()`` binds the listening socket once, then runs one worker in-process or forks N workers
that accept on the shared socket (``SO_REUSEPORT`` spreads connections). The process that owns
the admin port (the only worker, or the supervisor) answers ``/healthz``, ``/readyz`` and
``/metrics``; with several workers it asks each over a pipe and merges their metrics.

Signals: ``SIGHUP`` reloads the configuration (also done when a watched file changes): the new
file is validated completely and swapped in atomically; if it is invalid the old configuration
keeps serving and the diagnostics are logged. ``SIGTERM``/``SIGINT`` drain: stop accepting,
finish in-flight requests (up to ``--drain-timeout``), then exit. ``SIGUSR1`` reopens the
access log (log rotation).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uvloop

from iamgate.admin import AdminServer
from iamgate.config.load import load_config
from iamgate.config.model import GatewayConfig
from iamgate.config.snapshot import build_snapshot
from iamgate.observe.metrics import Metrics, merge, render
from iamgate.policy import Diagnostic
from iamgate.server import GatewayState

__all__ = ["ServeOptions", "serve"]

log = logging.getLogger("iamgate")
WATCH_INTERVAL = 1.0


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


def _report(diags: list[Diagnostic]) -> None:
    for d in diags:
        print(d.render(), file=sys.stderr)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    with contextlib.suppress(AttributeError, OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _mtimes(files: tuple[str, ...]) -> dict[str, tuple[float, int] | None]:
    out: dict[str, tuple[float, int] | None] = {}
    for name in files:
        try:
            st = os.stat(name)
            out[name] = (st.st_mtime, st.st_size)
        except OSError:
            out[name] = None
    return out


class _Watcher:
    """Polls the configuration file and the policy files it names."""

    def __init__(self, files: tuple[str, ...]) -> None:
        self.files = files
        self.seen = _mtimes(files)

    def changed(self) -> bool:
        now = _mtimes(self.files)
        if now != self.seen:
            self.seen = now
            return True
        return False


def _install_loop() -> asyncio.AbstractEventLoop:
    return uvloop.new_event_loop()


class Worker:
    """One serving process (or the only one)."""

    def __init__(
        self,
        options: ServeOptions,
        config: GatewayConfig,
        sock: socket.socket,
        *,
        admin: bool,
        control: socket.socket | None,
    ) -> None:
        self.options = options
        self.sock = sock
        self.admin_enabled = admin
        self.control = control
        self.state = GatewayState(build_snapshot(config))
        self.watcher = _Watcher(config.watched) if options.watch and control is None else None
        self.server: asyncio.AbstractServer | None = None
        self.admin: AdminServer | None = None
        self.stopped: asyncio.Event | None = None
        self._drain_task: asyncio.Task[None] | None = None

    def reload(self, reason: str) -> bool:
        config, diags = load_config(self.options.config)
        if config is None:
            self.state.metrics.inc("iamgate_config_reloads_total", (("result", "failed"),))
            log.error(
                "reload (%s) refused: %s has errors; still serving version %d",
                reason,
                self.options.config,
                self.state.snapshot.version,
            )
            _report(diags)
            return False
        snapshot = build_snapshot(config)
        self.state.swap(snapshot)
        if self.watcher is not None:
            self.watcher = _Watcher(config.watched)
        self.state.metrics.inc("iamgate_config_reloads_total", (("result", "ok"),))
        log.info("configuration reloaded (%s): version %d", reason, snapshot.version)
        return True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.stopped = asyncio.Event()
        self.server = await loop.create_server(self.state.protocol_factory(), sock=self.sock, backlog=2048)
        if self.admin_enabled and self.options.admin_port is not None:
            self.admin = AdminServer(self.readiness, self.metrics_text)
            await self.admin.start(self.options.admin_host, self.options.admin_port)
        loop.add_signal_handler(signal.SIGHUP, lambda: self.reload("SIGHUP"))
        loop.add_signal_handler(signal.SIGTERM, self.begin_drain)
        loop.add_signal_handler(signal.SIGINT, self.begin_drain)
        loop.add_signal_handler(signal.SIGUSR1, self.state.access_log.reopen)
        control = loop.create_task(self._serve_control()) if self.control is not None else None
        housekeeping = loop.create_task(self._housekeeping())
        await self.stopped.wait()
        housekeeping.cancel()
        if control is not None:
            control.cancel()
        self.state.stop_ticker()
        self.state.access_log.close()
        self.state.pools.close()
        if self.admin is not None:
            self.admin.close()

    def readiness(self) -> tuple[bool, dict[str, object]]:
        snap = self.state.snapshot
        ready = self.state.ready and not self.state.draining
        return ready, {"config_version": snap.version, "apis": sorted(snap.apis)}

    async def metrics_text(self) -> str:
        return render(self.state.metrics)

    def begin_drain(self) -> None:
        state = self.state
        if state.draining:
            return
        state.draining = True
        log.info("draining: no new connections; %d request(s) in flight", state.in_flight)
        if self.server is not None:
            self.server.close()
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
            if self.watcher is not None and self.watcher.changed():
                self.reload("file changed")

    async def _serve_control(self) -> None:
        """Answer the supervisor: one JSON line of metrics per request line."""
        assert self.control is not None
        reader, writer = await asyncio.open_connection(sock=self.control)
        while True:
            line = await reader.readline()
            if not line:
                return
            writer.write(json.dumps(self.state.metrics.export()).encode() + b"\n")
            await writer.drain()


class Supervisor:
    """Several workers: starts them (fresh interpreters sharing the listening socket), restarts
    them, reloads them, drains them."""

    def __init__(self, options: ServeOptions, config: GatewayConfig, sock: socket.socket) -> None:
        self.options = options
        self.config = config
        self.sock = sock
        self.children: dict[int, tuple[subprocess.Popen[bytes], socket.socket]] = {}
        self.watcher = _Watcher(config.watched) if options.watch else None
        self.draining = False
        self.metrics = Metrics()

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
        ]
        proc = subprocess.Popen(argv, pass_fds=(self.sock.fileno(), child_end.fileno()))  # noqa: S603
        child_end.close()
        parent_end.setblocking(False)
        self.children[proc.pid] = (proc, parent_end)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.options.workers):
            self.spawn()
        admin = None
        if self.options.admin_port is not None:
            admin = AdminServer(self.readiness, self.metrics_text)
            await admin.start(self.options.admin_host, self.options.admin_port)
        loop.add_signal_handler(signal.SIGHUP, lambda: self.reload("SIGHUP"))
        loop.add_signal_handler(signal.SIGTERM, self.drain)
        loop.add_signal_handler(signal.SIGINT, self.drain)
        loop.add_signal_handler(signal.SIGUSR1, lambda: self.signal_all(signal.SIGUSR1))
        while True:
            await asyncio.sleep(WATCH_INTERVAL if not self.draining else 0.1)
            self.reap()
            if self.draining:
                if not self.children:
                    break
                continue
            while len(self.children) < self.options.workers:
                log.warning("a worker exited; starting a new one")
                self.spawn()
            if self.watcher is not None and self.watcher.changed():
                self.reload("file changed")
        if admin is not None:
            admin.close()

    def reap(self) -> None:
        for pid, (proc, conn) in list(self.children.items()):
            if proc.poll() is not None:
                conn.close()
                del self.children[pid]

    def signal_all(self, sig: signal.Signals) -> None:
        for proc, _ in list(self.children.values()):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    def reload(self, reason: str) -> None:
        config, diags = load_config(self.options.config)
        if config is None:
            self.metrics.inc("iamgate_config_reloads_total", (("result", "failed"),))
            log.error(
                "reload (%s) refused: %s has errors; workers keep the current configuration",
                reason,
                self.options.config,
            )
            _report(diags)
            return
        self.config = config
        self.watcher = _Watcher(config.watched) if self.options.watch else None
        self.signal_all(signal.SIGHUP)

    def drain(self) -> None:
        if self.draining:
            return
        self.draining = True
        self.signal_all(signal.SIGTERM)
        self.sock.close()

    def readiness(self) -> tuple[bool, dict[str, object]]:
        return (not self.draining and bool(self.children)), {"workers": len(self.children)}

    async def metrics_text(self) -> str:
        exports = [self.metrics.export()]
        for _, conn in list(self.children.values()):
            with contextlib.suppress(OSError, TimeoutError, ValueError):
                exports.append(await asyncio.wait_for(_ask(conn), 2.0))
        return render(merge(exports))


async def _ask(conn: socket.socket) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(conn, b"metrics\n")
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = await loop.sock_recv(conn, 1 << 16)
        if not chunk:
            break
        buf += chunk
    data: dict[str, object] = json.loads(buf or b"{}")
    return data


def _run_worker(
    options: ServeOptions,
    config: GatewayConfig,
    sock: socket.socket,
    *,
    admin: bool,
    control: socket.socket | None,
) -> None:
    loop = _install_loop()
    asyncio.set_event_loop(loop)
    if control is not None:
        control.setblocking(False)
    worker = Worker(options, config, sock, admin=admin, control=control)
    try:
        loop.run_until_complete(worker.run())
    finally:
        loop.close()


def _worker_main(argv: list[str]) -> int:
    """Entry of a worker started by the supervisor (``python -m iamgate.supervisor ...``)."""
    parser = argparse.ArgumentParser(prog="iamgate-worker")
    parser.add_argument("--config", required=True)
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--drain-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    config, diags = load_config(args.config)
    if config is None:
        _report(diags)
        return 2
    sock = socket.socket(fileno=args.listen_fd)
    sock.setblocking(False)
    control = socket.socket(fileno=args.control_fd)
    options = ServeOptions(Path(args.config), admin_port=None, drain_timeout=args.drain_timeout, watch=False)
    _run_worker(options, config, sock, admin=False, control=control)
    return 0


def serve(options: ServeOptions, *, on_ready: Callable[[], None] | None = None) -> int:
    """Run the gateway until drained. Returns the process exit status."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr
    )
    config, diags = load_config(options.config)
    _report(diags)
    if config is None:
        print(f"iamgate: {options.config} has errors; not starting", file=sys.stderr)
        return 2
    try:
        sock = bind(options.host, options.port)
    except OSError as exc:
        print(
            f"iamgate: cannot listen on {options.host}:{options.port}: {exc.strerror or exc}", file=sys.stderr
        )
        return 2
    log.info(
        "listening on http://%s:%d (%d worker(s), %d API(s))",
        options.host,
        sock.getsockname()[1],
        options.workers,
        len(config.apis),
    )
    if on_ready is not None:
        on_ready()
    if options.workers <= 1:
        _run_worker(options, config, sock, admin=True, control=None)
        return 0
    loop = _install_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(Supervisor(options, config, sock).run())
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
