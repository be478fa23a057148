"""The policy engine is a pure library: standard library only, nothing from the rest of iamgate."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import iamgate.policy

ENGINE = Path(iamgate.policy.__file__).parent


def _imports(path: Path) -> list[tuple[int, str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            out.append((node.lineno, node.module or "", node.level))
    return out


def test_engine_imports_only_stdlib_and_itself() -> None:
    offenders = []
    files = sorted(ENGINE.rglob("*.py"))
    assert len(files) > 10
    for path in files:
        for line, module, level in _imports(path):
            if level == 1:
                continue  # from .x import y: inside the engine
            if level > 1:
                offenders.append(f"{path.name}:{line}: relative import leaves the engine")
                continue
            top = module.split(".")[0]
            if top == "__future__" or top in sys.stdlib_module_names:
                continue
            offenders.append(f"{path.name}:{line}: imports {module}")
    assert offenders == []
