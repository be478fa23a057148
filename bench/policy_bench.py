#!/usr/bin/env python3
"""Policy-engine benchmark: iamgate per decision, pinned to one core, with a markdown report.

By default it runs bench/policy_timing.py (the scenarios of bench/policies, the timing of
every engine; nothing outside this repository) with iamgate's two adapters as engines
(bench/adapter.py, bench/ on PYTHONPATH, from the project root), after checking that both decide
every scenario request as expected, then turns the JSON into a report with machine info, date,
the exact command, per-decision mean / p50 / p99 and correctness.

    python bench/policy_bench.py                                       # small + large, ~1 min
    python bench/policy_bench.py --scenario small --n 20000 --cap 2    # quick smoke

Baselines in the same run (cedarpy, naive Python walks, moto...) come from an external anchor,
a ``policy_anchor.py`` that takes ``--add-engine NAME=module:factory`` (the team's baseline
harness; not part of this repository). Given ``--anchor PATH``, that script runs instead, with
its baseline engines (``--engines``) and iamgate added as extra engines, under ``--python`` (an
interpreter that has the baselines' packages and iamgate installed), and the report gains the
iamgate-vs-baseline ratios:

    python bench/policy_bench.py --anchor /path/to/policy_anchor.py --python /tmp/benchvenv/bin/python

Outputs go to ``--out`` (default /tmp/iamgate-bench/policy-<timestamp>/): policy.json (the raw
results), timing.log (the timing script's output), report.md (the tables), meta.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from policy_timing import scenario

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
TIMING = BENCH / "policy_timing.py"
BASELINES = "naive,naive-compiled,cedar-handles"  # the anchor's engines, with --anchor
IAMGATE_ENGINES = ("iamgate=adapter:make_decider", "iamgate-dict=adapter:make_decider_dict")
TARGET_P50_US = {"small": 4.0, "large": 8.0}  # from the issue


def load_anchor(path: Path) -> ModuleType:
    """Import an external policy_anchor.py by path (it only needs the standard library at import time)."""
    spec = importlib.util.spec_from_file_location("policy_anchor", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["policy_anchor"] = module
    spec.loader.exec_module(module)
    return module


def anchor_differences(anchor: ModuleType, scenarios: list[str]) -> list[str]:
    """Where the anchor's scenarios are not those of bench/policies (it builds them in code)."""
    builders = {"small": anchor.small_scenario, "large": anchor.large_scenario}
    notes = []
    for name in scenarios:
        doc, pairs = builders[name]()
        mine_doc, mine_pairs = scenario(name)
        theirs = [(tuple(req), want) for req, want in pairs]
        if doc != mine_doc or theirs != [(tuple(req), want) for req, want in mine_pairs]:
            notes.append(f"the anchor's {name} scenario differs from bench/policies/{name}*.json")
    return notes


def precheck(scenarios: list[str]) -> list[str]:
    """Every adapter factory decides the 8 requests of each scenario correctly."""
    sys.path.insert(0, str(BENCH))
    try:
        import adapter
    except ImportError as exc:  # iamgate not importable in this interpreter: the report still checks
        return [f"pre-check skipped ({exc}); see the 'correct' column"]
    notes = []
    for name in scenarios:
        doc, pairs = scenario(name)
        for spec in IAMGATE_ENGINES:
            factory = getattr(adapter, spec.split(":")[1])
            decide = factory(doc)
            wrong = [(req, want) for req, want in pairs if decide(req) != want]
            if wrong:
                raise SystemExit(f"{spec} is wrong on {name}: {wrong}")
            notes.append(f"{spec.split('=')[0]} {name}: {len(pairs)}/{len(pairs)} correct")
    return notes


