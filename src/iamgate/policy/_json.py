"""A JSON reader that keeps positions and refuses duplicate keys.

Written by hand because the standard library's ``json`` silently keeps the last of two equal
keys and reports no positions for values, and no well-kept library gives both (plus raw number
text) without pulling in a parser generator. String bodies are still decoded by the standard
library's C ``scanstring``; numbers are matched by an ASCII-only regex of the JSON grammar (the
standard library's ``NUMBER_RE`` uses ``\\d``, which also takes other scripts' digits). Only the
structure is walked here, with an explicit stack, so deep nesting can never exhaust the
interpreter's stack.

Every failure is a :class:`~iamgate.policy.diagnostics.Diagnostic`; nothing raises.
"""

from __future__ import annotations

import bisect
import json.decoder
import math
import re
from dataclasses import dataclass
from typing import Final

from .diagnostics import Diagnostic, Location, Severity, pointer_join

__all__ = ["JsonNode", "LineIndex", "ReadResult", "from_python", "read_json"]

MAX_DEPTH: Final = 64

_WS = re.compile(r"[ \t\n\r]*")
# RFC 8259 numbers: ASCII digits only (``json.scanner.NUMBER_RE`` would accept "1\u0663")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class JsonNode:
    """One JSON value with its position.

    ``kind`` is one of object, array, string, number, bool, null. ``value`` is: for objects a
    tuple of ``(key, key_offset, node)``; for arrays a tuple of nodes; for strings the text; for
    numbers the raw source text (``10``, ``1.50``); for bools ``True``/``False``; for null None.
    """

    kind: str
    value: object
    offset: int
    pointer: str

    def members(self) -> tuple[tuple[str, int, JsonNode], ...]:
        assert self.kind == "object"
        return self.value  # type: ignore[return-value]

    def items(self) -> tuple[JsonNode, ...]:
        assert self.kind == "array"
        return self.value  # type: ignore[return-value]

    def to_python(self) -> object:
        """Plain Python data (numbers stay as their source text parsed to int/float)."""
        if self.kind == "object":
            return {k: n.to_python() for k, _, n in self.members()}
        if self.kind == "array":
            return [n.to_python() for n in self.items()]
        if self.kind == "number":
            text = str(self.value)
            if re.fullmatch(r"-?[0-9]+", text):
                try:
                    return int(text)
                except ValueError:  # more digits than the interpreter converts (4,300 by default)
                    return float(text)  # lossy (+-inf), but never an exception
            return float(text)
        return self.value


class LineIndex:
    """Turns character offsets into 1-based (line, column)."""

    def __init__(self, text: str | None) -> None:
        self._starts: list[int] | None = None
        if text is not None:
            self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def location(self, pointer: str, offset: int | None) -> Location:
        if self._starts is None or offset is None or offset < 0:
            return Location(pointer)
        line = bisect.bisect_right(self._starts, offset)
        return Location(pointer, line, offset - self._starts[line - 1] + 1)


@dataclass(frozen=True, slots=True)
class ReadResult:
    root: JsonNode | None
    diagnostics: tuple[Diagnostic, ...]
    lines: LineIndex


def _err(code: str, message: str, lines: LineIndex, offset: int, pointer: str = "") -> Diagnostic:
    return Diagnostic(f"policy.read.{code}", Severity.ERROR, message, lines.location(pointer, offset))


def _describe(text: str, pos: int) -> str:
    if pos >= len(text):
        return "end of input"
    return repr(text[pos])


def read_json(text: str, *, max_depth: int = MAX_DEPTH) -> ReadResult:
    """Read one JSON document. Returns the root node (None on a syntax error) and diagnostics.

    Syntax errors stop the read (there is nothing sensible to continue with); duplicate keys are
    reported, every one of them, and the read goes on with the first occurrence kept.
    """
    lines = LineIndex(text)
    diags: list[Diagnostic] = []
    try:
        root = _Reader(text, lines, diags, max_depth).run()
    except _Stop:
        root = None
    return ReadResult(root, tuple(diags), lines)


class _Stop(Exception):
    """Internal: a syntax error was recorded; unwind the reader."""


class _Frame:
    __slots__ = ("entries", "keys", "kind", "offset", "pending_key", "pointer")

    def __init__(self, kind: str, offset: int, pointer: str) -> None:
        self.kind = kind
        self.offset = offset
        self.pointer = pointer
        self.entries: list[object] = []
        self.keys: dict[str, int] = {}
        self.pending_key: tuple[str, int] | None = None


