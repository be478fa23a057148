"""The package's layers, read from its imports (every import, those inside functions included):
no module imports another module's private name, and the bottom layers (routing/, clock.py)
import nothing from above them. The policy engine's own rule is in tests/policy/test_purity.py."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import iamgate

SRC = Path(iamgate.__file__).parent.parent

# Known exemptions (importer, what it reaches), each to be removed when it is fixed:
KNOWN: frozenset[tuple[str, str]] = frozenset(
    {
        # public names of another package's private module (the JSON and YAML readers with
        # positions): to be exported by their package or made public modules
        ("iamgate.cases", "the private module iamgate.policy._json"),
        ("iamgate.cli.redact", "the private module iamgate.config._yaml"),
        ("iamgate.management.openapi.document", "the private module iamgate.config._yaml"),
        ("iamgate.management.openapi.read", "the private module iamgate.config._yaml"),
    }
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / "iamgate").rglob("*.py"))}


def _exists(name: str) -> bool:
    """Whether ``name`` (iamgate.x.y) is a module or package of the source tree."""
    base = SRC.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _imports(name: str, path: Path) -> Iterator[tuple[int, str, str | None]]:
    """(line, absolute module, imported name or None) for every import of ``path``."""
    package = name if _is_package(path) else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                module = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                yield node.lineno, module, alias.name


def _inside(importer: str, package: str) -> bool:
    return importer == package or importer.startswith(package + ".")


def _private_use(importer: str, module: str, name: str | None) -> str | None:
    """What private thing an import reaches outside its package, or None.

    A private module (``config/_yaml.py``) may be imported, and its names used, by the modules of
    its own package; a private name of a module (``stages._time_cache``) by nobody else."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if _private(part) and not _inside(importer, ".".join(parts[:i])):
            return f"the private module {'.'.join(parts[: i + 1])}"
    if name is None or not _private(name):
        return None
    if _exists(f"{module}.{name}"):  # from package import _module
        return None if _inside(importer, module) else f"the private module {module}.{name}"
    return f"the private name {module}.{name}"


def test_the_reader_sees_private_names_and_modules() -> None:
    assert _private_use("iamgate.observe.accesslog", "iamgate.pipeline.stages", "_time_cache") == (
        "the private name iamgate.pipeline.stages._time_cache"
    )
    assert _private_use("iamgate.config.load", "iamgate.config._yaml", "load_yaml") is None
    assert _private_use("iamgate.config.load", "iamgate.config", "_yaml") is None
    assert _private_use("iamgate.management.app", "iamgate.config._yaml", "load_yaml") == (
        "the private module iamgate.config._yaml"
    )
    assert _private_use("iamgate.cli.serve", "iamgate._compiled", "state") is None
    assert _private_use("iamgate.x", "__future__", "annotations") is None
    lazy = dict(_modules())
    assert any(
        line > 0 and module == "iamgate.config.load"
        for line, module, _ in _imports("iamgate.management.invoke", lazy["iamgate.management.invoke"])
    ), "imports inside functions are read too"


def test_no_module_imports_another_modules_private_name() -> None:
    offenders = []
    for name, path in _modules().items():
        for line, module, imported in _imports(name, path):
            if not module.startswith("iamgate"):
                continue
            what = _private_use(name, module, imported)
            if what is not None and (name, what) not in KNOWN:
                offenders.append(f"{path.relative_to(SRC)}:{line}: imports {what}")
    assert offenders == []


def _outside(prefix: str, allowed: tuple[str, ...]) -> list[str]:
    """The imports of the modules under ``prefix`` that are neither the standard library nor
    one of ``allowed`` (iamgate packages or modules)."""
    offenders = []
    for name, path in _modules().items():
        if not _inside(name, prefix):
            continue
        for line, module, _ in _imports(name, path):
            top = module.split(".")[0]
            if top == "__future__" or top in sys.stdlib_module_names:
                continue
            if not any(_inside(module, a) for a in allowed):
                offenders.append(f"{path.relative_to(SRC)}:{line}: imports {module}")
    return offenders


def test_routing_imports_nothing_from_above_it() -> None:
    # below config/ and pipeline/ (both import it): the standard library and itself only
    assert _outside("iamgate.routing", ("iamgate.routing",)) == []


def test_the_clock_imports_nothing_of_iamgate() -> None:
    assert _outside("iamgate.clock", ()) == []


# The request path's layers, bottom first: a module may import its own package and the layers
# below its own, never one above (docs/architecture.md, "Layout"). The access log reads an
# exchange (above the pipeline); the metrics are below it (the pipeline's services hold them).
LAYERS: dict[str, int] = {
    "iamgate.policy": 0,
    "iamgate.clock": 0,
    "iamgate.routing": 1,
    "iamgate.upstream": 1,
    "iamgate.throttle": 1,
    "iamgate.observe.metrics": 1,
    "iamgate.auth": 2,
    "iamgate.config": 3,
    "iamgate.pipeline": 4,
    "iamgate.integrations": 5,
    "iamgate.observe.accesslog": 5,
    "iamgate.serving": 6,
}


def _layer(module: str) -> tuple[str, int] | None:
    found = [(prefix, rank) for prefix, rank in LAYERS.items() if _inside(module, prefix)]
    return max(found, key=lambda f: len(f[0])) if found else None


def test_no_arrow_runs_up_a_layer_of_the_request_path() -> None:
    offenders = []
    for name, path in _modules().items():
        mine = _layer(name)
        if mine is None:
            continue
        for line, module, imported in _imports(name, path):
            target = (
                module if imported is None or not _exists(f"{module}.{imported}") else f"{module}.{imported}"
            )
            theirs = _layer(target)
            if theirs is None or theirs[0] == mine[0]:
                continue
            if theirs[1] >= mine[1]:
                offenders.append(
                    f"{path.relative_to(SRC)}:{line}: {mine[0]} imports {target} (layer {theirs[1]})"
                )
    assert offenders == []


def test_the_layer_check_sees_an_arrow_up() -> None:
    assert _layer("iamgate.pipeline.exchange") == ("iamgate.pipeline", 4)
    assert _layer("iamgate.observe.accesslog") == ("iamgate.observe.accesslog", 5)
    assert _layer("iamgate.management.app") is None
    assert _layer("iamgate.serving.state")[1] > _layer("iamgate.pipeline.services")[1]  # type: ignore[index]
