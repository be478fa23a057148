"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The decision cases the engine is tested against (tests/conformance/README.md): the corpus of
# cases/ and our own vectors/, all kept in the repository.
CONFORMANCE = ROOT / "tests" / "conformance"
CORPUS_FILES = sorted((CONFORMANCE / "cases").glob("*.jsonl"))
VECTOR_FILES = sorted((CONFORMANCE / "vectors").glob("*.jsonl"))
