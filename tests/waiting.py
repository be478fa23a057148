"""Waiting for something to happen in the background: a condition polled until a deadline.

The deadline is a hang guard, not a timing assertion: a wait fails only when its condition never
comes true. Tests wait on what they need (an event, a log line, a metric) instead of sleeping a
fixed time, which is either too short on a loaded machine or longer than needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

__all__ = ["wait_for", "wait_until"]


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns a truthy value (returned); an ``OSError`` it raises
    (a server not listening yet) counts as not yet. ``what`` names the condition in the failure."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            value = predicate()
            if value:
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


async def wait_until(
    predicate: Callable[[], Any], what: str, timeout: float = 15.0, interval: float = 0.02
) -> Any:
    """:func:`wait_for` inside an event loop: polls without blocking the loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)
