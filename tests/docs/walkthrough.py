"""Running a doc's walkthrough as written: each ``sh`` block in order in one directory, each
``yaml file=NAME`` block written to NAME, each ``text`` block the expected output of the ``sh``
block before it. Ports the doc uses (8080, 8443, 9901) become free ones; a ``gateway.pid`` file
the blocks leave names a process killed at the end."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.gateway.conftest import free_port

__all__ = ["DOCS", "blocks", "run_walkthrough"]

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PORTS = ("8080", "8443", "9901")


def blocks(doc: str, heading: str = "## A walkthrough") -> list[tuple[str, str, str]]:
    """(kind, arguments, text) of each fenced block of the doc's section ``heading``."""
    text = (DOCS / doc).read_text()
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return [(m.group(1), m.group(2).strip(), m.group(3)) for m in BLOCK.finditer(section)]


def run_walkthrough(doc: str, directory: Path, heading: str = "## A walkthrough") -> None:
    """Run the section's blocks in ``directory``; an ``sh`` block that fails, or an output that
    differs from the ``text`` block after it, fails the test."""
    ports = {port: str(free_port()) for port in PORTS}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    if env.get("PYTHONPATH"):  # the commands run in another directory: keep this run's sources
        env["PYTHONPATH"] = os.pathsep.join(
            str(Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep)
        )
    last_output: str | None = None
    try:
        for kind, args, written in blocks(doc, heading):
            body = written
            for port, free in ports.items():
                body = body.replace(port, free)
            if kind == "yaml" and args.startswith("file="):
                (directory / args.removeprefix("file=")).write_text(body)
            elif kind == "sh":
                done = subprocess.run(
                    ["bash", "-c", body],
                    cwd=directory,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                assert done.returncode == 0, f"{body}\n{done.stdout}\n{done.stderr}"
                last_output = done.stdout
            elif kind == "text":
                assert last_output is not None, "a text block before any command"
                assert last_output.strip() == body.strip(), f"expected:\n{body}\ngot:\n{last_output}"
                last_output = None
    finally:
        pid_file = directory / "gateway.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