def sh(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def cpu_times() -> dict[str, list[int]]:
    """The /proc/stat tick counters of every cpu ('cpu0', 'cpu1', ...)."""
    out = {}
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            fields = line.split()
            if fields[0].startswith("cpu") and fields[0] != "cpu":
                out[fields[0]] = [int(x) for x in fields[1:]]
    except OSError:
        pass
    return out


def busy_report(before: dict[str, list[int]], after: dict[str, list[int]]) -> str:
    """Busy and steal share of each cpu over the run: the pinned one should be ~100 % (the
    benchmark); anything on the others is load from elsewhere that can disturb the numbers."""
    parts = []
    for name in sorted(before.keys() & after.keys()):
        d = [b - a for a, b in zip(before[name], after[name], strict=False)]
        total = sum(d) or 1
        idle = d[3] + d[4]  # idle + iowait
        steal = d[7] if len(d) > 7 else 0
        parts.append(f"{name} busy {100 * (total - idle) / total:.0f} % (steal {100 * steal / total:.1f} %)")
    return ", ".join(parts) or "n/a"


def machine_info(python: str) -> dict[str, str]:
    model = ""
    for line in sh("lscpu").splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    probe = "import platform as p; print(p.python_implementation(), p.python_version(), *p.python_build())"
    pyver = sh(python, "-c", probe)
    return {
        "cpu": f"{model}, {os.cpu_count()} cores ({sh('nproc')} online)",
        "hypervisor": next(
            (ln.split(":", 1)[1].strip() for ln in sh("lscpu").splitlines() if ln.startswith("Hypervisor")),
            "none",
        ),
        "kernel": platform.release(),
        "os": sh("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"),
        "python": pyver.splitlines()[0] if pyver else "?",
        "git": sh("git", "-C", str(ROOT), "describe", "--always", "--dirty"),
        "engine_changes": sh("git", "-C", str(ROOT), "status", "--short", "--", "src/iamgate/policy")
        or "none (src/iamgate/policy as committed)",
    }


def top_processes() -> str:
    """What else was using CPU when the run started (other agents' tests, builds...)."""
    out = sh("ps", "-eo", "pid,stat,pcpu,etimes,args", "--sort=-pcpu", "--no-headers")
    mine = {os.getpid(), os.getppid()}
    rows = []
    for line in out.splitlines():
        parts = line.split(None, 4)
        if len(parts) == 5 and int(parts[0]) not in mine and "R" in parts[1] and parts[4][:3] != "ps ":
            rows.append(f"{parts[0]} {parts[2]}% {parts[4][:90]}")
    return "; ".join(rows[:5]) or "none running"


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def fmt(x: float) -> str:
    return f"{x:,.2f}" if x < 100 else f"{x:,.0f}"


def render(results: dict[str, Any], meta: dict[str, Any]) -> str:
    cases = results["cases"]
    lines = [
        "## Policy engine",
        "",
        f"* date: {meta['date']}",
        f"* machine: {meta['machine']['cpu']}, hypervisor {meta['machine']['hypervisor']}, "
        f"{meta['machine']['os']}, kernel {meta['machine']['kernel']}",
        f"* Python {meta['machine']['python']}; versions: "
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items() if k not in ("python", "machine")),
        f"* iamgate: git {meta['machine']['git']}; uncommitted changes in the policy engine: "
        f"{meta['machine']['engine_changes']}",
        f"* command (project root): `{meta['wrapper_command']}`",
        f"* timing command it ran: `{meta['command']}`",
        f"* load average before / after: {meta['load_before']} / {meta['load_after']}; "
        f"during the run ({'pinned to cpu' + meta['cpu'] if meta['cpu'] else 'unpinned'}): {meta['busy']}",
        f"* other processes running at the start: {meta['others']}; at the end: {meta['others_end']}",
        f"* timer overhead subtracted per call: {results['timer_overhead_ns']:.0f} ns; wall time "
        f"{meta['elapsed_s']:.0f} s",
        "",
        "µs per decision. *mean*: timeit mean of 5 repeats (median, min-max); *p50*/*p99*: every call "
        "timed alone (perf_counter_ns).",
        "",
        "| scenario | engine | correct | decisions timed | mean (min-max) | p50 | p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in cases:
        lines.append(
            f"| {c['scenario']} | {c['engine']} | {c['correct']} | {c['n_percall']:,} "
            f"| {fmt(c['timeit_mean_us_median'])} ({fmt(c['timeit_mean_us_min'])}-"
            f"{fmt(c['timeit_mean_us_max'])}) | {fmt(c['percall_median_us'])} | {fmt(c['percall_p99_us'])} |"
        )
    by = {(c["scenario"], c["engine"]): c for c in cases}
    scenarios = list(dict.fromkeys(c["scenario"] for c in cases))
    engines = list(dict.fromkeys(c["engine"] for c in cases))
    baselines = [e for e in engines if not e.startswith("iamgate")]
    if baselines:
        lines += [
            "",
            "Ratios in this run (iamgate / baseline; below 1 = iamgate is faster), from p50 and the mean:",
            "",
            "| scenario | iamgate engine | vs | p50 ratio | mean ratio |",
            "|---|---|---|---|---|",
        ]
    for s in scenarios:
        for mine in (e for e in engines if e.startswith("iamgate") and (s, e) in by):
            for other in (e for e in baselines if (s, e) in by):
                a, b = by[(s, mine)], by[(s, other)]
                lines.append(
                    f"| {s} | {mine} | {other} | {a['percall_median_us'] / b['percall_median_us']:.3f} "
                    f"| {a['timeit_mean_us_median'] / b['timeit_mean_us_median']:.3f} |"
                )
    lines += ["", "Targets (issue): p50 per decision.", ""]
    for s in scenarios:
        if (s, "iamgate") in by and s in TARGET_P50_US:
            p50 = by[(s, "iamgate")]["percall_median_us"]
            verdict = "met" if p50 <= TARGET_P50_US[s] else "NOT met"
            lines.append(f"* {s}: iamgate p50 {p50:.2f} µs, target <= {TARGET_P50_US[s]:g} µs: {verdict}")
    pu = results.get("policyuniverse_parse") or {}
    if any(pu.values()):
        lines += [
            "",
            "policyuniverse (no decision API) `Policy(doc).is_internet_accessible()` per document: "
            + ", ".join(f"{s} {v['us_per_policy_median']:,.0f} µs" for s, v in pu.items() if v),
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", default=sys.executable, help="interpreter to time in (default: this one)")
    ap.add_argument("--anchor", type=Path, help="an external policy_anchor.py, for baseline engines")
    ap.add_argument("--scenario", default="small,large")
    ap.add_argument("--engines", default=BASELINES, help="the anchor's baseline engines (with --anchor)")
    ap.add_argument("--no-dict-variant", action="store_true", help="skip the iamgate-dict row")
    ap.add_argument("--n", type=int, default=100_000, help="target decisions per timing pass")
    ap.add_argument("--cap", type=float, default=20.0, help="max seconds per timing pass")
    ap.add_argument("--cpu", default="1", help="taskset core list; 'none' to run unpinned")
    ap.add_argument("--out", type=Path, help="output directory (default /tmp/iamgate-bench/policy-<ts>)")
    args = ap.parse_args()

    scenarios = [s for s in args.scenario.split(",") if s]
    for note in precheck(scenarios):
        print("# pre-check:", note)
    if args.anchor is not None:
        for note in anchor_differences(load_anchor(args.anchor), scenarios):
            print("# warning:", note)

    stamp = dt.datetime.now(dt.UTC)
    out: Path = args.out or Path("/tmp/iamgate-bench") / f"policy-{stamp:%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "policy.json"
    extra = IAMGATE_ENGINES[:1] if args.no_dict_variant else IAMGATE_ENGINES
    common = ["--scenario", ",".join(scenarios), "--n", str(args.n), "--cap", str(args.cap)]
    common += ["--json", str(json_path)]
    if args.anchor is not None:
        cmd = [args.python, os.path.relpath(args.anchor, ROOT), *common, "--engines", args.engines]
        for spec in extra:
            cmd += ["--add-engine", spec]
    else:
        cmd = [args.python, os.path.relpath(TIMING, ROOT), *common]
        for spec in extra:
            cmd += ["--engine", spec]
    pinned = args.cpu != "none"
    if pinned:
        cmd = ["taskset", "-c", args.cpu, *cmd]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in ("bench", env.get("PYTHONPATH", "")) if p)
    shown = "PYTHONPATH=bench " + shlex.join(cmd)
    print("#", shown, flush=True)

    machine = machine_info(args.python)
    others = top_processes()
    load_before = loadavg()
    ticks0 = cpu_times()
    t0 = time.monotonic()
    with (out / "timing.log").open("w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
        rc = proc.wait()
    elapsed = time.monotonic() - t0
    ticks1 = cpu_times()
    if rc != 0:
        print(f"the timing run failed with exit status {rc}", file=sys.stderr)
        return rc
    results = json.loads(json_path.read_text())
    meta = {
        "date": stamp.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine,
        "command": shown,
        "wrapper_command": shlex.join([Path(sys.executable).as_posix(), *sys.argv]),
        "cpu": args.cpu if pinned else "",
        "busy": busy_report(ticks0, ticks1),
        "load_before": load_before,
        "load_after": loadavg(),
        "others": others,
        "elapsed_s": elapsed,
        "others_end": top_processes(),
    }
    report = render(results, meta)
    (out / "report.md").write_text(report)
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    print("\n" + report)
    print(f"# wrote {out}/report.md, policy.json, timing.log, meta.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
