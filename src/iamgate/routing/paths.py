"""One canonical form of the request path, for the policy decision *and* the backend.

Every request target is reduced to a single canonical path before anything looks at it; the
method ARN, the route match, the path parameters and the path sent to the backend are all derived
from that one value. So no spelling of a path can be judged as one resource and served as another:

* percent-escapes are decoded once (``%2e%2e`` is ``..``, ``%61dmin`` is ``admin``), and the bytes
  must be valid UTF-8 (overlong forms such as ``%C0%AF`` are invalid);
* what backends disagree on is refused rather than guessed: an encoded ``/`` (``%2F``), any ``\\``
  (raw or ``%5C``), a ``#`` (raw or ``%23``), an encoded ``?`` (``%3F``), a double-encoded
  escape (``%2561`` decodes to ``%61``, which a second decoder would read as ``a``), control and
  other non-printable characters, a non-ASCII character that Unicode compatibility normalisation
  (NFKC) turns into ``/``, ``\\``, a ``.``/``..`` segment or an escape (fullwidth ``／``, ``．．``,
  ``％``), and, unless allowed, ``;`` (and even then ``..;``-style segments);
* ``.`` and ``..`` segments are resolved (never above the root), doubled slashes are merged and a
  trailing slash is dropped;
* the backend receives the canonical path re-encoded with one fixed rule (RFC 3986 ``pchar``
  characters bare, everything else ``%XX`` of its UTF-8 bytes), so decoding what the backend
  receives once -- or any number of times -- gives exactly the path the policy judged.

Written by hand: the standard library's ``urllib.parse`` decodes permissively (invalid escapes
pass through, bad UTF-8 is replaced), which is exactly the ambiguity this module removes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

__all__ = ["CanonicalPath", "PathError", "canonicalize", "encode_segment"]

_ESCAPE: Final = re.compile(rb"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE: Final = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_ESCAPE_TEXT: Final = re.compile(r"%[0-9A-Fa-f]{2}")
# RFC 3986 pchar minus "%": unreserved, sub-delims, ":" and "@"
_PCHAR_SAFE: Final = "!$&'()*+,;=:@-._~"


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
    if segment.isascii() and segment.isalnum():  # letters and digits only: nothing to encode
        return segment
    return quote(segment, safe=_PCHAR_SAFE)


def _unescape(match: re.Match[bytes]) -> bytes:
    return bytes((int(match.group(1), 16),))


def _decode_piece(piece: bytes) -> bytes | PathError:
    """One ``/``-separated piece of a raw path with its escapes decoded, or why it is refused."""
    decoded = _ESCAPE.sub(_unescape, piece)
    if b"/" in decoded or b"\\" in decoded:
        return PathError("an encoded '/' or '\\' (%2F, %5C) in the path")
    if b"?" in decoded or b"#" in decoded:
        return PathError("an encoded '?' or '#' (%3F, %23) in the path")
    if b"%" in decoded and _ESCAPE.search(decoded):
        return PathError("a double-encoded escape (%25 followed by two hexadecimal digits) in the path")
    return decoded


def _segment_problem(text: str, allow_semicolon: bool) -> str | None:
    """Why a decoded segment (not empty, not "." or "..") is refused, or None."""
    if not text.isprintable():  # C0/C1 controls, DEL, format characters, unassigned, private use
        return "a control or non-printable character in the path"
    if "?" in text or "#" in text:  # only reachable when a caller passes a query or fragment
        return "a '?' or '#' in the path"
    if ";" in text:
        if not allow_semicolon:
            return "a ';' in the path (backends read it as a parameter separator)"
        if text.split(";", 1)[0] in ("", ".", ".."):
            return "a '.', '..' or empty segment before a ';' (read as a dot segment by some backends)"
    if not text.isascii():
        folded = unicodedata.normalize("NFKC", text)
        if (
            "/" in folded
            or "\\" in folded
            or folded in (".", "..")
            or ("%" in folded and _ESCAPE_TEXT.search(folded))
        ):
            return "a character that Unicode normalisation (NFKC) turns into '/', '\\', '.' or '%'"
    return None


def canonicalize(raw_path: bytes, *, allow_semicolon: bool = False) -> CanonicalPath | PathError:
    """The canonical form of a raw (still percent-encoded) path, or why it is refused.

    ``raw_path`` is the request target's path: everything before the first ``?``.
    """
    if not raw_path.startswith(b"/"):
        return PathError("the request target is not an absolute path")
    if b"\\" in raw_path:
        return PathError("a backslash in the path")
    if b"#" in raw_path:
        return PathError("a '#' in the request target (a fragment is never sent to a server)")
    pieces = raw_path.split(b"/")
    if b"%" in raw_path:
        if _BAD_ESCAPE.search(raw_path):
            return PathError("a '%' is not followed by two hexadecimal digits")
        decoded_pieces: list[bytes] = []
        for piece in pieces:
            if b"%" in piece:
                decoded = _decode_piece(piece)
                if isinstance(decoded, PathError):
                    return decoded
                decoded_pieces.append(decoded)
            else:
                decoded_pieces.append(piece)
        pieces = decoded_pieces
    segments: list[str] = []
    for piece in pieces:
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
        problem = _segment_problem(text, allow_semicolon)
        if problem is not None:
            return PathError(problem)
        segments.append(text)
    return CanonicalPath(tuple(segments))
