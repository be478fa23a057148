"""YAML with positions: plain data plus a map from JSON pointer to (line, column).

PyYAML's composer keeps a mark on every node but its constructor forgets them and silently keeps
the last of two equal keys; here the node tree is walked directly so every value keeps its place
and duplicate keys are diagnostics. Only the YAML core types are produced (mappings, sequences,
strings, ints, floats, booleans, null); tags and anchors work as PyYAML resolves them.

Characters are checked before anything else sees the text: each character YAML forbids in a
stream (C0 and C1 controls other than tab, line breaks and NEL, ``DEL``, U+FFFE/U+FFFF) is a
located ``config.yaml.invalid-character`` (PyYAML reports only the first, with an offset instead
of a line). A string or key that an escape (``"\\0"``, ``"\\x00"``, ``"\\u0000"``, a lone
surrogate) turns into a character no store can keep (PostgreSQL's ``text`` and ``jsonb`` hold no
NUL, and UTF-8 no lone surrogate) is valid YAML but a located ``config.yaml.unstorable-character``:
a configuration that loads can be applied to a store.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from iamgate.policy.diagnostics import Diagnostic, Location, Severity, pointer_join

__all__ = [
    "REDACTED",
    "UNSTORABLE",
    "Positions",
    "YamlDocument",
    "describe_character",
    "load_yaml",
    "unstorable",
    "unstorable_in",
]

# the C loader when PyYAML was built with libyaml
_Loader: type[yaml.SafeLoader | yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_DEPTH = 64
MAX_NODES = 200_000  # values that aliases may add by repeating a subtree ("billion laughs")
UNSTORABLE = "config.yaml.unstorable-character"  # valid YAML that no store can keep
# what `iamgate export --redact` writes in place of a secret: refused wherever it is read, so that
# a redacted file is never applied with the placeholder taken for the secret
REDACTED = "<redacted by iamgate export>"
MAX_CHARACTER_ERRORS = 10  # reported one by one; the rest are counted
_STR = "tag:yaml.org,2002:str"
_SEEN = "_iamgate_seen"  # set on a node when converted (a node met again came through an alias)

# what YAML 1.1 does not allow in a stream (PyYAML's reader.NON_PRINTABLE), and what no store keeps
_FORBIDDEN = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_BREAKS = re.compile("\r\n|[\n\r\x85\u2028\u2029]")  # what PyYAML counts as a line break


class Positions(dict[str, tuple[int, int]]):
    """JSON pointer -> (line, column) of the value, both 1-based; ``key_marks`` holds where each
    mapping key itself is written (a diagnostic about a key points at the key, not its value)."""

    def __init__(self, fill: Callable[[Positions], None] | None = None) -> None:
        super().__init__()
        self.key_marks: dict[str, tuple[int, int]] = {}
        # Filled on the first question: a file that reads without a diagnostic never needs its
        # positions, and at 1,000 APIs they are 120,000 entries (time, and memory while loading).
        self._fill = fill

    def _filled(self) -> None:
        fill, self._fill = self._fill, None
        if fill is not None:
            fill(self)

    def key_location(self, pointer: str) -> Location:
        """Where the key of ``pointer`` is written (else where its value is)."""
        self._filled()
        found = self.key_marks.get(pointer)
        if found is None:
            return self.location(pointer)
        return Location(pointer, *found)

    def location(self, pointer: str) -> Location:
        self._filled()
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


def describe_character(char: str) -> str:
    """``a NUL character (U+0000)``, ``the control character U+001B``, ..."""
    code = f"U+{ord(char):04X}"
    if char == "\x00":
        return f"a NUL character ({code})"
    if "\ud800" <= char <= "\udfff":
        return f"a lone surrogate ({code}), which is not a character"
    if char < "\xa0" or char == "\x7f":
        return f"the control character {code}"
    return f"the character {code}"


def unstorable(text: str) -> str | None:
    """What in ``text`` no store can keep (a NUL, a lone surrogate), described; None: nothing."""
    found = _UNSTORABLE.search(text)
    return None if found is None else describe_character(found.group())


def unstorable_in(value: object, pointer: str = "") -> tuple[str, str] | None:
    """(JSON pointer, what) of the first string or key in decoded JSON ``value`` that no store
    can keep (a policy's text decodes ``\\u0000`` into one); None: nothing."""
    if isinstance(value, str):
        bad = unstorable(value)
        return None if bad is None else (pointer or "/", bad)
    if isinstance(value, dict):
        for key, item in value.items():
            bad = unstorable(key) if isinstance(key, str) else None
            if bad is not None:
                return pointer or "/", f"a name holding {bad}"
            found = unstorable_in(item, pointer_join(pointer, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = unstorable_in(item, pointer_join(pointer, i))
            if found is not None:
                return found
    return None


def _replaced(text: str) -> str:
    """``text`` with what no store keeps replaced by U+FFFD: validation goes on (all problems at
    once, no knock-on type errors) and no message prints a NUL."""
    return _UNSTORABLE.sub("\ufffd", text)


def _forbidden_characters(text: str) -> list[Diagnostic]:
    """Every character YAML forbids in a stream, at its line and column (counted as PyYAML
    counts them, so they agree with the other diagnostics)."""
    found = list(_FORBIDDEN.finditer(text))
    if not found:
        return []
    starts = [0] + [m.end() for m in _BREAKS.finditer(text)]
    out = []
    line = 0
    for m in found[:MAX_CHARACTER_ERRORS]:
        while line + 1 < len(starts) and starts[line + 1] <= m.start():
            line += 1
        column = m.start() - starts[line] + 1
        message = f"{describe_character(m.group())} is not allowed in a YAML file"
        out.append(_error("invalid-character", message, line + 1, column))
    if len(found) > MAX_CHARACTER_ERRORS:
        rest = len(found) - MAX_CHARACTER_ERRORS
        out.append(_error("invalid-character", f"and {rest} more characters YAML does not allow", None, None))
    return out


def _fresh(text: str) -> str:
    """A string of the data, not the parser's: the values kept by the configuration then live
    apart from the node tree (which is freed whole once converted), and equal values are one
    object (``sys.intern``). Without this, each kept value pins the memory block of the nodes
    it was parsed with, and a large file's whole parse stays in the process (at 1,000 APIs,
    about 50 MB of the gateway's RSS)."""
    return sys.intern((text + "\x00")[:-1]) if text else text


def _key_text(key: object) -> str:
    """A mapping key as the configuration holds it (a JSON pointer's part): a string."""
    if isinstance(key, str):
        return key
    return str(key) if isinstance(key, int | float | bool) or key is None else repr(key)


class _TooLarge(Exception):
    pass


class _Converter:
    """Turns the node tree into plain data, recording where each value is written."""

    def __init__(self, positions: Positions | None, diags: list[Diagnostic]) -> None:
        self.positions = positions  # filled as values are met (None: found later, when asked for)
        self.diags = diags
        self.constructor = yaml.SafeLoader("")
        self.budget = MAX_NODES

    def scalar(self, n: yaml.Node) -> object:
        # Most values are plain strings: taken as they are, without the constructor's
        # bookkeeping (it keeps every node it built).
        if n.tag == _STR and isinstance(n, yaml.ScalarNode):
            return _fresh(n.value)
        return self.constructor.construct_object(n, deep=True)

    def _key(self, key_node: yaml.Node) -> str:
        return _key_text(self.scalar(key_node))

    def close(self) -> None:
        """Drop what the constructor kept (the nodes go now, not at the next collection)."""
        self.constructor.constructed_objects.clear()
        self.constructor.recursive_objects.clear()
        self.constructor.dispose()

    def convert(self, n: yaml.Node, pointer: str, depth: int) -> object:
        positions, diags, constructor, scalar = self.positions, self.diags, self.constructor, self.scalar
        if positions is not None:
            positions[pointer] = (n.start_mark.line + 1, n.start_mark.column + 1)
        # An alias is the node it names, met again: only those second meetings count against
        # the budget ("billion laughs"), so a file as large as the values it writes out (10,000
        # APIs: 1.2 million values) reads, and a small file of aliases of aliases does not.
        seen = n.__dict__
        if _SEEN in seen:
            self.budget -= 1
            if self.budget < 0:
                raise _TooLarge
        else:
            seen[_SEEN] = True
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
                key = self._key(key_node)
                child = pointer_join(pointer, key)
                bad = unstorable(key)
                if bad is not None:  # located at the mapping: the key cannot be part of a pointer
                    mark = key_node.start_mark
                    message = f"the key {key!r} holds {bad}, which no store can keep"
                    diags.append(
                        _error("unstorable-character", message, mark.line + 1, mark.column + 1, pointer)
                    )
                    key = _replaced(key)
                    child = pointer_join(pointer, key)
                if key not in out and positions is not None:
                    positions.key_marks[child] = (
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                    )
                if key in out:
                    first = next((k for k, _ in n.value if self._key(k) == key), key_node)
                    diags.append(
                        _error(
                            "duplicate-key",
                            f"duplicate key '{key}' (first at line {first.start_mark.line + 1})",
                            key_node.start_mark.line + 1,
                            key_node.start_mark.column + 1,
                            child,
                        )
                    )
                    continue
                out[key] = self.convert(value_node, child, depth + 1)
            return out
        if isinstance(n, yaml.SequenceNode):
            return [self.convert(item, pointer_join(pointer, i), depth + 1) for i, item in enumerate(n.value)]
        try:
            value = scalar(n)
        except yaml.YAMLError as exc:
            diags.append(
                _error(
                    "value",
                    f"invalid value: {exc}",
                    n.start_mark.line + 1,
                    n.start_mark.column + 1,
                    pointer,
                )
            )
            return None
        bad = unstorable(value) if isinstance(value, str) else None
        if bad is not None and isinstance(value, str):
            message = f"the string holds {bad}, which no store can keep"
            diags.append(
                _error(
                    "unstorable-character",
                    message,
                    n.start_mark.line + 1,
                    n.start_mark.column + 1,
                    pointer,
                )
            )
            return _replaced(value)
        if isinstance(value, str) and REDACTED in value:
            line, column = n.start_mark.line + 1, n.start_mark.column + 1
            diags.append(
                Diagnostic(
                    "config.redacted-secret",
                    Severity.ERROR,
                    f"this value holds {REDACTED!r}: iamgate export --redact removed a secret here",
                    Location(pointer, line, column),
                    "put the real value back before using the file",
                )
            )
        return value


class _Fallback(Exception):
    """Something the event reader leaves to the node reader (which says what is wrong, or reads
    what the event reader does not: merge keys, complex keys, recursive aliases)."""


_MAPPING_START = yaml.MappingStartEvent
_SEQUENCE_START = yaml.SequenceStartEvent
_SCALAR = yaml.ScalarEvent
_ALIAS = yaml.AliasEvent
_ENDS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
_SPECIAL_KEYS = ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value")


class _EventReader:
    """A clean document read from the parser's events, without building its node tree: the
    C parser's node tree of a large file (87 MB for 1,000 APIs, 870 MB for 10,000) is what
    held a gateway's memory at its peak. Values as the node reader makes them (the same tag
    resolution and constructors); an alias is its anchor's events played again. Anything that
    calls for a diagnostic, or that the node reader handles specially, raises
    :class:`_Fallback`, and the node reader reads the document instead."""

    def __init__(self, text: str) -> None:
        self.loader = _Loader(text)
        self.constructor = yaml.SafeLoader("")
        self.anchors: dict[str, list[Any] | None] = {}  # None: still being recorded
        self.recording: list[list[Any]] = []
        self.replays: list[Iterator[Any]] = []
        self.pending: Any = None  # read ahead by _peek
        self.budget = MAX_NODES

    def close(self) -> None:
        self.loader.dispose()
        self.constructor.dispose()

    def _tag(self, event: Any) -> str:
        """A scalar's tag: as written, or resolved as the composer resolves a plain one."""
        tag = event.tag
        if tag is not None and tag != "!":
            return str(tag)
        resolve: Any = self.loader.resolve
        return str(resolve(yaml.ScalarNode, event.value, event.implicit))

    def _read(self) -> Any:
        while self.replays:
            event = next(self.replays[-1], None)
            if event is not None:
                return event
            self.replays.pop()
        event = self.loader.get_event()
        for recording in self.recording:
            recording.append(event)
        return event

    def _next(self) -> Any:
        event = self.pending
        if event is not None:
            self.pending = None
            return event
        return self._read()

    def _peek(self) -> Any:
        if self.pending is None:
            self.pending = self._read()
        return self.pending

    def document(self) -> object:
        loader = self.loader
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            return None  # nothing but comments: as the node reader, no data
        loader.get_event()  # document start
        data = self.value(0)
        loader.get_event()  # document end
        if not loader.check_event(yaml.StreamEndEvent):
            raise _Fallback  # a second document: the node reader says so
        return data

    def value(self, depth: int) -> object:
        if depth > MAX_DEPTH:
            raise _Fallback
        event = self._next()
        kind = type(event)
        if kind is _ALIAS:
            events = self.anchors.get(event.anchor)
            if events is None:
                raise _Fallback  # undefined, or an alias inside its own anchor
            self.budget -= _nodes(events)
            if self.budget < 0:
                raise _Fallback
            self.replays.append(iter(events))
            return self.value(depth)
        # an anchor is defined where it is written, not again where an alias plays it
        anchor = event.anchor if not self.replays else None
        if anchor is not None:
            if anchor in self.anchors:
                raise _Fallback  # a duplicate anchor
            self.anchors[anchor] = None
            self.recording.append([event])
        if kind is _SCALAR:
            out = self._scalar(event)
        elif kind is _MAPPING_START:
            out = self._mapping(depth)
        elif kind is _SEQUENCE_START:
            out = self._sequence(depth)
        else:
            raise _Fallback
        if anchor is not None:
            self.anchors[anchor] = self.recording.pop()
        return out

    def _scalar(self, event: Any, tag: str | None = None) -> object:
        tag = tag or self._tag(event)
        if tag == _STR:
            value: object = sys.intern(event.value)
        else:
            node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
            try:
                value = self.constructor.construct_object(node, deep=True)
            except yaml.YAMLError:
                raise _Fallback from None
            self.constructor.constructed_objects.clear()
        if isinstance(value, str) and (unstorable(value) is not None or REDACTED in value):
            raise _Fallback
        return value

    def _mapping(self, depth: int) -> dict[object, object]:
        out: dict[object, object] = {}
        while True:
            event = self._next()
            kind = type(event)
            if kind in _ENDS:
                return out
            if kind is not _SCALAR or (event.anchor is not None and not self.replays):
                raise _Fallback  # a complex or anchored key, or an alias as a key
            tag = self._tag(event)
            if tag in _SPECIAL_KEYS:
                raise _Fallback  # a merge key ("<<")
            key = _key_text(self._scalar(event, tag))
            if key in out or unstorable(key) is not None:
                raise _Fallback
            out[key] = self.value(depth + 1)

    def _sequence(self, depth: int) -> list[object]:
        out: list[object] = []
        while type(self._peek()) not in _ENDS:
            out.append(self.value(depth + 1))
        self._next()
        return out


def _nodes(events: list[Any]) -> int:
    """How many values a recorded node holds (what playing it again adds)."""
    return sum(1 for e in events if type(e) in (_SCALAR, _MAPPING_START, _SEQUENCE_START, _ALIAS))


def _read_events(text: str) -> tuple[bool, object]:
    """(True, data) when the event reader read the document, (False, None) when it left it to
    the node reader."""
    reader = _EventReader(text)
    try:
        return True, reader.document()
    except (_Fallback, yaml.YAMLError):
        return False, None
    finally:
        reader.close()


def load_yaml(text: str) -> YamlDocument:
    """Parse one YAML document. Syntax errors, duplicate keys and characters that YAML forbids
    or no store can keep are diagnostics."""
    positions = Positions()
    diags: list[Diagnostic] = []
    refused = _forbidden_characters(text)
    if refused:
        return YamlDocument(None, positions, tuple(refused))
    read, data = _read_events(text)
    if read:
        return YamlDocument(data, Positions(functools.partial(_fill_positions, text)), ())
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
    converter = _Converter(None, diags)
    try:
        data = converter.convert(node, "", 0)
    except _TooLarge:
        message = f"the document's aliases add more than {MAX_NODES:,} values (aliases repeating aliases?)"
        return YamlDocument(None, Positions(), (_error("too-large", message, None, None),))
    finally:
        converter.close()
    return YamlDocument(data, Positions(functools.partial(_fill_positions, text)), tuple(diags))


def _fill_positions(text: str, positions: Positions) -> None:
    """The positions of a document that was read once already (so it parses): read again."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    if node is None:
        return
    converter = _Converter(positions, [])
    try:
        converter.convert(node, "", 0)
    finally:
        converter.close()
