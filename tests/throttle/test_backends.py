"""The bucket and quota arithmetic of the in-memory backends, on a fake clock.

Both backends take ``now`` from the caller, so time here is whatever the test says it is.
"""

from __future__ import annotations

import calendar
import multiprocessing
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iamgate.throttle.backend import Bucket, Quota, day_of, period_bounds, refill, wait_for
from iamgate.throttle.memory import MemoryBackend, SharedMemoryBackend

Backend = MemoryBackend | SharedMemoryBackend


def _utc(text: str) -> int:
    when = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return calendar.timegm(when.utctimetuple())


@pytest.fixture(params=["memory", "shared"])
def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Backend]]:
    made: list[Backend] = []

    def make() -> Backend:
        if request.param == "memory":
            backend: Backend = MemoryBackend()
        else:
            path = tmp_path / f"state{len(made)}"
            backend = SharedMemoryBackend(str(path), slots=4096, create=True)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


def admitted(backend: Backend, buckets: list[Bucket], times: list[float]) -> int:
    return sum(backend.check(buckets, None, t).allowed for t in times)


# --- the token bucket ---------------------------------------------------------------------------


def test_a_new_bucket_is_full_and_refills_at_its_rate(make_backend: Callable[[], Backend]) -> None:
    backend = make_backend()
    bucket = Bucket("b", rate=2.0, burst=3)
    assert admitted(backend, [bucket], [100.0] * 5) == 3  # the burst, at one instant
    refused = backend.check([bucket], None, 100.0)
    assert not refused.allowed
    assert refused.failed == "throttle"
    assert refused.index == 0
    assert refused.retry_after == pytest.approx(0.5)  # one token at 2/s
    assert admitted(backend, [bucket], [100.49]) == 0
    assert admitted(backend, [bucket], [100.5]) == 1
    assert admitted(backend, [bucket], [100.5]) == 0
    # an idle bucket fills up to its burst, never beyond
    assert admitted(backend, [bucket], [1000.0] * 10) == 3


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(0.1, 500, allow_nan=False),
    burst=st.integers(0, 50),
    gaps=st.lists(st.floats(0, 0.2, allow_nan=False), min_size=1, max_size=300),
)
def test_never_more_than_burst_plus_rate_times_elapsed(rate: float, burst: int, gaps: list[float]) -> None:
    """Over any window of the run, admitted <= burst + rate * (window length)."""
    for backend in (MemoryBackend(),):
        bucket = Bucket("b", rate, burst)
        times, now = [], 1000.0
        for gap in gaps:
            now += gap
            times.append(now)
        allowed = [t for t in times if backend.check([bucket], None, t).allowed]
        for i, first in enumerate(allowed):
            for j in range(i, len(allowed)):
                assert j - i + 1 <= burst + rate * (allowed[j] - first) + 1e-6


def test_steady_load_gets_the_rate(make_backend: Callable[[], Backend]) -> None:
    """Offered 1,000 requests/s for 10 s against 50/s with a burst of 20: 20 + 50 x 10 pass."""
    backend = make_backend()
    bucket = Bucket("b", rate=50.0, burst=20)
    times = [1000.0 + i / 1000 for i in range(10_000)]
    n = admitted(backend, [bucket], times)
    assert 20 + 50 * 9.999 - 1 <= n <= 20 + 50 * 10


def test_all_or_nothing_across_levels(make_backend: Callable[[], Backend]) -> None:
    """A request refused by a later bucket takes no token from the earlier ones."""
    backend = make_backend()
    plan = Bucket("plan", rate=0.0, burst=5)
    stage = Bucket("stage", rate=0.0, burst=2)
    results = [backend.check([plan, stage], None, 10.0) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, False, False]
    assert {r.index for r in results[2:]} == {1}
    # the plan bucket still has 3 tokens: the stage refusals did not spend them
    assert admitted(backend, [plan], [10.0] * 10) == 3


def test_a_zero_rate_bucket_never_refills(make_backend: Callable[[], Backend]) -> None:
    backend = make_backend()
    bucket = Bucket("b", rate=0.0, burst=1)
    assert admitted(backend, [bucket], [1.0, 2.0, 1e6]) == 1
    assert backend.check([bucket], None, 2e6).retry_after == float("inf")


