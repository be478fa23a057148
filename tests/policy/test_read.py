"""The positioned JSON reader: positions, duplicate keys, syntax errors, limits."""

from __future__ import annotations

import pytest

from iamgate.policy._json import from_python, read_json


def test_positions_and_pointers() -> None:
    text = '{\n  "a": [1, {"b~c/d": "x"}],\n  "n": 1.50\n}'
    result = read_json(text)
    assert result.diagnostics == ()
    root = result.root
    assert root is not None
    members = {k: n for k, _, n in root.members()}
    inner = members["a"].items()[1]
    ((key, _, leaf),) = inner.members()
    assert key == "b~c/d"
    assert leaf.pointer == "/a/1/b~0c~1d"
    loc = result.lines.location(leaf.pointer, leaf.offset)
    assert (loc.line, loc.column) == (2, 22)
    assert members["n"].value == "1.50"  # raw number text is kept


def test_duplicate_keys_are_all_reported_and_first_is_kept() -> None:
    text = '{"Effect": "Allow", "x": {"k": 1, "k": 2, "k": 3}, "Effect": "Deny"}'
    result = read_json(text)
    codes = [d.code for d in result.diagnostics]
    assert codes == ["policy.read.duplicate-key"] * 3
    pointers = sorted(d.location.pointer for d in result.diagnostics)
    assert pointers == ["/Effect", "/x/k", "/x/k"]
    assert result.root is not None
    assert result.root.to_python() == {"Effect": "Allow", "x": {"k": 1}}


@pytest.mark.parametrize(
    ("text", "code", "column"),
    [
        ("", "policy.read.empty", 1),
        ("{", "policy.read.syntax", 2),
        ('{"a" 1}', "policy.read.syntax", 6),
        ('{"a": 1,}', "policy.read.syntax", 9),
        ("[1, 2", "policy.read.syntax", 6),
        ('{"a": tru}', "policy.read.syntax", 7),
        ('{"a": NaN}', "policy.read.syntax", 7),
        ('{"a": 1} x', "policy.read.trailing-data", 10),
        ('{"a": "\\x"}', "policy.read.invalid-string", 8),
        ('{"a": "\\ud800"}', "policy.read.invalid-string", 7),
        ('{"a": "line\nbreak"}', "policy.read.invalid-string", 12),
    ],
)
def test_syntax_errors_are_located(text: str, code: str, column: int) -> None:
    result = read_json(text)
    assert result.root is None
    assert [d.code for d in result.diagnostics] == [code]
    assert result.diagnostics[0].location.column == column


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    result = read_json("[" * 100_000)
    assert result.root is None
    assert result.diagnostics[0].code == "policy.read.too-deep"


def test_from_python_rejects_what_json_cannot_hold() -> None:
    result = from_python({"a": {1, 2}, "b": float("nan"), 3: "x"})
    assert result.root is None
    assert len(result.diagnostics) == 3
    assert {d.location.pointer for d in result.diagnostics} == {"/a", "/b", ""}
