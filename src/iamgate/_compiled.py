"""The compiled request path: which modules mypyc compiles, and whether they are in use.

``setup.py`` compiles the modules in :data:`MODULES` with mypyc (C extensions built from these
same typed sources) and records the SHA-256 of each source it compiled in
``_compiled_sources.json`` beside them. At import, :func:`install` compares those digests with
the sources next to the extensions: when any differs (a source edited after
``pip install -e .``, a checkout of another commit) or ``IAMGATE_PURE_PYTHON=1`` is set, a
finder loads every module of the set from its ``.py`` source instead, so the running code is
always the code on disk, compiled or not, never a mixture. :func:`state` says which one runs.

Written by hand because the import system offers no "prefer the source" switch; the finder is
the standard ``importlib`` extension point. Nothing here imports the rest of the package.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["MODULES", "RECORD", "install", "state"]

# The per-request path: the clocks, the client connection and its state, the integrations, the
# upstream protocols, the pipeline stages, the access log, the console's decision log and the
# metrics, the snapshot lookups, the throttle backends, SigV4 verification, the identities and
# the combination tables (every signed request), the memo and the policy evaluator (its
# decision memo is on every request; it still imports nothing from the rest). Paths relative
# to src/.
MODULES = (
    "iamgate/clock.py",
    "iamgate/serving/state.py",
    "iamgate/serving/connection.py",
    "iamgate/integrations/proxy.py",
    "iamgate/integrations/mock.py",
    "iamgate/upstream/pool.py",
    "iamgate/upstream/headers.py",
    "iamgate/upstream/fetch.py",
    "iamgate/pipeline/auth_stages.py",
    "iamgate/pipeline/chain.py",
    "iamgate/pipeline/exchange.py",
    "iamgate/pipeline/later.py",
    "iamgate/pipeline/runner.py",
    "iamgate/pipeline/services.py",
    "iamgate/pipeline/mapping.py",
    "iamgate/routing/paths.py",
    "iamgate/pipeline/responses.py",
    "iamgate/routing/tree.py",
    "iamgate/pipeline/stages.py",
    "iamgate/pipeline/throttle_stage.py",
    "iamgate/pipeline/validate.py",
    "iamgate/observe/accesslog.py",
    "iamgate/observe/decisions.py",
    "iamgate/observe/metrics.py",
    "iamgate/config/snapshot.py",
    "iamgate/config/model.py",
    "iamgate/throttle/backend.py",
    "iamgate/throttle/memory.py",
    "iamgate/throttle/redis.py",
    "iamgate/throttle/redis_client.py",
    "iamgate/throttle/resp.py",
    "iamgate/auth/sigv4.py",
    "iamgate/auth/sigv4_canonical.py",
    "iamgate/auth/combine.py",
    "iamgate/auth/identities.py",
    "iamgate/policy/memo.py",
    "iamgate/policy/evaluate.py",
    "iamgate/policy/decision.py",
)
RECORD = "_compiled_sources.json"
PURE_ENV = "IAMGATE_PURE_PYTHON"

_STATE = {"now": "pure Python (not compiled)"}  # what install() chose for this process


def module_name(relative: str) -> str:
    return relative.removesuffix(".py").replace("/", ".")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _compiled_file(source: Path) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = source.with_name(source.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def _stale(root: Path) -> str | None:
    """Why the compiled modules under ``root`` (the directory holding ``iamgate``) cannot be used."""
    try:
        recorded = json.loads((root / "iamgate" / RECORD).read_text())
    except (OSError, ValueError):
        return f"{RECORD} is missing or unreadable"
    for relative in MODULES:
        source = root / relative
        if not source.is_file():
            continue  # an installation without sources: the extensions are all there is
        if recorded.get(relative) != digest(source):
            return f"{relative} differs from the source it was compiled from"
    return None


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Finds the listed modules' ``.py`` sources ahead of their compiled extensions."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        leaf = fullname.rpartition(".")[2] + ".py"
        for entry in path or sys.path:
            candidate = Path(entry) / leaf
            if candidate.is_file():
                return importlib.util.spec_from_file_location(fullname, candidate)
        return None


def install() -> None:
    """Choose compiled or source modules for this process (called once, by ``iamgate``)."""
    root = Path(__file__).resolve().parent.parent
    compiled = [relative for relative in MODULES if _compiled_file(root / relative) is not None]
    if not compiled:
        _STATE["now"] = "pure Python (not compiled)"
        return
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        reason = f"{PURE_ENV} is set"
    elif len(compiled) != len(MODULES):
        reason = f"only {len(compiled)} of the {len(MODULES)} modules are compiled"
    else:
        reason = _stale(root) or ""
        if not reason:
            _STATE["now"] = f"compiled (mypyc, {len(compiled)} modules)"
            return
    if not any(isinstance(f, _SourceFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFinder(frozenset(module_name(m) for m in MODULES)))
    _STATE["now"] = f"pure Python ({reason}; the compiled modules are not used)"


def state() -> str:
    """Which request path runs: compiled, or pure Python and why."""
    return _STATE["now"]
