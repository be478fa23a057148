"""The management modules import one another one way: no cycle, counting the imports made inside
functions too (a cycle hidden in a lazy import still ties two modules together), and each of the
modules that used to form one imports first in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import iamgate.management

PACKAGE = Path(iamgate.management.__file__).parent
PREFIX = "iamgate.management"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """Module -> the management modules it imports (anywhere in its code)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
                # ``from iamgate.management import access`` imports the submodule ``access``
                subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
                deps |= subs or {node.module}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith(PREFIX)}
        deps.discard(name)
        graph[name] = deps & modules.keys()
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules in order, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)) is not None:
                return found
        path.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name)) is not None:
            return found
    return None


def test_the_graph_sees_the_modules_and_their_imports() -> None:
    graph = _graph()
    assert "iamgate.management.shapes" in graph["iamgate.management.methods"]
    assert "iamgate.management.methods" in graph["iamgate.management.integrations"]
    assert "iamgate.management.access" in graph["iamgate.management.openapi.apply"]  # from-package form
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_among_management_modules() -> None:
    assert _cycle(_graph()) is None


def test_methods_and_integrations_do_not_import_each_other() -> None:
    graph = _graph()
    methods, integrations = "iamgate.management.methods", "iamgate.management.integrations"
    assert not (methods in graph[integrations] and integrations in graph[methods])
    assert integrations not in graph[methods]


def test_each_module_imports_first_in_a_fresh_interpreter() -> None:
    names = [
        "methods",
        "integrations",
        "shapes",
        "resources",
        "openapi",
        "openapi.read",
        "openapi.apply",
        "openapi.export",
        "openapi.security",
        "openapi.operations",
        "openapi.document",
        "invoke",
    ]
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", f"import {PREFIX}.{name}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in names
    }
    failed = {}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=60)
        if proc.returncode != 0:
            failed[name] = err.decode(errors="replace")[-400:]
    assert failed == {}
