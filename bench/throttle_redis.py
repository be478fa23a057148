"""CPU cost of one Redis throttle check: iamgate's client against redis-py's asyncio client.

Drives N checks of a never-triggering throttle through a running Redis (``--scenario plan``: a
usage-plan key bucket, a stage-method bucket, the account bucket, a daily quota and the usage
counter, what a metered request asks; ``stage``: the stage-method and account buckets), C at a
time, the way the gateway does: each finished check starts the next from a done-callback (no
coroutine per request), with new Bucket and Quota objects per check as the stage builds them.
Reports this process's CPU time per check and the Redis server's (INFO cpu), best of several
rounds; the "harness alone" row is the cost of the loop and of building the objects. redis-py
is measured the way an application would use it (``await client.evalsha(...)`` in one Task per
request) when it is importable; it is not a dependency of iamgate (install it, with hiredis, in
a scratch venv and run this file there with PYTHONPATH=src).

    python bench/throttle_redis.py [--url redis://...] [-n 20000] [-c 64] [--rounds 5] [--scenario plan|stage]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

import uvloop

from iamgate.throttle.backend import Bucket, Quota, Verdict, period_bounds
from iamgate.throttle.redis import SCRIPT, RedisBackend
from iamgate.throttle.redis_client import Client
from iamgate.throttle.resp import Parser, parse_url

BIG = 1_000_000_000
ACCOUNT = Bucket("account", 1e9, BIG)
# what the throttle stage asks of a metered request, and of one on a stage without usage plans
SCENARIOS: dict[str, tuple[Callable[[], list[Bucket]], bool]] = {
    "plan": (
        lambda: [Bucket("plan:bench:k1", 1e9, BIG), Bucket("stage:bench:prod:/pets/GET", 1e9, BIG), ACCOUNT],
        True,
    ),
    "stage": (lambda: [Bucket("stage:bench:prod:/pets/GET", 1e9, BIG), ACCOUNT], False),
}
SCENARIO = ["plan"]


def _request(now: float) -> tuple[list[Bucket], Quota | None, str | None]:
    """New objects for every request, as the stage builds them."""
    make, metered = SCENARIOS[SCENARIO[0]]
    if not metered:
        return make(), None, None
    start, end = period_bounds(now, "DAY")
    return make(), Quota("quota:bench:k1", 10**12, start, end), "usage:bench:k1"


async def _redis_cpu(client: Client) -> float:
    info = await client.call("INFO", "cpu")
    assert isinstance(info, bytes)
    fields = dict(line.split(":", 1) for line in info.decode().splitlines() if ":" in line)
    return float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])


async def run_iamgate(url: str, n: int, c: int, prefix: str) -> float:
    backend = RedisBackend(url, prefix=prefix, timeout=1.0)
    assert await backend.ready()
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    left = [n]
    finished = [0]

    def next_check(_: object = None) -> None:
        if left[0] <= 0:
            finished[0] += 1
            if finished[0] == c and not done.done():
                done.set_result(None)
            return
        left[0] -= 1
        now = time.time()
        buckets, quota, usage = _request(now)
        verdict = backend.check(buckets, quota, now, usage)
        if isinstance(verdict, Verdict):
            raise RuntimeError(f"fell back: {verdict}")
        verdict.add_done_callback(check_result)

    def check_result(fut: asyncio.Future[Verdict]) -> None:
        if not fut.result().allowed:
            raise RuntimeError(f"denied: {fut.result()}")
        next_check()

    for _ in range(c):
        loop.call_soon(next_check)
    t0 = time.process_time()
    await done
    cpu = time.process_time() - t0
    if backend.fallbacks:
        raise RuntimeError(f"{backend.fallbacks} fallbacks")
    backend.close()
    return cpu


async def run_baseline(n: int, c: int) -> float:
    """The harness alone: a future resolved on the next iteration instead of a check."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    left = [n]
    finished = [0]

    def next_check(_: object = None) -> None:
        if left[0] <= 0:
            finished[0] += 1
            if finished[0] == c and not done.done():
                done.set_result(None)
            return
        left[0] -= 1
        _request(time.time())
        fut = loop.create_future()
        loop.call_soon(fut.set_result, Verdict(True))
        fut.add_done_callback(next_check)

    for _ in range(c):
        loop.call_soon(next_check)
    t0 = time.process_time()
    await done
    return time.process_time() - t0


