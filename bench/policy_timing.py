#!/usr/bin/env python3
"""Time policy engines per decision over the scenarios in bench/policies (standard library only).

    PYTHONPATH=bench taskset -c 1 python bench/policy_timing.py \\
        --engine iamgate=adapter:make_decider --scenario small,large --json /tmp/policy.json

An engine is ``NAME=module:factory``: ``factory(policy_doc)`` is called once per scenario (build
everything that can be built once there) and returns ``decide(req) -> bool``, where ``req`` has
``.method``, ``.path``, ``.ip`` and ``.principal`` (None for an anonymous caller), so each engine
turns the same plain request into its own request objects inside the timed call, as a gateway
must. bench/policy_bench.py runs this pinned to one core and writes the report; run it directly
for the raw table.

Each scenario's 8 requests (``<scenario>-requests.json``) are first decided once and compared with
their expected decisions (the ``correct`` column: a wrong engine is still timed, but its times
mean nothing). Then, cycling through the 8 requests:

1. warm-up: at least 0.5 s and 1,000 decisions; its speed sets how many decisions the timed
   passes get: ``--n`` (default 100,000), fewer if that would take more than ``--cap`` seconds;
2. ``timeit``: 5 repeats over the mix, the mean per decision of each (median and range reported);
3. every decision timed on its own with ``perf_counter_ns``, the cost of two back-to-back timer
   calls subtracted: the median (p50) and p99 of those.

The JSON written by ``--json`` is what bench/policy_bench.py reads (the same fields as the
external anchor's, so both render alike).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import platform
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

POLICIES = Path(__file__).resolve().parent / "policies"
SCENARIOS = ("small", "large")
REPEATS = 5


class Req(NamedTuple):
    """The plain request every engine is given."""

    method: str
    path: str
    ip: str
    principal: str | None


Decide = Callable[[Req], bool]


def scenario(name: str) -> tuple[dict[str, Any], list[tuple[Req, bool]]]:
    """(policy document, [(request, expected allow), ...]) of bench/policies/<name>.json."""
    doc = json.loads((POLICIES / f"{name}.json").read_text(encoding="utf-8"))
    rows = json.loads((POLICIES / f"{name}-requests.json").read_text(encoding="utf-8"))
    pairs = [(Req(r["method"], r["path"], r["ip"], r["principal"]), bool(r["expected_allow"])) for r in rows]
    return doc, pairs


def timer_cost_ns(calls: int = 200_000) -> float:
    """The median time between two back-to-back perf_counter_ns calls."""
    clock = time.perf_counter_ns
    gaps = []
    for _ in range(calls):
        a = clock()
        b = clock()
        gaps.append(b - a)
    return statistics.median(gaps)


def measure(
    decide: Decide, requests: list[Req], target: int, cap_s: float, overhead_ns: float
) -> dict[str, Any]:
    k = len(requests)
    start = time.perf_counter()
    done = 0
    while time.perf_counter() - start < 0.5 or done < 1000:
        decide(requests[done % k])
        done += 1
    per_decision_s = (time.perf_counter() - start) / done
    n = min(target, int(cap_s / per_decision_s))
    n = max(k, n - n % k)  # whole passes over the mix

    per_repeat = max(1, n // REPEATS)
    timer = timeit.Timer(
        "for i in rng: decide(reqs[i % k])",
        globals={"decide": decide, "reqs": requests, "k": k, "rng": range(per_repeat)},
    )
    gc.collect()
    means = [total / per_repeat * 1e6 for total in timer.repeat(repeat=REPEATS, number=1)]

    clock = time.perf_counter_ns
    samples = []
    gc.collect()
    for i in range(n):
        req = requests[i % k]
        a = clock()
        decide(req)
        b = clock()
        samples.append((b - a - overhead_ns) / 1000)
    samples.sort()
    return {
        "n_timeit": per_repeat * REPEATS,
        "n_percall": n,
        "timeit_mean_us_median": statistics.median(means),
        "timeit_mean_us_min": min(means),
        "timeit_mean_us_max": max(means),
        "percall_median_us": samples[n // 2],
        "percall_p99_us": samples[max(0, int(n * 0.99) - 1)],
        "percall_mean_us": sum(samples) / n,
    }


def load_engine(spec: str) -> tuple[str, Callable[[dict[str, Any]], Decide]]:
    name, _, target = spec.partition("=")
    module, _, factory = target.partition(":")
    if not (name and module and factory):
        raise SystemExit(f"bad engine {spec!r}: want NAME=module:factory")
    return name, getattr(importlib.import_module(module), factory)


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version(), "machine": platform.machine()}
    try:
        out["iamgate"] = metadata.version("iamgate")
    except metadata.PackageNotFoundError:
        out["iamgate"] = None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", action="append", required=True, help="NAME=module:factory (repeatable)")
    ap.add_argument("--scenario", default=",".join(SCENARIOS))
    ap.add_argument("--n", type=int, default=100_000, help="decisions per timed pass (at most)")
    ap.add_argument("--cap", type=float, default=20.0, help="seconds per timed pass (at most)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()

    engines = [load_engine(spec) for spec in args.engine]
    overhead = timer_cost_ns()
    results: dict[str, Any] = {
        "versions": versions(),
        "timer_overhead_ns": overhead,
        "n_target": args.n,
        "cap_s": args.cap,
        "cases": [],
    }
    print(f"# {results['versions']}; timer cost {overhead:.0f} ns, subtracted from every timed call")
    print("| scenario | engine | correct | decisions timed | mean µs (min-max of 5) | p50 µs | p99 µs |")
    print("|---|---|---|---|---|---|---|")
    for name in args.scenario.split(","):
        doc, pairs = scenario(name)
        requests = [r for r, _ in pairs]
        expected = [e for _, e in pairs]
        for engine, factory in engines:
            decide = factory(doc)
            got = [decide(r) for r in requests]
            row = measure(decide, requests, args.n, args.cap, overhead)
            row.update(
                scenario=name,
                engine=engine,
                correct=f"{sum(g == e for g, e in zip(got, expected, strict=True))}/{len(expected)}",
                got=got,
                expected=expected,
            )
            results["cases"].append(row)
            low, high = row["timeit_mean_us_min"], row["timeit_mean_us_max"]
            mean = f"{row['timeit_mean_us_median']:.2f} ({low:.2f}-{high:.2f})"
            print(
                f"| {name} | {engine} | {row['correct']} | {row['n_percall']:,} | {mean} "
                f"| {row['percall_median_us']:.2f} | {row['percall_p99_us']:.2f} |",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
        print(f"json: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
