"""The throttle package sits below the configuration: nothing in it imports ``iamgate.config``
(counting imports made inside functions), and importing all of it loads no configuration module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import iamgate.throttle

PACKAGE = Path(iamgate.throttle.__file__).parent


def _imported(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return out


def test_the_throttle_package_imports_nothing_from_the_configuration() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 5
    offenders = [
        f"{path.name}:{line}: imports {name}"
        for path in files
        for line, name in _imported(path)
        if name == "iamgate.config" or name.startswith("iamgate.config.")
    ]
    assert offenders == []


def test_importing_the_throttle_package_loads_no_configuration_module() -> None:
    names = sorted(f"iamgate.throttle.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    code = (
        f"import importlib, sys\nfor name in {names!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('iamgate.config')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "iamgate.throttle.settings" in names
    assert result.stdout.strip() == "[]"
