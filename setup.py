"""Build step: compile the request path with mypyc (docs/architecture.md, "The compiled request path").

Project metadata lives in pyproject.toml; this file only adds the C extensions. mypyc turns the
typed modules listed in src/iamgate/_compiled.py into C extensions (about 40 % fewer instructions
per proxied request: docs/benchmarks.md). ``IAMGATE_COMPILE=0`` installs the pure-Python
package instead (no C compiler needed); the running gateway says which one it uses.

The C code is written one file per module (``multi_file``) and the files are compiled in
parallel, one compiler per core (:class:`ParallelBuildExt`): one 17 MB file compiled by one
compiler took most of an install (docs/benchmarks.md, "Install time").
"""

from __future__ import annotations

import importlib.util
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

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
    extensions = mypycify([f"src/{m}" for m in modules], opt_level="3", group_name="iamgate", multi_file=True)
    record.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    return extensions


class ParallelBuildExt(build_ext):
    """build_ext compiling an extension's C files concurrently.

    setuptools compiles the files of one extension one after the other (its ``--parallel``
    runs whole extensions side by side, and mypyc's code is one extension of many files). This
    runs the compiler's own per-file step (the same command line it would run) on a thread per
    core. Written by hand: neither setuptools nor mypyc offers it."""

    def build_extension(self, ext: Any) -> None:
        compiler = self.compiler
        serial = compiler.compile
        workers = os.cpu_count() or 1

        def compile_all(
            sources: list[str],
            output_dir: str | None = None,
            macros: Any = None,
            include_dirs: Any = None,
            debug: bool = False,
            extra_preargs: Any = None,
            extra_postargs: Any = None,
            depends: Any = None,
        ) -> list[str]:
            if len(sources) < 2 or workers < 2:
                return serial(
                    sources, output_dir, macros, include_dirs, debug, extra_preargs, extra_postargs, depends
                )
            with ThreadPoolExecutor(workers) as pool:
                parts = pool.map(
                    lambda source: serial(
                        [source],
                        output_dir,
                        macros,
                        include_dirs,
                        debug,
                        extra_preargs,
                        extra_postargs,
                        depends,
                    ),
                    sources,
                )
                return [obj for objects in parts for obj in objects]

        compiler.compile = compile_all
        try:
            super().build_extension(ext)
        finally:
            compiler.compile = serial


setup(ext_modules=ext_modules(), cmdclass={"build_ext": ParallelBuildExt})