class _Reader:
    def __init__(self, text: str, lines: LineIndex, diags: list[Diagnostic], max_depth: int):
        self.text = text
        self.lines = lines
        self.diags = diags
        self.max_depth = max_depth

    def fail(self, code: str, message: str, offset: int, pointer: str = "") -> _Stop:
        self.diags.append(_err(code, message, self.lines, offset, pointer))
        return _Stop()

    def ws(self, pos: int) -> int:
        m = _WS.match(self.text, pos)
        return m.end() if m else pos

    def string(self, pos: int, pointer: str) -> tuple[str, int]:
        """Decode the string whose opening quote is at ``pos``; return (text, end)."""
        try:
            value, end = _scanstring(self.text, pos + 1, True)
        except json.JSONDecodeError as exc:
            raise self.fail("invalid-string", f"invalid JSON string: {exc.msg}", exc.pos, pointer) from None
        bad = _SURROGATE.search(value)
        if bad:
            raise self.fail(
                "invalid-string",
                "invalid JSON string: a \\u escape encodes a lone surrogate, which is not a character",
                pos,
                pointer,
            )
        return value, end

    def scalar(self, pos: int, pointer: str) -> tuple[JsonNode, int]:
        text = self.text
        ch = text[pos] if pos < len(text) else ""
        if ch == '"':
            value, end = self.string(pos, pointer)
            return JsonNode("string", value, pos, pointer), end
        if text.startswith("true", pos):
            return JsonNode("bool", True, pos, pointer), pos + 4
        if text.startswith("false", pos):
            return JsonNode("bool", False, pos, pointer), pos + 5
        if text.startswith("null", pos):
            return JsonNode("null", None, pos, pointer), pos + 4
        m = _NUMBER.match(text, pos)
        if m and ch in "-0123456789":
            return JsonNode("number", m.group(0), pos, pointer), m.end()
        raise self.fail("syntax", f"expected a JSON value, found {_describe(text, pos)}", pos, pointer)

    def run(self) -> JsonNode:
        text = self.text
        pos = self.ws(0)
        if pos >= len(text):
            raise self.fail("empty", "the document is empty; expected a JSON object", pos)
        stack: list[_Frame] = []
        result: JsonNode | None = None
        pointer = ""
        while True:
            # --- read one value starting at pos (pointer is its JSON pointer)
            ch = text[pos] if pos < len(text) else ""
            node: JsonNode | None = None
            if ch in "{[":
                if len(stack) >= self.max_depth:
                    raise self.fail("too-deep", f"nesting deeper than {self.max_depth} levels", pos, pointer)
                frame = _Frame("object" if ch == "{" else "array", pos, pointer)
                stack.append(frame)
                pos = self.ws(pos + 1)
                close = "}" if ch == "{" else "]"
                if pos < len(text) and text[pos] == close:
                    pos += 1
                    stack.pop()
                    node = JsonNode(frame.kind, (), frame.offset, frame.pointer)
                elif frame.kind == "object":
                    pos, pointer = self.key(frame, pos)
                    continue
                else:
                    pointer = pointer_join(frame.pointer, 0)
                    continue
            else:
                node, pos = self.scalar(pos, pointer)
            # --- a complete value: attach it to its parent, closing containers as they end
            while True:
                if not stack:
                    result = node
                    break
                frame = stack[-1]
                if frame.kind == "object":
                    assert frame.pending_key is not None
                    key, key_offset = frame.pending_key
                    if key in frame.keys:
                        first = self.lines.location("", frame.keys[key])
                        self.diags.append(
                            _err(
                                "duplicate-key",
                                f"duplicate key '{key}' (first defined at line {first.line}, "
                                f"column {first.column}); JSON parsers disagree on which one wins",
                                self.lines,
                                key_offset,
                                pointer_join(frame.pointer, key),
                            )
                        )
                    else:
                        frame.keys[key] = key_offset
                        frame.entries.append((key, key_offset, node))
                else:
                    frame.entries.append(node)
                pos = self.ws(pos)
                ch = text[pos] if pos < len(text) else ""
                close = "}" if frame.kind == "object" else "]"
                if ch == ",":
                    pos = self.ws(pos + 1)
                    if frame.kind == "object":
                        pos, pointer = self.key(frame, pos)
                    else:
                        pointer = pointer_join(frame.pointer, len(frame.entries))
                    node = None
                    break
                if ch == close:
                    pos += 1
                    stack.pop()
                    node = JsonNode(frame.kind, tuple(frame.entries), frame.offset, frame.pointer)
                    continue
                expected = "',' or '}'" if frame.kind == "object" else "',' or ']'"
                raise self.fail(
                    "syntax",
                    f"expected {expected}, found {_describe(text, pos)}",
                    pos,
                    frame.pointer,
                )
            if result is not None:
                break
        pos = self.ws(pos)
        if pos < len(text):
            raise self.fail(
                "trailing-data",
                f"unexpected {_describe(text, pos)} after the end of the JSON document",
                pos,
            )
        return result

    def key(self, frame: _Frame, pos: int) -> tuple[int, str]:
        text = self.text
        if pos >= len(text) or text[pos] != '"':
            raise self.fail(
                "syntax",
                f"expected a quoted member name, found {_describe(text, pos)}",
                pos,
                frame.pointer,
            )
        key, end = self.string(pos, frame.pointer)
        end = self.ws(end)
        if end >= len(text) or text[end] != ":":
            raise self.fail(
                "syntax",
                f"expected ':' after member name '{key}', found {_describe(text, end)}",
                end,
                frame.pointer,
            )
        frame.pending_key = (key, pos)
        return self.ws(end + 1), pointer_join(frame.pointer, key)


