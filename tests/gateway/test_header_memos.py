"""The header-name memos on the request path stay bounded whatever names arrive."""

from __future__ import annotations

from iamgate.serving import connection
from iamgate.upstream import pool


def test_client_header_names_are_lower_cased_and_only_short_ones_kept() -> None:
    short = b"X-Short-Name"
    long = b"X-" + b"Long" * 40
    assert connection._lower_name(short) == b"x-short-name"
    assert connection._lower_name(long) == b"x-" + b"long" * 40
    assert connection._LOWER_NAMES.found.get(short) == b"x-short-name"
    assert long not in connection._LOWER_NAMES.found


def test_client_header_name_memo_is_cleared_when_full() -> None:
    for i in range(connection._LOWER_NAMES.limit + 10):
        connection._lower_name(b"X-Name-%d" % i)
    assert len(connection._LOWER_NAMES.found) <= connection._LOWER_NAMES.limit


def test_backend_header_names_are_classified_and_only_short_ones_kept() -> None:
    long = b"X-" + b"Long" * 40
    kind, lname, start = pool._classify(long)
    assert (kind, lname, start) == (pool._PASS, long.lower(), long + b": ")
    assert long not in pool._NAMES.found
    assert pool._classify(b"Server")[2] == b"x-amzn-Remapped-Server: "
    assert b"Server" in pool._NAMES.found
    for i in range(pool._NAMES.limit + 10):
        pool._classify(b"X-Backend-%d" % i)
    assert len(pool._NAMES.found) <= pool._NAMES.limit
