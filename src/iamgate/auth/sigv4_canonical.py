"""SigV4 canonicalisation: the pure functions that turn wire bytes into the strings AWS signs.

Each function reproduces one step of what the real signers compute (botocore ``SigV4Auth``,
requests-aws4auth >= 1.0) and what AWS recomputes on the server (the canonical request, the
string to sign and the key derivation of Signature Version 4). Nothing here decides anything:
:mod:`iamgate.auth.sigv4` calls these, compares, and raises.

Inputs are the bytes exactly as received. Header values are read as ISO-8859-1, because that is
how ``http.client`` (under botocore, urllib3 and requests) writes a ``str`` header value onto the
wire, so decoding them that way gives back the very string the client signed. Paths and queries
are read as UTF-8 (clients percent-encode; a raw UTF-8 request target, as curl sends it, is the
string botocore signed before encoding).
"""

from __future__ import annotations

import hashlib
import hmac
import string
from collections.abc import Iterable, Sequence
from typing import Final
from urllib.parse import quote, unquote_to_bytes

__all__ = [
    "ALGORITHM",
    "EMPTY_SHA256",
    "SIGNATURE_PARAM",
    "TERMINATOR",
    "UNSIGNED_PAYLOAD",
    "canonical_headers",
    "canonical_query_raw",
    "canonical_query_spec",
    "canonical_request",
    "canonical_uri",
    "derive_signing_key",
    "form_decode",
    "header_value",
    "query_param_name",
    "remove_dot_segments",
    "sign",
    "string_to_sign",
]

ALGORITHM: Final = "AWS4-HMAC-SHA256"
TERMINATOR: Final = "aws4_request"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()
SIGNATURE_PARAM: Final = "X-Amz-Signature"

# RFC 3986 unreserved characters besides ALPHA / DIGIT (urllib's quote keeps those bare anyway)
_QUERY_SAFE: Final = "-_.~"
# non-S3 canonical URI: everything but unreserved characters and "/" is percent-encoded
_PATH_SAFE: Final = "/~"
# the characters quote(..., safe=_PATH_SAFE) never escapes: RFC 3986's unreserved ones and "/"
_PATH_UNCHANGED: Final = string.ascii_letters + string.digits + "-._~/"


def remove_dot_segments(path: str) -> str:
    """Remove ``.``/``..`` segments and collapse repeated slashes, exactly as botocore does.

    botocore ``utils.remove_dot_segments`` (RFC 3986 5.2.4 plus AWS's rule that empty segments
    disappear): a leading ``/`` is kept, a trailing ``/`` is kept when anything is left, and
    ``..`` above the root is dropped. An empty path is ``/`` (botocore ``normalize_url_path``).
    """
    if is_plain_path(path):
        return path
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if kept:
                kept.pop()
            continue
        kept.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and kept else ""
    return first + "/".join(kept) + last


def is_plain_path(path: str) -> bool:
    """Whether :func:`remove_dot_segments` leaves ``path`` as it is: it starts with ``/`` and no
    segment is empty (but the last) or begins with a dot (``.``, ``..``, and some that are
    neither, which then take the long way)."""
    return path[:1] == "/" and "//" not in path and "/." not in path


def canonical_uri(raw_path: bytes) -> str:
    """The canonical URI of a non-S3 request: the *wire* path normalised, then encoded again.

    A wire ``%20`` becomes ``%2520`` and a wire ``:`` becomes ``%3A`` ("double encoding", spec
    4.2; botocore ``SigV4Auth._normalize_url_path`` = ``quote(normalize_url_path(path),
    safe='/~')``).
    """
    path = remove_dot_segments(raw_path.decode("utf-8", errors="replace"))
    if not path.rstrip(_PATH_UNCHANGED):  # what quote leaves as it is, without its cost
        return path
    return quote(path, safe=_PATH_SAFE)


