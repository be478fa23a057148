"""Build step: compile the request path with mypyc (docs/architecture.md, "The compiled request path").

Project metadata lives in pyproject.toml; this file only adds the C extensions. mypyc turns the
typed modules listed in src/iamgate/_compiled.py into C extensions (about 40 % fewer instructions
per proxied request: docs/benchmarks.md). ``IAMGATE_COMPILE=0`` installs the pure-Python
package instead (no C compiler needed); the running gateway says which one it uses.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType

from setuptools import setup

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"


def compiled_module() -> ModuleType:
    """src/iamgate/_compiled.py alone (it imports only the standard library): its MODULES list
    and digest() are what the running package checks the build against. Importing the iamgate
    package is not possible here: its dependencies are not installed at build time."""
    spec = importlib.util.spec_from_file_location("iamgate_compiled", SRC / "iamgate" / "_compiled.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ext_modules() -> list[object]:
    compiled = compiled_module()
    record = SRC / "iamgate" / compiled.RECORD
    record.unlink(missing_ok=True)
    if os.environ.get("IAMGATE_COMPILE", "1") == "0":
        return []
    # Imported here: a pure-Python build (IAMGATE_COMPILE=0) must not need mypyc.
    from mypyc.build import mypycify  # noqa: PLC0415

    modules = compiled.MODULES
    digests = {m: compiled.digest(SRC / m) for m in modules}
    extensions = mypycify([f"src/{m}" for m in modules], opt_level="3", group_name="iamgate")
    record.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    return extensions


setup(ext_modules=ext_modules())
