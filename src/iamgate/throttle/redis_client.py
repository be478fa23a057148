"""A small Redis client built for the throttle's hot path (the wire format is in ``resp``).

Why not redis-py: its asyncio client spends tens of microseconds of Python per command
(a coroutine, a connection checkout, a lock, an encoder and a reader per call), which alone
would cost the gateway more than the 10% the throttle may take. This client does the least a
pipelined request path needs:

* one connection; every command issued within one event-loop iteration goes out in ONE
  ``write`` (coalesced with ``loop.call_soon``); :meth:`Client.defer` lets a caller turn what it
  gathered during the iteration into commands just before that write (the throttle sends a
  whole iteration's checks as one command);
* replies come back in order and are handed to a per-command callback (``on_done(reply, ctx)``)
  straight from ``data_received``: no coroutine and no Task per command;
* every command has a deadline; one timer sweeps the queue (armed at the oldest deadline), so a
  command never waits longer than the timeout, however the server or network misbehaves. A reply
  that arrives after its command timed out is read and dropped;
* a connection whose oldest command has waited ``stall_after`` seconds is dropped (a hung
  server); a lost connection fails every waiting command at once and is re-established in the
  background with exponential backoff and jitter. While it is down, :attr:`Client.accepting`
  is false, so callers fall back at once instead of waiting;
* replies are parsed incrementally (partial reads, many replies per read); bytes that are not
  RESP2 drop the connection.

Errors: an error *reply* (``-ERR ...``) is a :class:`RespError` value passed to ``on_done``;
a timeout is a :class:`TimeoutError`, a lost or refused connection a :class:`ConnectionError`,
both passed as values too. :meth:`Client.call` (for everything off the hot path) turns them
into exceptions of its future.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import random
import ssl
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeAlias

from iamgate.throttle.resp import Address, Parser, ProtocolError, Reply, encode

__all__ = ["Client", "OnDone"]

log: Final = logging.getLogger("iamgate.throttle.redis_client")

OnDone: TypeAlias = "Callable[[Reply | BaseException, Any], None]"

_IDLE: Final = 0
_CONNECTING: Final = 1
_UP: Final = 2
_DOWN: Final = 3
_CLOSED: Final = 4


class _Protocol(asyncio.Protocol):
    __slots__ = ("client", "parser")

    def __init__(self, client: Client) -> None:
        self.client = client
        self.parser = Parser()

    def data_received(self, data: bytes) -> None:
        self.client._received(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._lost(self, f"connection lost: {exc}" if exc else "connection closed by the server")


class Client:
    """One pipelined connection to Redis.

    ``send`` queues a pre-encoded command; ``on_done(reply, ctx)`` is called exactly once with
    the reply, a :class:`RespError`, :class:`TimeoutError` or :class:`ConnectionError`. Commands
    are only accepted while :attr:`accepting` (connected, or connecting for the first time).
    ``on_state(up, message)`` tells when the connection is lost and when it is back.
    """

    def __init__(
        self,
        address: Address,
        *,
        timeout: float,
        handshake: Sequence[bytes] = (),
        on_state: Callable[[bool, str], None] | None = None,
        connect_timeout: float = 1.0,
        stall_after: float | None = None,
        backoff: tuple[float, float] = (0.05, 2.0),
        max_pending: int = 100_000,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.address = address
        self.timeout = timeout
        self.accepting = False  # read on every command: a plain attribute, kept in step with _state
        self._handshake = tuple(handshake)
        self._on_state = on_state
        self._connect_timeout = max(connect_timeout, timeout)
        self._stall_after = stall_after if stall_after is not None else max(1.0, 10 * timeout)
        self._backoff = backoff
        self._max_pending = max_pending
        self._state = _IDLE
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proto: _Protocol | None = None
        self._transport: asyncio.Transport | None = None
        # [deadline, on_done (None once answered or timed out), ctx, own timer or None], send order
        self._pending: collections.deque[list[Any]] = collections.deque()
        self._swept = 0  # leading entries of _pending the sweep need not look at again
        self._sweeper: asyncio.TimerHandle | None = None
        self._wbuf: list[bytes] = []
        self._flush_scheduled = False
        self._prepares: list[Callable[[], None]] = []
        self._connector: asyncio.Task[None] | None = None
        self._up_waiters: list[asyncio.Future[None]] = []

    # -- public ---------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self._state == _UP

    def start(self) -> None:
        """Start connecting (needs a running loop); idempotent."""
        if self._state == _IDLE:
            self._loop = asyncio.get_running_loop()
            self._state = _CONNECTING
            self.accepting = True
            self._connector = self._loop.create_task(self._connect_loop())

    def send(self, payload: bytes, on_done: OnDone, ctx: Any, deadline: float | None = None) -> None:
        """Queue one encoded command. ``deadline`` (loop time) defaults to now + timeout; a caller
        that passes one must have computed it the same way (the sweep relies on deadlines growing
        in send order; :meth:`send_by` takes any deadline). Refused at once (``on_done`` gets a
        :class:`ConnectionError`) unless :attr:`accepting`."""
        loop = self._admit(on_done, ctx)
        if loop is None:
            return
        entry = [loop.time() + self.timeout if deadline is None else deadline, on_done, ctx, None]
        if self._sweeper is None:
            self._sweeper = loop.call_at(entry[0], self._sweep)
        self._queue(loop, entry, payload)

    def send_by(self, payload: bytes, on_done: OnDone, ctx: Any, deadline: float) -> None:
        """:meth:`send` with any deadline (a timer of its own: for the rare command, not the hot path)."""
        loop = self._admit(on_done, ctx)
        if loop is None:
            return
        entry: list[Any] = [deadline, on_done, ctx, None]
        entry[3] = loop.call_at(deadline, self._expire, entry)
        self._queue(loop, entry, payload)

    def defer(self, prepare: Callable[[], None]) -> None:
        """Call ``prepare()`` once, just before the next write; it may :meth:`send` commands,
        which go out in that write."""
        if self._state == _IDLE:
            self.start()
        assert self._loop is not None
        self._prepares.append(prepare)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _admit(self, on_done: OnDone, ctx: Any) -> asyncio.AbstractEventLoop | None:
        """The loop to queue a command on, or None when it is refused (``on_done`` told)."""
        if self._state == _IDLE:
            self.start()
        loop = self._loop
        assert loop is not None
        if not self.accepting or len(self._pending) >= self._max_pending:
            _call(
                on_done, ConnectionError("not connected" if not self.accepting else "too many waiting"), ctx
            )
            return None
        return loop

    def _queue(self, loop: asyncio.AbstractEventLoop, entry: list[Any], payload: bytes) -> None:
        self._pending.append(entry)
        self._wbuf.append(payload)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)

    def call(self, *args: bytes | str | int | float, timeout: float | None = None) -> asyncio.Future[Reply]:
        """One command, for use off the hot path: a future of the reply; an error reply, a
        timeout or a connection failure become its exception."""
        if self._state == _IDLE:
            self.start()
        assert self._loop is not None
        fut: asyncio.Future[Reply] = self._loop.create_future()
        if timeout is None:
            self.send(encode(*args), _settle, fut)
        else:
            self.send_by(encode(*args), _settle, fut, self._loop.time() + timeout)
        return fut

    async def wait_up(self, timeout: float) -> bool:
        """Wait until connected (starting if needed); False if not within ``timeout``."""
        if self._state == _IDLE:
            self.start()
        if self._state == _UP:
            return True
        if self._state == _CLOSED:
            return False
        assert self._loop is not None
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._up_waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        if self._state == _CLOSED:
            return
        self._state = _CLOSED
        self.accepting = False
        if self._connector is not None:
            self._connector.cancel()
            self._connector = None
        if self._transport is not None:
            self._transport.abort()
        self._fail_all(ConnectionError("the Redis client was closed"))
        self._proto = self._transport = None

    # -- the connection -------------------------------------------------------------------

    async def _connect_loop(self) -> None:
        delay, most = self._backoff
        while self._state != _CLOSED:
            try:
                await self._open()
                return
            except Exception as exc:  # refused, timed out, TLS, handshake... keep trying whatever it was
                self._drop()
                self._down(f"cannot connect to {self.address}: {exc or type(exc).__name__}")
            jitter = random.uniform(0.8, 1.2)  # noqa: S311 - spreading reconnects, not cryptography
            await asyncio.sleep(delay * jitter)
            delay = min(delay * 2, most)

    async def _open(self) -> None:
        loop = self._loop
        assert loop is not None
        addr = self.address
        commands: list[bytes] = []
        if addr.password is not None:
            auth = ("AUTH", addr.username, addr.password) if addr.username else ("AUTH", addr.password)
            commands.append(encode(*auth))
        if addr.db:
            commands.append(encode("SELECT", addr.db))
        commands.extend(self._handshake)
        if not commands:
            commands.append(encode("PING"))
        ctx = ssl.create_default_context() if addr.tls else None
        if addr.path is not None:
            opening = loop.create_unix_connection(lambda: _Protocol(self), addr.path)
        else:
            opening = loop.create_connection(lambda: _Protocol(self), addr.host, addr.port, ssl=ctx)
        transport, proto = await asyncio.wait_for(opening, self._connect_timeout)
        if self._state == _CLOSED:
            transport.abort()
            return
        self._proto, self._transport = proto, transport
        done: asyncio.Future[None] = loop.create_future()
        replies: list[Reply | BaseException] = []

        def answered(reply: Reply | BaseException, ctx: Any) -> None:
            replies.append(reply)
            if (isinstance(reply, BaseException) or len(replies) == len(commands)) and not done.done():
                done.set_result(None)

        deadline = loop.time() + self._connect_timeout
        entries: list[list[Any]] = [[deadline, answered, None, None] for _ in commands]
        for entry in entries:
            entry[3] = loop.call_at(deadline, self._expire, entry)
        # the handshake goes first, before anything queued while connecting for the first time
        self._pending.extendleft(reversed(entries))
        self._swept += len(entries)  # they have their own timers: the sweep skips them
        self._wbuf[:0] = commands
        self._flush()
        await done
        for reply in replies:
            if isinstance(reply, BaseException):
                self._drop()
                raise ConnectionError(f"handshake failed: {reply}")
        if self._proto is not proto:
            raise ConnectionError("the connection was lost during the handshake")
        was_down = self._state == _DOWN
        self._state = _UP
        self.accepting = True
        for waiter in self._up_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._up_waiters.clear()
        if was_down and self._on_state is not None:
            self._on_state(True, f"connected to {self.address}")

    def _down(self, reason: str) -> None:
        """Not connected: refuse commands until the connector succeeds."""
        if self._state == _CLOSED:
            return
        was_up = self._state == _UP
        self._state = _DOWN
        self.accepting = False
        self._fail_all(ConnectionError(reason))
        if self._on_state is not None:
            self._on_state(False, reason)
        if was_up and (self._connector is None or self._connector.done()):
            assert self._loop is not None
            self._connector = self._loop.create_task(self._connect_loop())

    def _drop(self) -> None:
        """Close the current connection; a stale protocol's later callbacks are ignored."""
        transport = self._transport
        self._proto = self._transport = None
        if transport is not None:
            transport.abort()

    def _lose(self, reason: str) -> None:
        self._drop()
        self._down(reason)

    def _lost(self, proto: _Protocol, reason: str) -> None:
        if proto is self._proto:
            self._lose(reason)

    def _fail_all(self, exc: BaseException) -> None:
        pending = self._pending
        self._pending = collections.deque()
        self._swept = 0
        self._wbuf.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for entry in pending:
            on_done = entry[1]
            if on_done is None:
                continue
            entry[1] = None
            if entry[3] is not None:
                entry[3].cancel()
            _call(on_done, exc, entry[2])

    # -- I/O --------------------------------------------------------------------------------

    def _flush(self) -> None:
        prepares = self._prepares
        if prepares:  # while _flush_scheduled is still set: what they send joins this write
            self._prepares = []
            for prepare in prepares:
                try:
                    prepare()
                except Exception:  # a caller's bug must not stop the write for everyone else
                    log.exception("Redis deferred send failed")
        self._flush_scheduled = False
        transport = self._transport
        if transport is None or not self._wbuf:
            return  # connecting: _open() flushes once connected
        wbuf = self._wbuf
        transport.write(wbuf[0] if len(wbuf) == 1 else b"".join(wbuf))
        wbuf.clear()

    def _received(self, proto: _Protocol, data: bytes) -> None:
        if proto is not self._proto:
            return
        try:
            replies = proto.parser.feed(data)
        except ProtocolError as exc:
            self._lose(f"protocol error from {self.address}: {exc}")
            return
        pending = self._pending
        for reply in replies:
            if not pending:
                self._lose(f"unexpected reply from {self.address}")
                return
            entry = pending.popleft()
            if self._swept:
                self._swept -= 1
            on_done = entry[1]
            if on_done is None:
                continue  # it timed out; this is its late reply
            entry[1] = None
            if entry[3] is not None:
                entry[3].cancel()
            _call(on_done, reply, entry[2])

    # -- deadlines --------------------------------------------------------------------------

    def _expire(self, entry: list[Any]) -> None:
        on_done = entry[1]
        if on_done is not None:
            entry[1] = None
            _call(on_done, TimeoutError("Redis did not answer in time"), entry[2])

    def _sweep(self) -> None:
        """Time out every expired command, then re-arm for the next deadline (or for the stall
        check while only stale replies are awaited)."""
        self._sweeper = None
        loop = self._loop
        pending = self._pending
        if loop is None or not pending:
            return
        now = loop.time()
        oldest = pending[0]
        if now - (oldest[0] - self.timeout) >= self._stall_after:
            self._lose(f"{self.address} stopped answering (no reply for {self._stall_after:g} s)")
            return
        expired: list[list[Any]] = []
        index = self._swept
        wake = oldest[0] - self.timeout + self._stall_after
        for entry in itertools.islice(pending, index, None):
            if entry[1] is not None and entry[3] is None:
                if entry[0] > now:
                    wake = min(wake, entry[0])
                    break
                expired.append(entry)
            index += 1
        self._swept = index
        self._sweeper = loop.call_at(wake, self._sweep)
        for entry in expired:
            self._expire(entry)


def _settle(reply: Reply | BaseException, fut: asyncio.Future[Reply]) -> None:
    if fut.done():
        return
    if isinstance(reply, BaseException):
        fut.set_exception(reply)
    else:
        fut.set_result(reply)


def _call(on_done: OnDone, reply: Reply | BaseException, ctx: Any) -> None:
    try:
        on_done(reply, ctx)
    except Exception:  # a callback's bug must not break the connection for everyone else
        log.exception("Redis reply callback failed")
