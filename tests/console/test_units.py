"""The console's parts on their own: sessions, tokens, cookies, the sign-in limit, the
credential check, store kinds and the static files table."""

from __future__ import annotations

from typing import Any

import pytest

from iamgate.auth.identities import Identity, IdentityStore, Principal
from iamgate.auth.sigv4 import Credential
from iamgate.console.app import Page
from iamgate.console.assets import Templates, load_static
from iamgate.console.overview import store_kind
from iamgate.console.ratelimit import SignInLimiter
from iamgate.console.sessions import (
    IDLE_TIMEOUT,
    LIFETIME,
    SessionTable,
    cookie_header,
    parse_cookies,
    same_token,
)
from iamgate.console.signin import check_credentials

USER = Identity(
    Principal("arn:aws:iam::123456789012:user/u", "user", "123456789012", "u", "AIDAEXAMPLE"),
    "arn:aws:iam::123456789012:user/u",
)


def test_a_session_is_found_until_it_idles_out() -> None:
    table = SessionTable()
    s = table.open("access-key", "AKIA1", "secret", USER.caller_arn, now=1000.0)
    assert table.find(s.id, 1000.0 + IDLE_TIMEOUT - 1) is s
    assert table.find(s.id, 1000.0 + 2 * IDLE_TIMEOUT - 2) is s  # each request restarts the idle clock
    assert table.find(s.id, 1000.0 + 3 * IDLE_TIMEOUT) is None
    assert len(table) == 0


def test_a_session_ends_after_its_lifetime_however_active() -> None:
    table = SessionTable()
    s = table.open("access-key", "AKIA1", "secret", USER.caller_arn, now=0.0)
    now = 0.0
    while now + 60 < LIFETIME:
        now += 60
        assert table.find(s.id, now) is s
    assert table.find(s.id, LIFETIME) is None


def test_sessions_have_distinct_random_ids_and_csrf_tokens_and_no_secret() -> None:
    table = SessionTable()
    a = table.open("access-key", "AKIA1", "s3cr3t-value", USER.caller_arn, 0.0)
    b = table.open("access-key", "AKIA1", "s3cr3t-value", USER.caller_arn, 0.0)
    assert len({a.id, b.id, a.csrf, b.csrf}) == 4
    assert len(a.id) >= 40
    assert "s3cr3t-value" not in str(vars_of(a))
    for hidden in (a.id, a.csrf, a.secret_digest):
        assert hidden not in repr(a)


def vars_of(session: object) -> dict[str, object]:
    return {name: getattr(session, name) for name in session.__slots__}  # type: ignore[attr-defined]


def test_closing_and_unknown_ids() -> None:
    table = SessionTable()
    s = table.open("access-key", "AKIA1", "secret", USER.caller_arn, 0.0)
    assert table.find(None, 0.0) is None
    assert table.find("", 0.0) is None
    assert table.find("nope", 0.0) is None
    table.close(s.id)
    assert table.find(s.id, 0.0) is None


def test_the_table_is_bounded_least_recently_used_first() -> None:
    table = SessionTable(max_sessions=2)
    a = table.open("access-key", "A", "s", "arn:a", 0.0)
    b = table.open("access-key", "B", "s", "arn:b", 0.0)
    table.find(a.id, 1.0)  # a is now the most recently used
    c = table.open("access-key", "C", "s", "arn:c", 2.0)
    assert table.find(b.id, 2.0) is None
    assert table.find(a.id, 2.0) is a
    assert table.find(c.id, 2.0) is c


@pytest.mark.parametrize(
    ("given", "expected", "same"),
    [
        ("abc", "abc", True),
        ("abc", "abd", False),
        ("", "", False),
        (None, "abc", False),
        ("abc", "", False),
        ("é", "é", True),
    ],
)
def test_same_token(given: str | None, expected: str, same: bool) -> None:
    assert same_token(given, expected) is same


def test_parse_cookies() -> None:
    headers = [(b"Cookie", b'a=1; iamgate_console=tok; junk; b="2"'), (b"cookie", b"a=ignored")]
    assert parse_cookies(headers) == {"a": "1", "iamgate_console": "tok", "b": "2"}


@pytest.mark.parametrize("secure", [False, True])
def test_cookie_flags(secure: bool) -> None:
    name, value = cookie_header("iamgate_console", "tok", max_age=60, secure=secure)
    assert name == "Set-Cookie"
    parts = value.split("; ")
    assert parts[0] == "iamgate_console=tok"
    assert {"Path=/console", "Max-Age=60", "HttpOnly", "SameSite=Strict"} <= set(parts)
    assert ("Secure" in parts) is secure


