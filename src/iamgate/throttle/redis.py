"""The Redis backend: token buckets and quotas shared by any number of gateway processes.

One round trip per event-loop iteration, however many requests it checks: :meth:`RedisBackend.check`
queues the check, and just before the connection's next write the iteration's checks go out as
ONE ``EVALSHA`` of :data:`SCRIPT` (loaded with ``SCRIPT LOAD`` on every new connection; on
``NOSCRIPT`` it is loaded again and the command retried once). The script runs the checks in
order, each exactly as if it ran alone (it reads every bucket and the quota, grants all of them
or none, counts the day's usage), atomically on the server; a bucket that several checks of the
batch share is read once and written once. A key Redis refuses (a wrong type) fails only the
checks that use it.

* Time is the caller's ``now`` (epoch seconds), so gateways need no call to the Redis clock. A
  bucket stores ``(tokens, timestamp)`` and refills from ``max(stored timestamp, now)``: a caller
  whose clock lags behind the last writer's gets no refill (and never moves the timestamp back),
  a caller whose clock leads moves it forward once. So a fleet whose clocks disagree by at most
  ``d`` seconds admits at most ``burst + rate * (T + d)`` in any T seconds, never a refill per
  caller.
* Keys are the backend's names behind ``prefix`` (default ``iamgate:``): a bucket's
  ``<prefix><bucket key>`` holds 16 bytes, two little-endian doubles (tokens, timestamp), and
  expires when the bucket would be full again (``burst / rate`` + 1 s), so an idle bucket costs
  nothing; a quota's ``<prefix><quota key>:<period start>`` holds the count and expires an hour
  after the period ends, so periods roll over by themselves; a usage counter
  ``<prefix><usage>:<YYYY-MM-DD>`` (the stage names it ``usage:<plan>:<key>``) counts the
  requests allowed that UTC day and is kept 400 days.
* Failures (no connection, a timeout, an error reply, a reply that makes no sense) never raise
  and never wait longer than ``timeout``: the check resolves to the fail mode, ``ALLOWED``
  (fail-open, API Gateway's behaviour) or ``Verdict(False, failed="backend", retry_after=1.0)``
  (fail-closed), chosen per request when ``fail_open`` is a callable (a usage plan's setting).
  :attr:`RedisBackend.fallbacks` counts them; ``on_error`` hears about it at most once per
  ``error_interval`` seconds and once when Redis is back. While the connection is down, checks
  fall back at once and the client reconnects in the background.

``submit`` (the request path's call) returns a :class:`~iamgate.throttle.backend.Pending` check
whose listener hears the verdict straight from the reply's ``data_received`` (no future, no
scheduled callback), or a :class:`Verdict` directly when it can answer without Redis; ``check``
wraps the same in an :class:`asyncio.Future` for callers off the request path.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import struct
import time
from collections.abc import Callable, Sequence
from typing import Final

from iamgate.policy.memo import SecondSight
from iamgate.throttle.backend import ALLOWED, Backend, Bucket, Pending, Quota, Verdict, VerdictSink, day_of
from iamgate.throttle.redis_client import Client
from iamgate.throttle.resp import ProtocolError, Reply, RespError, bulk, encode, parse_url

__all__ = ["BACKEND_FAILED", "SCRIPT", "FailMode", "RedisBackend"]

log: Final = logging.getLogger("iamgate.throttle.redis")

FailMode = Callable[[Sequence[Bucket], Quota | None], bool] | bool
BACKEND_FAILED: Final = Verdict(False, failed="backend", retry_after=1.0)

USAGE_TTL: Final = 400 * 86400
QUOTA_MARGIN: Final = 3600  # a quota count outlives its period by this many seconds
_CACHE_MAX: Final = 4096  # encoded buckets and quotas kept (by key), then forgotten all at once

SCRIPT: Final = b"""\
-- iamgate throttle check, v2: a batch of checks, in order, each as if it ran alone: take one token
-- from every bucket of the check and one unit of its quota, or nothing.
-- KEYS: every key the batch uses, once.
-- ARGV[1]: the number of checks. Then three arguments per key, in KEYS order: a bucket's rate
--   (tokens/s), burst and TTL in ms ('0': none); a quota's limit, period end and '0'; '0' x 3
--   for a usage counter. Then per check: now (epoch seconds on the caller's clock, 8 bytes: a
--   little-endian double, exact and cheap), the quota's key index (0: none), the usage
--   counter's key index (0: none), the number of buckets n, and their n key indexes.
-- A bucket holds struct '<dd' (tokens, timestamp); a missing bucket is full. Each bucket is read
-- at most once and written at most once per batch.
-- Reply: one entry per check: allowed -> the quota left (an integer, -1 without quota);
--   throttled -> {1, index of the check's first bucket without a token (1-based), retry_after};
--   over quota -> {2, 0, retry_after}; a key Redis refused (e.g. WRONGTYPE) -> {3, 0, the error}.
--   retry_after is a string (a Lua number would be truncated).
local ONE = 1 - 1e-9 -- as iamgate.throttle.backend.ONE: 0.1 * 10 must make a token
local rates, bursts = {}, {} -- by key index, once read
local sv, st = {}, {} -- a bucket's tokens and timestamp as this batch left them (sv false: missing)
local bad = {} -- key index -> the error Redis gave reading it
local written = {} -- key index -> true: SET at the end
local ks, tokens, stamps = {}, {}, {} -- the current check's buckets (reused)
local out = {}
local a = 2 + 3 * #KEYS
for c = 1, tonumber(ARGV[1]) do
  local now = struct.unpack('<d', ARGV[a])
  local qk = tonumber(ARGV[a + 1])
  local uk = tonumber(ARGV[a + 2])
  local n = tonumber(ARGV[a + 3])
  local first = a + 4
  a = first + n
  local result = nil
  for i = 1, n do
    local k = tonumber(ARGV[first + i - 1])
    local rate = rates[k]
    if rate == nil and bad[k] == nil then
      local raw = redis.pcall('GET', KEYS[k])
      if type(raw) == 'table' and raw.err then
        bad[k] = raw.err
      else
        rate = tonumber(ARGV[3 * k - 1])
        rates[k] = rate
        bursts[k] = tonumber(ARGV[3 * k])
        sv[k] = false
        if raw and #raw == 16 then sv[k], st[k] = struct.unpack('<dd', raw) end
      end
    end
    if bad[k] then
      result = {3, 0, bad[k]}
      break
    end
    local burst = bursts[k]
    local v, t = burst, now
    local last = st[k]
    if sv[k] then
      v = sv[k]
      if last >= now then
        t = last -- another gateway's clock is ahead: no refill, and time never goes back
      else
        v = v + rate * (now - last)
      end
      if v > burst then v = burst end
    end
    if v < ONE then
      local wait = math.huge
      if rate > 0 then wait = (t - now) + (1 - v) / rate end
      result = {1, i, string.format('%.17g', wait)}
      break
    end
    ks[i] = k
    tokens[i] = v
    stamps[i] = t
  end
  local count, limit = 0, 0
  if result == nil and qk > 0 then
    limit = tonumber(ARGV[3 * qk - 1])
    local qend = tonumber(ARGV[3 * qk])
    count = redis.pcall('INCR', KEYS[qk])
    if type(count) == 'table' then
      result = {3, 0, count.err}
    else
      if count == 1 then -- relative to the caller's clock, like everything else here
        redis.call('EXPIRE', KEYS[qk], math.ceil(qend - now) + QUOTA_MARGIN)
      end
      if count > limit then
        redis.call('DECR', KEYS[qk])
        result = {2, 0, string.format('%.17g', qend - now)}
      end
    end
  end
  if result == nil then
    for i = 1, n do
      local k = ks[i]
      sv[k] = math.max(0, tokens[i] - 1)
      st[k] = stamps[i]
      written[k] = true
    end
    result = -1
    if qk > 0 then result = limit - count end
    if uk > 0 then
      local used = redis.pcall('INCR', KEYS[uk])
      if type(used) == 'table' then
        result = {3, 0, used.err}
      elseif used == 1 then
        redis.call('EXPIRE', KEYS[uk], USAGE_TTL)
      end
    end
  end
  out[c] = result
end
for k in pairs(written) do
  local ttl = ARGV[3 * k + 1]
  local packed = struct.pack('<dd', sv[k], st[k])
  if ttl ~= '0' then
    redis.call('SET', KEYS[k], packed, 'PX', ttl) -- the argument as sent: no number formatting
  else
    redis.call('SET', KEYS[k], packed)
  end
end
return out
""".replace(b"QUOTA_MARGIN", b"%d" % QUOTA_MARGIN).replace(b"USAGE_TTL", b"%d" % USAGE_TTL)

_SHA: Final = hashlib.sha1(SCRIPT, usedforsecurity=False).hexdigest().encode()
_LOAD: Final = encode("SCRIPT", "LOAD", SCRIPT)
# a check's first argument: the bulk header of 8 raw bytes; _pack_now(now) + CRLF follows
_NOW: Final = b"$8\r\n"
_pack_now: Final = struct.Struct("<d").pack
_INTS: Final = [bulk(b"%d" % i) for i in range(512)]  # key indexes and bucket counts
_NO_PARAMS: Final = _INTS[0] * 3  # a usage counter's three key arguments


_CRLF: Final = b"\r\n"
# the command's first line and name: "*<count>\r\n$7\r\nEVALSHA\r\n$40\r\n<sha>\r\n"
_EVALSHA: Final = b"\r\n$7\r\nEVALSHA\r\n$40\r\n" + _SHA + b"\r\n"
_HEADS: Final = [b"*%d%b" % (i, _EVALSHA) for i in range(1024)]


def _int(i: int) -> bytes:
    return _INTS[i] if i < len(_INTS) else bulk(b"%d" % i)


def _head(count: int) -> bytes:
    return _HEADS[count] if count < len(_HEADS) else b"*%d%b" % (count, _EVALSHA)


def _from_shape(shape: _Shape, batch: Sequence[Pending]) -> bytes:
    """The command of a batch whose checks all match ``shape`` (see RedisBackend._keep_shape)."""
    n, keys, params, tail, width = shape[1], shape[2], shape[3], shape[4], shape[5]
    count = len(batch)
    out = [_head(3 + n + 1 + count * width + 3 * n), _int(n), keys, _int(count), params]
    for check in batch:
        out.append(_NOW)
        out.append(_pack_now(check.now))
        out.append(tail)
    return b"".join(out)


def _index_of(
    key: bytes, params: bytes, index: dict[bytes, bytes], keys: list[bytes], more: list[bytes]
) -> bytes:
    """The bulk of a key's 1-based index in a batch's KEYS, adding it (and its three parameters)
    the first time the batch uses it."""
    found = index.get(key)
    if found is None:
        keys.append(key)
        more.append(params)
        found = index[key] = _int(len(keys))
    return found


# a batch shape: (its checks' buckets, the number of keys, the keys' bulks joined, their
# parameters joined, a check's arguments after now, their number)
_Shape = tuple[Sequence[Bucket], int, bytes, bytes, bytes, int]
# ctx of one sent batch: (its checks, the encoded command, deadline)
_Ctx = tuple[list[Pending], bytes, float]


class _FutureSink(VerdictSink):
    """:meth:`RedisBackend.check`'s future, as a :class:`Pending` check's listener."""

    def __init__(self, fut: asyncio.Future[Verdict]) -> None:
        self.fut = fut

    def verdict(self, verdict: Verdict) -> None:
        if not self.fut.done():  # the caller may have given up on it (cancelled)
            self.fut.set_result(verdict)


class RedisBackend(Backend):
    """The :class:`~iamgate.throttle.backend.Backend` protocol on Redis (see the module docstring).

    Bind it to one event loop: the connection is opened by the first ``check`` (or :meth:`ready`)
    on the running loop, and lives until :meth:`close`. The encoded form of each bucket and quota
    is cached by key, so building new :class:`Bucket` objects per request costs little.
    ``error_interval`` is how often, at most, ``on_error`` hears of a failure.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.05,
        prefix: str = "iamgate:",
        fail_open: FailMode = True,
        on_error: Callable[[str], None] | None = None,
        error_interval: float = 10.0,
    ) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        self.address = parse_url(url)
        self.timeout = timeout
        self.prefix = prefix
        self.fallbacks = 0  # checks answered by the fail mode (for metrics)
        self._prefix = prefix.encode()
        self._fail_open = fail_open
        self._on_error = on_error
        self._error_interval = error_interval
        self._client: Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._frags: SecondSight[str, tuple[float, int, bytes, bytes]] = SecondSight(_CACHE_MAX)
        self._quotas: SecondSight[str, tuple[int, int, int, bytes, bytes]] = SecondSight(_CACHE_MAX)
        self._usage_keys: dict[str, bytes] = {}
        self._day: tuple[float, float, bytes] = (0.0, -1.0, b"")
        self._batch: list[Pending] = []  # checks of this loop iteration, sent just before the write
        self._shape: _Shape | None = None  # the parts of a batch of one kind of check
        self._loading = False
        self._reported_at = -math.inf  # when on_error last heard of a failure (monotonic)
        self._reported = False  # a failure was reported and the recovery not yet

    # -- the Backend protocol -------------------------------------------------------------

    def submit(
        self, buckets: Sequence[Bucket], quota: Quota | None, now: float, usage: str | None = None
    ) -> Verdict | Pending:
        """Take a token from every bucket and a unit of the quota, all or nothing. The checks of
        one event-loop iteration go to Redis together, as one ``EVALSHA`` (one round trip).
        Never raises; a :class:`Pending` check settles within ``timeout`` of being sent."""
        client = self._client
        try:
            if client is None:
                client = self._start()
            if not client.accepting:
                return self._fallback(buckets, quota, "not connected to Redis")
            pending = Pending(buckets, quota, now, usage)
            batch = self._batch
            batch.append(pending)
            if len(batch) == 1:
                client.defer(self._send_batch)
        except Exception as exc:  # a bug, or no running loop: never let a check raise
            log.exception("throttle check failed before reaching Redis")
            return self._fallback(buckets, quota, f"check failed: {exc!r}")
        return pending

    def check(
        self, buckets: Sequence[Bucket], quota: Quota | None, now: float, usage: str | None = None
    ) -> Verdict | asyncio.Future[Verdict]:
        """:meth:`submit`, answering later with a future (for callers off the request path)."""
        result = self.submit(buckets, quota, now, usage)
        if isinstance(result, Verdict):
            return result
        assert self._loop is not None  # submit started the client on the running loop
        fut: asyncio.Future[Verdict] = self._loop.create_future()
        result.then(_FutureSink(fut))
        return fut

    async def usage(self, key: str, days: Sequence[str]) -> dict[str, int]:
        """Requests allowed per UTC day (``YYYY-MM-DD``) for a usage counter: one ``MGET``.
        Off the request path, so failures raise: ConnectionError, TimeoutError (1 s at least),
        RespError or ProtocolError."""
        if not days:
            return {}
        client = self._client if self._client is not None else self._start()
        base = f"{self.prefix}{key}:"
        reply = await client.call("MGET", *[base + day for day in days], timeout=max(1.0, self.timeout))
        if not isinstance(reply, list) or len(reply) != len(days):
            raise ProtocolError(f"MGET answered {reply!r}")
        return {
            day: int(value) if isinstance(value, bytes) else 0 for day, value in zip(days, reply, strict=True)
        }

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # -- more -----------------------------------------------------------------------------

    async def ready(self, timeout: float = 1.0) -> bool:
        """Connect now (on the running loop) and wait until connected; False if not within
        ``timeout``. Optional: the first check connects anyway."""
        client = self._client if self._client is not None else self._start()
        return await client.wait_up(timeout)

    # -- internals ------------------------------------------------------------------------

    def _start(self) -> Client:
        loop = asyncio.get_running_loop()
        client = Client(self.address, timeout=self.timeout, handshake=(_LOAD,), on_state=self._state_changed)
        client.start()
        self._loop, self._client = loop, client
        return client

    def _send_batch(self) -> None:
        """Client.defer's callback: this iteration's checks, as one command."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        client, loop = self._client, self._loop
        try:
            assert client is not None
            assert loop is not None
            payload = self._encode(batch)
            deadline = loop.time() + self.timeout
            client.send(payload, self._done, (batch, payload, deadline), deadline)
        except Exception as exc:  # a bug: every check of the batch gets its fail mode, none waits
            log.exception("throttle checks could not be sent")
            for check in batch:
                self._settle_check(check, ConnectionError(f"check failed: {exc!r}"))

    def _encode(self, batch: Sequence[Pending]) -> bytes:
        """The EVALSHA command of a batch (see SCRIPT): KEYS each key once; ARGV the number of
        checks, three parameters per key, then per check now, the quota's and the usage
        counter's key indexes, and the buckets' key indexes. The encoded parts of buckets and
        quotas are cached by key (the stage builds new objects for every request). A check
        without quota or usage counter whose buckets are the very tuple of the check before it
        (the stage's cached buckets of an unmetered method) reuses that one's arguments; a batch
        made only of such checks of the tuple the last shape was kept for is put together from
        that shape's parts (see :meth:`_keep_shape`) without looking at any bucket."""
        shape = self._shape
        if shape is not None:
            same = shape[0]
            for check in batch:
                if check.buckets is not same or check.quota is not None or check.usage is not None:
                    break
            else:
                return _from_shape(shape, batch)
        frags = self._frags.found
        index: dict[bytes, bytes] = {}  # a key's bulk -> the bulk of its 1-based index
        keys: list[bytes] = []
        params: list[bytes] = []
        checks: list[bytes] = []
        nargs = 1
        last: Sequence[Bucket] | None = None  # the buckets of the tail below, if reusable
        tail = b""  # a check's arguments after now
        width = 0  # their number
        for check in batch:
            buckets, quota, usage = check.buckets, check.quota, check.usage
            checks.append(_NOW)
            checks.append(_pack_now(check.now))
            if buckets is last and quota is None and usage is None:
                checks.append(tail)
                nargs += width
                continue
            parts = [_CRLF]
            if quota is None:
                parts.append(_INTS[0])
            else:
                qfrag = self._quotas.found.get(quota.key)
                if qfrag is None or qfrag[:3] != (quota.start, quota.limit, quota.end):
                    qfrag = self._quota(quota)
                parts.append(_index_of(qfrag[3], qfrag[4], index, keys, params))
            if usage is None:
                parts.append(_INTS[0])
            else:
                parts.append(_index_of(self._usage_key(usage, check.now), _NO_PARAMS, index, keys, params))
            parts.append(_int(len(buckets)))
            for bucket in buckets:
                frag = frags.get(bucket.key)
                if frag is None or frag[0] != bucket.rate or frag[1] != bucket.burst:
                    frag = self._fragment(bucket)
                parts.append(_index_of(frag[2], frag[3], index, keys, params))
            tail = b"".join(parts)
            width = 4 + len(buckets)
            last = buckets if quota is None and usage is None and type(buckets) is tuple else None
            if last is not None and len(checks) == 2 and (shape is None or shape[0] is not last):
                self._keep_shape(last, keys, params, tail, width)  # the batch's first check
            checks.append(tail)
            nargs += width
        n = len(keys)
        out = [_head(3 + n + nargs + 3 * n), _int(n)]
        out += keys
        out.append(_int(len(batch)))
        out += params
        out += checks
        return b"".join(out)

    def _keep_shape(
        self, buckets: Sequence[Bucket], keys: list[bytes], params: list[bytes], tail: bytes, width: int
    ) -> None:
        """Keep the parts of a batch whose checks all have these buckets (an immutable tuple of
        frozen buckets, held here so that no other object can take its identity): its keys and
        their parameters, and a check's arguments after now."""
        self._shape = (buckets, len(keys), b"".join(keys), b"".join(params), tail, width)

    def _usage_key(self, usage: str, now: float) -> bytes:
        if not self._day[0] <= now < self._day[1]:
            start = now - now % 86400
            self._day = (start, start + 86400, day_of(now).encode())
            self._usage_keys = {}
        usage_key = self._usage_keys.get(usage)
        if usage_key is None:
            usage_key = bulk(b"%b%b:%b" % (self._prefix, usage.encode(), self._day[2]))
            self._usage_keys[usage] = usage_key
        return usage_key

    def _fragment(self, bucket: Bucket) -> tuple[float, int, bytes, bytes]:
        rate = float(bucket.rate)
        burst = int(bucket.burst)
        refill = burst / rate if rate > 0 else math.inf
        ttl_ms = math.ceil((refill + 1.0) * 1000) if refill < 1e9 else 0  # 0: never expires
        frag = (
            bucket.rate,
            bucket.burst,
            bulk(self._prefix + bucket.key.encode()),
            bulk(b"%r" % rate) + bulk(b"%d" % burst) + bulk(b"%d" % ttl_ms),
        )
        self._frags.keep(bucket.key, frag)
        return frag

    def _quota(self, quota: Quota) -> tuple[int, int, int, bytes, bytes]:
        frag = (
            quota.start,
            quota.limit,
            quota.end,
            bulk(b"%b%b:%d" % (self._prefix, quota.key.encode(), quota.start)),
            bulk(b"%d" % quota.limit) + bulk(b"%d" % quota.end) + _INTS[0],
        )
        self._quotas.keep(quota.key, frag)
        return frag

    def _done(self, reply: Reply | BaseException, ctx: _Ctx) -> None:
        if isinstance(reply, RespError) and reply.code == "NOSCRIPT":
            self._retry(ctx)
            return
        self._settle(reply, ctx)

    def _settle(self, reply: Reply | BaseException, ctx: _Ctx) -> None:
        batch = ctx[0]
        if isinstance(reply, list) and len(reply) == len(batch):
            for check, answer in zip(batch, reply, strict=True):
                self._settle_check(check, answer)
            return
        if isinstance(reply, (list, int, bytes)) or reply is None:
            reply = ProtocolError(f"unexpected reply {reply!r} to {len(batch)} check(s)")
        for check in batch:
            self._settle_check(check, reply)

    def _settle_check(self, check: Pending, reply: Reply | BaseException) -> None:
        if check.result is not None:
            return
        if type(reply) is int:
            if self._reported:
                self._recovered()
            check.settle(ALLOWED if reply < 0 else Verdict(True, remaining=reply))
            return
        if isinstance(reply, list):
            verdict = _denied(reply)
            if verdict is not None:
                check.settle(verdict)
                if self._reported:
                    self._recovered()
                return
            if len(reply) == 3 and reply[0] == 3 and isinstance(reply[2], bytes):
                reason = f"Redis answered an error: {reply[2].decode(errors='replace')}"
            else:
                reason = f"unexpected reply {reply!r}"
        elif isinstance(reply, RespError):
            reason = f"Redis answered an error: {reply}"
        elif isinstance(reply, TimeoutError):
            reason = f"no answer within {self.timeout:g} s"
        elif isinstance(reply, BaseException):
            reason = str(reply) or type(reply).__name__
        else:
            reason = f"unexpected reply {reply!r}"
        check.settle(self._fallback(check.buckets, check.quota, reason))

    def _retry(self, ctx: _Ctx) -> None:
        """The script is not in the server's cache (flushed, or a fail-over): load it and send
        the same command again, with the same deadline."""
        client = self._client
        assert client is not None
        if not self._loading:
            self._loading = True
            client.send_by(_LOAD, self._loaded, None, ctx[2])
        client.send_by(ctx[1], self._settle, ctx, ctx[2])

    def _loaded(self, reply: Reply | BaseException, ctx: None) -> None:
        self._loading = False

    def _fallback(self, buckets: Sequence[Bucket], quota: Quota | None, reason: str) -> Verdict:
        self.fallbacks += 1
        self._failed(reason)
        mode = self._fail_open
        if mode is True:
            return ALLOWED
        if mode is False:
            return BACKEND_FAILED
        try:
            open_ = bool(mode(buckets, quota))
        except Exception:
            log.exception("the throttle's fail-mode callable failed; failing closed")
            return BACKEND_FAILED
        return ALLOWED if open_ else BACKEND_FAILED

    def _state_changed(self, up: bool, message: str) -> None:
        if up:
            if self._reported:
                self._recovered()
        else:
            self._failed(message)

    def _failed(self, reason: str) -> None:
        now = time.monotonic()
        if now - self._reported_at < self._error_interval:
            return
        self._reported_at = now
        self._reported = True
        self._emit(
            f"Redis throttle backend {self.address}: {reason}; applying the fail mode "
            f"({self.fallbacks} fallbacks so far)"
        )

    def _recovered(self) -> None:
        self._reported = False
        self._emit(f"Redis throttle backend {self.address}: recovered ({self.fallbacks} fallbacks so far)")

    def _emit(self, message: str) -> None:
        if self._on_error is None:
            log.warning("%s", message)
            return
        try:
            self._on_error(message)
        except Exception:
            log.exception("the throttle's on_error callback failed")


def _denied(reply: list[Reply]) -> Verdict | None:
    """The Verdict of the script's array reply, or None if it makes no sense."""
    if len(reply) != 3:
        return None
    code, index, wait = reply
    if not isinstance(index, int) or not isinstance(wait, bytes):
        return None
    try:
        retry_after = max(0.0, float(wait))
    except ValueError:
        return None
    if code == 1:
        return Verdict(False, failed="throttle", index=index - 1, retry_after=retry_after)
    if code == 2:
        return Verdict(False, failed="quota", retry_after=retry_after, remaining=0)
    return None
