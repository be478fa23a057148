"""Policy variables (docs/policy-semantics.md) and wildcard tokens.

A policy string is read into a *template*: a tuple of items, each one of

* ``STAR`` or ``QMARK``: a wildcard as written (meaningful only to Like-style matching);
* a ``str``: literal text;
* a :class:`Var`: ``${key}`` or ``${key, 'default'}``, resolved per request.

``${*}``, ``${?}`` and ``${$}`` read as the literal characters. Resolving a template gives a
*glob*: a tuple of ``STAR``/``QMARK``/``str`` where every substituted value is literal text, so a
``*`` inside a tag value never acts as a wildcard.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "QMARK",
    "STAR",
    "Glob",
    "Item",
    "Template",
    "Var",
    "Wild",
    "read_template",
    "resolve",
    "template_text",
]


class Wild:
    """A wildcard token as written: ``STAR`` or ``QMARK`` (the only two instances)."""

    __slots__ = ("char",)

    def __init__(self, char: str) -> None:
        self.char = char

    def __repr__(self) -> str:
        return "STAR" if self.char == "*" else "QMARK"


STAR: Final = Wild("*")
QMARK: Final = Wild("?")


@dataclass(frozen=True, slots=True)
class Var:
    key: str  # lower-cased: key names are case-insensitive
    default: str | None
    text: str  # as written, for explanations

    def __str__(self) -> str:
        return self.text


Item = str | Wild | Var
Template = tuple[Item, ...]
Glob = tuple[str | Wild, ...]

_LITERAL_ESCAPES = {"${*}": "*", "${?}": "?", "${$}": "$"}
_KEY_END = re.compile(r"[,}']")


def _variable(text: str, i: int, key_end: int) -> tuple[Var, int] | None:
    """The variable ``${...}`` at ``i`` and its end, or None. ``key_end`` is the first of
    ``,`` ``}`` ``'`` at or after i + 2 (or len(text)); each step scans only forward of it."""
    if key_end >= len(text) or text[key_end] == "'":
        return None
    key = text[i + 2 : key_end].strip()
    if not key or key[0] in ",}'":
        return None
    if text[key_end] == "}":
        return Var(key.lower(), None, text[i : key_end + 1]), key_end + 1
    # ", 'default'" then "}"
    j = key_end + 1
    n = len(text)
    while j < n and text[j].isspace():
        j += 1
    if j >= n or text[j] != "'":
        return None
    close = text.find("'", j + 1)
    if close < 0:
        return None
    default = text[j + 1 : close]
    k = close + 1
    while k < n and text[k].isspace():
        k += 1
    if k >= n or text[k] != "}":
        return None
    return Var(key.lower(), default, text[i : k + 1]), k + 1


def read_template(text: str, *, variables: bool) -> tuple[Template, list[str]]:
    """Split ``text`` into template items: ``${key}`` or ``${key, 'default'}`` (spaces around the
    comma tolerated) become variables. Returns the items and problems found with ``${``
    sequences that are not valid variables (those stay literal text). Linear in the text: the
    next ``,``/``}``/``'`` and ``}`` positions are cached between probes, so ``${`` repeated
    thousands of times costs no rescans."""
    items: list[Item] = []
    problems: list[str] = []
    buf: list[str] = []
    i, n = 0, len(text)
    key_end = -1  # cached: first of , } ' at or after the last probe
    brace = -1  # cached: first } at or after the last probe
    while i < n:
        ch = text[i]
        if ch in {"*", "?"}:
            if buf:
                items.append("".join(buf))
                buf.clear()
            items.append(STAR if ch == "*" else QMARK)
            i += 1
            continue
        if variables and ch == "$" and text.startswith("${", i):
            literal = _LITERAL_ESCAPES.get(text[i : i + 4])
            if literal is not None:
                buf.append(literal)
                i += 4
                continue
            if key_end < i + 2:
                m = _KEY_END.search(text, i + 2)
                key_end = m.start() if m else n
            found = _variable(text, i, key_end)
            if found is not None:
                var, end = found
                if buf:
                    items.append("".join(buf))
                    buf.clear()
                items.append(var)
                i = end
                continue
            if brace < i:
                brace = text.find("}", i)
                if brace < 0:
                    brace = n
            shown = text[i : brace + 1] if brace < n else text[i : i + 20]
            problems.append(f"'{shown}' is not a valid policy variable and is read as literal text")
        buf.append(ch)
        i += 1
    if buf:
        items.append("".join(buf))
    return tuple(items), problems


def has_vars(template: Template) -> bool:
    return any(isinstance(it, Var) for it in template)


def template_text(template: Template | Glob) -> str:
    """The template as text (wildcards as their characters, variables as written)."""
    return "".join(it.char if isinstance(it, Wild) else str(it) for it in template)


def _lookup(var: Var, context: Mapping[str, str | tuple[str, ...]]) -> str | None:
    value = context.get(var.key)
    if isinstance(value, str):
        return value
    # absent, or multivalued (multivalued keys cannot be variables): the default
    return var.default


def resolve(template: Template, context: Mapping[str, str | tuple[str, ...]]) -> Glob | None:
    """Substitute variables; None when one has no value and no default."""
    out: list[str | Wild] = []
    for it in template:
        if isinstance(it, Var):
            value = _lookup(it, context)
            if value is None:
                return None
            if out and isinstance(out[-1], str):
                out[-1] += value
            else:
                out.append(value)
        elif isinstance(it, str) and out and isinstance(out[-1], str):
            out[-1] += it
        else:
            out.append(it)
    return tuple(out)
