"""docs/gateway-responses.md's walkthrough, run as written (tests/docs/walkthrough.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.docs.walkthrough import blocks, run_walkthrough


def test_the_walkthrough_shows_its_outputs() -> None:
    kinds = [kind for kind, _, _ in blocks("gateway-responses.md")]
    assert kinds.count("text") >= 3


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_gateway_responses_walkthrough_runs_as_written(tmp_path: Path) -> None:
    run_walkthrough("gateway-responses.md", tmp_path)
