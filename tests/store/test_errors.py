"""Bad store URLs and unusable databases give a :class:`StoreError` an operator can act on,
never a traceback and never a password."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from iamgate.store import StoreError, mask, open_store
from tests.ports import free_port
from tests.store.conftest import PG_URL, Backend

SECRET = "s3cr3t-Pa55"


def refused(url: str) -> str:
    with pytest.raises(StoreError) as info:
        open_store(url)
    message = str(info.value)
    assert SECRET not in message
    assert "\n" not in message
    return message


def test_an_unknown_scheme() -> None:
    message = refused(f"mysql://admin:{SECRET}@db/gateway")
    assert message.startswith("mysql://admin:***@db/gateway: not a store URL")
    assert "sqlite:///" in message
    assert "postgresql://" in message


def test_sqlite_in_a_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    message = refused(f"sqlite:///{missing}/store.db")
    assert f"the directory {missing} does not exist" in message
    assert not missing.exists()


def test_sqlite_without_a_file_name() -> None:
    assert "no file name" in refused("sqlite:///")


def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database, just text that is long enough to have a header page" * 100)
    assert "file is not a database" in refused(f"sqlite:///{path}")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://iamgate:{secret}@127.0.0.1:{port}/test",
        "postgres://iamgate@127.0.0.1:{port}/test?password={secret}&sslmode=disable",
    ],
)
def test_postgresql_on_a_closed_port(url: str) -> None:
    port = free_port()
    message = refused(url.format(secret=SECRET, port=port))
    assert "cannot connect to PostgreSQL" in message
    assert f"port {port} failed: Connection refused" in message
    assert message.startswith(mask(url.format(secret=SECRET, port=port)) + ": ")
    assert "***" in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            f"postgresql://iamgate:{SECRET}%zz@127.0.0.1/test",
            "not a valid PostgreSQL URL: invalid percent-encoded",
        ),
        (f"postgresql://iamgate:{SECRET}@127.0.0.1:notaport/test", 'invalid integer value "notaport"'),
        (
            f"postgresql://iamgate:{SECRET}@127.0.0.1/test?colour=blue",
            'invalid URI query parameter: "colour"',
        ),
    ],
)
def test_postgresql_url_mistakes(url: str, expected: str) -> None:
    message = refused(url)
    assert expected in message


def test_postgresql_database_that_does_not_exist(pg_admin: Any) -> None:
    message = refused(PG_URL.replace("/test", "/iamgate_no_such_database"))
    assert 'database "iamgate_no_such_database" does not exist' in message


def test_a_database_that_holds_something_else(backend: Backend) -> None:
    """Tables with the store's names that no migration made: refused, not overwritten."""
    if backend.name == "sqlite":
        conn = sqlite3.connect(backend.url[len("sqlite:///") :])
        conn.execute("CREATE TABLE iamgate_state (whatever TEXT)")
        conn.commit()
        conn.close()
    else:
        import psycopg
        from psycopg import sql

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(backend.schema)))
            conn.execute(
                sql.SQL("CREATE TABLE {}.iamgate_state (whatever TEXT)").format(
                    sql.Identifier(backend.schema)
                )
            )
    message = refused(backend.url)
    assert "cannot prepare the database" in message
    assert "iamgate_state" in message
    assert "already exists" in message
    assert backend.sql("SELECT whatever FROM iamgate_state") == []