def from_python(value: object, *, max_depth: int = MAX_DEPTH) -> ReadResult:
    """Wrap already-decoded data (from YAML, a dict in code) as nodes without positions.

    Values JSON cannot hold (sets, bytes, objects, non-string keys) become diagnostics.
    """
    diags: list[Diagnostic] = []
    lines = LineIndex(None)

    def convert(v: object, pointer: str, depth: int) -> JsonNode | None:
        # ``depth`` containers enclose v; like read_json, refuse a container that makes it deeper
        if depth >= max_depth and isinstance(v, dict | list | tuple):
            diags.append(_err("too-deep", f"nesting deeper than {max_depth} levels", lines, -1, pointer))
            return None
        if isinstance(v, bool):
            return JsonNode("bool", v, -1, pointer)
        if v is None:
            return JsonNode("null", None, -1, pointer)
        if isinstance(v, str):
            if _SURROGATE.search(v):
                diags.append(_err("invalid-string", "string holds a lone surrogate", lines, -1, pointer))
                return None
            return JsonNode("string", v, -1, pointer)
        if isinstance(v, int):
            try:
                digits = str(v)
            except ValueError:  # more digits than the interpreter converts (4,300 by default)
                diags.append(_err("syntax", "the integer has too many digits for JSON", lines, -1, pointer))
                return None
            return JsonNode("number", digits, -1, pointer)
        if isinstance(v, float):
            if not math.isfinite(v):
                diags.append(_err("syntax", f"{v!r} is not a JSON number", lines, -1, pointer))
                return None
            return JsonNode("number", repr(v), -1, pointer)
        if isinstance(v, dict):
            members: list[tuple[str, int, JsonNode]] = []
            for k, item in v.items():
                if not isinstance(k, str):
                    diags.append(_err("syntax", f"member name {k!r} is not a string", lines, -1, pointer))
                    continue
                if _SURROGATE.search(k):
                    message = f"member name {k!r} holds a lone surrogate"
                    diags.append(_err("invalid-string", message, lines, -1, pointer))
                    continue
                child = convert(item, pointer_join(pointer, k), depth + 1)
                if child is not None:
                    members.append((k, -1, child))
            return JsonNode("object", tuple(members), -1, pointer)
        if isinstance(v, list | tuple):
            nodes = []
            for i, item in enumerate(v):
                child = convert(item, pointer_join(pointer, i), depth + 1)
                if child is not None:
                    nodes.append(child)
            return JsonNode("array", tuple(nodes), -1, pointer)
        diags.append(_err("syntax", f"a {type(v).__name__} value cannot appear in JSON", lines, -1, pointer))
        return None

    root = convert(value, "", 0)
    if diags:
        root = None
    return ReadResult(root, tuple(diags), lines)
