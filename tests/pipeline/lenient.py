"""A model of a *lenient* backend: how the sloppiest common servers read a request target.

Used by the canonicaliser's properties and by the end-to-end path-attack corpus: whatever the
gateway forwards must mean the same path to this backend as it meant to the policy. The model
does everything that has let a path through a gateway at some point:

* decodes percent-escapes again and again until nothing changes (double-decoding servers and
  proxy chains), and re-splits the result at ``?`` and ``#`` each time (a decoded path that is
  parsed as a URL again, e.g. nginx ``proxy_pass`` with ``$uri``);
* stops at a NUL byte (C string handling);
* reads ``\\`` as ``/`` (Windows servers and many frameworks);
* strips ``;params`` from every segment (Tomcat, Jetty, Spring), then
* merges empty segments, resolves ``.`` and ``..`` (never above the root) and drops a trailing
  slash;
* optionally case-folds (a case-insensitive backend) -- only where a test says so, because the
  gateway is case-sensitive like API Gateway and such backends must be told (docs/security.md).
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

__all__ = ["lenient_segments"]


def _cut(raw: bytes) -> bytes:
    return raw.split(b"?", 1)[0].split(b"#", 1)[0]


def lenient_segments(target: str | bytes, *, strip_params: bool = True, casefold: bool = False) -> list[str]:
    raw = _cut(target.encode("latin-1") if isinstance(target, str) else target)
    for _ in range(16):
        decoded = _cut(unquote_to_bytes(raw))
        if decoded == raw:
            break
        raw = decoded
    raw = raw.split(b"\x00", 1)[0]
    text = raw.decode("utf-8", "replace").replace("\\", "/")
    out: list[str] = []
    for piece in text.split("/"):
        segment = piece.split(";", 1)[0] if strip_params else piece
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment.casefold() if casefold else segment)
    return out
