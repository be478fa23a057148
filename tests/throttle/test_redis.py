"""The Redis throttle backend against real Redis servers (no mocks).

* The shared server on 127.0.0.1:6379 (``redis_url``): bucket maths, all or nothing, quotas,
  usage counters, clock skew, error replies, and two OS processes sharing one bucket. Each test
  uses its own key prefix and deletes its keys afterwards.
* A private ``redis-server`` started by the test on a spare port (``private_redis``): anything
  that stops, freezes, restarts or flushes a server, and counts of the commands it ran.

Without Redis these tests skip, except under CI (``CI`` set), where they fail.
The only timed assertion is the hang guard: every check resolves within ``timeout`` plus a
generous scheduling margin.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvloop

from iamgate.throttle.backend import ALLOWED, ONE, Bucket, Pending, Quota, Verdict, day_of, period_bounds
from iamgate.throttle.redis import BACKEND_FAILED, RedisBackend, _FutureSink
from iamgate.throttle.resp import Parser, ProtocolError, Reply, RespError, encode, parse_url
from tests.ports import free_port
from tests.waiting import wait_until

HOST, PORT = "127.0.0.1", 6379
TIMEOUT = 0.05
HANG_MARGIN = 0.5  # scheduling slack on a loaded machine: a hang guard, not a performance bound
ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def _unavailable(reason: str) -> None:
    """Tests that need Redis fail under CI and skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: Redis is required)")
    pytest.skip(reason)


_OPEN: list[RedisBackend] = []


def opened(url: str, **options: Any) -> RedisBackend:
    """A backend that :func:`run` closes however the scenario ends (an open transport left to
    the garbage collector would turn into a ResourceWarning, an error here)."""
    backend = RedisBackend(url, **options)
    _OPEN.append(backend)
    return backend


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def guarded() -> T:
        try:
            return await coro
        finally:
            while _OPEN:
                _OPEN.pop().close()

    return uvloop.run(guarded())


# --- a blocking RESP client for setting up and inspecting -----------------------------------------


class Raw:
    def __init__(self, port: int = PORT) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=5)
        self.parser = Parser()

    def __call__(self, *args: bytes | str | int | float) -> Reply:
        self.sock.sendall(encode(*args))
        while True:
            replies = self.parser.feed(self.sock.recv(65536))
            if replies:
                assert len(replies) == 1
                return replies[0]

    def close(self) -> None:
        self.sock.close()

    def delete_prefix(self, prefix: str) -> None:
        cursor = b"0"
        while True:
            reply = self("SCAN", cursor, "MATCH", prefix + "*", "COUNT", 1000)
            assert isinstance(reply, list)
            next_cursor, keys = reply
            assert isinstance(next_cursor, bytes)
            assert isinstance(keys, list)
            cursor = next_cursor
            if keys:
                self("DEL", *[k for k in keys if isinstance(k, bytes)])
            if cursor == b"0":
                return

    def stats(self) -> dict[str, int]:
        """Calls per command since the server started (INFO commandstats)."""
        info = self("INFO", "commandstats")
        assert isinstance(info, bytes)
        out = {}
        for line in info.decode().splitlines():
            if line.startswith("cmdstat_"):
                name, fields = line[len("cmdstat_") :].split(":", 1)
                out[name] = int(fields.split(",")[0].split("=")[1])
        return out


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        raw = Raw()
        pong = raw("PING")
        raw.close()
    except OSError as exc:
        _unavailable(f"no Redis on {HOST}:{PORT}: {exc}")
    if pong != b"PONG":
        _unavailable(f"{HOST}:{PORT} answered {pong!r} to PING")
    return f"redis://{HOST}:{PORT}/0"


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"iamgate-test:{uuid.uuid4().hex[:12]}:"
    yield name
    raw = Raw()
    raw.delete_prefix(name)
    raw.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator[Raw]:
    client = Raw()
    yield client
    client.close()


