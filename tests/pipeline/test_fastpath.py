"""The route stage's fast path for plain paths agrees with the canonicaliser."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from iamgate.pipeline.stages import _PLAIN_PATH, canonical_segments
from iamgate.routing.paths import PathError, canonicalize

ALPHABET = st.sampled_from(
    [*list("abcAZ09-_~!$&'()*+,=:@./%;\\"), "%2e", "%2F", "%41", "%c3%a9", "%zz", "//"]
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(ALPHABET, max_size=20).map(lambda parts: "/" + "".join(parts)), st.booleans())
def test_fast_path_matches_canonicalize(path: str, semicolon: bool) -> None:
    raw = path.encode()
    expected = canonicalize(raw, allow_semicolon=semicolon)
    got = canonical_segments(raw, semicolon)
    if isinstance(expected, PathError):
        assert isinstance(got, PathError)
        assert _PLAIN_PATH.fullmatch(raw) is None
    else:
        assert got == expected.segments


def test_fast_path_is_taken_for_plain_paths() -> None:
    for raw in (b"/", b"/prod", b"/prod/pets/123", b"/prod/files/a.json", b"/prod/x/", b"/prod/..x/a"):
        assert _PLAIN_PATH.fullmatch(raw), raw
    for raw in (
        b"/prod/../x",
        b"/prod//x",
        b"/prod/./x",
        b"/prod/%41",
        b"/prod/a;b",
        b"/prod/a\\b",
        b"/prod/..",
    ):
        assert not _PLAIN_PATH.fullmatch(raw), raw


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c"]), max_size=5))
def test_route_walk_agrees_with_search(segments: list[str]) -> None:
    from iamgate.routing.tree import ResourceTree

    tree: ResourceTree[str] = ResourceTree()
    for path in ("/a", "/a/b", "/a/{x}/c", "/{y}", "/{y}/b/{z}", "/a/b/{rest+}", "/{any+}", "/b/{x}"):
        tree.add(path, "GET", path)
    segs = tuple(segments)
    searched = tree._find(tree._root, segs, 0, {})
    walked = tree._walk(segs)
    if walked is not None:
        assert searched is not None
        assert walked[0] is searched[0]
        assert walked[1] == searched[1]
