"""docs/console.md's walkthrough, as written: from ``iamgate serve`` to the explanation of a
denial, through the console's own pages (tests/docs/walkthrough.py runs the blocks)."""

from __future__ import annotations

from pathlib import Path

from tests.docs.walkthrough import run_walkthrough


def test_the_walkthrough_from_serve_to_why_it_was_denied(tmp_path: Path) -> None:
    run_walkthrough("console.md", tmp_path, heading="## A walkthrough: why was this request denied?")
