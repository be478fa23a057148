"""YAML with positions: plain data plus a map from JSON pointer to (line, column).

PyYAML's composer keeps a mark on every node but its constructor forgets them and silently keeps
the last of two equal keys; here the node tree is walked directly so every value keeps its place
and duplicate keys are diagnostics. Only the YAML core types are produced (mappings, sequences,
strings, ints, floats, booleans, null); tags and anchors work as PyYAML resolves them.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from iamgate.policy.diagnostics import Diagnostic, Location, Severity, pointer_join

__all__ = ["Positions", "YamlDocument", "load_yaml"]

# the C loader when PyYAML was built with libyaml
_Loader: type[yaml.SafeLoader | yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_DEPTH = 64
MAX_NODES = 200_000  # aliases can repeat a subtree; this bounds "billion laughs" documents


class Positions(dict[str, tuple[int, int]]):
    """JSON pointer -> (line, column) of the value, both 1-based; ``key_marks`` holds where each
    mapping key itself is written (a diagnostic about a key points at the key, not its value)."""

    def __init__(self) -> None:
        super().__init__()
        self.key_marks: dict[str, tuple[int, int]] = {}

    def key_location(self, pointer: str) -> Location:
        """Where the key of ``pointer`` is written (else where its value is)."""
        found = self.key_marks.get(pointer)
        if found is None:
            return self.location(pointer)
        return Location(pointer, *found)

    def location(self, pointer: str) -> Location:
        probe = pointer
        while True:
            if probe in self:
                line, column = self[probe]
                return Location(pointer, line, column)
            if not probe:
                return Location(pointer)
            probe = probe.rsplit("/", 1)[0]


@dataclass(frozen=True, slots=True)
class YamlDocument:
    data: object
    positions: Positions
    diagnostics: tuple[Diagnostic, ...]


def _error(code: str, message: str, line: int | None, column: int | None, pointer: str = "") -> Diagnostic:
    return Diagnostic(f"config.yaml.{code}", Severity.ERROR, message, Location(pointer, line, column))


def load_yaml(text: str) -> YamlDocument:
    """Parse one YAML document. Syntax errors and duplicate keys are diagnostics."""
    positions = Positions()
    diags: list[Diagnostic] = []
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        return YamlDocument(None, positions, (_error("syntax", f"invalid YAML: {message}", line, column),))
    except yaml.YAMLError as exc:
        return YamlDocument(None, positions, (_error("syntax", f"invalid YAML: {exc}", None, None),))
    if node is None:
        return YamlDocument(None, positions, ())
    constructor = yaml.SafeLoader("")
    budget = [MAX_NODES]

    class _TooLarge(Exception):
        pass

    def convert(n: yaml.Node, pointer: str, depth: int) -> object:
        positions[pointer] = (n.start_mark.line + 1, n.start_mark.column + 1)
        budget[0] -= 1
        if budget[0] < 0:
            raise _TooLarge
        if depth > MAX_DEPTH:
            diags.append(
                _error(
                    "too-deep",
                    f"nesting deeper than {MAX_DEPTH} levels",
                    n.start_mark.line + 1,
                    n.start_mark.column + 1,
                    pointer,
                )
            )
            return None
        if isinstance(n, yaml.MappingNode):
            constructor.flatten_mapping(n)
            out: dict[object, object] = {}
            for key_node, value_node in n.value:
                key = constructor.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    key = str(key) if isinstance(key, int | float | bool) or key is None else repr(key)
                child = pointer_join(pointer, key)
                if key not in out:
                    positions.key_marks[child] = (
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                    )
                if key in out:
                    diags.append(
                        _error(
                            "duplicate-key",
                            f"duplicate key '{key}' (first at line {positions[child][0]})",
                            key_node.start_mark.line + 1,
                            key_node.start_mark.column + 1,
                            child,
                        )
                    )
                    continue
                out[key] = convert(value_node, child, depth + 1)
            return out
        if isinstance(n, yaml.SequenceNode):
            return [convert(item, pointer_join(pointer, i), depth + 1) for i, item in enumerate(n.value)]
        try:
            return constructor.construct_object(n, deep=True)
        except yaml.YAMLError as exc:
            diags.append(
                _error(
                    "value", f"invalid value: {exc}", n.start_mark.line + 1, n.start_mark.column + 1, pointer
                )
            )
            return None

    try:
        data = convert(node, "", 0)
    except _TooLarge:
        message = f"the document expands to more than {MAX_NODES:,} values (aliases repeating aliases?)"
        return YamlDocument(None, Positions(), (_error("too-large", message, None, None),))
    return YamlDocument(data, positions, tuple(diags))
