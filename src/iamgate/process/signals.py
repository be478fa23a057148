"""The signals a gateway process handles, and its event loop.

``SIGHUP`` reloads, ``SIGTERM``/``SIGINT`` drain, ``SIGUSR1`` reopens the access log. They are
blocked until their handlers are in place (a worker inherits them blocked from the supervisor), so
a signal that arrives while a process starts is handled once it is ready, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine, Iterator
from typing import Any, Final

import uvloop

__all__ = ["SIGNALS", "blocked", "run", "unblock"]

SIGNALS: Final = frozenset({signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1})


@contextlib.contextmanager
def blocked() -> Iterator[None]:
    """:data:`SIGNALS` blocked in this thread (and in the processes it starts) until the end."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def unblock() -> None:
    """Once the handlers are in place: what arrived meanwhile is handled now."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on a new uvloop event loop, closed at the end."""
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(main)
    finally:
        loop.close()