def _split_query(raw_query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in raw_query.split("&"):
        name, _, value = part.partition("=")
        pairs.append((name, value))
    return pairs


def form_decode(text: str) -> bytes:
    # "+" in a wire query is a space (requests-aws4auth form-decodes, and botocore's
    # params put "+" on the wire for a space); %XX sequences become their bytes
    return unquote_to_bytes(text.replace("+", " "))


def query_param_name(raw_name: str) -> str:
    """The decoded name of a query parameter, as compared against ``X-Amz-*`` names."""
    return form_decode(raw_name).decode("utf-8", errors="replace")


def canonical_query_spec(raw_query: bytes, *, drop_signature: bool = False) -> str:
    """The canonical query string of the SigV4 specification.

    Every name and value is form-decoded (``+`` is a space) and re-encoded with RFC 3986 rules
    (unreserved characters bare, everything else ``%XX`` with upper-case hex), the pairs are
    sorted by encoded name and then encoded value, and a name without ``=`` gets an empty value.
    Empty pieces between ``&`` are skipped (Python ``parse_qs``, which requests-aws4auth uses).
    ``drop_signature`` removes ``X-Amz-Signature`` (presigned requests).
    """
    text = raw_query.decode("utf-8", errors="replace")
    pairs = []
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        decoded_name = form_decode(name)
        if drop_signature and decoded_name == SIGNATURE_PARAM.encode():
            continue
        pairs.append((quote(decoded_name, safe=_QUERY_SAFE), quote(form_decode(value), safe=_QUERY_SAFE)))
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def canonical_query_raw(raw_query: bytes, *, drop_signature: bool = False) -> str:
    """The canonical query string botocore signs for a query written into the URL.

    botocore ``SigV4Auth._canonical_query_string_url``: the raw ``name=value`` pieces are sorted
    as they are, *without* decoding or re-encoding (so ``a=x+y`` stays ``a=x+y``), and a piece
    without ``=`` gets ``=``. Empty pieces are kept, as botocore keeps them.
    """
    if not raw_query:
        return ""
    text = raw_query.decode("utf-8", errors="replace")
    pairs = [
        (name, value)
        for name, value in _split_query(text)
        if not (drop_signature and query_param_name(name) == SIGNATURE_PARAM)
    ]
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def header_value(raw_values: Iterable[bytes]) -> str:
    """One canonical header value: each value trimmed, inner whitespace runs collapsed to one
    space (botocore ``' '.join(value.split())``), repeated headers joined with ``,`` in arrival
    order."""
    return ",".join(" ".join(value.decode("latin-1").split()) for value in raw_values)


def canonical_headers(
    headers: Sequence[tuple[bytes, bytes]], signed: Sequence[str]
) -> tuple[str, str | None]:
    """The canonical header block (each line ``name:value\\n``) for the ``signed`` names.

    Returns ``(block, missing)``; ``missing`` is the first signed name the request does not
    carry (the caller rejects such a request), else ``None``.
    """
    by_name: dict[str, list[bytes]] = {}
    for raw_name, value in headers:
        by_name.setdefault(raw_name.decode("latin-1").lower(), []).append(value)
    lines = []
    for name in signed:
        values = by_name.get(name.lower())
        if values is None:
            return "", name
        lines.append(f"{name.lower()}:{header_value(values)}\n")
    return "".join(lines), None


def canonical_request(
    method: str, uri: str, query: str, header_block: str, signed: Sequence[str], payload_hash: str
) -> str:
    """Join the six parts. The header block already ends with a newline, which gives the blank
    line of the specification (botocore appends ``'\\n'`` to its joined header lines)."""
    return "\n".join((method, uri, query, header_block, ";".join(signed), payload_hash))


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    """``AWS4-HMAC-SHA256 \\n <X-Amz-Date> \\n <scope> \\n hex(sha256(canonical request))``."""
    # surrogatepass: a method string the caller decoded oddly must not make this raise
    digest = hashlib.sha256(canonical.encode("utf-8", errors="surrogatepass")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def derive_signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """kDate = HMAC("AWS4" + secret, date); then region, service and ``aws4_request``."""
    key = hmac.new(f"AWS4{secret}".encode(), date.encode("utf-8"), hashlib.sha256).digest()
    for part in (region, service, TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def sign(signing_key: bytes, to_sign: str) -> str:
    """The lower-case hex HMAC-SHA256 of the string to sign."""
    # hmac.digest is the one-shot C path (OpenSSL's HMAC); hmac.new builds a Python HMAC object
    return hmac.digest(signing_key, to_sign.encode("utf-8", errors="surrogatepass"), "sha256").hex()
