"""Console users (``identities.console_users``): read from the configuration with located
errors, and signing in with a name and an argon2-hashed password."""

from __future__ import annotations

from pathlib import Path

import argon2
import pytest

from iamgate.config.load import parse_config
from iamgate.config.model import GatewayConfig
from iamgate.console.signin import check_password
from tests.console.conftest import Client, client_of
from tests.console.test_pages import deployed_api
from tests.management.conftest import READER, config_text, serve_admin

# cheap parameters: the tests verify many passwords (the configuration keeps whatever it is given)
HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery staple"
HASH = HASHER.hash(PASSWORD)


def _config_with(users: str) -> tuple[GatewayConfig | None, list[tuple[str, str]]]:
    text = (
        config_text()
        .replace("apis: []\n", "")
        .replace("  access_keys:\n", f"  console_users:\n{users}  access_keys:\n", 1)
    )
    config, diags = parse_config(text + "apis: []\n", source="<test>")
    found = [(d.code, d.location.pointer if d.location else "") for d in diags]
    return config, [d for d in found if d[0] != "config.no-apis"]  # the warning of apis: []


def test_a_console_user_is_read() -> None:
    config, diags = _config_with(f'    - {{name: ops, password_hash: "{HASH}", owner: {READER.arn}}}\n')
    assert diags == []
    assert config is not None
    user = config.auth.store.console_user("ops")
    assert user is not None
    assert user.identity.caller_arn == READER.arn
    assert HASH not in repr(user)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(
            f"{{name: ops, password_hash: plain-password, owner: {READER.arn}}}",
            ("config.invalid-value", "/identities/console_users/0/password_hash"),
            id="not-a-hash",
        ),
        pytest.param(
            f'{{name: AKIAIAMGATEOPS000001, password_hash: "{HASH}", owner: {READER.arn}}}',
            ("config.invalid-value", "/identities/console_users/0/name"),
            id="name-like-an-access-key",
        ),
        pytest.param(
            f'{{name: ops, password_hash: "{HASH}", owner: "arn:aws:iam::123456789012:user/ghost"}}',
            ("config.invalid-value", "/identities/console_users/0/owner"),
            id="unknown-owner",
        ),
        pytest.param(
            f"{{name: ops, owner: {READER.arn}}}",
            ("config.missing-key", "/identities/console_users/0"),
            id="no-password",
        ),
        pytest.param(
            f'{{name: ops, password_hash: "{HASH}", password_hash_env: X, owner: {READER.arn}}}',
            ("config.conflicting-keys", "/identities/console_users/0/password_hash_env"),
            id="two-passwords",
        ),
        pytest.param(
            f'{{name: ops, password_hash: "{HASH}", owner: {READER.arn}, role: x}}',
            ("config.unknown-key", "/identities/console_users/0/role"),
            id="unknown-key",
        ),
    ],
)
def test_a_bad_console_user_is_a_located_error(entry: str, expected: tuple[str, str]) -> None:
    config, diags = _config_with(f"    - {entry}\n")
    assert config is None
    assert expected in diags, diags


def test_a_name_given_twice_is_a_located_error() -> None:
    entry = f'    - {{name: ops, password_hash: "{HASH}", owner: {READER.arn}}}\n'
    config, diags = _config_with(entry + entry)
    assert config is None
    assert ("config.duplicate-id", "/identities/console_users/1/name") in diags


def test_check_password() -> None:
    config, _ = _config_with(
        f'    - {{name: ops, password_hash: "{HASH}", owner: {READER.arn}}}\n'
        f'    - {{name: idle, password_hash: "{HASH}", owner: {READER.arn}, enabled: false}}\n'
    )
    assert config is not None
    store = config.auth.store
    found = check_password(store, "ops", PASSWORD)
    assert found is not None
    assert found[0].caller_arn == READER.arn
    for name, password in [("ops", "wrong"), ("idle", PASSWORD), ("nobody", PASSWORD), ("", "")]:
        assert check_password(store, name, password) is None


def test_sign_in_with_a_console_user_and_end_the_session_with_a_new_password(tmp_path: Path) -> None:
    users = f'    - {{name: ops, password_hash: "{HASH}", owner: {READER.arn}}}\n'
    config, diags = _config_with(users)
    assert config is not None, diags
    with serve_admin(tmp_path, config, console=True) as handle:
        deployed_api(handle.boto3(), name="seen-by-ops")
        wrong = client_of(handle)
        wrong.get("/console/signin")
        refused = wrong.post("/console/signin", {"csrf": wrong.csrf, "login": "ops", "secret": "nope"})
        assert refused.status == 401
        assert "These credentials are not valid." in refused.body
        browser: Client = client_of(handle)
        browser.get("/console/signin")
        signed = browser.post("/console/signin", {"csrf": browser.csrf, "login": "ops", "secret": PASSWORD})
        assert signed.status == 303
        page = browser.get("/console/")
        assert page.status == 200
        assert "seen-by-ops" in page.body
        assert READER.arn in page.body
        renewed, _ = _config_with(
            f'    - {{name: ops, password_hash: "{HASHER.hash("a new one")}", owner: {READER.arn}}}\n'
        )
        assert renewed is not None
        handle.config = renewed
        assert browser.get("/console/").status == 303
