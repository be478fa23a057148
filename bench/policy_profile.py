#!/usr/bin/env python3
"""Where iamgate's per-decision time goes, for the two policy benchmark scenarios (bench/policies).

    taskset -c 1 /tmp/benchvenv/bin/python bench/policy_profile.py              # all three views
    taskset -c 1 /tmp/benchvenv/bin/python bench/policy_profile.py --mode stages --scenario large

Views (each over ``--n`` decisions cycling the scenario's 8 requests, default 100,000):

* ``stages``: each step of ``adapter.make_decider``'s ``decide`` timed in isolation (resource
  ARN, Context, Request, evaluate, ...), then the engine's internal steps (private attributes,
  read only, for attribution), then the full decide per request of the mix. Steps are timed in
  interleaved rounds (min and median over rounds, ns per call). The least distorted view.
* ``cprofile``: cProfile of the decide loop, functions by total own time. cProfile adds a fixed
  cost per Python call, so it over-weights many small calls; use it for the call graph and counts.
* ``lines``: line_profiler on the hot functions (needs ``pip install line_profiler``).

The scenarios and their requests are read from bench/policies (bench/policy_timing.py).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import adapter
from iamgate.policy import Context, Request
from policy_timing import scenario


def cycle_loop(decide: Callable[[Any], bool], reqs: list[Any], n: int) -> Callable[[], None]:
    batch = (reqs * (n // len(reqs) + 1))[:n]

    def loop() -> None:
        for r in batch:
            decide(r)

    return loop


def describe_groups(groups: Any) -> str:
    return ", ".join(f"{type(g).__name__} ({len(getattr(g, 'tables', {}))} prefix tables)" for g in groups)


def stages(name: str, doc: dict[str, Any], pairs: list[tuple[Any, bool]], n: int, rounds: int) -> None:
    policy = adapter.compile_policy(doc)
    decide = adapter.make_decider(doc)
    k = len(pairs)
    prefix, action, key = adapter.ARN_PREFIX, adapter.ACTION, adapter.SOURCE_IP
    reqs = [r for r, _ in pairs]
    resources = [f"{prefix}{r.method}{r.path}" for r in reqs]
    principals = [r.principal for r in reqs]
    contexts = []
    for r in reqs:
        ctx = Context()
        ctx[key] = r.ip
        contexts.append(ctx)
    built = [
        Request(r.principal, action, res, ctx) for r, res, ctx in zip(reqs, resources, contexts, strict=True)
    ]
    decisions = [policy.evaluate(q) for q in built]
    evaluate = policy.evaluate
    fast = policy._fast  # internal attributes below: read only, for attribution
    rindex = policy._res
    groups = policy._groups
    memo_a, memo_p = policy._action_memo.found, policy._principal_memo.found

    def new_context(ip: str) -> Context:
        c = Context()
        c[key] = ip
        return c

    # each step: a function over one request of the mix (index i), timed over the whole mix
    steps: list[tuple[str, Callable[[int], object]]] = [
        ("(empty step: loop + call overhead, subtracted)", lambda i: None),
        ("full decide(req) (adapter.make_decider)", lambda i: decide(reqs[i])),
        ("  resource ARN f-string", lambda i: f"{prefix}{reqs[i].method}{reqs[i].path}"),
        ("  Context() + 1 item", lambda i: new_context(reqs[i].ip)),
        ("  Context({key: ip}) (alternative)", lambda i: Context({key: reqs[i].ip})),
        (
            "  Request(principal, action, resource, ctx)",
            lambda i: Request(principals[i], action, resources[i], contexts[i]),
        ),
        (
            "  Request(..., {'aws:SourceIp': ip}) (plain dict, normalised)",
            lambda i: Request(principals[i], action, resources[i], {"aws:SourceIp": reqs[i].ip}),
        ),
        ("  policy.evaluate(prebuilt request)", lambda i: evaluate(built[i])),
        ("  .allowed on a Decision", lambda i: decisions[i].allowed),
        ("    [internal] _fast(request) (evaluate minus its frame)", lambda i: fast(built[i])),
        (
            "    [internal] action + principal memo lookups",
            lambda i: (memo_a.get(action), memo_p.get(principals[i])),
        ),
        (
            "    [internal] _ResourceIndex.lookup(resource)",
            lambda i: rindex.lookup(resources[i], contexts[i], -1),
        ),
        (
            "    [internal] every condition group .satisfied(ctx, group.mask)",
            lambda i: [g.satisfied(contexts[i], g.mask) for g in groups],
        ),
    ]
    number = max(n // k, 1)
    order = list(range(k)) * number
    samples: dict[str, list[float]] = {label: [] for label, _ in steps}
    for _ in range(rounds):  # interleaved: drift and load bursts hit every step alike
        for label, step in steps:
            t0 = time.perf_counter()
            for i in order:
                step(i)
            samples[label].append((time.perf_counter() - t0) / len(order) * 1e9)
    base = samples[steps[0][0]]
    print(
        f"\n### {name}: stages, ns per decision, {len(order):,} calls per step and round, "
        f"{rounds} interleaved rounds; min and median over rounds, minus the empty step ({min(base):.0f} / "
        f"{statistics.median(base):.0f} ns)"
    )
    print(
        f"resource index: {len(rindex.exact)} exact, prefix tables by length "
        f"{ {ln: len(t) for ln, t in rindex.prefixes.items()} }, {len(rindex.general)} general; "
        f"condition groups: {describe_groups(groups)}"
    )
    for label, _ in steps[1:]:
        lo = min(samples[label]) - min(base)
        mid = statistics.median(samples[label]) - statistics.median(base)
        print(f"  {lo:7.0f} {mid:7.0f}  {label}")
    print(f"\n### {name}: full decide per request (ns, min of {rounds} rounds x {number:,})")
    for r, want in pairs:
        ts = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(number):
                decide(r)
            ts.append((time.perf_counter() - t0) / number * 1e9)
        print(
            f"  {min(ts):7.0f}  {'allow' if want else 'deny '}  {r.method} {r.path} "
            f"ip={r.ip} principal={r.principal}"
        )


def cprofile_view(name: str, doc: dict[str, Any], pairs: list[tuple[Any, bool]], n: int, top: int) -> None:
    decide = adapter.make_decider(doc)
    loop = cycle_loop(decide, [r for r, _ in pairs], n)
    loop()  # warm the memos
    prof = cProfile.Profile()
    prof.enable()
    loop()
    prof.disable()
    stream = io.StringIO()
    stats = pstats.Stats(prof, stream=stream)
    stats.sort_stats("tottime").print_stats(top)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(
        f"\n### {name}: cProfile, {n:,} decisions, {total:.3f} s total under the profiler "
        f"({total / n * 1e9:.0f} ns per decision, inflated by the profiler)"
    )
    print("  own time per decision (ns)  share  calls/decision  function")
    for (file, line, func), (_cc, nc, tt, _ct, _callers) in sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda kv: -kv[1][2],
    )[:top]:
        where = f"{Path(file).name}:{line}" if line else file
        print(f"  {tt / n * 1e9:8.0f}  {100 * tt / total:5.1f} %  {nc / n:6.2f}  {func} ({where})")


def lines_view(name: str, doc: dict[str, Any], pairs: list[tuple[Any, bool]], n: int) -> None:
    try:
        from line_profiler import LineProfiler
    except ImportError:
        print("line_profiler is not installed; skipping the lines view")
        return
    from iamgate.policy import CompiledPolicy
    from iamgate.policy import evaluate as ev
    from iamgate.policy import request as rq

    lp = LineProfiler()
    for fn in (
        CompiledPolicy._fast,
        CompiledPolicy.evaluate,
        ev._ResourceIndex.lookup,
        ev._IpGroup.satisfied,
        rq.Request.__init__,
    ):
        lp.add_function(fn)
    decide = adapter.make_decider(doc)
    loop = cycle_loop(decide, [r for r, _ in pairs], n)
    loop()
    lp.enable_by_count()
    loop()
    lp.disable_by_count()
    print(f"\n### {name}: line_profiler, {n:,} decisions")
    lp.print_stats(stream=sys.stdout, stripzeros=True, output_unit=1e-9)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="small,large")
    ap.add_argument("--mode", default="stages,cprofile,lines")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds of the stages view")
    args = ap.parse_args()
    modes = args.mode.split(",")
    for name in args.scenario.split(","):
        doc, pairs = scenario(name)
        if "stages" in modes:
            stages(name, doc, pairs, args.n, args.rounds)
        if "cprofile" in modes:
            cprofile_view(name, doc, pairs, args.n, args.top)
        if "lines" in modes:
            lines_view(name, doc, pairs, args.n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
