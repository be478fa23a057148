"""The log drain (``observe/drain.py``) on real pipes: a reader that stops reading never blocks
the writer; what does not fit the backlog is dropped and counted, never half-written; what was
taken arrives whole and in order once the reader reads again."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import IO

import pytest

from iamgate.observe.accesslog import AccessLog
from iamgate.observe.drain import Drain, DrainHandler, process_log, to_stderr

F_SETPIPE_SZ = 1031  # Linux: the smallest pipe (one page) fills after 4 KiB


@pytest.fixture
def pipe() -> Iterator[tuple[IO[bytes], IO[bytes]]]:
    read_fd, write_fd = os.pipe()
    fcntl.fcntl(write_fd, F_SETPIPE_SZ, 4096)
    reader, writer = os.fdopen(read_fd, "rb", buffering=0), os.fdopen(write_fd, "wb")
    yield reader, writer
    for end in (reader, writer):
        with contextlib.suppress(OSError):  # a writer whose reader is gone: its buffer is lost
            end.close()


def _never_stuck(action: Callable[[], object]) -> object:
    """Run ``action`` on a thread; fail if it has not returned after 10 s (it blocked)."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(action()), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the writer blocked on a reader that does not read"
    return result[0]


def _read_all(reader: IO[bytes], size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = reader.read(size - len(data))
        assert chunk, "the pipe closed early"
        data += chunk
    return data


def test_a_stalled_reader_drops_and_counts_what_does_not_fit(pipe: tuple[IO[bytes], IO[bytes]]) -> None:
    reader, writer = pipe
    dropped: list[int] = []
    drain = Drain(writer, name="test", limit=64 * 1024, on_drop=dropped.append)
    lines = [f"{i:06d} {'x' * 1017}\n".encode() for i in range(400)]  # 1 KiB each, 400 KiB in all
    taken = _never_stuck(lambda: [drain.put(line) for line in lines])
    assert isinstance(taken, list)
    kept = [line for line, ok in zip(lines, taken, strict=True) if ok]
    # the pipe (4 KiB) and the backlog (64 KiB) hold about 68 lines; the rest was dropped
    assert 60 <= len(kept) <= 80
    assert drain.dropped_lines == len(lines) - len(kept) == sum(dropped)
    # the reader reads again: exactly the taken lines arrive, whole and in order
    assert _read_all(reader, sum(map(len, kept))) == b"".join(kept)
    assert drain.wait_written(10)
    # and the drain takes lines again
    assert drain.put(b"after\n")
    assert _read_all(reader, 6) == b"after\n"
    assert drain.close(timeout=10)


def test_close_waits_for_a_reading_reader_and_not_for_a_stalled_one(
    pipe: tuple[IO[bytes], IO[bytes]],
) -> None:
    reader, writer = pipe
    drain = Drain(writer, name="test", limit=1024 * 1024)
    for _ in range(64):
        assert drain.put(b"y" * 1024)
    assert _never_stuck(lambda: drain.close(timeout=0.2)) is False  # stalled: gave up, not stuck
    assert not drain.put(b"late")  # closed: takes nothing more
    assert _read_all(reader, 64 * 1024) == b"y" * 64 * 1024  # its thread still writes the backlog


def test_the_process_log_handler_formats_and_drops_through_its_drain(
    pipe: tuple[IO[bytes], IO[bytes]],
) -> None:
    reader, writer = pipe
    handler = DrainHandler(Drain(writer, name="process", limit=8 * 1024))
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("iamgate.test_drain")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        _never_stuck(lambda: [logger.warning("line %d %s", i, "z" * 500) for i in range(100)])
        assert handler.drain.dropped_lines > 0
        first = reader.read(4096).split(b"\n", 1)[0]
        assert first == b"WARNING line 0 " + b"z" * 500
    finally:
        logger.removeHandler(handler)
        handler.drain.limit = 1 << 30
        reader.close()  # the thread's pending write fails (EPIPE): counted, not raised
        handler.close()


def test_an_access_log_on_a_stalled_stdout_never_blocks(
    pipe: tuple[IO[bytes], IO[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The access log's flush hands its buffer to the drain; a full backlog loses those lines,
    counted through ``on_drop`` (what GatewayState turns into the metric)."""
    reader, writer = pipe

    class Stdout:
        buffer = writer

    monkeypatch.setattr("sys.stdout", Stdout)
    counted: list[int] = []
    log = AccessLog("-", counted.append)
    assert log._drain is not None
    log._drain.limit = 16 * 1024
    for _ in range(200):
        log._buffer.append(b"{" + b"a" * 1022 + b"}\n")
        log._size += 1024
        _never_stuck(log.flush)
    assert sum(counted) == log._drain.dropped_lines > 150
    log.close(wait=0.1)
    assert reader.read(1) == b"{"


def test_what_a_serving_process_prints_goes_through_its_process_log(
    pipe: tuple[IO[bytes], IO[bytes]],
) -> None:
    """A reload's diagnostics (``to_stderr``) share the process log's drain: in order with its
    lines, and dropped, not waited for, when stderr is stalled."""
    reader, writer = pipe
    handler = DrainHandler(Drain(writer, name="process", limit=4096))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        assert process_log() is handler
        _never_stuck(lambda: [to_stderr(f"warning {i}: {'w' * 200}\n") for i in range(200)])
        assert handler.drain.dropped_lines > 0
        assert reader.read(11) == b"warning 0: "
    finally:
        root.removeHandler(handler)
        handler.drain.limit = 1 << 30
        reader.close()
        handler.close()
    assert process_log() is None


def test_a_line_is_on_stderr_when_the_call_that_logged_it_returns(
    pipe: tuple[IO[bytes], IO[bytes]],
) -> None:
    """With room in the pipe and nothing waiting, the handler writes at once (as a stream
    handler does): whoever reads the log after an event finds its line, with no delay to wait
    out. The read below does not wait: the pipe is non-blocking for it."""
    reader, writer = pipe
    handler = DrainHandler(Drain(writer, name="process"))
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("iamgate.test_drain.sync")
    logger.propagate = False
    logger.addHandler(handler)
    os.set_blocking(reader.fileno(), False)
    try:
        for i in range(20):
            logger.warning("event %d", i)
            assert reader.read(4096) == f"event {i}\n".encode()
        assert handler.drain.pending == 0
    finally:
        logger.removeHandler(handler)
        handler.close()
