"""Several workers: the supervisor starts them, replaces them, reloads them and drains them.

The supervisor owns the listening socket (its workers inherit it and accept on it), the admin
port and the configuration: on a reload it reads and validates the files and the store, then
sends the very bytes it validated to every worker (:mod:`iamgate.process.control`), so a
replacement worker starts from the last good configuration even while the file on disk is
broken. It counts reloads and merges its workers' metrics for ``/metrics``; a usage report is
asked of one worker. In-memory limits are shared by the workers through a file (in ``/dev/shm``
when the machine has it) that the supervisor creates and removes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from iamgate.admin import AdminServer
from iamgate.config.model import GatewayConfig
from iamgate.console import ConsoleApp
from iamgate.console.feed import Batch, Feed
from iamgate.observe.decisions import KEPT
from iamgate.observe.metrics import Metrics, merge, render
from iamgate.process import control, reload, signals
from iamgate.process.options import ServeOptions
from iamgate.process.reload import WATCH_INTERVAL, Sources, Watcher
from iamgate.store.link import StoreLink
from iamgate.throttle.memory import SharedMemoryBackend
from iamgate.throttle.usage import UsageError

__all__ = ["Supervisor"]

log = logging.getLogger("iamgate")


@dataclass(eq=False)
class _Child:
    proc: subprocess.Popen[bytes]
    channel: control.Channel
    ready: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    version: int = 0  # the configuration version the worker said it serves


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
        self.watcher = Watcher(sources.stamps) if options.watch else None
        self.draining = False
        self.metrics = Metrics()
        self.metrics.set("iamgate_config_version", self.version)
        self.throttle_state = _state_file()  # the in-memory limits, shared by the workers

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.throttle_state)

    def spawn(self) -> None:
        parent_end, child_end = socket.socketpair()
        argv = control.command(
            self.options,
            listen_fd=self.sock.fileno(),
            control_fd=child_end.fileno(),
            throttle_state=self.throttle_state,
        )
        # the worker inherits the blocked signals and unblocks them once its handlers are in place
        with signals.blocked():
            proc = subprocess.Popen(argv, pass_fds=(self.sock.fileno(), child_end.fileno()))  # noqa: S603
        child_end.close()
        child = _Child(proc, control.Channel(parent_end))
        self.children[proc.pid] = child
        self._later(child, self._start(child))

    def _later(self, child: _Child, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        child.tasks.add(task)
        task.add_done_callback(child.tasks.discard)

    def _load_request(self) -> control.Message:
        return control.load_request(self.version, self.files)

    async def _start(self, child: _Child) -> None:
        version = self.version
        error = await child.channel.load(self._load_request(), timeout=120)
        if error is None:
            child.ready = True
            child.version = max(child.version, version)
        elif child.proc.poll() is None:
            log.error("worker %d did not start: %s", child.proc.pid, error)

    async def _send_load(self, child: _Child, request: control.Message, version: int) -> None:
        error = await child.channel.load(request, timeout=60)
        if error is None:
            child.version = max(child.version, version)
        elif child.proc.poll() is None:
            log.error("worker %d did not load version %s", child.proc.pid, version)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.options.workers):
            self.spawn()
        if self.admin_sock is not None:
            feed = Feed(
                self.decisions,
                self.explain_decision,
                lambda: self.metrics,
                role=f"supervisor {os.getpid()}, {self.options.workers} workers",
                size=KEPT * self.options.workers,
            )
            self.admin = AdminServer(
                self.readiness,
                self.metrics_text,
                self.usage,
                console=ConsoleApp(lambda: self.config, feed=feed),
            )
            await self.admin.start(
                self.admin_sock, lambda: self.config.settings.admin_tls, lambda: self.metrics
            )
        loop.add_signal_handler(signal.SIGHUP, lambda: self.reload("SIGHUP"))
        loop.add_signal_handler(signal.SIGTERM, self.drain)
        loop.add_signal_handler(signal.SIGINT, self.drain)
        loop.add_signal_handler(signal.SIGUSR1, self.reopen_logs)
        signals.unblock()
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
            loop.call_soon(child.channel.close)  # after the cancelled tasks have let go of it
            del self.children[pid]
            if not self.draining:
                log.warning("a worker exited (pid %d, status %d); starting a new one", pid, status)

    def reload(self, reason: str) -> None:
        if self.draining:
            return
        config, diags, sources = reload.load(self.options.config, link=self.link, store=self.options.store)
        if self.options.watch:
            self.watcher = Watcher(sources.stamps)
        snapshot, diags = reload.checked(config, diags, self.options.config, self.config)
        if config is None or snapshot is None:
            keeping = f"workers keep version {self.version}"
            reload.refuse(self.metrics, reason, diags, self.options.config, keeping)
            return
        reload.report(diags)  # warnings
        self.files = dict(sources.data)
        self.config = config
        self.apis = sorted(api.id for api in config.apis)
        self.version += 1
        self.metrics.set("iamgate_config_version", self.version)
        self.metrics.inc("iamgate_config_reloads_total", (("result", "ok"),))
        log.info(
            "configuration reloaded (%s): version %d (%s), sent to the workers",
            reason,
            self.version,
            reload.rebuilt(config),
        )
        request = self._load_request()
        for child in self.children.values():
            self._later(child, self._send_load(child, request, self.version))
        del request  # sent (each send holds its own reference until done)
        reload.release_memory()
        self._follow_store()

    def _follow_store(self) -> None:
        reload.follow_store(
            self.link, self._store_changed, self.admin, lambda: self.config, self.usage, self.options
        )

    def _store_changed(self, generation: int) -> None:
        if not self.draining:
            self.reload(f"store generation {generation}")

    def reopen_logs(self) -> None:
        for child in self.children.values():
            self._later(child, child.channel.reopen(timeout=10))

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
            # how many ready workers serve config_version (after a reload, until each has loaded it)
            "workers_current": sum(c.ready and c.version == self.version for c in self.children.values()),
        }

    async def metrics_text(self) -> str:
        children = [c for c in self.children.values() if c.ready]
        answers = await asyncio.gather(*(c.channel.metrics(timeout=2) for c in children))
        return render(merge([self.metrics.export(), *answers]))

    async def decisions(self, cursors: dict[int, int], limit: int) -> list[Batch]:
        """The console's decision stream: each ready worker's batch after its cursor (by pid)."""
        children = [(pid, c) for pid, c in self.children.items() if c.ready]
        answers = await asyncio.gather(
            *(c.channel.decisions(cursors.get(pid, 0), limit, timeout=2) for pid, c in children)
        )
        return [a for a in answers if a is not None]

    async def explain_decision(self, pid: int, seq: int) -> dict[str, Any] | None:
        child = self.children.get(pid)
        if child is None or not child.ready:
            return None
        return await child.channel.explain(seq, timeout=5)

    async def usage(self, query: dict[str, str]) -> dict[str, Any]:
        """Asked of one worker: every worker sees the same counters (the node's shared file, or
        Redis)."""
        for child in [c for c in self.children.values() if c.ready]:
            usage = await child.channel.usage(query, timeout=5)
            if usage is not None:
                return usage
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
