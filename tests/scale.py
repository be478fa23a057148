"""The scale benchmark's configuration generator (bench/scale_config.py), for the tests: the
tests and the figures in docs/benchmarks.md use the same configuration. Loaded by path, as
bench/ is not a package."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

__all__ = ["SCALE"]


def _load() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "bench" / "scale_config.py"
    spec = importlib.util.spec_from_file_location("scale_config", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCALE = _load()
