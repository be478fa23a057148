"""What a throttle backend decides, and the arithmetic every backend shares.

One request asks for one token from each of several **buckets** (usage-plan key, stage method,
account, per-route extensions) and, when its usage plan has one, one unit of a **quota**. The
backend grants all of them or none (a request refused at the third level does not spend tokens
at the first two) and answers with a :class:`Verdict`. Backends: ``memory`` (one process, or
several sharing one file of counters) and ``redis`` (any number of processes and machines).

Token bucket: capacity ``burst``, refilled at ``rate`` tokens per second, starting full;
``tokens(t) = min(burst, tokens(t0) + rate * (t - t0))``. Over any interval of length T a
bucket admits at most ``burst + rate * T`` requests.
"""

from __future__ import annotations

import calendar
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Final

from mypy_extensions import trait

__all__ = [
    "ALLOWED",
    "ONE",
    "Backend",
    "Bucket",
    "Pending",
    "Quota",
    "Verdict",
    "VerdictSink",
    "day_of",
    "period_bounds",
    "refill",
    "wait_for",
]


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str  # e.g. "plan:basic:key:k1", "stage:a1b2c3d4e5:prod:/pets/GET", "account"
    rate: float  # tokens per second
    burst: int  # capacity


@dataclass(frozen=True, slots=True)
class Quota:
    key: str  # e.g. "quota:basic:k1"
    limit: int
    start: int  # epoch seconds: the current period's first second
    end: int  # epoch seconds: the next period's first second


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    failed: str | None = None  # "throttle" | "quota" | "backend" (the backend failed; see fail modes)
    index: int = -1  # the failing bucket's index, for "throttle"
    retry_after: float = 0.0  # seconds until the request could pass
    remaining: int | None = None  # quota left after this request


ALLOWED: Final = Verdict(True)

log: Final = logging.getLogger("iamgate.throttle")


@trait
class VerdictSink:
    """Hears the verdict of a :class:`Pending` check (a trait: compiled, a direct native call)."""

    def verdict(self, verdict: Verdict) -> None:
        raise NotImplementedError


class Pending:
    """A check a backend answers later (Redis, once the server has replied or the timeout has
    passed): the backend calls :meth:`settle` exactly once, and :meth:`then` names who hears the
    verdict. No future and no scheduled callback: the verdict is handed on where it arrives (the
    request path goes on from the Redis reply's ``data_received``)."""

    def __init__(self, buckets: Sequence[Bucket], quota: Quota | None, now: float, usage: str | None) -> None:
        self.buckets = buckets
        self.quota = quota
        self.now = now
        self.usage = usage
        self.result: Verdict | None = None  # once settled
        self.sink: VerdictSink | None = None

    def then(self, sink: VerdictSink) -> None:
        """``sink.verdict`` is called once with the verdict: now, if it is already known."""
        result = self.result
        if result is None:
            self.sink = sink
        else:
            _tell(sink, result)

    def settle(self, verdict: Verdict) -> None:
        """The backend's answer; a second one is ignored. Never raises (a sink's failure is logged)."""
        if self.result is not None:
            return
        self.result = verdict
        sink = self.sink
        if sink is not None:
            self.sink = None
            _tell(sink, verdict)


def _tell(sink: VerdictSink, verdict: Verdict) -> None:
    try:
        sink.verdict(verdict)
    except Exception:  # the backend settles a whole batch: one listener's bug must not stop it
        log.exception("a throttle verdict's listener failed")


@trait
class Backend:
    """A throttle backend. A trait (see upstream/pool.py's ResponseSink): compiled, the throttle
    stage calls ``check`` through the trait's table instead of by name; every backend is a
    compiled class that names it as a base."""

    def check(
        self, buckets: Sequence[Bucket], quota: Quota | None, now: float, usage: str | None = None
    ) -> Verdict | Awaitable[Verdict]:
        """Take one token from every bucket and one unit of the quota, all or nothing.

        ``usage`` names a per-day usage counter to increment when allowed (for GetUsage); the day
        is taken from ``now`` in UTC.
        """
        raise NotImplementedError

    def submit(
        self, buckets: Sequence[Bucket], quota: Quota | None, now: float, usage: str | None = None
    ) -> Verdict | Pending:
        """:meth:`check` for the request path: the verdict, or a :class:`Pending` check to hear
        it from (:meth:`Pending.then`) when the backend answers later."""
        raise NotImplementedError

    def usage(self, key: str, days: Sequence[str]) -> dict[str, int] | Awaitable[dict[str, int]]:
        """Per-day request counts of a usage counter, for ``YYYY-MM-DD`` days."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


# A token is there when a bucket holds at least this much: float arithmetic must not refuse a
# request that arrives exactly 1/rate seconds after the last (0.1 * 10 is 0.9999999999999964).
ONE: Final = 1.0 - 1e-9


def refill(tokens: float, last: float, now: float, rate: float, burst: int) -> float:
    """Tokens in a bucket at ``now`` that held ``tokens`` at ``last``."""
    if now <= last:
        return tokens
    return min(float(burst), tokens + rate * (now - last))


def wait_for(tokens: float, rate: float) -> float:
    """Seconds until a bucket holding ``tokens`` has one."""
    if tokens >= ONE:
        return 0.0
    if rate <= 0:
        return float("inf")
    return (1.0 - tokens) / rate


def period_bounds(now: float, period: str, offset: int = 0) -> tuple[int, int]:
    """The UTC period containing ``now``: DAY; WEEK starting on weekday ``offset`` (0 = Sunday,
    as API Gateway's SDK documentation reads it); MONTH starting on day ``offset + 1``."""
    t = time.gmtime(int(now))
    day_start = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0))
    if period == "DAY":
        return day_start, day_start + 86400
    if period == "WEEK":
        weekday = (t.tm_wday + 1) % 7  # tm_wday: Monday = 0; here Sunday = 0
        back = (weekday - offset) % 7
        start = day_start - back * 86400
        return start, start + 7 * 86400
    if period == "MONTH":
        first = offset + 1
        year, month = t.tm_year, t.tm_mon
        if t.tm_mday < first:
            month -= 1
            if month == 0:
                year, month = year - 1, 12
        start = calendar.timegm((year, month, first, 0, 0, 0))
        ny, nm = (year + 1, 1) if month == 12 else (year, month + 1)
        return start, calendar.timegm((ny, nm, first, 0, 0, 0))
    raise ValueError(f"unknown quota period {period!r}")


def day_of(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(int(now)))
