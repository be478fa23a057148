"""The per-request metrics: counts by status and decision, histogram buckets at their bounds."""

from __future__ import annotations

import bisect
import math
import random

from iamgate.observe.metrics import BUCKETS, Metrics, bucket, merge


def _labels(api: str, stage: str) -> list[list[str]]:
    return [["api", api], ["stage", stage]]


def test_requests_and_histograms_fold_into_the_labelled_tables() -> None:
    m = Metrics()
    for seconds in (0.0, 0.0005, 0.00050001, 0.001, 30.0, 31.0):  # on and just past the bounds
        m.request("a1", "prod", 200, "Allow", seconds, 0.002)
    m.request("a1", "prod", 403, "ExplicitDeny", 0.0001, None)
    m.request("a1", "dev", 200, "-", 0.2, None)
    data = m.export()
    counters = {(n, tuple(map(tuple, labels))): v for n, labels, v in data["counters"]}
    key = (("api", "a1"), ("stage", "prod"))
    assert counters[("iamgate_requests_total", (*key, ("status", "200"), ("decision", "Allow")))] == 6
    assert counters[("iamgate_requests_total", (*key, ("status", "403"), ("decision", "ExplicitDeny")))] == 1
    dev = (("api", "a1"), ("stage", "dev"))
    assert counters[("iamgate_requests_total", (*dev, ("status", "200"), ("decision", "-")))] == 1
    hist = {(n, tuple(map(tuple, labels))): c for n, labels, c in data["histograms"]}
    durations = hist[("iamgate_request_duration_seconds", key)]
    assert len(durations) == len(BUCKETS) + 3
    # le=0.0005 holds 0.0, 0.0005 and 0.0001; le=0.001 holds 0.00050001 and 0.001; le=30 holds 30.0
    expected = [0.0] * (len(BUCKETS) + 1)
    expected[0], expected[1], expected[BUCKETS.index(30.0)], expected[-1] = 3, 2, 1, 1
    assert durations[:-2] == expected
    assert durations[-2] == sum((0.0, 0.0005, 0.00050001, 0.001, 30.0, 31.0, 0.0001))
    assert durations[-1] == 7
    upstream = hist[("iamgate_upstream_duration_seconds", key)]
    assert upstream[-1] == 6
    assert upstream[BUCKETS.index(0.0025)] == 6
    assert ("iamgate_upstream_duration_seconds", dev) not in hist


def test_later_requests_add_to_what_was_folded_and_workers_merge() -> None:
    m = Metrics()
    m.request("a1", "prod", 200, "Allow", 0.01, None)
    first = m.export()
    m.request("a1", "prod", 200, "Allow", 0.01, None)
    second = m.export()
    assert first["counters"][0][2] == 1
    assert second["counters"][0][2] == 2
    assert second["histograms"][0][2][-1] == 2
    total = merge([second, second]).export()
    assert total["counters"][0][2] == 4
    assert total["histograms"][0][1] == _labels("a1", "prod")
    assert total["histograms"][0][2][-1] == 4


def test_bucket_is_bisect_left_over_the_bounds() -> None:
    """Each duration lands in the first bucket whose bound is >= it (Prometheus' ``le``), the
    same answer as ``bisect.bisect_left`` for bounds, values between them, and the edges."""
    values = [-1.0, 0.0, 1e-9, float("inf"), float("nan"), 1e9]
    for b in BUCKETS:
        values += [b, math.nextafter(b, 0.0), math.nextafter(b, math.inf)]
    values += [random.Random(7).uniform(0, 40) for _ in range(500)]
    for v in values:
        assert bucket(v) == bisect.bisect_left(BUCKETS, v), v
    assert bucket(31.0) == len(BUCKETS)  # +Inf
