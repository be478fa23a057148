"""How large a YAML document may be: values written out in the file are read however many there
are (a gateway of 10,000 APIs has 1.2 million), while aliases may add at most MAX_NODES values
(a "billion laughs" document of a few lines is refused without being expanded)."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from iamgate.config import _yaml
from iamgate.config._yaml import MAX_NODES, YamlDocument, load_yaml


def test_a_file_of_more_values_than_the_alias_budget_reads() -> None:
    text = "values: [" + ", ".join(str(i) for i in range(MAX_NODES + 50_000)) + "]\n"
    doc = load_yaml(text)
    assert doc.diagnostics == ()
    assert isinstance(doc.data, dict)
    assert len(doc.data["values"]) == MAX_NODES + 50_000
    # read from the parser's events, without the node tree (the memory of a large file)
    assert _yaml._read_events(text)[0] is True


def test_aliases_that_add_more_than_the_budget_are_refused() -> None:
    # 10 x 10 x ... : a few lines that would expand to 10^7 values
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 7):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    doc = load_yaml("\n".join(lines) + "\n")
    assert doc.data is None
    assert [d.code for d in doc.diagnostics] == ["config.yaml.too-large"]
    assert "aliases add more than 200,000 values" in doc.diagnostics[0].message


def test_aliases_within_the_budget_expand_and_each_copy_has_its_place() -> None:
    text = "base: &b {x: 1, y: [1, 2]}\nfirst: *b\nsecond:\n  <<: *b\n  z: 3\n"
    doc = load_yaml(text)
    assert doc.diagnostics == ()
    assert doc.data == {
        "base": {"x": 1, "y": [1, 2]},
        "first": {"x": 1, "y": [1, 2]},
        "second": {"x": 1, "y": [1, 2], "z": 3},
    }
    assert isinstance(doc.data, dict)
    assert doc.data["first"] is not doc.data["base"]  # a copy: changing one never changes the other
    # an alias is located where the aliased value is written
    assert (doc.positions.location("/first/x").line, doc.positions.location("/second/z").line) == (1, 5)


def _by_nodes(text: str) -> YamlDocument:
    """The node reader alone (what reads a document the event reader leaves to it)."""
    events = _yaml._read_events
    _yaml._read_events = lambda _text: (False, None)
    try:
        return load_yaml(text)
    finally:
        _yaml._read_events = events


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
)
_data = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(_data, st.booleans())
def test_the_event_reader_reads_what_the_node_reader_reads(data: object, shared: bool) -> None:
    """Any document, with aliases (the same object twice is written as an anchor and an alias):
    the same data and the same diagnostics either way."""
    document = {"a": data, "b": data if shared else None, "c": [data, data] if shared else []}
    text = yaml.safe_dump(document, allow_unicode=True)
    fast, slow = load_yaml(text), _by_nodes(text)
    assert fast.data == slow.data
    assert [d.render() for d in fast.diagnostics] == [d.render() for d in slow.diagnostics]
    assert fast.positions.location("/a").line == slow.positions.location("/a").line
