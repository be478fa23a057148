"""The HTTP fuzzer, run by hand: many inputs against one ``iamgate serve`` (docs/fuzzing.md).

Each input is made from a seed (``random.Random(f"{seed}-{n}")``), played by
:class:`~fuzz.http_session.Session` and judged by the oracle (fuzz/http_oracle.py). A progress
line is printed every ``--report`` seconds; an input with a violation is written to
``--findings`` (the input, what each client and backend connection sent and read, and the
violations), then, with ``--shrink``, reduced to a smaller input that still shows a violation
of the same kind. ``--replay FILE`` plays a saved input again.

    .venv/bin/python fuzz/fuzz_http.py --seconds 600
    .venv/bin/python fuzz/fuzz_http.py --inputs 1000000 --report 60 --shrink
    .venv/bin/python fuzz/fuzz_http.py --iamgate /path/to/other/venv/bin/iamgate --seconds 60
    .venv/bin/python fuzz/fuzz_http.py --replay fuzz/findings/crossed-response-0-1234.txt

Exit status: 0 without findings, 1 with.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: fuzz.*, tests.*

from fuzz.http_generate import RandomChooser, build_input
from fuzz.http_inputs import Await, Close, Input, Junk, Pause, Request, Send
from fuzz.http_session import DEFAULT_IAMGATE, Outcome, Session

FINDINGS = Path(__file__).resolve().parent / "findings"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=None, help="stop after this many inputs")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--seed", type=int, default=None, help="seed of the inputs (default: random)")
    parser.add_argument("--iamgate", default=DEFAULT_IAMGATE, help="the iamgate executable to fuzz")
    parser.add_argument("--findings", type=Path, default=FINDINGS, help="where failing inputs go")
    parser.add_argument("--report", type=float, default=10.0, help="seconds between progress lines")
    parser.add_argument("--shrink", action="store_true", help="reduce each failing input")
    parser.add_argument("--stop", action="store_true", help="stop at the first finding")
    parser.add_argument("--replay", type=Path, nargs="*", default=None, help="play saved inputs again")
    parser.add_argument("--times", type=int, default=3, help="plays per input with --replay")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # as Ctrl-C: the gateway is stopped
    with (
        tempfile.TemporaryDirectory(prefix="fuzz-http-") as home,
        Session(Path(home), args.iamgate) as session,
    ):
        if args.replay is not None:
            return replay(session, args.replay, args.times)
        return fuzz(session, args)


def fuzz(session: Session, args: argparse.Namespace) -> int:
    # (S311: test inputs, not secrets)
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)  # noqa: S311
    limit = args.inputs if args.inputs is not None else (None if args.seconds else 1000)
    ends = time.monotonic() + args.seconds if args.seconds else None
    print(f"seed {seed}; gateway {args.iamgate}")
    started = last = time.monotonic()
    totals: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    behaviours: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    first: dict[str, str] = {}  # each kind of violation: when it was first seen
    n = 0
    try:
        while (limit is None or n < limit) and (ends is None or time.monotonic() < ends):
            chooser = RandomChooser(random.Random(f"{seed}-{n}"))  # noqa: S311
            case = build_input(chooser)
            outcome = session.run(case)
            totals.update(
                inputs=1, requests=outcome.requests, backend=outcome.backend_messages, reused=outcome.reused
            )
            statuses.update(outcome.statuses)
            behaviours.update(outcome.behaviours)
            if outcome.violations:
                kinds.update({v.kind for v in outcome.violations})
                for v in outcome.violations:
                    first.setdefault(v.kind, f"input {n + 1:,d}, {time.monotonic() - started:.1f} s")
                path = save(args.findings, f"{seed}-{n}", case, outcome, time.monotonic() - started)
                print(
                    f"FINDING after {n + 1} inputs, {time.monotonic() - started:.0f} s: "
                    f"{outcome.violations[0]} -> {path}"
                )
                if args.shrink:
                    smaller = shrink(session, case, {v.kind for v in outcome.violations})
                    if smaller is not None:
                        print(
                            f"  shrunk to {smaller[0]!r}\n"
                            f"  -> {save(args.findings, f'{seed}-{n}-shrunk', *smaller, 0)}"
                        )
                if args.stop:
                    break
            n += 1
            if time.monotonic() - last >= args.report:
                last = time.monotonic()
                print(progress(totals, kinds, session, last - started), flush=True)
    except KeyboardInterrupt:  # (Ctrl-C, or SIGTERM: see main)
        print("interrupted")
    elapsed = time.monotonic() - started
    print(progress(totals, kinds, session, elapsed))
    print(f"statuses read by clients: {dict(sorted(statuses.items()))}")
    print(f"backend behaviours reached: {dict(behaviours.most_common())}")
    for kind, when in first.items():
        print(f"first {kind}: {when}")
    return 1 if kinds else 0


def progress(totals: Counter[str], kinds: Counter[str], session: Session, elapsed: float) -> str:
    rate = totals["inputs"] / elapsed if elapsed else 0.0
    return (
        f"{elapsed:7.0f} s  {totals['inputs']:9,d} inputs ({rate:5.1f}/s)  "
        f"{totals['requests']:10,d} requests sent  "
        f"{totals['backend']:9,d} read by the backend ({totals['reused']:,d} reused connections)  "
        f"restarts {session.restarts}  findings {dict(kinds) or 0}"
    )


def save(directory: Path, name: str, case: Input, outcome: Outcome, after: float) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    kind = outcome.violations[0].kind if outcome.violations else "none"
    path = directory / f"{kind}-{name}.txt"
    lines = [f"input: {case!r}", f"found after {after:.0f} s", "", "violations:"]
    lines += [f"  {v}" for v in outcome.violations]
    for client in outcome.clients:
        lines += [
            "",
            f"client {client.index} sent: {client.sent!r}",
            f"client {client.index} read: {client.received!r}",
        ]
    for number, data in sorted(outcome.transcripts.items()):
        lines += ["", f"backend connection {number} read: {data!r}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def load(path: Path) -> Input:
    """The input saved in a findings file (its first line is the input's repr)."""
    text = path.read_text().split("\n", 1)[0].removeprefix("input: ")
    names = {c.__name__: c for c in (Input, Send, Await, Close, Pause, Request, Junk)}
    value = eval(text, {"__builtins__": {}}, names)  # noqa: S307 (a file this tool wrote)
    assert isinstance(value, Input)
    return value


def replay(session: Session, paths: list[Path], times: int) -> int:
    found = 0
    for path in paths:
        case = load(path)
        for i in range(times):
            outcome = session.run(case)
            found += bool(outcome.violations)
            print(f"{path.name} play {i + 1}: {[str(v) for v in outcome.violations] or 'no violation'}")
    return 1 if found else 0


# --- shrinking ------------------------------------------------------------------------------------


def shrink(session: Session, case: Input, kinds: set[str], tries: int = 3) -> tuple[Input, Outcome] | None:
    """A smaller input that still shows a violation of one of ``kinds`` (greedy: each simpler
    candidate that fails in one of ``tries`` plays is kept, until none does)."""
    best: tuple[Input, Outcome] | None = None
    progress_made = True
    while progress_made:
        progress_made = False
        for candidate in candidates(case):
            outcome = next(
                (o for o in _plays(session, candidate, tries) if kinds & {v.kind for v in o.violations}), None
            )
            if outcome is not None:
                case, best, progress_made = candidate, (candidate, outcome), True
                break
    return best


def _plays(session: Session, case: Input, tries: int) -> Iterator[Outcome]:
    for _ in range(tries):
        yield session.run(case)


def candidates(case: Input) -> Iterator[Input]:
    """Inputs one step simpler than ``case``: an action or an item fewer, or one field plainer."""
    actions = case.actions
    for i in range(len(actions)):
        yield dataclasses.replace(case, actions=actions[:i] + actions[i + 1 :])
    for i, action in enumerate(actions):
        if not isinstance(action, Send):
            continue
        for simpler in _simpler_sends(action):
            yield dataclasses.replace(case, actions=(*actions[:i], simpler, *actions[i + 1 :]))
    used = sorted({a.conn for a in actions if not isinstance(a, Pause)})
    if used != list(range(case.connections)):  # fewer connections: the ones used, renumbered
        number = {conn: i for i, conn in enumerate(used)}
        renumbered = tuple(
            a if isinstance(a, Pause) else dataclasses.replace(a, conn=number[a.conn]) for a in actions
        )
        yield Input(max(1, len(used)), renumbered)


def _simpler_sends(send: Send) -> Iterator[Send]:
    items = send.items
    if len(items) > 1:
        for j in range(len(items)):
            yield dataclasses.replace(send, items=items[:j] + items[j + 1 :])
    for field, plain in (("writes", 1), ("gap_ms", 0), ("keep", 1.0)):
        if getattr(send, field) != plain:
            change: dict[str, Any] = {field: plain}
            yield dataclasses.replace(send, **change)
    for j, item in enumerate(items):
        if isinstance(item, Request):
            for simpler in _simpler_requests(item):
                yield dataclasses.replace(send, items=(*items[:j], simpler, *items[j + 1 :]))


_PLAIN: tuple[tuple[str, Callable[[Request], object]], ...] = (
    ("smuggle", lambda r: None),
    ("headers", lambda r: ()),
    ("body", lambda r: b""),
    ("lie", lambda r: 0),
    ("framing", lambda r: "length"),
    ("chunks", lambda r: 1),
    ("chunk_end", lambda r: "ok"),
    ("version", lambda r: "HTTP/1.1"),
    ("close", lambda r: False),
    ("host", lambda r: True),
    ("method", lambda r: "GET"),
    ("target", lambda r: "/prod/" + r.target.split("?")[0].rstrip("/").rsplit("/", 1)[-1]),
)


def _simpler_requests(request: Request) -> Iterator[Request]:
    for field, plain in _PLAIN:
        change: dict[str, Any] = {field: plain(request)}
        if getattr(request, field) != change[field]:
            yield dataclasses.replace(request, **change)
    if len(request.headers) > 1:
        for k in range(len(request.headers)):
            yield dataclasses.replace(request, headers=request.headers[:k] + request.headers[k + 1 :])


if __name__ == "__main__":
    sys.exit(main())