def test_the_sign_in_limit_lets_a_burst_through_then_one_per_interval() -> None:
    limiter = SignInLimiter(burst=3, interval=10.0)
    assert [limiter.attempt("10.0.0.1", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.attempt("10.0.0.1", 0.0)
    assert 9.9 < wait <= 10.0
    assert limiter.attempt("10.0.0.2", 0.0) == 0.0  # per address
    assert limiter.attempt("10.0.0.1", 5.0) > 0  # refused attempts do not take tokens
    assert limiter.attempt("10.0.0.1", 10.0) == 0.0
    assert limiter.attempt("10.0.0.1", 10.0) > 0


def test_the_sign_in_limit_table_is_bounded() -> None:
    limiter = SignInLimiter(burst=2, interval=10.0, max_addresses=3)
    for i in range(10):
        limiter.attempt(f"10.0.0.{i}", float(i))
    assert len(limiter._buckets) <= 3


def _store(*, token: str | None = None, expires: float | None = None, owner: object = USER) -> IdentityStore:
    store = IdentityStore()
    store.add(Credential("AKIAGOOD", "right-secret", token, expires, owner))
    store.add(Credential("AKIAOFF", "right-secret", None, None, USER), enabled=False)
    return store


def test_the_right_credentials_give_the_identity() -> None:
    found = check_credentials(_store(), "AKIAGOOD", "right-secret", now=0.0)
    assert found == (USER, "right-secret")


@pytest.mark.parametrize(
    ("key", "secret", "store"),
    [
        pytest.param("AKIAGOOD", "wrong", _store(), id="wrong-secret"),
        pytest.param("AKIAGOOD", "right-secre", _store(), id="prefix"),
        pytest.param("AKIAGOOD", "right-secret" + "x" * 300, _store(), id="too-long"),
        pytest.param("AKIAOTHER", "right-secret", _store(), id="unknown-key"),
        pytest.param("AKIAOFF", "right-secret", _store(), id="disabled-key"),
        pytest.param("", "", _store(), id="empty"),
        pytest.param("AKIAGOOD", "right-secret", _store(token="t"), id="temporary"),
        pytest.param("AKIAGOOD", "right-secret", _store(expires=-1.0), id="expired"),
        pytest.param("AKIAGOOD", "right-secret", _store(owner=None), id="no-owner"),
    ],
)
def test_every_refusal_is_the_same_none(key: str, secret: str, store: IdentityStore) -> None:
    assert check_credentials(store, key, secret, now=0.0) is None


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("sqlite:///var/lib/iamgate.db", "SQLite"),
        ("postgresql://user:pw@db/iamgate", "PostgreSQL"),
        ("postgres://user:pw@db/iamgate", "PostgreSQL"),
        ("redis://x", "other"),
        (None, None),
        ("", None),
    ],
)
def test_store_kind_names_the_kind_only(url: str | None, kind: str | None) -> None:
    assert store_kind(url) == kind


def test_the_static_table_holds_the_package_files_only_by_name() -> None:
    files = load_static()
    assert "console.css" in files
    assert all("/" not in name and not name.startswith(".") for name in files)
    assert files["console.css"].content_type == "text/css; charset=utf-8"
    assert files["console.css"].etag.startswith('"')


def test_templates_escape_everything() -> None:
    text = (
        Templates()
        .render(
            "error.html",
            signed_in="<i>x</i>",
            csrf='"><script>',
            no_store=False,
            screens=[("<u>screen</u>", '/console/"><script>')],
            current="",
            title="<b>",
            message="<s>",
            code=1,
        )
        .decode()
    )
    assert "<i>x</i>" not in text
    assert "&lt;i&gt;x&lt;/i&gt;" in text
    assert '"><script>' not in text
    assert "&lt;b&gt;" in text
    assert "<s>" not in text
    assert "<u>screen</u>" not in text
    assert '/console/"><script>' not in text


async def _nothing(app: Any, request: Any) -> Any:
    raise AssertionError("not called")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/console/apis/abc123", {"api": "abc123"}),
        ("/console/apis/a%20b", {"api": "a b"}),
        ("/console/apis/", None),  # an empty segment is not a value
        ("/console/apis/a%2Fb", None),  # an encoded slash never makes two segments one
        ("/console/apis/abc/extra", None),
        ("/console/apis", None),
    ],
)
def test_a_route_with_a_segment_matches_one_segment(path: str, expected: dict[str, str] | None) -> None:
    assert Page("GET", "/console/apis/{api}", _nothing).match(path) == expected


def test_an_exact_route_matches_only_itself() -> None:
    page = Page("GET", "/console/", _nothing)
    assert page.match("/console/") == {}
    assert page.match("/console//") is None
