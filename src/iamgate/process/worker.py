"""One serving process: the only one, or a worker under a supervisor.

A :class:`Worker` serves on the listening socket with one :class:`~iamgate.serving.state.GatewayState`
(what its connections share), answers the admin port when it owns it, and handles its signals:
``SIGHUP`` reloads (a worker under a supervisor leaves that to the supervisor), ``SIGTERM`` and
``SIGINT`` drain (stop accepting, close idle connections, finish in-flight requests up to
``--drain-timeout``, then exit 0), ``SIGUSR1`` reopens the access log. Housekeeping every
second: idle upstream connections swept, watched files polled.

Under a supervisor it answers the control socket (:mod:`iamgate.process.control`): it is the
:class:`~iamgate.process.control.Handler`. :func:`main` is the entry of a worker process
(``python -m iamgate.process.worker``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import socket
import sys
import time
from typing import Any

from iamgate.admin import AdminServer
from iamgate.config.domains import TlsChoice
from iamgate.config.model import GatewayConfig
from iamgate.config.snapshot import Snapshot
from iamgate.console import ConsoleApp
from iamgate.console.feed import local_feed
from iamgate.observe.drain import install_process_log
from iamgate.observe.metrics import render
from iamgate.policy import Diagnostic
from iamgate.process import reload, signals
from iamgate.process.control import (
    WorkerArgs,
    answer_supervisor,
    parse_command,
    read_first_load,
    refused_first_load,
)
from iamgate.process.options import ServeOptions
from iamgate.process.reload import WATCH_INTERVAL, Stamp, Watcher
from iamgate.serving.connection import connection_factory, tls_connection
from iamgate.serving.state import GatewayState
from iamgate.serving.tls import TlsListener
from iamgate.store.link import StoreLink
from iamgate.throttle.usage import get_usage

__all__ = ["Worker", "main"]

log = logging.getLogger("iamgate")


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
        self.watcher = Watcher(stamps) if options.watch and not supervised and stamps is not None else None
        self.server: asyncio.AbstractServer | TlsListener | None = None
        self.admin: AdminServer | None = None
        self.stopped: asyncio.Event | None = None
        self._drain_task: asyncio.Task[None] | None = None

    def reload(self, reason: str) -> bool:
        """Read the files again (a process without a supervisor)."""
        config, diags, sources = reload.load(self.options.config, link=self.link, store=self.options.store)
        if self.options.watch:
            self.watcher = Watcher(sources.stamps)
        ok = self._apply(config, diags, reason)
        if ok:
            self._follow_store()
        return ok

    def _follow_store(self) -> None:
        state = self.state
        reload.follow_store(
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
        snapshot, diags = reload.checked(config, diags, self.options.config, state.snapshot.config)
        if snapshot is None:
            keeping = f"still serving version {state.snapshot.version}"
            reload.refuse(state.metrics, reason, diags, self.options.config, keeping)
            return False
        reload.report(diags)  # warnings
        if version is not None:
            snapshot = dataclasses.replace(snapshot, version=version)
        state.swap(snapshot)
        reload.release_memory()
        if self.control is None:  # under a supervisor, the supervisor counts reloads
            state.metrics.inc("iamgate_config_reloads_total", (("result", "ok"),))
        log.info(
            "configuration reloaded (%s): version %d (%s)",
            reason,
            state.snapshot.version,
            reload.rebuilt(state.snapshot.config),
        )
        return True

    def reopen_log(self) -> None:
        self.state.access_log.reopen()  # looked up now: a reload may have replaced the log

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.stopped = asyncio.Event()
        state = self.state
        if state.snapshot.edge is None:
            self.server = await loop.create_server(connection_factory(state), sock=self.sock, backlog=2048)
        else:
            self.server = self._tls_listener()
        configured = self.state.snapshot.settings.client.max_connections
        log.info(
            "up to %d client connections in this process (%s)",
            self.state.max_clients,
            "gateway.client.max_connections" if configured else "what the open-file limit leaves room for",
        )
        if self.admin_sock is not None:
            self.admin = AdminServer(
                self.readiness,
                self.metrics_text,
                self.usage,
                console=ConsoleApp(
                    lambda: state.snapshot.config, feed=local_feed(state.decisions, lambda: state.metrics)
                ),
            )
            admin_tls = lambda: state.snapshot.settings.admin_tls  # noqa: E731
            await self.admin.start(self.admin_sock, admin_tls, lambda: state.metrics)
        if self.control is None:
            loop.add_signal_handler(signal.SIGHUP, lambda: self.reload("SIGHUP"))
        else:
            loop.add_signal_handler(
                signal.SIGHUP, lambda: log.info("SIGHUP ignored: send it to the supervisor")
            )
        loop.add_signal_handler(signal.SIGTERM, self.begin_drain)
        loop.add_signal_handler(signal.SIGINT, self.begin_drain)
        loop.add_signal_handler(signal.SIGUSR1, self.reopen_log)
        signals.unblock()
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

    def _tls_listener(self) -> TlsListener:
        """The data port in TLS: contexts and timeout read from the snapshot at each accept, so
        a reload renews certificates for new connections while open ones keep theirs."""
        state = self.state

        def choose(name: str | None) -> TlsChoice | None:
            edge = state.snapshot.edge
            return None if edge is None else edge.choose(name)

        def timeout() -> float:
            edge = state.snapshot.edge
            return 10.0 if edge is None else edge.handshake_timeout

        def room(pending: int) -> bool:
            if len(state.connections) + pending < state.max_clients:
                return True
            room = state.make_room()
            state.at_limit(not room)
            return room

        listener = TlsListener(
            self.sock,
            choose=choose,
            timeout=timeout,
            factory=lambda choice: tls_connection(state, choice),
            metrics=lambda: state.metrics,
            room=room,
        )
        listener.start()
        return listener

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

    # -- the control socket (control.Handler): what the supervisor asks

    async def _serve_control(self) -> None:
        """Answer the supervisor until it goes away, then drain."""
        if self.control is None:
            return
        await answer_supervisor(self.control, self, self.first_id)
        log.warning("the supervisor is gone: draining")
        self.begin_drain()

    @property
    def version(self) -> int:
        return self.state.snapshot.version

    def load(self, version: int, files: dict[str, bytes]) -> bool:
        config, diags, _ = reload.load(self.options.config, files, store=self.options.store)
        return self._apply(config, diags, "supervisor", version)

    def metrics_export(self) -> dict[str, Any]:
        self._gauges()
        return self.state.metrics.export()

    def decisions_batch(self, cursor: int, limit: int) -> dict[str, Any]:
        return self.state.decisions.batch(cursor, limit)

    def explain_decision(self, seq: int) -> dict[str, Any] | None:
        return self.state.decisions.explain(seq)


def main(argv: list[str]) -> int:
    """Entry of a worker started by the supervisor (``python -m iamgate.process.worker ...``,
    the arguments of :func:`iamgate.process.control.command`)."""
    args = parse_command(argv)
    install_process_log("%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s")
    worker = _first_load(args)
    if worker is None:
        return 2
    signals.run(worker.run())
    return 0


def _first_load(args: WorkerArgs) -> Worker | None:
    """The worker, serving the configuration the supervisor sends first (None: it sent none,
    or one this process cannot build). A function of its own so that what the first load read
    (the store's state as sent, the configuration, the snapshot before it is numbered) is freed
    when the worker has it: kept as locals of ``main`` they lived as long as the process, and
    with them every API a later redeploy replaced."""
    channel = socket.socket(fileno=args.control_fd)
    first = read_first_load(channel)
    if first is None:
        return None  # the supervisor went away before sending the configuration
    version, files, first_id = first
    config, diags, _ = reload.load(args.config, files, store=args.store)
    built, diags = reload.checked(config, diags, args.config)
    if built is None:
        reload.report(diags)
        channel.sendall(refused_first_load(first_id))
        return None
    sock = socket.socket(fileno=args.listen_fd)
    sock.setblocking(False)
    channel.setblocking(False)
    options = ServeOptions(
        args.config, admin_port=None, drain_timeout=args.drain_timeout, watch=False, store=args.store
    )
    # the supervisor's numbering, the same in every worker
    return Worker(
        options,
        dataclasses.replace(built, version=version),
        sock,
        admin_sock=None,
        control=channel,
        first_id=first_id,
        shared_state=args.throttle_state,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
