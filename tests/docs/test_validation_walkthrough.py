"""docs/request-validation.md's walkthrough, run as written (tests/docs/walkthrough.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.docs.walkthrough import blocks, run_walkthrough


def test_the_walkthrough_has_every_kind_of_block() -> None:
    found = blocks("request-validation.md")
    kinds = [kind for kind, _, _ in found]
    assert kinds.count("sh") >= 6
    assert kinds.count("text") >= 5
    assert ("yaml", "file=pets.yaml") in [(k, a) for k, a, _ in found]


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_validation_walkthrough_runs_as_written(tmp_path: Path) -> None:
    run_walkthrough("request-validation.md", tmp_path)
