"""One canonical form of the request path, for the policy decision *and* the backend.

Every request target is reduced to a single canonical path before anything looks at it; the
method ARN, the route match, the path parameters and the path sent to the backend are all derived
from that one value. So no spelling of a path can be judged as one resource and served as another:

* percent-escapes are decoded (``%2e%2e`` is ``..``, ``%61dmin`` is ``admin``), and the bytes
  must be valid UTF-8 (overlong forms such as ``%C0%AF`` are invalid);
* an encoded ``/`` (``%2F``), any ``\\`` (raw or ``%5C``), control characters (``%00``...) and,
  unless allowed, ``;`` are refused, because backends disagree on what they mean;
* ``.`` and ``..`` segments are resolved (never above the root), doubled slashes are merged and a
  trailing slash is dropped;
* the backend receives the canonical path re-encoded with one fixed rule (RFC 3986 ``pchar``
  characters bare, everything else ``%XX`` of its UTF-8 bytes).

Written by hand: the standard library's ``urllib.parse`` decodes permissively (invalid escapes
pass through, bad UTF-8 is replaced), which is exactly the ambiguity this module removes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["CanonicalPath", "PathError", "canonicalize", "encode_segment"]

_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
# RFC 3986 pchar minus "%": unreserved, sub-delims, ":" and "@"
_PCHAR_SAFE = "!$&'()*+,;=:@-._~"


@dataclass(frozen=True, slots=True)
class CanonicalPath:
    segments: tuple[str, ...]  # decoded, non-empty, no "." or ".."

    @property
    def decoded(self) -> str:
        return "/" + "/".join(self.segments)

    @property
    def encoded(self) -> str:
        return "/" + "/".join(encode_segment(s) for s in self.segments)


@dataclass(frozen=True, slots=True)
class PathError:
    reason: str


def encode_segment(segment: str) -> str:
    return quote(segment, safe=_PCHAR_SAFE)


def _decode(raw: bytes) -> bytes | PathError:
    if _BAD_ESCAPE.search(raw):
        return PathError("a '%' is not followed by two hexadecimal digits")
    return _ESCAPE.sub(lambda m: bytes((int(m.group(1), 16),)), raw)


def canonicalize(raw_path: bytes, *, allow_semicolon: bool = False) -> CanonicalPath | PathError:
    """The canonical form of a raw (still percent-encoded) path, or why it is refused."""
    if not raw_path.startswith(b"/"):
        return PathError("the request target is not an absolute path")
    if b"\\" in raw_path:
        return PathError("a backslash in the path")
    if b"%" in raw_path:
        pieces = raw_path.split(b"/")
        decoded_pieces = []
        for piece in pieces:
            decoded = _decode(piece)
            if isinstance(decoded, PathError):
                return decoded
            if b"/" in decoded or b"\\" in decoded:
                return PathError("an encoded '/' or '\\' (%2F, %5C) in the path")
            decoded_pieces.append(decoded)
    else:
        decoded_pieces = raw_path.split(b"/")
    segments: list[str] = []
    for piece in decoded_pieces:
        if not piece or piece == b".":
            continue
        if piece == b"..":
            if segments:
                segments.pop()
            continue
        try:
            text = piece.decode("utf-8")
        except UnicodeDecodeError:
            return PathError("the path is not valid UTF-8 once decoded")
        if not text.isprintable() or any(ch in text for ch in "\x7f"):
            return PathError("a control or non-printable character in the path")
        if not allow_semicolon and ";" in text:
            return PathError("a ';' in the path (backends read it as a parameter separator)")
        segments.append(text)
    return CanonicalPath(tuple(segments))
