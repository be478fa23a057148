"""The canonical path: one form for the policy decision and for the backend (routing/paths.py).

Tables pin what each spelling becomes or why it is refused; Hypothesis properties pin the
invariants the gateway relies on: the canonical form is a fixed point (canonicalising the path
the backend receives gives the same segments), the encoded form has no ambiguous escapes or dot
segments, decoding it -- once or any number of times -- gives exactly the judged path, a lenient
backend reads it as the same path, and no input makes the canonicaliser raise.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from iamgate.routing.paths import CanonicalPath, PathError, canonicalize, encode_segment
from tests.pipeline.lenient import lenient_segments

# --- tables ----------------------------------------------------------------------------------

ACCEPTED = [
    # (raw path, canonical segments)
    (b"/", ()),
    (b"//", ()),
    (b"/prod", ("prod",)),
    (b"/prod/", ("prod",)),
    (b"/prod/pets/7", ("prod", "pets", "7")),
    (b"/prod//pets///7//", ("prod", "pets", "7")),
    (b"/prod/./pets/.", ("prod", "pets")),
    (b"/prod/x/../pets", ("prod", "pets")),
    (b"/prod/x/y/../../pets", ("prod", "pets")),
    (b"/..", ()),
    (b"/../../prod", ("prod",)),
    (b"/prod/../../../admin", ("admin",)),
    (b"/prod/%2e/admin", ("prod", "admin")),
    (b"/prod/%2E%2e/admin", ("admin",)),
    (b"/prod/.%2e/admin", ("admin",)),
    (b"/prod/%2e./admin", ("admin",)),
    (b"/prod/%61dmin", ("prod", "admin")),
    (b"/prod/%61%64%6D%69%6e", ("prod", "admin")),
    (b"/%70rod/admin", ("prod", "admin")),
    (b"/prod/ADMIN", ("prod", "ADMIN")),  # case-sensitive, as API Gateway
    (b"/prod/admin.", ("prod", "admin.")),  # a different resource, not a dot segment
    (b"/prod/admin..", ("prod", "admin..")),
    (b"/prod/...", ("prod", "...")),
    (b"/prod/admin%20", ("prod", "admin ")),
    (b"/prod/a+b", ("prod", "a+b")),  # '+' is not a space in a path
    (b"/prod/%25zz", ("prod", "%zz")),  # a literal '%' not followed by hex digits
    (b"/prod/100%25", ("prod", "100%")),
    (b"/prod/caf%C3%A9", ("prod", "café")),
    (b"/prod/caf\xc3\xa9", ("prod", "café")),  # raw UTF-8 (llhttp refuses it earlier anyway)
    (b"/prod/%EF%BD%81dmin", ("prod", "ａdmin")),  # fullwidth 'a' is not folded into 'admin'
    (b"/prod/%E2%88%95", ("prod", "∕")),  # DIVISION SLASH: NFKC keeps it, it is not '/'
    (b"/prod/%E5%95%8F%E9%A1%8C%EF%BC%9F", ("prod", "問題？")),  # fullwidth '?' in CJK text is fine
    (b"/prod/a:b@c", ("prod", "a:b@c")),
    (b"/prod/~user", ("prod", "~user")),
    (b"/prod/%7Euser", ("prod", "~user")),
]

REFUSED = [
    # (raw path, words of the reason)
    (b"", "not an absolute path"),
    (b"*", "not an absolute path"),
    (b"prod/admin", "not an absolute path"),
    (b"http://h/prod", "not an absolute path"),
    (b"/prod/admin%2fusers", "encoded '/'"),
    (b"/prod/admin%2Fusers", "encoded '/'"),
    (b"/prod/%2F", "encoded '/'"),
    (b"/prod/..%2fadmin", "encoded '/'"),
    (b"/prod/admin%5cusers", "encoded '/' or '\\'"),
    (b"/prod/admin\\users", "backslash"),
    (b"/prod/admin%3fx", "encoded '?'"),
    (b"/prod/admin%3Fx", "encoded '?'"),
    (b"/prod/admin%23x", "'#'"),
    (b"/prod/x#/../admin", "fragment"),
    (b"/prod/a?b", "'?'"),
    (b"/prod/%2561dmin", "double-encoded"),
    (b"/prod/%2561%2564min", "double-encoded"),
    (b"/prod/%252e%252e/admin", "double-encoded"),
    (b"/prod/admin%252f", "double-encoded"),
    (b"/prod/%", "two hexadecimal digits"),
    (b"/prod/%4", "two hexadecimal digits"),
    (b"/prod/%zz", "two hexadecimal digits"),
    (b"/prod/%%32%65", "two hexadecimal digits"),
    (b"/prod/admin%00", "control"),
    (b"/prod/admin%0a", "control"),
    (b"/prod/admin%0D%0AX-Injected:%201", "control"),
    (b"/prod/admin%09", "control"),
    (b"/prod/admin%7f", "control"),
    (b"/prod/admin\x7f", "control"),
    (b"/prod/admin%C2%85", "control"),  # NEL, a C1 control
    (b"/prod/admin%C2%A0", "non-printable"),  # NO-BREAK SPACE
    (b"/prod/%E2%80%8Badmin", "non-printable"),  # ZERO WIDTH SPACE
    (b"/prod/%E2%80%AEnimda", "non-printable"),  # RIGHT-TO-LEFT OVERRIDE
    (b"/prod/%EF%BF%BF", "non-printable"),  # a noncharacter
    (b"/prod/%EE%80%80", "non-printable"),  # private use
    (b"/prod/%c0%ae%c0%ae/admin", "UTF-8"),  # overlong '.'
    (b"/prod/%c0%afadmin", "UTF-8"),  # overlong '/'
    (b"/prod/%e0%80%ae", "UTF-8"),  # overlong 3-byte '.'
    (b"/prod/%f0%80%80%af", "UTF-8"),  # overlong 4-byte '/'
    (b"/prod/%ed%a0%80", "UTF-8"),  # a UTF-16 surrogate
    (b"/prod/%f4%90%80%80", "UTF-8"),  # beyond U+10FFFF
    (b"/prod/%ff", "UTF-8"),
    (b"/prod/%C3", "UTF-8"),  # truncated sequence
    (b"/prod/\xff", "UTF-8"),
    (b"/prod/admin;jsessionid=x", "';'"),
    (b"/prod/admin;/users", "';'"),
    (b"/prod/admin%3b", "';'"),
    (b"/prod/%EF%BC%8Fadmin", "NFKC"),  # FULLWIDTH SOLIDUS -> '/'
    (b"/prod/%EF%BC%BCadmin", "NFKC"),  # FULLWIDTH REVERSE SOLIDUS -> '\'
    (b"/prod/secret/%EF%BC%8E", "NFKC"),  # FULLWIDTH FULL STOP -> '.'
    (b"/prod/%EF%BC%8E%EF%BC%8E/admin", "NFKC"),  # -> '..'
    (b"/prod/%EF%B9%92./admin", "NFKC"),  # SMALL FULL STOP + '.' -> '..'
    (b"/prod/%EF%BC%85%EF%BC%94%EF%BC%91dmin", "NFKC"),  # fullwidth '%41' -> '%41'
    # a refused segment refuses the path even when a later '..' would remove it
    (b"/prod/%ff/..", "UTF-8"),
    (b"/prod/admin%00/../x", "control"),
]

SEMICOLON_ALLOWED = [
    (b"/prod/admin;jsessionid=x", ("prod", "admin;jsessionid=x")),
    (b"/prod/a;v=1/b", ("prod", "a;v=1", "b")),
    (b"/prod/admin%3Bx", ("prod", "admin;x")),
]

SEMICOLON_DOT_SEGMENTS = [b"/prod/..;/admin", b"/prod/x/..;jsessionid=1/admin", b"/prod/.;x", b"/prod/;x/y"]

ENCODED = [
    # (decoded segment, encoded segment)
    ("admin", "admin"),
    ("a b", "a%20b"),
    ("a/b", "a%2Fb"),
    ("a\\b", "a%5Cb"),
    ("a?b", "a%3Fb"),
    ("a#b", "a%23b"),
    ("%61", "%2561"),
    ("100%", "100%25"),
    ('"<>`{}|^', "%22%3C%3E%60%7B%7D%7C%5E"),
    ("café", "caf%C3%A9"),
    ("ａdmin", "%EF%BD%81dmin"),
    ("a;b=c", "a;b=c"),
    ("-._~", "-._~"),
    ("!$&'()*+,=:@", "!$&'()*+,=:@"),
    ("\x00\n", "%00%0A"),
]


@pytest.mark.parametrize(("raw", "segments"), ACCEPTED, ids=[repr(r)[2:-1] for r, _ in ACCEPTED])
def test_accepted_paths_canonicalise_to_these_segments(raw: bytes, segments: tuple[str, ...]) -> None:
    result = canonicalize(raw)
    assert result == CanonicalPath(segments)
    assert result.decoded == "/" + "/".join(segments)


@pytest.mark.parametrize(("raw", "reason"), REFUSED, ids=[repr(r)[2:-1] or "empty" for r, _ in REFUSED])
def test_ambiguous_paths_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    result = canonicalize(raw)
    assert isinstance(result, PathError), result
    assert reason in result.reason
    if "';'" not in reason:  # allow_semicolon_in_path is about ';' only
        assert isinstance(canonicalize(raw, allow_semicolon=True), PathError)


@pytest.mark.parametrize(("raw", "segments"), SEMICOLON_ALLOWED)
def test_semicolons_pass_only_when_allowed(raw: bytes, segments: tuple[str, ...]) -> None:
    assert isinstance(canonicalize(raw), PathError)
    assert canonicalize(raw, allow_semicolon=True) == CanonicalPath(segments)


@pytest.mark.parametrize("raw", SEMICOLON_DOT_SEGMENTS)
def test_dot_segments_with_parameters_are_refused_even_when_semicolons_are_allowed(raw: bytes) -> None:
    # Tomcat reads "..;x" as "..": allowing it would let /x/..;/admin be judged as a path under x
    result = canonicalize(raw, allow_semicolon=True)
    assert isinstance(result, PathError)
    assert "before a ';'" in result.reason


@pytest.mark.parametrize(("segment", "encoded"), ENCODED)
def test_encode_segment(segment: str, encoded: str) -> None:
    assert encode_segment(segment) == encoded
    assert unquote_to_bytes(encoded).decode("utf-8") == segment


def test_the_root_keeps_its_slash() -> None:
    root = canonicalize(b"/")
    assert isinstance(root, CanonicalPath)
    assert (root.decoded, root.encoded) == ("/", "/")


def test_encoded_form_of_a_tricky_path() -> None:
    result = canonicalize(b"/prod/x/%2e%2e/caf%c3%a9/a%20b/100%25/%7E~/ADMIN//")
    assert isinstance(result, CanonicalPath)
    assert result.segments == ("prod", "café", "a b", "100%", "~~", "ADMIN")
    assert result.encoded == "/prod/caf%C3%A9/a%20b/100%25/~~/ADMIN"


# --- properties -----------------------------------------------------------------------------

# Pieces that exercise every rule: dot segments in every spelling, escapes of the separators,
# double encoding, bad and overlong UTF-8, controls, semicolons, lookalikes, stray '%'.
PIECES = [
    "a", "admin", "prod", "A", "é", "~", "+", " ",
    ".", "..", "", "%2e", "%2E", ".%2e", "%2e%2e",
    "%2f", "%2F", "%5c", "\\", "%3f", "?", "%23", "#",
    "%25", "%2561", "%252e", "%61", "%41", "%7e", "%20", "%",
    "%4", "%zz", ";", ";x=1", "%3b", "%00", "%0a", "%7f", "%c2%85",
    "%c0%ae", "%c0%af", "%ff", "%c3", "%c3%a9", "%e2%80%8b",
    "%ef%bd%81", "%ef%bc%8f", "%ef%bc%8e", "%ef%bc%85", "%e2%88%95",
]  # fmt: skip
_segment = st.lists(st.sampled_from(PIECES), max_size=4).map("".join)
tricky_paths = st.lists(_segment, max_size=8).map(lambda segs: ("/" + "/".join(segs)).encode("utf-8"))
any_bytes = st.binary(max_size=64) | st.binary(max_size=64).map(lambda b: b"/" + b) | tricky_paths

_AMBIGUOUS_ESCAPE = re.compile(r"%(2[fF]|5[cC]|2[eE]|3[fF]|23|00)|%25[0-9A-Fa-f]{2}")


def _reference(raw: bytes) -> tuple[str, ...]:
    """An independent, naive reading of an accepted path: decode each piece, resolve dots."""
    out: list[str] = []
    for piece in raw.split(b"/"):
        text = unquote_to_bytes(piece).decode("utf-8")
        if text in ("", "."):
            continue
        if text == "..":
            if out:
                out.pop()
            continue
        out.append(text)
    return tuple(out)


@given(any_bytes, st.booleans())
@example(b"/prod/%2561dmin", False)
@example(b"/prod/%ef%bc%8f", False)
def test_never_raises_and_answers_a_path_or_a_reason(raw: bytes, allow_semicolon: bool) -> None:
    result = canonicalize(raw, allow_semicolon=allow_semicolon)
    assert isinstance(result, CanonicalPath | PathError)
    if isinstance(result, PathError):
        assert result.reason


@given(any_bytes, st.booleans())
def test_canonical_segments_are_never_empty_or_dot_segments(raw: bytes, allow_semicolon: bool) -> None:
    result = canonicalize(raw, allow_semicolon=allow_semicolon)
    if isinstance(result, CanonicalPath):
        for segment in result.segments:
            assert segment not in ("", ".", "..")
            assert "/" not in segment
            assert "\\" not in segment
            assert segment.isprintable()


@given(any_bytes, st.booleans())
def test_canonical_form_is_idempotent(raw: bytes, allow_semicolon: bool) -> None:
    # what the backend receives, canonicalised again, is the same path: nothing left to resolve
    result = canonicalize(raw, allow_semicolon=allow_semicolon)
    if isinstance(result, CanonicalPath):
        assert canonicalize(result.encoded.encode("ascii"), allow_semicolon=allow_semicolon) == result


@given(any_bytes, st.booleans())
def test_encoded_form_has_no_ambiguous_escape_or_dot_segment(raw: bytes, allow_semicolon: bool) -> None:
    result = canonicalize(raw, allow_semicolon=allow_semicolon)
    if isinstance(result, CanonicalPath):
        encoded = result.encoded
        assert encoded.isascii()
        assert _AMBIGUOUS_ESCAPE.search(encoded) is None, encoded
        assert not any(ch in encoded for ch in "\\?# \x00")
        pieces = encoded.split("/")[1:]
        if pieces != [""]:  # the root is "/"
            assert all(p not in ("", ".", "..") for p in pieces), encoded


@given(any_bytes, st.booleans())
def test_decoding_the_encoded_form_once_or_repeatedly_gives_the_judged_path(
    raw: bytes, allow_semicolon: bool
) -> None:
    result = canonicalize(raw, allow_semicolon=allow_semicolon)
    if isinstance(result, CanonicalPath):
        once = unquote_to_bytes(result.encoded)
        assert once.decode("utf-8") == result.decoded
        assert unquote_to_bytes(once) == once  # a second decoder changes nothing


@given(any_bytes)
def test_a_lenient_backend_reads_the_encoded_form_as_the_judged_path(raw: bytes) -> None:
    result = canonicalize(raw)
    if isinstance(result, CanonicalPath):
        assert tuple(lenient_segments(result.encoded)) == result.segments


@given(any_bytes, st.booleans())
def test_accepted_paths_agree_with_a_naive_decoder(raw: bytes, allow_semicolon: bool) -> None:
    result = canonicalize(raw, allow_semicolon=allow_semicolon)
    if isinstance(result, CanonicalPath):
        assert result.segments == _reference(raw)


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=20))
def test_encode_segment_round_trips_and_never_emits_a_separator(segment: str) -> None:
    encoded = encode_segment(segment)
    assert encoded.isascii()
    assert not any(ch in encoded for ch in "/?#\\ ")
    assert unquote_to_bytes(encoded).decode("utf-8") == segment


def test_the_lenient_model_sees_through_every_spelling() -> None:
    # the model must be lenient, or the properties above and the attack corpus prove nothing
    for target in [
        "/admin",
        "/admin/",
        "//admin",
        "/x/../admin",
        "/%61dmin",
        "/%2561dmin",
        "/%252561dmin",
        "/x/%2e%2e/admin",
        "/x%2f..%2fadmin",
        "/x%5c..%5cadmin",
        "/x\\..\\admin",
        "/admin;jsessionid=1",
        "/x/..;/admin",
        "/admin%3fx",
        "/admin%23x",
        "/admin%00.png",
        "/admin?x=/../y",
    ]:
        assert lenient_segments(target) == ["admin"], target
    assert lenient_segments("/ADMIN", casefold=True) == ["admin"]
    assert lenient_segments("/ADMIN") == ["ADMIN"]
    assert lenient_segments("/admin;x", strip_params=False) == ["admin;x"]
