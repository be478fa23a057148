"""The decision stream as the console sees it: the events of every serving process merged into
one bounded ring, their totals per kind, and who serves (docs/console.md, "Live decisions").

A :class:`Feed` knows the processes only through two functions: ``gather(cursors, limit)``
(each process's :meth:`iamgate.observe.decisions.DecisionLog.batch`: in-process for a single
worker, over the control socket for a supervisor's workers) and ``explain(pid, seq)``. It asks
for events only while someone watches, at most every :data:`POLL` seconds whatever the number
of viewers (one refresh, shared); the serving processes never do anything per viewer.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final

from iamgate.observe.decisions import KEPT, KINDS, DecisionLog
from iamgate.observe.metrics import Metrics

__all__ = ["ASK", "POLL", "Explain", "Feed", "Gather", "local_feed"]

POLL: Final = 0.25  # seconds between two refreshes while someone watches
# events asked of one process per refresh: at most 1,000 a second each, more than anyone reads;
# beyond that the stream is a sample (the rest counted as missed), and watching costs the same
# whatever the load
ASK: Final = 250
STALE: Final = 2.0  # seconds without a refresh after which a gap is not counted as missed
DROPPED: Final = "iamgate_console_decisions_dropped_total"

Batch = dict[str, Any]
Gather = Callable[[dict[int, int], int], Awaitable[list[Batch]]]
Explain = Callable[[int, int], Awaitable[dict[str, Any] | None]]


class Feed:
    """Every process's recent requests, merged: ``ring`` holds ``(seq, event)`` with one
    numbering (the SSE event ids), at most ``size`` of them."""

    def __init__(
        self,
        gather: Gather,
        explain: Explain,
        metrics: Callable[[], Metrics],
        *,
        role: str = "single process",
        size: int = KEPT,
    ) -> None:
        self.gather = gather
        self.explainer = explain
        self.metrics = metrics
        self.role = role
        self.node = socket.gethostname()
        self.ring: deque[tuple[int, dict[str, Any]]] = deque(maxlen=size)
        self.seq = 0
        self.cursors: dict[int, int] = {}
        self.workers: list[dict[str, Any]] = []
        self.totals: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.keep = True
        self.dropped = 0  # events a viewer's full queue refused
        self.missed = 0  # events the processes' rings dropped before they were read
        self.viewers = 0
        self.lock = asyncio.Lock()
        self.last = -1e9  # when the last refresh ran (monotonic)
        self.last_events = -1e9  # when the last refresh that asked for events ran

    async def refresh(self, events: bool = True) -> None:
        """Bring the processes' new events (``events``) and totals in; at most every
        :data:`POLL` seconds, however many viewers ask."""
        async with self.lock:
            now = time.monotonic()
            if now - (self.last_events if events else self.last) < POLL:
                return
            fresh = now - self.last_events > STALE
            self.last = now
            if events:
                self.last_events = now
            # after a pause nobody watched: go on from the cursors, the gap is not counted
            batches = await self.gather(dict(self.cursors), ASK if events else 0)
            self.take(batches, events, counted=not fresh)

    def take(self, batches: list[Batch], events: bool, *, counted: bool) -> None:
        """Merge the processes' answers: their totals and who they are, and (``events``) their
        new events, ordered by time, into the ring; a gap is counted as missed when ``counted``."""
        totals = dict.fromkeys(KINDS, 0)
        workers: list[dict[str, Any]] = []
        new: list[dict[str, Any]] = []
        keep = all(bool(batch.get("keep", True)) for batch in batches) if batches else self.keep
        for batch in batches:
            pid = int(batch["pid"])
            for kind in KINDS:
                totals[kind] += int(batch["totals"].get(kind, 0))
            workers.append({"pid": pid, "started": float(batch["started"])})
            if not events:
                continue
            known = pid in self.cursors
            self.cursors[pid] = int(batch["cursor"])
            missed = int(batch["missed"])
            if missed and known and counted:
                self.miss(missed)
            new.extend(batch["events"])
        if events:
            alive = {w["pid"] for w in workers}
            self.cursors = {pid: c for pid, c in self.cursors.items() if pid in alive}
        new.sort(key=lambda e: e["time"])
        for event in new:
            self.seq += 1
            self.ring.append((self.seq, event))
        self.totals = totals
        self.workers = sorted(workers, key=lambda w: w["started"])
        self.keep = keep

    def after(self, cursor: int) -> tuple[list[tuple[int, dict[str, Any]]], int]:
        """The events after ``cursor`` still in the ring, and how many after it it no longer
        holds."""
        ring = self.ring
        if not ring or cursor >= self.seq:
            return [], 0
        first = ring[0][0]
        start = max(cursor + 1, first)
        lost = start - (cursor + 1)
        return [ring[i] for i in range(start - first, len(ring))], lost

    def drop(self, n: int = 1) -> None:
        """``n`` events a viewer's queue had no room for."""
        self.dropped += n
        self.metrics().inc(DROPPED, (("reason", "viewer"),), n)

    def miss(self, n: int) -> None:
        self.missed += n
        self.metrics().inc(DROPPED, (("reason", "missed"),), n)

    async def explain(self, event_id: str) -> dict[str, Any] | None:
        """The explanation of event ``PID-SEQ`` (None when no process still keeps it)."""
        pid_text, _, seq_text = event_id.partition("-")
        if not (pid_text.isdigit() and seq_text.isdigit()) or len(event_id) > 40:
            return None
        return await self.explainer(int(pid_text), int(seq_text))


def local_feed(log: DecisionLog, metrics: Callable[[], Metrics]) -> Feed:
    """The feed of the one process serving both the requests and the console."""

    async def gather(cursors: dict[int, int], limit: int) -> list[Batch]:
        return [log.batch(cursors.get(log.pid, 0), limit)]

    async def explain(pid: int, seq: int) -> dict[str, Any] | None:
        return log.explain(seq) if pid == log.pid else None

    return Feed(gather, explain, metrics)
