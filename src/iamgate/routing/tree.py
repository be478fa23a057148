"""Routing: which API, which stage, which resource and method (docs/configuration.md).

A resource path is a template of segments: literal (``pets``), a parameter (``{id}``) or a greedy
parameter (``{proxy+}``, last segment only, one or more segments). The most specific *resource*
matching the path wins (literal over parameter over greedy, segment by segment from the left);
then the method is looked up on that resource, exact verb first, then ``ANY``. As on API
Gateway, every prefix of a resource path is itself a resource (``/pets/{id}/toys/{toy}`` brings
``/pets/{id}/toys``), and a resource that lacks the method does not fall back to a less specific
one: the request is unmatched (403 Missing Authentication Token). ``HEAD`` is never served by
``GET``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

__all__ = ["METHODS", "Match", "ResourceTree", "TemplateError", "parse_template"]

METHODS: Final = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
T = TypeVar("T")

_PARAM: Final = re.compile(r"\{([A-Za-z0-9._-]+)(\+?)\}")


class TemplateError(ValueError):
    """A resource path template that cannot be used (the message says why)."""


@dataclass(frozen=True, slots=True)
class Segment:
    kind: str  # "literal" | "param" | "greedy"
    value: str  # the literal text or the parameter name


def parse_template(path: str) -> tuple[Segment, ...]:
    """``/pets/{id}`` -> segments. Raises :class:`TemplateError` with a reason."""
    if not path.startswith("/"):
        raise TemplateError("a resource path starts with '/'")
    parts = [p for p in path.split("/") if p]
    if len(parts) != len(path.strip("/").split("/")) and path != "/":
        raise TemplateError("a resource path has no empty segments ('//')")
    out = []
    names: set[str] = set()
    for i, part in enumerate(parts):
        m = _PARAM.fullmatch(part)
        if m:
            name, greedy = m.group(1), bool(m.group(2))
            if name in names:
                raise TemplateError(f"parameter {{{name}}} appears twice")
            names.add(name)
            if greedy and i != len(parts) - 1:
                raise TemplateError("a greedy parameter {name+} must be the last segment")
            out.append(Segment("greedy" if greedy else "param", name))
        elif "{" in part or "}" in part:
            raise TemplateError(
                f"segment '{part}' mixes text and a parameter; a parameter is a whole segment"
            )
        elif part in (".", ".."):
            raise TemplateError("'.' and '..' are not resource path segments")
        else:
            out.append(Segment("literal", part))
    return tuple(out)


class _Node(Generic[T]):
    """One resource path segment's node in the routing tree."""

    __slots__ = ("greedy", "literals", "methods", "param", "template")

    def __init__(self) -> None:
        self.literals: dict[str, _Node[T]] = {}
        self.param: tuple[str, _Node[T]] | None = None
        self.greedy: tuple[str, _Node[T]] | None = None
        self.template: str | None = None  # set when a resource ends here
        self.methods: dict[str, T] = {}


class Match(Generic[T]):
    """A routing result (a plain class: created on every request, so no frozen dataclass)."""

    __slots__ = ("params", "resource_path", "target")

    def __init__(self, resource_path: str, params: dict[str, str], target: T | None) -> None:
        self.resource_path = resource_path  # the template, e.g. /pets/{id}
        self.params = params
        self.target = target  # None: the resource exists but has neither the method nor ANY


class ResourceTree(Generic[T]):
    """Resources of one API, each with targets per method (or ``ANY``)."""

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()

    def add(self, path: str, method: str, target: T) -> None:
        """Raises :class:`TemplateError` for a bad template or a conflicting definition."""
        node = self._root
        node.template = "/"
        walked = ""
        for seg in parse_template(path):
            walked += "/" + (
                seg.value
                if seg.kind == "literal"
                else "{" + seg.value + ("+}" if seg.kind == "greedy" else "}")
            )
            if seg.kind == "literal":
                node = node.literals.setdefault(seg.value, _Node())
            elif seg.kind == "param":
                if node.param is None:
                    node.param = (seg.value, _Node())
                elif node.param[0] != seg.value:
                    raise TemplateError(
                        f"{path}: a sibling resource already names this parameter {{{node.param[0]}}}"
                    )
                node = node.param[1]
            else:
                if node.greedy is None:
                    node.greedy = (seg.value, _Node())
                elif node.greedy[0] != seg.value:
                    raise TemplateError(
                        f"{path}: a sibling resource already names this parameter {{{node.greedy[0]}+}}"
                    )
                node = node.greedy[1]
            node.template = walked  # every prefix of a resource path is a resource, as on AWS
        if method in node.methods:
            raise TemplateError(f"{method} {path} is defined twice")
        node.methods[method] = target

    def resources(self) -> Iterator[tuple[str, dict[str, T]]]:
        """Every resource with its methods (intermediate resources have none)."""
        stack = [self._root]
        while stack:
            node = stack.pop()
            if node.template is not None:
                yield node.template, node.methods
            stack.extend(node.literals.values())
            if node.param:
                stack.append(node.param[1])
            if node.greedy:
                stack.append(node.greedy[1])

    def match(self, segments: tuple[str, ...], method: str) -> Match[T] | None:
        """The most specific resource for the path, with the method's target; None: no resource."""
        found = self._walk(segments)
        if found is None:
            found = self._find(self._root, segments, 0, {})
        if found is None:
            return None
        node, params = found
        target = node.methods.get(method)
        if target is None:
            target = node.methods.get("ANY")
        assert node.template is not None
        return Match(node.template, params, target)

    def _walk(self, segs: tuple[str, ...]) -> tuple[_Node[T], dict[str, str]] | None:
        """Follow the first choice at every level (literal, else parameter, else greedy). When
        that reaches a resource it is exactly the depth-first search's first result; when it
        does not, the caller falls back to the search, which backtracks."""
        node = self._root
        params: dict[str, str] = {}
        for i, seg in enumerate(segs):
            child = node.literals.get(seg)
            if child is not None:
                node = child
            elif node.param is not None:
                params[node.param[0]] = seg
                node = node.param[1]
            elif node.greedy is not None:
                name, child = node.greedy
                if child.template is None:
                    return None
                params[name] = "/".join(segs[i:])
                return child, params
            else:
                return None
        return (node, params) if node.template is not None else None

    def _find(
        self, root: _Node[T], segs: tuple[str, ...], i0: int, params0: dict[str, str]
    ) -> tuple[_Node[T], dict[str, str]] | None:
        """Depth-first, literal before parameter before greedy, with backtracking; iterative so
        that a path of thousands of segments cannot exhaust the interpreter's stack."""
        n = len(segs)
        stack: list[tuple[_Node[T], int, dict[str, str], int]] = [(root, i0, params0, 0)]
        while stack:
            node, i, params, choice = stack.pop()
            if i == n:
                if node.template is not None:
                    return node, params
                continue
            seg = segs[i]
            if choice == 0:
                stack.append((node, i, params, 1))
                child = node.literals.get(seg)
                if child is not None:
                    stack.append((child, i + 1, params, 0))
            elif choice == 1:
                stack.append((node, i, params, 2))
                if node.param is not None:
                    name, child = node.param
                    stack.append((child, i + 1, {**params, name: seg}, 0))
            elif node.greedy is not None:
                name, child = node.greedy
                if child.template is not None:
                    return child, {**params, name: "/".join(segs[i:])}
        return None
