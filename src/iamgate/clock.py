"""The clocks of the request path, and the time texts it writes, cached per second.

The clock functions are bound once: compiled (mypyc), ``time.perf_counter()`` is a module
attribute lookup and then the call, where a ``Final`` module name is a C static, also when
another compiled module imports it. Deadlines use the monotonic clock (not ``loop.time()``, a
method call on the loop object), set and checked against the same clock.

The texts of the current second (the policy's ``aws:CurrentTime`` and ``aws:EpochTime``, the
access log's ``requestTime``, the ``Date`` response header) are kept in one native object each
and redone when the second changes. Nothing here imports the rest of the package.
"""

from __future__ import annotations

import time
from typing import Final

__all__ = [
    "TimeKeys",
    "date_header",
    "monotonic",
    "perf_counter",
    "time_keys",
    "time_keys_cache",
    "wall_time",
]

perf_counter: Final = time.perf_counter  # latencies
monotonic: Final = time.monotonic  # deadlines and idle times
wall_time: Final = time.time  # seconds since the epoch: the request's time


class TimeKeys:
    """The time keys of one second (a native object when compiled: its fields are read directly,
    where a list's items would be generic objects compared generically)."""

    __slots__ = ("clf", "epoch", "iso", "second")

    def __init__(self) -> None:
        self.second = -1
        self.iso = ""
        self.epoch = ""
        self.clf = ""


# the keys of the second :func:`time_keys` was last asked for: a caller that wants one of them
# reads it here when ``second`` is its own (no tuple built), else calls :func:`time_keys`
time_keys_cache: Final = TimeKeys()


def time_keys(wall: float) -> tuple[str, str, str]:
    """(aws:CurrentTime ISO 8601, aws:EpochTime, CLF requestTime), cached per second."""
    second = int(wall)
    cache = time_keys_cache
    if cache.second != second:
        tm = time.gmtime(second)
        cache.iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", tm)
        cache.epoch = str(second)
        cache.clf = time.strftime("%d/%b/%Y:%H:%M:%S +0000", tm)
        cache.second = second
    return cache.iso, cache.epoch, cache.clf


class _DateLine:
    """The ``Date`` header line of one second (a native object when compiled, as TimeKeys)."""

    __slots__ = ("line", "second")

    def __init__(self) -> None:
        self.second = -1
        self.line = b""


_date_cache: Final = _DateLine()


def date_header() -> bytes:
    """The ``Date`` response header line (with its CRLF) of the current second."""
    now = int(wall_time())
    cache = _date_cache
    if cache.second != now:
        cache.line = (
            b"Date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode() + b"\r\n"
        )
        cache.second = now
    return cache.line
