"""Instructions per proxied request, counted by callgrind: the deterministic A/B number.

Runs ``bench/hotpath.py`` under ``valgrind --tool=callgrind`` twice per case, with N1 and N2
requests, and reports ``(instructions(N2) - instructions(N1)) / (N2 - N1)``: start-up and
warm-up cancel out, what is left is the per-request cost of the Python hot path (parsing,
stages, policy, header rewriting, access log, metrics), without system calls. Unlike CPU time
it hardly moves when the machine is busy, so small changes can be compared on a noisy VM.

    python bench/instructions.py                       # allow-all/small/large x log on/off
    python bench/instructions.py --cases small:on small:off:memory -j 2

A case is ``POLICY:LOG[:THROTTLE[:PATHS[:ROUTE_POLICY[:AUTH]]]]`` (PATHS: see hotpath.py's
``--paths``; ``small:on:off:10000``: the small policy, every request on another path;
ROUTE_POLICY: the route's own policy, ``small:off:off:1:small``; AUTH: ``iam`` for a SigV4-signed
request on an ``AWS_IAM`` route, ``small:off:off:1:none:iam``), or ``floor`` for
``bench/floor_proxy.py`` (the least a uvloop + httptools proxy does per request, same bytes in
and out). ``PYTHONHASHSEED`` is fixed so dictionary layouts repeat.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CASES = [f"{p}:{log}" for p in ("allow-all", "small", "large") for log in ("on", "off")]


def _count(
    policy: str, log: str, throttle: str, n: int, paths: str, route_policy: str = "none", auth: str = "none"
) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
        if policy == "floor":
            cmd += [str(HERE / "floor_proxy.py"), "--hotpath"]
        else:
            cmd += [str(HERE / "hotpath.py"), "--policy", policy, "--log", log, "--throttle", throttle]
            cmd += ["--paths", paths]
            if route_policy != "none":
                cmd += ["--route-policy", route_policy]
            if auth != "none":
                cmd += ["--auth", auth]
        cmd += ["-n", str(n), "--rounds", "1"]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no totals in callgrind output")


def per_request(case: str, n1: int, n2: int) -> float:
    policy, log, *rest = [*case.split(":"), "off"] if case == "floor" else case.split(":")
    throttle = rest[0] if rest else "off"
    paths = rest[1] if len(rest) > 1 else "1"
    own = rest[2] if len(rest) > 2 else "none"
    auth = rest[3] if len(rest) > 3 else "none"
    more = _count(policy, log, throttle, n2, paths, own, auth)
    return (more - _count(policy, log, throttle, n1, paths, own, auth)) / (n2 - n1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES)
    parser.add_argument("--n1", type=int, default=1000)
    parser.add_argument("--n2", type=int, default=3000)
    parser.add_argument("-j", type=int, default=2, help="cases run in parallel")
    args = parser.parse_args()
    with ThreadPoolExecutor(args.j) as pool:
        results = pool.map(lambda c: (c, per_request(c, args.n1, args.n2)), args.cases)
        for case, value in results:
            print(f"{case:24} {value:10,.0f} instructions/request", flush=True)


if __name__ == "__main__":
    main()
