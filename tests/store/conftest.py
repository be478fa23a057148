"""Fresh stores on real backends, and store clients in other processes.

* ``sqlite``: a file in the test's tmp directory.
* ``postgres``: the server on 127.0.0.1:5432 (``IAMGATE_TEST_POSTGRES`` to use another), in a
  schema of its own with a random name, which the store creates on first open (the URL names it
  through ``options=-csearch_path=...``) and the fixture drops afterwards. The URL also sets
  ``application_name`` to that name, so a test can find (and terminate) the store's connections.

Without a reachable PostgreSQL server the PostgreSQL tests skip, except under CI (``CI`` set),
where they fail.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from iamgate.store import Doc, Store, open_store

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("IAMGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: PostgreSQL is required)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Any]:
    """A connection to the PostgreSQL test database, outside any test's schema."""
    try:
        import psycopg
    except ImportError as exc:
        unavailable(f"psycopg is not installed: {exc}")
    try:
        conn = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at {PG_URL} is unreachable: {' '.join(str(exc).split())}")
    yield conn
    conn.close()


@dataclass
class Backend:
    name: str  # sqlite | postgres
    url: str
    schema: str = ""  # postgres: the schema of the store (also its connections' application_name)

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        """Run one statement on the store's database directly (not through the store)."""
        if self.name == "sqlite":
            conn = sqlite3.connect(self.url[len("sqlite:///") :])
            try:
                rows = conn.execute(statement).fetchall()
                conn.commit()
            finally:
                conn.close()
            return rows
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as pg:
            cur = pg.execute(statement.encode())
            return cur.fetchall() if cur.description else []


def pg_backend(admin: Any) -> Iterator[Backend]:
    """A PostgreSQL store URL in a schema that does not exist yet; dropped afterwards."""
    from psycopg import sql

    schema = "iamgate_test_" + secrets.token_hex(6)
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield Backend(
            "postgres", f"{PG_URL}{sep}options=-csearch_path%3D{schema}&application_name={schema}", schema
        )
    finally:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (schema,),
        )
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Where a fresh store goes (nothing is created until it is opened)."""
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite:///{tmp_path / 'store.db'}")
    else:
        yield from pg_backend(request.getfixturevalue("pg_admin"))


@pytest.fixture
def pg(pg_admin: Any) -> Iterator[Backend]:
    yield from pg_backend(pg_admin)


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    opened = open_store(backend.url)
    yield opened
    opened.close()


# --- helpers ---------------------------------------------------------------------------------------


def write(store: Store, kind: str, api_id: str, id: str, doc: Doc) -> None:
    """Put one document, in a transaction of its own."""
    with store.transaction() as tx:
        tx.put(kind, api_id, id, doc)


class Seen:
    """A watch callback that records the generations it is told of."""

    def __init__(self) -> None:
        self.generations: list[int] = []
        self.event = threading.Event()

    def __call__(self, generation: int) -> None:
        self.generations.append(generation)
        self.event.set()


def watch_threads() -> set[threading.Thread]:
    """The store watchers' threads that are alive."""
    return {t for t in threading.enumerate() if t.name == "iamgate-store-watch"}


# --- other processes ---------------------------------------------------------------------------


def start_worker(*args: str) -> subprocess.Popen[str]:
    """``python -m tests.store.workers ARGS`` (see workers.py)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.store.workers", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_together(procs: list[subprocess.Popen[str]]) -> None:
    """Wait until every worker is ready, then let them all go at once."""
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line != "ready\n":
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"worker did not start: {line!r} {err}")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()


def finish(proc: subprocess.Popen[str]) -> str:
    """Wait for a worker; its output after ``ready`` (it must have succeeded)."""
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, f"worker failed:\n{err}"
    return out.removeprefix("ready\n")
