"""docs/request-validation.md's walkthrough, run as written: each ``sh`` block in order in one
directory, each ``yaml file=NAME`` block written to NAME, each ``text`` block the expected output
of the ``sh`` block before it. Ports 8080 and 9901 become free ones."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway.conftest import free_port

DOC = Path(__file__).resolve().parents[2] / "docs" / "request-validation.md"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def walkthrough() -> list[tuple[str, str, str]]:
    text = DOC.read_text()
    section = text.split("## A walkthrough", 1)[1].split("\n## ", 1)[0]
    return [(m.group(1), m.group(2).strip(), m.group(3)) for m in BLOCK.finditer(section)]


def test_the_walkthrough_has_every_kind_of_block() -> None:
    kinds = [kind for kind, _, _ in walkthrough()]
    assert kinds.count("sh") >= 6
    assert kinds.count("text") >= 5
    assert ("yaml", "file=pets.yaml") in [(k, a) for k, a, _ in walkthrough()]


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_validation_walkthrough_runs_as_written(tmp_path: Path) -> None:
    port, admin = str(free_port()), str(free_port())
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    if env.get("PYTHONPATH"):  # the commands run in another directory: keep this run's sources
        env["PYTHONPATH"] = os.pathsep.join(
            str(Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep)
        )
    last_output: str | None = None
    try:
        for kind, args, written in walkthrough():
            body = written.replace("8080", port).replace("9901", admin)
            if kind == "yaml":
                (tmp_path / args.removeprefix("file=")).write_text(body)
            elif kind == "sh":
                done = subprocess.run(
                    ["bash", "-c", body],
                    cwd=tmp_path,
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
        pid_file = tmp_path / "gateway.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