def test_a_zero_burst_bucket_refuses_everything(make_backend: Callable[[], Backend]) -> None:
    backend = make_backend()
    assert admitted(backend, [Bucket("b", rate=1000.0, burst=0)], [1.0, 2.0, 3.0]) == 0


def test_buckets_are_independent_by_key(make_backend: Callable[[], Backend]) -> None:
    backend = make_backend()
    a, b = Bucket("client:1", 1.0, 1), Bucket("client:2", 1.0, 1)
    assert backend.check([a], None, 5.0).allowed
    assert not backend.check([a], None, 5.0).allowed
    assert backend.check([b], None, 5.0).allowed


def test_time_going_backwards_never_adds_tokens(make_backend: Callable[[], Backend]) -> None:
    backend = make_backend()
    bucket = Bucket("b", 10.0, 1)
    assert backend.check([bucket], None, 100.0).allowed
    assert not backend.check([bucket], None, 50.0).allowed  # a clock step back
    assert backend.check([bucket], None, 100.1).allowed


def test_refill_and_wait_for() -> None:
    assert refill(0.0, 10.0, 12.0, 1.5, 10) == 3.0
    assert refill(4.0, 10.0, 100.0, 1.5, 10) == 10.0
    assert refill(4.0, 10.0, 9.0, 1.5, 10) == 4.0
    assert wait_for(0.25, 0.5) == 1.5
    assert wait_for(1.0, 0.0) == 0.0
    assert wait_for(0.0, 0.0) == float("inf")


# --- quotas -------------------------------------------------------------------------------------


def test_period_bounds_in_utc() -> None:
    now = _utc("2026-11-28T15:30:00")  # a Saturday
    assert period_bounds(now, "DAY") == (_utc("2026-11-28"), _utc("2026-11-29"))
    assert period_bounds(now, "WEEK") == (_utc("2026-11-22"), _utc("2026-11-29"))  # from Sunday
    assert period_bounds(now, "WEEK", 1) == (_utc("2026-11-23"), _utc("2026-11-30"))  # from Monday
    assert period_bounds(now, "WEEK", 6) == (_utc("2026-11-28"), _utc("2026-12-05"))  # Saturday
    assert period_bounds(now, "MONTH") == (_utc("2026-11-01"), _utc("2026-12-01"))
    assert period_bounds(now, "MONTH", 27) == (_utc("2026-11-28"), _utc("2026-12-28"))
    early = _utc("2026-01-10T00:00:00")
    assert period_bounds(early, "MONTH", 14) == (_utc("2025-12-15"), _utc("2026-01-15"))
    assert period_bounds(_utc("2026-12-20"), "MONTH", 14) == (_utc("2026-12-15"), _utc("2027-01-15"))
    with pytest.raises(ValueError, match="period"):
        period_bounds(now, "YEAR")


def _quota(now: float, limit: int, period: str = "DAY") -> Quota:
    start, end = period_bounds(now, period)
    return Quota("quota:plan:k1", limit, start, end)


def test_quota_counts_down_and_resets_with_the_period(make_backend: Callable[[], Backend]) -> None:
    backend = make_backend()
    day1 = _utc("2026-11-28T10:00:00")
    results = [backend.check([], _quota(day1 + i, 3), day1 + i) for i in range(5)]
    assert [r.allowed for r in results] == [True, True, True, False, False]
    assert [r.remaining for r in results[:3]] == [2, 1, 0]
    assert results[3].failed == "quota"
    day2 = _utc("2026-11-29T00:00:00")
    assert backend.check([], _quota(day2, 3), day2).allowed


def test_a_throttled_request_does_not_use_quota(make_backend: Callable[[], Backend]) -> None:
    backend = make_backend()
    now = _utc("2026-11-28T10:00:00")
    bucket = Bucket("b", 0.0, 1)
    assert backend.check([bucket], _quota(now, 5), now).remaining == 4
    assert not backend.check([bucket], _quota(now, 5), now).allowed
    assert backend.check([], _quota(now, 5), now).remaining == 3


