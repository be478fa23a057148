"""Every diagnostic code the docs quote is one the code can emit (issue 14, item 13b).

The codes are gathered from the sources without running them (read with :mod:`ast`):

* a string literal that is a whole code (``"config.store"``, ``"policy.read.too-large"``);
* an *emitter*: a function whose parameter fills the end of a code f-string
  (``Diagnostic(f"policy.parse.{code}", ...)``), or one that hands that parameter on to an
  emitter (``warn(code, ...)`` calling ``self.report(code, ...)``); every call of it with a string
  literal in that place, in its own module or a module that imports the emitter's class or
  function, is a code;
* a comprehension that fills such an f-string from a tuple of literals (``LINT_CODES``).

A doc token is a code when it looks like one (``policy.<stage>.<name>`` or ``config[.yaml].<name>``)
and is not a module (``policy.parse``) or a file name (``policy.json``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "iamgate"
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]

NAMESPACES = "(?:policy|config|cases)"
CODE = re.compile(rf"{NAMESPACES}(?:\.[a-z0-9]+(?:-[a-z0-9]+)*)+")
# a code in prose: not part of a longer dotted name, a path or a call
IN_DOCS = re.compile(rf"(?<![\w./-]){CODE.pattern}(?![\w(/-]|\.\w)")
PREFIX = re.compile(rf"{NAMESPACES}(?:\.[a-z0-9-]+)*\.")
STAGES = {"policy.read", "policy.parse", "policy.validate", "policy.lint", "policy.compile", "config.yaml"}
FILE_SUFFIXES = {"json", "jsonl", "yaml", "yml", "md", "py", "dict", "db", "txt"}


@dataclass(frozen=True)
class Emitter:
    module: str  # dotted module name
    owner: str  # the class or function a caller imports to use it
    name: str  # the function or method name
    position: int  # index of the code among the call's positional arguments
    keyword: str
    prefix: str


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        yield ".".join(rel.parts), ast.parse(path.read_text(encoding="utf-8"), str(path))


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef]]:
    """(owner, function): owner is the class of a method, else the function itself."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    yield node.name, item


def _prefix_of(node: ast.JoinedStr) -> tuple[str, str] | None:
    """``f"policy.parse.{name}"`` -> ("policy.parse.", "name")."""
    if len(node.values) != 2:
        return None
    head, tail = node.values
    if not (isinstance(head, ast.Constant) and isinstance(head.value, str)):
        return None
    if not (isinstance(tail, ast.FormattedValue) and isinstance(tail.value, ast.Name)):
        return None
    if not PREFIX.fullmatch(head.value):
        return None
    return head.value, tail.value.id


def _callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if position < len(call.args):
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def _parameters(fn: ast.FunctionDef) -> list[str]:
    names = [a.arg for a in fn.args.posonlyargs + fn.args.args]
    return names[1:] if names and names[0] in ("self", "cls") else names


def collect_codes() -> set[str]:
    modules = dict(_modules())
    codes: set[str] = set()
    emitters: set[Emitter] = set()
    for module, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.fullmatch(node.value):
                codes.add(node.value)
            if isinstance(node, ast.GeneratorExp | ast.ListComp | ast.SetComp) and isinstance(
                node.elt, ast.JoinedStr
            ):
                found = _prefix_of(node.elt)
                for gen in node.generators:
                    named = isinstance(gen.target, ast.Name) and found and gen.target.id == found[1]
                    if found and named and isinstance(gen.iter, ast.Tuple | ast.List):
                        codes.update(
                            found[0] + e.value
                            for e in gen.iter.elts
                            if isinstance(e, ast.Constant) and isinstance(e.value, str)
                        )
        for owner, fn in _functions(tree):
            params = _parameters(fn)
            for node in ast.walk(fn):
                if isinstance(node, ast.JoinedStr) and (found := _prefix_of(node)) and found[1] in params:
                    emitters.add(Emitter(module, owner, fn.name, params.index(found[1]), found[1], found[0]))
    # functions that hand their parameter on to an emitter emit the same codes
    grown = True
    while grown:
        grown = False
        for module, tree in modules.items():
            for owner, fn in _functions(tree):
                params = _parameters(fn)
                for call in (n for n in ast.walk(fn) if isinstance(n, ast.Call)):
                    for e in [e for e in emitters if e.module == module and e.name == _callee(call)]:
                        arg = _argument(call, e.position, e.keyword)
                        if isinstance(arg, ast.Name) and arg.id in params:
                            new = Emitter(module, owner, fn.name, params.index(arg.id), arg.id, e.prefix)
                            if new not in emitters:
                                emitters.add(new)
                                grown = True
    for module, tree in modules.items():
        imported = {
            (node.module, alias.name)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
            for alias in node.names
        }
        visible = [e for e in emitters if e.module == module or (e.module, e.owner) in imported]
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            for e in visible:
                if e.name != _callee(call):
                    continue
                arg = _argument(call, e.position, e.keyword)
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    codes.add(e.prefix + arg.value)
    return codes


def _is_module(token: str) -> bool:
    path = SRC.joinpath(*token.split("."))
    return path.with_suffix(".py").exists() or path.is_dir()


def doc_codes() -> list[tuple[str, int, str]]:
    """(file, line, code) of every code quoted in the docs."""
    out = []
    for path in DOCS:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for token in IN_DOCS.findall(line):
                if token in STAGES or _is_module(token) or token.rsplit(".", 1)[1] in FILE_SUFFIXES:
                    continue
                out.append((path.relative_to(ROOT).as_posix(), n, token))
    return out


CODES = collect_codes()


def test_the_collector_finds_codes_of_every_kind() -> None:
    # one of each way a code is written, so that a collector gone blind fails here first
    for code in (
        "policy.read.too-large",  # a whole literal
        "policy.read.duplicate-key",  # _err("duplicate-key", ...) in _json.py
        "policy.parse.invalid-effect",  # self.error(...) in parse.py
        "policy.validate.unknown-action",  # a validator method
        "policy.lint.public-allow",  # LINT_CODES
        "config.unknown-key",  # Reader.report in _reader.py
        "config.missing-secret",  # r.report(...) in auth.py, which imports Reader
        "config.no-apis",  # r.warn(...): warn hands its code on to report
        "config.yaml.duplicate-key",  # _error(...) in _yaml.py
        "config.store",
    ):
        assert code in CODES, code
    assert "policy.validate.invalid-effect" not in CODES


def test_the_docs_are_read() -> None:
    quoted = {code for _, _, code in doc_codes()}
    assert {"policy.parse.invalid-effect", "config.yaml.syntax", "policy.lint.public-allow"} <= quoted


def test_every_code_in_the_docs_exists() -> None:
    unknown = [f"{doc}:{line}: {code}" for doc, line, code in doc_codes() if code not in CODES]
    assert unknown == [], "the docs quote codes that no source emits"
