"""Build step: compile the request path with mypyc (docs/architecture.md, "Compiled request path").

Project metadata lives in pyproject.toml; this file only adds the C extensions. mypyc turns the
typed modules listed in src/iamgate/_compiled.py into C extensions (about 40 % fewer instructions
per proxied request: docs/benchmarks.md). ``IAMGATE_COMPILE=0`` installs the pure-Python
package instead (no C compiler needed); the running gateway says which one it uses.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"


def listed_modules() -> list[str]:
    # Read MODULES without importing iamgate (its dependencies are not installed at build time).
    tree = ast.parse((SRC / "iamgate" / "_compiled.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "MODULES" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise RuntimeError("src/iamgate/_compiled.py defines no MODULES")


def ext_modules() -> list[object]:
    record = SRC / "iamgate" / "_compiled_sources.json"
    record.unlink(missing_ok=True)
    if os.environ.get("IAMGATE_COMPILE", "1") == "0":
        return []
    # Imported here: a pure-Python build (IAMGATE_COMPILE=0) must not need mypyc.
    from mypyc.build import mypycify  # noqa: PLC0415

    modules = listed_modules()
    digests = {m: hashlib.sha256((SRC / m).read_bytes()).hexdigest() for m in modules}
    extensions = mypycify([f"src/{m}" for m in modules], opt_level="3", group_name="iamgate")
    record.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    return extensions


setup(ext_modules=ext_modules())