def test_an_exhausted_quota_spends_no_tokens(make_backend: Callable[[], Backend]) -> None:
    backend = make_backend()
    now = _utc("2026-11-28T10:00:00")
    bucket = Bucket("b", 0.0, 5)
    assert backend.check([bucket], _quota(now, 1), now).allowed
    assert backend.check([bucket], _quota(now, 1), now).failed == "quota"
    assert admitted(backend, [bucket], [now] * 10) == 4


def test_idle_full_buckets_are_forgotten() -> None:
    backend = MemoryBackend()
    for i in range(100):
        backend.check([Bucket(f"client:{i}", 10.0, 5)], None, 1000.0)
    backend.check([Bucket("forever", 0.0, 5)], None, 1000.0)
    assert len(backend.buckets) == 101
    backend.sweep(1000.05)  # not yet full: kept
    assert len(backend.buckets) == 101
    backend.sweep(1000.1)  # 1 token at 10/s: full again, forgotten; a 0/s bucket never is
    assert list(backend.buckets) == ["forever"]


def test_usage_is_counted_per_day_only_for_admitted_requests(make_backend: Callable[[], Backend]) -> None:
    backend = make_backend()
    day1 = _utc("2026-11-27T23:59:58")
    bucket = Bucket("b", 1000.0, 1000)
    for t in (day1, day1 + 1, day1 + 2, day1 + 3):
        assert backend.check([bucket], None, t, "usage:plan:k1").allowed
    assert not backend.check([Bucket("none", 0.0, 0)], None, day1 + 3, "usage:plan:k1").allowed
    counts = backend.usage("usage:plan:k1", ["2026-11-26", "2026-11-27", "2026-11-28"])
    assert counts == {"2026-11-26": 0, "2026-11-27": 2, "2026-11-28": 2}
    assert day_of(day1 + 2) == "2026-11-28"


# --- the shared file: several processes, one limit ------------------------------------------------


def _hammer(path: str, n: int, start: Any, out: Any) -> None:
    backend = SharedMemoryBackend(path)
    start.wait()
    ok = 0
    for _ in range(n):
        ok += backend.check([Bucket("node", 0.0, 500)], None, 1000.0).allowed
    out.put(ok)
    backend.close()


def test_workers_sharing_the_file_share_one_bucket(tmp_path: Path) -> None:
    """Four processes, 400 attempts each, on one bucket of 500 tokens: exactly 500 pass."""
    path = str(tmp_path / "state")
    SharedMemoryBackend(path, slots=1024, create=True).close()
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(path, 400, start, out)) for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    total = sum(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
    assert total == 500


def test_the_shared_file_refuses_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "other"
    path.write_bytes(b"not a state file" * 10)
    with pytest.raises(ValueError, match="not an iamgate throttle state file"):
        SharedMemoryBackend(str(path))


def test_a_full_table_fails_closed_and_stale_slots_are_reused(tmp_path: Path) -> None:
    backend = SharedMemoryBackend(str(tmp_path / "s"), slots=8, create=True)
    try:
        for i in range(8):
            assert backend.check([Bucket(f"k{i}", 1.0, 1)], None, 0.0).allowed
        full = backend.check([Bucket("k-new", 1.0, 1)], None, 0.5)
        assert (full.allowed, full.failed) == (False, "backend")
        assert backend.full_errors == 1
        # once the old buckets have refilled (the same as absent) their slots are reused
        assert backend.check([Bucket("k-new", 1.0, 1)], None, 1.0).allowed
        # and a key that has a slot keeps its state
        assert backend.check([Bucket("k-new", 1.0, 1)], None, 1.5).failed == "throttle"
        # a bucket that never refills is never reclaimed
        assert backend.check([Bucket("k-forever", 0.0, 1)], None, 3.0).allowed
        for i in range(7):  # the seven other slots, all stale by now, are taken over
            assert backend.check([Bucket(f"later{i}", 1.0, 1)], None, 1e9).allowed
        assert backend.check([Bucket("later-still", 1.0, 1)], None, 1e9).failed == "backend"
        assert backend.check([Bucket("k-forever", 0.0, 1)], None, 1e9).failed == "throttle"
    finally:
        backend.close()


def test_the_state_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "s"
    SharedMemoryBackend(str(path), slots=8, create=True).close()
    assert os.stat(path).st_mode & 0o077 == 0
