"""Wildcard matching for actions, resources, StringLike and ArnLike (docs/policy-semantics.md).

Written by hand: ``fnmatch`` gives ``[...]`` classes a meaning IAM does not have, and any
regex translation of ``*a*a*a...b`` backtracks exponentially. Here a pattern is split on ``*``
into fixed-length chunks; the first is anchored at the start, the last at the end and the others
are found left to right (the leftmost occurrence is always a safe choice for a ``*``-separated
glob), so a match costs one pass of ``str.find`` per chunk whatever the pattern.

ARN patterns are matched segment by segment: the first five colon-separated parts one by one
(a wildcard there never matches ``:``), the sixth (the resource part) as a whole. A pattern with
fewer than six parts whose last part ends in ``*`` lets that last part absorb the rest of the
ARN, colons included, so ``arn:aws:execute-api:us-east-1:*`` covers every API in the region.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from .variables import QMARK, STAR, Glob, Wild

__all__ = ["ArnMatcher", "GlobMatcher", "fold_service", "glob_from_text"]

ARN_PARTS: Final = 6


def glob_from_text(text: str) -> Glob:
    """``*`` and ``?`` as wildcards, everything else literal."""
    out: list[str | Wild] = []
    for piece in re.split(r"([*?])", text):
        if piece == "*":
            out.append(STAR)
        elif piece == "?":
            out.append(QMARK)
        elif piece:
            out.append(piece)
    return tuple(out)


class _Chunk:
    """A run of literal text and ``?`` with a fixed length."""

    __slots__ = ("length", "rx", "text")

    def __init__(self, items: list[object]) -> None:
        if all(isinstance(it, str) for it in items):
            self.text: str | None = "".join(items)  # type: ignore[arg-type]
            self.rx: re.Pattern[str] | None = None
            self.length = len(self.text)
        else:
            self.text = None
            body = "".join("." if it is QMARK else re.escape(str(it)) for it in items)
            self.rx = re.compile(body, re.DOTALL)
            self.length = sum(1 if it is QMARK else len(str(it)) for it in items)

    def at(self, s: str, pos: int) -> bool:
        if self.text is not None:
            return s.startswith(self.text, pos)
        assert self.rx is not None
        return self.rx.match(s, pos) is not None

    def find(self, s: str, pos: int, end: int) -> int:
        if self.text is not None:
            return s.find(self.text, pos, end)
        assert self.rx is not None
        m = self.rx.search(s, pos, end)
        return -1 if m is None else m.start()


class GlobMatcher:
    """A compiled glob. ``exact``/``prefix`` are set for the two shapes that can be indexed."""

    __slots__ = ("chunks", "exact", "minlen", "prefix", "starred")

    def __init__(self, glob: Glob) -> None:
        chunks: list[list[object]] = [[]]
        for it in glob:
            if it is STAR:
                chunks.append([])
            else:
                chunks[-1].append(it)
        self.starred = len(chunks) > 1
        self.chunks = [_Chunk(c) for c in chunks]
        self.minlen = sum(c.length for c in self.chunks)
        self.exact: str | None = None
        self.prefix: str | None = None
        if not self.starred and self.chunks[0].text is not None:
            self.exact = self.chunks[0].text
        elif len(self.chunks) == 2 and self.chunks[0].text is not None and self.chunks[1].length == 0:
            self.prefix = self.chunks[0].text

    def match(self, s: str) -> bool:
        if self.exact is not None:
            return s == self.exact
        if self.prefix is not None:
            return s.startswith(self.prefix)
        chunks = self.chunks
        if not self.starred:
            return len(s) == self.minlen and chunks[0].at(s, 0)
        if len(s) < self.minlen:
            return False
        head, tail = chunks[0], chunks[-1]
        if not head.at(s, 0):
            return False
        end = len(s) - tail.length
        if not tail.at(s, end):
            return False
        pos = head.length
        for chunk in chunks[1:-1]:
            idx = chunk.find(s, pos, end)
            if idx < 0:
                return False
            pos = idx + chunk.length
        return pos <= end


def _split_glob(glob: Glob, maxsplit: int) -> list[list[object]]:
    """Split a glob's literal text on ``:``, at most ``maxsplit`` times."""
    parts: list[list[object]] = [[]]
    for it in glob:
        if isinstance(it, str) and ":" in it and len(parts) <= maxsplit:
            pieces = it.split(":", maxsplit - len(parts) + 1)
            if pieces[0]:
                parts[-1].append(pieces[0])
            for piece in pieces[1:]:
                parts.append([piece] if piece else [])
        else:
            parts[-1].append(it)
    return parts


def fold_service(glob: Glob) -> Glob:
    """Lower-case the literal text of the service (third) segment of an ARN pattern."""
    out: list[str | Wild] = []
    colons = 0
    for it in glob:
        if not isinstance(it, str):
            out.append(it)
            continue
        pieces = it.split(":")
        rebuilt = []
        for k, piece in enumerate(pieces):
            if k:
                colons += 1
            rebuilt.append(piece.lower() if colons == 2 else piece)
        out.append(":".join(rebuilt))
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def _part_matcher(glob: Glob) -> GlobMatcher:
    """One ARN part's matcher, shared by every pattern with that part (a matcher never changes
    once built): with a thousand APIs' policies, the same few parts recur in every one."""
    return GlobMatcher(glob)


class ArnMatcher:
    """A compiled ARN pattern (see the module docstring)."""

    __slots__ = ("absorbing", "nparts", "parts", "whole")

    def __init__(self, glob: Glob) -> None:
        self.whole = GlobMatcher(glob)
        split = _split_glob(glob, ARN_PARTS - 1)
        self.nparts = len(split)
        self.absorbing = self.nparts < ARN_PARTS and bool(split[-1]) and split[-1][-1] is STAR
        # Matched part by part only when the whole is neither an exact text nor a prefix (see
        # match); the parts are shared between patterns (most are "arn", "aws", a region...).
        self.parts: list[GlobMatcher] = []
        if self.whole.exact is None and self.whole.prefix is None:
            self.parts = [_part_matcher(tuple(p)) for p in split]

    @property
    def exact(self) -> str | None:
        return self.whole.exact

    @property
    def prefix(self) -> str | None:
        """A literal text followed by one final ``*`` is a plain prefix test in every case: in
        the resource part the star is free, and in a shorter pattern it absorbs the rest."""
        return self.whole.prefix

    def match(self, value: str) -> bool:
        whole = self.whole
        if whole.exact is not None:
            return value == whole.exact
        if whole.prefix is not None:
            return value.startswith(whole.prefix)
        if self.absorbing:
            pieces = value.split(":", self.nparts - 1)
            if len(pieces) < self.nparts:
                return False
        else:
            pieces = value.split(":", ARN_PARTS - 1)
            if len(pieces) != self.nparts:
                return False
        return all(matcher.match(piece) for matcher, piece in zip(self.parts, pieces, strict=True))
