"""What the client connections of one process share: the snapshot being served, the services
the request path uses (backend pools, throttle backend, metrics), the access log, the open
connections and the deadlines of the requests being proxied, and the one timer that checks them.

Every request, whatever happened to it, ends in :meth:`GatewayState.record` (metrics and the
access-log line).
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
from typing import TYPE_CHECKING, Final

from iamgate.clock import monotonic
from iamgate.config.snapshot import Snapshot, release_superseded
from iamgate.observe.accesslog import AccessLog
from iamgate.observe.decisions import DecisionLog
from iamgate.observe.drain import process_log as installed_process_log
from iamgate.observe.metrics import Metrics
from iamgate.pipeline.services import Services
from iamgate.serving.tls import certificate_gauges
from iamgate.throttle.factory import make_throttler
from iamgate.upstream.pool import UpstreamPools

if TYPE_CHECKING:
    from iamgate.integrations.proxy import HttpProxy
    from iamgate.pipeline.exchange import Exchange
    from iamgate.serving.connection import DownstreamConnection
    from iamgate.throttle.backend import Backend

__all__ = ["TICK", "GatewayState", "file_room"]

log: Final = logging.getLogger("iamgate")

TICK: Final = 0.05  # seconds between deadline sweeps
LOG_DROPPED: Final = "iamgate_log_lines_dropped_total"
_SWEEP_TICKS: Final = 20  # client connections are checked for timeouts every 20 ticks (1 s)
_LIMIT_LOG_INTERVAL: Final = 10.0  # seconds between two "connection limit reached" log lines


def file_room() -> int:
    """How many client connections the open-file limit leaves room for: one file for the client
    and one for its backend connection each, after the files open now and a reserve of 16."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError:
        used = 64
    return max(1, (soft - used - 16) // 2)


def _backend_settings(snapshot: Snapshot) -> tuple[object, ...]:
    t = snapshot.config.throttling
    return (t.backend, t.redis_url, t.redis_timeout, t.redis_prefix)


def _pools(snapshot: Snapshot) -> UpstreamPools:
    up = snapshot.settings.upstream
    return UpstreamPools(
        max_connections=up.max_connections,
        max_idle=up.max_idle,
        idle_timeout=up.idle_timeout,
        connect_timeout=up.connect_timeout,
    )


class GatewayState:
    """What the connections of one process share. ``snapshot`` is swapped atomically on reload."""

    def __init__(self, snapshot: Snapshot, *, shared_state: str | None = None) -> None:
        self.snapshot = snapshot
        self.shared_state = shared_state
        metrics = Metrics()
        metrics.set("iamgate_config_version", snapshot.version)
        certificate_gauges(metrics, snapshot.config)
        self.services = Services(
            _pools(snapshot), make_throttler(snapshot.config.throttling, shared_state), metrics
        )
        self.access_log = AccessLog(snapshot.settings.access_log.destination, self._access_dropped)
        process_log = installed_process_log()
        if process_log is not None:  # what a stalled stderr made the process log drop
            process_log.drain.on_drop = self._process_dropped
        # the console's live decisions: counts per kind, and the recent requests when on
        self.decisions = DecisionLog(keep=snapshot.config.management.decisions)
        self.connections: set[DownstreamConnection] = set()
        self.timed: set[HttpProxy] = set()  # requests being proxied, with a deadline
        self._ticker: asyncio.TimerHandle | None = None
        self.in_flight = 0
        self.draining = False
        self.ready = True
        self.now = monotonic()  # updated every tick: the clock of client-connection timeouts
        self._ticks = 0
        self.file_room = file_room()
        self.max_clients = snapshot.settings.client.max_connections or self.file_room
        self._limit_logged = -_LIMIT_LOG_INTERVAL

    @property
    def pools(self) -> UpstreamPools:
        return self.services.pools

    @property
    def throttler(self) -> Backend:
        return self.services.throttler

    @property
    def metrics(self) -> Metrics:
        return self.services.metrics

    def swap(self, snapshot: Snapshot) -> None:
        old = self.snapshot
        self.snapshot = snapshot
        release_superseded(old, snapshot)
        services = self.services
        services.metrics.set("iamgate_config_version", snapshot.version)
        certificate_gauges(services.metrics, snapshot.config)
        if old.settings.upstream != snapshot.settings.upstream:
            services.pools.retire()
            services.pools = _pools(snapshot)
        if _backend_settings(old) != _backend_settings(snapshot):
            services.throttler.close()
            services.throttler = make_throttler(snapshot.config.throttling, self.shared_state)
        if old.settings.access_log.destination != snapshot.settings.access_log.destination:
            self.access_log.close(wait=0.0)  # its backlog is written by its own thread
            self.access_log = AccessLog(snapshot.settings.access_log.destination, self._access_dropped)
        self.max_clients = snapshot.settings.client.max_connections or self.file_room
        self.decisions.set_keep(snapshot.config.management.decisions)

    def _access_dropped(self, lines: int) -> None:
        self.metrics.inc(LOG_DROPPED, (("log", "access"),), lines)

    def _process_dropped(self, lines: int) -> None:
        self.metrics.inc(LOG_DROPPED, (("log", "process"),), lines)

    # --- the timer --------------------------------------------------------------------------
    def start_ticker(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._ticker is None:
            self._ticker = loop.call_later(TICK, self._tick, loop)

    def stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self._ticker = loop.call_later(TICK, self._tick, loop)
        now = monotonic()
        self.now = now
        self.decisions.refill(TICK)
        if self.timed:
            self.check_deadlines(now)
        self._ticks += 1
        if self._ticks >= _SWEEP_TICKS:
            self._ticks = 0
            self.check_clients(now)

    def check_deadlines(self, now: float) -> None:
        """Time out backend exchanges past their deadline. Run every ``TICK`` seconds: one sweep
        instead of a timer per request (deadlines are met within a tick)."""
        for proxy in [p for p in self.timed if p.deadline <= now]:
            proxy.timed_out()

    def check_clients(self, now: float) -> None:
        """Close client connections that waited too long for a request head, the next request
        or more of a body (``gateway.client`` timeouts); one sweep a second."""
        client = self.snapshot.settings.client
        for conn in list(self.connections):
            conn.check_idle(now, client)

    # --- the connection limit ------------------------------------------------------------------
    def make_room(self) -> bool:
        """At the connection limit: close the connection that has waited longest for a request
        (one that never sent a byte, a slow head, an idle keep-alive). False if all are busy."""
        victim: DownstreamConnection | None = None
        for conn in self.connections:
            transport = conn.transport
            if conn.ex is not None or transport is None or transport.is_closing():
                continue
            if victim is None or conn.since < victim.since:
                victim = conn
        if victim is None:
            return False
        self.dropped(victim, "evicted")
        return True

    def dropped(self, conn: DownstreamConnection, reason: str) -> None:
        """Close a client connection that is not being answered (count it by reason)."""
        self.services.metrics.inc("iamgate_client_connections_closed_total", (("reason", reason),))
        conn.refused = True
        transport = conn.transport
        if transport is not None:
            transport.abort()

    def at_limit(self, refused: bool) -> None:
        """Log (at most every 10 s) that the connection limit was reached."""
        if refused:
            self.services.metrics.inc("iamgate_client_connections_closed_total", (("reason", "limit"),))
        if self.now - self._limit_logged >= _LIMIT_LOG_INTERVAL:
            self._limit_logged = self.now
            log.warning(
                "client connections at the limit (%d per process: gateway.client.max_connections, "
                "or what the open-file limit leaves room for): %s",
                self.max_clients,
                "refusing new connections, every one is busy"
                if refused
                else "closing the ones that waited longest for a request",
            )

    # --- every request's end ---------------------------------------------------------------------
    def record(self, ex: Exchange) -> None:
        """Count a finished request, keep it for the console's decision stream and write its
        access-log line."""
        api = ex.api.id if ex.api is not None else "-"
        stage = ex.stage.name if ex.stage is not None else "-"
        # _value_: Enum.value is a descriptor call on CPython 3.11, the attribute behind it is not
        decision = ex.decision.effect._value_ if ex.decision is not None else "none"
        metrics = self.services.metrics
        metrics.request(api, stage, ex.status, decision, ex.end - ex.start, ex.integration_latency)
        self.decisions.add(ex)
        if ex.would_deny:
            metrics.inc("iamgate_policy_would_deny_total", (("api", api), ("stage", stage)))
            log.warning(
                "report-only policy would deny request %s: %s %s (%s)",
                ex.request_id,
                ex.method,
                ex.arn,
                ", ".join(str(r) for r in ex.decision.determining) if ex.decision else "",
            )
        if self.access_log.enabled:
            template = ex.stage.access_log_format if ex.stage is not None else None
            self.access_log.log(ex, template or ex.snapshot.settings.access_log.format)