# --- a private redis-server ---------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of our own on a spare port: stopped, frozen and restarted at will."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.frozen = False

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        assert self.proc is None
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                raw = Raw(self.port)
                if raw("PING") == b"PONG":
                    raw.close()
                    return
                raw.close()
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill the server we started (only that process)."""
        if self.proc is None:
            return
        if self.frozen:
            self.proc.send_signal(signal.SIGCONT)
            self.frozen = False
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.frozen = False

    def raw(self) -> Raw:
        return Raw(self.port)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable("redis-server is not installed")
        raise AssertionError("unreachable")
    server = PrivateRedis(binary)
    server.start()
    yield server
    server.stop()


# --- helpers --------------------------------------------------------------------------------------


async def verdict(result: Verdict | Awaitable[Verdict]) -> Verdict:
    return result if isinstance(result, Verdict) else await result


async def checks(
    backend: RedisBackend, requests: Sequence[tuple[Sequence[Bucket], Quota | None, float]]
) -> list[Verdict]:
    """Issue every check at once (one pipelined write), then collect the verdicts in order."""
    pending = [backend.check(buckets, quota, now) for buckets, quota, now in requests]
    return [await verdict(p) for p in pending]


@dataclass
class Sample:
    started: float  # loop time
    took: float
    verdict: Verdict


class Load:
    """``per_tick`` checks every ``tick`` seconds until stopped; records how long each took."""

    def __init__(
        self, backend: RedisBackend, buckets: Sequence[Bucket], quota: Quota | None = None, per_tick: int = 5
    ) -> None:
        self.backend, self.buckets, self.quota, self.per_tick = backend, buckets, quota, per_tick
        self.samples: list[Sample] = []
        self.running = True
        self.waiting: set[asyncio.Future[Verdict]] = set()

    async def run(self, tick: float = 0.005) -> None:
        loop = asyncio.get_running_loop()
        while self.running:
            for _ in range(self.per_tick):
                started = loop.time()
                result = self.backend.check(self.buckets, self.quota, time.time())
                if isinstance(result, Verdict):
                    self.samples.append(Sample(started, 0.0, result))
                    continue
                fut = asyncio.ensure_future(result)
                self.waiting.add(fut)
                fut.add_done_callback(functools.partial(self._done, started=started))
            await asyncio.sleep(tick)  # the load's pace: per_tick checks every tick
        if self.waiting:  # a check that never resolves is the bug this guards against
            await asyncio.wait_for(asyncio.gather(*self.waiting), TIMEOUT + 5)

    def _done(self, fut: asyncio.Future[Verdict], *, started: float) -> None:
        self.waiting.discard(fut)
        self.samples.append(Sample(started, asyncio.get_running_loop().time() - started, fut.result()))

    def since(self, t: float) -> list[Sample]:
        return [s for s in self.samples if s.started >= t]

    def assert_bounded(self, timeout: float = TIMEOUT) -> None:
        slowest = max(s.took for s in self.samples)
        assert slowest <= timeout + HANG_MARGIN, f"a check took {slowest:.3f} s"


# --- RESP: encoding, parsing, URLs (no server) ----------------------------------------------------

STREAM = [
    (b":42\r\n", 42),
    (b":-7\r\n", -7),
    (b"+OK\r\n", b"OK"),
    (b"$5\r\nhe\r\nl\r\n", b"he\r\nl"),  # a bulk string may hold CRLF
    (b"$0\r\n\r\n", b""),
    (b"$-1\r\n", None),
    (b"*-1\r\n", None),
    (b"*0\r\n", []),
    (b"*3\r\n:1\r\n$3\r\nabc\r\n*2\r\n+x\r\n$-1\r\n", [1, b"abc", [b"x", None]]),
    (b"$8\r\n" + struct.pack("<d", 1.5) + b"\r\n", struct.pack("<d", 1.5)),
]


def test_parser_reassembles_replies_split_anywhere() -> None:
    data = b"".join(chunk for chunk, _ in STREAM) + b"-NOSCRIPT No matching script\r\n"
    expected: list[Any] = [value for _, value in STREAM]
    for cut in range(len(data) + 1):
        for cut2 in range(cut, len(data) + 1, 7):
            parser = Parser()
            got = parser.feed(data[:cut]) + parser.feed(data[cut:cut2]) + parser.feed(data[cut2:])
            assert got[:-1] == expected, (cut, cut2)
            assert isinstance(got[-1], RespError)
            assert got[-1].code == "NOSCRIPT"
            assert parser.feed(b"") == []


def test_parser_byte_by_byte_and_many_in_one_read() -> None:
    data = b"".join(chunk for chunk, _ in STREAM)
    parser = Parser()
    got = [reply for i in range(len(data)) for reply in parser.feed(data[i : i + 1])]
    assert got == [value for _, value in STREAM]
    assert Parser().feed(b":1\r\n" * 1000) == [1] * 1000


@pytest.mark.parametrize(
    "data",
    [b"?what\r\n", b":12x\r\n", b"$-2\r\n", b"*-5\r\n", b"\r\n"],
    ids=["type", "integer", "bulk-length", "array-length", "empty-line"],
)
def test_parser_refuses_what_is_not_resp(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        Parser().feed(data)


def test_encode_and_urls() -> None:
    assert encode("GET", b"k", 12, 1.5) == b"*4\r\n$3\r\nGET\r\n$1\r\nk\r\n$2\r\n12\r\n$3\r\n1.5\r\n"
    with pytest.raises(TypeError):
        encode(True)
    a = parse_url("redis://user:p%40ss@redis.example:6380/3")
    assert (a.host, a.port, a.db, a.username, a.password, a.tls) == (
        "redis.example",
        6380,
        3,
        "user",
        "p@ss",
        False,
    )
    assert "p@ss" not in str(a)
    assert parse_url("rediss://:secret@h").tls
    assert parse_url("redis://h").port == 6379
    u = parse_url("unix:///run/redis.sock?db=2")
    assert (u.path, u.db) == ("/run/redis.sock", 2)
    with pytest.raises(ValueError, match="redis://"):
        parse_url("http://h")


# --- the bucket maths -----------------------------------------------------------------------------


class Reference:
    """The obvious model: per bucket (tokens, time); refill from max(stored, now); first empty
    bucket refuses, and then nothing is taken."""

    def __init__(self) -> None:
        self.state: dict[str, tuple[float, float]] = {}

    def check(self, buckets: Sequence[Bucket], now: float) -> tuple[bool, int, float]:
        taken = []
        for i, b in enumerate(buckets):
            tokens, last = self.state.get(b.key, (float(b.burst), now))
            t = max(last, now)
            tokens = min(float(b.burst), tokens + b.rate * (t - last))
            if tokens < ONE:
                return False, i, (t - now) + (1 - tokens) / b.rate
            taken.append((b.key, max(0.0, tokens - 1), t))
        for key, tokens, t in taken:
            self.state[key] = (tokens, t)
        return True, -1, 0.0


def test_bucket_maths_follow_the_reference(redis_url: str, prefix: str) -> None:
    """Random arrivals (bursts, gaps, same-instant pairs) through two buckets, with a controlled
    clock: every verdict equals the reference's, and over every prefix of the run the admitted
    count stays within burst + rate x elapsed."""
    rng = random.Random(5)
    a, b = Bucket("user", 5.0, 3), Bucket("stage", 8.0, 6)
    times, t = [], 1_000_000.0
    for _ in range(400):
        t += rng.choice([0.0, 0.0, rng.uniform(0, 0.05), rng.uniform(0, 0.5), rng.uniform(0.5, 2)])
        times.append(t)

    async def scenario() -> list[Verdict]:
        backend = opened(redis_url, prefix=prefix, timeout=2.0)
        out = [await verdict(backend.check([a, b], None, now)) for now in times]
        backend.close()
        return out

    got = run(scenario())
    ref = Reference()
    admitted_a = 0
    for now, v in zip(times, got, strict=True):
        allowed, index, wait = ref.check([a, b], now)
        assert (v.allowed, v.index) == (allowed, index), now
        assert v.retry_after == pytest.approx(wait, abs=1e-9)
        if v.failed is not None:
            assert v.failed == "throttle"
        admitted_a += v.allowed
        assert admitted_a <= a.burst + a.rate * (now - times[0]) + 1e-9
    assert 0 < sum(v.allowed for v in got) < len(got)


def test_account_sized_buckets_keep_their_precision(redis_url: str, prefix: str) -> None:
    """10,000/s with a burst of 5,000 at today's epoch: the burst at one instant, then 10 tokens
    per millisecond for a second, to the token."""
    account = Bucket("account", 10_000.0, 5_000)
    start = time.time()

    async def scenario() -> tuple[int, int, Verdict]:
        backend = opened(redis_url, prefix=prefix, timeout=2.0)
        first = await checks(backend, [([account], None, start)] * 5_001)
        later = 0
        for ms in range(1, 1001):
            got = await checks(backend, [([account], None, start + ms / 1000)] * 12)
            later += sum(v.allowed for v in got)
        backend.close()
        return sum(v.allowed for v in first), later, first[-1]

    burst, later, refused = run(scenario())
    assert burst == 5_000
    assert refused.failed == "throttle"
    assert refused.retry_after == pytest.approx(1e-4)
    assert 9_999 <= later <= 10_000


def test_state_and_ttl_of_a_bucket(redis_url: str, prefix: str, raw: Raw) -> None:
    bucket = Bucket("plan:basic:k1", 4.0, 10)  # full again 2.5 s after it was last touched
    now = time.time()

    async def scenario() -> None:
        backend = opened(redis_url, prefix=prefix)
        assert (await checks(backend, [([bucket], None, now)] * 3)) == [ALLOWED] * 3
        backend.close()

    run(scenario())
    state = raw("GET", prefix + "plan:basic:k1")
    assert isinstance(state, bytes)
    assert struct.unpack("<dd", state) == (7.0, now)
    ttl = raw("PTTL", prefix + "plan:basic:k1")
    assert isinstance(ttl, int)
    assert 2500 < ttl <= 3500


def test_all_or_nothing_across_buckets_and_quota(redis_url: str, prefix: str) -> None:
    wide, narrow = Bucket("wide", 0.0, 5), Bucket("narrow", 0.0, 1)
    now = time.time()
    start, end = period_bounds(now, "DAY")
    quota = Quota("quota:basic:k1", 2, start, end)

    async def scenario() -> None:
        backend = opened(redis_url, prefix=prefix, timeout=2.0)
        assert (await checks(backend, [([wide, narrow], quota, now)]))[0] == Verdict(True, remaining=1)
        refused = (await checks(backend, [([wide, narrow], quota, now)]))[0]
        assert (refused.allowed, refused.failed, refused.index) == (False, "throttle", 1)
        assert refused.retry_after == float("inf")  # a 0/s bucket never refills
        # the refusal took nothing: 4 tokens left in `wide`, 1 unit of quota
        assert (await checks(backend, [([wide], quota, now)]))[0] == Verdict(True, remaining=0)
        over = (await checks(backend, [([wide], quota, now)]))[0]
        assert (over.failed, over.remaining) == ("quota", 0)
        assert over.retry_after == pytest.approx(end - now)
        got = await checks(backend, [([wide], None, now)] * 4)
        assert [v.allowed for v in got] == [True, True, True, False]  # the quota refusal took no token
        assert backend.fallbacks == 0
        backend.close()

    run(scenario())


def test_quota_limit_and_period_rollover(redis_url: str, prefix: str, raw: Raw) -> None:
    now = time.time()
    start, end = period_bounds(now, "DAY")
    tomorrow = end + 10.0
    start2, end2 = period_bounds(tomorrow, "DAY")

    async def scenario() -> None:
        backend = opened(redis_url, prefix=prefix)
        today = await checks(backend, [([], Quota("quota:p:k", 3, start, end), now)] * 5)
        assert [v.remaining for v in today] == [2, 1, 0, 0, 0]
        assert [v.failed for v in today] == [None, None, None, "quota", "quota"]
        assert today[3].retry_after == pytest.approx(end - now)
        nextday = await checks(backend, [([], Quota("quota:p:k", 3, start2, end2), tomorrow)] * 2)
        assert [v.remaining for v in nextday] == [2, 1]
        backend.close()

    run(scenario())
    assert raw("GET", f"{prefix}quota:p:k:{start}") == b"3"
    ttl = raw("TTL", f"{prefix}quota:p:k:{start}")
    assert isinstance(ttl, int)
    assert end - now + 3000 < ttl <= end - now + 3601  # the period's end + 1 h


def test_usage_counters_per_day(redis_url: str, prefix: str, raw: Raw) -> None:
    now = time.time()
    day1, day2 = day_of(now), day_of(now + 86400)
    ok, never = Bucket("ok", 1000.0, 1000), Bucket("never", 0.0, 0)

    async def scenario() -> dict[str, int]:
        backend = opened(redis_url, prefix=prefix)
        got = [
            backend.check([ok], None, now, "usage:basic:k1"),
            backend.check([ok], None, now, "usage:basic:k1"),
            backend.check([never], None, now, "usage:basic:k1"),  # refused: not counted
            backend.check([ok], None, now, "usage:basic:k1"),
            backend.check([ok], None, now + 86400, "usage:basic:k1"),
            backend.check([ok], None, now + 86400, "usage:basic:k2"),
        ]
        assert [(await verdict(v)).allowed for v in got] == [True, True, False, True, True, True]
        counts = await backend.usage("usage:basic:k1", [day1, day2, "2020-01-01"])
        assert await backend.usage("usage:basic:k1", []) == {}
        backend.close()
        return counts

    assert run(scenario()) == {day1: 3, day2: 1, "2020-01-01": 0}
    ttl = raw("TTL", f"{prefix}usage:basic:k1:{day1}")
    assert isinstance(ttl, int)
    assert 399 * 86400 < ttl <= 400 * 86400


def test_clock_skew_between_two_callers(redis_url: str, prefix: str, raw: Raw) -> None:
    """Two gateways, one 0.5 s behind the other, both asking every 10 ms for 5 s of a 10/s
    bucket: the lagging one never gets its own refill, so the pair admits burst + rate x T (T on
    the leading clock), and the stored time never goes back."""
    skew, rate, burst, span = 0.5, 10.0, 5, 5.0
    bucket = Bucket("skewed", rate, burst)
    t0 = 2_000_000.0

    async def scenario(lead_first: bool) -> int:
        backend = opened(redis_url, prefix=prefix + str(lead_first), timeout=2.0)
        admitted = 0
        for step in range(int(span / 0.01) + 1):
            lead = t0 + step * 0.01
            order = [lead, lead - skew] if lead_first else [lead - skew, lead]
            got = await checks(backend, [([bucket], None, now) for now in order])
            admitted += sum(v.allowed for v in got)
        backend.close()
        return admitted

    for lead_first in (True, False):
        admitted = run(scenario(lead_first))
        # burst + rate x T on the leading clock; when the lagging gateway made the bucket, its
        # first token was taken on its own clock: one more
        expected = burst + rate * span + (0 if lead_first else 1)
        assert expected - 1 <= admitted <= expected
        state = raw("GET", f"{prefix}{lead_first}skewed")
        assert isinstance(state, bytes)
        assert struct.unpack("<dd", state)[1] == pytest.approx(t0 + span)


def test_an_error_reply_gives_the_fail_mode_and_the_connection_goes_on(
    redis_url: str, prefix: str, raw: Raw
) -> None:
    raw("LPUSH", prefix + "broken", "not a bucket")  # GET on a list: WRONGTYPE inside the script
    messages: list[str] = []

    async def scenario(fail_open: bool) -> None:
        backend = opened(redis_url, prefix=prefix, fail_open=fail_open, on_error=messages.append)
        assert await backend.ready()
        now = time.time()
        fine = Bucket(f"ok{fail_open}", 0.0, 1)
        # in one batch: only the check that uses the broken key gets the fail mode
        got = await checks(backend, [([fine], None, now), ([Bucket("broken", 1.0, 1)], None, now)] * 2)
        failed = ALLOWED if fail_open else BACKEND_FAILED
        assert [(v.allowed, v.failed) for v in got] == [
            (True, None),
            (failed.allowed, failed.failed),
            (False, "throttle"),
            (failed.allowed, failed.failed),
        ]
        assert backend.fallbacks == 2
        fine = await checks(backend, [([Bucket(f"fine{fail_open}", 0.0, 1)], None, time.time())] * 2)
        assert [v.allowed for v in fine] == [True, False]  # answered by Redis, on the same connection
        backend.close()

    run(scenario(True))
    run(scenario(False))
    assert len(messages) == 4
    assert "WRONGTYPE" in messages[0]
    assert "recovered" in messages[1]


# --- one round trip, NOSCRIPT ---------------------------------------------------------------------


def test_the_checks_of_one_loop_iteration_are_one_evalsha_and_usage_one_mget(
    private_redis: PrivateRedis,
) -> None:
    raw = private_redis.raw()
    now = time.time()
    start, end = period_bounds(now, "DAY")
    buckets = [
        Bucket("plan:p:k", 1e6, 10**6),
        Bucket("stage:a:s:/x/GET", 1e6, 10**6),
        Bucket("account", 1e4, 5000),
    ]

    async def scenario() -> None:
        backend = opened(private_redis.url)
        assert await backend.ready()
        before = raw.stats()
        pending = [
            backend.check(buckets, Quota("quota:p:k", 10**6, start, end), now, "usage:p:k")
            for _ in range(100)
        ]
        assert all(isinstance(p, asyncio.Future) for p in pending)  # a plain future, no coroutine
        got = [await verdict(p) for p in pending]
        assert [v.remaining for v in got] == list(range(10**6 - 1, 10**6 - 101, -1))  # in order
        # a second iteration: a second command
        assert (await verdict(backend.check(buckets, None, now))).allowed
        assert await backend.usage("usage:p:k", [day_of(now)]) == {day_of(now): 100}
        after = raw.stats()
        ran = {
            name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)
        }
        inside = {"get", "set", "incr", "expire"}  # what the script itself called
        assert {name: n for name, n in ran.items() if name not in inside} == {
            "evalsha": 2,
            "mget": 1,
            "info": 1,
        }
        assert ran["get"] == 6  # each bucket read once per batch
        assert ran["set"] == 6  # and written once
        assert ran["incr"] == 200  # the quota and the usage counter, per check
        backend.close()

    run(scenario())
    raw.close()


def test_a_batch_decides_as_the_checks_one_by_one(redis_url: str, prefix: str) -> None:
    """Random groups of checks (1-40 per loop iteration) over buckets that some checks share
    (often as the very tuple of the check before, or all of a group as the tuple of earlier
    groups: the encoder's shortcuts), at random instants, some of them equal or going back:
    every verdict equals the reference's for the same checks one after the other."""
    rng = random.Random(17)
    pool = [Bucket("a", 5.0, 3), Bucket("b", 8.0, 6), Bucket("c", 0.5, 2), Bucket("d", 100.0, 20)]
    groups, t = [], 2_000_000.0
    kept = tuple(rng.sample(pool, 2))
    for g in range(60):
        group: list[tuple[Sequence[Bucket], float]] = []
        if g % 3 == 1 and rng.random() < 0.3:
            kept = tuple(rng.sample(pool, rng.randint(1, 3)))
        for _ in range(rng.randint(1, 40)):
            t += rng.choice([0.0, 0.0, rng.uniform(0, 0.01), rng.uniform(0, 0.2), -rng.uniform(0, 0.05)])
            if g % 3:  # a whole batch of one tuple, often the one of earlier such batches
                buckets: Sequence[Bucket] = kept
            elif group and rng.random() < 0.5:  # the very tuple (or list) of the check before
                buckets = group[-1][0]
            else:
                chosen = rng.sample(pool, rng.randint(1, 3))
                buckets = tuple(chosen) if rng.random() < 0.7 else chosen
            group.append((buckets, t))
        groups.append(group)

    async def scenario() -> list[list[Verdict]]:
        backend = opened(redis_url, prefix=prefix, timeout=2.0)
        assert await backend.ready()
        out = [await checks(backend, [(b, None, now) for b, now in group]) for group in groups]
        assert backend.fallbacks == 0
        return out

    got = run(scenario())
    ref = Reference()
    for group, verdicts in zip(groups, got, strict=True):
        for (buckets, now), v in zip(group, verdicts, strict=True):
            allowed, index, wait = ref.check(buckets, now)
            assert (v.allowed, v.index) == (allowed, index), now
            assert v.retry_after == pytest.approx(wait, abs=1e-9)
    flat = [v.allowed for verdicts in got for v in verdicts]
    assert 0 < sum(flat) < len(flat)


def test_noscript_reloads_once_and_retries(private_redis: PrivateRedis) -> None:
    raw = private_redis.raw()

    async def scenario() -> None:
        backend = opened(private_redis.url, timeout=1.0)
        assert await backend.ready()
        assert raw.stats().get("script|load") == 1  # on connecting
        now = time.time()
        for round_ in range(3):
            raw("SCRIPT", "FLUSH")
            # many checks in flight meet the empty script cache: one reload, every one retried
            got = await checks(backend, [([Bucket(f"b{round_}", 0.0, 10)], None, now)] * 20)
            assert [v.allowed for v in got] == [True] * 10 + [False] * 10  # Redis's answers
        assert backend.fallbacks == 0
        assert raw.stats()["script|load"] == 4
        backend.close()

    run(scenario())
    raw.close()


# --- failures ---------------------------------------------------------------------------------


def test_nothing_listening_gives_the_fail_mode_at_once() -> None:
    url = f"redis://{HOST}:{free_port()}/0"

    async def scenario() -> None:
        metered = Quota("quota:p:k", 10, 0, 2**40)
        backend = opened(url, fail_open=lambda buckets, quota: quota is None)
        load = Load(backend, [Bucket("b", 1.0, 1)])
        task = asyncio.create_task(load.run())
        first = backend.check([], metered, time.time())  # while connecting for the first time
        assert await verdict(first) == BACKEND_FAILED
        await wait_until(lambda: len(load.samples) >= 20, "checks with nothing listening")
        load.running = False
        await task
        assert {s.verdict for s in load.samples} == {ALLOWED}
        load.assert_bounded()
        assert backend.check([], metered, time.time()) == BACKEND_FAILED
        assert backend.fallbacks == len(load.samples) + 2
        assert not await backend.ready(0.2)
        backend.close()

    run(scenario())


def test_redis_stopped_mid_load_fails_open_and_recovers(private_redis: PrivateRedis) -> None:
    """A 0/s bucket that Redis always refuses: any allowed check is the fail mode's."""
    messages: list[tuple[float, str]] = []

    async def scenario() -> None:
        backend = opened(private_redis.url, on_error=lambda m: messages.append((time.monotonic(), m)))
        assert await backend.ready()
        load = Load(backend, [Bucket("refused", 0.0, 0)])
        task = asyncio.create_task(load.run())
        loop = asyncio.get_running_loop()
        await wait_until(lambda: len(load.samples) >= 20, "checks while Redis runs")
        stopped = loop.time()
        await asyncio.to_thread(private_redis.stop)
        killed = loop.time()
        await wait_until(lambda: len(load.since(killed)) >= 50, "checks while Redis is down")
        assert backend.fallbacks > 0
        before = [s for s in load.samples if s.started + s.took < stopped]
        assert before
        assert all(s.verdict.failed == "throttle" for s in before)
        assert all(s.verdict == ALLOWED for s in load.since(killed))
        assert len(messages) == 1  # once, not per request
        down = backend.fallbacks
        await asyncio.to_thread(private_redis.start)
        back = loop.time()
        await wait_until(lambda: any(s.verdict.failed == "throttle" for s in load.since(back)), "Redis again")
        load.running = False
        await task
        load.assert_bounded()
        assert len(messages) == 2
        assert "recovered" in messages[1][1]
        assert backend.fallbacks >= down
        backend.close()

    run(scenario())


def test_redis_frozen_mid_load_fails_closed_within_the_timeout(private_redis: PrivateRedis) -> None:
    """SIGSTOP: the connection stays open and nothing answers. Checks time out into the fail
    mode (closed here), the hung connection is dropped, and all resumes after SIGCONT."""
    messages: list[tuple[float, str]] = []

    async def scenario() -> None:
        backend = opened(
            private_redis.url,
            fail_open=False,
            on_error=lambda m: messages.append((time.monotonic(), m)),
            error_interval=0.3,
        )
        assert await backend.ready()
        load = Load(backend, [Bucket("open", 1e6, 10**6)])
        task = asyncio.create_task(load.run())
        loop = asyncio.get_running_loop()
        await wait_until(lambda: len(load.samples) >= 20, "checks while Redis answers")
        private_redis.freeze()
        frozen = loop.time()
        await wait_until(
            lambda: sum("recovered" not in m for _, m in messages) >= 2, "two reports of the frozen Redis"
        )
        private_redis.thaw()
        thawed = loop.time()
        await wait_until(lambda: any(s.verdict == ALLOWED for s in load.since(thawed + 0.5)), "answers again")
        load.running = False
        await task
        load.assert_bounded()
        during = [s for s in load.since(frozen + TIMEOUT) if s.started < thawed - 0.1]
        assert during
        assert all(s.verdict == BACKEND_FAILED for s in during)
        assert backend.fallbacks >= len(during)
        assert "no answer within 0.05 s" in messages[0][1]  # the first fallbacks were timeouts
        failures = [t for t, m in messages if "recovered" not in m]
        assert len(failures) >= 2
        assert all(b - a >= 0.3 - 1e-3 for a, b in itertools.pairwise(failures))  # rate-limited
        assert "recovered" in messages[-1][1]
        backend.close()

    run(scenario())


def test_closing_settles_every_check(private_redis: PrivateRedis) -> None:
    async def scenario() -> None:
        backend = opened(private_redis.url, fail_open=False)
        assert await backend.ready()
        private_redis.freeze()
        pending = [backend.check([Bucket("b", 1.0, 1)], None, time.time()) for _ in range(5)]
        backend.close()
        assert [await verdict(p) for p in pending] == [BACKEND_FAILED] * 5
        assert backend.check([], None, time.time()) == BACKEND_FAILED
        private_redis.thaw()

    run(scenario())


def test_a_batch_that_cannot_be_sent_leaves_no_check_waiting(redis_url: str, prefix: str) -> None:
    async def scenario() -> list[Verdict]:
        backend = opened(redis_url, prefix=prefix, fail_open=False, timeout=1.0)
        assert await backend.ready()
        broken = Bucket("\ud800", 1.0, 1)  # a bug upstream: a key that cannot be encoded
        fine = Bucket("fine", 1.0, 5)
        pending = [backend.check([fine], None, time.time()), backend.check([broken], None, 0.0)]
        got = [await asyncio.wait_for(verdict(p), 2.0) for p in pending]
        # the next loop iteration's batch is sent as usual
        assert (await verdict(backend.check([fine], None, time.time()))).allowed
        return got

    assert run(scenario()) == [BACKEND_FAILED, BACKEND_FAILED]


def test_submit_hands_each_verdict_to_its_listener_once(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The request path's call: a Pending check per request, settled from the reply; a listener
    added after the verdict hears it at once; a listener that fails (here: its future's loop is
    closed) is logged and the rest of the batch is still settled."""

    async def scenario() -> None:
        backend = opened(redis_url, prefix=prefix, timeout=1.0)
        assert await backend.ready()
        loop = asyncio.get_running_loop()
        bucket = [Bucket("b", 1.0, 2)]
        other = uvloop.new_event_loop()
        dead: asyncio.Future[Verdict] = other.create_future()
        dead.add_done_callback(lambda f: None)  # so that set_result schedules on the closed loop
        other.close()
        submitted = [backend.submit(bucket, None, 1_000.0) for _ in range(3)]
        assert all(isinstance(p, Pending) for p in submitted)
        first, second, third = submitted
        assert isinstance(first, Pending)
        assert isinstance(second, Pending)
        assert isinstance(third, Pending)
        first.then(_FutureSink(dead))
        heard: list[asyncio.Future[Verdict]] = [loop.create_future(), loop.create_future()]
        second.then(_FutureSink(heard[0]))
        third.then(_FutureSink(heard[1]))
        got = [await asyncio.wait_for(f, 2.0) for f in heard]
        assert first.result is not None
        assert first.result.allowed
        assert got[0].allowed
        assert (got[1].allowed, got[1].failed, got[1].index) == (False, "throttle", 0)
        late: asyncio.Future[Verdict] = loop.create_future()
        third.then(_FutureSink(late))
        assert late.done()
        assert late.result() is third.result
        third.settle(ALLOWED)  # a second answer is ignored
        assert third.result is got[1]

    with caplog.at_level("ERROR", logger="iamgate.throttle"):
        run(scenario())
    assert [r.getMessage() for r in caplog.records] == ["a throttle verdict's listener failed"]


# --- several processes, one bucket ----------------------------------------------------------------

WORKER = r"""
import asyncio, json, sys, time
import uvloop
from iamgate.throttle.backend import Bucket, Verdict
from iamgate.throttle.redis import RedisBackend

url, prefix, start_at, duration = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
IN_FLIGHT = 16


async def main():
    backend = RedisBackend(url, prefix=prefix, timeout=1.0)
    assert await backend.ready(5.0)
    bucket = [Bucket("shared", 200.0, 20)]
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, start_at - time.time()))  # every process starts at the same moment
    stop_at = start_at + duration
    out = {"admitted": 0, "refused": 0, "first": None, "last": None}
    done = loop.create_future()
    running = [0]

    def issue():
        now = time.time()
        if now >= stop_at:
            if running[0] == 0 and not done.done():
                done.set_result(None)
            return
        out["first"] = now if out["first"] is None else out["first"]
        out["last"] = now
        running[0] += 1
        result = backend.check(bucket, None, now)
        if isinstance(result, Verdict):
            finish(result)
        else:
            result.add_done_callback(lambda f: finish(f.result()))

    def finish(verdict):
        running[0] -= 1
        out["admitted" if verdict.allowed else "refused"] += 1
        issue()

    for _ in range(IN_FLIGHT):
        issue()
    await done
    out["fallbacks"] = backend.fallbacks
    backend.close()
    print(json.dumps(out))


uvloop.run(main())
"""


def test_two_processes_share_one_bucket(redis_url: str, prefix: str) -> None:
    """Two OS processes, each far above 200/s for 3 s, on one bucket (200/s, burst 20): together
    they admit burst + rate x elapsed, within 5%."""
    start_at = time.time() + 1.5
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, redis_url, prefix, str(start_at), "3.0"],
            stdout=subprocess.PIPE,
            env=env,
        )
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        results.append(json.loads(out))
    assert all(r["fallbacks"] == 0 for r in results)
    assert all(r["refused"] > r["admitted"] for r in results)  # both well above the rate
    elapsed = max(r["last"] for r in results) - min(r["first"] for r in results)
    expected = 20 + 200 * elapsed
    admitted = sum(r["admitted"] for r in results)
    assert admitted <= expected + 1  # the bucket's promise, exactly
    assert abs(admitted - expected) <= 0.05 * expected, (admitted, expected)
    # One bucket, not one each: two separate buckets would admit about twice the sum above. How
    # the tokens split between the processes is not a promise (a bucket serves whoever asks
    # first, and a process the machine gives less CPU asks less often): each got some.
    assert all(r["admitted"] > 0 for r in results)
