"""Characters a configuration cannot hold (issue 14, item 13d): what YAML forbids in a stream
(a NUL, other control characters, U+FFFE) and what an escape turns into a character no store can
keep (``"\\0"``, ``"\\u0000"``, a lone surrogate) are located errors of the loader
(``config.yaml.invalid-character``, ``config.yaml.unstorable-character``) for ``config validate``
and for ``apply``, which then touches no store (PostgreSQL used to refuse such a file halfway
through ``apply``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from iamgate.config import _yaml
from iamgate.config.load import load_config, parse_config
from tests.store.conftest import pg_admin, pg_backend  # noqa: F401 - pg_admin is a fixture

IAMGATE = str(Path(sys.executable).parent / "iamgate")
CODE = "config.yaml.invalid-character"
UNSTORABLE = "config.yaml.unstorable-character"

# line 6 is the API's name; line 12 is the statement's Sid
BASE = """gateway: {region: us-east-1, account_id: "111122223333"}
api_keys:
  - {id: k1, value: abcdefghijklmnopqrstuvwxyz0123}
apis:
  - id: a1b2c3d4e5
    name: pets
    policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Principal: "*"
          Sid: AllowAll
          Action: execute-api:Invoke
          Resource: execute-api:/*
    stages: {prod: {variables: {backend: "127.0.0.1:9000"}}}
    routes:
      - {path: /pets, method: GET, integration: {type: MOCK, body: ok}}
"""


def located(text: str) -> list[tuple[str, int | None, int | None, str]]:
    config, diags = parse_config(text, source="<test>")
    assert config is None, "refused"
    return [(d.code, d.location.line, d.location.column, d.location.pointer) for d in diags]


# --- raw characters YAML forbids ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("char", "described"),
    [
        ("\x00", "NUL character (U+0000)"),
        ("\x01", "control character U+0001"),
        ("\x1b", "control character U+001B"),
        ("\x7f", "control character U+007F"),
        ("\x9f", "control character U+009F"),
        ("\ufffe", "character U+FFFE"),
        ("\uffff", "character U+FFFF"),
    ],
    ids=repr,
)
def test_a_raw_forbidden_character_is_located(char: str, described: str) -> None:
    text = BASE.replace("name: pets", f"name: pe{char}ts")
    _, diags = parse_config(text, source="<test>")
    assert [(d.code, d.location.line, d.location.column) for d in diags] == [(CODE, 6, 13)]
    assert described in diags[0].message
    assert char not in diags[0].render()


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("\x00" + BASE, 1, 1),  # before anything
        (BASE + "\x00", 18, 1),  # after everything
        (BASE.replace("ok}}", "ok}}  # a comment \x00"), 17, 86),  # in a comment
        (BASE.replace("  - id: a1b", "  - id\x00: a1b"), 5, 7),  # in a key
        (BASE.replace("\n", "\r\n").replace("Sid: AllowAll", "Sid: Allow\x00"), 12, 21),  # CRLF lines
    ],
    ids=["start", "end", "comment", "key", "crlf"],
)
def test_a_nul_anywhere_is_located(text: str, line: int, column: int) -> None:
    assert located(text) == [(CODE, line, column, "")]


def test_every_forbidden_character_is_reported_at_once() -> None:
    text = BASE.replace("name: pets", "name: p\x00e\x01ts").replace("Sid: AllowAll", "Sid: \x02")
    assert located(text) == [(CODE, 6, 12, ""), (CODE, 6, 14, ""), (CODE, 12, 16, "")]


def test_a_flood_of_them_is_counted_not_listed() -> None:
    text = BASE.replace("name: pets", "name: " + "\x00" * 1000)
    diags = located(text)
    assert len(diags) == _yaml.MAX_CHARACTER_ERRORS + 1
    assert all(code == CODE for code, *_ in diags)


# --- escapes that make characters no store can keep --------------------------------------------


@pytest.mark.parametrize("escape", ["\\0", "\\x00", "\\u0000", "\\U00000000"])
def test_an_escaped_nul_in_a_string_is_located(escape: str) -> None:
    assert located(BASE.replace("name: pets", f'name: "pe{escape}ts"')) == [
        (UNSTORABLE, 6, 11, "/apis/0/name")
    ]


def test_an_escaped_nul_deep_in_a_policy_is_located() -> None:
    text = BASE.replace("Sid: AllowAll", 'Sid: "Allow\\0All"')
    assert located(text) == [(UNSTORABLE, 12, 16, "/apis/0/policy/Statement/0/Sid")]


def test_an_escaped_nul_in_a_key_is_located_at_its_mapping() -> None:
    text = BASE.replace('variables: {backend: "127', 'variables: {"back\\0end": "127')
    assert (UNSTORABLE, 15, 33, "/apis/0/stages/prod/variables") in located(text)


POLICY_TEXT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "a\x00b",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/*",
            }
        ],
    }
)
POLICY_LINES = BASE.split("\n")
# the API with its policy as JSON text (line 7), the policy's \u0000 escape being JSON's, not YAML's
JSON_POLICY = "\n".join([*POLICY_LINES[:6], f"    policy: '{POLICY_TEXT}'", *POLICY_LINES[14:]])


def test_an_escaped_nul_in_a_policy_given_as_json_text_is_located() -> None:
    assert "\\u0000" in JSON_POLICY
    diags = located(JSON_POLICY)
    assert diags == [(UNSTORABLE, 7, 13, "/apis/0/policy")]
    message = parse_config(JSON_POLICY)[1][0].message
    assert "at /Statement/0/Sid" in message


def test_an_escaped_nul_in_a_policy_file_is_located(tmp_path: Path) -> None:
    (tmp_path / "policy.json").write_text(POLICY_TEXT, encoding="utf-8")
    text = "\n".join([*POLICY_LINES[:6], "    policy_file: policy.json", *POLICY_LINES[14:]])
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    config, diags = load_config(path)
    assert config is None
    assert [(d.code, d.location.line, d.location.pointer) for d in diags] == [
        (UNSTORABLE, 7, "/apis/0/policy_file")
    ]
    assert "policy.json" in diags[0].message
    assert "/Statement/0/Sid" in diags[0].message


def test_a_lone_surrogate_is_located(monkeypatch: pytest.MonkeyPatch) -> None:
    """libyaml refuses a surrogate escape as a syntax error; PyYAML's own loader (used where
    PyYAML is built without libyaml) makes the character."""
    monkeypatch.setattr(_yaml, "_Loader", yaml.SafeLoader)
    text = BASE.replace("name: pets", 'name: "pe\\ud800ts"')
    assert located(text) == [(UNSTORABLE, 6, 11, "/apis/0/name")]
    assert "lone surrogate" in parse_config(text)[1][0].message


def test_other_escaped_control_characters_are_kept() -> None:
    """YAML allows them written as escapes, and stores keep them."""
    text = BASE.replace("body: ok", 'body: "\\x01\\e\\t\\a"')
    config, diags = parse_config(text, source="<test>")
    assert config is not None, [d.render() for d in diags]


# --- through the CLI: validate, and apply before any store is touched --------------------------


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([IAMGATE, *args], capture_output=True, text=True, timeout=60, check=False)


BAD_FILES = {  # name -> (text, the code that refuses it)
    "raw-nul": (BASE.replace("name: pets", "name: pe\x00ts"), CODE),
    "escaped-nul": (BASE.replace("Sid: AllowAll", 'Sid: "Allow\\0All"'), UNSTORABLE),
    "escaped-nul-key": (
        BASE.replace('variables: {backend: "127', 'variables: {"back\\0end": "127'),
        UNSTORABLE,
    ),
    "policy-json-escape": (JSON_POLICY, UNSTORABLE),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_config_validate_locates_it(tmp_path: Path, name: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(BAD_FILES[name][0], encoding="utf-8")
    done = run("config", "validate", str(path))
    assert done.returncode == 1, done.stdout
    assert f"{path}:" in done.stdout
    assert BAD_FILES[name][1] in done.stdout
    assert "\x00" not in done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_apply_refuses_it_before_touching_sqlite(tmp_path: Path, name: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(BAD_FILES[name][0], encoding="utf-8")
    db = tmp_path / "store.db"
    done = run("apply", str(path), "--store", f"sqlite:///{db}")
    assert done.returncode == 1, done.stderr
    assert BAD_FILES[name][1] in done.stderr
    assert "nothing applied" in done.stderr
    assert not db.exists()


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_apply_refuses_it_before_touching_postgres(
    tmp_path: Path, name: str, request: pytest.FixtureRequest
) -> None:
    admin = request.getfixturevalue("pg_admin")
    for backend in pg_backend(admin):
        path = tmp_path / "gateway.yaml"
        path.write_text(BAD_FILES[name][0], encoding="utf-8")
        done = run("apply", str(path), "--store", backend.url)
        assert done.returncode == 1, done.stderr
        assert BAD_FILES[name][1] in done.stderr
        assert "nothing applied" in done.stderr
        assert "PostgreSQL" not in done.stderr
        # the store was never opened: its schema was not even created
        rows = admin.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (backend.schema,)
        ).fetchall()
        assert rows == []


def test_the_same_file_without_the_nul_applies_to_postgres(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The control: with the character removed, the file goes in (so the refusals above are the
    loader's, not the store's)."""
    for backend in pg_backend(request.getfixturevalue("pg_admin")):
        path = tmp_path / "gateway.yaml"
        path.write_text(BASE, encoding="utf-8")
        done = run("apply", str(path), "--store", backend.url)
        assert done.returncode == 0, done.stderr


def test_load_config_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_bytes(BASE.replace("name: pets", "name: pe\x00ts").encode())
    config, diags = load_config(path)
    assert config is None
    assert [(d.code, d.source, d.location.line) for d in diags] == [(CODE, str(path), 6)]
    assert json.dumps([d.to_dict() for d in diags])  # a diagnostic that serialises