async def run_redis_py(url: str, n: int, c: int, prefix: str) -> float | None:
    try:
        import redis.asyncio as aioredis
    except ImportError:
        return None
    client: Any = aioredis.Redis.from_url(url, max_connections=c)
    sha = await client.script_load(SCRIPT)
    # the same command the iamgate backend sends, split back into EVALSHA's arguments
    encoder = RedisBackend(url, prefix=prefix)
    left = [n]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            payload = _one_check(encoder)
            parts = Parser().feed(payload)[0]  # the command as a list: EVALSHA, sha, numkeys, ...
            assert isinstance(parts, list)
            reply = await client.evalsha(sha, *parts[2:])  # a batch of one check
            if not (isinstance(reply, list) and isinstance(reply[0], int)):
                raise RuntimeError(f"denied: {reply}")

    t0 = time.process_time()
    await asyncio.gather(*(worker() for _ in range(c)))
    cpu = time.process_time() - t0
    # the split above is bench bookkeeping, not redis-py's cost: measure it alone and subtract
    t1 = time.process_time()
    for _ in range(n):
        Parser().feed(_one_check(encoder))
    cpu -= time.process_time() - t1
    await client.aclose()
    return cpu


def _one_check(encoder: RedisBackend) -> bytes:
    """The EVALSHA command the backend sends for one check alone (a batch of one)."""
    now = time.time()
    buckets, quota, usage = _request(now)
    return encoder._encode([(None, buckets, quota, now, usage)])  # type: ignore[list-item]


def best(label: str, rounds: int, n: int, make: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    results = []
    for _ in range(rounds):
        results.append(make())
    cpu = min(r[0] for r in results)
    server = min(r[1] for r in results)
    mine, theirs = cpu / n * 1e6, server / n * 1e6
    print(f"{label:<34} {mine:7.2f} us/check (this process)   {theirs:6.2f} us/check (redis-server)")
    return cpu, server


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("-c", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default="plan")
    args = ap.parse_args()
    SCENARIO[0] = args.scenario
    prefix = f"bench:{time.time_ns()}:"

    async def measured(kind: str) -> tuple[float, float]:
        stats = Client(parse_url(args.url), timeout=1.0)
        before = await _redis_cpu(stats)
        if kind == "iamgate":
            cpu: float | None = await run_iamgate(args.url, args.n, args.c, prefix)
        elif kind == "redis-py":
            cpu = await run_redis_py(args.url, args.n, args.c, prefix)
        else:
            cpu = await run_baseline(args.n, args.c)
        after = await _redis_cpu(stats)
        stats.close()
        if cpu is None:
            raise SystemExit("redis-py is not installed here: install redis (and hiredis) to compare")
        return cpu, after - before

    what = "3 buckets + quota + usage counter" if args.scenario == "plan" else "2 buckets"
    print(f"{args.n} checks, {args.c} at a time, {what} (new objects per check), best of {args.rounds}")
    best("harness alone (no Redis)", args.rounds, args.n, lambda: uvloop.run(measured("baseline")))
    best("iamgate RedisBackend", args.rounds, args.n, lambda: uvloop.run(measured("iamgate")))
    try:
        import redis
    except ImportError:
        print("redis-py: not installed (not a dependency; see the docstring)")
    else:
        label = f"redis-py {redis.__version__} asyncio"
        best(label, args.rounds, args.n, lambda: uvloop.run(measured("redis-py")))
    cleanup = Client(parse_url(args.url), timeout=5.0)

    async def clean() -> None:
        cursor: bytes = b"0"
        while True:
            reply = await cleanup.call("SCAN", cursor, "MATCH", prefix + "*", "COUNT", 1000)
            assert isinstance(reply, list)
            next_cursor, keys = reply[0], reply[1]
            assert isinstance(next_cursor, bytes)
            assert isinstance(keys, list)
            cursor = next_cursor
            if keys:
                await cleanup.call("DEL", *[k for k in keys if isinstance(k, bytes)])
            if cursor == b"0":
                break
        cleanup.close()

    uvloop.run(clean())


if __name__ == "__main__":
    main()
