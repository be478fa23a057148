"""``iamgate console hash-password``: the hash it makes is read by the configuration and signs
in; it refuses passwords that could never sign in; the password is never an argument."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import argon2
import pytest

from iamgate.console.signin import MAX_FIELD
from tests.console.conftest import client_of
from tests.console.test_users import _config_with
from tests.management.conftest import READER, serve_admin

IAMGATE = str(Path(sys.executable).parent / "iamgate")
PASSWORD = "tr0ub4dor & 3, with spaces inside"


def _run(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IAMGATE, "console", "hash-password", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_hash_written_to_a_file_signs_in(tmp_path: Path) -> None:
    target = tmp_path / "ops.argon2"
    done = _run("--stdin", "--output", str(target), stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # the hash went to the file only
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    hashed = target.read_text().strip()
    assert hashed.startswith("$argon2id$")
    assert argon2.PasswordHasher().verify(hashed, PASSWORD)
    config, diags = _config_with(f"    - {{name: ops, password_hash_file: {target}, owner: {READER.arn}}}\n")
    assert config is not None, diags
    with serve_admin(tmp_path, config, console=True) as handle:
        browser = client_of(handle)
        browser.get("/console/signin")
        signed = browser.post("/console/signin", {"csrf": browser.csrf, "login": "ops", "secret": PASSWORD})
        assert signed.status == 303
        assert browser.get("/console/").status == 200


def test_the_hash_is_printed_and_salted() -> None:
    first = _run("--stdin", stdin=PASSWORD + "\n")
    second = _run("--stdin", stdin=PASSWORD + "\n")
    assert first.returncode == 0
    assert second.returncode == 0
    assert first.stdout != second.stdout  # a new salt each time
    assert argon2.PasswordHasher().verify(first.stdout.strip(), PASSWORD)
    assert PASSWORD not in first.stdout + first.stderr


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("", "the password is empty"),
        ("x" * (MAX_FIELD + 1), f"longer than {MAX_FIELD} characters"),
        (" padded", "white space"),
    ],
    ids=["empty", "too-long", "padded"],
)
def test_a_password_that_could_never_sign_in_is_refused(password: str, says: str) -> None:
    done = _run("--stdin", stdin=password + "\n")
    assert done.returncode == 2
    assert says in done.stderr
    assert "$argon2" not in done.stdout
    assert "Traceback" not in done.stderr


def test_the_password_is_not_taken_as_an_argument() -> None:
    done = _run(PASSWORD, stdin="")
    assert done.returncode == 2
    assert "$argon2" not in done.stdout
