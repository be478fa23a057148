"""The mypyc-compiled request path: used only when built from the sources on disk."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import iamgate.serving.connection
from iamgate import _compiled
from tests.gateway.conftest import IAMGATE, ROOT_DIR, start_gateway

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def test_the_installed_gateway_runs_the_compiled_request_path() -> None:
    # CI installs as the README does (pip install -e .), which compiles: a build that silently
    # fell back to pure Python, or an install whose record does not match, fails here.
    if not _compiled.state().startswith("compiled"):
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the compiled request path, not: {_compiled.state()}")
        pytest.skip(f"this checkout runs {_compiled.state()}")
    assert iamgate.serving.connection.__file__ is not None
    assert iamgate.serving.connection.__file__.endswith(SUFFIX)
    assert _compiled.state() == f"compiled (mypyc, {len(_compiled.MODULES)} modules)"


def _fake_build(root: Path, record: bool = True) -> None:
    """A source tree with an 'extension' beside every listed module and the build's record."""
    digests = {}
    for relative in _compiled.MODULES:
        source = root / relative
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(f"# {relative}\n")
        source.with_name(source.stem + SUFFIX).write_bytes(b"")
        digests[relative] = _compiled.digest(source)
    if record:
        (root / "iamgate" / _compiled.RECORD).write_text(json.dumps(digests))


def test_extensions_built_from_these_sources_are_used(tmp_path: Path) -> None:
    _fake_build(tmp_path)
    assert _compiled._stale(tmp_path) is None


def test_an_edited_source_makes_every_extension_stale(tmp_path: Path) -> None:
    _fake_build(tmp_path)
    (tmp_path / "iamgate" / "pipeline" / "stages.py").write_text("# edited after the build\n")
    assert _compiled._stale(tmp_path) == (
        "iamgate/pipeline/stages.py differs from the source it was compiled from"
    )


def test_extensions_without_the_build_record_are_not_used(tmp_path: Path) -> None:
    _fake_build(tmp_path, record=False)
    assert _compiled._stale(tmp_path) == f"{_compiled.RECORD} is missing or unreadable"
    (tmp_path / "iamgate" / _compiled.RECORD).write_text("{not json")
    assert _compiled._stale(tmp_path) == f"{_compiled.RECORD} is missing or unreadable"


def test_an_installation_without_sources_trusts_its_extensions(tmp_path: Path) -> None:
    _fake_build(tmp_path)
    for relative in _compiled.MODULES:
        (tmp_path / relative).unlink()
    assert _compiled._stale(tmp_path) is None


def test_pure_python_switch_loads_every_listed_module_from_its_source() -> None:
    code = (
        "import importlib, json, iamgate._compiled as c\n"
        "files = {m: importlib.import_module(c.module_name(m)).__file__ for m in c.MODULES}\n"
        "print(json.dumps([c.state(), files]))\n"
    )
    env = {**os.environ, _compiled.PURE_ENV: "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    state, files = json.loads(out)
    for relative, path in files.items():
        assert path.endswith(relative), (relative, path)
    if _compiled.state().startswith("compiled"):
        assert state == ("pure Python (IAMGATE_PURE_PYTHON is set; the compiled modules are not used)")


def test_the_gateway_serves_the_same_answers_from_the_sources(tmp_path: Path) -> None:
    text = (ROOT_DIR / "examples" / "quickstart.yaml").read_text()
    gw = start_gateway(tmp_path, text, env={_compiled.PURE_ENV: "1"})
    try:
        status, _, _ = gw.request("GET", "/prod/pets")
        assert status == 200
        status, headers, body = gw.request("GET", "/prod/admin")
        assert (status, headers["x-amzn-errortype"]) == (403, "AccessDeniedException")
        assert json.loads(body)["Message"].endswith("with an explicit deny")
    finally:
        gw.stop()
    assert "request path: pure Python" in gw.stderr()
    version = subprocess.run(
        [IAMGATE, "--version"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, _compiled.PURE_ENV: "1"},
    )
    assert "(request path: pure Python" in version.stdout, version.stderr


def test_module_constants_of_the_compiled_path_are_final() -> None:
    """Compiled, a module-level name is looked up in the module's dictionary on every use unless
    it is ``Final`` (then it is a C static): upper-case constants and the memo tables the request
    path reads must be declared ``Final``. Type aliases and type variables are exempt."""
    import ast

    src = ROOT_DIR / "src"
    missing = []
    for relative in _compiled.MODULES:
        tree = ast.parse((src / relative).read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign):
                targets = [
                    name
                    for target in node.targets
                    for name in (target.elts if isinstance(target, ast.Tuple) else [target])
                ]
                value = ast.unparse(node.value)
                if value.startswith(("TypeVar(", "tuple[", "Callable[")) or " | " in value:
                    continue  # a type variable or a type alias
                for name in targets:
                    if isinstance(name, ast.Name) and name.id.lstrip("_")[:1].isupper():
                        missing.append(f"{relative}:{node.lineno} {name.id}")
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                annotation = ast.unparse(node.annotation)
                if not annotation.startswith(("Final", "TypeAlias")) and node.value is not None:
                    missing.append(f"{relative}:{node.lineno} {node.target.id}: {annotation}")
    assert not missing, "not Final: " + ", ".join(missing)
