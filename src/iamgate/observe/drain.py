"""Log output that never stalls the event loop.

The access log and the process log write to stdout, stderr or a file. A write to a pipe whose
reader has stopped reading (a log collector that hangs, a supervisor that never drains the pipe,
``iamgate serve | less`` left on one page) blocks once the pipe's buffer is full, and a blocking
write on the event loop's thread stops every connection of the process. So the loop only hands
bytes to a :class:`Drain`: a bounded backlog written out by one thread of its own. When the
backlog is full, what does not fit is dropped and counted (``iamgate_log_lines_dropped_total``),
and the gateway goes on answering; once the reader reads again, the backlog drains and new lines
are written again.

Written by hand because the standard library's queue handlers (``logging.handlers.QueueHandler``)
report a full queue as an error on stderr (the stalled stream itself) and hold records, not
bytes, and no library offers a bounded, counted byte drain for a file object.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import sys
import threading
from collections.abc import Callable
from typing import IO, Final

__all__ = [
    "BACKLOG",
    "CLOSE_WAIT",
    "Drain",
    "DrainHandler",
    "install_process_log",
    "process_log",
    "to_stderr",
]

BACKLOG: Final = 4 * 1024 * 1024  # bytes waiting for a stalled reader before lines are dropped
CLOSE_WAIT: Final = 2.0  # seconds a close waits for the backlog to be written


class Drain:
    """Bytes written to ``target`` by a thread of its own, at most ``limit`` bytes waiting.

    :meth:`put` never blocks on the target (only on a lock held for list operations); it answers
    False when the chunk did not fit and was dropped. ``on_drop(lines)`` is called, on the
    caller's thread, for what was dropped. :meth:`close` waits up to ``timeout`` seconds for the
    backlog; a target still stalled then is left to its thread (a daemon: it never holds the
    process's exit)."""

    def __init__(
        self,
        target: IO[bytes],
        *,
        name: str,
        limit: int = BACKLOG,
        close_target: bool = False,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.target = target
        self.name = name
        self.limit = limit
        self.close_target = close_target
        self.on_drop = on_drop
        self.dropped_lines = 0
        self._chunks: list[bytes] = []
        self._pending = 0  # bytes put and not yet written (including the chunk being written)
        self._closed = False
        self._ready = threading.Condition(threading.Lock())
        self._thread = threading.Thread(target=self._run, name=f"iamgate-{name}-log", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Bytes waiting to be written."""
        return self._pending

    def put(self, data: bytes, lines: int = 1) -> bool:
        """Queue ``data`` (``lines`` lines) for the target; False when it was dropped."""
        with self._ready:
            fits = not self._closed and self._pending + len(data) <= self.limit
            if fits:
                self._chunks.append(data)
                self._pending += len(data)
                self._ready.notify()
            else:
                self.dropped_lines += lines
        if not fits and self.on_drop is not None:
            self.on_drop(lines)
        return fits

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._chunks and not self._closed:
                    self._ready.wait()
                if not self._chunks:  # closed, and all written
                    break
                data = b"".join(self._chunks)
                self._chunks.clear()
            try:
                self.target.write(data)
                self.target.flush()
            except (OSError, ValueError) as exc:  # a full disk, a closed pipe: noted, not raised
                if self.target is not sys.stderr.buffer:
                    _note(f"iamgate: {self.name} log write failed: {exc}\n")
            finally:
                with self._ready:
                    self._pending -= len(data)
                    self._ready.notify_all()
        if self.close_target:
            with contextlib.suppress(OSError):
                self.target.close()

    def wait_written(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until everything put so far is written."""
        with self._ready:
            return self._ready.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = CLOSE_WAIT) -> bool:
        """Take no more; write the backlog (waiting up to ``timeout`` s). True when all was
        written and the target closed (when ``close_target``)."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()


def _note(text: str) -> None:
    """A line on stderr, from a drain's thread (where a stalled stderr stalls only that thread)."""
    with contextlib.suppress(OSError):
        os.write(2, text.encode("utf-8", "replace"))


def _room_now(fd: int) -> bool:
    """Whether a write of up to ``select.PIPE_BUF`` bytes to ``fd`` completes without waiting: a
    pipe with a free buffer slot (Linux answers POLLOUT only then), a file, a terminal."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLOUT for _, events in poller.poll(0))


class DrainHandler(logging.Handler):
    """A logging handler that formats on the logging thread and writes through a :class:`Drain`
    (the process log: stderr).

    A line is written at once, on the caller's thread, when nothing waits in the drain and the
    target has room for it now (the usual case: a log line is on stderr when the call that
    logged it returns, as with a stream handler); otherwise it joins the drain's backlog, in
    order, and is written (or dropped) by the drain's thread."""

    def __init__(self, drain: Drain) -> None:
        super().__init__()
        self.drain = drain
        try:
            self._fd: int | None = drain.target.fileno()
        except (AttributeError, OSError, ValueError):  # no descriptor: always through the thread
            self._fd = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + "\n"
        except Exception:  # a bad format argument: logging's own report of it
            self.handleError(record)
            return
        self._write(text.encode("utf-8", "replace"), 1)

    def write_text(self, text: str) -> None:
        """Whole lines of text, in order with the log's records."""
        self.acquire()  # as Handler.handle holds it around emit
        try:
            self._write(text.encode("utf-8", "replace"), text.count("\n") or 1)
        finally:
            self.release()

    def _write(self, data: bytes, lines: int) -> None:
        drain, fd = self.drain, self._fd
        if fd is not None and drain.pending == 0 and len(data) <= select.PIPE_BUF and _room_now(fd):
            try:
                written = os.write(fd, data)
            except OSError:
                written = 0  # the drain's thread meets the same error, and notes it
            if written == len(data):
                return
            data = data[written:]
        drain.put(data, lines)

    def close(self) -> None:
        self.drain.close()
        super().close()


def install_process_log(fmt: str, level: int = logging.INFO) -> DrainHandler | None:
    """The process log to stderr through a :class:`Drain`, where ``logging.basicConfig`` would
    install a stream handler: only when the root logger has no other handler (as basicConfig;
    under pytest, its capture is left alone). Returns the handler, whose drain counts what a
    stalled stderr made it drop, or None."""
    root = logging.getLogger()
    if any(not isinstance(h, DrainHandler) for h in root.handlers):
        return None
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    handler = DrainHandler(Drain(sys.stderr.buffer, name="process"))
    handler.setFormatter(logging.Formatter(fmt))
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def process_log() -> DrainHandler | None:
    """The process log's handler, when :func:`install_process_log` installed one."""
    return next((h for h in logging.getLogger().handlers if isinstance(h, DrainHandler)), None)


def to_stderr(text: str) -> None:
    """``text`` (whole lines) on stderr: through the process log's drain when it has one, so that
    what a serving process prints (a reload's diagnostics) never blocks its event loop either."""
    handler = process_log()
    if handler is None:
        sys.stderr.write(text)
        sys.stderr.flush()
        return
    handler.write_text(text)
